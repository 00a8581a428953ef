"""route(): one order in, one Decision out. route_batch(): many orders
against one stock view, reserving as it goes.

    order -> facts -> rules fire (forward chaining) -> verdict -> allocation
          -> Decision with trace and a reason for every node not used
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import replace
from typing import Any, Callable, Iterable

from pydantic import ValidationError

from dsl.compiler import Rulebook
from . import allocator as alloc
from . import compare, fastmatch
from . import geo, limits
from .decision import Decision, Shipment, ShipmentLine, TraceEntry, cents, money
from .effects import ALL_LINES, Verdict, Why, applies, decide
from .facts import OrderError, Situation, gather
from .matching import RuleLoopError, run_rules
from .models import Catalog, Network, Order
from .stock import Stock

Matcher = Callable[[Rulebook, Any], list]
_new = tuple.__new__     # a named tuple without the Python-level __new__ (hot paths)
MATCHERS = ("compiled", "python", "durable")


def matcher_named(name: str) -> Matcher:
    """The rule matcher called `name`: "compiled" (the default,
    engine/fastmatch.py), "python" (the reference interpreter,
    engine/matching.py) or "durable" (durable_rules, engine/durable_engine.py).
    All give the same firings in the same order."""
    if name == "compiled":
        return fastmatch.run_rules
    if name == "python":
        return run_rules
    if name == "durable":
        from . import durable_engine
        return durable_engine.run_rules
    raise ValueError(f"unknown matcher {name!r}; choose one of {', '.join(MATCHERS)}")
COMPARE_LIMIT = 16      # nodes compared one by one in "not chosen: $X more than …"


def route(rulebook: Rulebook, network: Network, catalog: Catalog, stock: Stock,
          order: Order | dict, *, matcher: Matcher | None = None,
          live_nodes: Iterable[str] = (), now: dt.datetime | None = None,
          time_limit: float | None = None) -> Decision:
    """Decide how to fulfil one order. Never raises for bad orders: they get
    status "error" with what is wrong and where.

    `time_limit` bounds the wall-clock seconds spent (default:
    engine.limits.TIME_LIMIT; math.inf for none): past it the allocator uses
    the best plan found so far, and rules or facts that are still being
    worked out give status "error" saying the order took too long."""
    seconds = limits.TIME_LIMIT if time_limit is None else time_limit
    geo.warm()          # the ZIP table loads once per process (~0.3-1 s), not on the order's time
    with limits.deadline(seconds):
        try:
            return _route(rulebook, network, catalog, stock, order, matcher=matcher,
                          live_nodes=live_nodes, now=now)
        except limits.OutOfTime as error:
            order_id = order.id if isinstance(order, Order) else (
                order.get("id") if isinstance(order, dict) else None)
            lines = len(order.lines) if isinstance(order, Order) else len(order.get("lines") or ())
            message = (f"deciding this order took longer than the limit of {seconds:g} s "
                       f"({error.stage}: {lines} lines, {len(network.nodes)} nodes, "
                       f"{len(rulebook.rules)} rules); it was not routed: split the order or "
                       "simplify the playbook")
            return Decision(str(order_id or ""), "error", playbook={"name": rulebook.name,
                                                                     "version": rulebook.version},
                            errors=({"loc": "order", "msg": message},))


def _route(rulebook: Rulebook, network: Network, catalog: Catalog, stock: Stock,
           order: Order | dict, *, matcher: Matcher | None = None,
           live_nodes: Iterable[str] = (), now: dt.datetime | None = None) -> Decision:
    playbook = {"name": rulebook.name, "version": rulebook.version}
    if not isinstance(order, Order):
        try:
            order = Order.model_validate(order)
        except ValidationError as error:
            order_id = order.get("id") if isinstance(order, dict) else None
            return Decision(str(order_id or ""), "error", playbook=playbook,
                            errors=tuple(validation_problems(error)))
    try:
        situation = gather(order, network, catalog, stock, rulebook.settings.timezone,
                           frozenset(live_nodes), now)
    except OrderError as error:
        return Decision(order.id, "error", playbook=playbook,
                        errors=tuple({"loc": loc, "msg": msg} for loc, msg in error.problems))
    try:
        firings = (matcher or fastmatch.run_rules)(rulebook, situation.base)
    except RuleLoopError as error:
        return Decision(order.id, "error", playbook=playbook,
                        errors=({"loc": "playbook", "msg": str(error)},))
    verdict = decide(rulebook, firings, situation.base, network.nodes,
                     [line.sku for line in situation.lines], pickup=order.delivery == "pickup")
    trace = _trace(order.id, firings, verdict, situation)
    tags = tuple(sorted(situation.base.order.get("order.tags") or ()))
    common = dict(objective=verdict.objective, tags=tags, playbook=playbook, trace=trace,
                  currency=rulebook.settings.currency)
    if verdict.hold is not None:
        reason = f"held by {verdict.hold.cite()}" + (f": {verdict.hold.reason}" if verdict.hold.reason else "")
        return Decision(order.id, "held", reason=reason, nodes=_all_unused(network, situation), **common)
    pickup = order.delivery == "pickup" or (verdict.route_to and verdict.route_to[0] == "<pickup>")
    if pickup:
        by = verdict.route_to[1] if verdict.route_to and verdict.route_to[0] == "<pickup>" else None
        return _pickup(order, network, stock, situation, common, by)
    return _allocate(order, network, stock, situation, verdict, common)


def route_batch(rulebook: Rulebook, network: Network, catalog: Catalog, stock: Stock,
                orders: Iterable[Order | dict], **options) -> Iterable[Decision]:
    """Route orders in turn against one stock view, reserving each routed
    order's units before the next (the stock object is changed)."""
    for order in orders:
        decision = route(rulebook, network, catalog, stock, order, **options)
        if decision.status == "routed":
            reserve(stock, decision)
        yield decision


def reserve(stock: Stock, decision: Decision) -> None:
    for shipment in decision.shipments:
        for line in shipment.lines:
            stock.reserve(shipment.node, line.sku, line.qty)


# ---- pickup ---------------------------------------------------------------------

def _pickup(order: Order, network: Network, stock: Stock, situation: Situation, common,
            by: Why | None = None) -> Decision:
    node_id = order.pickup_node
    node = network.node(node_id) if node_id else None
    problem = None
    if not node_id:         # a rule routed a ship order to its pickup node (an order for pickup needs one)
        problem = "the order names no pickup node (pickup_node)" + (f"; it is routed to its pickup node "
                                                                    f"by {by.cite()}" if by else "")
        return Decision(order.id, "held", reason=problem, nodes=_all_unused(network, situation), **common)
    if node is None:
        problem = f"pickup node {node_id!r} is not in the network"
    elif node.status != "live":
        problem = f"pickup node {node_id} is not live ({node.status})"
    elif not node.pickup:
        problem = f"{node_id} does not offer pickup"
    else:
        wanted: dict[str, int] = {}
        for line in situation.lines:
            wanted[line.sku] = wanted.get(line.sku, 0) + line.qty
        for sku, qty in wanted.items():
            if stock.available(node_id, sku) < qty:
                problem = (f"pickup node {node_id} has {stock.available(node_id, sku)} of {sku} "
                           f"available, {qty} wanted")
                break
    if problem:
        # every node, in network order; the pickup node says what stops it
        reasons = {n.id: problem if n.id == node_id else "not the pickup node" for n in network.nodes}
        return Decision(order.id, "held", reason=problem, nodes=reasons, **common)
    reasons = {n.id: "not the pickup node" for n in network.nodes if n.id != node_id}
    lines = tuple(ShipmentLine(l.sku, l.qty) for l in situation.lines)
    shipment = Shipment(node_id, None, lines, 0.0, 0, 0)
    return Decision(order.id, "routed", shipments=(shipment,), nodes=reasons, **common)


# ---- allocation --------------------------------------------------------------------

def _allocate(order: Order, network: Network, stock: Stock, situation: Situation,
              verdict: Verdict, common) -> Decision:
    blocked: dict[str, list[str]] = {}      # node -> reasons found here, after situation's own
    lanes = _lanes(network, situation, verdict)
    candidates = []
    avoid_notes: dict[str, str] = {}
    route_to = verdict.route_to[0] if verdict.route_to else None
    # nodes named in the verdict's tables: the others skip the look-ups
    excluded_nodes = {node for _, node in verdict.excluded}
    avoided_nodes = {node for _, node in verdict.avoided}
    adjusted_nodes = {node for _, node in verdict.adjust}
    vendors_for_all, transit_for_all = ALL_LINES in verdict.allow_vendors, ALL_LINES in verdict.allow_transit
    for entity in situation.base.candidates:
        line, node_id, facts = entity.line, entity.node, entity.facts
        kind = facts["node.kind"]
        why_not = None
        excluded = applies(verdict.excluded, line, node_id) if node_id in excluded_nodes else None
        if excluded is not None:
            why_not = f"excluded by {excluded.cite()}" + (f": {excluded.reason}" if excluded.reason else "")
        elif route_to is not None and node_id != route_to:
            why_not = f"the order is routed to {route_to} by {verdict.route_to[1].cite()}"
        elif kind == "vendor" and not (vendors_for_all or line in verdict.allow_vendors):
            why_not = "drop-ship vendor: no rule allows vendors for this order"
        elif kind == "transit" and not (transit_for_all or line in verdict.allow_transit):
            why_not = "in-transit stock: no rule allows in-transit for this order"
        elif facts["node.load"] >= 1.0:
            why_not = "over capacity today"
        elif not lanes.get(node_id):
            why_not = _NO_CARRIER
        if why_not:
            if node_id in blocked:
                blocked[node_id].append(why_not)
            else:
                blocked[node_id] = [why_not]
            continue
        avoided_by = applies(verdict.avoided, line, node_id) if node_id in avoided_nodes else None
        avoided = avoided_by is not None
        if avoided:
            avoid_notes.setdefault(node_id, f"avoided by {avoided_by.cite()}"
                                   + (f": {avoided_by.reason}" if avoided_by.reason else ""))
        adjust = verdict.adjust.get((line, node_id), 0.0) + verdict.adjust.get((ALL_LINES, node_id), 0.0) \
            if node_id in adjusted_nodes else 0.0
        candidates.append(_new(alloc.Candidate, (line, node_id, avoided, adjust)))
    usable, left, capped, kept_back = {}, {}, {}, set()
    order_units = sum(line.qty for line in situation.lines)
    for c in candidates:
        sku = situation.lines[c.line].sku
        keep = verdict.keep.get((c.node, sku), 0)
        available = stock.available(c.node, sku)
        units = max(0, available - keep)
        if keep and not units:          # a keep rule holds back every unit it has
            kept_back.add(c)
            why = verdict.kept_by[c.node, sku][1]
            blocked.setdefault(c.node, []).append(
                f"its {available} unit{'s' if available != 1 else ''} of {sku} "
                f"{'are' if available != 1 else 'is'} kept back by {why.cite()}"
                + (f": {why.reason}" if why.reason else ""))
            continue
        if c.node not in left:
            # the capacity left matters only when the order could use more (engine.recheck relies on it)
            facts = situation.base.nodes[c.node]
            room = capacity_left(facts["node.capacity"], facts["node.load"])
            left[c.node] = room if room is not None and room < order_units else None
        if left[c.node] is not None and left[c.node] < units:
            capped[c.node, sku] = units         # what it has, kept for the held reason
            units = left[c.node]
        usable[(c.node, sku)] = units
    if kept_back:
        candidates = [c for c in candidates if c not in kept_back]
    # a node's capacity left binds across lines only when it is less than what
    # the node could ship of two or more of the order's skus together
    together: dict[str, list[int]] = {}
    for (node_id, _), units in usable.items():
        together.setdefault(node_id, []).append(units)
    node_units = {n: left[n] for n, amounts in together.items()
                  if left[n] is not None and len(amounts) > 1 and sum(amounts) > left[n]}
    complete = verdict.ship_complete is not None or route_to is not None
    problem = alloc.Problem(
        lines=tuple([_new(alloc.Line, (l.index, l.sku, l.qty, l.weight)) for l in situation.lines]),
        carriers=lanes, candidates=tuple(candidates), stock=usable,
        objective=verdict.objective, day_value=verdict.day_value,
        split_penalty=verdict.split_penalty,
        max_shipments=1 if complete else verdict.max_shipments, ship_complete=complete,
        node_units=node_units or None)
    plan = alloc.solve(problem)
    if plan is None:
        reason = "no plan found within the time limit for one order" if limits.expired() else \
            alloc.explain_infeasible(problem)
        if not candidates:
            reason = _nothing_can_ship(situation, blocked, verdict)
        elif (capped or node_units) and alloc.solve(replace(problem, stock={**usable, **capped},
                                                             node_units=None)):
            # a plan exists when the nodes' capacity left is not counted
            nodes = sorted({node_id for node_id, _ in capped} | set(node_units))
            reason += (f" within the capacity left today at {', '.join(nodes)}")
        if route_to is not None:
            own = situation.node_reasons(blocked, set()).get(route_to)
            reason = (f"the order is routed to {route_to} by {verdict.route_to[1].cite()}, "
                      f"which cannot ship it: {own or reason}")
        return Decision(order.id, "held", reason=f"cannot be served now: {reason}",
                        nodes=_all_unused(network, situation, blocked), **common)
    shipments = tuple(_shipment(s, situation, verdict) for s in plan.shipments)
    used = {s.node for s in shipments}
    final = _not_chosen(problem, plan, used, avoid_notes, common["currency"])
    for node_id in sorted({node_id for node_id, _ in capped}):
        if node_id in final:
            final[node_id] += f"; it can ship {left[node_id]} more units today (capacity)"
    reasons = situation.node_reasons(blocked, used, final)
    return Decision(order.id, "routed", shipments=shipments, nodes=reasons, **common)


def capacity_left(capacity: int | None, load: float) -> int | None:
    """Units a node can still ship today: its capacity less the share
    already used (node.load); None when it has no capacity."""
    if not capacity:
        return None
    return max(0, math.floor(capacity * (1.0 - load) + 1e-6))


def _lanes(network: Network, situation: Situation, verdict: Verdict) -> dict[str, tuple]:
    """Carrier options per node that has a candidate (the allocator and the
    explanations look at no other node)."""
    lanes = {}
    chosen = verdict.carrier[0] if verdict.carrier else None
    avoid, surcharges = verdict.avoid_carriers, verdict.surcharges
    wanted = {entity.node for entity in situation.base.candidates}
    for node_id, reach in situation.reach.items():
        if node_id not in wanted:
            continue
        options = reach.lanes if chosen is None else [l for l in reach.lanes if l.carrier == chosen]
        if avoid:
            options = [l for l in options if l.carrier not in avoid] or options
        if surcharges:
            options = [alloc.CarrierOption(l.carrier, l.fixed + surcharges[l.carrier], l.per_kg, l.days)
                       if l.carrier in surcharges else l for l in options]
        lanes[node_id] = options if type(options) is tuple else tuple(options)   # a Lane is a CarrierOption
    return lanes


def _shipment(planned, situation: Situation, verdict: Verdict) -> Shipment:
    reach = situation.reach[planned.node]
    lines = tuple(ShipmentLine(situation.lines[i].sku, qty) for i, qty in planned.lines)
    service = verdict.carrier[1] if verdict.carrier and verdict.carrier[0] == planned.carrier else None
    return Shipment(planned.node, planned.carrier, lines, planned.cost, planned.days,
                    round(reach.km), service)


def _not_chosen(problem, plan, used: set[str], avoid_notes: dict[str, str],
                currency: str | None = None) -> dict[str, str]:
    eligible = sorted({c.node for c in problem.candidates} - used)
    if not eligible:
        return {}
    than = next(iter(used)) if len(used) == 1 else "the chosen plan"
    out = {}
    if len(eligible) > COMPARE_LIMIT:
        eligible = sorted(eligible, key=lambda n: _single_estimate(problem, n))[:COMPARE_LIMIT]
    if compare.is_big(problem, eligible):       # estimated: see engine/compare.py
        out = compare.estimate(problem, plan, eligible, avoid_notes, than,
                               {ln.index: ln.sku for ln in problem.lines}, currency)
        eligible = []
    for node_id in eligible:
        if limits.expired():
            out[node_id] = "not chosen: not compared (the order reached its time limit)"
            continue
        other = compare.forced(problem, node_id, plan)
        if other is None:
            out[node_id] = "not chosen: not compared (the order reached its time limit)" if limits.expired() \
                else "not chosen: cannot be part of a plan that serves the whole order"
            continue
        if other.avoided > plan.avoided:
            out[node_id] = "not chosen: " + avoid_notes.get(node_id, "avoided by a rule")
            continue
        if problem.objective == "speed" and other.days > plan.days:
            slower = other.days - plan.days
            out[node_id] = f"not chosen: {slower} day{'s' if slower != 1 else ''} slower than {than}"
            continue
        delta = other.value - plan.value
        more = _difference(delta, than, currency)
        out[node_id] = f"not chosen: {more}" + _breakdown(problem, plan, other, delta, currency)
    for node_id in sorted({c.node for c in problem.candidates} - used - set(out)):
        out[node_id] = "not chosen: more costly than " + than
    return out


def _difference(delta: float, than: str, currency: str | None) -> str:
    """"$2.01 more than TX-DC"; a near tie "costs the same as TX-DC to the
    cent"; "$3.00 less than …" only when the chosen plan is not the best
    (a large order's heuristic plan), said as it is."""
    rounded = cents(delta)
    if rounded > 0:
        return f"{money(delta, currency)} more than {than}"
    if rounded < 0:
        return f"{money(-delta, currency)} less than {than}"
    return f"costs the same as {than} to the cent"


def _breakdown(problem, plan, other, delta: float, currency: str | None = None) -> str:
    """What the difference in the objective is made of, when it is not all
    shipping cost: " (shipping $7.62 more, split penalty $5.00 more)"."""
    shipping = other.cost - plan.cost
    split = problem.split_penalty * (len(other.shipments) - len(plan.shipments))
    days = problem.day_value * (other.days - plan.days) if problem.objective == "balanced" else 0.0
    rules = delta - shipping - split - days
    if -0.005 < split < 0.005 and -0.005 < days < 0.005 and -0.005 < rules < 0.005:
        return ""               # all shipping (the common case; said without a breakdown)
    parts = [(label, amount) for label, amount in (("shipping", shipping), ("split penalty", split),
                                                   ("delivery days", days), ("rule penalties", rules))
             if abs(amount) >= 0.005]
    if not parts or [label for label, _ in parts] == ["shipping"]:
        return ""
    words = [f"{label} {money(abs(amount), currency)} {'more' if amount > 0 else 'less'}"
             for label, amount in parts]
    return " (" + ", ".join(words) + ")"


def _single_estimate(problem, node_id: str) -> float:
    options = problem.carriers.get(node_id) or ()
    return min((o.fixed for o in options), default=float("inf"))


def _all_unused(network: Network, situation: Situation,
                blocked: dict[str, list[str]] | None = None) -> dict[str, str]:
    """Every node's reason when the order is held: its own reason, else
    (it could have shipped some of the order) that the order is held."""
    reasons = situation.node_reasons(blocked or {}, set())
    return {n.id: reasons.get(n.id, "not used: the order is held") for n in network.nodes}


_NO_CARRIER = "no allowed carrier serves this route"


def _nothing_can_ship(situation: Situation, blocked: dict[str, list[str]], verdict: Verdict) -> str:
    """Why no node is left, so that the reason does not read as if the
    network had no stock: the carrier a `use carrier` rule leaves, when it
    is what stops nodes that have the items; else one cause that stops
    every such node (all excluded by one rule, say)."""
    if not situation.lines:
        return "nothing to ship"
    skus = list(dict.fromkeys(line.sku for line in situation.lines))     # two lines of one item: one
    said = f"no node can ship {skus[0]}" if len(skus) == 1 else "no node can ship the order's items"
    if not all(situation.line_nodes):
        return said             # some item no node has (or can reach): no one cause stops them all
    causes = {cause for reasons in blocked.values() for cause in reasons}
    if _NO_CARRIER in causes and verdict.carrier is not None:
        return (f"{said}: {verdict.carrier[2].cite()} ships by {verdict.carrier[0]} only, which does "
                "not serve the nodes that have them")
    return f"{said} ({causes.pop()})" if len(causes) == 1 else said


def _trace(order_id: str, firings, verdict: Verdict, situation: Situation) -> tuple[TraceEntry, ...]:
    entries = []
    for number, firing in enumerate(firings):
        rule, entity = firing.rule, firing.entity
        notes = verdict.notes.get(number, ())
        if verdict.overridden:
            notes = [text + (f' (overridden by rule "{verdict.overridden[number, at]}")'
                             if (number, at) in verdict.overridden else "")
                     for at, text in enumerate(notes)]
        effect = "; ".join(notes) or "fired"
        sku = situation.lines[entity.line].sku if entity.line is not None else None
        entries.append(_new(TraceEntry, (rule.name, rule.file, rule.line, order_id, effect, sku, entity.node)))
    return tuple(entries)


def validation_problems(error: ValidationError, whole: str = "") -> list[dict]:
    """pydantic's errors as [{"loc", "msg"}] (`whole`: the loc of an error
    about the whole input). pydantic also reports a list as too short when
    one of its items failed ("lines: at least 1 item ... not 0" beside
    "lines.0.qty: ..."): only the item's error is true, so that one is left out."""
    errors = error.errors(include_url=False)
    failed_items = {tuple(e["loc"][:-i]) for e in errors for i in range(1, len(e["loc"]))}
    return [{"loc": ".".join(str(p) for p in e["loc"]) or whole, "msg": e["msg"]}
            for e in errors if not (e["type"] == "too_short" and tuple(e["loc"]) in failed_items)]
