"""server.app in process (Starlette's TestClient, lifespan included): the
exception-to-status map, the body limit with and without Content-Length,
the JSON (and text) body shapes each endpoint takes, auth configuration.
Fast; the real-server tests are in test_server.py."""

from __future__ import annotations

import json
import re
import sqlite3
import warnings

import pytest
from starlette.exceptions import StarletteDeprecationWarning

with warnings.catch_warnings():
    # Starlette 1.x prefers the httpx2 package for its test client and warns when
    # it falls back to httpx (which the project's test extra installs)
    warnings.filterwarnings("ignore", message="Using `httpx` with `starlette.testclient`",
                            category=StarletteDeprecationWarning)
    from starlette.testclient import TestClient

from server.app import create_app
from server.demo import DEMO_ORDER, demo_file, load_demo
from server.store import Store

TOKEN = "t0ken"


@pytest.fixture
def demo_db(tmp_path):
    path = tmp_path / "steve.db"
    store = Store(path)
    try:
        load_demo(store)
    finally:
        store.close()
    return str(path)


@pytest.fixture
def client(demo_db):
    with TestClient(create_app(db=demo_db)) as running:
        yield running


def refusal(response, status: int, *locs: str) -> dict:
    assert response.status_code == status, response.text
    body = response.json()
    assert isinstance(body["error"], str) and body["error"]
    assert all({"loc", "msg"} <= set(d) for d in body["details"]), body
    for loc in locs:
        assert loc in [d["loc"] for d in body["details"]], body
    return body


def order(order_id: str = "O-1", sku: str = "JKT-RAIN-M", qty=1, **fields) -> dict:
    return {**DEMO_ORDER, "id": order_id, "lines": [{"sku": sku, "qty": qty}], **fields}


# ---- the exception map ------------------------------------------------------------------------------

def test_validation_errors_are_422_with_field_paths(client):
    body = refusal(client.put("/stock", json=[{"node": "PA-DC", "sku": "JKT-RAIN-M", "on_hand": "many"}]),
                   422, "0.on_hand")
    assert body["error"] == "invalid request body"
    refusal(client.post("/orders", json=order(qty=-2)), 422, "lines.0.qty")
    refusal(client.put("/network", json={"nodes": [{"id": "X", "lat": 95, "lon": 0}], "carriers": []}), 422,
            "nodes.0.lat", "carriers")
    refusal(client.put("/catalog", json={"items": [{"sku": "A"}, {"sku": "A"}]}), 422, "items.1.sku")


def test_store_errors_keep_their_status(client):
    refusal(client.get("/orders/NOPE"), 404, "order_id")                           # NotFound
    client.post("/orders", json=order("O-1"))
    refusal(client.post("/orders", json=order("O-1", qty=2)), 409, "id")          # Conflict
    refusal(client.put("/stock", json=[{"node": "ATLANTIS", "sku": "JKT-RAIN-M", "on_hand": 1}]), 422,
            "0.node")                                                              # Invalid


def test_an_empty_database_is_409_until_documents_are_loaded(tmp_path):
    """Nothing to route with yet is a conflict with what the server holds
    (409, no Retry-After: waiting does not help, loading does), never a 5xx."""
    nothing = {"error": "no network or catalog loaded yet: PUT /network and PUT /catalog first",
               "details": [{"loc": "network", "msg": "no network loaded yet: PUT /network"},
                           {"loc": "catalog", "msg": "no catalog loaded yet: PUT /catalog"}]}
    no_playbook = {"error": "no active playbook: POST /playbooks and activate a version first",
                   "details": [{"loc": "playbook",
                                "msg": "no active playbook: POST /playbooks and activate a version first"}]}
    with TestClient(create_app(db=str(tmp_path / "empty.db"))) as client:
        assert client.get("/health").json() == {"status": "ok", "playbook": None, "shadow": []}
        for response in (client.post("/route", json=order()), client.post("/orders", json=order()),
                         client.get("/availability/JKT-RAIN-M"),
                         client.post("/simulate", json={"orders": [order()]})):
            assert response.status_code == 409, response.text
            assert response.json() == nothing
            assert "retry-after" not in response.headers
        refusal(client.get("/network"), 404)
        refusal(client.get("/playbooks/active"), 404)

        # bootstrapping by hand, as the start-up message says
        assert client.put("/network", content=demo_file("network.json"),
                          headers={"content-type": "application/json"}).status_code == 200
        assert client.post("/route", json=order()).json()["details"] == nothing["details"][1:]
        assert client.put("/catalog", content=demo_file("catalog.json")).status_code == 200
        assert client.put("/stock", json=[{"node": "PA-DC", "sku": "WEB-501", "on_hand": 4},
                                          {"node": "KAYAK-MAKER", "sku": "KAYAK-SOLO", "on_hand": 7},
                                          {"node": "SAV-INBOUND", "sku": "KAYAK-SOLO", "on_hand": 2},
                                          {"node": "GA-DC", "sku": "KAYAK-SOLO", "on_hand": 1}]).json()["updated"] == 4
        for response in (client.post("/route", json=order()), client.post("/orders", json=order())):
            assert response.status_code == 409 and response.json() == no_playbook         # no playbook yet
        # availability needs no playbook: nothing is kept back, and no rule allows vendors or in-transit stock
        assert client.get("/availability/WEB-501").json() == {
            "sku": "JKT-RAIN-M", "total": 4, "nodes": {"PA-DC": 4}, "kept": {}, "by_kind": {"warehouse": 4},
            "not_usable": {}}
        assert client.get("/availability/KAYAK-SOLO").json() == {
            "sku": "KAYAK-SOLO", "total": 1, "nodes": {"GA-DC": 1}, "kept": {}, "by_kind": {"warehouse": 1},
            "not_usable": {"KAYAK-MAKER": {"units": 7, "why": "drop-ship vendor: no active playbook allows it"},
                           "SAV-INBOUND": {"units": 2, "why": "in-transit stock: no active playbook allows it"}}}
        refusal(client.get("/availability/NOPE"), 404, "sku")
        version = client.post("/playbooks", content=demo_file("demo.playbook").encode(),
                              headers={"content-type": "text/plain"}).json()["version"]
        assert client.post(f"/playbooks/{version}/activate").status_code == 200
        decision = client.post("/orders", json=order())
        assert decision.status_code == 201 and decision.json()["shipments"][0]["node"] == "PA-DC"
        assert client.get("/availability/JKT-RAIN-M").json()["nodes"] == {"PA-DC": 3}
        # the demo playbook lets kayaks ship from the maker
        assert client.get("/availability/KAYAK-SOLO").json()["nodes"] == {"GA-DC": 1, "KAYAK-MAKER": 7}


def test_bad_json_is_400(client):
    for raw in (b"{", b"", b"\xff\xfe{}", b'{"id": "A", "lines": [}', b"[" * 40 + b"]" * 40, b"[" * 100_000):
        refusal(client.post("/orders", content=raw, headers={"content-type": "application/json"}), 400, "body")
    refusal(client.post("/playbooks", content=b"\xff\xfe", headers={"content-type": "text/plain"}), 400)


def test_auth_errors_are_401_and_403(demo_db):
    with TestClient(create_app(db=demo_db, token=TOKEN)) as client:
        missing = refusal(client.post("/orders", json=order()), 401)
        assert client.post("/orders", json=order()).headers["www-authenticate"] == "Bearer"
        assert "Bearer" in missing["error"]
        refusal(client.post("/orders", json=order(), headers={"Authorization": "Bearer nope"}), 403)
        refusal(client.post("/orders", json=order(), headers={"Authorization": f"Token {TOKEN}"}), 401)
        refusal(client.post("/orders", json=order(), headers={"Authorization": "Bearer"}), 401)
        assert client.post("/orders", json=order(), headers={"Authorization": f"bearer {TOKEN}"}).status_code == 201
        assert client.get("/orders/O-1").status_code == 200                         # reads are open
        # the auth check comes first: a bad body from a stranger is still 401
        refusal(client.post("/orders", content=b"{", headers={"content-type": "application/json"}), 401)


def test_the_token_can_come_from_the_environment(demo_db, monkeypatch):
    monkeypatch.setenv("STEVE_TOKEN", TOKEN)
    with TestClient(create_app(db=demo_db)) as client:
        refusal(client.put("/stock", json=[]), 401)
        ok = client.put("/stock", json=[], headers={"Authorization": f"Bearer {TOKEN}",
                                                    "X-Steve-Actor": "night-sync"})
        assert ok.status_code == 200
    store = Store(demo_db)
    try:
        actors = store.query("SELECT actor FROM audit WHERE action = 'put stock' ORDER BY id")
    finally:
        store.close()
    assert actors[-1]["actor"] == "night-sync"


def test_a_rejected_playbook_is_422_with_diagnostics(client):
    response = client.post("/playbooks", json={"text": 'playbook "X"\nrule "r"\n  when\n'})
    body = refusal(response, 422)
    assert body["version"].startswith("sha256:")
    assert body["details"][0]["loc"].startswith("line ")
    assert all({"line", "column", "severity", "message"} == set(d) for d in body["diagnostics"])
    assert [p["name"] for p in client.get("/playbooks").json()["playbooks"]] == ["Trailhead Outfitters"]


def test_a_busy_database_is_503_and_other_sqlite_errors_are_not_hidden(demo_db):
    with TestClient(create_app(db=demo_db), raise_server_exceptions=False) as client:
        service = client.app.state.service

        def locked():
            raise sqlite3.OperationalError("database is locked")
        service.health = locked
        busy = refusal(client.get("/health"), 503)
        assert busy["error"] == "the database is busy; retry shortly"
        assert client.get("/health").headers["retry-after"] == "1"

        def broken():
            raise sqlite3.OperationalError("no such table: stock")
        service.health = broken
        assert client.get("/health").status_code == 500          # a real fault, not blamed on the caller


def test_unknown_routes_and_methods_are_json(client):
    refusal(client.get("/nope"), 404)
    refusal(client.put("/orders/O-1"), 405)
    assert client.put("/orders/O-1").headers["allow"]


# ---- the body limit ---------------------------------------------------------------------------------

def test_body_limit_with_content_length(demo_db):
    with TestClient(create_app(db=demo_db, max_body=2000)) as client:
        body = refusal(client.post("/orders", json=order(note="x" * 3000)), 413, "body")
        assert "2,000" in body["error"]
        exact = json.dumps(order("EXACT", note="")).encode()
        exact = json.dumps(order("EXACT", note="y" * (2000 - len(exact)))).encode()
        assert len(exact) == 2000
        assert client.post("/orders", content=exact, headers={"content-type": "application/json"}).status_code == 201
        refusal(client.post("/orders", content=exact + b" ", headers={"content-type": "application/json"}), 413)
        refusal(client.post("/playbooks/check", content=b"#" * 2001, headers={"content-type": "text/plain"}), 413)


def test_body_limit_without_content_length(demo_db):
    with TestClient(create_app(db=demo_db, max_body=2000)) as client:
        def chunked(payload: bytes, size: int = 300):
            for start in range(0, len(payload), size):
                yield payload[start:start + size]

        big = json.dumps(order("BIG", note="x" * 5000)).encode()
        response = client.post("/orders", content=chunked(big), headers={"content-type": "application/json"})
        assert "content-length" not in response.request.headers
        assert response.request.headers["transfer-encoding"] == "chunked"
        refusal(response, 413, "body")
        refusal(client.get("/orders/BIG"), 404)                 # nothing was placed
        small = json.dumps(order("SMALL")).encode()
        assert client.post("/orders", content=chunked(small, 50),
                           headers={"content-type": "application/json"}).status_code == 201


def test_body_limit_from_the_environment(demo_db, monkeypatch):
    monkeypatch.setenv("STEVE_MAX_BODY", "500")
    with TestClient(create_app(db=demo_db)) as client:
        refusal(client.post("/route", json=order(note="z" * 600)), 413)
        assert client.post("/route", json=order()).status_code == 200


# ---- body shapes --------------------------------------------------------------------------------------

def test_orders_and_routes_take_an_order_object(client):
    refusal(client.post("/route", json=[order()]), 422, "body")
    refusal(client.post("/route", json="O-1"), 422, "body")
    refusal(client.post("/route", content=b"null"), 422, "body")
    # unknown keys are kept out of the way; aliases and integer zips are understood
    decision = client.post("/route", json=order(sku="WEB-501", gift_note="hi",
                                                ship_to={"country": "US", "zip": 2108}))
    assert decision.status_code == 200, decision.text
    assert decision.json()["shipments"][0]["lines"] == [{"sku": "JKT-RAIN-M", "qty": 1}]
    # an order that validates but cannot be routed: the decision itself, with the contract's error keys
    unknown = refusal(client.post("/route", json=order(sku="NOPE")), 422, "lines.0.sku")
    assert unknown["status"] == "error" and unknown["order_id"] == "O-1"


def test_stock_bodies(client):
    refusal(client.put("/stock", json={"node": "PA-DC", "sku": "JKT-RAIN-M", "on_hand": 1}), 422, "body")
    refusal(client.put("/stock", json=[{"node": "PA-DC", "sku": "JKT-RAIN-M"}]), 422, "0.on_hand")
    refusal(client.put("/stock", json=[{"node": "", "sku": "JKT-RAIN-M", "on_hand": 1}]), 422, "0.node")
    refusal(client.put("/stock", json=[{"node": "PA-DC", "sku": "JKT-RAIN-M", "on_hand": 1, "x": 1}]), 422, "0.x")
    assert client.put("/stock", json=[]).json() == {"updated": 0, "rerouted": []}
    # an alias names the item; the count lands on the sku
    assert client.put("/stock", json=[{"node": "PA-DC", "sku": "WEB-501", "on_hand": 12}]).status_code == 200
    assert client.get("/availability/JKT-RAIN-M").json()["nodes"]["PA-DC"] == 12

    single = {"event_id": "e-1", "node": "PA-DC", "sku": "JKT-RAIN-M", "delta": 2}
    assert client.post("/stock/adjust", json=single).status_code == 201
    listed = {"event_id": "e-2", "adjustments": [{"node": "PA-DC", "sku": "JKT-RAIN-M", "delta": -1}]}
    assert client.post("/stock/adjust", json=listed).status_code == 201
    assert client.get("/availability/JKT-RAIN-M").json()["nodes"]["PA-DC"] == 13
    refusal(client.post("/stock/adjust", json={"event_id": "e-3", "node": "PA-DC"}), 422, "body")
    refusal(client.post("/stock/adjust", json={"event_id": "", "node": "PA-DC", "sku": "JKT-RAIN-M",
                                               "delta": 1}), 422, "event_id")
    refusal(client.post("/stock/adjust", json={"event_id": "e-4", "adjustments": [{"node": "PA-DC",
                                                                                    "sku": "NOPE", "delta": 1}]}),
            422, "adjustments.0.sku")
    refusal(client.post("/stock/adjust", json=[single]), 422, "body")


def test_playbook_bodies_json_or_text(client):
    text = demo_file("demo.playbook")
    as_json = client.post("/playbooks/check", json={"text": text, "author": "ana"})
    as_text = client.post("/playbooks/check", content=text.encode(), headers={"content-type": "text/plain"})
    assert as_json.status_code == as_text.status_code == 200
    assert as_json.json() == as_text.json()
    assert set(as_json.json()) == {"version", "ok", "diagnostics"}
    refusal(client.post("/playbooks/check", json={"text": text, "extra": 1}), 422, "extra")
    refusal(client.post("/playbooks/check", json=[text]), 422, "body")
    refusal(client.post("/playbooks/check", json={}), 422, "text")
    again = client.post("/playbooks", json={"text": text, "author": "ana"})
    assert again.status_code == 200                       # the demo's own version is already stored
    assert again.json()["version"] == client.get("/health").json()["playbook"]


def test_openapi_lists_every_route_of_the_app(client):
    from server.app import ROUTES

    document = client.get("/openapi.json").json()
    assert document["openapi"] == "3.1.0"
    for route in ROUTES:
        if route.path == "/openapi.json":
            continue
        path = re.sub(r":\w+}", "}", route.path)        # {order_id:path} is {order_id} in OpenAPI
        assert path in document["paths"], route.path
        documented = set(document["paths"][path])
        assert {m.lower() for m in route.methods} - {"head"} <= documented, route.path
        for method, operation in document["paths"][path].items():
            writes = method != "get" and route.path not in ("/route", "/playbooks/check", "/simulate")
            assert ("security" in operation) == writes, (method, route.path)


def test_playbook_text_is_stored_exactly_as_sent(client):
    text = '\n\n# leading blank lines and a comment\nplaybook "Spaces"\n\nrule "r"\n  when node.kind is store\n' \
           '  then exclude node\n\n'
    from dsl import version_of

    for sent in ({"json": {"text": text}}, {"content": text.encode(), "headers": {"content-type": "text/plain"}}):
        checked = client.post("/playbooks/check", **sent)
        assert checked.json()["version"] == version_of(text)
        stored = client.post("/playbooks", **sent)
        assert stored.json()["version"] == version_of(text)
    assert client.get("/playbooks").json()["playbooks"][-1]["version"] == version_of(text)
    broken = client.post("/playbooks/check", json={"text": "\n\n\nplaybook \"L\"\nrule \"r\"\n  when\n"})
    assert broken.status_code == 422
    assert min(d["line"] for d in broken.json()["diagnostics"] if d["severity"] == "error") >= 6


def test_a_bad_line_is_reported_once(client):
    body = refusal(client.post("/orders", json=order(qty=-1)), 422, "lines.0.qty")
    assert [d["loc"] for d in body["details"]] == ["lines.0.qty"]        # not also "lines: too short"
    refusal(client.post("/orders", json=order(lines=[])), 422, "lines")    # a list truly too short still is
