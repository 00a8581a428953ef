"""The cost model: what a shipment from a node costs and how long it takes.

    cost = base + per_kg x kg + per_1000km x km / 1000 + node handling + surcharges
    days = max(min_days, ceil(km / km_per_day)) + node lead days
           (+ days until the stock arrives, for in-transit nodes)

A carrier with `states` serves a shipment only when both ends are in them.
"""

from __future__ import annotations

import datetime as dt
import math
from operator import itemgetter
from typing import NamedTuple

from ._kept import kept
from .geo import EARTH_RADIUS_KM, Point
from .models import Carrier, Node


_new = tuple.__new__     # builds a named tuple without the Python-level __new__ (hot paths)


class Lane(NamedTuple):
    """One carrier from one node to this order's ship-to (a named tuple: a
    hundred-node network makes thousands of them a second)."""
    carrier: str
    fixed: float        # base + distance part + handling (no weight, no surcharge)
    per_kg: float
    days: int


class Reach(NamedTuple):
    """How a node reaches the customer (a named tuple, as Lane)."""
    node: str
    km: float
    lanes: tuple[Lane, ...]   # every carrier that serves it, cheapest fixed first
    days: int | None = None   # the fastest lane's days (None: no lane)

    def cheapest(self, kg: float) -> Lane | None:
        """The lane that ships `kg` for the least; ties: fewer days, then carrier id."""
        lanes = self.lanes
        if len(lanes) == 1:
            return lanes[0]
        best, least = None, 0.0
        for lane in lanes:
            cost = lane[1] + lane[2] * kg       # fixed + per_kg x kg
            if best is None or cost < least or (cost == least and (lane[3], lane[0]) < (best[3], best[0])):
                best, least = lane, cost
        return best


def _reach_from(row: tuple, rows: tuple, lat: float, lon: float, p2: float, cos_p2: float,
                to_state: str | None, today: dt.date) -> Reach:
    """How one node reaches the ship-to: the node's figures prepared once
    (see node_row), the ship-to's latitude in radians and its cosine once
    per order; the same arithmetic as geo.km_between, so the same distances
    to the bit."""
    node_id, p1, cos_p1, node_lon, handling, extra_days, eta, from_state = row
    dp, dl = p2 - p1, math.radians(lon - node_lon)
    a = math.sin(dp / 2) ** 2 + cos_p1 * cos_p2 * math.sin(dl / 2) ** 2
    km = 2 * EARTH_RADIUS_KM * math.asin(min(1.0, math.sqrt(a)))
    if eta is not None:
        extra_days += max(0, (eta - today).days)
    lanes = []
    fastest = None
    for ident, base, per_kg, per_1000km, km_per_day, min_days, states in rows:
        if states is not None and not (from_state in states and to_state in states):
            continue
        days = math.ceil(km / km_per_day - 1e-9)
        days = (min_days if min_days > days else days) + extra_days
        if fastest is None or days < fastest:
            fastest = days
        lanes.append(_new(Lane, (ident, base + per_1000km * km / 1000 + handling, per_kg, days)))
    if len(lanes) > 1:
        lanes.sort(key=_LANE_ORDER)
    return _new(Reach, (node_id, km, tuple(lanes), fastest))


_LANE_ORDER = itemgetter(1, 3, 0)       # fixed, days, carrier


_ROWS: dict[int, tuple] = {}          # carriers -> _carrier_rows(carriers)


def node_row(node: Node) -> tuple:
    """What _reach_from needs of a node."""
    p1 = math.radians(node.lat)
    return (node.id, p1, math.cos(p1), node.lon, node.handling, node.lead_days,
            node.eta if node.kind == "transit" else None, node.state)


def _carrier_rows(carriers: tuple[Carrier, ...]) -> tuple:
    """The carriers as plain tuples (Carrier.serves as a frozenset test)."""
    return tuple((c.id, c.base, c.per_kg, c.per_1000km, c.km_per_day, c.min_days,
                  None if c.states is None else frozenset(c.states)) for c in carriers)


def reaches(node_rows: list[tuple], carriers: tuple[Carrier, ...], ship_to: Point,
            today: dt.date) -> dict[str, Reach]:
    """node id -> how it reaches the ship-to, for nodes given as their
    node_row()s (the caller keeps them: engine.facts, beside the network's
    node positions)."""
    rows = kept(_ROWS, carriers, _carrier_rows, limit=16)
    lat, lon, state = ship_to.lat, ship_to.lon, ship_to.state
    p2 = math.radians(lat)
    cos_p2 = math.cos(p2)
    return {row[0]: _reach_from(row, rows, lat, lon, p2, cos_p2, state, today) for row in node_rows}
