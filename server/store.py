"""The embedded store: one SQLite file (WAL, synchronous=FULL) holding the
network, catalog, stock with reservations, orders with their decisions,
playbook versions, stock events and an audit log.

Every write runs in `BEGIN IMMEDIATE` under a per-process lock and a file
lock shared by the worker processes, so routing and reserving an order is
one atomic step, also across worker processes;
the `CHECK (reserved <= on_hand)` constraint and conditional updates make
promising a unit twice impossible even if a bug slipped through.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import hashlib
import json
import os
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any, Iterator

import orjson
import sqlite_utils

from engine.metrics import SUMS, add_sums, routed_sums

BUSY_TIMEOUT_MS = 5000          # how long a write waits for the lock; STEVE_BUSY_TIMEOUT_MS overrides
ROUTED = ("routed", "shipped")  # the states of the orders whose decisions routed_sums counts

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS documents (
    name TEXT PRIMARY KEY, body TEXT NOT NULL, revision INTEGER NOT NULL, updated_at TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS stock (
    node TEXT NOT NULL, sku TEXT NOT NULL,
    on_hand INTEGER NOT NULL CHECK (on_hand >= 0),
    reserved INTEGER NOT NULL DEFAULT 0 CHECK (reserved >= 0),
    PRIMARY KEY (node, sku), CHECK (reserved <= on_hand));
CREATE INDEX IF NOT EXISTS stock_sku ON stock (sku);
CREATE TABLE IF NOT EXISTS orders (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT NOT NULL UNIQUE, body TEXT NOT NULL,
    body_hash TEXT NOT NULL, state TEXT NOT NULL, decision TEXT NOT NULL,
    playbook_version TEXT, created_at TEXT NOT NULL, updated_at TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS orders_state ON orders (state, seq);
CREATE TABLE IF NOT EXISTS reservations (
    order_id TEXT NOT NULL, node TEXT NOT NULL, sku TEXT NOT NULL, qty INTEGER NOT NULL CHECK (qty > 0),
    day TEXT NOT NULL, state TEXT NOT NULL, PRIMARY KEY (order_id, node, sku));
CREATE INDEX IF NOT EXISTS reservations_day ON reservations (day, node);
-- active units reserved per day and node (what node.load counts), kept by triggers so
-- that reading today's load does not scan the day's reservations
CREATE TABLE IF NOT EXISTS day_units (
    day TEXT NOT NULL, node TEXT NOT NULL, units INTEGER NOT NULL, PRIMARY KEY (day, node));
CREATE TRIGGER IF NOT EXISTS day_units_insert AFTER INSERT ON reservations WHEN NEW.state = 'active'
BEGIN
    INSERT INTO day_units (day, node, units) VALUES (NEW.day, NEW.node, NEW.qty)
        ON CONFLICT (day, node) DO UPDATE SET units = units + excluded.units;
END;
CREATE TRIGGER IF NOT EXISTS day_units_update AFTER UPDATE ON reservations
BEGIN
    UPDATE day_units SET units = units - OLD.qty
        WHERE OLD.state = 'active' AND day = OLD.day AND node = OLD.node;
    INSERT INTO day_units (day, node, units) SELECT NEW.day, NEW.node, NEW.qty WHERE NEW.state = 'active'
        ON CONFLICT (day, node) DO UPDATE SET units = units + excluded.units;
END;
CREATE TRIGGER IF NOT EXISTS day_units_delete AFTER DELETE ON reservations WHEN OLD.state = 'active'
BEGIN
    UPDATE day_units SET units = units - OLD.qty WHERE day = OLD.day AND node = OLD.node;
END;
-- engine.metrics.SUMS over the decisions of the orders routed (state routed or shipped),
-- and per node their shipments and units: kept as each order is saved or changes state,
-- in the same transaction, so that /metrics does not read every decision
CREATE TABLE IF NOT EXISTS routed_sums (
    one INTEGER PRIMARY KEY CHECK (one = 1), routed INTEGER NOT NULL, shipments INTEGER NOT NULL,
    split INTEGER NOT NULL, cost REAL NOT NULL, days REAL NOT NULL, distance_km REAL NOT NULL,
    carried INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS routed_nodes (
    node TEXT PRIMARY KEY, shipments INTEGER NOT NULL, units INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS playbooks (
    version TEXT PRIMARY KEY, name TEXT NOT NULL, text TEXT NOT NULL, author TEXT,
    created_at TEXT NOT NULL, active INTEGER NOT NULL DEFAULT 0, shadow INTEGER NOT NULL DEFAULT 0,
    activated_at TEXT);
CREATE TABLE IF NOT EXISTS shadow_runs (
    version TEXT NOT NULL, order_id TEXT NOT NULL, live TEXT NOT NULL, shadow TEXT NOT NULL,
    differs INTEGER NOT NULL, at TEXT NOT NULL, PRIMARY KEY (version, order_id));
CREATE TABLE IF NOT EXISTS stock_events (
    event_id TEXT PRIMARY KEY, body TEXT NOT NULL, result TEXT NOT NULL, applied_at TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS audit (
    id INTEGER PRIMARY KEY AUTOINCREMENT, at TEXT NOT NULL, actor TEXT, action TEXT NOT NULL,
    subject TEXT, detail TEXT);
"""


class StoreError(Exception):
    """A refused request; `details` says where: [{"loc", "msg"}]."""
    status = 400

    def __init__(self, message: str, details: list[dict] | None = None):
        super().__init__(message)
        self.details = details or []


class NotFound(StoreError):
    status = 404


class Conflict(StoreError):
    status = 409


class Invalid(StoreError):
    status = 422


def is_busy(error: sqlite3.OperationalError) -> bool:
    """The database stayed locked by another connection past the busy timeout."""
    return "locked" in str(error) or "busy" in str(error)


def now_text() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="milliseconds")


def canonical(document: Any) -> str:
    return json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def compact(document: Any) -> str:
    """JSON for what is stored but never hashed (decisions, stock event
    results), with the keys in the document's own order, so that reading it
    back answers with the same bytes as the first answer (a repeat returns
    the first decision). Written by orjson, as the answers are; canonical()
    (sorted keys) stays the standard encoder's, so that the hashes of orders
    already stored keep matching their retries."""
    try:
        return orjson.dumps(document).decode()
    except TypeError:
        return json.dumps(document, separators=(",", ":"), ensure_ascii=False)


def digest(document: Any) -> str:
    return hashlib.sha256(canonical(document).encode("utf-8")).hexdigest()


def busy_timeout_ms() -> int:
    """The busy timeout in milliseconds: STEVE_BUSY_TIMEOUT_MS, else 5000.
    A write that cannot get the database lock within it is answered 503."""
    raw = os.environ.get("STEVE_BUSY_TIMEOUT_MS", "").strip()
    if not raw:
        return BUSY_TIMEOUT_MS
    if not raw.isdigit():
        raise ValueError(f"STEVE_BUSY_TIMEOUT_MS must be a whole number of milliseconds, not {raw!r}")
    return int(raw)


class _WriterLock:
    """An exclusive lock on `<database>-writer` (flock) held around each
    write transaction, so that writers in other processes queue on it and
    wake as soon as it is free. Waiting is bounded by the busy timeout, after
    which it raises like SQLite does ("database is locked": a 503)."""

    def __init__(self, path: str, timeout: float):
        self.timeout = timeout
        self.fd = None
        if path != ":memory:" and not path.startswith("file:"):
            self.fd = os.open(path + "-writer", os.O_RDWR | os.O_CREAT, 0o600)

    def __enter__(self):
        if self.fd is None:
            return self
        try:
            fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return self
        except BlockingIOError:
            pass
        # Try again every 0.1 ms. A longer pause is unfair: the process that
        # holds the lock takes it again for its next transaction while this
        # one sleeps, and under load one worker did most of the writing
        # while the other idled (p99 170-196 -> 132-138 ms with 2 workers
        # when the pause stopped growing to 1 ms; docs/benchmarks.md).
        deadline = time.monotonic() + self.timeout
        while True:
            time.sleep(0.0001)
            try:
                fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return self
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise sqlite3.OperationalError("database is locked (another process is writing)") from None

    def __exit__(self, *exc):
        if self.fd is not None:
            fcntl.flock(self.fd, fcntl.LOCK_UN)

    def close(self) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None


class Store:
    """One per process. Not shared across fork: open it after workers start."""

    def __init__(self, path: str | Path, busy_timeout: int | None = None):
        self.path = str(path)
        self.busy_timeout = busy_timeout_ms() if busy_timeout is None else int(busy_timeout)
        conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False,
                               timeout=self.busy_timeout / 1000)
        conn.execute(f"PRAGMA busy_timeout = {self.busy_timeout:d}")    # an int: nothing to inject
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("PRAGMA synchronous = FULL")
        conn.execute("PRAGMA foreign_keys = ON")
        self.conn = conn
        self.db = sqlite_utils.Database(conn)
        self.lock = threading.RLock()
        conn.executescript(SCHEMA)
        self._writer = _WriterLock(self.path, self.busy_timeout / 1000)
        self._reader: sqlite3.Connection | None = None      # snapshot(): opened on first use
        self._reader_lock = threading.Lock()
        self._count_day_units()
        self._count_routed()

    def _count_routed(self) -> None:
        """Fill routed_sums and routed_nodes from the stored decisions once,
        for a database made before the tables existed (save_order and
        set_order_state keep them from then on)."""
        if self.conn.execute("SELECT 1 FROM meta WHERE key = 'routed_sums'").fetchone():
            return
        with self.write() as conn:
            if conn.execute("SELECT 1 FROM meta WHERE key = 'routed_sums'").fetchone():
                return
            sums, nodes = dict.fromkeys(SUMS, 0), {}
            for (decision,) in conn.execute("SELECT decision FROM orders WHERE state IN (?, ?)", ROUTED):
                add_sums(sums, nodes, *routed_sums(json.loads(decision)))
            conn.execute("DELETE FROM routed_sums")
            conn.execute("DELETE FROM routed_nodes")
            conn.execute("INSERT INTO routed_sums (one, routed, shipments, split, cost, days, distance_km, carried) "
                         "VALUES (1, :routed, :shipments, :split, :cost, :days, :distance_km, :carried)", sums)
            conn.executemany("INSERT INTO routed_nodes (node, shipments, units) VALUES (?, ?, ?)",
                             [(node, shipments, units) for node, (shipments, units) in nodes.items()])
            conn.execute("INSERT INTO meta (key, value) VALUES ('routed_sums', '1')")

    def _count_day_units(self) -> None:
        """Fill day_units from the reservations once, for a database made
        before the table existed (the triggers keep it from then on)."""
        if self.conn.execute("SELECT 1 FROM meta WHERE key = 'day_units'").fetchone():
            return
        with self.write() as conn:
            if conn.execute("SELECT 1 FROM meta WHERE key = 'day_units'").fetchone():
                return
            conn.execute("DELETE FROM day_units")
            conn.execute("INSERT INTO day_units (day, node, units) SELECT day, node, SUM(qty) FROM reservations "
                         "WHERE state = 'active' GROUP BY day, node")
            conn.execute("INSERT INTO meta (key, value) VALUES ('day_units', '1')")

    def close(self) -> None:
        with self.lock:
            self.conn.close()
            self._writer.close()
        with self._reader_lock:
            if self._reader is not None:
                self._reader.close()
                self._reader = None

    # ---- transactions ---------------------------------------------------------
    @contextlib.contextmanager
    def write(self) -> Iterator[sqlite3.Connection]:
        """An immediate write transaction: all or nothing. Writers of this
        database in other processes wait on a file lock first, so the lock
        passes from one to the next at once (SQLite's own busy wait sleeps
        up to 100 ms between tries)."""
        with self.lock, self._writer:
            self.conn.execute("BEGIN IMMEDIATE")
            try:
                yield self.conn
            except BaseException:
                self.conn.execute("ROLLBACK")
                raise
            else:
                self.conn.execute("COMMIT")

    @contextlib.contextmanager
    def snapshot(self) -> Iterator[sqlite3.Connection]:
        """A consistent read on a connection of its own, which does not wait
        for this process's write transaction (a WAL reader sees the last
        commit). For work done before a write, such as routing an order
        before placing it. An in-memory database has one connection: there
        it is read()."""
        if self.path == ":memory:" or self.path.startswith("file:"):
            with self.read() as conn:
                yield conn
            return
        with self._reader_lock:
            if self._reader is None:
                reader = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False,
                                         timeout=self.busy_timeout / 1000)
                reader.execute(f"PRAGMA busy_timeout = {self.busy_timeout:d}")
                reader.execute("PRAGMA query_only = ON")
                self._reader = reader
            conn = self._reader
            conn.execute("BEGIN")
            try:
                yield conn
            finally:
                conn.execute("ROLLBACK")

    @contextlib.contextmanager
    def read(self) -> Iterator[sqlite3.Connection]:
        """A consistent snapshot for several reads."""
        with self.lock:
            self.conn.execute("BEGIN")
            try:
                yield self.conn
            finally:
                self.conn.execute("ROLLBACK")

    def query(self, sql: str, params: tuple | dict = ()) -> list[dict]:
        with self.lock:
            return list(self.db.query(sql, params))

    # ---- meta and documents -------------------------------------------------------
    def revisions(self, conn: sqlite3.Connection | None = None) -> tuple:
        """(network rev, catalog rev, active playbook version, shadow versions)."""
        if conn is None:
            # never slip a read into another thread's open transaction on the shared connection
            with self.lock:
                if self.conn.in_transaction:
                    return self.revisions(self.conn)
                with self.read() as snapshot:
                    return self.revisions(snapshot)
        # one statement: this runs twice for every order placed
        rows = conn.execute(
            "SELECT 0, name, revision FROM documents UNION ALL "
            "SELECT 1, version, NULL FROM playbooks WHERE active = 1 UNION ALL "
            "SELECT 2, version, NULL FROM playbooks WHERE shadow = 1 ORDER BY 1, 2").fetchall()
        revisions = {name: revision for kind, name, revision in rows if kind == 0}
        active = next((name for kind, name, _ in rows if kind == 1), None)
        shadows = tuple(name for kind, name, _ in rows if kind == 2)
        return revisions.get("network", 0), revisions.get("catalog", 0), active, shadows

    def document(self, name: str, conn: sqlite3.Connection | None = None) -> Any | None:
        if conn is None:
            with self.lock:
                return self.document(name, self.conn)
        row = conn.execute("SELECT body FROM documents WHERE name = ?", (name,)).fetchone()
        return json.loads(row[0]) if row else None

    def put_document(self, conn: sqlite3.Connection, name: str, body: Any, actor: str | None) -> int:
        row = conn.execute("SELECT revision FROM documents WHERE name = ?", (name,)).fetchone()
        revision = (row[0] if row else 0) + 1
        conn.execute("INSERT INTO documents (name, body, revision, updated_at) VALUES (?, ?, ?, ?) "
                     "ON CONFLICT (name) DO UPDATE SET body = excluded.body, revision = excluded.revision, "
                     "updated_at = excluded.updated_at", (name, canonical(body), revision, now_text()))
        self.audit(conn, actor, f"put {name}", name, {"revision": revision})
        return revision

    def audit(self, conn: sqlite3.Connection, actor: str | None, action: str, subject: str | None,
              detail: Any = None) -> None:
        conn.execute("INSERT INTO audit (at, actor, action, subject, detail) VALUES (?, ?, ?, ?, ?)",
                     (now_text(), actor, action, subject, canonical(detail) if detail is not None else None))

    def is_empty(self) -> bool:
        return self.document("network") is None

    # ---- stock ------------------------------------------------------------------------
    def stock_rows(self, conn: sqlite3.Connection, skus: list[str] | None = None) -> list[tuple]:
        if skus is None:
            return conn.execute("SELECT node, sku, on_hand, reserved FROM stock").fetchall()
        marks = ",".join("?" * len(skus))
        return conn.execute(f"SELECT node, sku, on_hand, reserved FROM stock WHERE sku IN ({marks})",
                            tuple(skus)).fetchall()

    def units_today(self, conn: sqlite3.Connection, day: str) -> dict[str, int]:
        """Units of active reservations made on `day`, per node."""
        return dict(conn.execute("SELECT node, units FROM day_units WHERE day = ? AND units != 0",
                                 (day,)).fetchall())

    def set_on_hand(self, conn: sqlite3.Connection, rows: list[tuple[str, str, int]], actor: str | None) -> list:
        changed = []
        for index, (node, sku, on_hand) in enumerate(rows):
            current = conn.execute("SELECT on_hand, reserved FROM stock WHERE node = ? AND sku = ?",
                                   (node, sku)).fetchone()
            reserved = current[1] if current else 0
            if on_hand < reserved:
                message = (f"{node}/{sku}: on_hand {on_hand} is below the {reserved} units reserved "
                           "for open orders; cancel or ship those orders first")
                raise Conflict(message, [{"loc": f"{index}.on_hand", "msg": message}])
            conn.execute("INSERT INTO stock (node, sku, on_hand, reserved) VALUES (?, ?, ?, 0) "
                         "ON CONFLICT (node, sku) DO UPDATE SET on_hand = excluded.on_hand",
                         (node, sku, on_hand))
            changed.append({"node": node, "sku": sku, "on_hand": on_hand,
                            "was": current[0] if current else None})
        self.audit(conn, actor, "put stock", None, {"rows": len(changed)})
        return changed

    def adjust(self, conn: sqlite3.Connection, event_id: str, body: Any, deltas: list[tuple[str, str, int]],
               actor: str | None) -> tuple[dict, bool]:
        """Apply stock deltas once per event id. Returns (result, was_duplicate)."""
        seen = conn.execute("SELECT body, result FROM stock_events WHERE event_id = ?", (event_id,)).fetchone()
        if seen is not None:
            if seen[0] != canonical(body):
                message = f"event {event_id!r} was already applied with different content"
                raise Conflict(message, [{"loc": "event_id", "msg": message}])
            return json.loads(seen[1]), True
        results = []
        for index, (node, sku, delta) in enumerate(deltas):
            current = conn.execute("SELECT on_hand, reserved FROM stock WHERE node = ? AND sku = ?",
                                   (node, sku)).fetchone()
            on_hand, reserved = (current if current else (0, 0))
            new = on_hand + delta
            loc = f"adjustments.{index}.delta" if isinstance(body, dict) and "adjustments" in body else "delta"
            if new < 0:
                message = f"{node}/{sku}: adjusting {on_hand} by {delta} would leave {new} on hand"
                raise Conflict(message, [{"loc": loc, "msg": message}])
            if new < reserved:
                message = (f"{node}/{sku}: adjusting {on_hand} by {delta} leaves {new} on hand, below "
                           f"the {reserved} units reserved for open orders")
                raise Conflict(message, [{"loc": loc, "msg": message}])
            conn.execute("INSERT INTO stock (node, sku, on_hand, reserved) VALUES (?, ?, ?, 0) "
                         "ON CONFLICT (node, sku) DO UPDATE SET on_hand = excluded.on_hand", (node, sku, new))
            results.append({"node": node, "sku": sku, "on_hand": new, "delta": delta})
        result = {"event_id": event_id, "applied": results, "rerouted": []}
        conn.execute("INSERT INTO stock_events (event_id, body, result, applied_at) VALUES (?, ?, ?, ?)",
                     (event_id, canonical(body), compact(result), now_text()))
        self.audit(conn, actor, "adjust stock", event_id, {"rows": len(results)})
        return result, False

    def set_event_result(self, conn: sqlite3.Connection, event_id: str, result: dict) -> None:
        """What a repeat of the event answers: its first answer, complete
        once the held orders it let through are known."""
        conn.execute("UPDATE stock_events SET result = ? WHERE event_id = ?", (compact(result), event_id))

    def reserve(self, conn: sqlite3.Connection, order_id: str, node: str, sku: str, qty: int, day: str) -> None:
        cursor = conn.execute("UPDATE stock SET reserved = reserved + ? WHERE node = ? AND sku = ? "
                              "AND on_hand - reserved >= ?", (qty, node, sku, qty))
        if cursor.rowcount != 1:
            raise Conflict(f"{node}/{sku}: fewer than {qty} units left to reserve")
        conn.execute("INSERT INTO reservations (order_id, node, sku, qty, day, state) VALUES (?, ?, ?, ?, ?, "
                     "'active') ON CONFLICT (order_id, node, sku) DO UPDATE SET qty = qty + excluded.qty",
                     (order_id, node, sku, qty, day))

    def release(self, conn: sqlite3.Connection, order_id: str, shipped: bool) -> list[dict]:
        """End the order's active reservations: shipped (on hand and
        reserved go down) or released (reserved goes down). Returns their
        lines, by node and sku."""
        rows = self._reservation_lines(conn, order_id, "active")
        for node, sku, qty in rows:
            if shipped:
                conn.execute("UPDATE stock SET on_hand = on_hand - ?, reserved = reserved - ? "
                             "WHERE node = ? AND sku = ?", (qty, qty, node, sku))
            else:
                conn.execute("UPDATE stock SET reserved = reserved - ? WHERE node = ? AND sku = ?",
                             (qty, node, sku))
        conn.execute("UPDATE reservations SET state = ? WHERE order_id = ? AND state = 'active'",
                     ("shipped" if shipped else "released", order_id))
        return [{"node": n, "sku": s, "qty": q} for n, s, q in rows]

    def released(self, conn: sqlite3.Connection, order_id: str, shipped: bool) -> list[dict]:
        """The lines release() returned when it ended the order's
        reservations (shipped or released), for a repeat of that request."""
        rows = self._reservation_lines(conn, order_id, "shipped" if shipped else "released")
        return [{"node": n, "sku": s, "qty": q} for n, s, q in rows]

    @staticmethod
    def _reservation_lines(conn: sqlite3.Connection, order_id: str, state: str) -> list[tuple]:
        return conn.execute("SELECT node, sku, qty FROM reservations WHERE order_id = ? AND state = ? "
                            "ORDER BY node, sku", (order_id, state)).fetchall()

    # ---- orders -----------------------------------------------------------------------
    def order_row(self, conn: sqlite3.Connection, order_id: str) -> dict | None:
        row = conn.execute("SELECT id, body, body_hash, state, decision, playbook_version, created_at, "
                           "updated_at, seq FROM orders WHERE id = ?", (order_id,)).fetchone()
        if row is None:
            return None
        keys = ("id", "body", "body_hash", "state", "decision", "playbook_version", "created_at",
                "updated_at", "seq")
        return dict(zip(keys, row))

    def save_order(self, conn: sqlite3.Connection, order_id: str, body: Any, state: str, decision: dict,
                   version: str | None, body_hash: str | None = None, body_written: bool = False) -> None:
        """Insert or update an order; `body_hash` (default: the body's
        digest) is what a retry of the request is compared with;
        `body_written`: `body` is already canonical() text (written before
        the write lock)."""
        self._count_decision(conn, order_id, state, decision)
        stamp = now_text()
        conn.execute("INSERT INTO orders (id, body, body_hash, state, decision, playbook_version, created_at, "
                     "updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO UPDATE SET "
                     "state = excluded.state, decision = excluded.decision, "
                     "playbook_version = excluded.playbook_version, updated_at = excluded.updated_at",
                     (order_id, body if body_written else canonical(body), body_hash or digest(body), state,
                      compact(decision), version,
                      stamp, stamp))

    def set_order_state(self, conn: sqlite3.Connection, order_id: str, state: str) -> None:
        self._count_decision(conn, order_id, state)
        conn.execute("UPDATE orders SET state = ?, updated_at = ? WHERE id = ?", (state, now_text(), order_id))

    def _count_decision(self, conn: sqlite3.Connection, order_id: str, state: str,
                        decision: dict | None = None) -> None:
        """Keep routed_sums as the order becomes `state` (with `decision`,
        or keeping its own): its stored decision's sums are taken away if it
        was routed, the decision's added if it now is."""
        was = conn.execute("SELECT state, decision FROM orders WHERE id = ?", (order_id,)).fetchone()
        counted = was is not None and was[0] in ROUTED
        if counted and decision is None and state in ROUTED:
            return                                  # routed -> shipped: the same decision, still counted
        if counted:
            self._add_routed(conn, *routed_sums(json.loads(was[1])), sign=-1)
        if state in ROUTED:
            self._add_routed(conn, *routed_sums(decision if decision is not None else json.loads(was[1])))

    @staticmethod
    def _add_routed(conn: sqlite3.Connection, sums: dict, nodes: dict[str, list[int]], sign: int = 1) -> None:
        conn.execute("UPDATE routed_sums SET routed = routed + :routed, shipments = shipments + :shipments, "
                     "split = split + :split, cost = cost + :cost, days = days + :days, "
                     "distance_km = distance_km + :distance_km, carried = carried + :carried WHERE one = 1",
                     {name: sign * value for name, value in sums.items()})
        conn.executemany("INSERT INTO routed_nodes (node, shipments, units) VALUES (?, ?, ?) ON CONFLICT (node) "
                         "DO UPDATE SET shipments = shipments + excluded.shipments, units = units + excluded.units",
                         [(node, sign * shipments, sign * units) for node, (shipments, units) in nodes.items()])

    def routed(self, conn: sqlite3.Connection) -> tuple[dict, dict[str, list[int]]]:
        """engine.metrics.SUMS over the decisions of the orders routed, and
        per node [shipments, units] (what engine.metrics.routed_figures takes)."""
        cursor = conn.execute("SELECT routed, shipments, split, cost, days, distance_km, carried FROM routed_sums")
        row = cursor.fetchone()
        sums = dict(zip((c[0] for c in cursor.description), row)) if row else dict.fromkeys(SUMS, 0)
        nodes = {node: [shipments, units] for node, shipments, units in
                 conn.execute("SELECT node, shipments, units FROM routed_nodes WHERE shipments != 0 OR units != 0")}
        return sums, nodes

    def units_by_node(self, conn: sqlite3.Connection) -> dict[str, tuple[int, int]]:
        """node -> (units on hand, units reserved)."""
        return {node: (on_hand, reserved) for node, on_hand, reserved in
                conn.execute("SELECT node, SUM(on_hand), SUM(reserved) FROM stock GROUP BY node")}

    def held_orders(self, conn: sqlite3.Connection) -> list[dict]:
        rows = conn.execute("SELECT id, body FROM orders WHERE state = 'held' ORDER BY seq").fetchall()
        return [{"id": r[0], "body": json.loads(r[1])} for r in rows]

    def order_counts(self) -> dict[str, int]:
        with self.lock:
            rows = self.conn.execute("SELECT state, COUNT(*) FROM orders GROUP BY state").fetchall()
        return dict(rows)

    # ---- playbooks ----------------------------------------------------------------------
    def add_playbook(self, conn: sqlite3.Connection, version: str, name: str, text: str,
                     author: str | None, actor: str | None = None) -> bool:
        """`author` is stored with the version; the audit names `actor`, who
        sent it (the author when no actor is known)."""
        if conn.execute("SELECT 1 FROM playbooks WHERE version = ?", (version,)).fetchone():
            return False
        conn.execute("INSERT INTO playbooks (version, name, text, author, created_at) VALUES (?, ?, ?, ?, ?)",
                     (version, name, text, author, now_text()))
        self.audit(conn, author if actor is None else actor, "add playbook", version, {"name": name})
        return True

    def playbook(self, version: str, conn: sqlite3.Connection | None = None) -> dict | None:
        rows = self.query("SELECT version, name, text, author, created_at, active, shadow, activated_at "
                          "FROM playbooks WHERE version = ?", (version,)) if conn is None else [
            dict(zip(("version", "name", "text", "author", "created_at", "active", "shadow", "activated_at"), r))
            for r in conn.execute("SELECT version, name, text, author, created_at, active, shadow, activated_at "
                                  "FROM playbooks WHERE version = ?", (version,))]
        return rows[0] if rows else None

    def activate(self, conn: sqlite3.Connection, version: str, actor: str | None) -> None:
        if not conn.execute("SELECT 1 FROM playbooks WHERE version = ?", (version,)).fetchone():
            raise NotFound(f"no playbook version {version}")
        conn.execute("UPDATE playbooks SET active = 0 WHERE active = 1")
        conn.execute("UPDATE playbooks SET active = 1, shadow = 0, activated_at = ? WHERE version = ?",
                     (now_text(), version))
        self.audit(conn, actor, "activate playbook", version)

    def set_shadow(self, conn: sqlite3.Connection, version: str, on: bool, actor: str | None) -> None:
        row = conn.execute("SELECT active FROM playbooks WHERE version = ?", (version,)).fetchone()
        if row is None:
            raise NotFound(f"no playbook version {version}")
        if row[0] and on:
            raise Conflict(f"{version} is the active playbook; shadow a candidate version instead")
        conn.execute("UPDATE playbooks SET shadow = ? WHERE version = ?", (1 if on else 0, version))
        self.audit(conn, actor, "shadow playbook" if on else "stop shadow", version)
