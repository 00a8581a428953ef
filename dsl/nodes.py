"""The playbook syntax tree: frozen dataclasses, each carrying its source span.

Nothing here knows about Lark. Equality ignores spans, so two playbooks that
say the same thing in a different layout compare equal (that is what
`steve fmt` promises: parse(fmt(x)) == parse(x)).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Union


@dataclass(frozen=True)
class Span:
    file: str
    line: int
    column: int
    end_line: int
    end_column: int

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.column}"


NOWHERE = Span("<none>", 0, 0, 0, 0)


def _span() -> Span:
    return field(default=NOWHERE, compare=False, repr=False)


# ---- values -----------------------------------------------------------------

@dataclass(frozen=True)
class Literal:
    """A typed constant as written: kind is one of string, number, money,
    percent, distance, weight, duration, date, time, word.

    `value` is normalised: money in currency units, percent as a ratio,
    distance in km, weight in kg, duration in days, date as ISO text, time as
    minutes after midnight, word lower-cased. `text` keeps what was written
    (for `steve fmt` and messages)."""
    kind: str
    value: object
    text: str
    unit: str | None = None
    span: Span = _span()


@dataclass(frozen=True)
class Path:
    """A fact reference such as `order.ship_to.state` or `distance`."""
    parts: tuple[str, ...]
    span: Span = _span()

    @property
    def text(self) -> str:
        return ".".join(self.parts)


Value = Union[Literal, Path]


# ---- conditions -------------------------------------------------------------

@dataclass(frozen=True)
class Test:
    """`path op value(s)`. op is one of: is, is not, =, !=, <, <=, >, >=, in,
    not in, in group, not in group, between, has tag, has no tag, after,
    before. `values` holds one value, or two for between, or the list for
    in / not in."""
    path: Path
    op: str
    values: tuple[Value, ...]
    span: Span = _span()
    op_span: Span = _span()


@dataclass(frozen=True)
class Not:
    operand: "Condition"
    span: Span = _span()


@dataclass(frozen=True)
class All:
    operands: tuple["Condition", ...]
    span: Span = _span()


@dataclass(frozen=True)
class Any:
    operands: tuple["Condition", ...]
    span: Span = _span()


@dataclass(frozen=True)
class Paren:
    """Parentheses as written (kept so that fmt can reproduce them)."""
    operand: "Condition"
    span: Span = _span()


Condition = Union[Test, Not, All, Any, Paren]


# ---- actions ------------------------------------------------------------------

@dataclass(frozen=True)
class Action:
    """One action after `then`.

    kind: exclude_node, exclude_named_node, exclude_group, avoid_node,
    avoid_named_node, avoid_group, prefer_node, prefer_named_node,
    penalize_node, penalize_named_node, keep, route_to_node, route_to_pickup,
    optimize, ship_complete, max_shipments, split_penalty, use_carrier,
    avoid_carrier, surcharge, allow_transit, allow_vendors, hold, tag_order,
    tag_customer, set_field.

    target: the node id, group, carrier, tag or objective it names.
    amount: money / count literal. reason: the `because` text.
    """
    kind: str
    target: str | None = None
    amount: Literal | None = None
    reason: str | None = None
    service: str | None = None
    field: Path | None = None
    value: Value | None = None
    span: Span = _span()
    target_span: Span = _span()


# ---- statements ---------------------------------------------------------------

@dataclass(frozen=True)
class Setting:
    """A top-level setting: timezone, currency, optimize, day_value,
    split_penalty, max_shipments."""
    name: str
    value: Literal
    span: Span = _span()


@dataclass(frozen=True)
class Group:
    name: str
    nodes: tuple[Literal, ...] | None = None
    where: Condition | None = None
    span: Span = _span()
    name_span: Span = _span()


@dataclass(frozen=True)
class Rule:
    name: str
    priority: int | None = None     # a float only when written with a fraction (an error)
    when: Condition | None = None
    actions: tuple[Action, ...] = ()
    clauses: tuple[str, ...] = ()   # clause keywords in the order written
    span: Span = _span()
    name_span: Span = _span()
    clause_spans: tuple[Span, ...] = field(default=(), compare=False, repr=False)


@dataclass(frozen=True)
class Header:
    name: str
    span: Span = _span()


@dataclass(frozen=True)
class Unreadable:
    """A statement skipped after a syntax error (only `dsl.check` sees a
    playbook with these; `parse` raises instead). It keeps what the checker
    needs to stay quiet about the consequences of that one error: kind is
    header, setting, group, rule or text; name is the quoted name after
    `playbook`, `group` or `rule`; fields_set the (fact, field) pairs its
    `set` actions name."""
    kind: str
    name: str | None = None
    fields_set: tuple[tuple[str, str], ...] = ()
    span: Span = _span()


@dataclass(frozen=True)
class Playbook:
    file: str
    statements: tuple[Union[Header, Setting, Group, Rule], ...]
    comments: tuple[tuple[int, int, str], ...] = field(default=(), compare=False, repr=False)
    unreadable: tuple[Unreadable, ...] = field(default=(), compare=False, repr=False)

    @property
    def header(self) -> Header | None:
        return next((s for s in self.statements if isinstance(s, Header)), None)

    @property
    def name(self) -> str:
        header = self.header
        return header.name if header else ""

    @property
    def settings(self) -> tuple[Setting, ...]:
        return tuple(s for s in self.statements if isinstance(s, Setting))

    @property
    def groups(self) -> tuple[Group, ...]:
        return tuple(s for s in self.statements if isinstance(s, Group))

    @property
    def rules(self) -> tuple[Rule, ...]:
        return tuple(s for s in self.statements if isinstance(s, Rule))


def describe(action: Action) -> str:
    """The action in canonical playbook words (explanations and `steve fmt`)."""
    kind, target = action.kind, action.target
    amount = action.amount.text if action.amount is not None else ""
    because = f' because "{action.reason}"' if action.reason is not None else ""
    if kind == "keep":
        units = "unit" if action.amount.value == 1 else "units"
        return f"keep {amount} {units}{because}"
    if kind == "use_carrier":
        service = f' service "{action.service}"' if action.service is not None else ""
        return f'use carrier "{target}"{service}'
    if kind == "set_field":
        return f"set {action.field.text} to {action.value.text}"
    return {
        "exclude_node": f"exclude node{because}",
        "exclude_named_node": f'exclude node "{target}"{because}',
        "exclude_group": f'exclude group "{target}"{because}',
        "avoid_node": f"avoid node{because}",
        "avoid_named_node": f'avoid node "{target}"{because}',
        "avoid_group": f'avoid group "{target}"{because}',
        "prefer_node": f"prefer node by {amount}",
        "prefer_named_node": f'prefer node "{target}" by {amount}',
        "penalize_node": f"penalize node by {amount}",
        "penalize_named_node": f'penalize node "{target}" by {amount}',
        "route_to_node": f'route to node "{target}"',
        "route_to_pickup": "route to pickup node",
        "optimize": f"optimize {target}",
        "ship_complete": "ship complete",
        "max_shipments": f"max shipments {amount}",
        "split_penalty": f"split penalty {amount}",
        "avoid_carrier": f'avoid carrier "{target}"',
        "surcharge": f'surcharge carrier "{target}" by {amount}',
        "allow_transit": "allow in-transit",
        "allow_vendors": "allow vendors",
        "hold": f"hold order{because}",
        "tag_order": f'tag order "{target}"',
        "tag_customer": f'tag customer "{target}"',
    }[kind]
