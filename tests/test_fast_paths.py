"""The fast paths decide exactly what the references decide.

* engine.fastmatch (the default matcher) fires what engine.matching fires,
  and so does engine.durable_engine, on every fixture and on generated
  Black Friday orders (bench/generate.py);
* engine.compare's shortcuts for the "not chosen" reasons give, byte for
  byte, the decisions of one full forced search per node on every fixture
  scenario and test case, and on every generated order that is not "big"
  (compare.is_big: those get estimates, documented in docs/benchmarks.md).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

import dsl
import engine
from engine import compare, fastmatch, matching
from engine.facts import gather
from steve.files import load_catalog, load_network, load_stock

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))

import generate  # noqa: E402
import snapshot  # noqa: E402


def test_fixtures_decide_byte_for_byte_as_the_references(monkeypatch):
    monkeypatch.setattr(compare, "SHORTCUTS", False)
    reference = list(snapshot.fixture_decisions(matching.run_rules))
    monkeypatch.setattr(compare, "SHORTCUTS", True)
    fast = list(snapshot.fixture_decisions())
    assert len(fast) == len(reference) > 40
    for (name, want), (_, got) in zip(reference, fast):
        assert got == want, name


def test_fixtures_fire_the_same_with_durable_rules():
    pytest.importorskip("durable")
    from engine import durable_engine
    assert list(snapshot.fixture_decisions(durable_engine.run_rules)) == list(snapshot.fixture_decisions())


@pytest.fixture(scope="module")
def black_friday(tmp_path_factory):
    folder = tmp_path_factory.mktemp("bench-data")
    generate.write(folder, 2026, 10_000)
    rulebook = dsl.compile((folder / "bench.playbook").read_text(), "bench.playbook")
    network = load_network(str(folder / "network.json"))
    catalog = load_catalog(str(folder / "catalog.json"))
    stock = load_stock(str(folder / "stock.csv"))
    orders = [json.loads(line) for line in (folder / "orders.jsonl").read_text().splitlines()]
    return rulebook, network, catalog, stock, orders


def test_the_generated_data_set_is_what_the_issue_asks_for(black_friday):
    rulebook, network, catalog, stock, orders = black_friday
    kinds = [n.kind for n in network.nodes]
    assert len(network.nodes) == 100 and len(catalog.items) == 2000 and len(orders) == 10_000
    assert {k: kinds.count(k) for k in set(kinds)} == {"warehouse": 10, "3pl": 5, "store": 75,
                                                       "vendor": 5, "transit": 5}
    assert len(rulebook.rules) >= 25 and len(network.carriers) == 3
    assert all(1 <= len(o["lines"]) <= 5 for o in orders)
    assert 0.03 < sum(o["customer"]["tier"] == "VIP" for o in orders) / len(orders) < 0.07
    assert 0.03 < sum(o["delivery"] == "pickup" for o in orders) / len(orders) < 0.07


def test_generated_orders_fire_the_same_in_every_matcher(black_friday):
    """Firings of the compiled and the Python matcher on 10,000 orders
    (durable_rules on the first 300: it is the slowest)."""
    rulebook, network, catalog, stock, orders = black_friday
    try:
        from engine import durable_engine
    except ImportError:             # pragma: no cover
        durable_engine = None
    for number, order in enumerate(orders):
        try:
            situation = gather(engine.Order.model_validate(order), network, catalog, stock,
                               rulebook.settings.timezone)
        except engine.OrderError:
            continue
        base = situation.base

        def fresh():
            return matching.FactBase(dict(base.order), base.lines, base.candidates)

        want = [(f.rule.index, f.entity.id) for f in matching.run_rules(rulebook, fresh())]
        assert [(f.rule.index, f.entity.id) for f in fastmatch.run_rules(rulebook, fresh())] == want, order["id"]
        if durable_engine is not None and number < 300:
            got = [(f.rule.index, f.entity.id) for f in durable_engine.run_rules(rulebook, fresh())]
            assert got == want, order["id"]


def test_generated_orders_decide_the_same_unless_big(black_friday, monkeypatch):
    """2,000 orders in time order with reservations: every decision equals the
    reference's, except the "not chosen" reasons of orders compare.is_big
    estimates; those still agree on everything else."""
    rulebook, network, catalog, stock, orders = black_friday
    orders = orders[:2000]
    monkeypatch.setattr(compare, "SHORTCUTS", False)
    reference = [d.to_json() for d in engine.route_batch(rulebook, network, catalog, stock.copy(), orders,
                                                         matcher=matching.run_rules, time_limit=float("inf"))]
    monkeypatch.setattr(compare, "SHORTCUTS", True)
    big: list[bool] = []
    real = compare.is_big

    def spy(problem, eligible):
        answer = real(problem, eligible)
        big[-1] = big[-1] or answer
        return answer

    monkeypatch.setattr(compare, "is_big", spy)
    fast_stock = stock.copy()
    estimated = 0
    for order, want in zip(orders, reference):
        big.append(False)
        got = engine.route(rulebook, network, catalog, fast_stock, order, time_limit=float("inf"))
        if got.status == "routed":
            engine.reserve(fast_stock, got)
        got = got.to_json()
        if big[-1]:
            estimated += 1
            assert {**got, "nodes": None} == {**want, "nodes": None}, order["id"]
            assert got["nodes"].keys() == want["nodes"].keys(), order["id"]
        else:
            assert got == want, order["id"]
    assert 0 < estimated < len(orders)
