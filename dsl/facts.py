"""What a rule can look at: every fact, its fields, their kinds and scopes.

This table is the single source of truth for the checker (unknown names,
kinds compared), the compiler (scopes) and docs/language.md.
"""

from __future__ import annotations

ORDER, LINE, CANDIDATE = "order", "line", "candidate"
SCOPE_RANK = {ORDER: 0, LINE: 1, CANDIDATE: 2}

# kinds of values: string, number, money, percent, distance, weight, duration,
# day (today: a weekday or a date), time, kind (node kind), tags, choice:<a|b>
FACTS: dict[str, dict[str, str]] = {
    "order": {
        "id": "string", "channel": "string", "total": "money", "weight": "weight",
        "lines": "number", "units": "number", "delivery": "choice:ship|pickup",
        "pickup_node": "string", "service": "choice:standard|express",
        "ship_to.country": "string", "ship_to.state": "string", "ship_to.zip": "string",
        "tags": "tags",
    },
    "customer": {"id": "string", "tier": "string", "tags": "tags", "orders": "number"},
    "today": {"": "day"},
    "now": {"": "time"},
    "item": {
        "sku": "string", "name": "string", "qty": "number", "price": "money",
        "margin": "percent", "category": "string", "weight": "weight", "tags": "tags",
    },
    "node": {
        "id": "string", "name": "string", "kind": "kind", "region": "string",
        "state": "string", "country": "string", "tags": "tags", "load": "percent",
        "handling": "money", "capacity": "number",
    },
    "stock": {"on_hand": "number", "reserved": "number", "available": "number"},
    "distance": {"": "distance"},
    "transit": {"": "duration"},
    "cost": {"": "money"},
}
FACTS["line"] = FACTS["item"]

FACT_SCOPE = {
    "order": ORDER, "customer": ORDER, "today": ORDER, "now": ORDER,
    "item": LINE, "line": LINE,
    "node": CANDIDATE, "stock": CANDIDATE, "distance": CANDIDATE,
    "transit": CANDIDATE, "cost": CANDIDATE,
}

# Facts that carry tags, so `X has tag "t"` works on them.
TAGGED = {"order", "customer", "item", "line", "node"}

# Fields that can never be negative (used to spot rules that cannot fire).
NON_NEGATIVE = {
    ("order", "total"), ("order", "weight"), ("order", "lines"), ("order", "units"),
    ("customer", "orders"), ("item", "qty"), ("item", "price"), ("item", "weight"),
    ("line", "qty"), ("line", "price"), ("line", "weight"),
    ("node", "load"), ("node", "handling"), ("node", "capacity"),
    ("stock", "on_hand"), ("stock", "reserved"), ("stock", "available"),
    ("distance", ""), ("transit", ""), ("cost", ""),
}

# A rule sees a candidate only where the node has some of the item, and every
# order line asks for at least one unit.
AT_LEAST_ONE = {("stock", "available"), ("stock", "on_hand"), ("item", "qty"), ("line", "qty"),
                ("order", "lines"), ("order", "units")}

WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
DAY_WORDS = WEEKDAYS + ("weekday", "weekend")
NODE_KINDS = ("warehouse", "store", "3pl", "vendor", "transit")
OBJECTIVES = ("cost", "speed", "balanced")

ORDERED_KINDS = {"number", "money", "percent", "distance", "weight", "duration", "day", "time"}

# Which literal kinds each field kind accepts.
ACCEPTS = {
    "string": {"string"},
    "number": {"number"},
    "money": {"money", "number"},
    "percent": {"percent", "number"},
    "distance": {"distance"},
    "weight": {"weight"},
    "duration": {"duration", "number"},
    "day": {"word", "date"},
    "time": {"time"},
    "kind": {"word", "string"},
    "tags": set(),
}

DESCRIBE = {
    "string": "text", "number": "a number", "money": "money", "percent": "a percentage",
    "distance": "a distance", "weight": "a weight", "duration": "a duration",
    "date": "a date", "time": "a time of day", "day": "a day", "word": "a word",
    "kind": "a node kind", "tags": "tags",
}

EXAMPLE = {
    "string": '"text"', "number": "3", "money": "$4.50", "percent": "40%",
    "distance": "1500 km", "weight": "20 kg", "duration": "2 days", "day": "tuesday",
    "time": "15:00", "kind": "store",
}

# Actions and where they make sense.
CANDIDATE_ACTIONS = {"exclude_node", "avoid_node", "prefer_node", "penalize_node", "keep"}
SETTING_ACTIONS = {   # action kind -> the setting it decides (conflicts are resolved by priority)
    "optimize": "objective", "max_shipments": "max shipments", "split_penalty": "split penalty",
    "use_carrier": "carrier", "route_to_node": "route", "route_to_pickup": "route",
}
SETTABLE_FACTS = ("order", "customer")

# Fields whose values are node ids: text compared with them (or set into
# them) must name a node of the network, as `exclude node "ID"` must.
NODE_ID_FIELDS = {("node", "id"), ("order", "pickup_node")}


def field_kind(parts: tuple[str, ...], derived: dict[tuple[str, str], str] | None = None) -> str | None:
    """The kind of the field a path names, or None when unknown."""
    fact = parts[0].lower()
    fields = FACTS.get(fact)
    if fields is None:
        return None
    name = ".".join(parts[1:]).lower()
    if name in fields:
        return fields[name]
    if derived and (fact, name) in derived:
        return derived[(fact, name)]
    return None


def scope_of(fact: str) -> str:
    return FACT_SCOPE.get(fact.lower(), ORDER)
