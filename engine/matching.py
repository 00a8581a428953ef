"""Forward chaining over one order's facts: which rules fire, for what, in
which order. Plain data and pure functions.

Semantics (shared by every matcher; engine/durable_engine.py implements the
same on durable_rules and a differential test holds them equal):

* Entities: the order, each order line, each candidate (line x node). A rule
  is matched against the entities of its scope; it sees the entity's own
  facts plus those of its line and of the order.
* Agenda: rules in firing order (priority desc, then file order), entities
  in order (lines in order, candidates by line then node). The first match
  that has not fired yet fires (refraction: once per rule and entity).
* `tag` and `set` change the order/customer facts at once; when a firing
  changes a fact, matching starts again from the top of the agenda, so rules
  whose conditions now hold fire next, and rules whose conditions no longer
  hold do not fire (forward chaining to a fixpoint).
* Guard: more than MAX_CHAIN fact-changing firings for one order, or more
  than MAX_FIRINGS firings in all, stop it with a RuleLoopError naming the
  rules involved.
"""

from __future__ import annotations

from collections import ChainMap, Counter
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Mapping, NamedTuple

from dsl.compiler import AllOf, AnyOf, Check, CompiledRule, Cond, NotOf, Rulebook
from . import limits

MAX_CHAIN = 10_000
MAX_FIRINGS = 1_000_000


class RuleLoopError(Exception):
    """The rules kept changing the order's facts; names the rules involved."""

    def __init__(self, message: str, rules: tuple[str, ...]):
        super().__init__(message)
        self.rules = rules


class Entity(NamedTuple):
    """One thing rules are matched against (a named tuple: an order on a
    hundred-node network has dozens of candidates)."""
    id: str                       # "order", "line:0", "cand:0:TX-DC"
    scope: str                    # order | line | candidate
    line: int | None = None
    node: str | None = None
    facts: Mapping[str, Any] = MappingProxyType({})


@dataclass
class FactBase:
    """The facts of one order. `order` holds the order-scope keys (order.*,
    customer.*, today.*, now) and is what tag/set change."""
    order: dict[str, Any]
    lines: list[Entity]
    candidates: list[Entity]
    # node -> its node.* facts, one long-lived dict per node and load (as
    # gather keeps them), for matchers that reuse node-only answers across
    # orders; None: take them from the candidates
    nodes: dict[str, Mapping[str, Any]] | None = None

    def entities(self, scope: str) -> list[Entity]:
        if scope == "order":
            return [ORDER_ENTITY]
        return self.lines if scope == "line" else self.candidates

    def view(self, entity: Entity) -> Mapping[str, Any]:
        if entity.scope == "order":
            return self.order
        if entity.scope == "line":
            return ChainMap(entity.facts, self.order)
        return ChainMap(entity.facts, self.lines[entity.line].facts, self.order)


ORDER_ENTITY = Entity("order", "order")


class Firing(NamedTuple):
    rule: CompiledRule
    entity: Entity


# ---- conditions -------------------------------------------------------------------

def holds(condition: Cond, facts: Mapping[str, Any]) -> bool:
    if isinstance(condition, Check):
        return _check(condition, facts)
    if isinstance(condition, AllOf):
        return all(holds(item, facts) for item in condition.items)
    if isinstance(condition, AnyOf):
        return any(holds(item, facts) for item in condition.items)
    if isinstance(condition, NotOf):
        return not holds(condition.item, facts)
    raise TypeError(f"not a condition: {condition!r}")


def _check(check: Check, facts: Mapping[str, Any]) -> bool:
    """A missing value (None) fails every test except the negative ones
    (ne, not_in, has_no_tag), which it passes."""
    op = check.op
    value = facts.get(check.key)
    if op == "has_tag":
        return value is not None and check.values[0] in value
    if op == "has_no_tag":
        return value is None or check.values[0] not in value
    if check.ref is not None:
        other = facts.get(check.ref)
        if value is None or other is None:
            return op == "ne"
        return _compare(op, value, (other,))
    if value is None:
        return op in ("ne", "not_in")
    return _compare(op, value, check.values)


def _compare(op: str, value: Any, values: tuple) -> bool:
    try:
        if op == "eq":
            return value == values[0]
        if op == "ne":
            return value != values[0]
        if op == "in":
            return value in values
        if op == "not_in":
            return value not in values
        if op == "lt":
            return value < values[0]
        if op == "le":
            return value <= values[0]
        if op == "gt":
            return value > values[0]
        if op == "ge":
            return value >= values[0]
        if op == "between":
            return values[0] <= value <= values[1]
    except TypeError:       # a derived field holding text compared with a number
        return op in ("ne", "not_in")
    raise ValueError(f"unknown operator {op}")


# ---- tag / set ------------------------------------------------------------------------

def apply_change(firing: Firing, base: FactBase) -> bool:
    """Apply the fact-changing effects (tag, set) of a firing to the order
    facts. Returns True when a fact changed."""
    changed = False
    view = None
    for effect in firing.rule.effects:
        if effect.kind in ("tag_order", "tag_customer"):
            key = "order.tags" if effect.kind == "tag_order" else "customer.tags"
            tags = base.order.get(key) or frozenset()
            if effect.target not in tags:
                base.order[key] = frozenset(tags | {effect.target})
                changed = True
        elif effect.kind == "set_field":
            if effect.ref is not None:
                view = view or base.view(firing.entity)
                value = view.get(effect.ref)
            else:
                value = effect.value
            if base.order.get(effect.field) != value or effect.field not in base.order:
                base.order[effect.field] = value
                changed = True
    return changed


def changes_facts(rule: CompiledRule) -> bool:
    return any(e.kind in ("tag_order", "tag_customer", "set_field") for e in rule.effects)


# ---- the agenda -------------------------------------------------------------------

class Agenda:
    """What has fired so far for one order: refraction (once per rule and
    entity), the firings in order, and the loop guard. Every matcher walks
    its matches in agenda order through `fire`."""

    def __init__(self, base: FactBase):
        self.base = base
        self.fired: set[tuple[int, str]] = set()
        self.firings: list[Firing] = []
        self.chain: Counter = Counter()

    def pending(self, rule: CompiledRule, entity: Entity) -> bool:
        return (rule.index, entity.id) not in self.fired

    def fire(self, rule: CompiledRule, entity: Entity) -> bool:
        """Record a firing and apply its tag/set effects; True when a fact
        changed, so matching must start again from the top."""
        self.fired.add((rule.index, entity.id))
        firing = Firing(rule, entity)
        self.firings.append(firing)
        changed = changes_facts(rule) and apply_change(firing, self.base)
        guard(self.firings, self.chain, firing, changed)
        return changed


def run_rules(rulebook: Rulebook, base: FactBase) -> list[Firing]:
    """Fire the rules on the facts to a fixpoint; the firings in order."""
    agenda = Agenda(base)
    tests = 0
    restart = True
    while restart:
        restart = False
        for rule in rulebook.rules:
            for entity in base.entities(rule.scope):
                if not agenda.pending(rule, entity):
                    continue
                tests += 1
                if not tests & 1023:
                    limits.check("matching the rules")
                if not holds(rule.condition, base.view(entity)):
                    continue
                if agenda.fire(rule, entity):
                    restart = True
                    break
            if restart:
                break
    return agenda.firings


def guard(firings: list[Firing], chain: Counter, firing: Firing, changed: bool) -> None:
    """Stop an order whose firings changed its facts more than MAX_CHAIN
    times (`changed`: this firing did; a tag the order already has changes
    nothing), or that fired more than MAX_FIRINGS times in all."""
    if changed:
        chain[firing.rule.name] += 1
    if sum(chain.values()) > MAX_CHAIN:
        names = tuple(name for name, _ in chain.most_common(5))
        raise RuleLoopError(
            f"rule loop: more than {MAX_CHAIN:,} rule firings changed this order's facts; "
            "rules involved: " + ", ".join(f'"{n}"' for n in names), names)
    if len(firings) > MAX_FIRINGS:
        # Not a change of facts: simply too many firings (rules x entities).
        names = tuple(name for name, _ in Counter(f.rule.name for f in firings).most_common(5))
        raise RuleLoopError(
            f"rule loop: more than {MAX_FIRINGS:,} rule firings for this order; "
            "rules involved: " + ", ".join(f'"{n}"' for n in names), names)
