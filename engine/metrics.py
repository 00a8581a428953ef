"""Metrics over many decisions (simulate, the service's /metrics).

Pure functions over decision JSON documents (Decision.to_json()), so the
service can compute them from what it stored.
"""

from __future__ import annotations

from typing import Iterable

from .models import Network
from .stock import Stock


def summarize(decisions: Iterable[dict], network: Network, stock: Stock | None = None,
              live_nodes: Iterable[str] = ()) -> dict:
    kinds = {n.id: n.kind for n in network.nodes}
    orders = routed = held = errors = shipments = split = store_units = units = 0
    cost = days = distance = 0.0
    distance_count = 0
    node_usage: dict[str, int] = {}
    for decision in decisions:
        orders += 1
        status = decision.get("status")
        if status == "held":
            held += 1
            continue
        if status != "routed":
            errors += 1
            continue
        routed += 1
        parts = decision.get("shipments") or []
        shipments += len(parts)
        split += len(parts) > 1
        cost += decision.get("cost") or 0.0
        days += decision.get("days") or 0
        for part in parts:
            node_usage[part["node"]] = node_usage.get(part["node"], 0) + 1
            quantity = sum(line["qty"] for line in part.get("lines", ()))
            units += quantity
            if kinds.get(part["node"]) == "store":
                store_units += quantity
            if part.get("carrier"):
                distance += part.get("distance_km") or 0
                distance_count += 1
    out = {
        "orders": orders, "routed": routed, "held": held, "errors": errors,
        "split_rate": _ratio(split, routed), "shipments_per_order": _ratio(shipments, routed),
        "total_cost": round(cost, 2), "mean_cost": round(cost / routed, 2) if routed else 0.0,
        "mean_distance_km": round(distance / distance_count, 1) if distance_count else 0.0,
        "mean_days": round(days / routed, 3) if routed else 0.0,
        "units_shipped": units, "store_units": store_units,
        "node_usage": dict(sorted(node_usage.items())),
    }
    if stock is not None:
        out["hidden_stock_share"] = hidden_stock_share(network, stock, live_nodes)
    return out


def hidden_stock_share(network: Network, stock: Stock, live_nodes: Iterable[str] = ()) -> float:
    """Share of available network units that a view of only the largest
    warehouse would not show (stores, 3PLs, vendors, other warehouses).
    `live_nodes` counts shadow or off nodes as live (what-if runs)."""
    also = set(live_nodes)
    live = {n.id: n for n in network.nodes if n.status == "live" or n.id in also}
    per_node: dict[str, int] = {}
    for (node, sku), _ in stock.levels.items():
        if node in live:
            per_node[node] = per_node.get(node, 0) + stock.available(node, sku)
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
