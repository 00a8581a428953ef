"""Prometheus metrics. Business figures (orders by state, the routing
figures `steve simulate` prints, stock) are read from the database at scrape
time, so they are right across worker processes; the routing figures come
from sums the store keeps as orders are saved, so a scrape reads no
decision (Service.figures). The route latency histogram is per process,
aggregated over workers when PROMETHEUS_MULTIPROC_DIR is set (`steve serve
--workers N` sets it)."""

from __future__ import annotations

import os

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.multiprocess import MultiProcessCollector

BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)


# (metric, its figure in Service.figures (named as engine.metrics.summarize names them), help)
FIGURES = (
    ("steve_split_rate", "split_rate", "Share of routed orders with more than one shipment"),
    ("steve_shipments_per_order", "shipments_per_order", "Shipments per routed order"),
    ("steve_total_cost", "total_cost", "Shipping cost of the routed orders, in the network's currency"),
    ("steve_mean_cost", "mean_cost", "Mean shipping cost per routed order"),
    ("steve_mean_distance_km", "mean_distance_km", "Mean distance of a shipment by carrier, in km"),
    ("steve_mean_days", "mean_days", "Mean delivery days per routed order"),
    ("steve_store_units", "store_units", "Units of the routed orders that ship from stores"),
    ("steve_hidden_stock_share", "hidden_stock_share",
     "Share of the network's available units that a view of only its largest warehouse would not show"),
    ("steve_stock_on_hand_units", "on_hand_units", "Units on hand in the network"),
    ("steve_stock_reserved_units", "reserved_units", "Units reserved for open orders"),
)


class _StoreCollector:
    def __init__(self, service):
        self.service = service

    def collect(self):
        counts = self.service.store.order_counts()
        orders = GaugeMetricFamily("steve_orders", "Orders stored, by state", labels=["state"])
        for state, count in sorted(counts.items()):
            orders.add_metric([state], count)
        yield orders
        yield GaugeMetricFamily("steve_held_orders", "Orders waiting in the held queue", value=counts.get("held", 0))
        figures = self.service.figures()        # routed orders: those routed or shipped
        for name, figure, words in FIGURES:
            yield GaugeMetricFamily(name, words, value=figures[figure])


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
