"""What-if runs: replay many orders against one stock view, the way the
service would have decided them, and compare two runs order by order.

    orders --time order--> route + reserve, one by one --> decisions --> metrics
    candidate run  vs  baseline run  --> metric deltas + the orders decided differently

The candidate is the change being tried (a playbook, and/or nodes switched
on or off); the baseline is what happens today (another playbook, or the
same one on the network as it is). Each run gets its own copy of the stock,
so both start from the same units.

As the service would: an order whose id an earlier order has is the same
order when it repeats it (engine.models.order_key) and is skipped, and an
error when it differs (POST /orders answers the first with the first
decision, the second with 409); an order without created_at is read at
one moment, `now`, the same for every order and both runs. Pure: no I/O,
no clock (the caller gives `now`).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Callable, Iterable, Sequence
from zoneinfo import ZoneInfo

from dsl.compiler import Rulebook
from .decision import Decision
from .metrics import compare, summarize
from .models import Network, Order, order_key
from .router import reserve, route
from .stock import Stock

Progress = Callable[[int], None]


class WhatIfError(ValueError):
    """Node what-ifs that name nodes the network does not have (or a node
    both switched on and off). `problems` are (where, what) pairs."""

    def __init__(self, problems: list[tuple[str, str]]):
        super().__init__("; ".join(f"{where}: {what}" for where, what in problems))
        self.problems = problems


class OrderConflict(ValueError):
    """Order ids given to two different orders. `conflicts` are (index,
    first, order id): the order at `index` has the id of the order at
    `first` (the first with that id, the one the service would keep) and
    is not the same order."""

    def __init__(self, conflicts: list[tuple[int, int, str]]):
        super().__init__("; ".join(f"orders.{index}: order {order_id} was already given as orders.{first} "
                                   "with different content" for index, first, order_id in conflicts))
        self.conflicts = conflicts


# ---- the orders a what-if replays -----------------------------------------------------------

def distinct_orders(orders: Sequence[Order]) -> tuple[list[Order], list[tuple[int, int]]]:
    """The orders as the service would take them, POST /orders being
    idempotent on the order id: an order that repeats an earlier one (the
    same id and the same order as Steve reads it, engine.models.order_key)
    is left out. Returns the orders kept, in the order given, and the
    repeats left out as (index, index of the order it repeats). Raises
    OrderConflict when an id is given to a different order (the service's
    409), naming every such order."""
    first: dict[str, int] = {}
    keys: dict[int, str] = {}              # worked out only for ids given more than once

    def key(index: int) -> str:
        if index not in keys:
            keys[index] = order_key(orders[index])
        return keys[index]

    kept, repeats, conflicts = [], [], []
    for index, order in enumerate(orders):
        earlier = first.setdefault(order.id, index)
        if earlier == index:
            kept.append(order)
        elif key(index) == key(earlier):
            repeats.append((index, earlier))
        else:
            conflicts.append((index, earlier, order.id))
    if conflicts:
        raise OrderConflict(conflicts)
    return kept, repeats


def moment_in(now: dt.datetime, timezone: str) -> dt.datetime:
    """`now` as a moment: a time without an offset is read in the
    playbook's timezone, as created_at is."""
    return now.replace(tzinfo=ZoneInfo(timezone)) if now.tzinfo is None else now


# ---- the network a what-if sees ------------------------------------------------------------

def what_if_network(network: Network, with_nodes: Iterable[str] = (),
                    without_nodes: Iterable[str] = ()) -> tuple[Network, frozenset[str]]:
    """The network with `without_nodes` switched off, and the set of nodes
    to treat as live (`with_nodes`: shadow or off nodes being tried)."""
    with_nodes, without_nodes = list(with_nodes), list(without_nodes)
    known = {n.id for n in network.nodes}
    problems = []
    for label, ids in (("with_nodes", with_nodes), ("without_nodes", without_nodes)):
        for index, node_id in enumerate(ids):
            if node_id not in known:
                problems.append((f"{label}.{index}", f"unknown node {node_id!r}: the network has no such node"))
    for node_id in sorted(set(with_nodes) & set(without_nodes)):
        problems.append(("without_nodes", f"node {node_id!r} cannot be both switched on and switched off"))
    if problems:
        raise WhatIfError(problems)
    if not without_nodes:
        return network, frozenset(with_nodes)
    off = set(without_nodes)
    nodes = tuple(n.model_copy(update={"status": "off"}) if n.id in off else n for n in network.nodes)
    # built afresh (not model_copy) so that the node index is not shared with the original
    changed = Network(currency=network.currency, nodes=nodes, carriers=network.carriers)
    return changed, frozenset(with_nodes)


# ---- replay ------------------------------------------------------------------------------------

def time_ordered(orders: Sequence[Order], timezone: str) -> list[Order]:
    """Orders by created_at (a time without an offset is read in the
    playbook's timezone); ties and orders without a time keep their place
    in the input, the untimed ones after all the timed ones."""
    zone = ZoneInfo(timezone)
    far = dt.datetime.max.replace(tzinfo=dt.timezone.utc)

    def key(indexed):
        index, order = indexed
        moment = order.created_at
        if moment is None:
            return (far, index)
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=zone)
        return (moment.astimezone(dt.timezone.utc), index)

    return [order for _, order in sorted(enumerate(orders), key=key)]


def replay(rulebook: Rulebook, network: Network, catalog, stock: Stock, orders: Iterable[Order], *,
           live_nodes: Iterable[str] = (), now: dt.datetime | None = None,
           progress: Progress | None = None) -> list[Decision]:
    """Route the orders in the order given against one stock view, reserving
    each routed order's units before the next (the stock object is changed),
    as engine.route_batch does. An order without created_at is routed as
    placed at `now` (None: engine.route's own default, the time it is
    routed). Node capacity counts the units promised on each local day of
    the playbook's timezone: a new day starts afresh, and an order read on
    a day seen before (an untimed order at a `now` before the timed ones)
    finds that day's units again. The stock's own units promised today
    count for the first order's day; it ends holding the last order's day."""
    zone = ZoneInfo(rulebook.settings.timezone)
    live = frozenset(live_nodes)
    decisions, day, days = [], None, {}
    for number, order in enumerate(orders, start=1):
        moment = order.created_at or now
        if moment is not None:
            local = moment.replace(tzinfo=zone) if moment.tzinfo is None else moment.astimezone(zone)
            if day is not None and local.date() != day:
                days[day] = dict(stock.used_today)
                stock.used_today.clear()
                stock.used_today.update(days.get(local.date(), {}))
            day = local.date()
        decision = route(rulebook, network, catalog, stock, order, live_nodes=live, now=now)
        if decision.status == "routed":
            reserve(stock, decision)
        decisions.append(decision)
        if progress is not None:
            progress(number)
    return decisions


# ---- comparing two runs ----------------------------------------------------------------------

def outcome(decision: dict) -> tuple:
    """What an order's decision amounts to: its status and, per shipment,
    the node, the carrier and the units (in a canonical order)."""
    shipments = sorted(
        (s["node"], s.get("carrier") or "", tuple(sorted((l["sku"], l["qty"]) for l in s.get("lines", ()))))
        for s in decision.get("shipments", ()))
    return decision.get("status"), tuple(shipments)


def changes(before: dict, after: dict) -> list[str]:
    """How two decisions for the same order differ, in words."""
    out = []
    if before.get("status") != after.get("status"):
        out.append(f"status: {before.get('status')} -> {after.get('status')}")
    nodes = [sorted({s["node"] for s in d.get("shipments", ())}) for d in (before, after)]
    if nodes[0] != nodes[1]:
        out.append(f"nodes: {', '.join(nodes[0]) or '-'} -> {', '.join(nodes[1]) or '-'}")
    carriers = [sorted(f"{s['node']}:{s.get('carrier') or 'pickup'}" for s in d.get("shipments", ()))
                for d in (before, after)]
    if carriers[0] != carriers[1] and nodes[0] == nodes[1]:
        out.append(f"carriers: {', '.join(carriers[0])} -> {', '.join(carriers[1])}")
    units = [_units(d) for d in (before, after)]
    if units[0] != units[1] and nodes[0] == nodes[1] and before.get("status") == after.get("status"):
        out.append(f"quantities: {_units_text(units[0])} -> {_units_text(units[1])}")
    return out or ["shipments differ"]


def _units(decision: dict) -> dict:
    units: dict[tuple[str, str], int] = {}
    for s in decision.get("shipments", ()):
        for line in s.get("lines", ()):
            units[(s["node"], line["sku"])] = units.get((s["node"], line["sku"]), 0) + line["qty"]
    return units


def _units_text(units: dict) -> str:
    return ", ".join(f"{qty} x {sku} @ {node}" for (node, sku), qty in sorted(units.items())) or "-"


def differences(baseline: Sequence[dict], candidate: Sequence[dict]) -> list[dict]:
    """The orders two runs over the same orders decided differently."""
    out = []
    for position, (before, after) in enumerate(zip(baseline, candidate)):
        if outcome(before) != outcome(after):
            out.append({"order_id": after.get("order_id") or before.get("order_id"), "position": position,
                        "changes": changes(before, after), "baseline": before, "candidate": after})
    return out


# ---- a whole what-if ---------------------------------------------------------------------------

@dataclass
class Run:
    """One playbook replayed over the orders."""
    rulebook: Rulebook
    network: Network
    live_nodes: frozenset[str]
    decisions: list[Decision]
    documents: list[dict]
    metrics: dict
    with_nodes: tuple[str, ...] = ()
    without_nodes: tuple[str, ...] = ()

    def header(self) -> dict:
        out = {"name": self.rulebook.name, "version": self.rulebook.version, "file": self.rulebook.file}
        if self.with_nodes or self.without_nodes:
            out["with_nodes"], out["without_nodes"] = list(self.with_nodes), list(self.without_nodes)
        return out


@dataclass
class Simulation:
    orders: list[Order]
    candidate: Run
    baseline: Run | None = None
    differences: list[dict] = field(default_factory=list)
    repeats: list[tuple[int, int]] = field(default_factory=list)   # distinct_orders: (index, first) left out
    now: dt.datetime | None = None                                  # when the orders without created_at were read

    @property
    def delta(self) -> dict | None:
        return compare(self.baseline.metrics, self.candidate.metrics) if self.baseline else None

    @property
    def untimed(self) -> int:
        """How many of the orders replayed had no created_at (read at `now`)."""
        return sum(1 for order in self.orders if order.created_at is None)

    def now_text(self) -> str | None:
        """The moment the orders without created_at were read at (ISO 8601),
        or None when every order had its own time."""
        return self.now.isoformat() if self.now is not None and self.untimed else None

    def to_json(self, limit: int | None = None) -> dict:
        """Metrics, deltas and the differing orders (at most `limit` of them)."""
        shown = self.differences if limit is None else self.differences[:limit]
        out = {"orders": len(self.orders), "repeats": len(self.repeats), "now": self.now_text(),
               "candidate": dict(self.candidate.header(), metrics=self.candidate.metrics),
               "baseline": dict(self.baseline.header(), metrics=self.baseline.metrics) if self.baseline else None,
               "delta": self.delta, "differing": len(self.differences),
               "differences": [{k: v for k, v in d.items() if k != "position"} for d in shown]}
        return out


def simulate(candidate: Rulebook, network: Network, catalog, stock: Stock, orders: Sequence[Order], *,
             baseline: Rulebook | None = None, with_nodes: Iterable[str] = (),
             without_nodes: Iterable[str] = (), now: dt.datetime | None = None,
             progress: Progress | None = None) -> Simulation:
    """Replay `orders` (exact repeats left out, see distinct_orders; in
    time order) with the candidate playbook on the network changed by the
    node what-ifs. There is a baseline run when there is something to
    compare with: `baseline` (another playbook) on the network as it is, or
    else, when nodes are switched, the candidate playbook on the network as
    it is. Orders without created_at are read as placed at `now` in both
    runs (a time without an offset is in the candidate's timezone); it is
    needed when there are such orders (ValueError without it: the caller
    reads the clock, once). `stock` itself is not changed. `progress` is
    called with the number of orders done so far (over both runs).
    Raises WhatIfError for unknown nodes and OrderConflict for an id given
    to two different orders."""
    with_nodes, without_nodes = tuple(with_nodes), tuple(without_nodes)
    changed, live = what_if_network(network, with_nodes, without_nodes)
    kept, repeats = distinct_orders(orders)
    ordered = time_ordered(kept, candidate.settings.timezone)
    if now is not None:
        now = moment_in(now, candidate.settings.timezone)
    elif any(order.created_at is None for order in ordered):
        raise ValueError("some orders have no created_at: give now, the moment to read them at")
    if baseline is None and (with_nodes or without_nodes):
        baseline = candidate
    offset = 0

    def run(rulebook, net, live_nodes, nodes_on=(), nodes_off=()) -> Run:
        nonlocal offset
        start = offset
        tick = (lambda done: progress(start + done)) if progress else None
        decisions = replay(rulebook, net, catalog, stock.copy(), ordered, live_nodes=live_nodes, now=now,
                           progress=tick)
        offset += len(ordered)
        documents = [d.to_json() for d in decisions]
        metrics = summarize(documents, net, stock, live_nodes=live_nodes)
        return Run(rulebook, net, live_nodes, decisions, documents, metrics, nodes_on, nodes_off)

    first = run(candidate, changed, live, with_nodes, without_nodes)
    if baseline is None:
        return Simulation(ordered, first, repeats=repeats, now=now)
    second = run(baseline, network, frozenset())
    return Simulation(ordered, first, second, differences(second.documents, first.documents), repeats, now)
