"""Tests for engine.allocator: hand-made cases + brute-force cross-checks."""
from __future__ import annotations

import itertools
import random
import time
from dataclasses import replace

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine import _search, allocator, limits
from engine.allocator import (
    Candidate,
    CarrierOption,
    Line,
    Plan,
    Problem,
    explain_infeasible,
    solve,
)

TOL = 1e-6


# ----------------------------------------------------------------- helpers
def opt(carrier, fixed, per_kg=0.0, days=3):
    return CarrierOption(carrier, fixed, per_kg, days)


def problem(lines, carriers, cands, stock, **kw):
    """lines: [(sku, qty, kg)], cands: {line: [node or (node, avoided, adjust)]}."""
    cand = []
    for i, nodes in cands.items():
        for n in nodes:
            node, avoided, adjust = (n, False, 0.0) if isinstance(n, str) else n
            cand.append(Candidate(i, node, avoided, adjust))
    return Problem(
        lines=tuple(Line(i, s, q, w) for i, (s, q, w) in enumerate(lines)),
        carriers={n: tuple(o) for n, o in carriers.items()},
        candidates=tuple(cand),
        stock=dict(stock),
        **kw,
    )


def key_of(problem: Problem, plan: Plan):
    """The objective key of a returned plan (check_plan verifies its fields)."""
    return (plan.avoided, plan.days if problem.objective == "speed" else 0, plan.value)


def same_key(a, b):
    return a[0] == b[0] and a[1] == b[1] and abs(a[2] - b[2]) <= TOL


def check_plan(problem: Problem, plan: Plan, require_node=None):
    """Every invariant a returned plan must satisfy; returns its key."""
    lines = {ln.index: ln for ln in problem.lines}
    cand = {(c.line, c.node): c for c in problem.candidates}
    nodes = [s.node for s in plan.shipments]
    assert nodes == sorted(set(nodes)), "one shipment per node, sorted"
    if problem.max_shipments is not None:
        assert len(nodes) <= problem.max_shipments
    if problem.ship_complete:
        assert len(nodes) == 1
    if require_node is not None:
        assert require_node in nodes
    covered, used = {}, {}
    adjust = avoided = 0
    for s in plan.shipments:
        assert [i for i, _ in s.lines] == sorted({i for i, _ in s.lines})
        kg = 0.0
        for i, q in s.lines:
            assert q >= 1 and (i, s.node) in cand
            covered[i] = covered.get(i, 0) + q
            key = (s.node, lines[i].sku)
            used[key] = used.get(key, 0) + q
            kg += q * lines[i].weight
            adjust += cand[i, s.node].adjust
            avoided += cand[i, s.node].avoided
        assert abs(s.weight - kg) <= TOL
        match = [o for o in problem.carriers[s.node] if o.carrier == s.carrier]
        assert match, "carrier belongs to the node"
        assert any(abs(o.fixed + o.per_kg * kg - s.cost) <= TOL and o.days == s.days
                   for o in match)
    assert covered == {i: ln.qty for i, ln in lines.items()}
    for k, q in used.items():
        assert q <= problem.stock.get(k, 0)
    for node, left in (problem.node_units or {}).items():
        assert sum(q for (n, _), q in used.items() if n == node) <= left, "within the node's capacity left"
    assert abs(plan.cost - sum(s.cost for s in plan.shipments)) <= TOL
    assert plan.days == max((s.days for s in plan.shipments), default=0)
    assert plan.avoided == avoided
    value = plan.cost + problem.split_penalty * max(len(nodes) - 1, 0) + adjust
    if problem.objective == "balanced":
        value += problem.day_value * plan.days
    assert abs(plan.value - value) <= TOL
    return key_of(problem, plan)


# -------------------------------------------------------- brute force oracle
def compositions(total, parts):
    """All tuples of `parts` non-negative ints summing to `total`."""
    if parts == 0:
        return [()] if total == 0 else []
    out = []
    for first in range(total + 1):
        out.extend((first,) + rest for rest in compositions(total - first, parts - 1))
    return out


def brute_force(problem: Problem, require_node=None):
    """Best key by full enumeration of splits and carriers (None = infeasible).

    Written without looking at the solver: every split of every line's qty
    over its candidate nodes, every carrier per used node.
    """
    lines = sorted(problem.lines, key=lambda ln: ln.index)
    cand = {(c.line, c.node): c for c in problem.candidates}
    per_line = []
    for ln in lines:
        nodes = sorted(n for (i, n) in cand if i == ln.index and problem.carriers.get(n))
        per_line.append([(nodes, dist) for dist in compositions(ln.qty, len(nodes))])
    best = None
    for combo in itertools.product(*per_line):
        used, kg, pairs = {}, {}, []
        for ln, (nodes, dist) in zip(lines, combo):
            for node, q in zip(nodes, dist):
                if q:
                    used[node, ln.sku] = used.get((node, ln.sku), 0) + q
                    kg[node] = kg.get(node, 0.0) + q * ln.weight
                    pairs.append(cand[ln.index, node])
        if any(q > problem.stock.get(k, 0) for k, q in used.items()):
            continue
        per_node = {}
        for (node, _), q in used.items():
            per_node[node] = per_node.get(node, 0) + q
        if any(q > (problem.node_units or {}).get(node, q) for node, q in per_node.items()):
            continue
        ships = sorted(kg)
        if problem.max_shipments is not None and len(ships) > problem.max_shipments:
            continue
        if problem.ship_complete and len(ships) != 1:
            continue
        if require_node is not None and require_node not in kg:
            continue
        avoided = sum(c.avoided for c in pairs)
        extra = sum(c.adjust for c in pairs) + problem.split_penalty * max(len(ships) - 1, 0)
        for choice in itertools.product(*(problem.carriers[n] for n in ships)):
            cost = sum(o.fixed + o.per_kg * kg[n] for o, n in zip(choice, ships))
            days = max(o.days for o in choice)
            value = cost + extra
            if problem.objective == "balanced":
                value += problem.day_value * days
            key = (avoided, days if problem.objective == "speed" else 0, value)
            if best is None or key[:2] < best[:2] or (key[:2] == best[:2] and key[2] < best[2]):
                best = key
    return best


def random_problem(rng: random.Random, objective: str,
                   splits: bool = False) -> tuple[Problem, str | None]:
    """A tiny random instance (<= 3 lines, qty <= 3, <= 4 nodes, <= 2 carriers).

    ``splits=True`` makes lines split-prone: <= 2 lines of qty 2-4, thin stock,
    more preferences (negative adjusts reward extra (line, node) pairs).
    """
    n_lines = rng.randint(1, 2) if splits else rng.randint(1, 3)
    n_nodes = rng.choice([3, 4]) if splits else rng.choice([1, 2, 3, 4, 4])
    skus = ["S0", "S1", "S2"][: rng.randint(1, 3)]          # 1 sku => shared stock
    nodes = [f"N{i}" for i in range(n_nodes)]
    qtys = [2, 3, 4] if splits else [1, 2, 2, 3]
    lines = tuple(Line(i, rng.choice(skus), rng.choice(qtys),
                       rng.choice([0.5, 1.0, 2.0, 4.5, 10.0])) for i in range(n_lines))
    carriers = {}
    for n in nodes:
        k = rng.choice([0, 1, 1, 1, 2, 2, 2, 2])
        carriers[n] = tuple(CarrierOption(f"C{j}", round(rng.uniform(1, 20), 1),
                                          round(rng.uniform(0.1, 3), 2), rng.randint(1, 5))
                            for j in rng.sample(range(3), k))
    cands = []
    for ln in lines:
        for n in nodes:
            if rng.random() < 0.85:
                lo = -8 if splits else -4
                adjust = rng.choice([0.0, 0.0, 0.0, round(rng.uniform(lo, 6), 1)])
                cands.append(Candidate(ln.index, n, rng.random() < 0.15, adjust))
    levels = [0, 1, 1, 2, 3] if splits else [0, 1, 2, 2, 3, 4, 6]
    stock = {(n, s): rng.choice(levels) for n in nodes for s in skus
             if rng.random() < 0.95}
    p = Problem(lines, carriers, tuple(cands), stock, objective=objective,
                day_value=rng.choice([0.0, 1.0, round(rng.uniform(0, 6), 2)]),
                split_penalty=rng.choice([0.0, 0.0, 3.0, round(rng.uniform(0, 10), 1)]),
                max_shipments=rng.choice([None, None, 1, 2, 3]),
                ship_complete=rng.random() < 0.1)
    return p, (rng.choice(nodes) if rng.random() < 0.2 else None)


def shuffled(problem: Problem, rng: random.Random) -> Problem:
    """Same problem, every tuple and dict in a different order."""
    def mix(seq):
        seq = list(seq)
        rng.shuffle(seq)
        return seq
    return replace(
        problem,
        lines=tuple(mix(problem.lines)),
        candidates=tuple(mix(problem.candidates)),
        carriers={n: tuple(mix(o)) for n, o in mix(problem.carriers.items())},
        stock=dict(mix(problem.stock.items())),
    )


# ------------------------------------------------------ brute-force agreement
@pytest.mark.parametrize("objective,splits,count", [
    ("cost", False, 3000), ("speed", False, 3000), ("balanced", False, 3000),
    ("cost", True, 1000), ("speed", True, 1000), ("balanced", True, 1000)])
def test_matches_brute_force(objective, splits, count):
    rng = random.Random(f"allocator-{objective}-{splits}")
    feasible = split = 0
    for _ in range(count):
        p, req = random_problem(rng, objective, splits)
        want = brute_force(p, req)
        plan = solve(p, req)
        assert (plan is None) == (want is None), (p, req, want, plan)
        if plan is None:
            continue
        feasible += 1
        assert plan.exact
        got = check_plan(p, plan, req)
        assert same_key(got, want), (p, req, want, plan)
        if rng.random() < 0.1:
            assert solve(shuffled(p, rng), req) == plan
        lines_used = [i for s in plan.shipments for i, _ in s.lines]
        split += len(lines_used) > len(set(lines_used))
    # the generator must not be degenerate
    assert feasible > count // 3 and split > count // 50


def shared_stock_problem(rng: random.Random) -> Problem:
    """Two lines of one sku competing for the same thin stock, split-prone."""
    nodes = [f"N{i}" for i in range(rng.choice([3, 4]))]
    lines = tuple(Line(i, "S0", rng.randint(2, 4), rng.choice([0.5, 1.0, 4.5]))
                  for i in range(2))
    carriers = {n: tuple(CarrierOption(f"C{j}", round(rng.uniform(1, 20), 1),
                                       round(rng.uniform(0.1, 3), 2), rng.randint(1, 5))
                         for j in rng.sample(range(3), rng.randint(1, 2))) for n in nodes}
    cands = tuple(Candidate(ln.index, n, rng.random() < 0.15,
                            rng.choice([0.0, 0.0, round(rng.uniform(-3, 6), 1)]))
                  for ln in lines for n in nodes if rng.random() < 0.85)
    return Problem(lines, carriers, cands, {(n, "S0"): rng.randint(1, 6) for n in nodes},
                   objective=rng.choice(["cost", "speed", "balanced"]),
                   day_value=rng.choice([0.0, 1.0]), split_penalty=rng.choice([0.0, 3.0]),
                   max_shipments=rng.choice([None, 2, 3]))


def test_shared_stock_splits_match_brute_force():
    rng = random.Random("shared-stock")
    for _ in range(1500):
        p = shared_stock_problem(rng)
        want, plan = brute_force(p), solve(p)
        assert (plan is None) == (want is None), (p, want, plan)
        if plan is not None:
            assert plan.exact and same_key(check_plan(p, plan), want), (p, want, plan)


def test_capacity_left_matches_brute_force():
    # nodes whose capacity left today is less than what they hold of the
    # order's skus together: the stock is capped per sku (as the router
    # does) and node_units couples the skus
    rng = random.Random("capacity-left")
    bound = exact_needed = guessed = 0
    for _ in range(2500):
        p, req = random_problem(rng, rng.choice(["cost", "speed", "balanced"]), rng.random() < 0.5)
        units = {}
        for node in sorted(p.carriers):
            if rng.random() < 0.8:
                units[node] = rng.randint(0, 3)
        stock = {(n, sku): min(q, units.get(n, q)) for (n, sku), q in p.stock.items()}
        p = replace(p, stock=stock, node_units=units or None)
        want, plan = brute_force(p, req), solve(p, req)
        assert (plan is None) == (want is None), (p, req, want, plan)
        if plan is None:
            continue
        got = check_plan(p, plan, req)
        if not plan.exact:              # past the shared budget of searches: a valid plan, guessed shares
            guessed += 1
            continue
        assert same_key(got, want), (p, req, want, plan)
        loose = solve(replace(p, node_units=None), req)
        bound += loose is None or not same_key(key_of(p, loose), want)
        exact_needed += loose is not None and any(
            sum(q for s in loose.shipments if s.node == n for _, q in s.lines) > left for n, left in units.items())
    # the generator must make the capacity bind across skus often enough
    assert bound > 30 and exact_needed > 30, (bound, exact_needed)
    assert guessed < 25, guessed        # the budget rarely runs out on orders this small


def test_capacity_left_beyond_the_exact_limit_still_fits():
    # 30 units of capacity left shared by 3 skus: hundreds of ways, past MAX_SPLITS;
    # M has 10 of each, so N ships the other 30
    p = problem([("A", 20, 1.0), ("B", 20, 1.0), ("C", 20, 1.0)],
                {"N": [opt("g", 5, 0.1)], "M": [opt("g", 9, 0.1)]},
                {0: ["N", "M"], 1: ["N", "M"], 2: ["N", "M"]},
                {("N", "A"): 30, ("N", "B"): 30, ("N", "C"): 30,
                 ("M", "A"): 10, ("M", "B"): 10, ("M", "C"): 10},
                node_units={"N": 30})
    plan = solve(p)
    check_plan(p, plan)
    assert sum(q for s in plan.shipments if s.node == "N" for _, q in s.lines) == 30
    assert not plan.exact


def test_capacity_past_the_exact_limit_still_finds_a_plan_the_other_nodes_complete():
    # N may ship 30 of its 90 units (hundreds of ways to share them); only N has B and C,
    # so it must take those two lines and leave A to M: the guessed shares start there
    p = problem([("A", 20, 1.0), ("B", 10, 1.0), ("C", 10, 1.0)],
                {"N": [opt("g", 5, 0.1, 2)], "M": [opt("g", 9, 0.1, 2)]},
                {0: ["N", "M"], 1: ["N", "M"], 2: ["N", "M"]},
                {("N", "A"): 30, ("N", "B"): 30, ("N", "C"): 30, ("M", "A"): 20},
                node_units={"N": 30})
    plan = solve(p)
    assert plan is not None
    check_plan(p, plan)
    assert [(s.node, s.lines) for s in plan.shipments] == [("M", ((0, 20),)), ("N", ((1, 10), (2, 10)))]


def test_capacity_of_several_nodes_shares_one_budget_of_searches(monkeypatch):
    # three nodes short of capacity, each with hundreds of ways to share it: the ways
    # multiply, so the searches over them share one budget per solve
    calls = []
    search = allocator._solve
    monkeypatch.setattr(allocator, "_solve", lambda *a, **k: calls.append(1) or search(*a, **k))
    nodes = ["N0", "N1", "N2"]
    p = problem([("A", 12, 1.0), ("B", 12, 1.0), ("C", 12, 1.0)],
                {n: [opt("g", 5 + i, 0.1, 2)] for i, n in enumerate(nodes)},
                {i: nodes for i in range(3)},
                {(n, sku): 12 for n in nodes for sku in "ABC"},
                node_units={n: 12 for n in nodes})
    plan = solve(p)
    check_plan(p, plan)
    assert len(calls) <= 1 + 3 * (allocator.MAX_SPLITS + 2)
    calls.clear()
    assert solve(p, "N2") is not None and len(calls) <= 1 + 3 * (allocator.MAX_SPLITS_FORCED + 2)


# --------------------------------------------------------- hand-made cases
FLAT = {"A": [opt("ground", 10)], "B": [opt("ground", 7)], "C": [opt("ground", 12)]}


def test_cheapest_node_wins():
    p = problem([("TEE", 1, 0.3)], FLAT, {0: ["A", "B", "C"]},
                {("A", "TEE"): 5, ("B", "TEE"): 5, ("C", "TEE"): 5})
    plan = solve(p)
    assert [s.node for s in plan.shipments] == ["B"]
    assert plan.value == pytest.approx(7) and plan.exact


def test_one_box_beats_three_with_split_penalty():
    # three boxes cost 5 each; B has everything for 16
    carriers = {"X": [opt("g", 5)], "Y": [opt("g", 5)], "Z": [opt("g", 5)],
                "B": [opt("g", 16)]}
    stock = {("X", "a"): 1, ("Y", "b"): 1, ("Z", "c"): 1,
             ("B", "a"): 1, ("B", "b"): 1, ("B", "c"): 1}
    cands = {0: ["X", "B"], 1: ["Y", "B"], 2: ["Z", "B"]}
    lines = [("a", 1, 1.0), ("b", 1, 1.0), ("c", 1, 1.0)]
    three = solve(problem(lines, carriers, cands, stock))
    assert [s.node for s in three.shipments] == ["X", "Y", "Z"]
    assert three.value == pytest.approx(15)
    one = solve(problem(lines, carriers, cands, stock, split_penalty=2.0))
    assert [s.node for s in one.shipments] == ["B"]
    assert one.value == pytest.approx(16)       # 15 + 2 * 2 = 19 for three


def test_split_beats_one_dearer_box():
    # two 1-unit boxes at 5 + 5 + penalty 2 = 12 beat one 2-unit box at 12.5
    carriers = {"A": [opt("g", 5)], "B": [opt("g", 5)], "C": [opt("g", 12.5)]}
    stock = {("A", "X"): 1, ("B", "X"): 1, ("C", "X"): 2}
    p = problem([("X", 2, 1.0)], carriers, {0: ["A", "B", "C"]}, stock, split_penalty=2.0)
    plan = solve(p)
    assert [(s.node, s.lines) for s in plan.shipments] == [("A", ((0, 1),)), ("B", ((0, 1),))]
    assert plan.value == pytest.approx(12)
    assert [s.node for s in solve(replace(p, split_penalty=3.0)).shipments] == ["C"]


def test_line_split_when_no_node_has_the_qty():
    p = problem([("PARKA", 5, 2.0)], FLAT, {0: ["A", "B", "C"]},
                {("A", "PARKA"): 3, ("B", "PARKA"): 2, ("C", "PARKA"): 4})
    plan = solve(p)
    assert [(s.node, s.lines) for s in plan.shipments] == [
        ("A", ((0, 3),)), ("B", ((0, 2),))]
    assert plan.value == pytest.approx(17) and plan.exact


def test_shared_sku_stock_is_shared_across_lines():
    # two lines of the same sku; A has 3 in total, not 2 + 2
    p = problem([("MUG", 2, 1.0), ("MUG", 2, 1.0)], FLAT,
                {0: ["A", "C"], 1: ["A", "C"]}, {("A", "MUG"): 3, ("C", "MUG"): 9})
    plan = solve(p)
    check_plan(p, plan)
    assert plan.value == pytest.approx(12)      # everything from C
    capped = solve(replace(p, stock={("A", "MUG"): 3, ("C", "MUG"): 1}))
    # (2+1 from A, 1 from C) and (1+2 from A, 1 from C) cost the same:
    # the tie-break compares the ((line, qty), ...) tuples, (0, 1) < (0, 2)
    assert [(s.node, s.lines) for s in capped.shipments] == [
        ("A", ((0, 1), (1, 2))), ("C", ((0, 1),))]


def test_avoided_node_only_when_nothing_else_works():
    carriers = {"CHEAP": [opt("g", 1)], "OK": [opt("g", 9)]}
    cands = {0: [("CHEAP", True, 0.0), "OK"]}
    p = problem([("X", 2, 1.0)], carriers, cands, {("CHEAP", "X"): 5, ("OK", "X"): 5})
    plan = solve(p)
    assert [s.node for s in plan.shipments] == ["OK"] and plan.avoided == 0
    short = solve(replace(p, stock={("CHEAP", "X"): 5, ("OK", "X"): 1}))
    assert short.avoided == 1                   # one avoided pair, as few as possible
    assert [(s.node, s.lines) for s in short.shipments] == [("CHEAP", ((0, 2),))]
    assert solve(replace(p, stock={("CHEAP", "X"): 5})).avoided == 1


def test_adjust_penalty_and_preference():
    cands = {0: [("A", False, 5.0), "B"]}        # A is 3 cheaper but penalised 5
    stock = {("A", "X"): 1, ("B", "X"): 1}
    plan = solve(problem([("X", 1, 1.0)], FLAT, cands, stock))
    assert plan.shipments[0].node == "B" and plan.value == pytest.approx(7)
    cands = {0: ["A", ("C", False, -3.0)]}       # C is 2 dearer but preferred by 3
    plan = solve(problem([("X", 1, 1.0)], FLAT, cands, {("A", "X"): 1, ("C", "X"): 1}))
    assert plan.shipments[0].node == "C" and plan.value == pytest.approx(9)


def test_preferences_can_reward_a_split():
    # each preferred (line, node) pair earns 6 back; shipping 1 unit from each
    # of A and B earns 12 for 10 of fixed costs, better than 5 - 6 from one
    carriers = {"A": [opt("g", 5)], "B": [opt("g", 5)]}
    cands = {0: [("A", False, -6.0), ("B", False, -6.0)]}
    p = problem([("X", 2, 1.0)], carriers, cands, {("A", "X"): 2, ("B", "X"): 2})
    plan = solve(p)
    assert [(s.node, s.lines) for s in plan.shipments] == [("A", ((0, 1),)), ("B", ((0, 1),))]
    assert plan.value == pytest.approx(-2)
    assert len(solve(replace(p, split_penalty=1.5)).shipments) == 1


def test_speed_prefers_air_over_cheaper_ground():
    carriers = {"W": [opt("ground", 8, 0.5, 3), opt("air", 25, 2.0, 1)],
                "S": [opt("ground", 6, 0.5, 4)]}
    p = problem([("X", 1, 2.0)], carriers, {0: ["W", "S"]},
                {("W", "X"): 9, ("S", "X"): 9}, objective="speed")
    plan = solve(p)
    assert (plan.shipments[0].node, plan.shipments[0].carrier, plan.days) == ("W", "air", 1)
    assert plan.value == pytest.approx(29)
    cheap = solve(replace(p, objective="cost"))
    assert (cheap.shipments[0].node, cheap.value) == ("S", pytest.approx(7))


def test_balanced_trades_day_value():
    carriers = {"W": [opt("ground", 8, 0.0, 5), opt("air", 20, 0.0, 1)]}
    p = problem([("X", 1, 1.0)], carriers, {0: ["W"]}, {("W", "X"): 1},
                objective="balanced")
    slow = solve(replace(p, day_value=2.0))     # 8 + 10 = 18 < 20 + 2
    assert (slow.shipments[0].carrier, slow.value) == ("ground", pytest.approx(18))
    fast = solve(replace(p, day_value=4.0))     # 8 + 20 = 28 > 20 + 4
    assert (fast.shipments[0].carrier, fast.value) == ("air", pytest.approx(24))


def test_heavy_shipment_flips_carrier():
    carriers = {"W": [opt("parcel", 5, 1.5, 2), opt("freight", 30, 0.2, 2)]}
    light = solve(problem([("X", 1, 4.0)], carriers, {0: ["W"]}, {("W", "X"): 50}))
    heavy = solve(problem([("X", 40, 4.0)], carriers, {0: ["W"]}, {("W", "X"): 50}))
    assert light.shipments[0].carrier == "parcel" and light.cost == pytest.approx(11)
    assert heavy.shipments[0].carrier == "freight" and heavy.cost == pytest.approx(62)


def test_max_shipments_and_ship_complete():
    carriers = {"A": [opt("g", 5)], "B": [opt("g", 4)], "C": [opt("g", 12)]}
    p = problem([("a", 1, 1.0), ("b", 1, 1.0)], carriers, {0: ["A", "C"], 1: ["B", "C"]},
                {("A", "a"): 1, ("B", "b"): 1, ("C", "a"): 1, ("C", "b"): 1})
    assert [s.node for s in solve(p).shipments] == ["A", "B"]          # 5 + 4 < 12
    assert [s.node for s in solve(replace(p, max_shipments=1)).shipments] == ["C"]
    assert [s.node for s in solve(replace(p, ship_complete=True)).shipments] == ["C"]
    assert solve(replace(p, max_shipments=0)) is None


def test_require_node_prices_the_alternative():
    p = problem([("X", 1, 1.0)], FLAT, {0: ["A", "B", "C"]},
                {("A", "X"): 1, ("B", "X"): 1, ("C", "X"): 1})
    best, forced = solve(p), solve(p, require_node="C")
    assert [s.node for s in forced.shipments] == ["C"]
    assert forced.value - best.value == pytest.approx(5)
    assert solve(p, require_node="nowhere") is None


def test_ties_are_broken_deterministically():
    # A and B cost the same; the rule picks the smaller node id, then carrier id
    carriers = {"B": [opt("z", 7), opt("y", 7)], "A": [opt("z", 7), opt("x", 7)]}
    p = problem([("X", 1, 1.0)], carriers, {0: ["B", "A"]}, {("A", "X"): 1, ("B", "X"): 1})
    plan = solve(p)
    assert (plan.shipments[0].node, plan.shipments[0].carrier) == ("A", "x")
    rng = random.Random(7)
    for _ in range(50):
        assert solve(shuffled(p, rng)) == plan


def test_no_split_when_an_unsplit_plan_is_as_good():
    # Both nodes ship anyway (P only at B, Q only at A) with the same per-kg rate, so
    # moving a unit of M between them costs nothing: the plan must not split M.
    carriers = {"A": [opt("c", 5, per_kg=0.5)], "B": [opt("c", 5, per_kg=0.5)]}
    p = problem([("M", 2, 1.0), ("P", 1, 1.0), ("Q", 1, 1.0)], carriers,
                {0: ["A", "B"], 1: ["B"], 2: ["A"]},
                {("A", "M"): 50, ("B", "M"): 50, ("B", "P"): 5, ("A", "Q"): 5})
    plan = solve(p)
    pieces = [(line, s.node) for s in plan.shipments for line, _ in s.lines]
    assert sorted(pieces) == [(0, "A"), (1, "B"), (2, "A")]


def test_determinism_under_shuffled_inputs():
    rng = random.Random(11)
    for _ in range(200):
        p, req = random_problem(rng, rng.choice(["cost", "speed", "balanced"]))
        plan = solve(p, req)
        for _ in range(3):
            assert solve(shuffled(p, rng), req) == plan


def test_explain_infeasible():
    p = problem([("PARKA-M-RED", 5, 1.0)], FLAT, {0: ["A", "B"]},
                {("A", "PARKA-M-RED"): 2, ("B", "PARKA-M-RED"): 1})
    assert solve(p) is None
    assert explain_infeasible(p) == "not enough stock of PARKA-M-RED: 5 wanted, 3 available"
    shared = problem([("MUG", 2, 1.0), ("MUG", 2, 1.0)], FLAT, {0: ["A"], 1: ["A"]},
                     {("A", "MUG"): 3})
    assert explain_infeasible(shared) == "not enough stock of MUG: 4 wanted, 3 available"
    lines = [("a", 1, 1.0), ("b", 1, 1.0), ("c", 1, 1.0), ("d", 1, 1.0)]
    spread = problem(lines, {n: [opt("g", 5)] for n in "PQRS"},
                     {0: ["P"], 1: ["Q"], 2: ["R"], 3: ["S"]},
                     {("P", "a"): 1, ("Q", "b"): 1, ("R", "c"): 1, ("S", "d"): 1},
                     max_shipments=2)
    assert explain_infeasible(spread) == "needs 4 shipments, at most 2 allowed"
    complete = replace(spread, max_shipments=None, ship_complete=True)
    assert explain_infeasible(complete) == "no single node has every item (ship complete)"
    nobody = problem([("a", 1, 1.0)], {"A": []}, {0: ["A"]}, {("A", "a"): 1})
    assert explain_infeasible(nobody) == "no node can ship a (order line 1)"
    assert explain_infeasible(replace(spread, max_shipments=4)) == "a plan exists"
    # with capacity shared out per item (several searches) "no single node" is still certain
    capped = replace(complete, stock={**complete.stock, ("P", "b"): 1}, node_units={"P": 1})
    assert explain_infeasible(capped) == "no single node has every item (ship complete)"


def test_validation():
    p = problem([("X", 1, 1.0)], FLAT, {0: ["A"]}, {("A", "X"): 1})
    with pytest.raises(ValueError):
        solve(replace(p, objective="cheapest"))
    with pytest.raises(ValueError):
        solve(replace(p, candidates=p.candidates * 2))
    empty = solve(replace(p, lines=(), candidates=()))
    assert empty == Plan((), 0.0, 0.0, 0, 0, True)


# ------------------------------------------- medium instances, larger oracle
def single_source_oracle(problem: Problem):
    """Exhaustive over one node per line (optimal when stock is ample, adjust >= 0,
    cost objective: shipment cost is concave, so some optimum never splits)."""
    lines = sorted(problem.lines, key=lambda ln: ln.index)
    nodes = [[c.node for c in problem.candidates if c.line == ln.index] for ln in lines]
    adj = {(c.line, c.node): c.adjust for c in problem.candidates}
    best = None
    for pick in itertools.product(*nodes):
        if problem.max_shipments is not None and len(set(pick)) > problem.max_shipments:
            continue
        kg = {}
        for ln, n in zip(lines, pick):
            kg[n] = kg.get(n, 0.0) + ln.qty * ln.weight
        value = sum(min(o.fixed + o.per_kg * w for o in problem.carriers[n])
                    for n, w in kg.items())
        value += problem.split_penalty * (len(kg) - 1)
        value += sum(adj[ln.index, n] for ln, n in zip(lines, pick))
        best = value if best is None else min(best, value)
    return best


def test_medium_instances_against_single_source_oracle():
    rng = random.Random(5)
    for _ in range(25):
        nodes = [f"N{i:02d}" for i in range(7)]
        lines = tuple(Line(i, f"S{i}", rng.randint(1, 4), round(rng.uniform(0.2, 6), 2))
                      for i in range(5))
        carriers = {n: tuple(CarrierOption(f"C{j}", round(rng.uniform(5, 25), 2),
                                           round(rng.uniform(0.3, 1.6), 2), 2)
                             for j in range(rng.randint(1, 3))) for n in nodes}
        cands = tuple(Candidate(ln.index, n, False, rng.choice([0.0, 0.0, 1.5]))
                      for ln in lines for n in nodes if rng.random() < 0.7)
        if {c.line for c in cands} != {ln.index for ln in lines}:
            continue
        stock = {(n, ln.sku): 99 for n in nodes for ln in lines}
        p = Problem(lines, carriers, cands, stock,
                    split_penalty=rng.choice([0.0, 4.0]),
                    max_shipments=rng.choice([None, 2, 3]))
        plan, want = solve(p), single_source_oracle(p)
        assert (plan is None) == (want is None)
        if plan is not None:
            check_plan(p, plan)
            assert plan.exact and plan.value == pytest.approx(want, abs=TOL)


# --------------------------------------------------------- large instances
def big_problem(seed: int, n_lines: int, n_nodes: int) -> Problem:
    rng = random.Random(seed)
    nodes = [f"N{i:03d}" for i in range(n_nodes)]
    lines = tuple(Line(i, f"SKU{rng.randint(0, n_lines)}", rng.choice([1, 1, 2, 5, 12]),
                       round(rng.uniform(0.2, 6), 2)) for i in range(n_lines))
    carriers = {n: tuple(CarrierOption(f"C{j}", rng.uniform(5, 25), rng.uniform(0.3, 1.6),
                                       rng.randint(1, 7)) for j in range(rng.randint(1, 3)))
                for n in nodes}
    cands = tuple(Candidate(ln.index, n, rng.random() < 0.05, rng.choice([0.0, 0.0, 2.0]))
                  for ln in lines for n in nodes)
    stock = {(n, ln.sku): (rng.choice([0, 20, 50]) if i < 5 else rng.randint(0, 3))
             for i, n in enumerate(nodes) for ln in lines}
    return Problem(lines, carriers, cands, stock, split_penalty=3.0)


def test_budget_exhaustion_falls_back_to_a_valid_plan(monkeypatch):
    p = big_problem(1, 6, 25)                 # exact in ~0.04 s: 4 shipments
    best = solve(p)
    assert best.exact
    monkeypatch.setattr(allocator, "WORK_LIMIT", 200)
    for objective in ("cost", "speed", "balanced"):
        rough = solve(replace(p, objective=objective, day_value=1.0))
        assert rough is not None and not rough.exact
        check_plan(replace(p, objective=objective, day_value=1.0), rough)
    rough = solve(p)
    assert best.value - TOL <= rough.value <= 2 * best.value


def test_a_tight_shipment_limit_past_the_work_budget_still_gets_a_plan(monkeypatch):
    # each line is cheapest at a node of its own (X0..X3); only P (lines 0, 1)
    # and Q (lines 2, 3) together ship it in 2: the line-by-line greedy plan
    # breaks the limit, so with the search cut short the order was held
    carriers = {**{f"X{i}": [opt("g", 3)] for i in range(4)}, "P": [opt("g", 9)], "Q": [opt("g", 9)]}
    cands = {i: [f"X{i}", "P" if i < 2 else "Q"] for i in range(4)}
    stock = {**{(f"X{i}", f"s{i}"): 1 for i in range(4)},
             **{("P" if i < 2 else "Q", f"s{i}"): 1 for i in range(4)}}
    p = problem([(f"s{i}", 1, 1.0) for i in range(4)], carriers, cands, stock, max_shipments=2)
    assert [s.node for s in solve(p).shipments] == ["P", "Q"]
    monkeypatch.setattr(allocator, "WORK_LIMIT", 1)
    monkeypatch.setattr(allocator, "SMALL_ORDER", 0)
    rough = solve(p)
    assert rough is not None and not rough.exact
    check_plan(p, rough)
    assert [s.node for s in rough.shipments] == ["P", "Q"]


def test_tied_plans_are_paid_for_from_the_work_budget(monkeypatch):
    # 40 lines only A ships, then 4 units of z, one at each of twelve identical
    # nodes: 11,880 plans tie. Settling a tie compares canonical forms, work in
    # proportion to the plan's length: the budget counts it, so such an order
    # ends on the budget (the same on a fast or a slow machine), not on the clock
    nodes = [f"N{i:02d}" for i in range(12)]
    lines = [(f"a{j}", 1, 1.0) for j in range(40)] + [("z", 1, 1.0)] * 4
    cands = {**{j: ["A"] for j in range(40)}, **{40 + k: nodes for k in range(4)}}
    stock = {**{("A", f"a{j}"): 1 for j in range(40)}, **{(n, "z"): 1 for n in nodes}}
    p = problem(lines, {"A": [opt("g", 5)], **{n: [opt("g", 5)] for n in nodes}}, cands, stock,
                split_penalty=0.0)
    offered = []
    offer = _search.Incumbent.offer
    monkeypatch.setattr(_search.Incumbent, "offer", lambda self, inst, alloc, *rest: (
        offered.append(len(alloc)), offer(self, inst, alloc, *rest))[1])
    monkeypatch.setattr(allocator, "WORK_LIMIT", 150_000)
    plan = solve(p)
    check_plan(p, plan)
    assert len(plan.shipments) == 5
    assert sum(offered) <= 2 * 150_000      # the exact search's budget and polish's half of it


def test_a_held_reason_claims_no_more_than_the_search_saw(monkeypatch):
    carriers = {"A": [opt("g", 5)], "B": [opt("g", 4)]}
    p = problem([("a", 1, 1.0), ("b", 1, 1.0)], carriers, {0: ["A"], 1: ["B"]},
                {("A", "a"): 1, ("B", "b"): 1}, max_shipments=1)
    assert explain_infeasible(p) == "needs 2 shipments, at most 1 allowed"       # proven: it saw every plan
    monkeypatch.setattr(allocator, "WORK_LIMIT", 1)                             # cut short: not a proof
    monkeypatch.setattr(allocator, "SMALL_ORDER", 0)
    assert explain_infeasible(p) == ("no plan of at most 1 shipments was found within the work limit "
                                     "(one of 2 exists)")


def test_very_deep_split_needs_no_deep_recursion():
    # 320 units, every store holds 2: 160 shipments, beyond the exact search
    stores = [f"S{i:03d}" for i in range(200)]
    p = Problem((Line(0, "X", 320, 0.5), Line(1, "Y", 3, 1.0)),
                {n: (opt("g", 5 + i % 7, 0.5, 2),) for i, n in enumerate(stores)},
                tuple(Candidate(i, n) for i in (0, 1) for n in stores),
                {**{(n, "X"): 2 for n in stores}, **{(n, "Y"): 1 for n in stores}})
    plan = solve(p)
    check_plan(p, plan)
    assert len(plan.shipments) == 160 and not plan.exact


@pytest.mark.parametrize("objective", ["cost", "speed", "balanced"])
def test_large_instance_is_bounded_and_valid(objective):
    p = replace(big_problem(3, 25, 120), objective=objective, day_value=1.5)
    start = time.process_time()             # CPU time: robust to a busy machine
    plan = solve(p)
    assert time.process_time() - start < 5.0
    assert plan is not None
    check_plan(p, plan)
    if objective == "cost":                 # the heuristic path is deterministic too
        assert solve(shuffled(p, random.Random(1))) == plan


# ------------------------------------- long orders (engine/_bigsearch.py)
# Past _search.MAX_CHUNKS lines the exact search can reach no plan; these
# orders get a construction and a local search instead (never exact).
LONG = _search.MAX_CHUNKS + 50


def test_a_long_order_opens_a_second_node_when_that_pays():
    # A has everything; B ships for a quarter of A's rate per kg but a rule
    # penalises it by $3 for the odd lines: the best plan sends the even
    # lines to B and the odd ones to A (210 + 62 + a split penalty of 5),
    # not everything from A (410) or from B (412). Before the long-order
    # search, such an order went all from A.
    n = LONG
    lines = [("S%d" % i, 1, 2.0) for i in range(n)]
    carriers = {"A": [opt("g", 10, 1.0)], "B": [opt("g", 12, 0.25)]}
    cands = {i: ["A", ("B", False, 3.0 if i % 2 else 0.0)] for i in range(n)}
    stock = {(node, "S%d" % i): 5 for i in range(n) for node in "AB"}
    p = problem(lines, carriers, cands, stock, split_penalty=5.0)
    plan = solve(p)
    check_plan(p, plan)
    assert [s.node for s in plan.shipments] == ["A", "B"] and not plan.exact
    assert round(plan.cost, 2) == 10 + 2.0 * n / 2 + 12 + 0.5 * n / 2 == 272.0
    assert round(plan.value, 2) == 277.0
    assert [i for i, _ in plan.shipments[1].lines] == list(range(0, n, 2))
    assert solve(shuffled(p, random.Random(3))) == plan


def best_over_node_sets(p: Problem) -> float:
    """The optimum when every node has one carrier and ample stock and no
    pair has an adjust: over every set of nodes, each line from its
    cheapest per kg node in the set (every node of the set used)."""
    nodes, by_line = sorted(p.carriers), {}
    for c in p.candidates:
        by_line.setdefault(c.line, []).append(c.node)
    best = None
    for k in range(1, (p.max_shipments or len(nodes)) + 1):
        for chosen in itertools.combinations(nodes, k):
            value, used = sum(p.carriers[n][0].fixed for n in chosen) + p.split_penalty * (k - 1), set()
            for ln in p.lines:
                there = [n for n in by_line[ln.index] if n in chosen]
                if not there:
                    break
                n = min(there, key=lambda n: p.carriers[n][0].per_kg)
                used.add(n)
                value += p.carriers[n][0].per_kg * ln.weight * ln.qty
            else:
                if len(used) == k and (best is None or value < best):
                    best = value
    return best


@settings(max_examples=40, derandomize=True, deadline=None, database=None)
@given(st.integers(0, 2 ** 32))
def test_long_orders_pick_the_best_set_of_nodes(seed):
    # 3-7 nodes, one carrier each, ample stock: what matters is which nodes
    # ship (a facility location problem); the heuristic before the long-order
    # search missed the best set on about one such order in four
    rng = random.Random(seed)
    nodes = [f"N{i}" for i in range(rng.randint(3, 7))]
    lines = tuple(Line(i, f"S{i}", rng.randint(1, 5), round(rng.uniform(0.2, 5), 2))
                  for i in range(rng.randint(LONG - 49, LONG)))
    carriers = {n: (opt("g", round(rng.uniform(5, 60), 2), round(rng.uniform(0.1, 1.5), 2)),) for n in nodes}
    cands = tuple(Candidate(ln.index, n) for ln in lines for n in nodes if n == nodes[0] or rng.random() < 0.6)
    p = Problem(lines, carriers, cands, {(n, ln.sku): 99 for ln in lines for n in nodes},
                split_penalty=rng.choice([0.0, 4.0, 15.0]), max_shipments=rng.choice([None, 2, 3]))
    plan = solve(p)
    check_plan(p, plan)
    assert plan.value == pytest.approx(best_over_node_sets(p), abs=0.005)


def mid_set_order(seed: int) -> Problem:
    """30-60 lines, 14-18 nodes with one carrier each, each line at about
    45% of them, ample stock, max shipments 3-5: which nodes ship decides
    the cost (a facility location problem that best_over_node_sets solves)."""
    rng = random.Random(f"mid-set-{seed}")
    nodes = [f"N{i:02d}" for i in range(rng.randint(14, 18))]
    lines = tuple(Line(i, f"S{i}", rng.randint(1, 3), round(rng.uniform(0.2, 4), 2))
                  for i in range(rng.randint(30, 60)))
    carriers = {n: (opt("g", round(rng.uniform(5, 30), 2), round(rng.uniform(0.1, 1.0), 2)),) for n in nodes}
    cands = []
    for ln in lines:
        chosen = [n for n in nodes if rng.random() < 0.45] or [rng.choice(nodes)]
        cands += [Candidate(ln.index, n) for n in chosen]
    return Problem(lines, carriers, tuple(cands), {(n, ln.sku): 9 for ln in lines for n in nodes},
                   max_shipments=rng.choice([3, 4, 5]))


@pytest.mark.parametrize("seed", [1, 3, 4, 14, 25, 28])
def test_mid_orders_past_the_work_budget_pick_the_best_set_of_nodes(seed):
    # the exact search runs out of its budget on these; its plan, polished,
    # was 3-16% dearer than the best set of nodes (seeds 1, 3, 25: 10-16%)
    p = mid_set_order(seed)
    with limits.deadline(limits.TIME_LIMIT):
        plan = solve(p)
    check_plan(p, plan)
    assert not plan.exact
    assert plan.value == pytest.approx(best_over_node_sets(p), abs=0.005)


def test_a_long_order_under_max_shipments_finds_the_one_pair_that_ships_it():
    # D has 90% of the lines (all but every tenth), A the first half, B the
    # second: with two shipments only A and B together ship everything, but
    # adding the node with room for most first takes D
    n = LONG
    stock = {("A" if i < n // 2 else "B", f"S{i}"): 3 for i in range(n)}
    stock.update({("D", f"S{i}"): 3 for i in range(n) if i % 10})
    carriers = {"A": [opt("g", 10, 0.5)], "B": [opt("g", 10, 0.5)], "D": [opt("g", 10, 0.4)]}
    p = problem([(f"S{i}", 1, 1.0) for i in range(n)], carriers, {i: ["A", "B", "D"] for i in range(n)},
                stock, max_shipments=2)
    plan = solve(p)
    check_plan(p, plan)
    assert [(s.node, len(s.lines)) for s in plan.shipments] == [("A", n // 2), ("B", n // 2)]


def long_order(rng: random.Random):
    """(problem, required node or None): a long order with a plan planted in
    it, each line whole from one of at most max shipments nodes through
    pairs that are not avoided; thin and shared stock, capacity left, avoided
    pairs and adjusts elsewhere, any objective."""
    nodes = [f"N{i}" for i in range(rng.randint(2, 9))]
    limit = rng.choice([None, None, 1, 2, 3])
    planted_nodes = rng.sample(nodes, min(limit or len(nodes), rng.randint(1, len(nodes))))
    skus = [f"S{j}" for j in range(rng.randint(20, LONG))]
    lines = tuple(Line(i, rng.choice(skus), rng.choice([1, 1, 2, 3, 7]), round(rng.uniform(0, 4), 1))
                  for i in range(rng.randint(LONG - 49, LONG)))
    carriers = {n: tuple(CarrierOption(f"C{j}", round(rng.uniform(1, 30), 1), round(rng.uniform(0.1, 2), 2),
                                       rng.randint(1, 5)) for j in range(rng.randint(1, 3))) for n in nodes}
    cands, stock, load = [], {}, {}
    for ln in lines:
        home = rng.choice(planted_nodes)
        for n in nodes:
            if n == home or rng.random() < 0.5:
                adjust = rng.choice([0.0, 0.0, 0.0, round(rng.uniform(-5, 5), 1)])
                cands.append(Candidate(ln.index, n, n != home and rng.random() < 0.1, adjust))
            if n == home:       # the planted plan: each line whole from its home
                stock[n, ln.sku] = stock.get((n, ln.sku), 0) + ln.qty
                load[n] = load.get(n, 0) + ln.qty
            elif rng.random() < 0.3:
                stock[n, ln.sku] = stock.get((n, ln.sku), 0) + rng.randint(0, 4)
    units = {n: load.get(n, 0) + rng.randint(0, 5) for n in nodes if rng.random() < 0.4} or None
    used = sorted(load)
    p = Problem(lines, carriers, tuple(cands), stock, objective=rng.choice(["cost", "speed", "balanced"]),
                day_value=rng.choice([0.0, 2.0]), split_penalty=rng.choice([0.0, 5.0]),
                max_shipments=limit if limit != 1 else None, ship_complete=limit == 1, node_units=units)
    return p, rng.choice(used) if rng.random() < 0.3 else None


@settings(max_examples=200, derandomize=True, deadline=None, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(st.integers(0, 2 ** 32))
def test_long_order_plans_keep_every_limit(seed):
    p, req = long_order(random.Random(seed))
    plan = solve(p, req)
    assert plan is not None, "a plan was planted"
    check_plan(p, plan, req)
    assert not plan.exact
    if p.max_shipments is None and not p.ship_complete:      # any number of nodes: found
        assert plan.avoided == 0, "the planted plan uses no avoided pair"


def test_a_long_order_with_capacity_left_on_every_node_stays_within_the_time_limit():
    # 2,000 lines of 2,000 skus, every node short of capacity: sharing the
    # capacity out per sku went one recursion level per sku (RecursionError);
    # long orders keep the units per node in the search instead
    rng = random.Random(4)
    nodes = [f"N{i:02d}" for i in range(20)]
    lines = tuple(Line(i, f"S{i}", rng.randint(1, 3), round(rng.uniform(0.2, 5), 2)) for i in range(2000))
    carriers = {n: (opt("g", rng.uniform(5, 30), rng.uniform(0.2, 1.5)),) for n in nodes}
    cands = tuple(Candidate(ln.index, n) for ln in lines for n in nodes)
    units = {n: 300 for n in nodes}
    stock = {(n, ln.sku): min(rng.randint(0, 4), 300) for ln in lines for n in nodes}
    for ln in lines:
        stock[nodes[ln.index % 20], ln.sku] = ln.qty          # enough in all, spread out
    p = Problem(lines, carriers, cands, stock, split_penalty=2.0, node_units=units)
    started = time.monotonic()
    with limits.deadline(limits.TIME_LIMIT):
        plan = solve(p)
    assert time.monotonic() - started < limits.TIME_LIMIT + 0.5
    check_plan(p, plan)
