"""Fill an empty database with the bundled demo (rulebooks/): network,
catalog, stock and the demo playbook, activated."""

from __future__ import annotations

import csv
import io
import json
from importlib import resources

import dsl
from engine.models import Catalog, Network
from .service import Service
from .store import Store

DEMO_ORDER = {
    "id": "DEMO-1", "created_at": "2026-11-25T09:30:00-05:00",
    "customer": {"id": "C-1", "tier": "regular"},
    "ship_to": {"country": "US", "state": "MA", "zip": "02108"},
    "lines": [{"sku": "JKT-RAIN-M", "qty": 1}],
}


def demo_file(name: str) -> str:
    return resources.files("rulebooks").joinpath(name).read_text(encoding="utf-8")


def load_demo(store: Store) -> bool:
    """Load the demo into an empty store. Returns False if it had data."""
    if not store.is_empty():
        return False
    service = Service(store)
    service.put_network(Network.model_validate(json.loads(demo_file("network.json"))), "demo")
    service.put_catalog(Catalog.model_validate(json.loads(demo_file("catalog.json"))), "demo")
    rows = [(r["node"], r["sku"], int(r["on_hand"])) for r in csv.DictReader(io.StringIO(demo_file("stock.csv")))]
    with store.write() as conn:
        store.set_on_hand(conn, rows, "demo")
    text = demo_file("demo.playbook")
    result, _ = service.add_playbook(text, "demo")
    service.activate(result["version"], "demo")
    assert dsl.version_of(text) == result["version"]
    return True
