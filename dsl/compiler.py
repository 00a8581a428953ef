"""Checked syntax tree -> Rulebook: plain, engine-neutral rule objects.

A compiled condition reads flat facts: a mapping from keys such as
"order.total", "node.kind", "today.weekday", "distance", "item.tags" to
values (tags as frozensets). Every unit is normalised here (money in currency
units, percent as a ratio, km, kg, days, minutes after midnight), so the
engine compares plain numbers and strings. Groups are inlined as conditions.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Union

from . import facts as f
from . import nodes as n
from .checker import rule_scope
from .diagnostics import Diagnostic, PlaybookError

WEEKEND = ("saturday", "sunday")
WORKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday")


@dataclass(frozen=True)
class Check:
    """One test on one fact key. op: eq, ne, lt, le, gt, ge, in, not_in,
    between, has_tag, has_no_tag. `ref` names a second fact key to compare
    with instead of the constant values."""
    key: str
    op: str
    values: tuple = ()
    ref: str | None = None


@dataclass(frozen=True)
class AllOf:
    items: tuple["Cond", ...]


@dataclass(frozen=True)
class AnyOf:
    items: tuple["Cond", ...]


@dataclass(frozen=True)
class NotOf:
    item: "Cond"


Cond = Union[Check, AllOf, AnyOf, NotOf]
TRUE = AllOf(())


@dataclass(frozen=True)
class Effect:
    """A compiled action. kind as in dsl.nodes.Action; amount is a plain
    number; field is a fact key (for set); value a constant or `ref` a key."""
    kind: str
    target: str | None = None
    amount: float | None = None
    reason: str | None = None
    service: str | None = None
    field: str | None = None
    value: object = None
    ref: str | None = None
    text: str = ""            # the action as written, for explanations


@dataclass(frozen=True)
class CompiledRule:
    name: str
    index: int                # position in the file, 0-based
    priority: int
    scope: str                # order | line | candidate
    condition: Cond
    effects: tuple[Effect, ...]
    file: str
    line: int
    keys: frozenset[str] = frozenset()   # fact keys the condition reads


@dataclass(frozen=True)
class Settings:
    objective: str = "cost"
    day_value: float = 0.0
    split_penalty: float = 0.0
    max_shipments: int | None = None
    timezone: str = "UTC"
    currency: str | None = None


@dataclass(frozen=True)
class Rulebook:
    name: str
    version: str              # "sha256:<hex>" of the playbook text
    file: str
    settings: Settings
    groups: dict[str, Cond]
    rules: tuple[CompiledRule, ...]   # in firing order: priority desc, then file order
    source: str = field(default="", repr=False, compare=False)
    warnings: tuple[Diagnostic, ...] = field(default=(), repr=False, compare=False)


def version_of(text: str) -> str:
    return "sha256:" + hashlib.sha256(text.encode("utf-8")).hexdigest()


def compile_playbook(playbook: n.Playbook, source: str,
                     diagnostics: tuple[Diagnostic, ...] = ()) -> Rulebook:
    """Compile a playbook that has passed the checker (errors raise)."""
    errors = [d for d in diagnostics if d.severity == "error"]
    if errors:
        raise PlaybookError(diagnostics)
    settings = _settings(playbook)
    groups: dict[str, Cond] = {}
    for group in playbook.groups:
        if group.nodes is not None:
            groups[group.name] = Check("node.id", "in", tuple(str(m.value) for m in group.nodes))
        else:
            groups[group.name] = _condition(group.where, groups)
    rules = []
    for index, rule in enumerate(playbook.rules):
        condition = _condition(rule.when, groups) if rule.when is not None else TRUE
        rules.append(CompiledRule(
            name=rule.name, index=index, priority=rule.priority or 0, scope=rule_scope(rule),
            condition=condition, effects=tuple(_effect(a, groups) for a in rule.actions),
            file=playbook.file, line=rule.span.line, keys=frozenset(_keys(condition))))
    rules.sort(key=lambda r: (-r.priority, r.index))
    return Rulebook(playbook.name, version_of(source), playbook.file, settings, groups,
                    tuple(rules), source, tuple(diagnostics))


def _settings(playbook: n.Playbook) -> Settings:
    values = {s.name: s.value for s in playbook.settings}
    currency = values.get("currency")
    codes = [lit.unit for lit in _money_literals(playbook) if lit.unit not in (None, "$")]
    return Settings(
        objective=str(values["optimize"].value) if "optimize" in values else "cost",
        day_value=float(values["day_value"].value) if "day_value" in values else 0.0,
        split_penalty=float(values["split_penalty"].value) if "split_penalty" in values else 0.0,
        max_shipments=int(values["max_shipments"].value) if "max_shipments" in values else None,
        timezone=str(values["timezone"].value) if "timezone" in values else "UTC",
        currency=str(currency.value).upper() if currency else (codes[0] if codes else None),
    )


def _money_literals(playbook: n.Playbook):
    for setting in playbook.settings:
        if setting.value.kind == "money":
            yield setting.value
    for rule in playbook.rules:
        for action in rule.actions:
            if action.amount is not None and action.amount.kind == "money":
                yield action.amount


# ---- conditions ------------------------------------------------------------------

def key_of(path: n.Path) -> str:
    fact = path.parts[0].lower()
    fact = "item" if fact == "line" else fact
    rest = ".".join(p.lower() for p in path.parts[1:])
    return f"{fact}.{rest}" if rest else fact


def _condition(condition: n.Condition, groups: dict[str, Cond]) -> Cond:
    # Iterative over Paren/Not chains; nesting depth was bounded by the parser.
    if isinstance(condition, n.Paren):
        return _condition(condition.operand, groups)
    if isinstance(condition, n.Not):
        return NotOf(_condition(condition.operand, groups))
    if isinstance(condition, n.All):
        return AllOf(tuple(_condition(c, groups) for c in condition.operands))
    if isinstance(condition, n.Any):
        return AnyOf(tuple(_condition(c, groups) for c in condition.operands))
    return _test(condition, groups)


_OPS = {"is": "eq", "=": "eq", "is not": "ne", "!=": "ne", "<": "lt", "<=": "le", ">": "gt",
        ">=": "ge", "after": "gt", "before": "lt", "in": "in", "not in": "not_in",
        "between": "between"}


def _test(test: n.Test, groups: dict[str, Cond]) -> Cond:
    key = key_of(test.path)
    fact = key.split(".")[0]
    op = test.op
    if op in ("has tag", "has no tag"):
        tag_key = key if key.endswith(".tags") else f"{fact}.tags"
        return Check(tag_key, "has_tag" if op == "has tag" else "has_no_tag", (test.values[0].value,))
    if op in ("in group", "not in group"):
        group = groups[str(test.values[0].value)]
        return group if op == "in group" else NotOf(group)
    kind = f.field_kind(test.path.parts) or ""
    if any(isinstance(v, n.Path) for v in test.values):
        return _ref_test(key, _OPS[op], test.values, kind)
    if fact == "today":
        return _day_test(op, test.values)
    values = tuple(_normal(v, kind) for v in test.values)
    return Check(key, _OPS[op], values)


def _ref_test(key: str, op: str, values: tuple[n.Value, ...], kind: str) -> Cond:
    """A test that names other facts among its values (`node.state is
    order.ship_to.state`, `node.state in order.ship_to.state, "CA"`,
    `x between $5 and order.total`): one Check per fact named."""
    def one(check_op: str, value: n.Value) -> Check:
        if isinstance(value, n.Path):
            return Check(key, check_op, (), key_of(value))
        return Check(key, check_op, (_normal(value, kind),))

    if op == "between":
        return AllOf((one("ge", values[0]), one("le", values[1])))
    if op in ("in", "not_in"):
        refs = [v for v in values if isinstance(v, n.Path)]
        constants = tuple(_normal(v, kind) for v in values if not isinstance(v, n.Path))
        checks = [one("eq" if op == "in" else "ne", ref) for ref in refs]
        if constants:
            checks.append(Check(key, op, constants))
        if len(checks) == 1:
            return checks[0]
        return AnyOf(tuple(checks)) if op == "in" else AllOf(tuple(checks))
    return one(op, values[0])


def _day_test(op: str, values: tuple[n.Literal, ...]) -> Cond:
    """today is tuesday / weekend / 2026-11-27; between/after/before dates."""
    dates = tuple(str(v.value) for v in values if v.kind == "date")
    days: list[str] = []
    for v in values:
        if v.kind == "word":
            days.extend(WEEKEND if v.value == "weekend" else WORKDAYS if v.value == "weekday"
                        else (str(v.value),))
    if op in ("between", "after", "before", "<", "<=", ">", ">="):
        return Check("today.date", _OPS[op], dates)
    positive = op in ("is", "=", "in")
    checks = []
    if days:
        checks.append(Check("today.weekday", "in" if positive else "not_in", tuple(days)))
    if dates:
        checks.append(Check("today.date", "in" if positive else "not_in", dates))
    if len(checks) == 1:
        return checks[0]
    return AnyOf(tuple(checks)) if positive else AllOf(tuple(checks))


def _normal(value: n.Literal, kind: str):
    if kind in ("kind",) or kind.startswith("choice:"):
        return str(value.value).lower()
    if value.kind == "number" and kind in ("money", "percent", "duration", "number"):
        return value.value
    return value.value


def _keys(condition: Cond):
    stack = [condition]
    while stack:
        item = stack.pop()
        if isinstance(item, Check):
            yield item.key
            if item.ref:
                yield item.ref
        elif isinstance(item, NotOf):
            stack.append(item.item)
        else:
            stack.extend(item.items)


# ---- actions ------------------------------------------------------------------------

def _effect(action: n.Action, groups: dict[str, Cond]) -> Effect:
    amount = float(action.amount.value) if action.amount is not None else None
    value, ref, field_key = None, None, None
    if action.kind == "set_field":
        field_key = key_of(action.field)
        if isinstance(action.value, n.Path):
            ref = key_of(action.value)
        else:
            value = action.value.value
    return Effect(action.kind, action.target, amount, action.reason, action.service, field_key,
                  value, ref, describe(action))


describe = n.describe
