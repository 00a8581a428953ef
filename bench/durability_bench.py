"""What synchronous=FULL costs against NORMAL, placing orders for real.

    PYTHONPATH=. python bench/durability_bench.py [--orders 600] [--rounds 3] [--dir DIR]

The store runs SQLite in WAL mode with synchronous=FULL: every commit waits
for the write-ahead log to reach the disk (fsync), so an order acknowledged
with a 2xx survives a power cut or an operating-system crash, not only a
killed process. With NORMAL the log is synced only at checkpoints: a killed
process still loses nothing (tests/test_reliability.py kills it), but the
last commits before a power cut can vanish although the client was told
"201 Created".

For each setting this places ORDERS orders one after another through
server.service.Service (route + reserve + commit, as POST /orders does,
without HTTP) on a fresh database in DIR (default: a temporary folder next
to this file, so on the project's disk rather than a RAM-backed /tmp), and
times bare commits (BEGIN IMMEDIATE, one UPDATE, COMMIT) as well. Rounds
alternate FULL and NORMAL so drifts in the machine's load hit both.
Nothing is sent over the network.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

from engine.models import Catalog
from server.demo import load_demo
from server.service import Service
from server.store import Store

HERE = Path(__file__).resolve().parent


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def setup(folder: Path, mode: str) -> tuple[Store, Service]:
    store = Store(folder / f"{mode.lower()}.db")
    load_demo(store)
    store.conn.execute(f"PRAGMA synchronous = {mode}")        # FULL or NORMAL, from the list below
    service = Service(store)
    catalog = service.get_document("catalog")
    catalog["items"].append({"sku": "BENCH-1", "name": "Bench item", "weight": 1.0, "price": 80.0})
    service.put_catalog(Catalog.model_validate(catalog), "bench")
    service.put_stock([{"node": "PA-DC", "sku": "BENCH-1", "on_hand": 1_000_000},
                       {"node": "KC-DC", "sku": "BENCH-1", "on_hand": 1_000_000}], "bench")
    return store, service


def place_orders(service: Service, count: int, tag: str) -> list[float]:
    took = []
    for n in range(count):
        body = {"id": f"{tag}-{n}", "created_at": "2026-11-25T09:30:00-05:00",
                "ship_to": {"country": "US", "state": "MA", "zip": "02108"},
                "lines": [{"sku": "BENCH-1", "qty": 1 + n % 3}]}
        started = time.perf_counter()
        document, created = service.place(body)
        took.append(time.perf_counter() - started)
        assert created and document["status"] == "routed", document
    return took


def bare_commits(store: Store, count: int) -> list[float]:
    took = []
    for n in range(count):
        started = time.perf_counter()
        with store.write() as conn:
            conn.execute("INSERT OR REPLACE INTO meta (key, value) VALUES ('bench', ?)", (str(n),))
        took.append(time.perf_counter() - started)
    return took


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=600, help="orders per setting and round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--dir", type=Path, default=None, help="where the databases go (a real disk)")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args()
    results: dict[str, dict[str, list[float]]] = {m: {"place": [], "commit": []} for m in ("FULL", "NORMAL")}
    with tempfile.TemporaryDirectory(prefix="durability-", dir=args.dir or HERE) as folder:
        for round_ in range(args.rounds):
            for mode in (("FULL", "NORMAL") if round_ % 2 == 0 else ("NORMAL", "FULL")):
                path = Path(folder) / f"round{round_}"
                path.mkdir(exist_ok=True)
                store, service = setup(path, mode)
                try:
                    assert store.conn.execute("PRAGMA synchronous").fetchone()[0] == {"FULL": 2, "NORMAL": 1}[mode]
                    results[mode]["place"] += place_orders(service, args.orders, f"{mode}-{round_}")
                    results[mode]["commit"] += bare_commits(store, args.orders)
                finally:
                    store.close()
    figures = {}
    for mode, timings in results.items():
        place, commit = timings["place"], timings["commit"]
        figures[mode] = {"orders": len(place), "orders_per_s": round(len(place) / sum(place), 1),
                         "place_ms_mean": round(statistics.fmean(place) * 1000, 2),
                         "place_ms_p50": round(statistics.median(place) * 1000, 2),
                         "place_ms_p99": round(percentile(place, 0.99) * 1000, 2),
                         "commit_ms_mean": round(statistics.fmean(commit) * 1000, 3),
                         "commit_ms_p50": round(statistics.median(commit) * 1000, 3),
                         "commit_ms_p99": round(percentile(commit, 0.99) * 1000, 3)}
    if args.json:
        print(json.dumps(figures, indent=2))
        return
    print(f"{'synchronous':<12} {'orders':>7} {'orders/s':>9} {'place mean':>11} {'p50':>9} {'p99':>9} "
          f"{'commit mean':>12} {'p50':>9} {'p99':>9}")
    for mode, f in figures.items():
        print(f"{mode:<12} {f['orders']:>7} {f['orders_per_s']:>9} {f['place_ms_mean']:>8} ms "
              f"{f['place_ms_p50']:>6} ms {f['place_ms_p99']:>6} ms {f['commit_ms_mean']:>9} ms "
              f"{f['commit_ms_p50']:>6} ms {f['commit_ms_p99']:>6} ms")


if __name__ == "__main__":
    main()
