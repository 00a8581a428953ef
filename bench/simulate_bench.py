"""How long `steve simulate` takes: replay N generated orders (default
10,000) with the demo playbook on one core, in time order with
reservations, alone and --against a variant of itself, plus the JSON,
Markdown and HTML outputs.

    python bench/simulate_bench.py [--orders 10000] [--seed 7] [--limit 60]

Orders come from bench/route_bench.py's generate_orders (deterministic for a
seed). Exits 1 when a run takes longer than --limit seconds.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import dsl  # noqa: E402
from engine.models import Order  # noqa: E402
from engine.simulation import simulate  # noqa: E402
from route_bench import generate_orders  # noqa: E402
from steve.files import load_catalog, load_network, load_stock  # noqa: E402
from steve.report import render_html  # noqa: E402
from steve.simulate import render_markdown  # noqa: E402

VARIANT_RULE = ('\nrule "Allentown is closed for stocktaking"\n'
                '  when node.id is "PA-DC"\n'
                '  then exclude node because "closed for stocktaking"\n')


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--limit", type=float, default=60.0, help="seconds a run may take")
    args = parser.parse_args()
    text = (ROOT / "rulebooks/demo.playbook").read_text()
    rulebook = dsl.compile(text, "demo.playbook")
    variant = dsl.compile(text + VARIANT_RULE, "variant.playbook")
    network = load_network(str(ROOT / "rulebooks/network.json"))
    catalog = load_catalog(str(ROOT / "rulebooks/catalog.json"))
    stock = load_stock(str(ROOT / "rulebooks/stock.csv"))
    lines = [json.dumps(o) for o in generate_orders(args.orders, args.seed, catalog, network)]
    print(f"demo playbook, {len(network.nodes)} nodes, {len(lines):,} generated orders, one core")

    started = time.perf_counter()
    orders = [Order.model_validate(json.loads(line)) for line in lines]
    parsed = time.perf_counter() - started
    print(f"{'parse the orders':>34}: {parsed:6.2f} s")

    worst = 0.0
    for label, baseline in (("simulate", None), ("simulate --against a variant", variant)):
        started, cpu = time.perf_counter(), time.process_time()
        result = simulate(rulebook, network, catalog, stock, orders, baseline=baseline)
        elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
        worst = max(worst, elapsed + parsed)
        metrics = result.candidate.metrics
        runs = 2 if baseline is not None else 1
        print(f"{label:>34}: {elapsed:6.2f} s  (CPU {cpu:.2f} s, {runs * len(orders) / elapsed:,.0f} orders/s; "
              f"{metrics['routed']:,} routed, {metrics['held']:,} held as stock ran down"
              + (f"; {len(result.differences):,} differ" if baseline is not None else "") + ")")
    for label, render in (("--json", lambda: json.dumps(result.to_json())),
                          ("--markdown", lambda: render_markdown(result, [])),
                          ("--report", lambda: render_html(result, []))):
        started = time.perf_counter()
        size = len(render())
        print(f"{'output ' + label:>34}: {time.perf_counter() - started:6.2f} s  ({size / 1e6:.1f} MB)")
    print(f"python {sys.version.split()[0]}")
    if worst > args.limit:
        print(f"too slow: {worst:.1f} s > {args.limit:.0f} s")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
