"""The Decision: what Steve decided for one order, and why. Plain data with
a canonical JSON form (the same inputs give the same bytes) and a text form
for people (`steve route --explain`)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from typing import NamedTuple


def cents(amount: float) -> float:
    """Round money half-up to the cent, as people do: the shortest decimal
    that reads back as `amount` (its repr), rounded at the third decimal
    (half away from zero, as Decimal's ROUND_HALF_UP).

    Most amounts are far from a half cent: below a million, amount x 100 is
    within 1e-7 of the repr's value x 100, so when its fraction is further
    than 1e-6 from one half the binary value rounds as the repr does, and
    the repr (the costly part) is skipped."""
    size = -amount if amount < 0 else amount
    if size < 1e6:
        hundredths = size * 100
        whole = int(hundredths)
        fraction = hundredths - whole
        if fraction < 0.499999 or fraction > 0.500001:
            whole += fraction > 0.5
            return (-whole if amount < 0 else whole) / 100 + 0.0
    return _cents_text(amount)


def _cents_text(amount: float) -> float:
    """cents() read off the amount's repr (any amount)."""
    text = repr(amount)
    whole, dot, fraction = text.partition(".")
    if not dot or "e" in fraction or len(whole) > 13:
        return _cents_decimal(amount)          # inf, nan, exponents, huge amounts
    if len(fraction) <= 2:
        return float(text) + 0.0
    negative = whole.startswith("-")
    hundredths = int(whole.lstrip("-") + fraction[:2]) + (fraction[2] >= "5")
    # n / 100 and float("x.yz") both round the same rational correctly
    return (-hundredths if negative else hundredths) / 100 + 0.0


def money(amount: float, currency: str | None = None) -> str:
    """An amount for people, to the cent: "$7.62" in US dollars (or when no
    currency is known), "7.62 EUR" in any other currency."""
    if currency is None or currency == "USD":
        return f"${cents(amount):,.2f}"
    return f"{cents(amount):,.2f} {currency}"


def _cents_decimal(amount: float) -> float:
    return float(Decimal(repr(amount)).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)) + 0.0


@dataclass(frozen=True)
class ShipmentLine:
    sku: str
    qty: int


@dataclass(frozen=True)
class Shipment:
    node: str
    carrier: str | None
    lines: tuple[ShipmentLine, ...]
    cost: float
    days: int
    distance_km: int
    service: str | None = None

    def to_json(self) -> dict:
        out = {"node": self.node, "carrier": self.carrier,
               "lines": [{"sku": l.sku, "qty": l.qty} for l in self.lines],
               "cost": cents(self.cost), "days": self.days, "distance_km": self.distance_km}
        if self.service:
            out["service"] = self.service
        return out


class TraceEntry(NamedTuple):
    rule: str
    file: str
    line: int
    order: str
    effect: str
    sku: str | None = None
    node: str | None = None

    def to_json(self) -> dict:
        out = {"rule": self.rule, "file": self.file, "line": self.line, "order": self.order}
        if self.sku is not None:
            out["sku"] = self.sku
        if self.node is not None:
            out["node"] = self.node
        out["effect"] = self.effect
        return out


@dataclass(frozen=True)
class Decision:
    order_id: str
    status: str                        # routed | held | error
    shipments: tuple[Shipment, ...] = ()
    objective: str | None = None
    tags: tuple[str, ...] = ()
    playbook: dict = field(default_factory=dict)
    trace: tuple[TraceEntry, ...] = ()
    nodes: dict[str, str] = field(default_factory=dict)
    reason: str | None = None
    errors: tuple[dict, ...] = ()
    currency: str | None = field(default=None, compare=False)   # for explain(); not in the JSON

    @property
    def cost(self) -> float:
        """The sum of the shipments' costs as they are shown (each to the
        cent), so that the total is always the sum of its parts."""
        return cents(sum(cents(s.cost) for s in self.shipments))

    @property
    def days(self) -> int:
        return max((s.days for s in self.shipments), default=0)

    def to_json(self) -> dict:
        out: dict = {"order_id": self.order_id, "status": self.status}
        if self.reason is not None:
            out["reason"] = self.reason
        if self.errors:
            out["errors"] = list(self.errors)
        out["shipments"] = [s.to_json() for s in self.shipments]
        out["cost"] = self.cost
        out["days"] = self.days
        out["objective"] = self.objective
        out["tags"] = list(self.tags)
        out["playbook"] = dict(self.playbook)
        out["trace"] = [t.to_json() for t in self.trace]
        out["nodes"] = dict(self.nodes)
        return out

    def dumps(self, indent: int | None = 2) -> str:
        return json.dumps(self.to_json(), indent=indent, ensure_ascii=False)


def explain(decision: Decision) -> str:
    """The decision told for people."""
    out = []
    head = f"Order {decision.order_id}: {decision.status.upper()}"
    if decision.reason:
        head += f" — {decision.reason}"
    out.append(head)
    for error in decision.errors:
        out.append(f"  error at {error.get('loc') or 'order'}: {error.get('msg')}")
    if decision.shipments:
        total = money(decision.cost, decision.currency)
        out.append(f"\n{len(decision.shipments)} shipment(s), {total} in all, "
                   f"{decision.days} day(s), objective: {decision.objective}")
        for s in decision.shipments:
            items = ", ".join(f"{l.qty} x {l.sku}" for l in s.lines)
            via = f"by {s.carrier}" if s.carrier else "picked up in store"
            out.append(f"  - {s.node} {via}: {items} — {money(s.cost, decision.currency)}, {s.days} day(s), "
                       f"{s.distance_km} km")
    if decision.tags:
        out.append(f"\nTags: {', '.join(decision.tags)}")
    if decision.trace:
        out.append("\nRules that fired:")
        for t in decision.trace:
            where = " / ".join(x for x in (t.sku, t.node) if x)
            out.append(f"  - {t.rule} ({t.file}:{t.line})" + (f" [{where}]" if where else "")
                       + f": {t.effect}")
    if decision.nodes:
        out.append("\nWhy not the other nodes:")
        width = max(len(k) for k in decision.nodes)
        for node, why in decision.nodes.items():
            out.append(f"  - {node.ljust(width)}  {why}")
    if decision.playbook:
        out.append(f"\nPlaybook: {decision.playbook.get('name')} ({decision.playbook.get('version', '')[:19]}…)")
    return "\n".join(out)
