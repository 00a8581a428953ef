"""server.service on a real SQLite file loaded with the demo: rules that
protect what is live (network changes, availability)."""

from __future__ import annotations

import json

import pytest

from engine.models import Network
from server.demo import demo_file, load_demo
from server.service import Service
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


def test_a_node_the_live_playbook_names_cannot_be_dropped(service):
    with pytest.raises(Conflict) as refused:
        service.put_network(demo_network(drop="BOS-STORE"), "test")
    assert refused.value.details == [{"loc": "playbook line 11",
                                      "msg": 'the active playbook: unknown node "BOS-STORE"; did you mean "MSP-STORE"?'}]
    service.put_network(demo_network(drop="MSP-STORE"), "test")             # not named: fine


def test_availability_leaves_out_stock_no_rule_lets_ship(service):
    tents = service.availability("TENT-2P")
    assert "SAV-INBOUND" not in tents["nodes"]
    assert tents["not_usable"] == {"SAV-INBOUND": {
        "units": 200, "why": "in-transit stock: no rule allows it for this item on every order"}}
    assert tents["total"] == sum(tents["nodes"].values()) == 95
    kayaks = service.availability("KAYAK-SOLO")           # "Kayaks ship from the maker" allows vendors
    assert kayaks["nodes"] == {"KAYAK-MAKER": 40} and kayaks["not_usable"] == {}
