"""From an order and the network to the facts rules look at.

`gather` resolves the order (catalog aliases, ship-to point, the order's day
and time in the playbook's timezone), works out how each node reaches the
customer, and builds the FactBase: the order, its lines, and a candidate for
every (line, node) that could ship it. Nodes that cannot ship a line at all
(off, shadow, no stock, no carrier) get a reason instead of a candidate.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo

from . import limits
from .costs import Reach, reaches
from .geo import AddressError, Point, locate
from .matching import Entity, FactBase
from .models import Catalog, Item, Network, Order
from .stock import Stock

WEEKDAY_NAMES = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")


class OrderError(ValueError):
    """The order cannot be routed as sent; `problems` are (where, message)."""

    def __init__(self, problems: list[tuple[str, str]]):
        self.problems = problems
        super().__init__("; ".join(f"{loc}: {msg}" if loc else msg for loc, msg in problems))


@dataclass(frozen=True)
class Line:
    index: int
    sku: str
    asked_as: str
    qty: int
    weight: float      # kg per unit
    price: float
    item: Item


@dataclass
class Situation:
    """Everything the router knows about one order before the rules run."""
    order: Order
    lines: list[Line]
    ship_to: Point
    local_time: dt.datetime
    reach: dict[str, Reach]
    base: FactBase
    unavailable: dict[str, list[str]] = field(default_factory=dict)   # node -> reasons it cannot ship


def gather(order: Order, network: Network, catalog: Catalog, stock: Stock, timezone: str,
           live_nodes: frozenset[str] = frozenset(), now: dt.datetime | None = None) -> Situation:
    lines = resolve_lines(order, catalog)
    ship_to = _ship_to(order)
    local = _local_time(order, timezone, now)
    skus = {line.sku for line in lines}
    levels = stock.levels
    # available units per (node, sku) of this order, looked up once
    available, has_stock = {}, {order.pickup_node}
    for node in network.nodes:
        node_id = node.id
        for sku in skus:
            level = levels.get((node_id, sku))
            if level is not None:
                units = available[node_id, sku] = max(0, level[0] - level[1])
                if units > 0:
                    has_stock.add(node_id)
    stocked = [n for n in network.nodes if n.id in has_stock]
    node_reach = reaches(stocked, network.carriers, ship_to, local.date())
    base = FactBase(_order_facts(order, lines, local), [], [])
    if base.order["order.ship_to.state"] is None and ship_to.state:
        base.order["order.ship_to.state"] = ship_to.state
    base.lines = [Entity(f"line:{line.index}", "line", line.index, None, _line_facts(line))
                  for line in lines]
    situation = Situation(order, lines, ship_to, local, node_reach, base)
    nodes = _nodes_with_reasons(network, live_nodes)
    static: dict[str, tuple] = {}       # node -> (its node.* facts, fastest lane)
    unavailable = situation.unavailable
    for line in lines:
        limits.check("working out the facts")
        sku, no_stock = line.sku, f"no stock of {line.sku}"
        for node, node_id, reason in nodes:
            if reason is None:
                if available.get((node_id, sku), 0) <= 0:
                    reason = no_stock
                else:
                    reach = node_reach.get(node_id)
                    if reach is None or not reach.lanes:
                        reason = "no carrier serves this route"
            if reason is not None:
                if node_id in unavailable:
                    unavailable[node_id].append(reason)
                else:
                    unavailable[node_id] = [reason]
                continue
            known = static.get(node_id)
            if known is None:
                known = static[node_id] = (_node_facts(node, stock), reach.fastest())
            lane = reach.cheapest(line.weight * line.qty)
            level = levels[node_id, sku]
            facts = dict(known[0])
            facts["stock.on_hand"] = level[0]
            facts["stock.reserved"] = level[1]
            facts["stock.available"] = available[node_id, sku]
            facts["distance"] = reach.km
            facts["transit"] = known[1].days
            facts["cost"] = lane.fixed + lane.per_kg * line.weight * line.qty
            base.candidates.append(Entity(f"cand:{line.index}:{node_id}", "candidate",
                                          line.index, node_id, facts))
    return situation


def resolve_lines(order: Order, catalog: Catalog) -> list[Line]:
    problems, lines = [], []
    for index, order_line in enumerate(order.lines):
        item = catalog.resolve(order_line.sku)
        if item is None:
            problems.append((f"lines.{index}.sku", f"unknown item {order_line.sku!r}: no sku or "
                             "channel alias in the catalog has that name"))
            continue
        if order_line.tags is not None or order_line.category or order_line.margin is not None:
            item = item.model_copy(update={k: v for k, v in (
                ("tags", order_line.tags), ("category", order_line.category),
                ("margin", order_line.margin)) if v is not None})
        weight = order_line.weight if order_line.weight is not None else item.weight
        price = order_line.price if order_line.price is not None else item.price
        lines.append(Line(index, item.sku, order_line.sku, order_line.qty, weight, price, item))
    if problems:
        raise OrderError(problems)
    return lines


def _ship_to(order: Order) -> Point:
    if order.delivery == "pickup" and order.ship_to.lat is None and not (order.ship_to.zip or order.ship_to.state):
        return Point(0.0, 0.0, None, "pickup")
    s = order.ship_to
    try:
        return locate(s.country, s.state, s.zip, s.lat, s.lon)
    except AddressError as error:
        raise OrderError([("ship_to", str(error))]) from None


def _local_time(order: Order, timezone: str, now: dt.datetime | None) -> dt.datetime:
    zone = ZoneInfo(timezone)
    moment = order.created_at or now or dt.datetime.now(dt.timezone.utc)
    if moment.tzinfo is None:
        return moment.replace(tzinfo=zone)
    return moment.astimezone(zone)


def _order_facts(order: Order, lines: list[Line], local: dt.datetime) -> dict:
    s = order.ship_to
    return {
        "order.id": order.id, "order.channel": order.channel,
        "order.total": round(sum(l.price * l.qty for l in lines), 2),
        "order.weight": sum(l.weight * l.qty for l in lines),
        "order.lines": len(lines), "order.units": sum(l.qty for l in lines),
        "order.delivery": order.delivery, "order.pickup_node": order.pickup_node,
        "order.service": order.service, "order.ship_to.country": s.country,
        "order.ship_to.state": s.state.upper() if s.state else None, "order.ship_to.zip": s.zip,
        "order.tags": frozenset(order.tags),
        "customer.id": order.customer.id, "customer.tier": order.customer.tier,
        "customer.tags": frozenset(order.customer.tags), "customer.orders": order.customer.orders,
        "today.weekday": WEEKDAY_NAMES[local.weekday()], "today.date": local.date().isoformat(),
        "now": local.hour * 60 + local.minute,
    }


def _line_facts(line: Line) -> dict:
    item = line.item
    return {
        "item.sku": line.sku, "item.name": item.name, "item.qty": line.qty,
        "item.price": line.price, "item.margin": item.margin, "item.category": item.category,
        "item.weight": line.weight, "item.tags": frozenset(item.tags),
    }


def _load(node, stock: Stock) -> float:
    base = node.load or 0.0
    if node.capacity:
        base += stock.used_today.get(node.id, 0) / node.capacity
    return base


def _node_reason(node, live_nodes: frozenset[str]) -> str | None:
    """Why the node cannot ship anything, or None."""
    if node.status == "off" and node.id not in live_nodes:
        return "node is off"
    if node.status == "shadow" and node.id not in live_nodes:
        return "shadow node (used only in what-if runs)"
    if not node.ships:
        return "does not ship orders"
    return None


_REASONS: dict = {}
_STATIC: dict = {}


def _nodes_with_reasons(network, live_nodes: frozenset[str]) -> list[tuple]:
    """[(node, id, why it cannot ship anything or None)], kept per network
    and set of live nodes (a network is frozen)."""
    key = (id(network), live_nodes)
    hit = _REASONS.get(key)
    if hit is not None and hit[0] is network:
        return hit[1]
    rows = [(node, node.id, _node_reason(node, live_nodes)) for node in network.nodes]
    if len(_REASONS) > 64:
        _REASONS.clear()
    _REASONS[key] = (network, rows)
    return rows


def _node_facts(node, stock: Stock) -> dict:
    hit = _STATIC.get(id(node))
    if hit is None or hit[0] is not node:
        if len(_STATIC) > 100_000:
            _STATIC.clear()
        hit = _STATIC[id(node)] = (node, {
            "node.id": node.id, "node.name": node.name, "node.kind": node.kind,
            "node.region": node.region, "node.state": node.state, "node.country": node.country,
            "node.tags": frozenset(node.tags), "node.load": None,
            "node.handling": node.handling, "node.capacity": node.capacity})
    facts = dict(hit[1])
    facts["node.load"] = _load(node, stock)
    return facts
