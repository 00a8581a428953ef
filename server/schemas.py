"""Request bodies the service accepts, the shapes it answers with, and the
OpenAPI document generated from them."""

from __future__ import annotations

import datetime as dt
from functools import cache
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator
from pydantic.json_schema import models_json_schema

from engine.models import Catalog, Network, Order, json_kinds


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    @field_validator("*", mode="before")
    @classmethod
    def _json_kinds(cls, value, info: ValidationInfo):
        return json_kinds(cls, value, info)


class StockCount(_Body):
    node: str = Field(min_length=1)
    sku: str = Field(min_length=1)
    on_hand: int = Field(ge=0, le=1_000_000_000)


class StockDelta(_Body):
    node: str = Field(min_length=1)
    sku: str = Field(min_length=1)
    delta: int = Field(ge=-1_000_000_000, le=1_000_000_000)


class StockAdjustment(_Body):
    """Deltas from a WMS or POS; applied once per event_id."""
    event_id: str = Field(min_length=1, max_length=200)
    adjustments: list[StockDelta] | None = None
    node: str | None = None
    sku: str | None = None
    delta: int | None = None

    @model_validator(mode="after")
    def _some(self) -> "StockAdjustment":
        single = (self.node, self.sku, self.delta)
        if self.adjustments is None and None in single:
            raise ValueError("give adjustments: [{node, sku, delta}] or node, sku and delta")
        return self

    def all(self) -> list[StockDelta]:
        if self.adjustments is not None:
            return list(self.adjustments)
        return [StockDelta(node=self.node, sku=self.sku, delta=self.delta)]


class PlaybookIn(_Body):
    # the text exactly as sent: its version is the sha256 of these bytes, and
    # diagnostics cite its lines (stripping would shift both)
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=False)
    text: str = Field(max_length=1_000_000)
    author: str | None = Field(default=None, max_length=200)


class SimulateIn(_Body):
    """A what-if run over these orders, against a copy of the current stock
    (nothing reserved, nothing stored). The candidate is `playbook` (its
    text) or `version` (a stored one), by default the active playbook, with
    the node what-ifs; the baseline is `against` (a stored version or
    playbook text), by default the active playbook, on the network as it is.
    As POST /orders takes them, an exact repeat of an order is skipped and
    an id given to a different order is refused; orders without created_at
    are read at `now`."""
    # playbook texts exactly as sent (their versions are the sha256 of these bytes)
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=False)
    playbook: str | None = Field(default=None, max_length=1_000_000, description="candidate playbook text")
    version: str | None = Field(default=None, description="a stored playbook version as the candidate")
    against: str | None = Field(default=None, max_length=1_000_000,
                                description="baseline: a stored version (sha256:…) or playbook text "
                                            "(default: the active one)")
    orders: list[Order] = Field(min_length=1, max_length=5000)
    with_nodes: list[str] = Field(default=[], description="shadow or off nodes the candidate treats as live")
    without_nodes: list[str] = Field(default=[], description="nodes the candidate treats as off")
    now: dt.datetime | None = Field(default=None, description="the time orders without created_at are read "
                                    "as placed at, in both runs (without an offset: in the candidate's "
                                    "timezone); default: when the request is handled")

    @field_validator("now")
    @classmethod
    def _now_in_range(cls, value: dt.datetime | None) -> dt.datetime | None:
        # as Order.created_at: year 1 or 9999 overflow when moved to another timezone
        if value is not None and not 1900 <= value.year <= 9000:
            raise ValueError("a time between the years 1900 and 9000")
        return value

    @model_validator(mode="after")
    def _something_to_compare(self) -> "SimulateIn":
        if self.playbook is not None and self.version is not None:
            raise ValueError("give the candidate as playbook (its text) or version (a stored one), not both")
        return self


class ShipmentLineOut(BaseModel):
    sku: str
    qty: int


class ShipmentOut(BaseModel):
    node: str
    carrier: str | None
    lines: list[ShipmentLineOut]
    cost: float
    days: int
    distance_km: int
    service: str | None = None


class TraceOut(BaseModel):
    rule: str
    file: str
    line: int
    order: str
    sku: str | None = None
    node: str | None = None
    effect: str


class ErrorDetail(BaseModel):
    loc: str
    msg: str


class DecisionOut(BaseModel):
    order_id: str
    status: Literal["routed", "held", "error"]
    reason: str | None = None
    errors: list[ErrorDetail] | None = None
    shipments: list[ShipmentOut]
    cost: float
    days: int
    objective: str | None
    tags: list[str]
    playbook: dict
    trace: list[TraceOut]
    nodes: dict[str, str]


class ErrorOut(BaseModel):
    error: str
    details: list[dict] = []


class DiagnosticOut(BaseModel):
    line: int
    column: int
    severity: Literal["error", "warning"]
    message: str


class CheckOut(BaseModel):
    version: str
    ok: bool
    diagnostics: list[DiagnosticOut]


class NotUsableOut(BaseModel):
    units: int
    why: str


class AvailabilityOut(BaseModel):
    sku: str
    total: int
    nodes: dict[str, int]
    kept: dict[str, int]
    by_kind: dict[str, int]
    not_usable: dict[str, NotUsableOut]


class MetricsOut(BaseModel):
    """Metrics over a set of decisions (engine.metrics.summarize)."""
    orders: int
    routed: int
    held: int
    errors: int
    split_rate: float
    shipments_per_order: float
    total_cost: float
    mean_cost: float
    mean_distance_km: float
    mean_days: float
    units_shipped: int
    store_units: int
    node_usage: dict[str, int]
    hidden_stock_share: float | None = None


class RunOut(BaseModel):
    name: str
    version: str
    file: str
    with_nodes: list[str] | None = None
    without_nodes: list[str] | None = None
    metrics: MetricsOut


class DifferenceOut(BaseModel):
    order_id: str
    changes: list[str]
    baseline: DecisionOut
    candidate: DecisionOut


class SimulateOut(BaseModel):
    orders: int
    repeats: int = Field(description="orders left out as exact repeats of an earlier order (same id, same order)")
    now: str | None = Field(description="the time the orders without created_at were read at (ISO 8601); "
                                        "null when every order has created_at")
    candidate: RunOut
    baseline: RunOut | None
    delta: dict[str, float] | None
    differing: int
    differences: list[DifferenceOut]


class ShadowDifferenceOut(BaseModel):
    order_id: str
    changes: list[str]
    live: DecisionOut
    shadow: DecisionOut


class ShadowReportOut(BaseModel):
    version: str
    orders: int
    differing: int
    metrics: dict[str, MetricsOut] | None = None
    delta: dict[str, float] | None = None
    differences: list[ShadowDifferenceOut]


MODELS = [Order, Network, Catalog, StockCount, StockAdjustment, PlaybookIn, SimulateIn, DecisionOut, ErrorOut,
          CheckOut, AvailabilityOut, SimulateOut, ShadowReportOut]


def _ref(model) -> dict:
    return {"$ref": f"#/components/schemas/{model.__name__}"}


def _json(model_or_schema, description: str = "") -> dict:
    schema = _ref(model_or_schema) if isinstance(model_or_schema, type) else model_or_schema
    return {"description": description or "OK", "content": {"application/json": {"schema": schema}}}


def _busy() -> dict:
    """503: the database stayed locked past the busy timeout."""
    answer = _json(ErrorOut, "the database is busy: retry after Retry-After seconds")
    answer["headers"] = {"Retry-After": {"required": True, "description": "seconds to wait before retrying",
                                         "schema": {"type": "string", "pattern": "^[0-9]+$"}}}
    return answer


def _op(summary: str, responses: dict, body=None, write: bool = False, params: list[str] = ()) -> dict:
    operation = {"summary": summary, "responses": {str(k): v for k, v in responses.items()}}
    if body is not None:
        operation["requestBody"] = {"required": True, "content": {"application/json": {"schema": body}}}
        operation["responses"].setdefault("400", _json(ErrorOut, "the body is not JSON (or not UTF-8 text)"))
        operation["responses"].setdefault("413", _json(ErrorOut, "the body is larger than the limit"))
    operation["responses"]["503"] = _busy()
    if write:
        operation["security"] = [{"bearer": []}]
        operation["responses"].setdefault("401", _json(ErrorOut, "a token is needed"))
        operation["responses"].setdefault("403", _json(ErrorOut, "the token is not valid"))
    if params:
        operation["parameters"] = [{"name": p, "in": "path", "required": True, "schema": {"type": "string"}}
                                   for p in params]
    operation["responses"].setdefault("422", _json(ErrorOut, "invalid input"))
    return operation


@cache
def openapi_document() -> dict:
    _, definitions = models_json_schema([(m, "validation") for m in MODELS],
                                        ref_template="#/components/schemas/{model}")
    error = _json(ErrorOut, "error")
    anything = {"type": "object"}
    not_loaded = _json(ErrorOut, "nothing to route with yet: no network or catalog, or no active playbook")
    paths = {
        "/health": {"get": _op("Liveness and the active playbook version", {200: _json(anything)})},
        "/route": {"post": _op("Decision for an order, nothing reserved (dry run)",
                               {200: _json(DecisionOut), 409: not_loaded}, _ref(Order))},
        "/orders": {"post": _op("Route and reserve atomically; idempotent on the order id",
                                {201: _json(DecisionOut, "placed"), 200: _json(DecisionOut, "a repeat"),
                                 409: _json(ErrorOut, "the id was used for a different order, or nothing "
                                            "to route with yet")}, _ref(Order), write=True)},
        "/orders/{order_id}": {"get": _op("The stored decision with its explanation",
                                          {200: _json(anything), 404: error}, params=["order_id"])},
        "/orders/{order_id}/cancel": {"post": _op("Release the order's reservations (a repeat answers the first "
                                                  "answer; 409 for a shipped order)",
                                                  {200: _json(anything), 404: error, 409: error},
                                                  write=True, params=["order_id"])},
        "/orders/{order_id}/ship": {"post": _op("Shipment confirmed: on_hand and reserved go down (a repeat "
                                                "answers the first answer; 409 for an order not routed)",
                                                {200: _json(anything), 404: error, 409: error},
                                                write=True, params=["order_id"])},
        "/availability/{sku}": {"get": _op("Network availability after reserves and keep rules",
                                           {200: _json(AvailabilityOut), 404: error,
                                            409: _json(ErrorOut, "no network or catalog loaded yet")},
                                           params=["sku"])},
        "/stock": {"put": _op("Absolute counts from a WMS/POS",
                              {200: _json(anything), 409: error},
                              {"type": "array", "items": _ref(StockCount)}, write=True)},
        "/stock/adjust": {"post": _op("Stock deltas, applied once per event_id",
                                      {201: _json(anything), 200: _json(anything, "a repeat"), 409: error},
                                      _ref(StockAdjustment), write=True)},
        "/network": {"get": _op("The network", {200: _json(Network), 404: error}),
                     "put": _op("Replace the network (409 if it would strand reserved units or break the "
                                "live playbook)", {200: _json(anything), 409: error}, _ref(Network), write=True)},
        "/catalog": {"get": _op("The catalog", {200: _json(Catalog), 404: error}),
                     "put": _op("Replace the catalog (409 if it would drop an item with units reserved for "
                                "open orders)", {200: _json(anything), 409: error}, _ref(Catalog), write=True)},
        "/playbooks/check": {"post": _op("Diagnostics for playbook text",
                                         {200: _json(CheckOut), 422: _json(
                                             {"anyOf": [_ref(CheckOut), _ref(ErrorOut)]},
                                             "diagnostics with errors, or a body that is not a playbook")},
                                         _ref(PlaybookIn))},
        "/playbooks": {"get": _op("Playbook versions", {200: _json(anything)}),
                       "post": _op("Store a new version (must check clean)",
                                   {201: _json(anything), 200: _json(anything)}, _ref(PlaybookIn), write=True)},
        "/playbooks/active": {"get": _op("The live playbook", {200: _json(anything), 404: error})},
        "/playbooks/{version}/activate": {"post": _op("Make a version live (roll back = activate an older one)",
                                                      {200: _json(anything), 404: error}, write=True,
                                                      params=["version"])},
        "/playbooks/{version}/shadow": {
            "post": _op("Evaluate this version beside the live one on every order",
                        {200: _json(anything), 404: error, 409: error}, write=True, params=["version"]),
            "delete": _op("Stop shadowing", {200: _json(anything), 404: error}, write=True, params=["version"]),
            "get": _op("Shadow report: counts, live and shadow metrics with their deltas, and the orders "
                       "decided differently", {200: _json(ShadowReportOut), 404: error}, params=["version"])},
        "/simulate": {"post": _op("What-if over posted orders against a copy of the current stock: a "
                                  "candidate playbook and/or node changes against a baseline; metrics, "
                                  "deltas and the orders decided differently (nothing reserved or stored)",
                                  {200: _json(SimulateOut), 404: error, 409: not_loaded}, _ref(SimulateIn))},
        "/metrics": {"get": {"summary": "Prometheus metrics", "responses": {"200": {
            "description": "Prometheus text", "content": {"text/plain": {"schema": {"type": "string"}}}}}}},
    }
    return {
        "openapi": "3.1.0",
        "info": {"title": "Steve order routing", "version": "1.0.0",
                 "description": "Route orders with a playbook; reserve stock atomically."},
        "paths": paths,
        "components": {"schemas": definitions.get("$defs", {}),
                       "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}}},
    }
