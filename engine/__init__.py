"""The routing engine: facts, forward chaining, cost model, allocation,
decisions. Plain data and pure functions; no I/O."""

from .decision import Decision, explain
from .facts import OrderError
from .matching import RuleLoopError
from .recheck import decides_alike
from .models import Catalog, Carrier, Item, Network, Node, Order, StockRow
from .router import MATCHERS, matcher_named, reserve, route, route_batch
from .stock import Stock

__all__ = ["route", "route_batch", "reserve", "decides_alike", "matcher_named", "MATCHERS", "explain", "Decision", "Network", "Node", "Carrier",
           "Catalog", "Item", "Order", "Stock", "StockRow", "OrderError", "RuleLoopError"]
