"""Peers for bench/run.py: the bench playbook's rules without Steve's
matchers, plugged into engine.route as `matcher=` so that everything else
(facts, allocation, explanations) is the same code.

* `handwritten(rulebook)`: the 39 rules of bench/data/bench.playbook written
  by hand as plain Python over the fact dictionaries, with the tag/set chains
  resolved by the programmer (who knows which rule feeds which). This is the
  floor a rules engine cannot beat. It fires the same (rule, entity) pairs as
  the playbook; their order in the trace may differ (candidate by candidate
  instead of rule by rule), which changes no allocation.
* `durable_dsl(rulebook)`: the same rules as a durable_rules ruleset written
  with durable's own Python DSL (`with ruleset(...)`, `@when_all`, `m.x ==
  ...`), one DSL rule per playbook rule, built from the compiled conditions.
  Every entity is asserted as a flat fact in a session of its own per round
  (durable cannot compare two fields of one fact, so the one such test, `node.state is
  order.ship_to.state`, is precomputed into the fact); the matches are put in
  agenda order in Python, a firing that tags or sets starts a new round, and
  each round's session is deleted. Only for this bench: Steve's own durable
  matcher is engine/durable_engine.py.
"""

from __future__ import annotations

import itertools
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from dsl.compiler import AllOf, AnyOf, Check, NotOf  # noqa: E402
from engine.matching import Agenda, Firing  # noqa: E402

import generate  # noqa: E402


# ---- hand-written ---------------------------------------------------------------------------

def handwritten(rulebook):
    rule = {r.name: r for r in rulebook.rules}
    hubs = {}
    regions = []
    for region, states in generate.REGIONS.items():
        name = f"{region.title()} orders prefer {region} hubs"
        if name in rule:
            regions.append((frozenset(states), rule[name]))
    del hubs
    region_nodes = {}
    for states, r in regions:
        region_nodes[r.name] = frozenset(r.condition.items[1].values)   # the hub ids of the group
    R = rule.__getitem__

    def run(_rulebook, base):
        o = base.order
        order_entity = base.entities("order")[0]
        out = []
        add = out.append

        def tag(key, value):
            o[key] = frozenset(o.get(key) or frozenset()) | {value}

        # order rules, with the chains resolved by hand
        if o["order.delivery"] == "pickup":
            add(Firing(R("Click and collect"), order_entity))
        date, weekday = o["today.date"], o["today.weekday"]
        if "2026-11-27" <= date <= "2026-11-30":
            add(Firing(R("Black Friday doorbusters"), order_entity))
            tag("order.tags", "peak")
        tier = o["customer.tier"]
        if tier == "member" or o["order.service"] == "express":
            add(Firing(R("Members get the quickest delivery"), order_entity))
        if tier == "VIP":
            add(Firing(R("VIP customers get the quickest delivery"), order_entity))
            tag("customer.tags", "vip")
        if weekday == "friday":
            add(Firing(R("Friday pickup fee on Southern Express"), order_entity))
        if o["order.total"] < 50:
            add(Firing(R("Small baskets in one box"), order_entity))
        if "2026-12-14" <= date <= "2026-12-24":
            add(Firing(R("Holiday rush"), order_entity))
            tag("order.tags", "holiday")
        if o["customer.orders"] >= 20:
            add(Firing(R("Loyal customers"), order_entity))
            tag("customer.tags", "loyal")
        if o["order.channel"] == "marketplace":
            add(Firing(R("Marketplace orders get their own lane"), order_entity))
            o["order.lane"] = "marketplace"
        tags, ctags = o["order.tags"], o["customer.tags"]
        if "vip" in ctags and "gift" in tags:
            add(Firing(R("VIP gifts are white glove"), order_entity))
            tag("order.tags", "white glove")
            tags = o["order.tags"]
        if "gift" in tags:
            add(Firing(R("Gifts are wrapped at the northeast hubs"), order_entity))
        if weekday in ("saturday", "sunday"):
            add(Firing(R("Weekend fee on AirJet"), order_entity))
        if "peak" in tags and o["order.units"] >= 6:
            add(Firing(R("Peak big baskets go in at most two boxes"), order_entity))
        if "white glove" in tags:
            add(Firing(R("White glove orders ship complete"), order_entity))
        if "loyal" in ctags:
            add(Firing(R("Loyal customers split less"), order_entity))
        if o.get("order.lane") == "marketplace":
            add(Firing(R("The marketplace lane avoids air"), order_entity))
        state = o["order.ship_to.state"]
        if state in ("AK", "HI"):
            add(Firing(R("Alaska and Hawaii fly"), order_entity))
        # line rules
        for entity in base.lines:
            f = entity.facts
            if f["item.category"] == "paddling":
                add(Firing(R("Kayaks ship from the maker"), entity))
            if "hazmat" in f["item.tags"]:
                add(Firing(R("Fuel goes by ground"), entity))
            if f["item.qty"] >= 6:
                add(Firing(R("In-transit stock for bulk buys"), entity))
        # candidate rules
        holiday, peak, late = "holiday" in tags, "peak" in tags, o["now"] > 1320
        mine = [(nodes, R(name)) for states, r in regions if state in states
                for name, nodes in ((r.name, region_nodes[r.name]),)]
        lines = [e.facts for e in base.lines]
        for entity in base.candidates:
            c, i = entity.facts, lines[entity.line]
            kind, available, distance, tags_n = c["node.kind"], c["stock.available"], c["distance"], c["node.tags"]
            store = kind == "store"
            if store and available <= 3:
                add(Firing(R("Leave stores their last units"), entity))
            if distance > 2500:
                add(Firing(R("Far nodes only when needed"), entity))
            margin = i["item.margin"]
            if store and margin is not None and margin >= 0.5:
                add(Firing(R("Premium items leave from warehouses"), entity))
            if "reserve" in tags_n:
                add(Firing(R("The back room is the last resort"), entity))
            if holiday and store:
                add(Firing(R("Stores keep stock for walk-ins in the rush"), entity))
            for nodes, r in mine:
                if c["node.id"] in nodes:
                    add(Firing(r, entity))
            if c["node.state"] == state and state is not None and kind != "vendor":
                add(Firing(R("Ship in-state when we can"), entity))
            itags = i["item.tags"]
            if store and "hazmat" in itags:
                add(Firing(R("Fuel never ships from stores"), entity))
            if "oversize" in itags and kind in ("store", "3pl"):
                add(Firing(R("Oversize items stay off the shop floor"), entity))
            if "fragile" in itags and kind != "warehouse":
                add(Firing(R("Fragile items from the big warehouses"), entity))
            if store and c["node.load"] > 0.85:
                add(Firing(R("Busy stores are spared"), entity))
            if "outlet" in tags_n and i["item.price"] > 150:
                add(Firing(R("Outlet stores only for cheap lines"), entity))
            if "flagship" in tags_n:
                add(Firing(R("Flagships keep display units"), entity))
            if peak and store and available <= 5:
                add(Firing(R("Peak orders keep stores for walk-ins"), entity))
            if late and store:
                add(Firing(R("Late-night orders leave from warehouses"), entity))
            if i["item.weight"] > 10 and distance > 1500:
                add(Firing(R("Heavy items avoid far nodes"), entity))
        return out
    return run


# ---- durable_rules' own DSL -----------------------------------------------------------------

MISSING = "~"                  # stands for a missing value in a durable fact


def _prop(key: str) -> str:
    return "k_" + key.replace(".", "_")


class _Translator:
    """Compiled conditions -> durable.lang expressions on flat facts."""

    def __init__(self):
        self.tags: dict[tuple[str, str], str] = {}
        self.refs: dict[tuple[str, str, str], str] = {}
        self.keys: set[str] = set()

    def expression(self, cond, m):
        if isinstance(cond, Check):
            return self.check(cond, m)
        if isinstance(cond, NotOf):
            return self.expression(self.negate(cond.item), m)
        parts = [self.expression(item, m) for item in cond.items]
        if not parts:
            return None
        joined = parts[0]
        for part in parts[1:]:
            if part is None or joined is None:
                joined = part if joined is None else joined
                continue
            joined = (joined & part) if isinstance(cond, AllOf) else (joined | part)
        return joined

    def negate(self, cond):
        if isinstance(cond, NotOf):
            return cond.item
        if isinstance(cond, AllOf):
            return AnyOf(tuple(NotOf(i) for i in cond.items))
        if isinstance(cond, AnyOf):
            return AllOf(tuple(NotOf(i) for i in cond.items))
        opposite = {"eq": "ne", "ne": "eq", "in": "not_in", "not_in": "in", "has_tag": "has_no_tag",
                    "has_no_tag": "has_tag"}
        if cond.op in opposite:
            return Check(cond.key, opposite[cond.op], cond.values, cond.ref)
        raise ValueError(f"the bench playbook negates no {cond.op}")

    def check(self, check: Check, m):
        op = check.op
        if op in ("has_tag", "has_no_tag"):
            name = self.tags.setdefault((check.key, check.values[0]), f"t{len(self.tags)}")
            return getattr(m, name) == (1 if op == "has_tag" else 0)
        if check.ref is not None:
            name = self.refs.setdefault((check.key, check.ref, op), f"r{len(self.refs)}")
            return getattr(m, name) == 1
        self.keys.add(check.key)
        field = getattr(m, _prop(check.key))
        values = check.values
        if op == "eq":
            return field == values[0]
        if op == "ne":
            return field != values[0]
        if op == "in":
            out = field == values[0]
            for v in values[1:]:
                out = out | (field == v)
            return out
        if op == "not_in":
            out = field != values[0]
            for v in values[1:]:
                out = out & (field != v)
            return out
        if op == "lt":
            return field < values[0]
        if op == "le":
            return field <= values[0]
        if op == "gt":
            return field > values[0]
        if op == "ge":
            return field >= values[0]
        if op == "between":
            return (field >= values[0]) & (field <= values[1])
        raise ValueError(op)


_SERIAL = itertools.count()


def _plain(value):
    if value is None:
        return MISSING
    if isinstance(value, float):
        return 0.0 if abs(value) < 1e-4 else round(value, 4)
    if isinstance(value, frozenset):
        return MISSING
    return value


def durable_dsl(rulebook):
    from durable import engine as durable_engine_module
    from durable import lang
    from durable.lang import m, ruleset, when_all

    class SyncHost(durable_engine_module.Host):
        def _run(self):          # no background dispatch threads: actions run in the caller
            return None

    if lang._main_host is None:
        lang._main_host = SyncHost()
    name = f"bench_dsl_{next(_SERIAL)}"
    translator = _Translator()
    hits: dict[str, list] = {}
    rules = list(rulebook.rules)
    scope_code = {"order": "o", "line": "l", "candidate": "c"}

    def recorder(position):
        def action(c):
            hits.setdefault(c.m.sid, []).append((position, c.m.id))
        return action

    with ruleset(name):
        for position, r in enumerate(rules):
            expression = translator.expression(r.condition, m)
            scoped = m.sc == scope_code[r.scope]
            when_all(scoped if expression is None else (scoped & expression))(recorder(position))
        # every fact must match some rule or durable refuses the whole batch
        when_all(m.sc == "z")(lambda c: None)
        when_all(+m.sc)(lambda c: None)
    lang.get_host()
    keys = sorted(translator.keys)
    tag_props = list(translator.tags.items())
    ref_props = list(translator.refs.items())

    def fact(sid, entity_id, scope, view):
        out = {"sid": sid, "id": entity_id, "sc": scope}
        for key in keys:
            out[_prop(key)] = _plain(view.get(key))
        for (key, tag), prop in tag_props:
            value = view.get(key)
            out[prop] = 1 if value is not None and tag in value else 0
        for (key, ref, op), prop in ref_props:
            a, b = view.get(key), view.get(ref)
            out[prop] = 1 if (a is not None and b is not None and (a == b if op == "eq" else a != b)) \
                or (op == "ne" and (a is None or b is None)) else 0
        return out

    def run(_rulebook, base):
        agenda = Agenda(base)
        entity_order = {}
        scopes = {"o": [base.entities("order")[0]], "l": base.lines, "c": base.candidates}
        for code, entities in scopes.items():
            for number, entity in enumerate(entities):
                entity_order[entity.id] = (entity, number)
        while True:
            sid = f"{name}-{next(_SERIAL)}"
            facts = [fact(sid, e.id, code, base.view(e)) for code, entities in scopes.items() for e in entities]
            try:
                lang.assert_facts(name, facts)
                matched = hits.pop(sid, [])
            finally:
                lang.delete_state(name, sid)
            by_rule: dict[int, list] = {}
            for position, entity_id in matched:
                by_rule.setdefault(position, []).append(entity_order[entity_id])
            restart = False
            for position, r in enumerate(rules):
                for entity, _ in sorted(by_rule.get(position, ()), key=lambda pair: pair[1]):
                    if agenda.pending(r, entity) and agenda.fire(r, entity):
                        restart = True
                        break
                if restart:
                    break
            if not restart:
                return agenda.firings
    return run
