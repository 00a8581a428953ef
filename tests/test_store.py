"""server.store on its own, on a real database file: stock arithmetic,
the CHECK constraint, all-or-nothing transactions, adjustment idempotency,
audit rows, orders and playbook versions."""

from __future__ import annotations

import json
import sqlite3
import threading

import pytest

from server.store import Conflict, NotFound, Store, canonical, digest

DAY = "2026-11-25"


@pytest.fixture
def store(tmp_path):
    opened = Store(tmp_path / "steve.db")
    yield opened
    opened.close()


def stocked(store: Store, *rows: tuple[str, str, int], actor: str = "wms") -> Store:
    with store.write() as conn:
        store.set_on_hand(conn, list(rows), actor)
    return store


def levels(store: Store, sku: str | None = None) -> dict[tuple[str, str], tuple[int, int]]:
    with store.read() as conn:
        rows = store.stock_rows(conn, None if sku is None else [sku])
    return {(node, item): (on_hand, reserved) for node, item, on_hand, reserved in rows}


def reservations(store: Store, order_id: str) -> list[tuple]:
    return [tuple(r.values()) for r in store.query(
        "SELECT node, sku, qty, state FROM reservations WHERE order_id = ? ORDER BY node, sku", (order_id,))]


def audit(store: Store) -> list[tuple]:
    return [(r["actor"], r["action"], r["subject"], json.loads(r["detail"]) if r["detail"] else None)
            for r in store.query("SELECT actor, action, subject, detail FROM audit ORDER BY id")]


def test_the_file_is_wal_with_full_sync_and_survives_reopening(tmp_path):
    path = tmp_path / "steve.db"
    first = Store(path)
    try:
        assert first.conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert first.conn.execute("PRAGMA synchronous").fetchone()[0] == 2      # FULL
        stocked(first, ("A", "X", 5))
        with first.write() as conn:
            first.reserve(conn, "O-1", "A", "X", 2, DAY)
    finally:
        first.close()
    again = Store(path)
    try:
        assert levels(again) == {("A", "X"): (5, 2)}
        assert reservations(again, "O-1") == [("A", "X", 2, "active")]
    finally:
        again.close()


# ---- stock arithmetic --------------------------------------------------------------------------

def test_reserve_release_and_ship_arithmetic(store):
    stocked(store, ("A", "X", 10), ("B", "X", 4), ("A", "Y", 3))
    with store.write() as conn:
        store.reserve(conn, "O-1", "A", "X", 3, DAY)
        store.reserve(conn, "O-1", "B", "X", 4, DAY)
        store.reserve(conn, "O-2", "A", "X", 2, DAY)
        store.reserve(conn, "O-2", "A", "X", 1, DAY)        # the same order, node and item adds up
    assert levels(store, "X") == {("A", "X"): (10, 6), ("B", "X"): (4, 4)}
    assert reservations(store, "O-2") == [("A", "X", 3, "active")]
    with store.read() as conn:
        assert store.units_today(conn, DAY) == {"A": 6, "B": 4}
        assert store.units_today(conn, "2026-11-26") == {}

    with store.write() as conn:                               # cancel: reserved goes down
        released = store.release(conn, "O-1", shipped=False)
    assert sorted((r["node"], r["qty"]) for r in released) == [("A", 3), ("B", 4)]
    assert levels(store, "X") == {("A", "X"): (10, 3), ("B", "X"): (4, 0)}
    assert reservations(store, "O-1") == [("A", "X", 3, "released"), ("B", "X", 4, "released")]

    with store.write() as conn:                               # ship: on hand and reserved go down
        shipped = store.release(conn, "O-2", shipped=True)
    assert shipped == [{"node": "A", "sku": "X", "qty": 3}]
    assert levels(store, "X") == {("A", "X"): (7, 0), ("B", "X"): (4, 0)}
    assert reservations(store, "O-2") == [("A", "X", 3, "shipped")]
    with store.read() as conn:
        assert store.units_today(conn, DAY) == {}            # only active reservations count

    with store.write() as conn:                               # releasing again changes nothing
        assert store.release(conn, "O-2", shipped=True) == []
        assert store.release(conn, "O-1", shipped=False) == []
    assert levels(store, "X") == {("A", "X"): (7, 0), ("B", "X"): (4, 0)}
    assert levels(store, "Y") == {("A", "Y"): (3, 0)}


def test_reserving_more_than_is_available_is_refused(store):
    stocked(store, ("A", "X", 5))
    with store.write() as conn:
        store.reserve(conn, "O-1", "A", "X", 4, DAY)
    for node, sku, qty in (("A", "X", 2), ("A", "NOPE", 1), ("NOWHERE", "X", 1)):
        with pytest.raises(Conflict, match="fewer than"):
            with store.write() as conn:
                store.reserve(conn, "O-2", node, sku, qty, DAY)
    assert levels(store) == {("A", "X"): (5, 4)}
    assert reservations(store, "O-2") == []


def test_the_check_constraint_refuses_reserved_above_on_hand(store):
    stocked(store, ("A", "X", 5))
    with pytest.raises(sqlite3.IntegrityError, match="CHECK"):
        with store.write() as conn:
            conn.execute("UPDATE stock SET reserved = 6 WHERE node = 'A' AND sku = 'X'")
    with pytest.raises(sqlite3.IntegrityError, match="CHECK"):
        with store.write() as conn:
            conn.execute("UPDATE stock SET on_hand = -1 WHERE node = 'A' AND sku = 'X'")
    with pytest.raises(sqlite3.IntegrityError, match="CHECK"):
        with store.write() as conn:
            conn.execute("INSERT INTO stock (node, sku, on_hand, reserved) VALUES ('B', 'X', 1, 2)")
    with pytest.raises(sqlite3.IntegrityError, match="CHECK"):
        with store.write() as conn:
            conn.execute("INSERT INTO reservations (order_id, node, sku, qty, day, state) "
                         "VALUES ('O', 'A', 'X', 0, ?, 'active')", (DAY,))
    assert levels(store) == {("A", "X"): (5, 0)}


def test_a_failed_transaction_leaves_nothing_behind(store):
    stocked(store, ("A", "X", 5))
    with pytest.raises(RuntimeError):
        with store.write() as conn:
            store.set_on_hand(conn, [("A", "X", 50), ("B", "X", 7)], "wms")
            store.reserve(conn, "O-1", "A", "X", 20, DAY)
            store.save_order(conn, "O-1", {"id": "O-1"}, "routed", {"status": "routed"}, None)
            store.put_document(conn, "network", {"nodes": []}, "ops")
            raise RuntimeError("the power went out")
    assert levels(store) == {("A", "X"): (5, 0)}
    assert reservations(store, "O-1") == []
    assert store.query("SELECT COUNT(*) AS n FROM orders")[0]["n"] == 0
    assert store.document("network") is None
    assert [a[1] for a in audit(store)] == ["put stock"]        # only the first, committed, count

    # a refusal half-way through a batch: the good rows before it are not written either
    with store.write() as conn:
        store.reserve(conn, "O-2", "A", "X", 4, DAY)
    with pytest.raises(Conflict) as refused:
        with store.write() as conn:
            store.set_on_hand(conn, [("B", "X", 9), ("A", "X", 3)], "wms")
    assert refused.value.details == [{"loc": "1.on_hand", "msg": str(refused.value)}]
    assert levels(store) == {("A", "X"): (5, 4)}
    assert len(audit(store)) == 1
    # the connection is usable afterwards (no transaction left open)
    assert not store.conn.in_transaction
    stocked(store, ("A", "X", 4))
    assert levels(store) == {("A", "X"): (4, 4)}


def test_two_connections_take_turns_and_never_over_reserve(tmp_path):
    """Two Store objects on one file stand in for two worker processes."""
    path = tmp_path / "steve.db"
    first, second = Store(path), Store(path)
    try:
        stocked(first, ("A", "X", 5))
        outcome = {}

        def other_worker():
            try:
                with second.write() as conn:          # waits for the first writer's BEGIN IMMEDIATE
                    second.reserve(conn, "O-2", "A", "X", 3, DAY)
                outcome["second"] = "reserved"
            except Conflict as error:
                outcome["second"] = str(error)

        with first.write() as conn:
            first.reserve(conn, "O-1", "A", "X", 3, DAY)
            thread = threading.Thread(target=other_worker)
            thread.start()
            thread.join(0.3)
            assert thread.is_alive(), "the second writer should wait for the first"
        thread.join(10)
        assert not thread.is_alive()
        assert "fewer than 3 units" in outcome["second"]
        assert levels(second) == {("A", "X"): (5, 3)}
    finally:
        first.close()
        second.close()


def test_set_on_hand_refuses_counts_below_reserved(store):
    stocked(store, ("A", "X", 5))
    with store.write() as conn:
        store.reserve(conn, "O-1", "A", "X", 3, DAY)
    with pytest.raises(Conflict, match="below the 3 units reserved"):
        with store.write() as conn:
            store.set_on_hand(conn, [("A", "X", 2)], "wms")
    with store.write() as conn:
        changed = store.set_on_hand(conn, [("A", "X", 3), ("C", "Z", 1)], "wms")
    assert changed == [{"node": "A", "sku": "X", "on_hand": 3, "was": 5},
                       {"node": "C", "sku": "Z", "on_hand": 1, "was": None}]
    assert levels(store) == {("A", "X"): (3, 3), ("C", "Z"): (1, 0)}


# ---- adjustments -------------------------------------------------------------------------------

def test_adjustments_apply_once_per_event(store):
    stocked(store, ("A", "X", 5))
    body = {"event_id": "e-1", "adjustments": [{"node": "A", "sku": "X", "delta": 3},
                                               {"node": "B", "sku": "X", "delta": 2}]}
    with store.write() as conn:
        result, duplicate = store.adjust(conn, "e-1", body, [("A", "X", 3), ("B", "X", 2)], "wms")
    assert duplicate is False
    assert result == {"event_id": "e-1", "applied": [{"node": "A", "sku": "X", "on_hand": 8, "delta": 3},
                                                     {"node": "B", "sku": "X", "on_hand": 2, "delta": 2}],
                      "rerouted": []}
    same = json.loads(json.dumps(body))
    with store.write() as conn:
        again, duplicate = store.adjust(conn, "e-1", same, [("A", "X", 3), ("B", "X", 2)], "wms")
    assert duplicate is True and json.dumps(again) == json.dumps(result)       # the same keys, in the same order
    with store.write() as conn:       # the held orders it let through, known after the change committed
        store.set_event_result(conn, "e-1", dict(result, rerouted=["O-7"]))
        again, _ = store.adjust(conn, "e-1", same, [("A", "X", 3), ("B", "X", 2)], "wms")
    assert json.dumps(again) == json.dumps(dict(result, rerouted=["O-7"]))
    assert levels(store) == {("A", "X"): (8, 0), ("B", "X"): (2, 0)}

    with pytest.raises(Conflict, match="different content") as conflict:
        with store.write() as conn:
            store.adjust(conn, "e-1", {"event_id": "e-1", "node": "A", "sku": "X", "delta": 1},
                         [("A", "X", 1)], "wms")
    assert conflict.value.details[0]["loc"] == "event_id"
    assert levels(store) == {("A", "X"): (8, 0), ("B", "X"): (2, 0)}


def test_adjustments_never_go_below_zero_or_below_reserved(store):
    stocked(store, ("A", "X", 5))
    with store.write() as conn:
        store.reserve(conn, "O-1", "A", "X", 4, DAY)
    single = {"event_id": "e-2", "node": "A", "sku": "X", "delta": -2}
    with pytest.raises(Conflict, match="below the 4 units reserved") as below:
        with store.write() as conn:
            store.adjust(conn, "e-2", single, [("A", "X", -2)], "wms")
    assert below.value.details[0]["loc"] == "delta"
    batch = {"event_id": "e-3", "adjustments": [{"node": "B", "sku": "X", "delta": 5},
                                                {"node": "A", "sku": "X", "delta": -9}]}
    with pytest.raises(Conflict, match="would leave -4 on hand") as negative:
        with store.write() as conn:
            store.adjust(conn, "e-3", batch, [("B", "X", 5), ("A", "X", -9)], "wms")
    assert negative.value.details[0]["loc"] == "adjustments.1.delta"
    assert levels(store) == {("A", "X"): (5, 4)}
    assert store.query("SELECT COUNT(*) AS n FROM stock_events")[0]["n"] == 0    # the events can be re-sent
    with store.write() as conn:
        _, duplicate = store.adjust(conn, "e-2", {**single, "delta": -1}, [("A", "X", -1)], "wms")
    assert duplicate is False
    assert levels(store) == {("A", "X"): (4, 4)}


# ---- audit -------------------------------------------------------------------------------------

def test_stock_network_and_playbook_changes_are_audited(store):
    with store.write() as conn:
        assert store.put_document(conn, "network", {"nodes": [], "carriers": []}, "ops") == 1
        assert store.put_document(conn, "network", {"nodes": [], "carriers": [{}]}, "ops") == 2
        store.put_document(conn, "catalog", {"items": []}, "merch")
        store.set_on_hand(conn, [("A", "X", 5), ("B", "X", 1)], "wms")
        store.adjust(conn, "e-1", {"event_id": "e-1"}, [("A", "X", 1)], "pos")
        store.add_playbook(conn, "sha256:1", "One", "text one", "ana")
        store.add_playbook(conn, "sha256:2", "Two", "text two", "ben")
        store.activate(conn, "sha256:1", "ana")
        store.set_shadow(conn, "sha256:2", True, "ben")
        store.set_shadow(conn, "sha256:2", False, "ben")
        store.activate(conn, "sha256:2", "ben")
        store.audit(conn, "ops", "cancel order", "O-1", {"lines": []})
    assert audit(store) == [
        ("ops", "put network", "network", {"revision": 1}),
        ("ops", "put network", "network", {"revision": 2}),
        ("merch", "put catalog", "catalog", {"revision": 1}),
        ("wms", "put stock", None, {"rows": 2}),
        ("pos", "adjust stock", "e-1", {"rows": 1}),
        ("ana", "add playbook", "sha256:1", {"name": "One"}),
        ("ben", "add playbook", "sha256:2", {"name": "Two"}),
        ("ana", "activate playbook", "sha256:1", None),
        ("ben", "shadow playbook", "sha256:2", None),
        ("ben", "stop shadow", "sha256:2", None),
        ("ben", "activate playbook", "sha256:2", None),
        ("ops", "cancel order", "O-1", {"lines": []}),
    ]
    assert all(r["at"] for r in store.query("SELECT at FROM audit"))
    # a repeated playbook or adjustment is not audited twice
    with store.write() as conn:
        assert store.add_playbook(conn, "sha256:1", "One", "text one", "eve") is False
        assert store.adjust(conn, "e-1", {"event_id": "e-1"}, [("A", "X", 1)], "pos")[1] is True
    assert len(audit(store)) == 12


# ---- documents, orders, playbooks ------------------------------------------------------------------

def test_documents_and_revisions(store):
    assert store.is_empty()
    assert store.revisions() == (0, 0, None, ())
    with store.write() as conn:
        store.put_document(conn, "network", {"nodes": [1]}, None)
        store.put_document(conn, "catalog", {"items": [2]}, None)
        store.put_document(conn, "catalog", {"items": [3]}, None)
    assert not store.is_empty()
    assert store.document("catalog") == {"items": [3]}
    assert store.revisions() == (1, 2, None, ())


def test_orders_are_stored_with_their_decision_and_kept_in_arrival_order(store):
    body = {"id": "O-1", "lines": [{"sku": "X", "qty": 1}]}
    with store.write() as conn:
        store.save_order(conn, "O-1", body, "held", {"status": "held", "reason": "short"}, "sha256:1")
        store.save_order(conn, "O-2", {"id": "O-2"}, "routed", {"status": "routed"}, "sha256:1")
        store.save_order(conn, "O-3", {"id": "O-3"}, "held", {"status": "held"}, "sha256:1")
    with store.read() as conn:
        row = store.order_row(conn, "O-1")
        assert store.order_row(conn, "O-9") is None
        assert [h["id"] for h in store.held_orders(conn)] == ["O-1", "O-3"]
    assert row["state"] == "held" and json.loads(row["decision"])["reason"] == "short"
    assert row["body_hash"] == digest(body) and json.loads(row["body"]) == body
    assert store.order_counts() == {"held": 2, "routed": 1}

    with store.write() as conn:       # re-routed: same row, same place in line, new decision
        store.save_order(conn, "O-1", body, "routed", {"status": "routed"}, "sha256:2")
        store.set_order_state(conn, "O-2", "cancelled")
    with store.read() as conn:
        again = store.order_row(conn, "O-1")
        assert [h["id"] for h in store.held_orders(conn)] == ["O-3"]
    assert again["seq"] == row["seq"] and again["created_at"] == row["created_at"]
    assert again["state"] == "routed" and again["playbook_version"] == "sha256:2"
    assert store.order_counts() == {"held": 1, "routed": 1, "cancelled": 1}


def test_a_stored_decision_keeps_its_key_order(store):
    """Decisions are stored as they were made, not with sorted keys: a repeat
    of the order answers with the first answer's bytes."""
    decision = {"order_id": "O-1", "status": "routed", "shipments": [{"node": "B", "carrier": "C", "cost": 1.5}],
                "cost": 1.5, "nodes": {"Z": "not chosen", "A": "not chosen"}}
    with store.write() as conn:
        store.save_order(conn, "O-1", {"id": "O-1"}, "routed", decision, None)
        row = store.order_row(conn, "O-1")
    assert row["decision"] == ('{"order_id":"O-1","status":"routed","shipments":[{"node":"B","carrier":"C",'
                               '"cost":1.5}],"cost":1.5,"nodes":{"Z":"not chosen","A":"not chosen"}}')
    assert row["body"] == canonical({"id": "O-1"})          # what a retry is compared with stays canonical


def test_one_active_playbook_and_shadows(store):
    with store.write() as conn:
        assert store.add_playbook(conn, "sha256:1", "One", "text one", "ana") is True
        assert store.add_playbook(conn, "sha256:2", "Two", "text two", "ana") is True
        store.activate(conn, "sha256:1", "ana")
        store.set_shadow(conn, "sha256:2", True, "ana")
    assert store.revisions()[2:] == ("sha256:1", ("sha256:2",))
    with pytest.raises(Conflict, match="active playbook"):
        with store.write() as conn:
            store.set_shadow(conn, "sha256:1", True, "ana")
    for call in (lambda conn: store.activate(conn, "sha256:9", "ana"),
                 lambda conn: store.set_shadow(conn, "sha256:9", True, "ana")):
        with pytest.raises(NotFound):
            with store.write() as conn:
                call(conn)
    with store.write() as conn:       # activating a shadowed version ends its shadow run
        store.activate(conn, "sha256:2", "ana")
    assert store.revisions()[2:] == ("sha256:2", ())
    assert [r["version"] for r in store.query("SELECT version FROM playbooks WHERE active = 1")] == ["sha256:2"]
    assert store.playbook("sha256:1")["text"] == "text one"
    assert store.playbook("sha256:9") is None


def test_canonical_json_ignores_key_order():
    assert canonical({"b": 1, "a": [1, {"d": 2, "c": 3}]}) == '{"a":[1,{"c":3,"d":2}],"b":1}'
    assert digest({"a": 1, "b": 2}) == digest({"b": 2, "a": 1})
    assert digest({"a": 1}) != digest({"a": 2})
