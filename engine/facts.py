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
from .costs import Reach, node_row, reaches
from .geo import AddressError, Point, locate
from .matching import Entity, FactBase
from .models import Catalog, Item, Network, Order
from .stock import Stock

_new = tuple.__new__     # an Entity without the Python-level __new__ (one per candidate)

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
    """Everything the router knows about one order before the rules run.
    Why a node cannot ship is kept as what is known per line (line_nodes,
    node_rows, no_lane) and put into words by `node_reasons`."""
    order: Order
    lines: list[Line]
    ship_to: Point
    local_time: dt.datetime
    reach: dict[str, Reach]
    base: FactBase
    line_nodes: list[set[str]] = field(default_factory=list)   # per line: nodes with a candidate
    node_rows: list[tuple] = field(default_factory=list)       # (node, id, reason it cannot ship at all)
    no_lane: set[tuple[str, int]] = field(default_factory=set)  # (node, line) with stock but no carrier

    def _line_reasons(self, node_id: str) -> list[str]:
        """Why a node that can ship cannot ship each line it has no candidate for."""
        out = []
        for line, nodes in zip(self.lines, self.line_nodes):
            if node_id not in nodes:
                out.append("no carrier serves this route" if (node_id, line.index) in self.no_lane
                           else f"no stock of {line.sku}")
        return out

    def node_reasons(self, extra: dict[str, list[str]], used: set[str],
                     final: dict[str, str] | None = None) -> dict[str, str]:
        """node -> why it ships nothing for this order, in network order, for
        every node not in `used` that has a reason: its own (it cannot ship
        at all, or has no stock or no carrier for some lines) and then
        `extra` (reasons found later, in order), repeated reasons said once;
        or the reason in `final`, which wins."""
        out = {}
        touched = set(extra).union((node for node, _ in self.no_lane), *self.line_nodes)
        missing = None          # the words for a node that has none of the items
        final = final or {}
        for _, node_id, reason in self.node_rows:
            if node_id in final:
                out[node_id] = final[node_id]
            elif node_id in used:
                continue
            elif reason is not None:
                out[node_id] = reason
            elif node_id not in touched:
                if missing is None:
                    missing = "; ".join(dict.fromkeys(f"no stock of {line.sku}" for line in self.lines))
                if missing:
                    out[node_id] = missing
            else:
                reasons = self._line_reasons(node_id) + extra.get(node_id, [])
                if reasons:
                    out[node_id] = reasons[0] if len(reasons) == 1 else "; ".join(dict.fromkeys(reasons))
        return out


def gather(order: Order, network: Network, catalog: Catalog, stock: Stock, timezone: str,
           live_nodes: frozenset[str] = frozenset(), now: dt.datetime | None = None) -> Situation:
    lines = resolve_lines(order, catalog)
    ship_to = _ship_to(order)
    local = _local_time(order, timezone, now)
    node_rows, position = _nodes_with_reasons(network, live_nodes)
    # per line: (position, node, level, units) of every node that can ship
    # at all and has units of the line's item available, in network order
    offers, stocked = [], set()
    for line in lines:
        found = []
        for node_id, level in stock.rows_with(line.sku):
            spot = position.get(node_id)
            if spot is None or spot[2] is not None:
                continue
            units = level[0] - level[1]
            if units > 0:
                found.append((spot[0], spot[1], level, units))
                stocked.add(node_id)
        found.sort(key=_first)
        offers.append(found)
    node_reach = reaches([spot[3] for node_id, spot in position.items() if node_id in stocked],
                         network.carriers, ship_to, local.date())
    base = FactBase(_order_facts(order, lines, local), [], [])
    if base.order["order.ship_to.state"] is None and ship_to.state:
        base.order["order.ship_to.state"] = ship_to.state
    base.lines = [_new(Entity, (f"line:{line.index}", "line", line.index, None, _line_facts(line)))
                  for line in lines]
    situation = Situation(order, lines, ship_to, local, node_reach, base, node_rows=node_rows)
    line_nodes, no_lane, candidates = situation.line_nodes, situation.no_lane, base.candidates
    static: dict[str, tuple] = {}       # node -> (its node.* facts, fastest days)
    node_facts = base.nodes = {}
    used_today = stock.used_today
    for line, found in zip(lines, offers):
        limits.check("working out the facts")
        index, kg = line.index, line.weight * line.qty
        prefix, nodes = f"cand:{index}:", set()
        line_nodes.append(nodes)
        for _, node, level, units in found:
            node_id = node.id
            reach = node_reach[node_id]
            lanes = reach.lanes
            if not lanes:
                no_lane.add((node_id, index))
                continue
            nodes.add(node_id)
            known = static.get(node_id)
            if known is None:
                known = static[node_id] = (_node_facts(node, used_today), reach.days)
                node_facts[node_id] = known[0]
            lane = reach.cheapest(kg)
            candidates.append(_new(Entity, (prefix + node_id, "candidate", index, node_id, {
                **known[0], "stock.on_hand": level[0], "stock.reserved": level[1],
                "stock.available": units, "distance": reach.km, "transit": known[1],
                "cost": lane.fixed + lane.per_kg * line.weight * line.qty})))
    return situation


def _first(row: tuple):
    return row[0]


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
        "order.service": order.service,
        "order.ship_to.country": s.country.upper() if s.country else None,
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


def _load(node, used_today) -> float:
    base = node.load or 0.0
    if node.capacity:
        base += used_today.get(node.id, 0) / node.capacity
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


def _nodes_with_reasons(network, live_nodes: frozenset[str]) -> tuple[list[tuple], dict]:
    """[(node, id, why it cannot ship anything or None)] in network order,
    and id -> (position, node, that reason, costs.node_row(node)) in network
    order; kept per network and set of live nodes (a network is frozen)."""
    key = (id(network), live_nodes)
    hit = _REASONS.get(key)
    if hit is not None and hit[0] is network:
        return hit[1], hit[2]
    rows = [(node, node.id, _node_reason(node, live_nodes)) for node in network.nodes]
    position = {}
    for number, (node, node_id, reason) in enumerate(rows):
        if node_id not in position:
            position[node_id] = (number, node, reason, node_row(node))
    if len(_REASONS) > 64:
        _REASONS.clear()
    _REASONS[key] = (network, rows, position)
    return rows, position


def _node_facts(node, used_today) -> dict:
    """The node.* facts of a node (one dict per node and load: candidates
    copy it, nothing changes it)."""
    load = _load(node, used_today)
    hit = _STATIC.get(id(node))
    if hit is None or hit[0] is not node:
        if len(_STATIC) > 100_000:
            _STATIC.clear()
        hit = _STATIC[id(node)] = [node, {
            "node.id": node.id, "node.name": node.name, "node.kind": node.kind,
            "node.region": node.region, "node.state": node.state, "node.country": node.country,
            "node.tags": frozenset(node.tags), "node.load": load,
            "node.handling": node.handling, "node.capacity": node.capacity}]
    elif hit[1]["node.load"] != load:
        facts = hit[1] = {**hit[1], "node.load": load}
        return facts
    return hit[1]
