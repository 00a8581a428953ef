"""Routing speed on the bundled demo: orders/s on one core, per-order
latency, and the time each matcher (Python, durable_rules) takes.

    python bench/route_bench.py [--orders 10000] [--seed 7] [--matcher python|durable|both]

Orders are generated deterministically from the seed: ship-to points drawn
from the packaged US ZIP table, 1-3 lines of demo items, times spread over a
week, 5% members, 5% store pickups, some gift tags.
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import dsl  # noqa: E402
import engine  # noqa: E402
from engine.geo import _zip_table  # noqa: E402
from engine.matching import run_rules  # noqa: E402
from steve.files import load_catalog, load_network, load_stock  # noqa: E402


def generate_orders(count: int, seed: int, catalog, network) -> list[dict]:
    rng = random.Random(seed)
    zips = sorted(_zip_table().items())
    skus = [item.sku for item in catalog.items]
    pickup_nodes = sorted(n.id for n in network.nodes if n.pickup and n.status == "live")
    orders = []
    for number in range(count):
        zip_code, (lat, lon, state) = zips[rng.randrange(len(zips))]
        day = 23 + rng.randrange(7)
        hour = rng.randrange(24)
        lines = rng.sample(skus, rng.choice((1, 1, 1, 2, 2, 3)))
        pickup = rng.random() < 0.05
        orders.append({
            "id": f"G{number:06d}", "channel": rng.choice(("web", "app", "marketplace")),
            "created_at": f"2026-11-{day:02d}T{hour:02d}:{rng.randrange(60):02d}:00-05:00",
            "customer": {"id": f"C{rng.randrange(5000)}", "tier": "member" if rng.random() < 0.05 else "regular",
                         "orders": rng.randrange(20)},
            "ship_to": {"country": "US", "state": state, "zip": zip_code},
            "delivery": "pickup" if pickup else "ship",
            "pickup_node": rng.choice(pickup_nodes) if pickup else None,
            "lines": [{"sku": sku, "qty": rng.choice((1, 1, 1, 2))} for sku in lines],
            "tags": ["gift"] if rng.random() < 0.08 else [],
        })
    return orders


def measure(label: str, rulebook, network, catalog, stock, orders, matcher) -> dict:
    latencies = []
    statuses: dict[str, int] = {}
    started = time.perf_counter()
    for order in orders:
        t0 = time.perf_counter()
        decision = engine.route(rulebook, network, catalog, stock, order, matcher=matcher)
        latencies.append(time.perf_counter() - t0)
        statuses[decision.status] = statuses.get(decision.status, 0) + 1
    elapsed = time.perf_counter() - started
    latencies.sort()
    result = {
        "label": label, "orders": len(orders), "seconds": elapsed, "orders_per_s": len(orders) / elapsed,
        "p50_ms": latencies[len(latencies) // 2] * 1000,
        "p99_ms": latencies[int(len(latencies) * 0.99) - 1] * 1000, "statuses": statuses,
    }
    print(f"{label:>28}: {result['orders_per_s']:8.0f} orders/s  p50 {result['p50_ms']:.2f} ms  "
          f"p99 {result['p99_ms']:.2f} ms  {statuses}")
    return result


def matcher_only(label: str, rulebook, network, catalog, stock, orders, matcher) -> float:
    """Time spent in rule matching alone, per order (facts built beforehand)."""
    from engine.facts import gather
    bases = []
    for order in orders:
        try:
            bases.append(gather(engine.Order.model_validate(order), network, catalog, stock,
                                rulebook.settings.timezone).base)
        except Exception:  # noqa: BLE001 - unroutable generated orders are skipped here
            continue
    started = time.perf_counter()
    for base in bases:
        matcher(rulebook, base)
    per_order = (time.perf_counter() - started) / len(bases)
    print(f"{label:>28}: {per_order * 1e6:8.1f} µs per order in rule matching "
          f"({len(bases)} orders, {1 / per_order:,.0f}/s)")
    return per_order


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--matcher", choices=("python", "durable", "both"), default="both")
    args = parser.parse_args()
    rulebook = dsl.compile((ROOT / "rulebooks/demo.playbook").read_text(), "demo.playbook")
    network = load_network(str(ROOT / "rulebooks/network.json"))
    catalog = load_catalog(str(ROOT / "rulebooks/catalog.json"))
    stock = load_stock(str(ROOT / "rulebooks/stock.csv"))
    orders = generate_orders(args.orders, args.seed, catalog, network)
    print(f"demo playbook ({len(rulebook.rules)} rules), {len(network.nodes)} nodes, {len(orders):,} orders, "
          "one core, no reservations")
    engine.route(rulebook, network, catalog, stock, orders[0])     # warm caches (ZIP table)
    matchers = []
    if args.matcher in ("python", "both"):
        matchers.append(("python matcher", run_rules))
    if args.matcher in ("durable", "both"):
        from engine import durable_engine
        durable_engine.warm(rulebook)
        matchers.append(("durable_rules matcher", durable_engine.run_rules))
    for label, matcher in matchers:
        measure(f"route, {label}", rulebook, network, catalog, stock, orders, matcher)
        matcher_only(label, rulebook, network, catalog, stock, orders[:2000], matcher)
    batch_stock = stock.copy()
    started = time.perf_counter()
    decisions = list(engine.route_batch(rulebook, network, catalog, batch_stock, orders))
    elapsed = time.perf_counter() - started
    routed = sum(d.status == "routed" for d in decisions)
    print(f"{'batch with reservations':>28}: {len(orders) / elapsed:8.0f} orders/s  ({routed:,} routed, "
          f"{len(orders) - routed:,} held or errors as stock ran down)")
    print(f"python {sys.version.split()[0]}")


if __name__ == "__main__":
    main()
