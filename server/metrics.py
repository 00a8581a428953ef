"""Prometheus metrics. Business figures (orders by state, split rate) are
read from the database at scrape time, so they are right across worker
processes; the route latency histogram is per process, aggregated over
workers when PROMETHEUS_MULTIPROC_DIR is set (`steve serve --workers N`
sets it)."""

from __future__ import annotations

import os

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.multiprocess import MultiProcessCollector

BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)


class _StoreCollector:
    def __init__(self, service):
        self.service = service

    def collect(self):
        store = self.service.store
        orders = GaugeMetricFamily("steve_orders", "Orders stored, by state", labels=["state"])
        for state, count in sorted(store.order_counts().items()):
            orders.add_metric([state], count)
        yield orders
        row = store.query("SELECT COUNT(*) AS n, COALESCE(SUM(json_array_length(decision, '$.shipments') > 1), 0) "
                          "AS split, COALESCE(SUM(json_array_length(decision, '$.shipments')), 0) AS shipments "
                          "FROM orders WHERE state IN ('routed', 'shipped')")[0]
        routed = row["n"] or 0
        yield GaugeMetricFamily("steve_held_orders", "Orders waiting in the held queue",
                                value=store.order_counts().get("held", 0))
        yield GaugeMetricFamily("steve_split_rate", "Share of routed orders with more than one shipment",
                                value=(row["split"] / routed) if routed else 0.0)
        yield GaugeMetricFamily("steve_shipments_per_order", "Shipments per routed order",
                                value=(row["shipments"] / routed) if routed else 0.0)
        units = store.query("SELECT COALESCE(SUM(on_hand), 0) AS on_hand, COALESCE(SUM(reserved), 0) AS reserved "
                            "FROM stock")[0]
        yield GaugeMetricFamily("steve_stock_on_hand_units", "Units on hand in the network", value=units["on_hand"])
        yield GaugeMetricFamily("steve_stock_reserved_units", "Units reserved for open orders",
                                value=units["reserved"])


class Metrics:
    def __init__(self):
        self.multiprocess = bool(os.environ.get("PROMETHEUS_MULTIPROC_DIR"))
        self.registry = CollectorRegistry()
        self.latency = Histogram("steve_route_seconds", "Time to route (and reserve) one order",
                                 buckets=BUCKETS, registry=None if self.multiprocess else self.registry)
        self.early = Counter("steve_early_routes", "Orders routed before the write lock, by whether that "
                             "decision held under the lock (kept) or the order was routed again",
                             ["outcome"], registry=None if self.multiprocess else self.registry)
        self._store_collector = None

    def observe_route(self, seconds: float) -> None:
        self.latency.observe(seconds)

    def count_early(self, outcome: str) -> None:
        self.early.labels(outcome).inc()

    def render(self, service) -> str:
        if self.multiprocess:
            registry = CollectorRegistry()
            MultiProcessCollector(registry)
            registry.register(_StoreCollector(service))
            return generate_latest(registry).decode()
        if self._store_collector is None:
            self._store_collector = _StoreCollector(service)
            self.registry.register(self._store_collector)
        return generate_latest(self.registry).decode()
