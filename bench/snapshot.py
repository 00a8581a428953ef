"""Decisions as bytes: every fixture's decision (seed and demo scenarios, the
demo's test cases) and those of generated orders on the bench network, one
canonical JSON document a line, so that two versions of the engine can be
compared byte for byte.

    python bench/snapshot.py OUT.jsonl [--orders 2000] [--matcher python|durable|compiled] [--installed]
    cmp before.jsonl after.jsonl

The bench orders are routed in time order against one stock view with
reservations (engine.route_batch), so the stock running down is part of
what is compared. Without --orders 0 the bench data set is generated in
bench/data/ first if it is missing.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Iterator

ROOT = Path(__file__).resolve().parent.parent
if "--installed" not in sys.argv[1:]:       # the checkout's sources; --installed: Steve as installed
    sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import dsl  # noqa: E402
import engine  # noqa: E402
from steve.cases import _set as set_row, load_suite  # noqa: E402
from steve.files import load_catalog, load_network, load_stock  # noqa: E402

FIXTURES = ROOT / "tests" / "fixtures"


def _canonical(decision) -> str:
    return json.dumps(decision.to_json(), sort_keys=True, separators=(",", ":"))


def _setup(folder: Path, playbook: str):
    return (dsl.compile((folder / playbook).read_text(encoding="utf-8"), playbook),
            load_network(str(folder / "network.json")), load_catalog(str(folder / "catalog.json")),
            load_stock(str(folder / "stock.csv")))


def fixture_decisions(matcher=None) -> Iterator[tuple[str, str]]:
    """(name, canonical decision) for every fixture scenario and test case."""
    options = {"matcher": matcher} if matcher else {}
    for folder, playbook, scenarios in ((FIXTURES / "seed", "seed.playbook", FIXTURES / "seed" / "scenarios.jsonl"),
                                        (ROOT / "rulebooks", "demo.playbook", FIXTURES / "demo_scenarios.jsonl")):
        rulebook, network, catalog, stock = _setup(folder, playbook)
        for line in scenarios.read_text(encoding="utf-8").splitlines():
            if line.strip():
                scenario = json.loads(line)
                decision = engine.route(rulebook, network, catalog, stock.copy(), scenario["order"], **options)
                yield f"{scenarios.name}:{scenario['name']}", _canonical(decision)
    suite = load_suite(str(ROOT / "rulebooks" / "demo.tests.yaml"))
    for case in suite.cases:
        stock = suite.stock.copy()
        for row in case.rows:
            set_row(stock, row)
        decision = engine.route(suite.rulebook, suite.network, suite.catalog, stock, case.order,
                                live_nodes=case.with_nodes, **options)
        yield f"demo.tests.yaml:{case.name}", _canonical(decision)


def bench_decisions(count: int, data: Path, matcher=None) -> Iterator[tuple[str, str]]:
    rulebook, network, catalog, stock = _setup(data, "bench.playbook")
    orders = []
    with open(data / "orders.jsonl", encoding="utf-8") as handle:
        for line in handle:
            orders.append(json.loads(line))
            if len(orders) >= count:
                break
    options = {"matcher": matcher} if matcher else {}
    for order, decision in zip(orders, engine.route_batch(rulebook, network, catalog, stock, orders,
                                                          time_limit=float("inf"), **options)):
        yield f"bench:{order['id']}", _canonical(decision)


def matcher_named(name: str | None):
    if name in (None, "default"):
        return None
    if name == "python":
        from engine.matching import run_rules
        return run_rules
    if name == "durable":
        from engine import durable_engine
        return durable_engine.run_rules
    if name == "compiled":
        from engine import fastmatch
        return fastmatch.run_rules
    raise SystemExit(f"unknown matcher {name}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--orders", type=int, default=2000)
    parser.add_argument("--data", type=Path, default=ROOT / "bench" / "data")
    parser.add_argument("--matcher", default=None)
    parser.add_argument("--installed", action="store_true",
                        help="route with Steve as installed (a compiled build, say), not the checkout's sources")
    args = parser.parse_args()
    matcher = matcher_named(args.matcher)
    if args.orders and not (args.data / "orders.jsonl").exists():
        import generate
        generate.write(args.data, 2026, 10_000)
    with open(args.out, "w", encoding="utf-8") as out:
        for name, text in fixture_decisions(matcher):
            out.write(f"{name}\t{text}\n")
        if args.orders:
            for name, text in bench_decisions(args.orders, args.data, matcher):
                out.write(f"{name}\t{text}\n")


if __name__ == "__main__":
    main()
