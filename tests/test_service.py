"""server.service on a real SQLite file loaded with the demo: rules that
protect what is live (network changes, availability), and orders routed
early (before the write lock) that keep that decision or are routed again."""

from __future__ import annotations

import datetime as dt
import json
import threading

import pytest

import dsl
import engine
from engine.models import Catalog, Network, Order
from engine.stock import Stock
from server.demo import demo_file, load_demo
from server.service import Service, _prepared
from server.store import Conflict, Store


@pytest.fixture()
def service(tmp_path):
    store = Store(tmp_path / "steve.db")
    load_demo(store)
    yield Service(store)
    store.close()


def demo_network(drop: str | None = None) -> Network:
    body = json.loads(demo_file("network.json"))
    body["nodes"] = [n for n in body["nodes"] if n["id"] != drop]
    return Network.model_validate(body)


ORDER = {"id": "SVC-1", "created_at": "2026-11-26T09:30:00-05:00",
         "ship_to": {"country": "US", "state": "GA", "lat": 33.7537, "lon": -84.3863},
         "lines": [{"sku": "BOTTLE-1L", "qty": 2}]}


def test_a_node_with_reserved_units_cannot_be_dropped(service):
    decision, created = service.place(ORDER)
    assert created and decision["shipments"][0]["node"] == "GA-DC"
    with pytest.raises(Conflict) as refused:
        service.put_network(demo_network(drop="GA-DC"), "test")
    assert refused.value.details == [{
        "loc": "nodes", "msg": "node GA-DC has 2 unit(s) reserved for open orders (SVC-1); ship or cancel "
                               "them before removing it"}]
    assert "GA-DC" in [n["id"] for n in service.get_document("network")["nodes"]]     # nothing written
    service.ship("SVC-1", "test")
    service.put_network(demo_network(drop="GA-DC"), "test")                  # now it may go
    assert "GA-DC" not in [n["id"] for n in service.get_document("network")["nodes"]]


def test_an_item_with_reserved_units_cannot_be_dropped(service):
    decision, created = service.place(ORDER)
    assert created and decision["status"] == "routed"
    catalog = json.loads(demo_file("catalog.json"))
    without = Catalog.model_validate({**catalog, "items": [i for i in catalog["items"] if i["sku"] != "BOTTLE-1L"]})
    with pytest.raises(Conflict) as refused:
        service.put_catalog(without, "test")
    message = ("item BOTTLE-1L has 2 unit(s) reserved for open orders (SVC-1); ship or cancel them before "
               "removing it")
    assert str(refused.value) == f"the new catalog does not fit what is live: {message}"
    assert refused.value.details == [{"loc": "items", "msg": message}]
    assert "BOTTLE-1L" in [i["sku"] for i in service.get_document("catalog")["items"]]     # nothing written
    # an item that only stock rows name may go (as a node may): its rows stay where they are
    lamps = Catalog.model_validate({**catalog, "items": [i for i in catalog["items"] if i["sku"] != "HEADLAMP"]})
    assert service.put_catalog(lamps, "test")["items"] == len(catalog["items"]) - 1
    service.cancel("SVC-1", "test")
    service.put_catalog(without, "test")                                      # now it may go
    assert "BOTTLE-1L" not in [i["sku"] for i in service.get_document("catalog")["items"]]


def test_a_node_the_live_playbook_names_cannot_be_dropped(service):
    with pytest.raises(Conflict) as refused:
        service.put_network(demo_network(drop="BOS-STORE"), "test")
    assert refused.value.details == [{"loc": "playbook line 11",
                                      "msg": 'the active playbook: unknown node "BOS-STORE"; did you mean "MSP-STORE"?'}]
    service.put_network(demo_network(drop="MSP-STORE"), "test")             # not named: fine


def test_a_stored_version_that_names_a_dropped_node_cannot_be_activated(service):
    demo_version = service.store.query("SELECT version FROM playbooks WHERE active = 1")[0]["version"]
    plain, _ = service.add_playbook('playbook "Plain"\n', "test")
    service.activate(plain["version"], "test")
    service.put_network(demo_network(drop="BOS-STORE"), "test")     # the live playbook does not name it
    with pytest.raises(Conflict) as refused:
        service.activate(demo_version, "test")
    unknown = 'unknown node "BOS-STORE"; did you mean "MSP-STORE"?'
    assert refused.value.details == [{"loc": "playbook line 11", "msg": unknown}]
    assert str(refused.value) == f"playbook {demo_version} does not fit the network: {unknown}"
    active = service.store.query("SELECT version FROM playbooks WHERE active = 1")
    assert [row["version"] for row in active] == [plain["version"]]     # nothing changed


def test_a_stored_version_that_names_a_dropped_node_cannot_start_a_shadow_run(service):
    demo_version = service.store.query("SELECT version FROM playbooks WHERE active = 1")[0]["version"]
    plain, _ = service.add_playbook('playbook "Plain"\n', "test")
    service.activate(plain["version"], "test")
    service.put_network(demo_network(drop="BOS-STORE"), "test")
    with pytest.raises(Conflict) as refused:
        service.shadow(demo_version, True, "test")
    assert refused.value.details == [{"loc": "playbook line 11",
                                      "msg": 'unknown node "BOS-STORE"; did you mean "MSP-STORE"?'}]
    assert service.store.query("SELECT version FROM playbooks WHERE shadow = 1") == []     # nothing changed
    assert service.shadow(demo_version, False, "test") == {"version": demo_version, "shadow": False}


def test_a_network_that_drops_a_node_a_shadow_run_names_is_refused(service):
    demo_version = service.store.query("SELECT version FROM playbooks WHERE active = 1")[0]["version"]
    plain, _ = service.add_playbook('playbook "Plain"\n', "test")
    service.activate(plain["version"], "test")
    service.shadow(demo_version, True, "test")
    with pytest.raises(Conflict) as refused:
        service.put_network(demo_network(drop="BOS-STORE"), "test")
    assert refused.value.details == [{
        "loc": "playbook line 11",
        "msg": f'shadow version {demo_version} (stop its run first): unknown node "BOS-STORE"; '
               'did you mean "MSP-STORE"?'}]
    service.shadow(demo_version, False, "test")                 # stopped: the network may drop it
    service.put_network(demo_network(drop="BOS-STORE"), "test")


def test_a_network_in_another_currency_is_warned_about(service):
    # Steve does not convert amounts: a playbook in euros on a dollar network is told so,
    # as a warning (a network that leaves out `currency` means USD); nothing is refused
    _, diagnostics = service.check_playbook('playbook "Euro"\ncurrency "EUR"\n')
    assert [(d.line, d.column, d.severity, d.message) for d in diagnostics] == [
        (2, 10, "warning", "the playbook's currency is EUR, but the network's currency is USD: Steve does "
                           "not convert amounts, so write them in USD")]
    service.put_network(demo_network().model_copy(update={"currency": "EUR"}), "test")


def test_availability_leaves_out_stock_no_rule_lets_ship(service):
    tents = service.availability("TENT-2P")
    assert "SAV-INBOUND" not in tents["nodes"]
    assert tents["not_usable"] == {"SAV-INBOUND": {
        "units": 200, "why": "in-transit stock: no rule allows it for this item on every order"}}
    assert tents["total"] == sum(tents["nodes"].values()) == 95
    kayaks = service.availability("KAYAK-SOLO")           # "Kayaks ship from the maker" allows vendors
    assert kayaks["nodes"] == {"KAYAK-MAKER": 40} and kayaks["not_usable"] == {}


def test_availability_lists_units_at_nodes_that_do_not_ship(service):
    """A pickup-only node's units go only to orders collected there: not in
    the total that any order can be promised, but listed as not usable, with
    why (as vendors and in-transit stock are)."""
    network = json.loads(demo_file("network.json"))
    boston = next(n for n in network["nodes"] if n["id"] == "BOS-STORE")
    network["nodes"] += [dict(boston, id="BOS-LOCKER", name="Boston pickup lockers", ships=False, pickup=True),
                         dict(boston, id="BOS-CAGE", name="Boston returns cage", ships=False, pickup=False)]
    service.put_network(Network.model_validate(network), "test")
    service.put_stock([{"node": "BOS-LOCKER", "sku": "HEADLAMP", "on_hand": 6},
                       {"node": "BOS-CAGE", "sku": "HEADLAMP", "on_hand": 2}], "test")
    before = service.availability("HEADLAMP")
    assert "BOS-LOCKER" not in before["nodes"] and "BOS-CAGE" not in before["nodes"]
    assert before["not_usable"] == {"BOS-CAGE": {"units": 2, "why": "does not ship orders nor offer pickup"},
                                    "BOS-LOCKER": {"units": 6, "why": "does not ship orders (pickup only)"}}
    assert before["total"] == sum(before["nodes"].values())
    # a pickup order there takes them; what is left is still listed
    decision, _ = service.place({**order("PICK-1", ("HEADLAMP", 4)), "delivery": "pickup",
                                 "pickup_node": "BOS-LOCKER"})
    assert decision["status"] == "routed" and decision["shipments"][0]["node"] == "BOS-LOCKER"
    after = service.availability("HEADLAMP")
    assert after["not_usable"]["BOS-LOCKER"] == {"units": 2, "why": "does not ship orders (pickup only)"}
    assert after["nodes"] == before["nodes"] and after["total"] == before["total"]


# ---- orders routed early: kept or routed again -------------------------------------------------
# Service.place routes each order on a snapshot before queueing for the write
# lock, and keeps that decision under the lock only when engine.decides_alike
# says the stock it read has not changed in a way that matters; otherwise the
# order is routed again there, and on_early is told which. The interleavings
# are forced by calling the two halves of place in turn: _route_early (before
# the lock) and _place_batch (under it), with another write in between.

BUSY_STORES = ('\nrule "Busy stores ship last"\n  when node.kind is store and node.load > 85%\n'
               '  then exclude node because "the store is busy today"\n')


@pytest.fixture()
def outcomes(service) -> list[str]:
    """Early routing on (as in a server unless STEVE_EARLY_ROUTING=0), and what the
    service tells on_early, in order."""
    told: list[str] = []
    service.early_routing = True
    service.on_early = told.append
    return told


def test_early_routing_is_off_unless_asked(service):
    assert service.early_routing is False
    assert service._route_early(Order.model_validate(order("OFF-1", ("JKT-DOWN-L", 1)))) is None


def order(order_id: str, *lines: tuple[str, int]) -> dict:
    """An order shipping to Boston on a plain Wednesday."""
    return {"id": order_id, "created_at": "2026-11-25T09:30:00-05:00",
            "customer": {"id": "C-E", "tier": "regular"},
            "ship_to": {"country": "US", "state": "MA", "zip": "02108"},
            "lines": [{"sku": sku, "qty": qty} for sku, qty in lines]}


def add_items(service: Service, stock: dict[str, dict[str, int]]) -> None:
    """Test items of their own (sku -> node -> units), in the catalog and stocked."""
    catalog = json.loads(demo_file("catalog.json"))
    catalog["items"] += [{"sku": sku, "name": f"Test item {sku}", "weight": 1.0, "price": 60.0, "margin": 0.3,
                          "category": "test"} for sku in stock]
    service.put_catalog(Catalog.model_validate(catalog), "test")
    service.put_stock([{"node": node, "sku": sku, "on_hand": units}
                       for sku, nodes in stock.items() for node, units in nodes.items()], "test")


def route_now(service: Service, body: dict) -> dict:
    """What engine.route decides for the order on what the database holds
    now: its tables read here, not through the service."""
    conn = service.store.conn
    view = Stock()
    for node, sku, on_hand, reserved in conn.execute("SELECT node, sku, on_hand, reserved FROM stock"):
        view.levels[(node, sku)] = [on_hand, reserved]
    today = dt.datetime.now(dt.timezone.utc).date().isoformat()
    view.used_today.update(conn.execute("SELECT node, SUM(qty) FROM reservations WHERE state = 'active' "
                                        "AND day = ? GROUP BY node", (today,)).fetchall())
    text = conn.execute("SELECT text FROM playbooks WHERE active = 1").fetchone()[0]
    network, catalog = (service.store.document(name) for name in ("network", "catalog"))
    return engine.route(dsl.compile(text, "playbook"), Network.model_validate(network),
                        Catalog.model_validate(catalog), view, body).to_json()


def place_late(service: Service, body: dict, early) -> dict:
    """The write half of Service.place for an order routed early."""
    [(result, error)] = service._place_batch([(*_prepared(body), early)])
    assert error is None, error
    decision, created = result
    assert created
    return decision


def nodes_of(decision: dict) -> list[str]:
    return [s["node"] for s in decision["shipments"]]


def assert_reserved_once(service: Service) -> None:
    """Every reserved unit belongs to one active reservation, and no count
    goes over what is on hand."""
    conn = service.store.conn
    rows = conn.execute(
        "SELECT s.node, s.sku, s.on_hand, s.reserved, COALESCE(r.q, 0) FROM stock s LEFT JOIN "
        "(SELECT node, sku, SUM(qty) AS q FROM reservations WHERE state = 'active' GROUP BY node, sku) r "
        "ON r.node = s.node AND r.sku = s.sku").fetchall()
    assert [row for row in rows if row[3] != row[4] or row[3] > row[2]] == []
    stored = conn.execute("SELECT COALESCE(SUM(qty), 0) FROM reservations WHERE state = 'active'").fetchone()[0]
    shipped = sum(line["qty"] for (document,) in conn.execute("SELECT decision FROM orders WHERE state = 'routed'")
                  for s in json.loads(document)["shipments"] for line in s["lines"])
    assert stored == shipped


def test_orders_placed_one_at_a_time_keep_their_early_decision(service, outcomes):
    bodies = [order("K-1", ("JKT-RAIN-M", 1)), order("K-2", ("SOCK-MERINO", 3), ("CAP-TRAIL", 2)),
              order("K-3", ("JKT-RAIN-M", 2)), order("K-4", ("TENT-2P", 1)),
              order("K-5", ("JKT-DOWN-L", 500))]            # more than there is: held, early as well
    decisions = []
    for body in bodies:
        decision, created = service.place(body)
        assert created
        decisions.append(decision)
    assert [d["status"] for d in decisions] == ["routed"] * 4 + ["held"]
    assert outcomes == ["kept"] * len(bodies)
    # a retry is answered from the stored order: nothing is routed early for it
    again, created = service.place(bodies[0])
    assert not created and again == decisions[0]
    assert outcomes == ["kept"] * len(bodies)
    assert_reserved_once(service)


@pytest.mark.parametrize("meanwhile", ["another order", "a stock count"])
def test_an_early_decision_on_stock_that_changed_is_routed_again(service, outcomes, meanwhile):
    add_items(service, {"T-LAST": {"PA-DC": 1, "GA-DC": 5}})
    body = order("R-1", ("T-LAST", 1))
    early = service._route_early(Order.model_validate(body))
    assert nodes_of(early.decision.to_json()) == ["PA-DC"]
    if meanwhile == "another order":                    # routed and placed in between: PA-DC's last unit
        assert nodes_of(service.place(order("R-0", ("T-LAST", 1)))[0]) == ["PA-DC"]
        assert outcomes == ["kept"]
    else:                                               # counted in between: PA-DC has none
        service.put_stock([{"node": "PA-DC", "sku": "T-LAST", "on_hand": 0}], "test")
        assert outcomes == []
    fresh = route_now(service, body)
    assert nodes_of(fresh) == ["GA-DC"] and fresh != early.decision.to_json()
    stored = place_late(service, body, early)
    assert outcomes[-1] == "routed_again"
    assert stored == fresh
    placed = service.order("R-1")
    assert {k: v for k, v in placed.items() if k not in ("state", "reservations")} == fresh
    assert placed["reservations"] == [{"node": "GA-DC", "sku": "T-LAST", "qty": 1, "state": "active"}]
    assert_reserved_once(service)


def test_an_early_decision_survives_changes_that_do_not_matter(service, outcomes):
    add_items(service, {"T-LAST": {"PA-DC": 1, "GA-DC": 5}, "T-OTHER": {"PA-DC": 50}})
    body = order("S-1", ("T-LAST", 1))
    early = service._route_early(Order.model_validate(body))
    # another item reserved at the same node (which also adds to its load today), and a count of it
    assert nodes_of(service.place(order("S-0", ("T-OTHER", 7)))[0]) == ["PA-DC"]
    service.put_stock([{"node": "PA-DC", "sku": "T-OTHER", "on_hand": 60}], "test")
    fresh = route_now(service, body)
    stored = place_late(service, body, early)
    assert outcomes == ["kept", "kept"]
    assert stored == fresh == early.decision.to_json()
    assert nodes_of(stored) == ["PA-DC"]
    assert_reserved_once(service)


@pytest.mark.parametrize("filler, outcome, node", [(5, "kept", "BOS-STORE"), (10, "routed_again", "KC-DC")])
def test_units_promised_at_a_busy_store_count_only_past_the_playbooks_threshold(service, outcomes, filler,
                                                                                  outcome, node):
    """With a playbook that excludes stores over 85% of today's capacity:
    BOS-STORE (80 units a day) is at 75% when the order is routed early;
    5 more units promised there (81%) leave the decision as it was, 10 more
    (88%) take the store out."""
    version = service.add_playbook(demo_file("demo.playbook") + BUSY_STORES, "test")[0]["version"]
    service.activate(version, "test")
    add_items(service, {"T-NEAR": {"BOS-STORE": 20, "KC-DC": 20}, "T-FILL": {"BOS-STORE": 200}})
    assert nodes_of(service.place(order("B-0", ("T-FILL", 60)))[0]) == ["BOS-STORE"]
    body = order("B-1", ("T-NEAR", 1))
    early = service._route_early(Order.model_validate(body))
    assert nodes_of(early.decision.to_json()) == ["BOS-STORE"]
    assert nodes_of(service.place(order("B-2", ("T-FILL", filler)))[0]) == ["BOS-STORE"]
    fresh = route_now(service, body)
    stored = place_late(service, body, early)
    assert outcomes == ["kept", "kept", outcome]
    assert stored == fresh and nodes_of(stored) == [node]
    assert stored["playbook"]["version"] == version
    assert_reserved_once(service)


def test_orders_placed_at_once_are_each_routed_early_and_reserved_once(service, outcomes):
    add_items(service, {"T-SCARCE": {"PA-DC": 3, "KC-DC": 5}})
    answers: dict[str, dict] = {}
    errors: list[Exception] = []

    def place(number: int) -> None:
        try:
            answers[f"C-{number}"] = service.place(order(f"C-{number}", ("T-SCARCE", 1)))[0]
        except Exception as error:          # a kept decision that no longer fits: a Conflict
            errors.append(error)

    threads = [threading.Thread(target=place, args=(number,)) for number in range(12)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert errors == [] and len(answers) == 12
    assert sorted(d["status"] for d in answers.values()) == ["held"] * 4 + ["routed"] * 8
    assert len(outcomes) == 12 and set(outcomes) <= {"kept", "routed_again"}
    for order_id, decision in answers.items():
        assert service.order(order_id)["status"] == decision["status"]
    assert_reserved_once(service)
    assert service.availability("T-SCARCE")["total"] == 0


def test_an_order_that_ran_out_of_time_early_is_decided_again_under_the_lock(service, outcomes, monkeypatch):
    from engine import limits
    monkeypatch.setattr(limits, "TIME_LIMIT", 1e-9)
    assert service._route_early(Order.model_validate(order("SLOW-1", ("JKT-DOWN-L", 1)))) is None
    monkeypatch.setattr(limits, "TIME_LIMIT", 2.0)
    assert service._route_early(Order.model_validate(order("SLOW-1", ("JKT-DOWN-L", 1)))) is not None


def test_a_retry_with_the_same_meaning_is_the_same_order(service):
    first, created = service.place(ORDER)
    assert created
    # nulls and defaults spelled out, key order, 2 vs 2.0, whitespace, a key Steve ignores
    same = {"note": "ignored", "pickup_node": None, "delivery": "ship", "tags": [], "customer": {},
            **{k: ORDER[k] for k in reversed(list(ORDER))},
            "id": " SVC-1 ", "lines": [{"sku": "BOTTLE-1L", "qty": 2.0, "price": None}]}
    assert service.place(same) == (first, False)
    with pytest.raises(Conflict, match="already placed with different content"):
        service.place(dict(ORDER, lines=[{"sku": "BOTTLE-1L", "qty": 3}]))
    with pytest.raises(Conflict, match="already placed with different content"):
        service.place({k: v for k, v in ORDER.items() if k != "created_at"})


def test_orders_stored_with_the_hash_of_the_body_as_sent_still_match_their_retries(service):
    # a row written before order_key: body_hash is the digest of the JSON as it was sent
    from server.store import digest
    order, _, stored, _ = _prepared(ORDER)
    with service.store.write() as conn:
        service.store.save_order(conn, order.id, stored, "held", {"status": "held"}, None, digest(ORDER),
                                 body_written=True)
    assert service.place(ORDER) == ({"status": "held"}, False)
    with pytest.raises(Conflict):        # such a row matches a retry sent to the letter, not one spelled otherwise
        service.place(dict(ORDER, pickup_node=None))


def test_orders_placed_never_take_a_node_past_its_capacity_today(service):
    # GA-DC may ship 5 units today; the orders placed count against it as they are reserved
    body = json.loads(demo_file("network.json"))
    for node in body["nodes"]:
        if node["id"] == "GA-DC":
            node["capacity"] = 5
    service.put_network(Network.model_validate(body), "test")
    first, _ = service.place(ORDER)                                        # 2 bottles from GA-DC
    assert [s["node"] for s in first["shipments"]] == ["GA-DC"]
    second, _ = service.place({**ORDER, "id": "SVC-2", "lines": [{"sku": "BOTTLE-1L", "qty": 4}]})
    from_ga = sum(line["qty"] for s in second["shipments"] if s["node"] == "GA-DC" for line in s["lines"])
    assert second["status"] == "routed" and from_ga <= 3
    assert sum(line["qty"] for s in second["shipments"] for line in s["lines"]) == 4
    if from_ga == 0:
        assert second["nodes"]["GA-DC"].endswith("; it can ship 3 more units today (capacity)")
    today = service.store.conn.execute("SELECT units FROM day_units WHERE node = 'GA-DC'").fetchone()[0]
    assert today <= 5


def test_an_order_whose_early_routing_fails_fails_alone(service, outcomes, monkeypatch):
    """The batch's leader routes all of the batch's orders before the write
    lock, outside their savepoints: an exception from one order's early
    routing is that order's alone (it is routed again under the lock and
    fails there), not the whole batch's."""
    real = engine.route

    def route(rulebook, network, catalog, stock, body, **options):
        if (body.id if isinstance(body, Order) else body["id"]) == "BAD-1":
            raise RuntimeError("a bug in the engine")
        return real(rulebook, network, catalog, stock, body, **options)

    monkeypatch.setattr(engine, "route", route)
    good, bad = order("GOOD-1", ("JKT-RAIN-M", 1)), order("BAD-1", ("JKT-RAIN-M", 1))
    [(bad_result, bad_error), (good_result, good_error)] = service._place_batch(
        [(*_prepared(bad), None), (*_prepared(good), None)])
    assert isinstance(bad_error, RuntimeError) and bad_result is None
    assert good_error is None and good_result[1] and good_result[0]["status"] == "routed"
    assert outcomes == ["kept"]
    assert_reserved_once(service)


def test_a_stored_version_the_checker_now_refuses_still_loads(service):
    """A version stored and made live when it checked clean keeps loading
    after the checker grew stricter (a negative surcharge is refused since
    05c4944): otherwise the server cannot start (warm) nor place an order."""
    text = ('playbook "Old"\n\nrule "Cheaper on Tuesdays"\n  when today is tuesday\n'
            '  then surcharge carrier "GROUNDLINE" by -$2\n')
    assert [d.severity for d in dsl.check(text)] == ["error"]
    version = dsl.version_of(text)
    with service.store.write() as conn:             # as an older Steve stored it
        service.store.add_playbook(conn, version, "Old", text, "test", "test")
        service.store.activate(conn, version, "test")
    service.warm()
    decision, created = service.place(order("OLD-1", ("JKT-RAIN-M", 1)))
    assert created and decision["status"] == "routed" and decision["playbook"]["version"] == version
    # nor does it stop the network from changing, nor itself from being made live again
    service.put_network(demo_network(), "test")
    assert service.activate(version, "test") == {"active": version}
