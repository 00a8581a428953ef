"""The cost model: what a shipment from a node costs and how long it takes.

    cost = base + per_kg x kg + per_1000km x km / 1000 + node handling + surcharges
    days = max(min_days, ceil(km / km_per_day)) + node lead days
           (+ days until the stock arrives, for in-transit nodes)

A carrier with `states` serves a shipment only when both ends are in them.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass

from .geo import Point, km_between
from .models import Carrier, Node


@dataclass(frozen=True)
class Lane:
    """One carrier from one node to this order's ship-to."""
    carrier: str
    fixed: float        # base + distance part + handling (no weight, no surcharge)
    per_kg: float
    days: int


@dataclass(frozen=True)
class Reach:
    """How a node reaches the customer."""
    node: str
    km: float
    lanes: tuple[Lane, ...]   # every carrier that serves it, cheapest fixed first

    def cheapest(self, kg: float, surcharges: dict[str, float] | None = None) -> Lane | None:
        surcharges = surcharges or {}
        return min(self.lanes, default=None,
                   key=lambda l: (l.fixed + surcharges.get(l.carrier, 0.0) + l.per_kg * kg, l.days, l.carrier))

    def fastest(self) -> Lane | None:
        return min(self.lanes, default=None, key=lambda l: (l.days, l.fixed, l.carrier))


def reach(node: Node, carriers: tuple[Carrier, ...], ship_to: Point, today: dt.date) -> Reach:
    km = km_between(node.lat, node.lon, ship_to.lat, ship_to.lon)
    extra_days = node.lead_days
    if node.kind == "transit" and node.eta is not None:
        extra_days += max(0, (node.eta - today).days)
    lanes = []
    for carrier in carriers:
        if not carrier.serves(node.state, ship_to.state):
            continue
        days = max(carrier.min_days, math.ceil(km / carrier.km_per_day - 1e-9)) + extra_days
        fixed = carrier.base + carrier.per_1000km * km / 1000 + node.handling
        lanes.append(Lane(carrier.id, fixed, carrier.per_kg, days))
    lanes.sort(key=lambda l: (l.fixed, l.days, l.carrier))
    return Reach(node.id, km, tuple(lanes))


def reaches(nodes, carriers: tuple[Carrier, ...], ship_to: Point, today: dt.date) -> dict[str, Reach]:
    return {node.id: reach(node, carriers, ship_to, today) for node in nodes}
