"""The HTTP service end to end: the real `steve serve --demo` in a child
process on a free port with its own database file, driven over HTTP.

Most tests share one server (module scope) and keep out of each other's way:
each works on items of its own (added to the catalog with stock of their
own), so the demo's items and the demo scenarios stay as shipped. Tests
that need another configuration or change what every other test sees
(a token, two workers, a small body limit, a playbook activation) get a
fresh server of their own.
"""

from __future__ import annotations

import concurrent.futures
import json
import re
import sqlite3
import time
from pathlib import Path
from urllib.parse import quote

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from conftest import FIXTURES, RULEBOOKS, read_jsonl
from engine.metrics import summarize
from engine.models import Network
from engine.stock import Stock
from live_server import LiveServer

DEMO_SCENARIOS = read_jsonl(FIXTURES / "demo_scenarios.jsonl")
DEMO_PLAYBOOK = (RULEBOOKS / "demo.playbook").read_text()
# A candidate: the demo playbook, with Allentown (PA-DC) closed for a stocktake.
CANDIDATE = DEMO_PLAYBOOK + ('\nrule "Allentown is closed for stocktaking"\n'
                             '  when node.id is "PA-DC"\n'
                             '  then exclude node because "closed for stocktaking"\n')
# Checks clean on its own, but names a node the network does not have.
UNKNOWN_NODE = 'playbook "Typo"\n\nrule "No Dallas"\n  when order.total > $1\n  then exclude node "DAL-DC"\n'
SYNTAX_ERROR = 'playbook "Broken"\n\nrule "Half a rule"\n  when node.kind is\n'

# Section 3 of the interface contract: every path, with its methods.
CONTRACT_PATHS = {
    "/health": {"get"}, "/route": {"post"}, "/orders": {"post"}, "/orders/{}": {"get"},
    "/orders/{}/cancel": {"post"}, "/orders/{}/ship": {"post"}, "/availability/{}": {"get"},
    "/stock": {"put"}, "/stock/adjust": {"post"}, "/network": {"get", "put"}, "/catalog": {"get", "put"},
    "/playbooks/check": {"post"}, "/playbooks": {"get", "post"}, "/playbooks/{}/activate": {"post"},
    "/playbooks/{}/shadow": {"post", "get", "delete"}, "/playbooks/active": {"get"},
    "/simulate": {"post"}, "/metrics": {"get"}, "/openapi.json": set(),
}


# ---- helpers ---------------------------------------------------------------------------

def order(order_id: str, *lines: tuple[str, int], **fields) -> dict:
    """An order shipping to Boston on a plain Wednesday (no holiday, no Friday fee)."""
    body = {"id": order_id, "channel": "web", "created_at": "2026-11-25T09:30:00-05:00",
            "customer": {"id": "C-T", "tier": "regular", "tags": [], "orders": 1},
            "ship_to": {"country": "US", "state": "MA", "zip": "02108"},
            "lines": [{"sku": sku, "qty": qty} for sku, qty in lines]}
    body.update(fields)
    return body


def error_body(response: httpx.Response, status: int, *locs: str) -> dict:
    """A refusal in the contract's shape, naming these fields."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert isinstance(body["error"], str) and body["error"]
    assert isinstance(body["details"], list)
    for detail in body["details"]:
        assert {"loc", "msg"} <= set(detail), body
    named = [d["loc"] for d in body["details"]]
    for loc in locs:
        assert loc in named, body
    return body


def add_item(server: LiveServer, sku: str, stock: dict[str, int], **fields) -> None:
    """A test item of its own: added to the catalog (PUT /catalog) and
    stocked (PUT /stock), so no other test routes it."""
    http = server.http
    catalog = http.get("/catalog").json()
    item = {"sku": sku, "name": f"Test item {sku}", "weight": 1.0, "price": 100.0, "margin": 0.3,
            "category": "test", **fields}
    catalog["items"] = [i for i in catalog["items"] if i["sku"] != sku] + [item]
    assert http.put("/catalog", json=catalog).status_code == 200
    if stock:
        rows = [{"node": node, "sku": sku, "on_hand": units} for node, units in stock.items()]
        assert http.put("/stock", json=rows).status_code == 200


def available(server: LiveServer, sku: str) -> dict[str, int]:
    response = server.http.get(f"/availability/{sku}")
    assert response.status_code == 200, response.text
    return response.json()["nodes"]


def stock_row(db: Path, node: str, sku: str) -> tuple[int, int]:
    """(on_hand, reserved) read straight from the database file."""
    return query(db, "SELECT on_hand, reserved FROM stock WHERE node = ? AND sku = ?", (node, sku))[0]


def query(db: Path, sql: str, params: tuple = ()) -> list[tuple]:
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        return conn.execute(sql, params).fetchall()
    finally:
        conn.close()


def metric_samples(text: str) -> dict[tuple, float]:
    """{(name, labels...): value} from Prometheus text (parsing it checks the format)."""
    samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples[(sample.name, *sorted(sample.labels.items()))] = sample.value
    return samples


def nodes_of(decision: dict) -> list[str]:
    return [s["node"] for s in decision["shipments"]]


# ---- servers -------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def server(tmp_path_factory):
    with LiveServer(tmp_path_factory.mktemp("server"), "--demo") as live:
        yield live


@pytest.fixture
def fresh(tmp_path):
    """Start a server of this test's own: fresh(*args) -> LiveServer."""
    started = []

    def start(*args: str, **options) -> LiveServer:
        live = LiveServer(tmp_path / f"server{len(started)}", *args, **options)
        started.append(live)
        return live.start()

    yield start
    for live in started:
        live.stop()


# ---- reads -----------------------------------------------------------------------------------

def test_start_up_says_it_runs_open_and_loaded_the_demo(server):
    log = server.log()
    assert "Demo loaded into" in log
    assert "No token configured" in log


def test_start_up_says_when_it_listens(server):
    listening = f"Steve is listening on http://127.0.0.1:{server.port}."
    deadline = time.monotonic() + 10
    while listening not in server.log() and time.monotonic() < deadline:
        time.sleep(0.05)                    # said by a thread once /health answers
    log = server.log()
    assert log.index("Steve is starting on") < log.index(listening)


def test_start_up_suggests_the_demo_order_only_where_it_would_route(fresh, tmp_path):
    live = fresh("--demo")
    assert '"sku": "JKT-RAIN-M"' in live.log()
    catalog = live.http.get("/catalog").json()
    catalog["items"] = [item for item in catalog["items"] if item["sku"] != "JKT-RAIN-M"]
    assert live.http.put("/catalog", json=catalog).status_code == 200
    live.stop()
    again = fresh(db=live.db)                   # the user's own catalog now: no demo order to suggest
    started = again.log()
    assert "JKT-RAIN-M" not in started
    assert f"Try:\n  curl -s http://127.0.0.1:{again.port}/health" in started


def test_health_names_the_active_playbook(server):
    health = server.http.get("/health")
    assert health.status_code == 200
    body = health.json()
    assert body["status"] == "ok"
    assert body["playbook"].startswith("sha256:")
    active = server.http.get("/playbooks/active").json()
    assert active["version"] == body["playbook"]
    assert active["name"] == "Trailhead Outfitters"
    assert active["text"] == DEMO_PLAYBOOK


@pytest.mark.parametrize("scenario", DEMO_SCENARIOS, ids=[s["name"] for s in DEMO_SCENARIOS])
def test_demo_scenarios_route_over_http_as_stated(server, scenario):
    response = server.http.post("/route", json=scenario["order"])
    want = scenario["expect"]
    assert response.status_code == (422 if want["status"] == "error" else 200), response.text
    got = response.json()
    assert got["status"] == want["status"]
    shipments = [{k: s[k] for k in ("node", "carrier", "lines", "cost", "days")} for s in got["shipments"]]
    assert shipments == want.get("shipments", [])
    assert got["tags"] == want.get("tags", [])
    for words in want.get("reason_mentions", []):
        assert words in got["reason"]
    if want["status"] == "error":     # the decision's errors, also in the contract's error shape
        body = error_body(response, 422)
        assert body["details"] == got["errors"] and body["details"]


def test_network_and_catalog_read_and_replace(server):
    network = server.http.get("/network")
    assert network.status_code == 200
    document = network.json()
    assert {n["id"] for n in document["nodes"]} >= {"PA-DC", "KC-DC", "BOS-STORE", "PHX-STORE"}
    replaced = server.http.put("/network", json=document)
    assert replaced.status_code == 200, replaced.text
    assert replaced.json()["nodes"] == len(document["nodes"])
    again = server.http.put("/network", json=document).json()
    assert again["revision"] == replaced.json()["revision"] + 1
    assert server.http.get("/network").json() == document

    add_item(server, "T-CATALOG", {})
    catalog = server.http.get("/catalog").json()
    assert "T-CATALOG" in [i["sku"] for i in catalog["items"]]
    assert server.http.get("/availability/T-CATALOG").json()["total"] == 0


def test_an_item_held_by_open_orders_stays_in_the_catalog(server):
    add_item(server, "T-KEEP", {"KC-DC": 5})
    assert server.http.post("/orders", json=order("KP-1", ("T-KEEP", 3))).status_code == 201
    catalog = server.http.get("/catalog").json()
    without = dict(catalog, items=[i for i in catalog["items"] if i["sku"] != "T-KEEP"])
    refused = server.http.put("/catalog", json=without)
    message = "item T-KEEP has 3 unit(s) reserved for open orders (KP-1); ship or cancel them before removing it"
    assert refused.status_code == 409
    assert refused.json() == {"error": f"the new catalog does not fit what is live: {message}",
                              "details": [{"loc": "items", "msg": message}]}
    assert server.http.get("/catalog").json() == catalog                  # nothing written
    assert server.http.post("/orders/KP-1/ship").status_code == 200
    assert server.http.put("/catalog", json=without).status_code == 200


def test_availability_is_after_reserves_and_keep_rules(server):
    add_item(server, "T-AVAIL", {"KC-DC": 7, "BOS-STORE": 3, "MSP-STORE": 6, "PHX-STORE": 9},
             aliases=["WEB-T-AVAIL"])
    body = server.http.get("/availability/T-AVAIL").json()
    # the Boston store's last 3 units stay on the shop floor (an order-independent rule);
    # PHX-STORE is a shadow node, never counted for live orders
    assert body["nodes"] == {"KC-DC": 7, "BOS-STORE": 0, "MSP-STORE": 6}
    assert body["kept"] == {"BOS-STORE": 3}
    assert body["total"] == 13
    assert server.http.get("/availability/WEB-T-AVAIL").json()["sku"] == "T-AVAIL"

    placed = server.http.post("/orders", json=order("AV-1", ("T-AVAIL", 2)))
    assert placed.status_code == 201
    after = server.http.get("/availability/T-AVAIL").json()
    assert after["total"] == 11
    assert sum(after["nodes"].values()) == 11
    error_body(server.http.get("/availability/NOPE-SKU"), 404, "sku")


def test_openapi_document_covers_the_contract(server):
    response = server.http.get("/openapi.json")
    assert response.status_code == 200
    document = response.json()
    assert document["openapi"].startswith("3.1")
    assert document["info"]["title"]
    assert document["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"
    paths = {}
    for path, operations in document["paths"].items():
        paths[re.sub(r"\{[^}]*\}", "{}", path)] = set(operations)
    for path, methods in CONTRACT_PATHS.items():
        if path == "/openapi.json":
            continue
        assert path in paths, f"{path} is missing from /openapi.json"
        assert methods <= paths[path], (path, paths[path])
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            assert operation["responses"], (method, path)
    # every reference resolves
    schemas = document["components"]["schemas"]
    refs = []

    def walk(node):
        if isinstance(node, dict):
            if "$ref" in node:
                refs.append(node["$ref"])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)
    walk(document)
    assert refs
    for ref in refs:
        assert ref.startswith("#/components/schemas/") and ref.rsplit("/", 1)[1] in schemas, ref
    # and every contract path answers on the running server (not a 404 for the path itself)
    for path in CONTRACT_PATHS:
        concrete = path.replace("{}", "nothing-here")
        for method in CONTRACT_PATHS[path] or {"get"}:
            answer = server.http.request(method.upper(), concrete)
            assert answer.status_code != 405, (method, path)
            if answer.status_code == 404:
                assert "Not Found" != answer.json()["error"], (method, path)


def test_unknown_paths_and_methods_answer_json(server):
    error_body(server.http.get("/no-such-thing"), 404)
    error_body(server.http.delete("/orders"), 405)


# ---- orders -------------------------------------------------------------------------------

def test_route_is_a_dry_run(server):
    add_item(server, "T-DRY", {"KC-DC": 5})
    before = available(server, "T-DRY")
    for _ in range(2):
        response = server.http.post("/route", json=order("DRY-1", ("T-DRY", 2)))
        assert response.status_code == 200, response.text
        decision = response.json()
        assert decision["status"] == "routed" and nodes_of(decision) == ["KC-DC"]
    assert available(server, "T-DRY") == before
    error_body(server.http.get("/orders/DRY-1"), 404, "order_id")


def test_place_reserves_and_the_stored_decision_explains_itself(server):
    add_item(server, "T-PLACE", {"KC-DC": 5, "PA-DC": 5})
    response = server.http.post("/orders", json=order("PL-1", ("T-PLACE", 2)))
    assert response.status_code == 201, response.text
    decision = response.json()
    assert decision["status"] == "routed"
    assert nodes_of(decision) == ["PA-DC"]                 # the nearer of the two
    assert decision["playbook"]["version"] == server.http.get("/health").json()["playbook"]
    assert available(server, "T-PLACE") == {"KC-DC": 5, "PA-DC": 3}
    assert stock_row(server.db, "PA-DC", "T-PLACE") == (5, 2)

    stored = server.http.get("/orders/PL-1")
    assert stored.status_code == 200
    body = stored.json()
    assert body["state"] == "routed"
    assert body["reservations"] == [{"node": "PA-DC", "sku": "T-PLACE", "qty": 2, "state": "active"}]
    assert body["shipments"] == decision["shipments"]
    assert body["nodes"]["KC-DC"].startswith("not chosen")
    assert body["trace"] == decision["trace"]


def test_order_retries_are_idempotent(server):
    add_item(server, "T-IDEM", {"KC-DC": 10})
    sent = order("ID-1", ("T-IDEM", 3))
    first = server.http.post("/orders", json=sent)
    assert first.status_code == 201, first.text
    # the same order again, keys in another order: the first decision, 200, nothing reserved twice
    shuffled = json.loads(json.dumps(dict(reversed(list(sent.items())))))
    for retry in (sent, shuffled):
        again = server.http.post("/orders", json=retry)
        assert again.status_code == 200, again.text
        assert again.json() == first.json()
    assert available(server, "T-IDEM") == {"KC-DC": 7}
    assert query(server.db, "SELECT COUNT(*), SUM(qty) FROM reservations WHERE order_id = 'ID-1'") == [(1, 3)]

    # the same id with different content is a conflict, and changes nothing
    changed = order("ID-1", ("T-IDEM", 4))
    error_body(server.http.post("/orders", json=changed), 409, "id")
    assert available(server, "T-IDEM") == {"KC-DC": 7}
    assert server.http.get("/orders/ID-1").json()["shipments"] == first.json()["shipments"]


def test_a_repeat_answers_the_first_decision_byte_for_byte(server):
    """A retry, and the stored decision, are the first answer's bytes: keys in
    the decision's own order (order_id, status, shipments, ...), not sorted."""
    add_item(server, "T-BYTES", {"KC-DC": 10, "PA-DC": 1})
    sent = order("BY-1", ("T-BYTES", 2))
    first = server.http.post("/orders", json=sent)
    assert first.status_code == 201, first.text
    assert list(first.json())[:3] == ["order_id", "status", "shipments"]
    again = server.http.post("/orders", json=sent)
    assert again.status_code == 200
    assert again.content == first.content
    # GET /orders/{id}: the first answer's bytes, then the order's state and reservations
    stored = server.http.get("/orders/BY-1")
    assert stored.content == first.content[:-1] + (
        b',"state":"routed","reservations":[{"node":"KC-DC","sku":"T-BYTES","qty":2,"state":"active"}]}')


def test_bad_orders_get_4xx_naming_the_field_and_write_nothing(server):
    add_item(server, "T-BAD", {"KC-DC": 5})
    http = server.http
    json_headers = {"content-type": "application/json"}
    body = error_body(http.post("/orders", content=b'{"id": "BAD-0", "lines": [', headers=json_headers),
                      400, "body")
    assert "JSON" in body["error"]
    error_body(http.post("/orders", content=b"[" * 5000, headers=json_headers), 400, "body")
    error_body(http.post("/orders", json=order("BAD-1", ("T-BAD", -1))), 422, "lines.0.qty")
    error_body(http.post("/orders", json=order("BAD-2", ("T-BAD", 0))), 422, "lines.0.qty")
    error_body(http.post("/orders", json=order("BAD-3", ("T-BAD", "two"))), 422, "lines.0.qty")
    error_body(http.post("/orders", json=order("BAD-4", ("T-BAD", 1), created_at="last week")), 422,
               "created_at")
    error_body(http.post("/orders", json=order("BAD-5", ("T-BAD", 1), ship_to="Boston")), 422, "ship_to")
    error_body(http.post("/orders", json=order("BAD-6", ("T-BAD", 1), lines=[])), 422, "lines")
    error_body(http.post("/orders", json=order("BAD-7", ("T-BAD", 1), delivery="teleport")), 422, "delivery")
    error_body(http.post("/orders", json={"lines": [{"sku": "T-BAD", "qty": 1}]}), 422, "id")
    error_body(http.post("/orders", json=[order("BAD-8", ("T-BAD", 1))]), 422, "body")
    # an unknown item is routed to a decision with status error: 422 with the decision's errors
    unknown = http.post("/orders", json=order("BAD-9", ("NO-SUCH-ITEM", 1)))
    body = error_body(unknown, 422, "lines.0.sku")
    assert body["status"] == "error" and body["details"] == body["errors"]
    assert "NO-SUCH-ITEM" in body["details"][0]["msg"]
    nowhere = order("BAD-10", ("T-BAD", 1), ship_to={"country": "US"})
    assert error_body(http.post("/orders", json=nowhere), 422, "ship_to")["status"] == "error"
    # the same through the dry run
    error_body(http.post("/route", json=order("BAD-11", ("T-BAD", -5))), 422, "lines.0.qty")
    error_body(http.post("/route", content=b"not json", headers=json_headers), 400, "body")

    for n in range(12):
        error_body(http.get(f"/orders/BAD-{n}"), 404)
    assert available(server, "T-BAD") == {"KC-DC": 5}
    assert query(server.db, "SELECT COUNT(*) FROM orders WHERE id LIKE 'BAD-%'") == [(0,)]


def test_cancel_releases_the_reservation(server):
    add_item(server, "T-CANCEL", {"KC-DC": 6})
    assert server.http.post("/orders", json=order("CA-1", ("T-CANCEL", 4))).status_code == 201
    assert stock_row(server.db, "KC-DC", "T-CANCEL") == (6, 4)
    cancelled = server.http.post("/orders/CA-1/cancel")
    assert cancelled.status_code == 200, cancelled.text
    assert cancelled.json() == {"order_id": "CA-1", "state": "cancelled",
                                "released": [{"node": "KC-DC", "sku": "T-CANCEL", "qty": 4}]}
    assert stock_row(server.db, "KC-DC", "T-CANCEL") == (6, 0)
    assert available(server, "T-CANCEL") == {"KC-DC": 6}
    stored = server.http.get("/orders/CA-1").json()
    assert stored["state"] == "cancelled"
    assert stored["reservations"][0]["state"] == "released"
    # a repeat (after a timeout, say) answers what the first did, and releases nothing more
    again = server.http.post("/orders/CA-1/cancel")
    assert again.status_code == 200 and again.content == cancelled.content
    body = error_body(server.http.post("/orders/CA-1/ship"), 409)
    assert body["error"] == "order CA-1 is cancelled; only a routed order can be shipped"
    error_body(server.http.post("/orders/NO-SUCH-ORDER/cancel"), 404, "order_id")
    assert stock_row(server.db, "KC-DC", "T-CANCEL") == (6, 0)
    assert query(server.db, "SELECT action FROM audit WHERE subject = 'CA-1'") == [("cancel order",)]


def test_an_order_id_with_a_slash_can_be_read_cancelled_and_shipped(server):
    # ids are free text: one with "/", "?" or "#" is written percent-encoded in the path
    add_item(server, "T-SLASH", {"KC-DC": 6})
    for order_id, then in (("a/b?c#d", "cancel"), ("PO/2026/7", "ship")):
        placed = server.http.post("/orders", json=order(order_id, ("T-SLASH", 1)))
        assert placed.status_code == 201, placed.text
        path = "/orders/" + quote(order_id, safe="")
        stored = server.http.get(path)
        assert stored.status_code == 200, stored.text
        assert stored.json()["order_id"] == order_id
        done = server.http.post(f"{path}/{then}")
        assert done.status_code == 200, done.text
        assert done.json()["order_id"] == order_id
    assert stock_row(server.db, "KC-DC", "T-SLASH") == (5, 0)


def test_a_held_order_cancelled_twice_released_nothing_both_times(server):
    add_item(server, "T-CANCEL-HELD", {"KC-DC": 1})
    placed = server.http.post("/orders", json=order("CH-1", ("T-CANCEL-HELD", 2)))
    assert placed.json()["status"] == "held"
    first = server.http.post("/orders/CH-1/cancel")
    assert first.status_code == 200 and first.json() == {"order_id": "CH-1", "state": "cancelled", "released": []}
    assert server.http.post("/orders/CH-1/cancel").content == first.content


def test_ship_lowers_on_hand_and_reserved(server):
    add_item(server, "T-SHIP", {"KC-DC": 10})
    before = metric_samples(server.http.get("/metrics").text)
    assert server.http.post("/orders", json=order("SH-1", ("T-SHIP", 3))).status_code == 201
    assert stock_row(server.db, "KC-DC", "T-SHIP") == (10, 3)
    shipped = server.http.post("/orders/SH-1/ship")
    assert shipped.status_code == 200, shipped.text
    assert shipped.json()["state"] == "shipped"
    assert shipped.json()["shipped"] == [{"node": "KC-DC", "sku": "T-SHIP", "qty": 3}]
    assert stock_row(server.db, "KC-DC", "T-SHIP") == (7, 0)
    assert available(server, "T-SHIP") == {"KC-DC": 7}
    after = metric_samples(server.http.get("/metrics").text)
    assert after[("steve_stock_on_hand_units",)] == before[("steve_stock_on_hand_units",)] - 3
    assert after[("steve_stock_reserved_units",)] == before[("steve_stock_reserved_units",)]
    assert server.http.get("/orders/SH-1").json()["state"] == "shipped"
    # a repeat answers what the first did; the units leave once
    again = server.http.post("/orders/SH-1/ship")
    assert again.status_code == 200 and again.content == shipped.content
    body = error_body(server.http.post("/orders/SH-1/cancel"), 409)
    assert body["error"] == "order SH-1 is shipped; it cannot be cancelled"
    error_body(server.http.post("/orders/NO-SUCH-ORDER/ship"), 404, "order_id")
    assert stock_row(server.db, "KC-DC", "T-SHIP") == (7, 0)
    assert query(server.db, "SELECT action FROM audit WHERE subject = 'SH-1'") == [("ship order",)]


# ---- stock -------------------------------------------------------------------------------

def test_put_stock_refuses_counts_below_reserved_and_writes_nothing(server):
    add_item(server, "T-FLOOR", {"KC-DC": 5})
    add_item(server, "T-FLOOR-2", {"KC-DC": 5})
    assert server.http.post("/orders", json=order("FL-1", ("T-FLOOR", 4))).status_code == 201
    batch = [{"node": "KC-DC", "sku": "T-FLOOR-2", "on_hand": 50},     # fine on its own
             {"node": "KC-DC", "sku": "T-FLOOR", "on_hand": 3}]        # below the 4 reserved
    body = error_body(server.http.put("/stock", json=batch), 409, "1.on_hand")
    assert "reserved" in body["error"]
    assert stock_row(server.db, "KC-DC", "T-FLOOR-2") == (5, 0)          # no partial write
    assert stock_row(server.db, "KC-DC", "T-FLOOR") == (5, 4)

    ok = server.http.put("/stock", json=[{"node": "KC-DC", "sku": "T-FLOOR", "on_hand": 4}])
    assert ok.status_code == 200, ok.text
    assert ok.json()["updated"] == 1
    assert available(server, "T-FLOOR") == {"KC-DC": 0}

    # bad rows: unknown node or item, negative, wrong type, not a list; nothing written
    error_body(server.http.put("/stock", json=[{"node": "NOWHERE", "sku": "T-FLOOR-2", "on_hand": 9}]),
               422, "0.node")
    error_body(server.http.put("/stock", json=[{"node": "KC-DC", "sku": "T-FLOOR-2", "on_hand": 9},
                                               {"node": "KC-DC", "sku": "NO-SUCH", "on_hand": 9}]), 422, "1.sku")
    error_body(server.http.put("/stock", json=[{"node": "KC-DC", "sku": "T-FLOOR-2", "on_hand": -1}]),
               422, "0.on_hand")
    error_body(server.http.put("/stock", json=[{"node": "KC-DC", "sku": "T-FLOOR-2", "on_hand": "lots"}]),
               422, "0.on_hand")
    error_body(server.http.put("/stock", json=[{"node": "KC-DC", "sku": "T-FLOOR-2", "on_hand": 1,
                                                "colour": "red"}]), 422, "0.colour")
    error_body(server.http.put("/stock", json={"node": "KC-DC", "sku": "T-FLOOR-2", "on_hand": 1}), 422, "body")
    # absolute counts: one row per node and item (which of two would hold is left to chance)
    twice = error_body(server.http.put("/stock", json=[{"node": "KC-DC", "sku": "T-FLOOR-2", "on_hand": 7},
                                                       {"node": "KC-DC", "sku": "T-FLOOR-2", "on_hand": 8}]),
                       422, "1.sku")
    assert twice["details"] == [{"loc": "1.sku", "msg": "a second row for KC-DC and T-FLOOR-2 (the first is row 0); "
                                                        "give one row per node and item"}]
    assert stock_row(server.db, "KC-DC", "T-FLOOR-2") == (5, 0)


def test_stock_adjustments_apply_once_per_event(server):
    add_item(server, "T-ADJ", {"KC-DC": 5}, aliases=["WEB-T-ADJ"])
    event = {"event_id": "wms-1", "adjustments": [{"node": "KC-DC", "sku": "T-ADJ", "delta": 4},
                                                  {"node": "PA-DC", "sku": "WEB-T-ADJ", "delta": 2}]}
    first = server.http.post("/stock/adjust", json=event)
    assert first.status_code == 201, first.text
    assert first.json()["duplicate"] is False
    assert available(server, "T-ADJ") == {"KC-DC": 9, "PA-DC": 2}     # the alias names the item
    assert first.json() == {"event_id": "wms-1",
                            "applied": [{"node": "KC-DC", "sku": "T-ADJ", "on_hand": 9, "delta": 4},
                                        {"node": "PA-DC", "sku": "T-ADJ", "on_hand": 2, "delta": 2}],
                            "rerouted": [], "duplicate": False}
    again = server.http.post("/stock/adjust", json=event)
    assert again.status_code == 200
    # the first answer, field for field and in the same order, but for the duplicate flag
    assert again.content == first.content.replace(b'"duplicate":false}', b'"duplicate":true}')
    assert available(server, "T-ADJ") == {"KC-DC": 9, "PA-DC": 2}

    other = {"event_id": "wms-1", "node": "KC-DC", "sku": "T-ADJ", "delta": 1}
    error_body(server.http.post("/stock/adjust", json=other), 409, "event_id")
    single = server.http.post("/stock/adjust", json={"event_id": "pos-7", "node": "KC-DC", "sku": "T-ADJ",
                                                      "delta": -3})
    assert single.status_code == 201, single.text
    # only units taken away: nothing to re-route, and the answer says so in the same shape
    assert single.json() == {"event_id": "pos-7", "applied": [{"node": "KC-DC", "sku": "T-ADJ", "on_hand": 6,
                                                               "delta": -3}],
                             "rerouted": [], "duplicate": False}
    repeat = server.http.post("/stock/adjust", json={"event_id": "pos-7", "node": "KC-DC", "sku": "T-ADJ",
                                                      "delta": -3})
    assert repeat.content == single.content.replace(b'"duplicate":false}', b'"duplicate":true}')
    assert available(server, "T-ADJ") == {"KC-DC": 6, "PA-DC": 2}

    # below zero, or below what is reserved: 409, nothing applied (not even the good row), event not used
    assert server.http.post("/orders", json=order("ADJ-1", ("T-ADJ", 2))).status_code == 201
    reserved_at = [n for n, units in available(server, "T-ADJ").items() if units == 0][0]
    too_far = {"event_id": "wms-2", "adjustments": [{"node": "KC-DC", "sku": "T-ADJ", "delta": 1},
                                                    {"node": reserved_at, "sku": "T-ADJ", "delta": -1}]}
    error_body(server.http.post("/stock/adjust", json=too_far), 409, "adjustments.1.delta")
    error_body(server.http.post("/stock/adjust", json={"event_id": "wms-3", "node": "KC-DC", "sku": "T-ADJ",
                                                       "delta": -100}), 409, "delta")
    assert available(server, "T-ADJ")["KC-DC"] == 6
    assert query(server.db, "SELECT COUNT(*) FROM stock_events WHERE event_id IN ('wms-2', 'wms-3')") == [(0,)]
    # malformed
    error_body(server.http.post("/stock/adjust", json={"event_id": "wms-4"}), 422)
    error_body(server.http.post("/stock/adjust", json={"node": "KC-DC", "sku": "T-ADJ", "delta": 1}), 422,
               "event_id")
    error_body(server.http.post("/stock/adjust", json={"event_id": "wms-5", "node": "KC-DC", "sku": "T-ADJ",
                                                       "delta": 1.5}), 422, "delta")
    error_body(server.http.post("/stock/adjust", json={"event_id": "wms-6", "node": "MOON", "sku": "T-ADJ",
                                                       "delta": 1}), 422, "node")
    assert available(server, "T-ADJ")["KC-DC"] == 6


def test_held_orders_are_rerouted_in_arrival_order_when_stock_arrives(server):
    add_item(server, "T-HELD", {"KC-DC": 10})
    first = server.http.post("/orders", json=order("HO-1", ("T-HELD", 12)))
    assert first.status_code == 201, first.text
    assert first.json()["status"] == "held"
    assert "12 wanted, 10 available" in first.json()["reason"]
    second = server.http.post("/orders", json=order("HO-2", ("T-HELD", 11)))
    assert second.json()["status"] == "held"
    stored = server.http.get("/orders/HO-1").json()
    assert stored["state"] == "held" and stored["reason"] == first.json()["reason"]
    assert stored["reservations"] == []
    assert available(server, "T-HELD") == {"KC-DC": 10}                 # a held order reserves nothing
    held = metric_samples(server.http.get("/metrics").text)[("steve_held_orders",)]
    assert held >= 2

    # 15 units: enough for either order alone, not both; the older one gets them
    counted = server.http.put("/stock", json=[{"node": "KC-DC", "sku": "T-HELD", "on_hand": 15}])
    assert counted.status_code == 200, counted.text
    assert counted.json()["rerouted"] == ["HO-1"]
    routed = server.http.get("/orders/HO-1").json()
    assert routed["state"] == "routed" and routed["status"] == "routed"
    assert routed["reservations"] == [{"node": "KC-DC", "sku": "T-HELD", "qty": 12, "state": "active"}]
    assert server.http.get("/orders/HO-2").json()["state"] == "held"
    assert available(server, "T-HELD") == {"KC-DC": 3}

    # an adjustment brings the rest
    adjusted = server.http.post("/stock/adjust", json={"event_id": "held-1", "node": "KC-DC", "sku": "T-HELD",
                                                        "delta": 8})
    assert adjusted.status_code == 201, adjusted.text
    assert adjusted.json()["rerouted"] == ["HO-2"]
    repeated = server.http.post("/stock/adjust", json={"event_id": "held-1", "node": "KC-DC", "sku": "T-HELD",
                                                        "delta": 8})
    assert repeated.status_code == 200        # the first answer, naming the order it re-routed then
    assert repeated.content == adjusted.content.replace(b'"duplicate":false}', b'"duplicate":true}')
    assert server.http.get("/orders/HO-2").json()["state"] == "routed"
    assert available(server, "T-HELD") == {"KC-DC": 0}

    # a cancel frees units for the next held order
    third = server.http.post("/orders", json=order("HO-3", ("T-HELD", 5)))
    assert third.json()["status"] == "held"
    assert server.http.post("/orders/HO-1/cancel").status_code == 200
    assert server.http.get("/orders/HO-3").json()["state"] == "routed"
    assert stock_row(server.db, "KC-DC", "T-HELD") == (23, 16)
    metrics = metric_samples(server.http.get("/metrics").text)
    assert metrics[("steve_held_orders",)] == held - 2
    # a retry of a re-routed order answers with its decision as it stands, reserving nothing more
    retry = server.http.post("/orders", json=order("HO-2", ("T-HELD", 11)))
    assert retry.status_code == 200 and retry.json()["status"] == "routed"
    assert stock_row(server.db, "KC-DC", "T-HELD") == (23, 16)


# ---- playbooks -------------------------------------------------------------------------------

def test_playbook_check_reports_diagnostics(server):
    clean = server.http.post("/playbooks/check", json={"text": CANDIDATE})
    assert clean.status_code == 200, clean.text
    assert clean.json()["ok"] is True and clean.json()["version"].startswith("sha256:")
    as_text = server.http.post("/playbooks/check", content=CANDIDATE.encode(),
                               headers={"content-type": "text/plain; charset=utf-8"})
    assert as_text.status_code == 200
    assert as_text.json()["version"] == clean.json()["version"]

    broken = server.http.post("/playbooks/check", json={"text": SYNTAX_ERROR})
    assert broken.status_code == 422
    diagnostics = broken.json()["diagnostics"]
    assert diagnostics and all({"line", "column", "severity", "message"} <= set(d) for d in diagnostics)
    assert any(d["severity"] == "error" and d["line"] >= 4 for d in diagnostics)
    # checked against the live network: a node it does not have is an error
    unknown = server.http.post("/playbooks/check", json={"text": UNKNOWN_NODE})
    assert unknown.status_code == 422
    assert any("DAL-DC" in d["message"] for d in unknown.json()["diagnostics"])
    error_body(server.http.post("/playbooks/check", json={"text": 42}), 422, "text")
    error_body(server.http.post("/playbooks/check", json={"txt": CANDIDATE}), 422, "text")


def test_only_clean_playbooks_are_stored(server):
    for text in (SYNTAX_ERROR, UNKNOWN_NODE):
        refused = server.http.post("/playbooks", json={"text": text, "author": "mallory"})
        body = error_body(refused, 422)
        assert body["details"] and body["diagnostics"]
        listed = [p["version"] for p in server.http.get("/playbooks").json()["playbooks"]]
        assert body["version"] not in listed
        error_body(server.http.post(f"/playbooks/{body['version']}/activate"), 404, "version")
    raw = server.http.post("/playbooks", content=SYNTAX_ERROR.encode(), headers={"content-type": "text/plain"})
    error_body(raw, 422)

    stored = server.http.post("/playbooks", json={"text": CANDIDATE, "author": "ana"})
    assert stored.status_code == 201, stored.text
    version = stored.json()["version"]
    again = server.http.post("/playbooks", content=CANDIDATE.encode(), headers={"content-type": "text/plain"})
    assert again.status_code == 200 and again.json()["version"] == version
    listed = {p["version"]: p for p in server.http.get("/playbooks").json()["playbooks"]}
    assert listed[version]["author"] == "ana"
    assert listed[version]["active"] == 0
    assert server.http.get("/playbooks/active").json()["version"] != version    # stored is not live


def test_shadow_runs_record_differences(server):
    add_item(server, "T-SHADOW", {"PA-DC": 10, "KC-DC": 10})
    add_item(server, "T-PLAIN", {"KC-DC": 10})
    stored = server.http.post("/playbooks", content=CANDIDATE.encode(),
                              headers={"content-type": "text/plain", "x-steve-actor": "ana"})
    assert stored.status_code in (200, 201), stored.text
    version = stored.json()["version"]
    live = server.http.get("/health").json()["playbook"]
    error_body(server.http.post(f"/playbooks/{live}/shadow"), 409)       # the live one cannot shadow itself
    error_body(server.http.post("/playbooks/sha256:nothing/shadow"), 404, "version")

    started = server.http.post(f"/playbooks/{version}/shadow")
    assert started.status_code == 200, started.text
    assert started.json() == {"version": version, "shadow": True}
    assert server.http.get("/health").json()["shadow"] == [version]
    try:
        differs = server.http.post("/orders", json=order("SD-1", ("T-SHADOW", 1)))
        same = server.http.post("/orders", json=order("SD-2", ("T-PLAIN", 1)))
        assert nodes_of(differs.json()) == ["PA-DC"] and nodes_of(same.json()) == ["KC-DC"]
        report = server.http.get(f"/playbooks/{version}/shadow")
        assert report.status_code == 200
        body = report.json()
        assert body["orders"] == 2 and body["differing"] == 1
        [difference] = body["differences"]
        assert difference["order_id"] == "SD-1"
        assert list(difference["live"])[:3] == list(difference["shadow"])[:3] == ["order_id", "status", "shipments"]
        assert nodes_of(difference["live"]) == ["PA-DC"]
        assert nodes_of(difference["shadow"]) == ["KC-DC"]
        assert any(t["rule"] == "Allentown is closed for stocktaking" for t in difference["shadow"]["trace"])
        # the shadow reserves nothing: only the live decision's units are taken
        assert available(server, "T-SHADOW") == {"PA-DC": 9, "KC-DC": 10}
    finally:
        stopped = server.http.delete(f"/playbooks/{version}/shadow")
    assert stopped.status_code == 200 and stopped.json()["shadow"] is False
    assert server.http.get("/health").json()["shadow"] == []
    server.http.post("/orders", json=order("SD-3", ("T-SHADOW", 1)))
    assert server.http.get(f"/playbooks/{version}/shadow").json()["orders"] == 2
    error_body(server.http.get("/playbooks/sha256:nothing/shadow"), 404, "version")


def test_simulate_compares_a_candidate_without_storing_anything(server):
    add_item(server, "T-SIM", {"PA-DC": 4, "KC-DC": 10})
    orders = [order("SIM-1", ("T-SIM", 1)), order("SIM-2", ("T-SIM", 3)), order("SIM-3", ("T-SIM", 2))]
    response = server.http.post("/simulate", json={"playbook": CANDIDATE, "orders": orders})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["orders"] == 3
    assert body["baseline"]["version"] == server.http.get("/health").json()["playbook"]
    # live: PA-DC has 4 units for the first two orders (reserving as it goes), then KC-DC
    assert body["baseline"]["metrics"]["node_usage"] == {"KC-DC": 1, "PA-DC": 2}
    assert body["candidate"]["metrics"]["node_usage"] == {"KC-DC": 3}
    assert body["differing"] == 2
    assert [d["order_id"] for d in body["differences"]] == ["SIM-1", "SIM-2"]
    assert body["delta"]["total_cost"] > 0
    assert available(server, "T-SIM") == {"PA-DC": 4, "KC-DC": 10}
    error_body(server.http.get("/orders/SIM-1"), 404)

    error_body(server.http.post("/simulate", json={"playbook": SYNTAX_ERROR, "orders": orders}), 422)
    assert server.http.post("/simulate", json={"orders": orders}).json()["differing"] == 0
    error_body(server.http.post("/simulate", json={"version": "sha256:nothing", "orders": orders}), 404,
               "version")
    error_body(server.http.post("/simulate", json={"playbook": CANDIDATE, "orders": []}), 422, "orders")
    error_body(server.http.post("/simulate", json={"playbook": CANDIDATE,
                                                   "orders": [order("SIM-4", ("T-SIM", -2))]}),
               422, "orders.0.lines.0.qty")


def test_metrics_are_prometheus_text(server):
    assert server.http.post("/orders", json=order("MT-1", ("JKT-RAIN-M", 1))).status_code in (200, 201)
    response = server.http.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    samples = metric_samples(response.text)
    assert samples[("steve_orders", ("state", "routed"))] >= 1
    assert samples[("steve_route_seconds_count",)] >= 1
    assert ("steve_route_seconds_bucket", ("le", "+Inf")) in samples
    assert 0 <= samples[("steve_split_rate",)] <= 1
    assert "# TYPE steve_route_seconds histogram" in response.text


def test_metrics_give_the_routing_figures_simulate_gives(fresh):
    """The figures `steve simulate` prints (engine.metrics.summarize), over
    the orders routed or shipped (not held or cancelled), and the share of
    the stock available now that a single-warehouse view would hide."""
    live = fresh("--demo")
    http = live.http
    add_item(live, "T-FIG-SPLIT", {"PA-DC": 1, "KC-DC": 1})
    add_item(live, "T-FIG-STORE", {"BOS-STORE": 9})
    placed = {"FG-1": order("FG-1", ("JKT-RAIN-M", 1)),
              "FG-2": order("FG-2", ("T-FIG-SPLIT", 2)),                  # one unit from each: split
              "FG-3": order("FG-3", ("T-FIG-STORE", 2)),                  # from the Boston store
              "FG-4": order("FG-4", ("T-FIG-STORE", 1), delivery="pickup", pickup_node="BOS-STORE"),
              "FG-5": order("FG-5", ("HEADLAMP", 3)),                     # cancelled: not counted
              "FG-6": order("FG-6", ("KAYAK-SOLO", 45))}                  # held: not counted
    for body in placed.values():
        assert http.post("/orders", json=body).status_code == 201
    assert http.post("/orders/FG-5/cancel").status_code == 200
    assert http.post("/orders/FG-2/ship").status_code == 200              # shipped: still counted
    decisions = [{k: v for k, v in http.get(f"/orders/{n}").json().items() if k not in ("state", "reservations")}
                 for n in ("FG-1", "FG-2", "FG-3", "FG-4")]
    assert [len(d["shipments"]) for d in decisions] == [1, 2, 1, 1]

    network = Network.model_validate(http.get("/network").json())
    stock = Stock()
    for node, sku, on_hand, reserved in query(live.db, "SELECT node, sku, on_hand, reserved FROM stock"):
        stock.levels[(node, sku)] = [on_hand, reserved]
    want = summarize(decisions, network, stock)
    assert {k: want[k] for k in ("routed", "split_rate", "shipments_per_order", "total_cost", "mean_cost",
                                 "mean_distance_km", "mean_days", "store_units", "hidden_stock_share")} == {
        "routed": 4, "split_rate": 0.25, "shipments_per_order": 1.25, "total_cost": 37.47, "mean_cost": 9.37,
        "mean_distance_km": 710.0, "mean_days": 1.25, "store_units": 3, "hidden_stock_share": 0.6263}
    text = http.get("/metrics").text
    samples = metric_samples(text)
    for name, figure in (("steve_split_rate", "split_rate"), ("steve_shipments_per_order", "shipments_per_order"),
                         ("steve_total_cost", "total_cost"), ("steve_mean_cost", "mean_cost"),
                         ("steve_mean_distance_km", "mean_distance_km"), ("steve_mean_days", "mean_days"),
                         ("steve_store_units", "store_units"), ("steve_hidden_stock_share", "hidden_stock_share")):
        assert samples[(name,)] == want[figure], name
    assert "# HELP steve_total_cost Shipping cost of the routed orders, in the network's currency" in text
    assert "# TYPE steve_hidden_stock_share gauge" in text
    assert samples[("steve_orders", ("state", "routed"))] + samples[("steve_orders", ("state", "shipped"))] == 4


def early_counts(text: str) -> dict[str, float]:
    samples = metric_samples(text)
    return {outcome: samples.get(("steve_early_routes_total", ("outcome", outcome)), 0.0)
            for outcome in ("kept", "routed_again")}


def test_orders_are_not_routed_early_when_that_is_turned_off(fresh):
    live = fresh("--demo", env={"STEVE_EARLY_ROUTING": "0"})
    add_item(live, "T-LATE", {"PA-DC": 10})
    before = early_counts(live.http.get("/metrics").text)
    assert live.http.post("/orders", json=order("LATE-1", ("T-LATE", 1))).status_code == 201
    assert early_counts(live.http.get("/metrics").text) == before == {"kept": 0.0, "routed_again": 0.0}


# ---- servers of their own ----------------------------------------------------------------------

def test_metrics_count_the_orders_whose_early_decision_was_kept(fresh):
    """By default (early routing on), orders placed one at a time are each
    routed early and keep that decision under the write lock; retries and
    dry runs route nothing early."""
    live = fresh("--demo")
    add_item(live, "T-EARLY", {"PA-DC": 10, "KC-DC": 10})
    before = early_counts(live.http.get("/metrics").text)
    bodies = [order(f"ER-{n}", ("T-EARLY", 1)) for n in range(4)] + [order("ER-4", ("T-EARLY", 3))]
    for body in bodies:
        assert live.http.post("/orders", json=body).status_code == 201
    assert live.http.post("/orders", json=bodies[0]).status_code == 200           # a retry
    assert live.http.post("/route", json=order("ER-5", ("T-EARLY", 1))).status_code == 200
    text = live.http.get("/metrics").text
    assert early_counts(text) == {"kept": before["kept"] + len(bodies), "routed_again": before["routed_again"]}
    assert f'steve_early_routes_total{{outcome="kept"}} {before["kept"] + len(bodies)}' in text.splitlines()


def test_writes_need_the_token_and_reads_stay_open(fresh):
    live = fresh("--demo", "--token", "s3cret")
    assert "No token configured" not in live.log()
    http = live.http
    placed = order("AU-1", ("JKT-RAIN-M", 1))
    writes = [("POST", "/orders", {"json": placed}),
              ("POST", "/orders/AU-1/cancel", {}), ("POST", "/orders/AU-1/ship", {}),
              ("PUT", "/stock", {"json": [{"node": "PA-DC", "sku": "JKT-RAIN-M", "on_hand": 1}]}),
              ("POST", "/stock/adjust", {"json": {"event_id": "a", "node": "PA-DC", "sku": "JKT-RAIN-M",
                                                  "delta": -80}}),
              ("PUT", "/network", {"json": {"nodes": [], "carriers": []}}),
              ("PUT", "/catalog", {"json": {"items": []}}),
              ("POST", "/playbooks", {"json": {"text": CANDIDATE}}),
              ("POST", "/playbooks/sha256:x/activate", {}),
              ("POST", "/playbooks/sha256:x/shadow", {}), ("DELETE", "/playbooks/sha256:x/shadow", {})]
    for method, path, options in writes:
        missing = http.request(method, path, **options)
        error_body(missing, 401)
        assert missing.headers["www-authenticate"] == "Bearer", path
        error_body(http.request(method, path, headers={"authorization": "Bearer wrong"}, **options), 403)
        error_body(http.request(method, path, headers={"authorization": "Basic czNjcmV0"}, **options), 401)
    assert available(live, "JKT-RAIN-M")["PA-DC"] == 90                   # nothing was written
    assert http.get("/playbooks").json()["playbooks"][0]["author"] == "demo"
    assert len(http.get("/playbooks").json()["playbooks"]) == 1

    # reads stay open
    for path in ("/health", "/availability/JKT-RAIN-M", "/network", "/catalog", "/playbooks",
                 "/playbooks/active", "/metrics", "/openapi.json"):
        assert http.get(path).status_code == 200, path
    assert http.post("/route", json=placed).status_code == 200
    assert http.post("/playbooks/check", json={"text": CANDIDATE}).status_code == 200
    assert http.post("/simulate", json={"playbook": CANDIDATE, "orders": [placed]}).status_code == 200

    # with the token
    good = {"authorization": "Bearer s3cret"}
    assert http.post("/orders", json=placed, headers=good).status_code == 201
    assert http.get("/orders/AU-1").status_code == 200
    assert http.post("/orders/AU-1/cancel", headers=good).status_code == 200


def test_bodies_over_the_limit_get_413(fresh):
    live = fresh("--demo", "--max-body", "4096")
    http = live.http
    big = order("BIG-1", ("JKT-RAIN-M", 1), note="x" * 8000)
    body = error_body(http.post("/orders", json=big), 413, "body")
    assert "4,096" in body["error"]

    def chunks():                     # no Content-Length: the limit holds while reading
        for _ in range(10):
            yield b" " * 1000
        yield json.dumps(big).encode()
    streamed = http.post("/orders", content=chunks(), headers={"content-type": "application/json"})
    assert "content-length" not in streamed.request.headers
    error_body(streamed, 413, "body")
    error_body(http.post("/playbooks", content=b"#" * 5000, headers={"content-type": "text/plain"}), 413)
    error_body(http.put("/stock", json=[{"node": "PA-DC", "sku": "JKT-RAIN-M", "on_hand": 5}] * 200), 413)
    error_body(http.get("/orders/BIG-1"), 404)
    assert available(live, "JKT-RAIN-M")["PA-DC"] == 90
    # under the limit, chunked or not, all is well
    small = order("SMALL-1", ("JKT-RAIN-M", 1))
    assert http.post("/orders", json=small).status_code == 201
    assert http.post("/route", content=iter([json.dumps(small).encode()]),
                     headers={"content-type": "application/json"}).status_code == 200


def test_activation_switches_the_live_playbook_and_rolls_back(fresh):
    live = fresh("--demo")
    http = live.http
    demo_version = http.get("/health").json()["playbook"]
    boston = order("AC-1", ("JKT-RAIN-M", 1))
    assert nodes_of(http.post("/route", json=boston).json()) == ["PA-DC"]

    version = http.post("/playbooks", json={"text": CANDIDATE, "author": "ana"}).json()["version"]
    assert nodes_of(http.post("/route", json=boston).json()) == ["PA-DC"]     # stored, not yet live
    switched = http.post(f"/playbooks/{version}/activate")
    assert switched.status_code == 200, switched.text
    assert switched.json() == {"active": version}
    assert http.get("/health").json()["playbook"] == version
    assert http.get("/playbooks/active").json()["version"] == version
    decision = http.post("/route", json=boston).json()
    assert nodes_of(decision) == ["GA-DC"]
    assert decision["playbook"]["version"] == version
    assert "closed for stocktaking" in decision["nodes"]["PA-DC"]
    placed = http.post("/orders", json=boston).json()
    assert placed["playbook"]["version"] == version and nodes_of(placed) == ["GA-DC"]
    assert query(live.db, "SELECT playbook_version FROM orders WHERE id = 'AC-1'") == [(version,)]

    # roll back: activate the older version
    back = http.post(f"/playbooks/{demo_version}/activate")
    assert back.status_code == 200
    assert http.get("/health").json()["playbook"] == demo_version
    assert nodes_of(http.post("/route", json=order("AC-2", ("JKT-RAIN-M", 1))).json()) == ["PA-DC"]
    versions = {p["version"]: p for p in http.get("/playbooks").json()["playbooks"]}
    assert versions[demo_version]["active"] == 1 and versions[version]["active"] == 0
    assert versions[version]["activated_at"]

    # a broken playbook can never become active
    refused = error_body(http.post("/playbooks", json={"text": SYNTAX_ERROR}), 422)
    error_body(http.post(f"/playbooks/{refused['version']}/activate"), 404, "version")
    assert http.get("/health").json()["playbook"] == demo_version
    actions = [a for (a,) in query(live.db, "SELECT action FROM audit WHERE action LIKE '%playbook%' ORDER BY id")]
    assert actions == ["add playbook", "activate playbook", "add playbook", "activate playbook",
                       "activate playbook"]


def test_two_workers_on_one_database_never_over_reserve(fresh):
    live = fresh("--demo", "--workers", "2")
    add_item(live, "T-SCARCE", {"PA-DC": 3, "KC-DC": 5})
    orders = [order(f"WK-{n}", ("T-SCARCE", 1)) for n in range(12)]
    sends = orders + [orders[0], orders[0]]          # one order sent three times at once

    def place(body):
        with live.client() as http:
            response = http.post("/orders", json=body)
        return body["id"], response.status_code, response.json()

    with concurrent.futures.ThreadPoolExecutor(max_workers=len(sends)) as pool:
        results = list(pool.map(place, sends))
    assert all(status in (200, 201) for _, status, _ in results), results
    firsts = [r for r in results if r[0] == "WK-0"]
    assert sorted(status for _, status, _ in firsts) == [200, 200, 201]
    assert len({json.dumps(decision, sort_keys=True) for _, _, decision in firsts}) == 1
    statuses = {order_id: decision["status"] for order_id, _, decision in results}
    assert sorted(statuses.values()).count("routed") == 8
    assert sorted(statuses.values()).count("held") == 4
    metrics = metric_samples(live.http.get("/metrics").text)      # summed over both workers
    assert metrics[("steve_route_seconds_count",)] == len(sends)
    assert metrics[("steve_orders", ("state", "routed"))] == 8
    exit_code = live.stop()
    assert exit_code == 0, live.log()

    # the database file, read directly after the server stopped
    for node, on_hand, reserved in query(live.db, "SELECT node, on_hand, reserved FROM stock "
                                                  "WHERE sku = 'T-SCARCE'"):
        assert reserved <= on_hand
        live_units = query(live.db, "SELECT COALESCE(SUM(qty), 0) FROM reservations WHERE node = ? AND "
                                    "sku = 'T-SCARCE' AND state = 'active'", (node,))[0][0]
        assert reserved == live_units == on_hand, node
    assert query(live.db, "SELECT COUNT(*) FROM stock WHERE reserved > on_hand") == [(0,)]
    assert query(live.db, "SELECT state, COUNT(*) FROM orders WHERE id LIKE 'WK-%' GROUP BY state") == \
        [("held", 4), ("routed", 8)]
    for order_id, state, decision in query(live.db, "SELECT id, state, decision FROM orders "
                                                    "WHERE id LIKE 'WK-%'"):
        reserved = query(live.db, "SELECT COALESCE(SUM(qty), 0) FROM reservations WHERE order_id = ?",
                         (order_id,))[0][0]
        assert reserved == (1 if state == "routed" else 0), order_id
        assert json.loads(decision)["status"] == state


def test_start_up_does_not_say_it_listens_on_a_port_another_server_holds(tmp_path):
    """uvicorn cannot bind a port another HTTP server listens on; that
    server's answer to /health must not read as Steve listening."""
    import http.server
    import subprocess
    import threading as _threading

    from live_server import steve_executable

    other = http.server.ThreadingHTTPServer(("127.0.0.1", 0), http.server.BaseHTTPRequestHandler)  # 501 to all
    _threading.Thread(target=other.serve_forever, daemon=True).start()
    try:
        port = other.server_address[1]
        done = subprocess.run([steve_executable(), "serve", "--db", str(tmp_path / "s.db"), "--host", "127.0.0.1",
                               "--port", str(port)], capture_output=True, text=True, timeout=60)
    finally:
        other.shutdown()
        other.server_close()
    said = done.stdout + done.stderr
    assert "Steve is starting on" in said and "address already in use" in said
    assert "Steve is listening" not in said
