"""What the fired rules ask for, gathered into one Verdict for the allocator.

Accumulating effects (exclusions, avoidance, preferences, penalties, keep,
surcharges) add up. Settings (objective, max shipments, split penalty,
carrier, route) set by several rules: the highest-priority rule wins, then
the later one in the file; the others are recorded as overridden.

Where an effect applies: candidate actions apply to their (line, node);
named node / group / allow actions apply to the firing's line when the rule
is about lines or candidates, and to every line when it is about the order.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from functools import partial
from typing import NamedTuple

from dsl.compiler import CompiledRule, Effect, Rulebook
from ._kept import kept
from .decision import money
from .matching import Firing, FactBase, holds

_new = tuple.__new__     # a named tuple without the Python-level __new__ (hot paths)

ALL_LINES = -1


class Why(NamedTuple):
    rule: CompiledRule
    reason: str | None = None

    def cite(self) -> str:
        return f'rule "{self.rule.name}" ({self.rule.file}:{self.rule.line})'


@dataclass
class Verdict:
    objective: str
    day_value: float
    split_penalty: float
    max_shipments: int | None
    ship_complete: Why | None = None
    hold: Why | None = None
    route_to: tuple[str, Why] | None = None          # node id or "<pickup>"
    carrier: tuple[str, str | None, Why] | None = None  # use carrier (id, service)
    avoid_carriers: dict[str, Why] = field(default_factory=dict)
    surcharges: dict[str, float] = field(default_factory=lambda: defaultdict(float))
    excluded: dict[tuple[int, str], Why] = field(default_factory=dict)      # (line, node)
    avoided: dict[tuple[int, str], Why] = field(default_factory=dict)
    adjust: dict[tuple[int, str], float] = field(default_factory=lambda: defaultdict(float))
    keep: dict[tuple[str, str], int] = field(default_factory=dict)          # (node, sku) -> units
    kept_by: dict[tuple[str, str], tuple[int, Why]] = field(default_factory=dict)  # (node, sku) -> largest keep
    allow_vendors: set[int] = field(default_factory=set)                    # line indexes or ALL_LINES
    allow_transit: set[int] = field(default_factory=set)
    overridden: dict[tuple[int, int], str] = field(default_factory=dict)    # (firing number, note) -> winner
    notes: dict[int, list[str]] = field(default_factory=dict)               # firing number -> effect texts


_SETTINGS = {"optimize", "max_shipments", "split_penalty", "use_carrier", "route_to_node",
             "route_to_pickup"}


def decide(rulebook: Rulebook, firings: list[Firing], base: FactBase, nodes, skus: list[str],
           pickup: bool = False) -> Verdict:
    """Interpret the firings. `nodes` are the network's nodes (for groups),
    `skus` the order's skus by line index; `pickup`: the order is collected
    at its pickup node, so a `route to node` does not apply to it (and
    overrides no `route to pickup node`)."""
    settings = rulebook.settings
    verdict = Verdict(settings.objective, settings.day_value, settings.split_penalty,
                      settings.max_shipments)
    words = partial(_words, currency=settings.currency)
    winners: dict[str, tuple[tuple[int, int], int, Effect, int]] = {}
    keep_by_rule: dict[tuple[int, str, str], int] = {}
    node_facts = None
    for number, firing in enumerate(firings):
        rule, entity = firing.rule, firing.entity
        line = entity.line if entity.line is not None else ALL_LINES
        texts = verdict.notes.setdefault(number, [])
        for effect in rule.effects:
            kind = effect.kind
            if kind in _NODE_EFFECTS:       # the most frequent: one per candidate matched
                node_id = entity.node
                head, tail = kept(_WORDS, effect, words)
                texts.append(head + node_id + tail)
                if kind in ("exclude_node", "avoid_node"):
                    target = verdict.excluded if kind == "exclude_node" else verdict.avoided
                    if (line, node_id) not in target:
                        target[line, node_id] = _new(Why, (rule, effect.reason))
                else:
                    sign = -1 if kind == "prefer_node" else 1
                    verdict.adjust[(line, node_id)] += sign * effect.amount
                continue
            why = _new(Why, (rule, effect.reason))
            if kind == "route_to_node" and pickup:
                texts.append(f"{effect.text} (not applied: a pickup order is collected at its pickup node)")
                continue
            if kind in _SETTINGS:
                slot = "route" if kind.startswith("route") else kind
                rank = (rule.priority, rule.index)
                previous = winners.get(slot)
                # the setting's own words are overridden, not the rule's other actions
                if previous is None or rank >= previous[0]:
                    # a rule firing again (once per line or node) does not override itself
                    if previous is not None and firings[previous[1]].rule is not rule:
                        verdict.overridden[previous[1], previous[3]] = rule.name
                    winners[slot] = (rank, number, effect, len(texts))
                elif firings[previous[1]].rule is not rule:
                    verdict.overridden[number, len(texts)] = firings[previous[1]].rule.name
                texts.append(effect.text)
            elif kind == "keep":
                key = (rule.index, entity.node, skus[line])
                keep_by_rule[key] = max(keep_by_rule.get(key, 0), int(effect.amount))
                known = verdict.kept_by.get((entity.node, skus[line]))
                if known is None or known[0] < int(effect.amount):    # the rule that keeps most
                    verdict.kept_by[entity.node, skus[line]] = (int(effect.amount), why)
                units = "unit" if int(effect.amount) == 1 else "units"
                texts.append(f"keep {int(effect.amount)} {units} of {skus[line]} at {entity.node}"
                             + (f": {effect.reason}" if effect.reason else ""))
            elif kind in ("exclude_named_node", "avoid_named_node", "prefer_named_node",
                          "penalize_named_node", "exclude_group", "avoid_group"):
                if kind.endswith("group"):
                    if node_facts is None:
                        # the candidates' node facts where there are some: their
                        # node.load counts the units promised today, as `node in
                        # group` in a candidate rule sees it
                        known = getattr(base, "nodes", None) or {}
                        node_facts = {n.id: known.get(n.id) or _node_facts(n) for n in nodes}
                    group = rulebook.groups[effect.target]
                    targets = [nid for nid, facts in node_facts.items() if holds(group, facts)]
                else:
                    targets = [effect.target]
                for node_id in targets:
                    if kind.startswith("exclude"):
                        verdict.excluded.setdefault((line, node_id), why)
                    elif kind.startswith("avoid"):
                        verdict.avoided.setdefault((line, node_id), why)
                    else:
                        sign = -1 if kind.startswith("prefer") else 1
                        verdict.adjust[(line, node_id)] += sign * effect.amount
                texts.append(effect.text)
            elif kind == "ship_complete":
                verdict.ship_complete = verdict.ship_complete or why
                texts.append(effect.text)
            elif kind == "hold":
                verdict.hold = verdict.hold or why
                texts.append(effect.text)
            elif kind == "avoid_carrier":
                verdict.avoid_carriers.setdefault(effect.target, why)
                texts.append(effect.text)
            elif kind == "surcharge":
                verdict.surcharges[effect.target] += effect.amount
                texts.append(effect.text)
            elif kind == "allow_vendors":
                verdict.allow_vendors.add(line)
                texts.append(effect.text)
            elif kind == "allow_transit":
                verdict.allow_transit.add(line)
                texts.append(effect.text)
            else:   # tag_order, tag_customer, set_field: already applied to the facts
                texts.append(effect.text)
    for (_, node_id, sku), units in keep_by_rule.items():
        verdict.keep[(node_id, sku)] = verdict.keep.get((node_id, sku), 0) + units
    for slot, (_, number, effect, _) in winners.items():
        rule = firings[number].rule
        if slot == "optimize":
            verdict.objective = effect.target
        elif slot == "max_shipments":
            verdict.max_shipments = int(effect.amount)
        elif slot == "split_penalty":
            verdict.split_penalty = float(effect.amount)
        elif slot == "use_carrier":
            verdict.carrier = (effect.target, effect.service, Why(rule))
        elif slot == "route":
            target = "<pickup>" if effect.kind == "route_to_pickup" else effect.target
            verdict.route_to = (target, Why(rule))
    return verdict


_NODE_EFFECTS = frozenset({"exclude_node", "avoid_node", "prefer_node", "penalize_node"})
_WORDS: dict[int, tuple] = {}     # effect -> _words(effect)


def _words(effect: Effect, currency: str | None = None) -> tuple[str, str]:
    """What the trace says of a node effect, around the node's id:
    ("exclude node ", ": reason"), ("prefer node ", " by $5.00") (kept per
    effect: an effect belongs to one playbook, with one currency)."""
    verb = effect.kind.split("_")[0]
    if effect.kind in ("exclude_node", "avoid_node"):
        return f"{verb} node ", f": {effect.reason}" if effect.reason else ""
    return f"{verb} node ", f" by {money(effect.amount, currency)}"


def applies(table: dict[tuple[int, str], object], line: int, node: str):
    """The entry for (line, node), or for (every line, node)."""
    return table.get((line, node)) or table.get((ALL_LINES, node))


def _node_facts(node) -> dict:
    return {"node.id": node.id, "node.name": node.name, "node.kind": node.kind,
            "node.region": node.region, "node.state": node.state, "node.country": node.country,
            "node.tags": frozenset(node.tags), "node.handling": node.handling,
            "node.capacity": node.capacity, "node.load": node.load or 0.0}



