"""Group commit in Service.place: concurrent orders share a write
transaction, each answered with its own decision or error."""

from __future__ import annotations

import threading
import time

import pytest

from server.demo import DEMO_ORDER, load_demo
from server.service import GroupCommit, Service
from server.store import Conflict, Store


def test_batches_answer_each_caller_in_order_and_keep_errors_apart():
    seen: list[list[int]] = []

    def work(items):
        seen.append(list(items))
        time.sleep(0.01)                    # long enough for others to queue
        return [(None, ValueError(f"bad {i}")) if i % 7 == 3 else (i * 10, None) for i in items]

    commit = GroupCommit(work)
    answers: dict[int, object] = {}

    def call(i):
        try:
            answers[i] = commit.submit(i)
        except ValueError as error:
            answers[i] = str(error)

    threads = [threading.Thread(target=call, args=(i,)) for i in range(40)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert answers == {i: (f"bad {i}" if i % 7 == 3 else i * 10) for i in range(40)}
    assert sorted(i for batch in seen for i in batch) == list(range(40))
    assert len(seen) < 40                   # some batches held several orders
    assert not commit.running and not commit.waiting


def test_a_failing_transaction_fails_every_order_in_it():
    def work(items):
        raise RuntimeError("disk full")

    commit = GroupCommit(work)
    with pytest.raises(RuntimeError):
        commit.submit(1)
    assert not commit.running


@pytest.fixture
def service(tmp_path):
    store = Store(tmp_path / "steve.db")
    load_demo(store)
    yield Service(store, "compiled")
    store.close()


def order(number: int, **changes) -> dict:
    return {**DEMO_ORDER, "id": f"G-{number}", **changes}


def test_concurrent_places_are_all_stored_and_reserved_once(service):
    results: dict[int, tuple] = {}

    def place(i):
        results[i] = service.place(order(i))

    threads = [threading.Thread(target=place, args=(i,)) for i in range(60)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert len(results) == 60 and all(created for _, created in results.values())
    conn = service.store.conn
    assert conn.execute("SELECT COUNT(*) FROM orders").fetchone()[0] == 60
    mismatched = conn.execute(
        "SELECT COUNT(*) FROM stock s LEFT JOIN (SELECT node, sku, SUM(qty) AS q FROM reservations "
        "WHERE state = 'active' GROUP BY node, sku) r ON r.node = s.node AND r.sku = s.sku "
        "WHERE s.reserved != COALESCE(r.q, 0) OR s.reserved > s.on_hand").fetchone()[0]
    assert mismatched == 0
    again, created = service.place(order(5))          # idempotent: the stored decision
    assert not created and again == results[5][0]


def test_a_conflicting_order_in_a_batch_leaves_the_others_placed(service):
    service.place(order(1))
    errors, placed = [], []

    def place(body):
        try:
            placed.append(service.place(body))
        except Conflict as error:
            errors.append(error)

    bodies = [order(1, channel="other")] + [order(i) for i in range(2, 12)]
    threads = [threading.Thread(target=place, args=(body,)) for body in bodies]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert len(errors) == 1 and len(placed) == 10
    assert service.store.conn.execute("SELECT COUNT(*) FROM orders").fetchone()[0] == 11
