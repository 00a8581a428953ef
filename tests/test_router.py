"""engine.route end to end: the seed contract's scenarios, the demo's own
scenarios, determinism, errors and holds."""

from __future__ import annotations

import copy
import json

import pytest

import dsl
import engine
from conftest import FIXTURES, SEED, read_jsonl

SEED_SCENARIOS = read_jsonl(SEED / "scenarios.jsonl")
DEMO_SCENARIOS = read_jsonl(FIXTURES / "demo_scenarios.jsonl")


def by_node(shipments):
    return sorted(shipments, key=lambda s: s["node"])


@pytest.mark.parametrize("scenario", SEED_SCENARIOS, ids=[s["name"] for s in SEED_SCENARIOS])
def test_seed_scenario(seed, scenario):
    decision = engine.route(seed.rulebook, seed.network, seed.catalog, seed.stock(), scenario["order"])
    got, want = decision.to_json(), scenario["expect"]
    assert got["status"] == want["status"], got
    assert [s["node"] for s in by_node(got["shipments"])] == \
        [s["node"] for s in by_node(want.get("shipments", []))]
    for mine, theirs in zip(by_node(got["shipments"]), by_node(want.get("shipments", []))):
        if "carrier" in theirs:
            assert mine["carrier"] == theirs["carrier"]
        if "cost" in theirs:
            assert mine["cost"] == pytest.approx(theirs["cost"], abs=0.01)
        if "days" in theirs:
            assert mine["days"] == theirs["days"]
    if "objective" in want:
        assert got["objective"] == want["objective"]
    for node, words in want.get("node_reasons_mention", {}).items():
        assert words in got["nodes"][node]
    for words in want.get("trace_mentions", []):
        assert any(words in entry["rule"] for entry in got["trace"])
    for tag in want.get("tags_include", []):
        assert tag in got["tags"]
    for words in want.get("error_mentions", []):
        assert any(words in e["msg"] or words in e["loc"] for e in got["errors"])


@pytest.mark.parametrize("scenario", DEMO_SCENARIOS, ids=[s["name"] for s in DEMO_SCENARIOS])
def test_demo_scenario(demo, scenario):
    decision = engine.route(demo.rulebook, demo.network, demo.catalog, demo.stock(), scenario["order"])
    got, want = decision.to_json(), scenario["expect"]
    assert got["status"] == want["status"], got
    shipments = [{k: s[k] for k in ("node", "carrier", "lines", "cost", "days")} for s in got["shipments"]]
    assert shipments == want.get("shipments", [])
    assert got["tags"] == want.get("tags", [])
    if "objective" in want:
        assert got["objective"] == want["objective"]
    for words in want.get("reason_mentions", []):
        assert words in got["reason"]
    assert [e["loc"] for e in got.get("errors", [])] == want.get("error_locs", [])


def test_denver_parka_explains_every_node(seed):
    order = SEED_SCENARIOS[0]["order"]
    got = engine.route(seed.rulebook, seed.network, seed.catalog, seed.stock(), order).to_json()
    assert got["nodes"]["DEN-STORE"] == ('excluded by rule "Protect store floor stock" (seed.playbook:15): '
                                         "keep the last units for walk-in customers")
    assert got["nodes"]["OH-DC"] == "not chosen: $2.01 more than TX-DC"
    # when the difference is not all freight, the reason says what it is made of
    assert got["nodes"]["CHI-HUB"] == ("not chosen: $17.53 more than TX-DC "
                                       "(shipping $2.53 more, rule penalties $15.00 more)")
    assert got["nodes"]["MIA-STORE"] == "shadow node (used only in what-if runs)"
    assert got["nodes"]["SEA-STORE"] == "no stock of PARKA-M-RED"
    assert got["nodes"]["GARAGE"].startswith('not chosen: avoided by rule "The garage is the last resort"')
    assert set(got["nodes"]) == {n.id for n in seed.network.nodes} - {"TX-DC"}
    entry = next(t for t in got["trace"] if t["node"] == "DEN-STORE")
    assert entry == {"rule": "Protect store floor stock", "file": "seed.playbook", "line": 15,
                     "order": "S1", "sku": "PARKA-M-RED", "node": "DEN-STORE",
                     "effect": "exclude node DEN-STORE: keep the last units for walk-in customers"}
    assert got["shipments"][0]["distance_km"] == 1068
    assert got["playbook"] == {"name": "Acme Outfitters", "version": seed.rulebook.version}


def test_same_inputs_same_bytes(seed):
    for scenario in SEED_SCENARIOS:
        first = engine.route(seed.rulebook, seed.network, seed.catalog, seed.stock(), scenario["order"]).dumps()
        again = engine.route(seed.rulebook, seed.network, seed.catalog, seed.stock(),
                             copy.deepcopy(scenario["order"])).dumps()
        assert first == again


def test_what_if_shadow_node_goes_live(seed):
    order = copy.deepcopy(SEED_SCENARIOS[1]["order"])      # tee to Miami
    live = engine.route(seed.rulebook, seed.network, seed.catalog, seed.stock(), order,
                        live_nodes=["MIA-STORE"]).to_json()
    assert [s["node"] for s in live["shipments"]] == ["MIA-STORE"]


@pytest.mark.parametrize("change, loc, words", [
    (lambda o: o["lines"][0].update(qty=-1), "lines.0.qty", "greater than or equal to 1"),
    (lambda o: o.update(lines=[]), "lines", "at least 1"),
    (lambda o: o.pop("id"), "id", "Field required"),
    (lambda o: o.update(delivery="drone"), "delivery", "'ship' or 'pickup'"),
    (lambda o: o["ship_to"].update(lat=None, lon=None, zip="00000", state=None), "ship_to", "not a known US ZIP"),
    (lambda o: o["ship_to"].update(lat=None, lon=None, zip=None, state="ZZ"), "ship_to", "not a US state"),
])
def test_bad_orders_are_errors_not_exceptions(seed, change, loc, words):
    order = copy.deepcopy(SEED_SCENARIOS[0]["order"])
    change(order)
    got = engine.route(seed.rulebook, seed.network, seed.catalog, seed.stock(), order).to_json()
    assert got["status"] == "error"
    assert any(e["loc"] == loc and words in e["msg"] for e in got["errors"]), got["errors"]


def test_a_bad_line_is_one_error_not_also_an_empty_order(seed):
    order = copy.deepcopy(SEED_SCENARIOS[0]["order"])
    order["lines"][0]["qty"] = 0
    got = engine.route(seed.rulebook, seed.network, seed.catalog, seed.stock(), order).to_json()
    assert got["errors"] == [{"loc": "lines.0.qty", "msg": "Input should be greater than or equal to 1"}]


def test_zip_or_state_centre_when_no_coordinates(seed):
    order = copy.deepcopy(SEED_SCENARIOS[0]["order"])
    order["ship_to"] = {"country": "US", "zip": "80202"}
    by_zip = engine.route(seed.rulebook, seed.network, seed.catalog, seed.stock(), order).to_json()
    assert by_zip["shipments"][0]["node"] == "TX-DC"
    assert by_zip["shipments"][0]["distance_km"] == pytest.approx(1068, abs=3)
    order["ship_to"] = {"country": "US", "state": "CO"}
    by_state = engine.route(seed.rulebook, seed.network, seed.catalog, seed.stock(), order).to_json()
    assert by_state["status"] == "routed"


def test_hold_rule(seed):
    rulebook = dsl.compile(seed.playbook_path.read_text() + '\nrule "Fraud check"\n  when order.total > $200\n'
                           '  then hold order because "large first order"\n', "seed.playbook")
    got = engine.route(rulebook, seed.network, seed.catalog, seed.stock(), SEED_SCENARIOS[0]["order"]).to_json()
    assert got["status"] == "held"
    assert got["reason"] == 'held by rule "Fraud check" (seed.playbook:66): large first order'
    assert got["shipments"] == []
    # every node gets a reason: its own when it could not ship anyway, else the hold
    held = "not used: the order is held"
    assert got["nodes"] == {
        "NJ-DC": held, "OH-DC": held, "TX-DC": held, "RENO-3PL": held, "CHI-HUB": held, "DEN-STORE": held,
        "PDX-STORE": held, "SEA-STORE": "no stock of PARKA-M-RED",
        "MIA-STORE": "shadow node (used only in what-if runs)", "GARAGE": held,
        "BOOTS-VENDOR": "no stock of PARKA-M-RED", "LB-INBOUND": "no stock of PARKA-M-RED"}
    assert list(got["nodes"]) == [n.id for n in seed.network.nodes]


def test_order_that_cannot_be_served_gives_every_node_a_reason(seed):
    # 600 parkas in one shipment: Dallas has 500, the most of any node
    rulebook = dsl.compile(seed.playbook_path.read_text().replace("max shipments 3", "max shipments 1"),
                           "seed.playbook")
    order = copy.deepcopy(SEED_SCENARIOS[0]["order"])
    order["lines"][0]["qty"] = 600
    got = engine.route(rulebook, seed.network, seed.catalog, seed.stock(), order).to_json()
    assert got["status"] == "held"
    assert got["reason"] == "cannot be served now: needs 2 shipments, at most 1 allowed"
    held = "not used: the order is held"
    assert got["nodes"] == {
        "NJ-DC": held, "OH-DC": held, "TX-DC": held, "RENO-3PL": held, "CHI-HUB": held,
        "DEN-STORE": 'excluded by rule "Protect store floor stock" (seed.playbook:15): '
                     'keep the last units for walk-in customers',
        "PDX-STORE": held, "SEA-STORE": "no stock of PARKA-M-RED",
        "MIA-STORE": "shadow node (used only in what-if runs)", "GARAGE": held,
        "BOOTS-VENDOR": "no stock of PARKA-M-RED", "LB-INBOUND": "no stock of PARKA-M-RED"}
    assert list(got["nodes"]) == [n.id for n in seed.network.nodes]


def test_a_node_ships_no_more_than_its_capacity_left_today(seed):
    order = copy.deepcopy(SEED_SCENARIOS[0]["order"])            # Denver parka: Dallas ships it
    order["lines"][0]["qty"] = 5
    view = seed.stock()
    view.used_today["TX-DC"] = 4997                              # capacity 5000: 3 units left today
    got = engine.route(seed.rulebook, seed.network, seed.catalog, view, order).to_json()
    assert got["status"] == "routed"
    from_dallas = sum(line["qty"] for s in got["shipments"] if s["node"] == "TX-DC" for line in s["lines"])
    assert from_dallas <= 3
    if from_dallas == 0:
        assert got["nodes"]["TX-DC"].endswith("; it can ship 3 more units today (capacity)")
    roomy = seed.stock()
    roomy.used_today["TX-DC"] = 4995                             # 5 left: the order fits again
    assert [s["node"] for s in engine.route(seed.rulebook, seed.network, seed.catalog, roomy,
                                            order).to_json()["shipments"]] == ["TX-DC"]


def test_capacity_left_is_named_when_it_is_why_an_order_is_held(seed):
    rulebook = dsl.compile(seed.playbook_path.read_text().replace("max shipments 3", "max shipments 1"),
                           "seed.playbook")
    order = copy.deepcopy(SEED_SCENARIOS[0]["order"])
    order["lines"][0]["qty"] = 130                                # only Dallas has 130 parkas
    view = seed.stock()
    view.used_today["TX-DC"] = 4900                               # 100 left today
    got = engine.route(rulebook, seed.network, seed.catalog, view, order).to_json()
    assert got["status"] == "held"
    assert got["reason"] == ("cannot be served now: needs 2 shipments, at most 1 allowed "
                             "within the capacity left today at GARAGE, TX-DC")


def test_capacity_across_items_is_named_when_it_holds_an_order():
    # N has 3 of A and 3 of B but only 5 units of capacity left today: each item
    # alone fits, both together do not, and no other node has them
    network = engine.Network.model_validate({"nodes": [
        {"id": "N", "kind": "warehouse", "lat": 39.75, "lon": -104.99, "state": "CO", "capacity": 100},
        {"id": "M", "kind": "warehouse", "lat": 32.78, "lon": -96.80, "state": "TX"}],
        "carriers": [{"id": "PC", "base": 6.0, "per_kg": 0.5, "per_1000km": 2.5, "km_per_day": 800}]})
    catalog = engine.Catalog.model_validate({"items": [{"sku": "A", "weight": 1.0, "price": 10.0},
                                                       {"sku": "B", "weight": 1.0, "price": 10.0}]})
    view = engine.Stock()
    view.levels.update({("N", "A"): [3, 0], ("N", "B"): [3, 0]})
    view.used_today["N"] = 95
    order = {"id": "CAP-2", "created_at": "2026-11-25T10:00:00-07:00",
             "ship_to": {"country": "US", "state": "CO", "lat": 39.75, "lon": -104.99},
             "lines": [{"sku": "A", "qty": 3}, {"sku": "B", "qty": 3}]}
    got = engine.route(dsl.compile('playbook "p"\n'), network, catalog, view, order).to_json()
    assert got["status"] == "held"
    assert got["reason"] == ("cannot be served now: no combination of nodes has the stock for every line "
                             "within the capacity left today at N")
    view.used_today["N"] = 94                                    # 6 left: it fits
    assert engine.route(dsl.compile('playbook "p"\n'), network, catalog, view, order).to_json()["status"] == "routed"


def test_a_node_as_cheap_as_the_chosen_one_is_not_told_it_costs_more():
    # two warehouses at the same spot with the same costs: the tie goes to the first id
    network = engine.Network.model_validate({"nodes": [
        {"id": "EAST", "kind": "warehouse", "lat": 39.75, "lon": -104.99, "state": "CO"},
        {"id": "WEST", "kind": "warehouse", "lat": 39.75, "lon": -104.99, "state": "CO"}],
        "carriers": [{"id": "PC", "base": 6.0, "per_kg": 0.5, "per_1000km": 2.5, "km_per_day": 800}]})
    catalog = engine.Catalog.model_validate({"items": [{"sku": "A", "weight": 1.0, "price": 10.0}]})
    view = engine.Stock()
    view.levels.update({("EAST", "A"): [3, 0], ("WEST", "A"): [3, 0]})
    order = {"id": "TIE-1", "created_at": "2026-11-25T10:00:00-07:00",
             "ship_to": {"country": "US", "state": "CO", "lat": 39.0, "lon": -105.5},
             "lines": [{"sku": "A", "qty": 1}]}
    got = engine.route(dsl.compile('playbook "p"\n'), network, catalog, view, order).to_json()
    assert [s["node"] for s in got["shipments"]] == ["EAST"]
    assert got["nodes"] == {"WEST": "not chosen: costs the same as EAST to the cent"}


def test_an_order_routed_to_a_node_that_cannot_ship_it_names_the_rule(seed):
    rulebook = dsl.compile(seed.playbook_path.read_text() + '\nrule "Seattle ships everything"\n'
                           '  when order.total > $0\n  then route to node "SEA-STORE"\n', "seed.playbook")
    got = engine.route(rulebook, seed.network, seed.catalog, seed.stock(), SEED_SCENARIOS[0]["order"]).to_json()
    assert got["status"] == "held"
    assert got["reason"] == ('cannot be served now: the order is routed to SEA-STORE by rule '
                             '"Seattle ships everything" (seed.playbook:66), which cannot ship it: '
                             'no stock of PARKA-M-RED')
    assert got["nodes"]["SEA-STORE"] == "no stock of PARKA-M-RED"
    assert got["nodes"]["TX-DC"].startswith('the order is routed to SEA-STORE by rule "Seattle ships everything"')


def test_explanations_speak_the_playbooks_currency(seed):
    text = ('playbook "Euro"\ncurrency "EUR"\nsplit penalty 2 EUR\n\n'
            'rule "Stores cost more"\n  when node.kind is store\n  then penalize node by 3 EUR\n')
    decision = engine.route(dsl.compile(text, "euro.playbook"), seed.network, seed.catalog, seed.stock(),
                            SEED_SCENARIOS[0]["order"])
    got = decision.to_json()
    assert got["status"] == "routed"
    words = [entry["effect"] for entry in got["trace"]] + list(got["nodes"].values())
    assert not [w for w in words if "$" in w]
    assert "penalize node DEN-STORE by 3.00 EUR" in [entry["effect"] for entry in got["trace"]]
    assert any(w.startswith("not chosen: ") and " EUR more than " in w for w in got["nodes"].values())
    assert f"{got['cost']:,.2f} EUR in all" in engine.explain(decision)


def test_only_the_overridden_setting_of_a_rule_is_marked_overridden(seed):
    text = ('playbook "Overrides"\n\n'
            'rule "Fast and whole"\n  when order.total > $0\n  then optimize speed\n'
            '  and ship complete\n\n'
            'rule "Cheap wins"\n  priority 10\n  when order.total > $0\n  then optimize cost\n')
    got = engine.route(dsl.compile(text, "overrides.playbook"), seed.network, seed.catalog, seed.stock(),
                       SEED_SCENARIOS[0]["order"]).to_json()
    effects = {entry["rule"]: entry["effect"] for entry in got["trace"]}
    assert effects["Fast and whole"] == 'optimize speed (overridden by rule "Cheap wins"); ship complete'
    assert effects["Cheap wins"] == "optimize cost"
    assert got["objective"] == "cost"


def test_a_node_whose_units_a_keep_rule_holds_back_says_so(seed):
    # Chicago has 12 parkas; the rule keeps 20 there, so none can ship
    rulebook = dsl.compile(seed.playbook_path.read_text() + '\nrule "Chicago safety stock"\n'
                           '  when node.id is "CHI-HUB"\n  then keep 20 units because "safety stock"\n',
                           "seed.playbook")
    got = engine.route(rulebook, seed.network, seed.catalog, seed.stock(), SEED_SCENARIOS[0]["order"]).to_json()
    assert got["status"] == "routed"
    assert got["nodes"]["CHI-HUB"] == ('its 12 units of PARKA-M-RED are kept back by rule "Chicago safety stock" '
                                       '(seed.playbook:66): safety stock')


def test_a_rule_firing_for_several_nodes_does_not_override_itself(seed):
    text = 'playbook "p"\n\nrule "Stores"\n  when node.kind is store\n  then optimize speed\n'
    got = engine.route(dsl.compile(text, "p.playbook"), seed.network, seed.catalog, seed.stock(),
                       SEED_SCENARIOS[0]["order"]).to_json()
    effects = [entry["effect"] for entry in got["trace"] if entry["rule"] == "Stores"]
    assert len(effects) > 1 and set(effects) == {"optimize speed"}


def test_the_kept_back_reason_names_the_rule_that_keeps_most(seed):
    rulebook = dsl.compile(seed.playbook_path.read_text() + '\nrule "Keep a couple"\n  when node.id is "CHI-HUB"\n'
                           '  then keep 2 units\n\nrule "Keep plenty"\n  when node.id is "CHI-HUB"\n'
                           '  then keep 30 units\n', "seed.playbook")
    got = engine.route(rulebook, seed.network, seed.catalog, seed.stock(), SEED_SCENARIOS[0]["order"]).to_json()
    assert got["nodes"]["CHI-HUB"] == 'its 12 units of PARKA-M-RED are kept back by rule "Keep plenty" (seed.playbook:70)'


def test_held_pickup_says_why_at_the_pickup_node(seed):
    order = copy.deepcopy(SEED_SCENARIOS[0]["order"])
    order.update(delivery="pickup", pickup_node="DEN-STORE")
    order["lines"][0]["qty"] = 3
    got = engine.route(seed.rulebook, seed.network, seed.catalog, seed.stock(), order).to_json()
    assert got["status"] == "held"
    assert got["reason"] == "pickup node DEN-STORE has 2 of PARKA-M-RED available, 3 wanted"
    assert got["nodes"]["DEN-STORE"] == got["reason"]
    assert {reason for node, reason in got["nodes"].items() if node != "DEN-STORE"} == {"not the pickup node"}
    assert list(got["nodes"]) == [n.id for n in seed.network.nodes]


def test_a_rule_routing_an_order_without_a_pickup_node_to_pickup_holds_it_saying_so(seed):
    rulebook = dsl.compile('playbook "p"\n\nrule "Everything is click and collect"\n'
                           '  then route to pickup node\n', "pickup.playbook")
    got = engine.route(rulebook, seed.network, seed.catalog, seed.stock(), SEED_SCENARIOS[0]["order"]).to_json()
    assert got["status"] == "held"
    assert got["reason"] == ('the order names no pickup node (pickup_node); it is routed to its pickup node by '
                             'rule "Everything is click and collect" (pickup.playbook:3)')
    assert got["nodes"]["TX-DC"] == "not used: the order is held"
    assert list(got["nodes"]) == [n.id for n in seed.network.nodes]


def test_a_route_to_node_does_not_apply_to_a_pickup_order_and_the_trace_says_so(seed):
    # a pickup order is collected at its pickup node whatever rule routes it
    # elsewhere: the trace must not claim that rule won over `route to pickup node`
    rulebook = dsl.compile('playbook "p"\n\nrule "Dallas ships everything"\n  priority 5\n'
                           '  then route to node "TX-DC"\n\nrule "Click and collect"\n'
                           '  when order.delivery is pickup\n  then route to pickup node\n', "pickup.playbook")
    order = copy.deepcopy(SEED_SCENARIOS[0]["order"])
    order.update(delivery="pickup", pickup_node="CHI-HUB")
    got = engine.route(rulebook, seed.network, seed.catalog, seed.stock(), order).to_json()
    assert got["status"] == "routed"
    assert [(s["node"], s["carrier"]) for s in got["shipments"]] == [("CHI-HUB", None)]
    assert [(t["rule"], t["effect"]) for t in got["trace"]] == [
        ("Dallas ships everything",
         'route to node "TX-DC" (not applied: a pickup order is collected at its pickup node)'),
        ("Click and collect", "route to pickup node")]


def test_the_ship_to_codes_are_read_in_capitals(seed):
    # the address's state was; its country too: "us" is "US" (the ZIP resolves as in the US)
    rulebook = dsl.compile('playbook "p"\n\nrule "Domestic"\n  when order.ship_to.country is "US"\n'
                           '  and order.ship_to.state is "CO"\n  then tag order "domestic"\n', "codes.playbook")
    order = copy.deepcopy(SEED_SCENARIOS[0]["order"])
    order["ship_to"].update(country="us", state="co")
    got = engine.route(rulebook, seed.network, seed.catalog, seed.stock(), order).to_json()
    assert (got["status"], got["tags"]) == ("routed", ["domestic"])


def test_a_held_order_no_node_can_ship_says_what_stops_the_nodes(seed):
    # not only "no node can ship": the network has the parka, a rule stops every node
    order = SEED_SCENARIOS[0]["order"]
    carrier = dsl.compile('playbook "p"\n\nrule "Air only"\n  then use carrier "NO-SUCH-AIR"\n', "air.playbook")
    got = engine.route(carrier, seed.network, seed.catalog, seed.stock(), order).to_json()
    assert got["reason"] == ('cannot be served now: no node can ship PARKA-M-RED: rule "Air only" '
                             "(air.playbook:3) ships by NO-SUCH-AIR only, which does not serve the nodes "
                             "that have them")
    recall = dsl.compile('playbook "p"\n\nrule "Recall"\n  when item.sku is "PARKA-M-RED" and node.id is not "X"\n'
                         '  then exclude node because "recalled"\n', "recall.playbook")
    got = engine.route(recall, seed.network, seed.catalog, seed.stock(), order).to_json()
    assert got["reason"] == ('cannot be served now: no node can ship PARKA-M-RED '
                             '(excluded by rule "Recall" (recall.playbook:3): recalled)')


def test_a_group_action_sees_the_load_of_today_as_node_in_group_does(seed):
    # CHI-HUB (capacity 150) has promised 100 units today: 67% loaded for both
    rulebook = dsl.compile('playbook "p"\n\ngroup "busy" is nodes where node.load >= 50%\n\n'
                           'rule "Spare busy nodes"\n  then exclude group "busy"\n\n'
                           'rule "Seen busy"\n  when node in group "busy"\n  then tag order "busy node"\n',
                           "load.playbook")
    stock = seed.stock()
    stock.used_today["CHI-HUB"] = 100
    got = engine.route(rulebook, seed.network, seed.catalog, stock, SEED_SCENARIOS[0]["order"]).to_json()
    assert got["tags"] == ["busy node"]
    assert got["nodes"]["CHI-HUB"] == 'excluded by rule "Spare busy nodes" (load.playbook:5)'


def test_batch_reserves_as_it_goes(seed):
    order = SEED_SCENARIOS[0]["order"]
    orders = []
    for number in range(3):
        clone = copy.deepcopy(order)
        clone["id"] = f"B{number}"
        clone["lines"][0]["qty"] = 200
        orders.append(clone)
    stock = seed.stock()
    decisions = list(engine.route_batch(seed.rulebook, seed.network, seed.catalog, stock, orders))
    assert [d.status for d in decisions] == ["routed", "routed", "routed"]
    assert stock.reserved("TX-DC", "PARKA-M-RED") >= 400
    total = sum(stock.reserved(n.id, "PARKA-M-RED") for n in seed.network.nodes)
    assert total == 600
    for (node, sku), (on_hand, reserved) in stock.levels.items():
        assert reserved <= on_hand


def test_decision_json_shape(seed):
    got = json.loads(engine.route(seed.rulebook, seed.network, seed.catalog, seed.stock(),
                                  SEED_SCENARIOS[0]["order"]).dumps())
    assert list(got) == ["order_id", "status", "shipments", "cost", "days", "objective", "tags",
                         "playbook", "trace", "nodes"]
    assert list(got["shipments"][0]) == ["node", "carrier", "lines", "cost", "days", "distance_km"]


@pytest.mark.parametrize("folder, scenarios", [("seed", SEED_SCENARIOS), ("demo", DEMO_SCENARIOS)])
def test_durable_matcher_gives_the_same_bytes(seed, demo, folder, scenarios):
    """durable_rules is the reference matcher: every fixture decision must be
    identical, byte for byte, to the Python matcher's."""
    setup = seed if folder == "seed" else demo
    durable = engine.matcher_named("durable")
    for scenario in scenarios:
        fast = engine.route(setup.rulebook, setup.network, setup.catalog, setup.stock(), scenario["order"])
        reference = engine.route(setup.rulebook, setup.network, setup.catalog, setup.stock(), scenario["order"],
                                 matcher=durable)
        assert fast.dumps() == reference.dumps(), scenario["name"]


def test_unknown_matcher_is_refused():
    with pytest.raises(ValueError, match="unknown matcher 'rete'; choose one of compiled, python, durable"):
        engine.matcher_named("rete")


def test_a_ship_to_given_by_lat_lon_alone_takes_the_state_it_is_in(seed):
    # the Florida tee by coordinates only: REGIONALX serves listed states only, and a rule reads the state
    rulebook = dsl.compile(seed.playbook_path.read_text() + '\nrule "Sunshine"\n  when order.ship_to.state is "FL"\n'
                           '  then tag order "sunshine"\n', "seed.playbook")
    order = copy.deepcopy(SEED_SCENARIOS[1]["order"])
    order["ship_to"] = {"lat": 25.7743, "lon": -80.1937}
    got = engine.route(rulebook, seed.network, seed.catalog, seed.stock(), order).to_json()
    assert [(s["node"], s["carrier"], s["cost"], s["days"]) for s in got["shipments"]] == \
        [("OH-DC", "REGIONALX", 6.18, 3)]
    assert "sunshine" in got["tags"]


def test_nothing_can_ship_names_the_item_of_two_lines_and_no_one_cause_when_an_item_is_missing(seed):
    recall = dsl.compile('playbook "p"\n\nrule "Recall"\n  when item.sku is "PARKA-M-RED" and node.id is not "X"\n'
                         '  then exclude node because "recalled"\n', "recall.playbook")
    order = copy.deepcopy(SEED_SCENARIOS[0]["order"])
    order["lines"] = [{"sku": "PARKA-M-RED", "qty": 1}, {"sku": "SHOP-1001", "qty": 1}]     # one item twice
    got = engine.route(recall, seed.network, seed.catalog, seed.stock(), order).to_json()
    assert got["reason"] == ('cannot be served now: no node can ship PARKA-M-RED '
                             '(excluded by rule "Recall" (recall.playbook:3): recalled)')
    # a second item that no node has: the recall is not why that one cannot ship
    stock = seed.stock()
    for key in [key for key in stock.levels if key[1] == "GLOVES-L"]:
        del stock.levels[key]
    order["lines"] = [{"sku": "PARKA-M-RED", "qty": 1}, {"sku": "GLOVES-L", "qty": 1}]
    got = engine.route(recall, seed.network, seed.catalog, stock, order).to_json()
    assert got["reason"] == "cannot be served now: no node can ship the order's items"
