"""The data Steve routes with: network, catalog, stock and orders (pydantic).

Shapes follow docs/data.md (the v1 contract); unknown keys are kept out of
the way (ignored) so that upstream systems can send richer documents.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from typing import Literal

import functools
import types
import typing

from pydantic import (BaseModel, ConfigDict, Field, PrivateAttr, ValidationError, ValidationInfo, field_validator,
                      model_validator)
from pydantic_core import InitErrorDetails, PydanticCustomError

from ._kept import kept

NodeKind = Literal["warehouse", "store", "3pl", "vendor", "transit"]


@functools.cache
def _kinds(annotation) -> frozenset:
    """The types a field takes, None left out."""
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        return frozenset(typing.get_args(annotation)) - {type(None)}
    return frozenset({annotation})


def json_kinds(model: type[BaseModel], value, info: ValidationInfo):
    """pydantic's lax mode turns true/false into 1/0 for a number, 0, 1, "no"
    or "yes" into a flag and a number into a date (seconds since 1970).
    Refuse them, so that `"on_hand": true`, `"ships": "no"` or `"eta": 0` is
    an error rather than one unit, a guess or a day in 1970."""
    if info.field_name is None:
        return value
    check = _CHECKS.get((model, info.field_name))
    if check is None:
        check = _CHECKS[model, info.field_name] = kind_check(model, info.field_name)
    if check == _ANY:
        return value
    if check == _NUMBER and isinstance(value, bool):
        raise ValueError("a number is needed here, not true or false")
    if check == _FLAG and not isinstance(value, bool):
        raise ValueError("true or false is needed here")
    if check == _DATE and isinstance(value, (int, float)):
        raise ValueError("a date is written as text: 2026-11-27, or 2026-11-27T10:15:00-05:00 with a time")
    return value


_ANY, _NUMBER, _FLAG, _DATE = range(4)
_CHECKS: dict[tuple, int] = {}      # (model class, field) -> what json_kinds checks there


def kind_check(model: type[BaseModel], field: str) -> int:
    """What json_kinds checks in a field: _NUMBER (no true/false), _FLAG
    (true or false only), _DATE (no number) or _ANY (nothing)."""
    kinds = _kinds(model.model_fields[field].annotation)
    return (_NUMBER if kinds and kinds <= {int, float} else
            _FLAG if kinds == {bool} else
            _DATE if kinds & {dt.date, dt.datetime} and not kinds & {int, float, str} else _ANY)


class _Shape(BaseModel):
    # NaN and infinity (JSON parsers take NaN, Infinity) are refused as "Input
    # should be a finite number" rather than compared with a bound (NaN fails
    # every one: "less than or equal to 90") or let through (Infinity >= 0)
    model_config = ConfigDict(extra="ignore", frozen=True, str_strip_whitespace=True, allow_inf_nan=False)


class _Model(_Shape):
    """A document loaded now and then (network, catalog, stock): json_kinds
    runs on every field."""

    @field_validator("*", mode="before")
    @classmethod
    def _json_kinds(cls, value, info: ValidationInfo):
        return json_kinds(cls, value, info)


def _kinds_of(*fields: str):
    """json_kinds as a before-validator of the named fields only: the parts
    of an order are validated once per order, and a validator on every
    field (a Python call each) cost more than the rest of the validation.
    tests/test_models.py checks that every field json_kinds would check is named."""
    return field_validator(*fields, mode="before")(classmethod(
        lambda cls, value, info: json_kinds(cls, value, info)))


class Node(_Model):
    id: str = Field(min_length=1)
    name: str = ""
    kind: NodeKind = "warehouse"
    lat: float = Field(ge=-90, le=90)
    lon: float = Field(ge=-180, le=180)
    state: str | None = None
    country: str = "US"
    region: str | None = None
    handling: float = Field(default=0.0, ge=0)
    capacity: int | None = Field(default=None, ge=0)
    ships: bool = True
    pickup: bool = False
    status: Literal["live", "shadow", "off"] = "live"
    tags: tuple[str, ...] = ()
    lead_days: int = Field(default=0, ge=0)
    eta: dt.date | None = None
    load: float | None = Field(default=None, ge=0, description="share of today's capacity already used (0-1)")


class Carrier(_Model):
    id: str = Field(min_length=1)
    name: str = ""
    base: float = Field(ge=0)
    per_kg: float = Field(default=0.0, ge=0)
    per_1000km: float = Field(default=0.0, ge=0)
    km_per_day: float = Field(gt=0)
    min_days: int = Field(default=1, ge=0)
    states: tuple[str, ...] | None = None

    def serves(self, from_state: str | None, to_state: str | None) -> bool:
        if self.states is None:
            return True
        return from_state in self.states and to_state in self.states


def _duplicate(title: str, loc: tuple, value: str, message: str) -> None:
    """Raise a validation error at `loc` (the second of two equal names),
    not at the whole document."""
    raise ValidationError.from_exception_data(title, [InitErrorDetails(
        type=PydanticCustomError("duplicate", "{message}", {"message": message}), loc=loc, input=value)])


class Network(_Model):
    currency: str = "USD"
    nodes: tuple[Node, ...]
    carriers: tuple[Carrier, ...] = Field(min_length=1)

    @model_validator(mode="after")
    def _unique_ids(self) -> "Network":
        for label, field, ids in (("node", "nodes", [n.id for n in self.nodes]),
                                  ("carrier", "carriers", [c.id for c in self.carriers])):
            seen: dict[str, int] = {}
            for number, item in enumerate(ids):
                if item in seen:
                    _duplicate("Network", (field, number, "id"), item,
                               f"{label} id {item!r} appears twice (first at {field}.{seen[item]})")
                seen[item] = number
        return self

    _node_index: dict = PrivateAttr(default_factory=dict)

    def node(self, node_id: str) -> Node | None:
        if not self._node_index:
            self._node_index.update((n.id, n) for n in self.nodes)
        return self._node_index.get(node_id)


class Item(_Model):
    sku: str = Field(min_length=1)
    name: str = ""
    weight: float = Field(default=0.0, ge=0)
    price: float = Field(default=0.0, ge=0)
    margin: float | None = None
    category: str | None = None
    tags: tuple[str, ...] = ()
    aliases: tuple[str, ...] = ()


class Catalog(_Model):
    items: tuple[Item, ...]

    @model_validator(mode="after")
    def _unique_names(self) -> "Catalog":
        seen: dict[str, str] = {}
        for number, item in enumerate(self.items):
            for place, name in ((("sku",), item.sku), *((("aliases", k), a) for k, a in enumerate(item.aliases))):
                loc = ("items", number, *place)
                if name in seen and seen[name] != item.sku:
                    _duplicate("Catalog", loc, name, f"{name!r} names both {seen[name]} and {item.sku}")
                if name in seen and name == item.sku and seen[name] == item.sku and name not in item.aliases:
                    _duplicate("Catalog", loc, name, f"sku {name!r} appears twice")
                seen[name] = item.sku
        return self

    def resolve(self, name: str) -> Item | None:
        """The item a sku or any channel alias names."""
        return kept(_ALIASES, self, _names, limit=64).get(name)


# catalog -> name -> item: a plain dict is read faster than a pydantic
# private attribute (once per order line)
_ALIASES: dict[int, tuple] = {}


def _names(catalog: Catalog) -> dict[str, Item]:
    """Every sku and channel alias of the catalog -> its item (a sku wins over an alias)."""
    index: dict[str, Item] = {}
    for item in catalog.items:
        for alias in item.aliases:
            index.setdefault(alias, item)
    for item in catalog.items:
        index[item.sku] = item
    return index


class StockRow(_Model):
    node: str = Field(min_length=1)
    sku: str = Field(min_length=1)
    on_hand: int = Field(ge=0)
    reserved: int = Field(default=0, ge=0)


class Customer(_Shape):
    id: str | None = None
    tier: str | None = None
    tags: tuple[str, ...] = ()
    orders: int = Field(default=0, ge=0)

    _kinds = _kinds_of("orders")


class ShipTo(_Shape):
    country: str = "US"
    state: str | None = None
    zip: str | None = Field(default=None, json_schema_extra={  # a number is taken as its digits
        "anyOf": [{"type": "string"}, {"type": "integer"}, {"type": "null"}]})
    city: str | None = None
    lat: float | None = Field(default=None, ge=-90, le=90)
    lon: float | None = Field(default=None, ge=-180, le=180)

    _kinds = _kinds_of("lat", "lon")

    @field_validator("zip", mode="before")
    @classmethod
    def _zip_text(cls, value):
        return str(value) if isinstance(value, int) and not isinstance(value, bool) else value


class OrderLine(_Shape):
    sku: str = Field(min_length=1)
    qty: int = Field(ge=1, le=1_000_000)
    price: float | None = Field(default=None, ge=0)
    # optional per-order overrides of catalog fields
    weight: float | None = Field(default=None, ge=0)
    margin: float | None = None
    category: str | None = None
    tags: tuple[str, ...] | None = None

    _kinds = _kinds_of("qty", "price", "weight", "margin")


MAX_LINES = 500


class Order(_Shape):
    id: str = Field(min_length=1, max_length=200)
    channel: str | None = None
    created_at: dt.datetime | None = None
    customer: Customer = Customer()
    ship_to: ShipTo = ShipTo()
    delivery: Literal["ship", "pickup"] = "ship"
    pickup_node: str | None = Field(default=None, validate_default=True)
    service: str = "standard"
    lines: tuple[OrderLine, ...] = Field(min_length=1, max_length=MAX_LINES)
    tags: tuple[str, ...] = ()

    _kinds = _kinds_of("created_at")

    @field_validator("service", mode="before")
    @classmethod
    def _service_in_lower_case(cls, value):
        # the playbook reads the service in any case (`order.service is
        # express`, `is "Express"`): so does the order, where "Express" from
        # a shop's export is express, not a third service no rule can name
        # (`delivery` is one of two words, as the schema says: "Ship" is refused)
        return value.strip().lower() if isinstance(value, str) else value

    @field_validator("created_at")
    @classmethod
    def _created_in_range(cls, value: dt.datetime | None) -> dt.datetime | None:
        # year 1 or 9999 overflow when moved to another timezone (a 500, not a decision)
        if value is not None and not 1900 <= value.year <= 9000:
            raise ValueError("a time between the years 1900 and 9000")
        return value

    @field_validator("pickup_node")
    @classmethod
    def _pickup_has_node(cls, value: str | None, info: ValidationInfo) -> str | None:
        # a field validator (not a model one), so that the error's loc is pickup_node
        if info.data.get("delivery") == "pickup" and not value:
            raise ValueError("a pickup order needs pickup_node: the node where the customer collects it")
        return value


def order_key(order: Order) -> str:
    """What makes two orders with one id the same order: the order as Steve
    reads it, before an arrival time is stamped, with the fields left at
    their defaults left out — so `"pickup_node": null`, `"tags": []` or
    `"delivery": "ship"` sent or not, key order, whitespace around text,
    `240` or `240.0`, and keys Steve ignores make no difference, and a field
    added to Order later (with a default) does not change the key of orders
    stored before. A retry of POST /orders must repeat it (server.service),
    and a what-if skips an order that repeats an earlier one
    (engine.simulation.distinct_orders). The sha256 of the canonical JSON
    (sorted keys, no spaces), as server.store.digest writes it: the keys of
    orders already stored depend on these bytes."""
    document = order.model_dump(mode="json", exclude_defaults=True)
    text = json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()
