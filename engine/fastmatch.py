"""The compiled matcher: `run_rules` with exactly the result of
`engine.matching.run_rules` (same firings, same order, same loop guard),
fast enough for a network of a hundred nodes.

The reference walks every rule over every entity through ChainMap views and
the interpreter in `matching.holds`, and starts again from the top after every
change of the order's facts. This module keeps those semantics (the contract
is matching.py's docstring) and removes the repeated work:

* Conditions are compiled once per rulebook into Python closures (built from
  the condition tree; no source text is generated or evaluated). Each key is
  read from the layer gather() puts it in: node.*, stock.*, distance,
  transit, cost from the candidate's facts; item.* / line.* from the line's;
  everything else (order.*, customer.*, today.*, now, set fields) from the
  order's. The FactBase is expected to be laid out that way, as
  `engine.facts.gather` builds it.
* A rule's top-level `and` is split by what its parts read. The order-only
  part is evaluated once per rule and pass of the agenda: when it fails, no
  entity is visited. The line part is evaluated once per line and pass; the
  node-only part (node.* facts do not depend on the line) once per node and
  order, and shared by the rules that test the same node-only condition;
  when gather() hands over its long-lived node facts (FactBase.nodes: one
  dict per node and load), once per such dict, across orders.
* Restarts are incremental. When a firing changes order facts, only rules
  whose condition reads a changed key can match differently; a rule that was
  walked to the end and reads none of them has fired for every entity it
  matches (refraction), so the reference would find nothing new in it. It
  is skipped; all other rules are walked again from the top, in agenda order.
  Which firing comes next is therefore the same as in the reference.

`tag`/`set` are applied and the loop guard is checked by the reference's own
functions (matching.apply_change and matching.guard).
"""

from __future__ import annotations

from collections import Counter
from typing import Any, Callable

from dsl.compiler import AllOf, AnyOf, Check, Cond, NotOf, Rulebook
from . import matching
from .matching import FactBase, Firing, apply_change, changes_facts, guard

_new = tuple.__new__     # a named tuple without the Python-level __new__ (hot paths)

__all__ = ["run_rules", "compiled"]

Test = Callable[[dict, dict, dict], Any]

CANDIDATE_KEYS = frozenset({"distance", "transit", "cost"})
LOAD = "node.load"
CHECK_EVERY = 1024          # condition tests between two checks of the order's time limit
ANSWERS_KEPT = 4096         # node facts dicts whose answers a compiled rulebook keeps (each
                            # dict is kept alive with them; a node has a new one per load)


def layer_of(key: str) -> str:
    """"o", "l" or "c": which facts of an entity hold `key`."""
    if key in CANDIDATE_KEYS or key.startswith(("node.", "stock.")):
        return "c"
    if key.startswith(("item.", "line.")):
        return "l"
    return "o"


# ---- conditions as closures ---------------------------------------------------------------

def _getter(key: str) -> Test:
    where = layer_of(key)
    if where == "c":
        return lambda o, l, c: c.get(key)
    if where == "l":
        return lambda o, l, c: l.get(key)
    return lambda o, l, c: o.get(key)


def _ordered(op: str, get: Test, low, high=None) -> Test:
    """lt, le, gt, ge, between: a missing value or a TypeError (text against
    a number) is False, as in matching._compare."""
    def test(o, l, c):
        value = get(o, l, c)
        if value is None:
            return False
        try:
            if op == "lt":
                return value < low
            if op == "le":
                return value <= low
            if op == "gt":
                return value > low
            if op == "ge":
                return value >= low
            return low <= value <= high
        except TypeError:
            return False
    return test


def _check(check: Check) -> Test:
    op, key = check.op, check.key
    get = _getter(key)
    if op == "has_tag":
        tag = check.values[0]

        def has_tag(o, l, c):
            value = get(o, l, c)
            return value is not None and tag in value
        return has_tag
    if op == "has_no_tag":
        tag = check.values[0]

        def has_no_tag(o, l, c):
            value = get(o, l, c)
            return value is None or tag not in value
        return has_no_tag
    if check.ref is not None:
        other = _getter(check.ref)
        from .matching import _compare

        def compare(o, l, c):
            value, against = get(o, l, c), other(o, l, c)
            if value is None or against is None:
                return op == "ne"
            return _compare(op, value, (against,))
        return compare
    values = check.values
    where = layer_of(key)
    index = "olc".index(where)
    # eq/ne/in/not_in: a missing value is None, and None equals no constant,
    # so the plain expressions give matching._check's answers.
    if op == "eq":
        x = values[0]
        return [lambda o, l, c: o.get(key) == x, lambda o, l, c: l.get(key) == x,
                lambda o, l, c: c.get(key) == x][index]
    if op == "ne":
        x = values[0]
        return [lambda o, l, c: o.get(key) != x, lambda o, l, c: l.get(key) != x,
                lambda o, l, c: c.get(key) != x][index]
    if op in ("in", "not_in"):
        pool = values
        if op == "in":
            return [lambda o, l, c: o.get(key) in pool, lambda o, l, c: l.get(key) in pool,
                    lambda o, l, c: c.get(key) in pool][index]
        return [lambda o, l, c: o.get(key) not in pool, lambda o, l, c: l.get(key) not in pool,
                lambda o, l, c: c.get(key) not in pool][index]
    if op in ("lt", "le", "gt", "ge"):
        return _ordered(op, get, values[0])
    if op == "between":
        return _ordered(op, get, values[0], values[1])
    raise ValueError(f"unknown operator {op}")


def condition(cond: Cond) -> Test:
    """A closure (order facts, line facts, candidate facts) -> truthy."""
    if isinstance(cond, Check):
        return _check(cond)
    if isinstance(cond, NotOf):
        inner = condition(cond.item)
        return lambda o, l, c: not inner(o, l, c)
    tests = tuple(condition(item) for item in cond.items)
    if isinstance(cond, AllOf):
        if not tests:
            return lambda o, l, c: True
        if len(tests) == 1:
            return tests[0]
        if len(tests) == 2:
            a, b = tests
            return lambda o, l, c: a(o, l, c) and b(o, l, c)

        def all_of(o, l, c):
            for test in tests:
                if not test(o, l, c):
                    return False
            return True
        return all_of
    if isinstance(cond, AnyOf):
        if not tests:
            return lambda o, l, c: False
        if len(tests) == 1:
            return tests[0]

        def any_of(o, l, c):
            for test in tests:
                if test(o, l, c):
                    return True
            return False
        return any_of
    raise TypeError(f"not a condition: {cond!r}")


def _keys(cond: Cond) -> set[str]:
    out, stack = set(), [cond]
    while stack:
        item = stack.pop()
        if isinstance(item, Check):
            out.add(item.key)
            if item.ref:
                out.add(item.ref)
        elif isinstance(item, NotOf):
            stack.append(item.item)
        else:
            stack.extend(item.items)
    return out


class _Rule:
    __slots__ = ("rule", "index", "scope", "order_part", "line_part", "node_part", "rest",
                 "changes", "keys", "written", "node_cond", "node_slot", "load_elsewhere")

    def __init__(self, rule):
        self.rule, self.index, self.scope = rule, rule.index, rule.scope
        self.changes = changes_facts(rule)
        self.written = _written(rule)
        self.keys = frozenset(_keys(rule.condition))
        parts = list(rule.condition.items) if isinstance(rule.condition, AllOf) else [rule.condition]
        by_part: dict[str, list] = {"o": [], "l": [], "n": [], "r": []}
        for part in parts:
            keys = _keys(part)
            layers = {layer_of(k) for k in keys}
            if layers <= {"o"}:
                by_part["o"].append(part)
            elif "c" not in layers:
                by_part["l"].append(part)
            elif all(k.startswith("node.") for k in keys):
                by_part["n"].append(part)
            else:
                by_part["r"].append(part)
        made = {k: (condition(AllOf(tuple(v))) if v else None) for k, v in by_part.items()}
        self.order_part, self.line_part = made["o"], made["l"]
        self.node_part, self.rest = made["n"], made["r"]
        self.node_cond = AllOf(tuple(by_part["n"])) if by_part["n"] else None
        self.node_slot = None
        # reads node.load anywhere but its node-only part (or in a `set ... to node.load`)
        self.load_elsewhere = any(LOAD in _keys(part) for key in "olr" for part in by_part[key]) or \
            any(effect.ref == LOAD for effect in rule.effects)


class Compiled:
    def __init__(self, rulebook: Rulebook):
        self.rulebook = rulebook
        self.rules = tuple(_Rule(rule) for rule in rulebook.rules)
        readers: dict[str, list[int]] = {}
        for position, rule in enumerate(self.rules):
            for key in rule.keys:
                readers.setdefault(key, []).append(position)
        self.readers = readers
        # rules that test the same node-only condition share its answers
        slots: dict = {}
        for rule in self.rules:
            if rule.node_cond is None:
                continue
            try:
                rule.node_slot = slots.setdefault(rule.node_cond, len(slots))
            except TypeError:           # an unhashable constant: a slot of its own
                rule.node_slot = len(slots)
                slots[object()] = rule.node_slot
        self.node_slots = len(slots)
        # node.load is the one node fact that changes as orders are placed
        # (units promised today): the node-only tests that read it, and
        # whether any rule reads it elsewhere (see engine.recheck)
        self.load_tests = tuple({rule.node_slot: rule.node_part for rule in self.rules
                                 if rule.node_cond is not None and LOAD in _keys(rule.node_cond)}.values())
        self.load_elsewhere = any(rule.load_elsewhere for rule in self.rules) or any(
            # `exclude`/`avoid group` of a group on node.load: its members change with it
            effect.kind in ("exclude_group", "avoid_group") and LOAD in _keys(rulebook.groups[effect.target])
            for rule in rulebook.rules for effect in rule.effects)
        # id(node facts) -> (those facts, [answer per node slot or None])
        self.node_answers: dict[int, tuple[dict, list]] = {}

    def answers_for(self, node_facts: dict) -> dict[str, list]:
        """node -> its answers to the node-only conditions (by slot; None:
        not worked out yet), for facts dicts that nothing changes
        (engine.facts keeps one per node and load): each condition is
        tested once per dict, not once per order."""
        answers, out = self.node_answers, {}
        for node, facts in node_facts.items():
            hit = answers.get(id(facts))
            if hit is None or hit[0] is not facts:
                if len(answers) > ANSWERS_KEPT:
                    answers.clear()
                hit = answers[id(facts)] = (facts, [None] * self.node_slots)
            out[node] = hit[1]
        return out


_CACHE: dict[int, tuple[Rulebook, Compiled]] = {}
_CACHE_SIZE = 64


def compiled(rulebook: Rulebook) -> Compiled:
    """The compiled form of a rulebook, built once per rulebook object."""
    hit = _CACHE.get(id(rulebook))
    if hit is not None and hit[0] is rulebook:
        return hit[1]
    made = Compiled(rulebook)
    if len(_CACHE) >= _CACHE_SIZE:
        _CACHE.pop(next(iter(_CACHE)))
    _CACHE[id(rulebook)] = (rulebook, made)
    return made


def _limit_check():
    try:
        from . import limits
    except ImportError:          # pragma: no cover - engines without a time limit
        return lambda stage: None
    return limits.check


_check_time = _limit_check()


# ---- the agenda -----------------------------------------------------------------------------

def run_rules(rulebook: Rulebook, base: FactBase) -> list[Firing]:
    """Fire the rules on the facts to a fixpoint; the firings in order (the
    same list as engine.matching.run_rules)."""
    comp = compiled(rulebook)
    rules = comp.rules
    order = base.order
    line_facts = [entity.facts for entity in base.lines]
    line_rows = [(entity, entity.id, entity.line, None, line_facts[entity.line], None)
                 for entity in base.lines]
    cand_rows = [(entity, entity.id, entity.line, entity.node, line_facts[entity.line], entity.facts)
                 for entity in base.candidates]
    order_rows = None
    node_facts = base.nodes
    if node_facts is not None:      # long-lived dicts: answers kept across orders
        node_answers = comp.answers_for(node_facts)
    else:
        node_facts, node_answers = {}, {}
        for row in cand_rows:
            if row[3] not in node_facts:
                node_facts[row[3]] = row[5]
                node_answers[row[3]] = [None] * comp.node_slots
    fired = [set() for _ in rules]
    firings: list[Firing] = []
    chain: Counter = Counter()
    chained = 0
    max_chain, max_firings = matching.MAX_CHAIN, matching.MAX_FIRINGS
    settled = [False] * len(rules)
    tests = 0
    restart = True
    while restart:
        restart = False
        for position, cr in enumerate(rules):
            if settled[position]:
                continue
            if cr.order_part is not None and not cr.order_part(order, None, None):
                settled[position] = True
                continue
            scope = cr.scope
            if scope == "candidate":
                rows = cand_rows
            elif scope == "line":
                rows = line_rows
            else:
                if order_rows is None:
                    entity = base.entities("order")[0]
                    order_rows = [(entity, entity.id, None, None, None, None)]
                rows = order_rows
            tests += len(rows)
            if tests >= CHECK_EVERY:
                tests = 0
                _check_time("matching the rules")
            line_part, node_part, rest = cr.line_part, cr.node_part, cr.rest
            if line_part is not None:
                lines_ok = [bool(line_part(order, lf, None)) for lf in line_facts]
                rows = [row for row in rows if lines_ok[row[2]]]
            if node_part is not None:
                slot, kept = cr.node_slot, []
                for row in rows:
                    answers = node_answers[row[3]]
                    ok = answers[slot]
                    if ok is None:
                        ok = answers[slot] = bool(node_part(None, None, node_facts[row[3]]))
                    if ok:
                        kept.append(row)
                rows = kept
            done = fired[position]
            if rest is not None:
                matches = [row for row in rows if row[1] not in done and rest(order, row[4], row[5])]
            else:
                matches = [row for row in rows if row[1] not in done]
            rule = cr.rule
            for row in matches:
                done.add(row[1])
                firing = _new(Firing, (rule, row[0]))
                firings.append(firing)
                if cr.changes:
                    changed = apply_change(firing, base)
                    guard(firings, chain, firing, changed)
                    chained += changed
                    if changed:
                        for key in cr.written:
                            for reader in comp.readers.get(key, ()):
                                settled[reader] = False
                        restart = True
                        break
                elif len(firings) > max_firings or chained > max_chain:
                    guard(firings, chain, firing, False)
            if restart:
                break
            settled[position] = True
    return firings


def _written(rule) -> tuple[str, ...]:
    keys = []
    for effect in rule.effects:
        if effect.kind == "tag_order":
            keys.append("order.tags")
        elif effect.kind == "tag_customer":
            keys.append("customer.tags")
        elif effect.kind == "set_field":
            keys.append(effect.field)
    return tuple(keys)
