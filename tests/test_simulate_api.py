"""POST /simulate and the shadow report, in process (Starlette TestClient)
on a temporary database filled with the bundled demo."""

from __future__ import annotations

import datetime as dt
import warnings

import pytest

with warnings.catch_warnings():
    # newer Starlette prefers the httpx2 package; httpx (a test dependency) still works
    warnings.filterwarnings("ignore", message=".*starlette.testclient.*")
    from starlette.testclient import TestClient

from conftest import RULEBOOKS
from server.app import create_app
from server.demo import load_demo
from server.store import Store

PHL = {"country": "US", "state": "PA", "lat": 39.9526, "lon": -75.1652}
PHX = {"country": "US", "state": "AZ", "lat": 33.4484, "lon": -112.074}
ATL = {"country": "US", "state": "GA", "lat": 33.7537, "lon": -84.3863}
BOS = {"country": "US", "state": "MA", "lat": 42.3601, "lon": -71.0589}


def order(order_id: str, time: str, ship_to: dict, sku: str, qty: int) -> dict:
    return {"id": order_id, "created_at": f"2026-11-25T{time}:00-05:00",
            "customer": {"id": "C-A", "tier": "regular"}, "ship_to": ship_to, "lines": [{"sku": sku, "qty": qty}]}


ORDERS = [
    order("H-2", "10:00", PHL, "HEADLAMP", 1),
    order("H-1", "09:00", PHL, "HEADLAMP", 120),
    order("P-1", "12:00", PHX, "BOTTLE-1L", 1),
    order("J-1", "12:30", BOS, "JKT-RAIN-M", 1),
]
CANDIDATE = (RULEBOOKS / "demo.playbook").read_text() + (
    '\nrule "No headlamps from Allentown"\n'
    '  when node.id is "PA-DC" and item.sku is "HEADLAMP"\n'
    '  then exclude node because "headlamp recall at Allentown"\n')
BROKEN = 'playbook "Broken"\n\nrule "Half a rule"\n  when node.kind is\n'


@pytest.fixture()
def http(tmp_path):
    db = tmp_path / "steve.db"
    store = Store(db)
    assert load_demo(store)
    store.close()
    with TestClient(create_app(db=str(db))) as client:
        yield client


def nodes(decision: dict) -> list[str]:
    return sorted(s["node"] for s in decision["shipments"])


def headlamps(http) -> dict:
    return http.get("/availability/HEADLAMP").json()["nodes"]


def test_a_candidate_playbook_against_the_active_one(http):
    before = headlamps(http)
    response = http.post("/simulate", json={"playbook": CANDIDATE, "orders": ORDERS})
    assert response.status_code == 200, response.text
    body = response.json()
    active = http.get("/health").json()["playbook"]
    assert body["orders"] == 4
    assert body["baseline"]["version"] == active and body["candidate"]["version"] != active
    # time order: H-1 (09:00) takes Allentown's 120 headlamps first, H-2 falls back to Kansas City
    assert body["baseline"]["metrics"]["node_usage"] == {"KC-DC": 1, "PA-DC": 2, "SLC-3PL": 1}
    assert body["candidate"]["metrics"]["node_usage"] == {"KC-DC": 1, "PA-DC": 1, "SLC-3PL": 1}
    assert [d["order_id"] for d in body["differences"]] == ["H-1"]
    assert body["differences"][0]["changes"] == ["status: routed -> held", "nodes: PA-DC -> -"]
    assert body["differing"] == 1
    assert body["delta"]["held"] == 1 and body["delta"]["routed"] == -1 and body["delta"]["total_cost"] == -14.07
    # nothing reserved, nothing stored
    assert headlamps(http) == before
    assert http.get("/orders/H-1").status_code == 404
    assert http.get("/metrics").status_code == 200


def test_node_what_ifs_alone_compare_with_the_network_as_it_is(http):
    response = http.post("/simulate", json={"orders": ORDERS, "with_nodes": ["PHX-STORE"],
                                            "without_nodes": ["PA-DC"]})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["candidate"]["version"] == body["baseline"]["version"]
    assert body["candidate"]["with_nodes"] == ["PHX-STORE"] and body["candidate"]["without_nodes"] == ["PA-DC"]
    changed = {d["order_id"]: d["changes"] for d in body["differences"]}
    assert changed == {"H-1": ["status: routed -> held", "nodes: PA-DC -> -"],
                       "P-1": ["nodes: SLC-3PL -> PHX-STORE"], "J-1": ["nodes: PA-DC -> GA-DC"]}

    unknown = http.post("/simulate", json={"orders": ORDERS, "without_nodes": ["PA-DX"]})
    assert unknown.status_code == 422
    assert unknown.json()["details"] == [{"loc": "without_nodes.0",
                                          "msg": "unknown node 'PA-DX': the network has no such node"}]


def test_against_a_stored_version_or_text(http):
    stored = http.post("/playbooks", json={"text": CANDIDATE, "author": "test"})
    assert stored.status_code == 201, stored.text
    version = stored.json()["version"]
    # the active playbook as the candidate, the stored one as the baseline: the change runs the other way
    by_version = http.post("/simulate", json={"orders": ORDERS, "against": version}).json()
    assert by_version["baseline"]["version"] == version
    assert by_version["differences"][0]["changes"] == ["status: held -> routed", "nodes: - -> PA-DC"]
    by_text = http.post("/simulate", json={"orders": ORDERS, "against": CANDIDATE}).json()
    assert by_text["baseline"]["version"] == version
    assert [d["order_id"] for d in by_text["differences"]] == ["H-1"]

    missing = http.post("/simulate", json={"orders": ORDERS, "against": "sha256:0000"})
    assert missing.status_code == 404
    assert [d["loc"] for d in missing.json()["details"]] == ["against"]


def test_a_playbook_that_does_not_check_clean_is_422(http):
    for body in ({"playbook": BROKEN, "orders": ORDERS}, {"against": BROKEN, "orders": ORDERS}):
        response = http.post("/simulate", json=body)
        assert response.status_code == 422, response.text
        answer = response.json()
        assert answer["error"] == "the playbook does not check clean"
        assert answer["diagnostics"] and answer["diagnostics"][0]["line"] == 4


def test_bad_orders_are_reported_by_index(http):
    bad = [ORDERS[0], dict(ORDERS[1], lines=[{"sku": "HEADLAMP", "qty": 0}]), {"id": "no lines"}]
    response = http.post("/simulate", json={"playbook": CANDIDATE, "orders": bad})
    assert response.status_code == 422
    locs = [d["loc"] for d in response.json()["details"]]
    assert "orders.1.lines.0.qty" in locs and "orders.2.lines" in locs
    assert not any(loc.startswith("orders.0") for loc in locs)
    # orders alone: what the live playbook would do with them (no differences by definition)
    live_only = http.post("/simulate", json={"orders": ORDERS})
    assert live_only.status_code == 200
    assert live_only.json()["differing"] == 0 and live_only.json()["baseline"] is None
    assert live_only.json()["candidate"]["metrics"]["orders"] == live_only.json()["orders"] == len(ORDERS)


def test_repeats_are_skipped_and_an_id_given_to_another_order_is_422(http):
    # H-1 again as a retry might spell it (key order, 120.0, a default sent, spaces): the same order
    again = {**{k: ORDERS[1][k] for k in reversed(list(ORDERS[1]))}, "id": " H-1 ", "tags": [],
             "lines": [{"sku": "HEADLAMP", "qty": 120.0}]}
    response = http.post("/simulate", json={"playbook": CANDIDATE, "orders": [*ORDERS, again, ORDERS[0]]})
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["orders"], body["repeats"], body["now"]) == (4, 2, None)
    assert body["baseline"]["metrics"]["node_usage"] == {"KC-DC": 1, "PA-DC": 2, "SLC-3PL": 1}
    assert [d["order_id"] for d in body["differences"]] == ["H-1"] and body["differing"] == 1

    other = dict(ORDERS[1], lines=[{"sku": "HEADLAMP", "qty": 12}])
    refused = http.post("/simulate", json={"orders": [*ORDERS, again, other, dict(ORDERS[2], id="J-1")]})
    assert refused.status_code == 422
    assert refused.json() == {"error": "an order id is given to two different orders", "details": [
        {"loc": "orders.5", "msg": "order H-1 was already given as orders.1 with different content; an order id "
                                   "names one order (an exact repeat is skipped)"},
        {"loc": "orders.6", "msg": "order J-1 was already given as orders.3 with different content; an order id "
                                   "names one order (an exact repeat is skipped)"}]}


def test_untimed_orders_are_read_at_now_the_same_in_both_runs(http):
    # no time: Southern Express on a Wednesday, Groundline on a Friday (the demo's Friday pickup fee)
    untimed = [{"id": "B-1", "ship_to": ATL, "lines": [{"sku": "BOTTLE-1L", "qty": 2}]}]
    for now, carrier in (("2026-11-25T10:00:00-05:00", "SOUTHX"), ("2026-11-27T10:00:00-05:00", "GROUNDLINE")):
        body = http.post("/simulate", json={"orders": untimed, "with_nodes": ["PHX-STORE"], "now": now}).json()
        assert body["now"] == now
        assert body["differing"] == 0
        for run in ("candidate", "baseline"):
            assert body[run]["metrics"]["total_cost"] == {"SOUTHX": 4.56, "GROUNDLINE": 7.38}[carrier]
    # without an offset: the playbook's timezone
    naive = http.post("/simulate", json={"orders": untimed, "now": "2026-11-27T10:00:00"}).json()
    assert naive["now"] == "2026-11-27T10:00:00-05:00"
    # by default the clock when the request is handled, to the second, and said
    before = dt.datetime.now(dt.timezone.utc).replace(microsecond=0)
    body = http.post("/simulate", json={"orders": untimed}).json()
    assert before <= dt.datetime.fromisoformat(body["now"]) <= dt.datetime.now(dt.timezone.utc)
    assert http.post("/simulate", json={"orders": ORDERS}).json()["now"] is None     # every order has its time
    bad = http.post("/simulate", json={"orders": untimed, "now": "friday"})
    assert bad.status_code == 422 and [d["loc"] for d in bad.json()["details"]] == ["now"]
    far = http.post("/simulate", json={"orders": untimed, "now": "0001-01-01T00:00:00"})
    assert far.status_code == 422
    assert far.json()["details"] == [{"loc": "now", "msg": "Value error, a time between the years 1900 and 9000"}]


def test_simulate_is_in_the_openapi_document_and_needs_no_token(tmp_path):
    db = tmp_path / "token.db"
    store = Store(db)
    load_demo(store)
    store.close()
    with TestClient(create_app(db=str(db), token="s3cret")) as client:
        assert client.post("/simulate", json={"playbook": CANDIDATE, "orders": ORDERS[:1]}).status_code == 200
        assert client.post("/orders", json=ORDERS[0]).status_code == 401
        document = client.get("/openapi.json").json()
    operation = document["paths"]["/simulate"]["post"]
    assert "security" not in operation
    assert operation["responses"]["200"]["content"]["application/json"]["schema"]["$ref"] == \
        "#/components/schemas/SimulateOut"
    fields = document["components"]["schemas"]["SimulateIn"]["properties"]
    assert {"orders", "playbook", "version", "against", "with_nodes", "without_nodes", "now"} <= set(fields)
    assert {"repeats", "now"} <= set(document["components"]["schemas"]["SimulateOut"]["properties"])
    shadow = document["paths"]["/playbooks/{version}/shadow"]["get"]
    assert shadow["responses"]["200"]["content"]["application/json"]["schema"]["$ref"] == \
        "#/components/schemas/ShadowReportOut"


def test_the_shadow_report_has_counts_metric_deltas_and_the_differing_orders(http):
    version = http.post("/playbooks", json={"text": CANDIDATE}).json()["version"]
    assert http.post(f"/playbooks/{version}/shadow").status_code == 200
    assert http.post("/orders", json=ORDERS[1]).status_code == 201      # 120 headlamps: differs
    assert http.post("/orders", json=ORDERS[3]).status_code == 201      # a rain jacket: the same
    report = http.get(f"/playbooks/{version}/shadow").json()
    assert report["orders"] == 2 and report["differing"] == 1
    [difference] = report["differences"]
    assert difference["order_id"] == "H-1"
    assert difference["changes"] == ["status: routed -> held", "nodes: PA-DC -> -"]
    assert nodes(difference["live"]) == ["PA-DC"] and difference["shadow"]["status"] == "held"
    live, shadow = report["metrics"]["live"], report["metrics"]["shadow"]
    assert (live["routed"], live["held"], shadow["routed"], shadow["held"]) == (2, 0, 1, 1)
    assert report["delta"]["routed"] == -1 and report["delta"]["units_shipped"] == -120
    assert report["delta"]["total_cost"] == -14.07
