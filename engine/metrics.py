"""Metrics over many decisions (simulate, the service's /metrics).

Pure functions over decision JSON documents (Decision.to_json()), so the
service can compute them from what it stored.
"""

from __future__ import annotations

from typing import Iterable

from .models import Network
from .stock import Stock


# What summarize adds up over routed decisions (routed_sums), from which the
# routing figures come (routed_figures). The service keeps the same sums in its
# database as orders are saved and cancelled (server/store.py), so that its
# /metrics gives the figures simulate gives without reading every decision.
SUMS = ("routed", "shipments", "split", "cost", "days", "distance_km", "carried")


def summarize(decisions: Iterable[dict], network: Network, stock: Stock | None = None,
              live_nodes: Iterable[str] = ()) -> dict:
    orders = held = errors = 0
    sums: dict[str, float] = dict.fromkeys(SUMS, 0)
    nodes: dict[str, list[int]] = {}
    for decision in decisions:
        orders += 1
        status = decision.get("status")
        if status == "held":
            held += 1
            continue
        if status != "routed":
            errors += 1
            continue
        add_sums(sums, nodes, *routed_sums(decision))
    out = {"orders": orders, "routed": sums["routed"], "held": held, "errors": errors,
           **routed_figures(sums, nodes, {n.id: n.kind for n in network.nodes})}
    if stock is not None:
        out["hidden_stock_share"] = hidden_stock_share(network, stock, live_nodes)
    return out


def routed_sums(decision: dict) -> tuple[dict[str, float], dict[str, list[int]]]:
    """One routed decision's part of the SUMS (routed: 1; its shipments;
    split: 1 if more than one; its cost and days; the distance and count of
    its shipments by carrier), and per node [shipments, units]."""
    parts = decision.get("shipments") or []
    sums = dict.fromkeys(SUMS, 0)
    sums.update(routed=1, shipments=len(parts), split=int(len(parts) > 1),
                cost=decision.get("cost") or 0.0, days=decision.get("days") or 0)
    nodes: dict[str, list[int]] = {}
    for part in parts:
        counts = nodes.setdefault(part["node"], [0, 0])
        counts[0] += 1
        counts[1] += sum(line["qty"] for line in part.get("lines", ()))
        if part.get("carrier"):
            sums["distance_km"] += part.get("distance_km") or 0
            sums["carried"] += 1
    return sums, nodes


def add_sums(sums: dict, nodes: dict[str, list[int]], more: dict, more_nodes: dict[str, list[int]],
             sign: int = 1) -> None:
    """Add (sign -1: take away) one decision's sums to running ones."""
    for name, value in more.items():
        sums[name] += sign * value
    for node, (shipments, units) in more_nodes.items():
        counts = nodes.setdefault(node, [0, 0])
        counts[0] += sign * shipments
        counts[1] += sign * units


def routed_figures(sums: dict, nodes: dict[str, list[int]], kinds: dict[str, str]) -> dict:
    """The routing figures from the sums over routed decisions; `kinds`:
    node id -> kind (store units are the units shipped from stores)."""
    routed, cost = sums["routed"], sums["cost"]
    return {
        "split_rate": _ratio(sums["split"], routed), "shipments_per_order": _ratio(sums["shipments"], routed),
        "total_cost": round(cost, 2), "mean_cost": round(cost / routed, 2) if routed else 0.0,
        "mean_distance_km": round(sums["distance_km"] / sums["carried"], 1) if sums["carried"] else 0.0,
        "mean_days": round(sums["days"] / routed, 3) if routed else 0.0,
        "units_shipped": sum(units for _, units in nodes.values()),
        "store_units": sum(units for node, (_, units) in nodes.items() if kinds.get(node) == "store"),
        "node_usage": {node: shipments for node, (shipments, _) in sorted(nodes.items()) if shipments},
    }


def hidden_stock_share(network: Network, stock: Stock, live_nodes: Iterable[str] = ()) -> float:
    """Share of available network units that a view of only the largest
    warehouse would not show (stores, 3PLs, vendors, other warehouses).
    `live_nodes` counts shadow or off nodes as live (what-if runs)."""
    per_node: dict[str, int] = {}
    for (node, sku), _ in stock.levels.items():
        per_node[node] = per_node.get(node, 0) + stock.available(node, sku)
    return hidden_share(network, per_node, live_nodes)


def hidden_share(network: Network, available: dict[str, int], live_nodes: Iterable[str] = ()) -> float:
    """hidden_stock_share from the units available per node."""
    also = set(live_nodes)
    live = {n.id: n for n in network.nodes if n.status == "live" or n.id in also}
    per_node = {node: units for node, units in available.items() if node in live}
    total = sum(per_node.values())
    warehouses = [units for node, units in per_node.items() if live[node].kind == "warehouse"]
    biggest = max(warehouses, default=0)
    return _ratio(total - biggest, total)


def compare(before: dict, after: dict) -> dict:
    """after - before for every numeric metric."""
    out = {}
    for key, value in after.items():
        if isinstance(value, (int, float)) and isinstance(before.get(key), (int, float)):
            out[key] = round(value - before[key], 4)
    return out


def _ratio(part: float, whole: float) -> float:
    return round(part / whole, 4) if whole else 0.0
