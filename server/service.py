"""What the HTTP endpoints do, without HTTP: route, place, cancel and ship
orders; stock counts and adjustments (re-routing held orders when stock
arrives); network, catalog and the playbook lifecycle; availability.

One Service per process. Compiled playbooks, the network and the catalog are
cached and reloaded when their revision in the database changes, so every
worker sees an activation at its next request; each request reads the
revisions inside its own transaction, so it sees the old or the new
playbook, never a mix.
"""

from __future__ import annotations

import datetime as dt
import gc
import json
import re
import sqlite3
import threading
import time
from dataclasses import dataclass
from typing import Callable

import dsl
import engine
from dsl.checker import KnownIds
from engine import limits
from engine.decision import Decision
from engine.matching import holds
from engine.metrics import compare, hidden_share, routed_figures, summarize
from engine.geo import warm as locate_warm
from engine.models import Catalog, Network, Order, order_key
from engine.recheck import EXACT_LINES
from engine.simulation import OrderConflict, WhatIfError, changes, outcome, simulate
from engine.stock import Stock
from .store import Conflict, Invalid, NotFound, Store, StoreError, canonical, compact, digest, is_busy

VERSION = re.compile(r"sha256:[0-9a-f]+")

ORDER_WRITE_STATES = {"routed", "held"}


class NotLoaded(Conflict):
    """Nothing to route with yet (no network or catalog, or no active
    playbook): the request conflicts with what the server holds now (409),
    until they are loaded."""


@dataclass
class Loaded:
    network_rev: int = -1
    catalog_rev: int = -1
    network: Network | None = None
    catalog: Catalog | None = None


class Service:
    def __init__(self, store: Store, matcher: str = "compiled", early_routing: bool = False):
        self.store = store
        self.matcher = engine.matcher_named(matcher)
        self.early_routing = early_routing     # see place() and docs/benchmarks.md
        self.loaded = Loaded()
        self.rulebooks: dict[str, dsl.Rulebook] = {}
        self.lock = threading.RLock()
        self.placer = GroupCommit(self._place_batch)
        # told "kept" or "routed_again" for each order routed early (metrics)
        self.on_early: Callable[[str], None] = lambda outcome: None

    # ---- cached documents ----------------------------------------------------------
    def _documents(self, conn) -> tuple[Network, Catalog, dsl.Rulebook, list[dsl.Rulebook]]:
        network, catalog, active, shadows = self._loaded(conn)
        if active is None:
            message = "no active playbook: POST /playbooks and activate a version first"
            raise NotLoaded(message, _at("playbook", message))
        return network, catalog, self.rulebook(active, conn), [self.rulebook(v, conn) for v in shadows]

    def _loaded(self, conn) -> tuple[Network, Catalog, str | None, tuple[str, ...]]:
        """The network and catalog, the active playbook's version (None when
        there is none) and the shadow versions."""
        network, catalog, active, shadows = self._cached(conn)
        if network is None or catalog is None:
            message = "no network or catalog loaded yet: PUT /network and PUT /catalog first"
            raise NotLoaded(message, [{"loc": name, "msg": f"no {name} loaded yet: PUT /{name}"}
                                      for name, body in (("network", network), ("catalog", catalog))
                                      if body is None])
        return network, catalog, active, shadows

    def _cached(self, conn) -> tuple[Network | None, Catalog | None, str | None, tuple[str, ...]]:
        """_loaded, with None for a document not loaded yet; the network and
        catalog are reloaded when their revision changes."""
        network_rev, catalog_rev, active, shadows = self.store.revisions(conn)
        with self.lock:
            if network_rev != self.loaded.network_rev:
                body = self.store.document("network", conn)
                self.loaded.network = Network.model_validate(body) if body else None
                self.loaded.network_rev = network_rev
            if catalog_rev != self.loaded.catalog_rev:
                body = self.store.document("catalog", conn)
                self.loaded.catalog = Catalog.model_validate(body) if body else None
                self.loaded.catalog_rev = catalog_rev
            return self.loaded.network, self.loaded.catalog, active, shadows

    def rulebook(self, version: str, conn=None) -> dsl.Rulebook:
        with self.lock:
            cached = self.rulebooks.get(version)
        if cached is not None:
            return cached
        row = self.store.playbook(version, conn)
        if row is None:
            raise NotFound(f"no playbook version {version}", _at("version", f"no playbook version {version}"))
        # a later, stricter checker must not stop a stored version from loading: a server
        # whose active version it is could neither start nor place an order
        rulebook = dsl.compile(row["text"], _playbook_file(row["name"]), stored=True)
        with self.lock:
            self.rulebooks[version] = rulebook
        return rulebook

    def _stock_for(self, conn, skus: list[str]) -> Stock:
        stock = Stock()
        stock.levels.update({(node, sku): [on_hand, reserved]
                             for node, sku, on_hand, reserved in self.store.stock_rows(conn, skus)})
        stock.used_today.update(self.store.units_today(conn, _today()))
        return stock

    # ---- orders ---------------------------------------------------------------------
    def route(self, body: dict) -> Decision:
        """Dry run: the decision for an order, nothing reserved or stored."""
        order = Order.model_validate(body)
        with self.store.read() as conn:
            network, catalog, rulebook, _ = self._documents(conn)
            stock = self._stock_for(conn, _skus(order, catalog))
        return engine.route(rulebook, network, catalog, stock, _stamped(order), matcher=self.matcher)

    def place(self, body: dict) -> tuple[dict, bool]:
        """Route and reserve atomically; idempotent on the order id.
        Returns (decision JSON, created).

        Orders that arrive while another is being placed in this process are
        placed together in one write transaction (group commit: one fsync
        for all of them instead of one each), one after the other in arrival
        order, each in a savepoint of its own: the decisions are those of
        placing them one by one, and an order that fails leaves the others
        alone. Every caller gets its answer after the commit.

        With early routing (on unless `STEVE_EARLY_ROUTING=0`), the thread that leads
        a batch routes its orders on a snapshot before it takes the write
        lock (so one worker routes while another writes), and under the
        lock each decision is kept when engine.decides_alike says the stock
        it read has not changed in a way that matters (else the order is
        routed again there)."""
        order, sent_hash, stored, sent = _prepared(body)
        return self.placer.submit((order, sent_hash, stored, sent, None))

    def _route_early(self, order: Order) -> "_Early | None":
        """Route the order on a snapshot before the write lock, so that
        workers route at the same time; under the lock
        engine.decides_alike says whether the decision still holds (else
        it is routed again there). None when there is nothing to do early
        (an order already placed, no playbook, ...: decided under the lock)."""
        if not self.early_routing:
            return None
        try:
            with self.store.snapshot() as conn:
                if self.store.order_row(conn, order.id) is not None:
                    return None
                network, catalog, rulebook, _ = self._documents(conn)
                skus = _skus(order, catalog)
                stock = self._stock_for(conn, skus)
        except (NotLoaded, NotFound, sqlite3.Error):
            return None
        stamped = _stamped(order)
        started = time.monotonic()
        try:
            decision = engine.route(rulebook, network, catalog, stock, stamped, matcher=self.matcher)
        except Exception:       # noqa: BLE001 - routed again under the lock, where it fails alone
            # the batch's leader routes every order of the batch here, outside the
            # orders' own savepoints: one order's failure must not fail the others
            return None
        if decision.status == "error" or time.monotonic() - started >= limits.TIME_LIMIT:
            # bad input is refused again under the lock; an order that ran into the time limit
            # (its plan or reasons cut short) is decided again there, on its own
            return None
        return _Early(rulebook, network, catalog, stock, skus, stamped, decision)

    def _place_batch(self, items: list) -> list:
        """[(order, sent hash, stored body, body as sent, early)] -> [(result, error)] in
        one write transaction."""
        out = []
        if self.early_routing:          # the batch's leader routes it before the write lock
            items = [(order, sent_hash, stored, body, early if early is not None else self._route_early(order))
                     for order, sent_hash, stored, body, early in items]
        with self.store.write() as conn:
            loaded: list = []

            def documents():
                """The documents, read once per batch (nothing in it changes them)."""
                if not loaded:
                    loaded.append(self._documents(conn))
                return loaded[0]

            for number, (order, sent_hash, stored, body, early) in enumerate(items):
                conn.execute(f"SAVEPOINT place_{number}")
                try:
                    result = self._place_one(conn, documents, order, sent_hash, stored, body, early)
                except Exception as error:      # this order's answer; the others go on
                    conn.execute(f"ROLLBACK TO place_{number}")
                    conn.execute(f"RELEASE place_{number}")
                    out.append((None, error))
                else:
                    conn.execute(f"RELEASE place_{number}")
                    out.append((result, None))
        return out

    def _place_one(self, conn, documents: Callable[[], tuple], order: Order, sent_hash: str, stored: str,
                   body: dict | None = None, early: "_Early | None" = None) -> tuple[dict, bool]:
        existing = self.store.order_row(conn, order.id)
        if existing is not None:
            # orders stored before <this commit> hold the hash of the JSON as it was sent:
            # a retry repeating it to the letter still matches them
            if existing["body_hash"] != sent_hash and (body is None or existing["body_hash"] != digest(body)):
                raise Conflict(f"order {order.id} was already placed with different content",
                               _at("id", "this order id was already used for a different order"))
            return json.loads(existing["decision"]), False
        network, catalog, rulebook, shadows = documents()
        skus = _skus(order, catalog)
        stock = self._stock_for(conn, skus)
        if early is not None and early.holds(rulebook, network, catalog, stock, skus):
            decision = early.decision
            self.on_early("kept")
        else:
            if early is not None:
                self.on_early("routed_again")
            decision = engine.route(rulebook, network, catalog, stock, order, matcher=self.matcher)
        document = decision.to_json()
        if decision.status == "error":
            return document, False
        for shadow in shadows:
            self._shadow(conn, shadow, network, catalog, stock, order, document)
        if decision.status == "routed":
            day = _today()
            for shipment in decision.shipments:
                for line in shipment.lines:
                    self.store.reserve(conn, order.id, shipment.node, line.sku, line.qty, day)
        self.store.save_order(conn, order.id, stored, decision.status, document, rulebook.version, sent_hash,
                              body_written=True)
        return document, True

    def _shadow(self, conn, rulebook, network, catalog, stock, order, live: dict) -> None:
        shadow = engine.route(rulebook, network, catalog, stock.copy(), order, matcher=self.matcher).to_json()
        differs = outcome(shadow) != outcome(live)
        conn.execute("INSERT OR REPLACE INTO shadow_runs (version, order_id, live, shadow, differs, at) "
                     "VALUES (?, ?, ?, ?, ?, datetime('now'))",
                     (rulebook.version, order.id, compact(live), compact(shadow), int(differs)))

    def order(self, order_id: str) -> dict:
        with self.store.read() as conn:
            row = self.store.order_row(conn, order_id)
            if row is None:
                raise NotFound(f"no order {order_id}", _at("order_id", f"no order {order_id}"))
            reservations = conn.execute("SELECT node, sku, qty, state FROM reservations WHERE order_id = ? "
                                        "ORDER BY node, sku", (order_id,)).fetchall()
        decision = json.loads(row["decision"])
        decision["state"] = row["state"]
        decision["reservations"] = [dict(zip(("node", "sku", "qty", "state"), r)) for r in reservations]
        return decision

    def cancel(self, order_id: str, actor: str | None) -> dict:
        return self._finish(order_id, shipped=False, actor=actor)

    def ship(self, order_id: str, actor: str | None) -> dict:
        return self._finish(order_id, shipped=True, actor=actor)

    def _finish(self, order_id: str, shipped: bool, actor: str | None) -> dict:
        """Ship or cancel; idempotent: a repeat (the order already shipped,
        or already cancelled) answers what the first did and does nothing."""
        new_state = "shipped" if shipped else "cancelled"
        with self.store.write() as conn:
            row = self.store.order_row(conn, order_id)
            if row is None:
                raise NotFound(f"no order {order_id}", _at("order_id", f"no order {order_id}"))
            state = row["state"]
            if state == new_state:
                return self._finished(order_id, shipped, self.store.released(conn, order_id, shipped))
            if shipped and state != "routed":
                raise Conflict(f"order {order_id} is {state}; only a routed order can be shipped")
            if not shipped and state not in ("routed", "held"):
                raise Conflict(f"order {order_id} is {state}; it cannot be cancelled")
            lines = self.store.release(conn, order_id, shipped)
            self.store.set_order_state(conn, order_id, new_state)
            self.store.audit(conn, actor, "ship order" if shipped else "cancel order", order_id,
                             {"lines": lines})
        if not shipped and lines:
            self.reroute_held({line["sku"] for line in lines}, actor)
        return self._finished(order_id, shipped, lines)

    @staticmethod
    def _finished(order_id: str, shipped: bool, lines: list[dict]) -> dict:
        if shipped:
            return {"order_id": order_id, "state": "shipped", "shipped": lines}
        return {"order_id": order_id, "state": "cancelled", "released": lines}

    def reroute_held(self, skus: set[str] | None, actor: str | None) -> list[dict]:
        """Route held orders again, oldest first, when stock for them arrives.

        This runs after the change that freed the stock has committed, so a
        database that stays locked (busy) must not turn that change into a
        503: rerouting stops, and the orders not reached stay held until
        stock for them changes again."""
        try:
            with self.store.read() as conn:
                held = self.store.held_orders(conn)
        except sqlite3.OperationalError as error:
            if not is_busy(error):
                raise
            return []
        results = []
        for entry in held:
            body = {k: v for k, v in entry["body"].items() if k != "_sent_hash"}
            if skus is not None and not {line["sku"] for line in body["lines"]} & skus:
                with self.store.read() as conn:
                    _, catalog, _, _ = self._documents(conn)
                resolved = {catalog.resolve(line["sku"]).sku for line in body["lines"]
                            if catalog.resolve(line["sku"])}
                if not resolved & skus:
                    continue
            try:
                with self.store.write() as conn:
                    row = self.store.order_row(conn, entry["id"])
                    if row is None or row["state"] != "held":
                        continue
                    network, catalog, rulebook, _ = self._documents(conn)
                    order = Order.model_validate(body)
                    decision = engine.route(rulebook, network, catalog,
                                            self._stock_for(conn, _skus(order, catalog)), order, matcher=self.matcher)
                    if decision.status != "routed":
                        continue
                    for shipment in decision.shipments:
                        for line in shipment.lines:
                            self.store.reserve(conn, order.id, shipment.node, line.sku, line.qty, _today())
                    document = decision.to_json()
                    self.store.save_order(conn, order.id, entry["body"], "routed", document, rulebook.version)
                    self.store.audit(conn, actor, "re-route held order", order.id)
                    results.append(document)
            except sqlite3.OperationalError as error:
                if not is_busy(error):
                    raise
                break
        return results

    # ---- stock ------------------------------------------------------------------------
    def put_stock(self, rows: list[dict], actor: str | None) -> dict:
        with self.store.write() as conn:
            counts = self._known_stock(conn, [(r["node"], r["sku"], r["on_hand"]) for r in rows],
                                       [f"{i}" for i in range(len(rows))])
            _one_row_each(counts)
            changed = self.store.set_on_hand(conn, counts, actor)
        rerouted = self.reroute_held({sku for _, sku, _ in counts}, actor)
        return {"updated": len(changed), "rerouted": [d["order_id"] for d in rerouted]}

    def adjust_stock(self, event_id: str, body: dict, deltas: list[tuple[str, str, int]],
                     actor: str | None) -> tuple[dict, bool]:
        prefixes = ([f"adjustments.{i}" for i in range(len(deltas))]
                    if isinstance(body, dict) and "adjustments" in body else [""])
        with self.store.write() as conn:
            deltas = self._known_stock(conn, deltas, prefixes)
            result, duplicate = self.store.adjust(conn, event_id, body, deltas, actor)
        if duplicate or not any(d > 0 for _, _, d in deltas):
            return result, duplicate
        rerouted = [d["order_id"] for d in self.reroute_held({s for _, s, d in deltas if d > 0}, actor)]
        if rerouted:
            result = dict(result, rerouted=rerouted)
            try:        # a repeat of the event answers this, the whole first answer
                with self.store.write() as conn:
                    self.store.set_event_result(conn, event_id, result)
            except sqlite3.OperationalError as error:
                if not is_busy(error):      # the change has committed: no 503 for it (see reroute_held)
                    raise
        return result, False

    def _known_stock(self, conn, rows: list[tuple[str, str, int]], prefixes: list[str]) -> list[tuple]:
        """Stock rows with their sku normalised (an alias names its item); a
        node the network does not have or an item the catalog does not know
        is refused (422) rather than stored where no order can ever use it."""
        network, catalog = self.store.document("network", conn), self.store.document("catalog", conn)
        nodes = {n["id"] for n in network["nodes"]} if network else None
        names = {}
        if catalog:
            for item in catalog["items"]:
                names.update((alias, item["sku"]) for alias in item.get("aliases", ()))
            names.update((item["sku"], item["sku"]) for item in catalog["items"])
        problems, out = [], []
        for (node, sku, amount), prefix in zip(rows, prefixes):
            at = f"{prefix}." if prefix else ""
            if nodes is not None and node not in nodes:
                problems.append({"loc": f"{at}node", "msg": f"unknown node {node!r}: the network has no such node"})
            if catalog and sku not in names:
                problems.append({"loc": f"{at}sku", "msg": f"unknown item {sku!r}: no sku or channel alias in "
                                                           "the catalog has that name"})
            out.append((node, names.get(sku, sku), amount))
        if problems:
            raise Invalid("stock rows name nodes or items Steve does not know", problems)
        return out

    def availability(self, name: str) -> dict:
        """Units that can be promised, per node. Without an active playbook
        no rule keeps units back, and none allows vendors or in-transit
        stock: those are listed as not usable."""
        with self.store.read() as conn:
            network, catalog, active, _ = self._loaded(conn)
            item = catalog.resolve(name)
            if item is None:
                raise NotFound(f"unknown item {name!r}", _at("sku", "no sku or channel alias in the catalog has that name"))
            rows = self.store.stock_rows(conn, [item.sku])
            rulebook = self.rulebook(active, conn) if active is not None else None
        rules = rulebook.rules if rulebook is not None else []
        keep_rules = [r for r in rules if r.scope == "candidate" and _order_free(r)
                      and any(e.kind in ("keep", "exclude_node") for e in r.effects)]
        nodes, kept, by_kind, not_usable = {}, {}, {}, {}
        allowed = _allowed_kinds(rules, _availability_item_facts(item))
        refused = "no rule allows it for this item on every order" if rulebook else "no active playbook allows it"
        for node_id, sku, on_hand, reserved in sorted(rows):
            node = network.node(node_id)
            if node is None or node.status != "live":
                continue
            available = max(0, on_hand - reserved)
            if not node.ships:          # its units go only to orders collected there, if any
                if available:
                    not_usable[node_id] = {"units": available, "why": "does not ship orders (pickup only)"
                                           if node.pickup else "does not ship orders nor offer pickup"}
                continue
            if node.kind in ("vendor", "transit") and node.kind not in allowed:
                if available:
                    words = "drop-ship vendor" if node.kind == "vendor" else "in-transit stock"
                    not_usable[node_id] = {"units": available, "why": f"{words}: {refused}"}
                continue
            facts = _availability_facts(node, item, on_hand, reserved)
            firing = [r for r in keep_rules if holds(r.condition, facts)]
            hold_back = sum(int(e.amount) for r in firing for e in r.effects if e.kind == "keep")
            if any(e.kind == "exclude_node" for r in firing for e in r.effects):
                hold_back = available     # a rule that never lets this node ship this item
            units = max(0, available - hold_back)
            nodes[node_id] = units
            if hold_back:
                kept[node_id] = min(hold_back, available)
            by_kind[node.kind] = by_kind.get(node.kind, 0) + units
        return {"sku": item.sku, "total": sum(nodes.values()), "nodes": nodes, "kept": kept,
                "by_kind": by_kind, "not_usable": not_usable}

    # ---- documents ------------------------------------------------------------------------
    def get_document(self, name: str) -> dict:
        body = self.store.document(name)
        if body is None:
            raise NotFound(f"no {name} loaded yet")
        return body

    def put_network(self, network: Network, actor: str | None) -> dict:
        """Replace the network, unless that would strand reserved units at a
        node it drops or leave the live playbook, or a version in a shadow
        run, naming nodes or carriers that no longer exist (409, nothing
        written)."""
        body = json.loads(network.model_dump_json(exclude_none=True))
        with self.store.write() as conn:
            self._network_fits(conn, network)
            revision = self.store.put_document(conn, "network", body, actor)
        return {"revision": revision, "nodes": len(network.nodes), "carriers": len(network.carriers)}

    def _network_fits(self, conn, network: Network) -> None:
        ids = {n.id for n in network.nodes}
        problems = _stranded(conn.execute("SELECT node, SUM(qty), GROUP_CONCAT(DISTINCT order_id) FROM reservations "
                                          "WHERE state = 'active' GROUP BY node"), ids, "node", "nodes")
        active = conn.execute("SELECT text FROM playbooks WHERE active = 1").fetchone()
        if active is not None:
            problems += _misfits(active[0], KnownIds.of(network), "the active playbook")
        for version, text in conn.execute("SELECT version, text FROM playbooks WHERE shadow = 1 ORDER BY version"):
            problems += _misfits(text, KnownIds.of(network), f"shadow version {version} (stop its run first)")
        if problems:
            raise Conflict("the new network does not fit what is live: " + problems[0]["msg"], problems)

    def put_catalog(self, catalog: Catalog, actor: str | None) -> dict:
        """Replace the catalog, unless that would drop an item with units
        reserved for open orders (409, nothing written). Stock rows of a
        dropped item stay, as they do for a dropped node."""
        body = json.loads(catalog.model_dump_json(exclude_none=True))
        with self.store.write() as conn:
            problems = _stranded(conn.execute("SELECT sku, SUM(qty), GROUP_CONCAT(DISTINCT order_id) FROM "
                                              "reservations WHERE state = 'active' GROUP BY sku"),
                                 {item.sku for item in catalog.items}, "item", "items")
            if problems:
                raise Conflict("the new catalog does not fit what is live: " + problems[0]["msg"], problems)
            revision = self.store.put_document(conn, "catalog", body, actor)
        return {"revision": revision, "items": len(catalog.items)}

    # ---- playbooks ----------------------------------------------------------------------------
    def check_playbook(self, text: str) -> tuple[str, list[dsl.Diagnostic]]:
        return dsl.version_of(text), dsl.check(text, "playbook", self._known_ids())

    def add_playbook(self, text: str, author: str | None, actor: str | None = None) -> tuple[dict, bool]:
        version, diagnostics = self.check_playbook(text)
        if any(d.severity == "error" for d in diagnostics):
            raise PlaybookRejected(version, diagnostics)
        rulebook = dsl.compile(text, "playbook")
        with self.store.write() as conn:
            created = self.store.add_playbook(conn, version, rulebook.name, text, author, actor)
        return {"version": version, "name": rulebook.name, "diagnostics": diagnostics}, created

    def activate(self, version: str, actor: str | None) -> dict:
        """Make a stored version live, unless it names nodes or carriers the
        network has lost since it was stored (409, nothing changed)."""
        self.rulebook(version)          # compiles (a stored version: see Service.rulebook)
        with self.store.write() as conn:
            self._version_fits(conn, version)
            self.store.activate(conn, version, actor)
        return {"active": version}

    def shadow(self, version: str, on: bool, actor: str | None) -> dict:
        """Start (or stop) a shadow run; a version that names nodes or
        carriers the network has lost cannot start one, as it could not go
        live (409): its rules on them would never apply, and the run would
        show what the version cannot do once activated."""
        self.rulebook(version)
        with self.store.write() as conn:
            if on:
                self._version_fits(conn, version)
            self.store.set_shadow(conn, version, on, actor)
        return {"version": version, "shadow": on}

    def _version_fits(self, conn, version: str) -> None:
        row = self.store.playbook(version, conn)
        known = self._known_ids()
        if row is not None and known is not None:
            problems = _misfits(row["text"], known)
            if problems:
                raise Conflict(f"playbook {version} does not fit the network: " + problems[0]["msg"], problems)

    def shadow_report(self, version: str) -> dict:
        """What shadowing this version has shown so far: how many orders, the
        live and shadow metrics with their deltas, and the orders whose
        decisions differ (both decisions, and what changed)."""
        if self.store.playbook(version) is None:
            raise NotFound(f"no playbook version {version}", _at("version", f"no playbook version {version}"))
        rows = self.store.query("SELECT order_id, live, shadow, differs FROM shadow_runs WHERE version = ? "
                                "ORDER BY at, order_id", (version,))
        live = [json.loads(r["live"]) for r in rows]
        shadow = [json.loads(r["shadow"]) for r in rows]
        differing = [{"order_id": r["order_id"], "changes": changes(before, after), "live": before,
                      "shadow": after} for r, before, after in zip(rows, live, shadow) if r["differs"]]
        report = {"version": version, "orders": len(rows), "differing": len(differing)}
        body = self.store.document("network")
        if body is not None:
            network = Network.model_validate(body)
            metrics = {"live": summarize(live, network), "shadow": summarize(shadow, network)}
            report.update(metrics=metrics, delta=compare(metrics["live"], metrics["shadow"]))
        report["differences"] = differing
        return report

    def simulate(self, orders: list[Order], text: str | None, version: str | None, against: str | None,
                 with_nodes: list[str], without_nodes: list[str] = (), now: dt.datetime | None = None) -> dict:
        """What-if over posted orders against a copy of the current stock
        (reserving as it goes within the run, nothing stored). The candidate
        is `text` or the stored `version` (default: the active playbook)
        with the node what-ifs; the baseline is `against` (a stored version
        or playbook text; default: the active playbook) on the network as
        it is. Orders are taken as POST /orders takes them: a repeat of an
        order is skipped, an id given to a different order is refused (422);
        orders without created_at are read at `now` (default: the clock
        when the request is handled, read once for both runs). Metrics,
        deltas and the orders decided differently."""
        if now is None:
            now = dt.datetime.now(dt.timezone.utc).replace(microsecond=0)
        candidate = self._candidate(text) if text is not None else \
            self._stored(version.strip(), "version") if version is not None else None
        baseline = None
        if against is not None:
            baseline = self._stored(against.strip(), "against") if VERSION.fullmatch(against.strip()) else \
                self._candidate(against)
        with self.store.read() as conn:
            network, catalog, live, _ = self._documents(conn)
            stock = Stock()
            for node, sku, on_hand, reserved in self.store.stock_rows(conn):
                stock.levels[(node, sku)] = [on_hand, reserved]
            stock.used_today.update(self.store.units_today(conn, _today()))
        try:
            result = simulate(candidate or live, network, catalog, stock, orders,
                              baseline=baseline or (live if candidate is not None else None),
                              with_nodes=with_nodes, without_nodes=without_nodes, now=now)
        except WhatIfError as error:
            raise Invalid("the node what-ifs name nodes the network does not have",
                          [{"loc": loc, "msg": msg} for loc, msg in error.problems]) from None
        except OrderConflict as error:
            raise Invalid("an order id is given to two different orders",
                          [{"loc": f"orders.{index}",
                            "msg": f"order {order_id} was already given as orders.{first} with different "
                                   "content; an order id names one order (an exact repeat is skipped)"}
                           for index, first, order_id in error.conflicts]) from None
        return result.to_json()

    def _candidate(self, text: str) -> dsl.Rulebook:
        version, diagnostics = self.check_playbook(text)
        if any(d.severity == "error" for d in diagnostics):
            raise PlaybookRejected(version, diagnostics)
        return dsl.compile(text, "playbook")

    def _stored(self, version: str, field: str) -> dsl.Rulebook:
        try:
            return self.rulebook(version)
        except NotFound:
            raise NotFound(f"no playbook version {version}", _at(field, f"no playbook version {version}")) from None

    def playbooks(self) -> list[dict]:
        return self.store.query("SELECT version, name, author, created_at, active, shadow, activated_at "
                                "FROM playbooks ORDER BY created_at, version")

    def active_playbook(self) -> dict:
        rows = self.store.query("SELECT version, name, text, author, created_at, activated_at FROM playbooks "
                                "WHERE active = 1")
        if not rows:
            raise NotFound("no active playbook")
        return rows[0]

    def _known_ids(self) -> KnownIds | None:
        body = self.store.document("network")
        if body is None:
            return None
        return KnownIds(frozenset(n["id"] for n in body["nodes"]), frozenset(c["id"] for c in body["carriers"]),
                        body.get("currency"))

    def warm(self) -> None:
        """Load what the first request would otherwise wait for: the ZIP
        table, the documents and the compiled active playbook."""
        locate_warm(cells=True)
        try:
            with self.store.read() as conn:
                self._documents(conn)
        except StoreError:
            pass            # an empty database: nothing to warm yet
        # What is loaded now lives as long as the process: keep it out of the
        # garbage collector's full passes (on a 100-node network with a large
        # catalog each one took milliseconds, inside the write lock).
        gc.freeze()

    # ---- metrics ---------------------------------------------------------------------------------
    def figures(self) -> dict:
        """What /metrics reads from the database, in one snapshot: the
        routing figures `steve simulate` prints (engine.metrics), over the
        stored orders that are routed or shipped, from the sums the store
        keeps as orders are saved and cancelled (no decision is read); the
        share of network stock, available now, that a single-warehouse view
        would hide; and the units on hand and reserved (one pass over the
        stock table for both). Node kinds and statuses are the current
        network's."""
        with self.store.snapshot() as conn:         # a connection of its own: writers do not wait for it
            sums, nodes = self.store.routed(conn)
            units = self.store.units_by_node(conn)
            network = self._cached(conn)[0]
        kinds = {n.id: n.kind for n in network.nodes} if network is not None else {}
        figures = routed_figures(sums, nodes, kinds)
        available = {node: on_hand - reserved for node, (on_hand, reserved) in units.items()}
        figures["hidden_stock_share"] = hidden_share(network, available) if network is not None else 0.0
        figures["on_hand_units"] = sum(on_hand for on_hand, _ in units.values())
        figures["reserved_units"] = sum(reserved for _, reserved in units.values())
        return figures

    # ---- health ----------------------------------------------------------------------------------
    def health(self) -> dict:
        _, _, active, shadows = self.store.revisions()
        return {"status": "ok", "playbook": active, "shadow": list(shadows)}


class GroupCommit:
    """Runs `work(items) -> [(result, error)]` on batches of the items that
    concurrent threads submit. The first caller to find nothing running
    leads: it runs one batch of everything waiting (up to MAX_BATCH, its own
    item first), answers every caller in it, and hands the lead to the
    oldest caller still waiting (or stops when none is); the others wait
    for their answer."""

    MAX_BATCH = 64

    def __init__(self, work):
        self.work = work
        self.mutex = threading.Lock()
        self.waiting: list[_Slot] = []
        self.running = False

    def submit(self, item):
        slot = _Slot(item)
        with self.mutex:
            self.waiting.append(slot)
            if not self.running:
                self.running = slot.lead = True
        while True:
            if slot.lead:
                slot.lead = False
                self._run_batch()
            if slot.done:
                break
            slot.wake.wait()
            slot.wake.clear()
        if slot.error is not None:
            raise slot.error
        return slot.result

    def _run_batch(self) -> None:
        with self.mutex:
            batch, self.waiting = self.waiting[:self.MAX_BATCH], self.waiting[self.MAX_BATCH:]
        try:
            answers = self.work([slot.item for slot in batch])
        except BaseException as error:     # the transaction failed: every order in it gets the error
            answers = [(None, error)] * len(batch)
        for slot, (result, error) in zip(batch, answers):
            slot.result, slot.error, slot.done = result, error, True
            slot.wake.set()
        with self.mutex:
            if self.waiting:
                self.waiting[0].lead = True
                self.waiting[0].wake.set()
            else:
                self.running = False


class _Early:
    """An order routed before the write lock, and what it was routed on."""
    __slots__ = ("rulebook", "network", "catalog", "stock", "skus", "order", "decision")

    def __init__(self, rulebook, network, catalog, stock, skus, order, decision):
        self.rulebook, self.network, self.catalog, self.stock = rulebook, network, catalog, stock
        self.skus, self.order, self.decision = skus, order, decision

    def holds(self, rulebook, network, catalog, stock: Stock, skus: list[str]) -> bool:
        """True when routing on these (under the lock) gives this decision."""
        return (rulebook is self.rulebook and network is self.network and catalog is self.catalog
                and skus == self.skus
                and engine.decides_alike(rulebook, network, self.stock, stock, skus,
                                         sum(line.qty for line in self.order.lines), self.needs(catalog)))

    def needs(self, catalog: Catalog) -> dict[str, int] | None:
        """The order's units per sku, for decides_alike: only for a routed
        order of at most the exact search's lines (see engine/recheck.py)."""
        if self.decision.status != "routed" or len(self.order.lines) > EXACT_LINES:
            return None
        return _units_by_sku(self.order, catalog)


class _Slot:
    __slots__ = ("item", "wake", "lead", "done", "result", "error")

    def __init__(self, item):
        self.item, self.wake, self.lead, self.done = item, threading.Event(), False, False
        self.result = self.error = None


class PlaybookRejected(Exception):
    def __init__(self, version: str, diagnostics: list):
        super().__init__("the playbook does not check clean")
        self.version = version
        self.diagnostics = diagnostics


def _one_row_each(counts: list[tuple[str, str, int]]) -> None:
    """Absolute counts: two rows for one node and item (an alias counts as
    its item) would leave it to chance which one holds (422)."""
    first: dict[tuple[str, str], int] = {}
    problems = []
    for index, (node, sku, _) in enumerate(counts):
        if (node, sku) in first:
            problems.append({"loc": f"{index}.sku", "msg": f"a second row for {node} and {sku} (the first is "
                                                          f"row {first[node, sku]}); give one row per node and item"})
        else:
            first[node, sku] = index
    if problems:
        raise Invalid("stock rows count one node and item twice", problems)


def _at(loc: str, msg: str) -> list[dict]:
    return [{"loc": loc, "msg": msg}]


def _misfits(text: str, known: KnownIds, label: str | None = None) -> list[dict]:
    """The errors of checking playbook `text` against a network's ids, as 409 details
    (those about its ids only: a stored version that a later, stricter checker
    refuses for something else still fits a network)."""
    anyway = {(d.line, d.column, d.message) for d in dsl.check(text, "playbook") if d.severity == "error"}
    return [{"loc": f"playbook line {d.line}", "msg": f"{label}: {d.message}" if label else d.message}
            for d in dsl.check(text, "playbook", known)
            if d.severity == "error" and (d.line, d.column, d.message) not in anyway]


def _stranded(reserved, kept: set[str], what: str, loc: str) -> list[dict]:
    """A problem for each node or item (`what`) that units reserved for open
    orders name (`reserved`: rows of id, units, order ids) but that a new
    document (`kept`: its ids) would drop."""
    return [{"loc": loc, "msg": f"{what} {name} has {units} unit(s) reserved for open orders ({orders}); "
                                "ship or cancel them before removing it"}
            for name, units, orders in reserved if name not in kept]


def _skus(order: Order, catalog: Catalog) -> list[str]:
    return sorted(_units_by_sku(order, catalog))


def _units_by_sku(order: Order, catalog: Catalog) -> dict[str, int]:
    """The order's units per catalog sku (an alias counts as its item; a
    name the catalog does not know as itself)."""
    units: dict[str, int] = {}
    for line in order.lines:
        item = catalog.resolve(line.sku)
        sku = item.sku if item else line.sku
        units[sku] = units.get(sku, 0) + line.qty
    return units


def _prepared(body: dict) -> tuple[Order, str, str, dict]:
    """What placing an order needs before the write lock: the order (stamped
    with the time now when it has none), its key (order_key: a retry is
    compared with it), the text stored for it, and the body as sent (an
    order stored before keys were order_key holds the digest of that)."""
    sent = Order.model_validate(body)
    sent_hash = order_key(sent)
    order = _stamped(sent)
    stored = json.loads(order.model_dump_json())
    stored["_sent_hash"] = sent_hash
    return order, sent_hash, canonical(stored), body


def _stamped(order: Order) -> Order:
    if order.created_at is not None:
        return order
    return order.model_copy(update={"created_at": dt.datetime.now(dt.timezone.utc)})


def _today() -> str:
    return dt.datetime.now(dt.timezone.utc).date().isoformat()


def _playbook_file(name: str) -> str:
    return "playbook"


def _order_free(rule) -> bool:
    """A rule whose condition reads only node, stock and item facts."""
    return all(key.split(".")[0] in ("node", "stock", "item") for key in rule.keys)


def _allowed_kinds(rules, item_facts: dict) -> set[str]:
    """Node kinds that need a rule's permission (vendor, transit) and that a
    rule reading only the item allows for this item, whatever the order."""
    allowed = set()
    for rule in rules:
        if rule.scope == "candidate" or not all(k.startswith("item.") for k in rule.keys):
            continue
        kinds = {"vendor" for e in rule.effects if e.kind == "allow_vendors"} | \
            {"transit" for e in rule.effects if e.kind == "allow_transit"}
        if kinds and holds(rule.condition, item_facts):
            allowed |= kinds
    return allowed


def _availability_item_facts(item) -> dict:
    return {"item.sku": item.sku, "item.name": item.name, "item.qty": 1, "item.price": item.price,
            "item.margin": item.margin, "item.category": item.category, "item.weight": item.weight,
            "item.tags": frozenset(item.tags)}


def _availability_facts(node, item, on_hand: int, reserved: int) -> dict:
    return {"node.id": node.id, "node.name": node.name, "node.kind": node.kind, "node.region": node.region,
            "node.state": node.state, "node.country": node.country, "node.tags": frozenset(node.tags),
            "node.load": node.load or 0.0, "node.handling": node.handling, "node.capacity": node.capacity,
            "stock.on_hand": on_hand, "stock.reserved": reserved,
            "stock.available": max(0, on_hand - reserved),
            "item.sku": item.sku, "item.name": item.name, "item.qty": 1, "item.price": item.price,
            "item.margin": item.margin, "item.category": item.category, "item.weight": item.weight,
            "item.tags": frozenset(item.tags)}
