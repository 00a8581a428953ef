"""The store's per-day unit counts (day_units, kept by triggers) always equal
a count of the active reservations, and writers in several processes queue
on the writer lock without losing a unit. The routing sums it keeps for
/metrics (routed_sums, routed_nodes) always equal those of the decisions of
the orders routed or shipped."""

from __future__ import annotations

import json
import multiprocessing
import random
import sqlite3

import pytest

from engine.metrics import SUMS, add_sums, routed_sums
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


# ---- routing sums ---------------------------------------------------------------------------------

def summed(store: Store) -> tuple[dict, dict]:
    """The sums of the stored decisions of the orders routed or shipped, added up here."""
    sums, nodes = dict.fromkeys(SUMS, 0), {}
    for (decision,) in store.conn.execute("SELECT decision FROM orders WHERE state IN ('routed', 'shipped')"):
        add_sums(sums, nodes, *routed_sums(json.loads(decision)))
    return sums, {node: counts for node, counts in nodes.items() if counts != [0, 0]}


def kept(store: Store) -> tuple[dict, dict]:
    with store.read() as conn:
        return store.routed(conn)


def assert_same(store: Store) -> None:
    (sums, nodes), (want, want_nodes) = kept(store), summed(store)
    assert nodes == want_nodes
    assert sums == pytest.approx(want, abs=1e-9)


def decision(rng: random.Random, order_id: str, status: str) -> dict:
    if status == "held":
        return {"order_id": order_id, "status": "held", "shipments": [], "reason": "short"}
    shipments = [{"node": f"N{rng.randrange(4)}", "carrier": rng.choice(["C", None]),
                  "lines": [{"sku": "S1", "qty": rng.randint(1, 4)}], "cost": round(rng.uniform(3, 20), 2),
                  "days": rng.randint(1, 5), "distance_km": rng.randint(1, 3000)}
                 for _ in range(rng.choice([1, 1, 2, 3]))]
    return {"order_id": order_id, "status": "routed", "shipments": shipments,
            "cost": round(sum(s["cost"] for s in shipments), 2), "days": max(s["days"] for s in shipments)}


def test_routing_sums_follow_orders_saved_rerouted_cancelled_and_shipped(tmp_path):
    store = Store(tmp_path / "steve.db")
    assert kept(store) == (dict.fromkeys(SUMS, 0), {})
    rng = random.Random(11)
    states: dict[str, str] = {}
    for number in range(300):
        roll, order_id = rng.random(), f"O{number}"
        with store.write() as conn:
            if roll < 0.5 or not states:                        # placed: routed or held
                status = rng.choice(["routed", "routed", "held"])
                store.save_order(conn, order_id, {"id": order_id}, status, decision(rng, order_id, status), None)
                states[order_id] = status
            else:
                order_id = rng.choice(sorted(states))
                state = states[order_id]
                if roll < 0.65 and state == "held":             # re-routed when stock arrived
                    store.save_order(conn, order_id, {"id": order_id}, "routed",
                                     decision(rng, order_id, "routed"), None)
                    states[order_id] = "routed"
                elif roll < 0.85 and state in ("routed", "held"):
                    store.set_order_state(conn, order_id, "cancelled")
                    states[order_id] = "cancelled"
                elif state == "routed":
                    store.set_order_state(conn, order_id, "shipped")
                    states[order_id] = "shipped"
        assert_same(store)
    assert set(states.values()) == {"routed", "held", "cancelled", "shipped"}
    store.close()


def test_a_failed_write_leaves_the_routing_sums_alone(tmp_path):
    store = Store(tmp_path / "steve.db")
    routed = decision(random.Random(1), "O1", "routed")
    with pytest.raises(RuntimeError):
        with store.write() as conn:
            store.save_order(conn, "O1", {"id": "O1"}, "routed", routed, None)
            raise RuntimeError("the power went out")
    assert kept(store) == (dict.fromkeys(SUMS, 0), {})
    store.close()


def test_an_older_database_gets_its_routing_sums_when_opened(tmp_path):
    path = tmp_path / "steve.db"
    store = Store(path)
    rng = random.Random(5)
    with store.write() as conn:
        for number, state in enumerate(["routed", "held", "routed", "shipped", "cancelled"]):
            status = "held" if state == "held" else "routed"
            store.save_order(conn, f"O{number}", {"id": f"O{number}"}, status, decision(rng, f"O{number}", status),
                             None)
            if state != status:
                store.set_order_state(conn, f"O{number}", state)
    want = summed(store)
    assert want[0]["routed"] == 3
    store.close()
    raw = sqlite3.connect(path)         # as a database made before the tables existed
    raw.execute("DROP TABLE routed_sums")
    raw.execute("DROP TABLE routed_nodes")
    raw.execute("DELETE FROM meta WHERE key = 'routed_sums'")
    raw.commit()
    raw.close()
    store = Store(path)
    assert_same(store)
    assert kept(store)[0]["routed"] == 3
    store.close()
