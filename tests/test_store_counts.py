"""The store's per-day unit counts (day_units, kept by triggers) always equal
a count of the active reservations, and writers in several processes queue
on the writer lock without losing a unit."""

from __future__ import annotations

import multiprocessing
import random
import sqlite3

from server.store import Store


def scanned(store: Store, day: str) -> dict[str, int]:
    rows = store.conn.execute("SELECT node, SUM(qty) FROM reservations WHERE day = ? AND state = 'active' "
                              "GROUP BY node", (day,)).fetchall()
    return dict(rows)


def test_counts_follow_reserve_release_ship_and_upserts(tmp_path):
    store = Store(tmp_path / "steve.db")
    rng = random.Random(3)
    with store.write() as conn:
        store.set_on_hand(conn, [(f"N{n}", f"S{s}", 1000) for n in range(4) for s in range(5)], "test")
    days = ["2026-11-27", "2026-11-28"]
    placed = []
    for number in range(300):
        order = f"O{number}"
        with store.write() as conn:
            for _ in range(rng.randint(1, 3)):      # the same (order, node, sku) twice adds up
                store.reserve(conn, order, f"N{rng.randrange(4)}", f"S{rng.randrange(5)}", rng.randint(1, 3),
                              rng.choice(days))
        placed.append(order)
        if rng.random() < 0.3:
            with store.write() as conn:
                store.release(conn, rng.choice(placed), shipped=rng.random() < 0.5)
        for day in days:
            assert store.units_today(store.conn, day) == scanned(store, day)
    store.close()


def test_an_older_database_is_counted_when_opened(tmp_path):
    path = tmp_path / "steve.db"
    store = Store(path)
    with store.write() as conn:
        store.set_on_hand(conn, [("N1", "S1", 10), ("N2", "S1", 10)], "test")
        store.reserve(conn, "A", "N1", "S1", 2, "2026-11-27")
        store.reserve(conn, "B", "N2", "S1", 3, "2026-11-27")
    store.close()
    raw = sqlite3.connect(path)         # as a database made before the table existed
    raw.execute("DELETE FROM day_units")
    raw.execute("DELETE FROM meta WHERE key = 'day_units'")
    raw.commit()
    raw.close()
    store = Store(path)
    assert store.units_today(store.conn, "2026-11-27") == {"N1": 2, "N2": 3}
    store.close()


def _reserve_many(path: str, worker: int, count: int) -> None:
    store = Store(path)
    for number in range(count):
        with store.write() as conn:
            store.reserve(conn, f"W{worker}-{number}", "N1", "S1", 1, "2026-11-27")
    store.close()


def test_writers_in_several_processes_queue_on_the_lock(tmp_path):
    path = str(tmp_path / "steve.db")
    store = Store(path)
    with store.write() as conn:
        store.set_on_hand(conn, [("N1", "S1", 10_000)], "test")
    context = multiprocessing.get_context("spawn")
    workers = [context.Process(target=_reserve_many, args=(path, w, 150)) for w in range(3)]
    for process in workers:
        process.start()
    for process in workers:
        process.join(60)
        assert process.exitcode == 0
    assert store.conn.execute("SELECT reserved FROM stock").fetchone()[0] == 450
    assert store.units_today(store.conn, "2026-11-27") == {"N1": 450}
    store.close()
