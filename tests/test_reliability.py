"""Nothing oversold, nothing lost: the real `steve serve` with several
workers on one database file, under many concurrent client processes, under
kill -9 of every server process in the middle of the load, and with the
database locked by someone else.

The load: CLIENTS processes (tests/load_client.py) place ORDERS orders in
all for two scarce items, 50 units of BF-HOT over three warehouses and 20
of BF-WARM over two, so most orders are refused for want of stock. Mixed in:
the same order sent by two clients at once, a client sending an order
again at once, an id reused with different content (409), invalid orders
(422), and cancellations and shipments of orders that were routed (which
re-route held orders while other clients are placing).

Afterwards the database file is read directly and `check_invariants`
holds it to the answers the clients got:

* every node and item: 0 <= reserved <= on_hand, reserved is the sum of
  the live reservations, and on_hand is what it was less what shipped;
* every order that got a 2xx is stored; one that was routed holds exactly
  the units its decision names (never twice, however often it was sent);
* every refusal says why: a held order has a reason, a 4xx has an error
  and details;
* in the crash test, every order acknowledged before a kill is there
  after the restart.

These tests are marked slow; CI runs them (pytest runs everything).
"""

from __future__ import annotations

import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from collections import Counter, defaultdict
from pathlib import Path

import httpx
import pytest

from live_server import LiveServer, _die_with_parent, server_env

pytestmark = pytest.mark.slow

HERE = Path(__file__).resolve().parent
CLIENT = HERE / "load_client.py"

CLIENTS = 8
ORDERS = 2000                  # distinct order ids over all clients
WORKERS = 3
LOAD_SECONDS = 240             # each client stops by itself after this
HOT, WARM = "BF-HOT", "BF-WARM"
STOCK = {(HOT, "PA-DC"): 20, (HOT, "KC-DC"): 20, (HOT, "GA-DC"): 10,
         (WARM, "PA-DC"): 10, (WARM, "GA-DC"): 10}
SHIP_TO = [{"country": "US", "state": "MA", "zip": "02108"}, {"country": "US", "state": "NY", "zip": "10001"},
           {"country": "US", "state": "IL", "zip": "60601"}, {"country": "US", "state": "GA", "zip": "30303"},
           {"country": "US", "state": "TX", "zip": "75201"}, {"country": "US", "state": "CO", "zip": "80202"}]


# ---- the load -------------------------------------------------------------------------------------

def order(order_id: str, rng: random.Random, *, qty: int | None = None) -> dict:
    lines = [{"sku": HOT, "qty": qty if qty is not None else rng.choice([1, 1, 1, 2, 3])}]
    if rng.random() < 0.2:
        lines.append({"sku": WARM, "qty": rng.choice([1, 2])})
    return {"id": order_id, "channel": "web", "created_at": "2026-11-25T09:30:00-05:00",
            "customer": {"id": f"CU-{rng.randrange(500)}", "tier": "regular"},
            "ship_to": rng.choice(SHIP_TO), "lines": lines}


def plans(seed: int = 7) -> list[list[dict]]:
    """The steps of each client: ORDERS distinct ids in all, plus repeats,
    conflicts, invalid orders, cancellations and shipments."""
    rng = random.Random(seed)
    steps: list[list[dict]] = [[] for _ in range(CLIENTS)]
    per_client = ORDERS // CLIENTS
    for c in range(CLIENTS):
        placed = []
        for n in range(per_client):
            roll = rng.random()
            if roll < 0.02:
                body = order(f"C{c}-BAD-{n}", rng, qty=0)                 # invalid: 422
            else:
                body = order(f"C{c}-{n}", rng)
                placed.append(body)
            steps[c].append({"do": "place", "body": body})
            roll = rng.random()
            if roll < 0.03:
                steps[c].append({"do": "place", "body": body})             # sent again at once
            elif roll < 0.08:                                              # and by another client
                other = (c + 1 + rng.randrange(CLIENTS - 1)) % CLIENTS
                steps[other].append({"do": "place", "body": body})
            elif roll < 0.10 and placed:                                   # an id reused: 409
                reused = dict(rng.choice(placed))
                reused["lines"] = [{"sku": HOT, "qty": 7}]
                steps[c].append({"do": "place", "body": reused})
            elif roll < 0.18:
                steps[c].append({"do": "cancel_if_routed"})
            elif roll < 0.22:
                steps[c].append({"do": "ship_if_routed"})
    return steps


class Load:
    """The client processes and what they recorded."""

    def __init__(self, folder: Path, url: str, steps: list[list[dict]]):
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)
        self.url_file = folder / "url"
        self.point_at(url)
        self.outs = [folder / f"client{c}.jsonl" for c in range(len(steps))]
        self.processes = []
        for c, client_steps in enumerate(steps):
            plan = folder / f"plan{c}.json"
            plan.write_text(json.dumps({"url_file": str(self.url_file), "out": str(self.outs[c]),
                                        "seconds": LOAD_SECONDS, "steps": client_steps}))
            with open(folder / f"client{c}.err", "wb") as errors:
                self.processes.append(subprocess.Popen(
                    [sys.executable, str(CLIENT), str(plan)], env=server_env(), stdin=subprocess.DEVNULL,
                    stdout=subprocess.DEVNULL, stderr=errors, preexec_fn=_die_with_parent))

    def __enter__(self) -> "Load":
        return self

    def __exit__(self, *exc) -> None:
        """Whatever happened, no client outlives the test (each by its own pid)."""
        for process in self.processes:
            if process.poll() is None:
                process.kill()
            process.wait(10)

    def point_at(self, url: str) -> None:
        """Tell the clients where the server is (atomically: write, then rename)."""
        temporary = self.url_file.with_suffix(".new")
        temporary.write_text(url)
        os.replace(temporary, self.url_file)

    def records(self) -> list[dict]:
        out = []
        for path in self.outs:
            if path.exists():
                for line in path.read_text().splitlines():
                    if line.endswith("}"):               # a line being written is left for later
                        out.append(json.loads(line))
        return out

    def acknowledged(self) -> int:
        return sum(1 for r in self.records() if r["do"] == "place" and r["status"] in (200, 201))

    def running(self) -> bool:
        return any(p.poll() is None for p in self.processes)

    def wait(self, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        for process in self.processes:
            try:
                process.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                pass
        stuck = [p for p in self.processes if p.poll() is None]
        for process in stuck:                             # only our own clients, by their pid
            process.kill()
            process.wait(10)
        errors = "".join((self.folder / f"client{c}.err").read_text() for c in range(len(self.processes)))
        assert not stuck, f"{len(stuck)} clients did not finish in time:\n{errors}"
        assert all(p.returncode == 0 for p in self.processes), errors


def add_items(http: httpx.Client) -> None:
    catalog = http.get("/catalog").json()
    catalog["items"] += [{"sku": HOT, "name": "Doorbuster parka", "weight": 1.2, "price": 120.0, "margin": 0.4,
                          "category": "outerwear"},
                         {"sku": WARM, "name": "Doorbuster gloves", "weight": 0.2, "price": 60.0, "margin": 0.4,
                          "category": "accessories"}]
    assert http.put("/catalog", json=catalog).status_code == 200
    rows = [{"node": node, "sku": sku, "on_hand": units} for (sku, node), units in STOCK.items()]
    assert http.put("/stock", json=rows).status_code == 200


# ---- the invariants ------------------------------------------------------------------------------

def read_db(db: Path) -> dict:
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        return {
            "stock": {(sku, node): (on_hand, reserved) for node, sku, on_hand, reserved in conn.execute(
                "SELECT node, sku, on_hand, reserved FROM stock WHERE sku IN (?, ?)", (HOT, WARM))},
            "orders": {oid: {"state": state, "decision": json.loads(decision), "body_hash": body_hash}
                       for oid, state, decision, body_hash in conn.execute(
                           "SELECT id, state, decision, body_hash FROM orders WHERE id LIKE 'C%'")},
            "reservations": conn.execute("SELECT order_id, node, sku, qty, state FROM reservations "
                                         "WHERE order_id LIKE 'C%'").fetchall(),
            "rerouted": {s for (s,) in conn.execute(
                "SELECT subject FROM audit WHERE action = 're-route held order'")},
        }
    finally:
        conn.close()


def lines_of(decision: dict) -> Counter:
    units: Counter = Counter()
    for shipment in decision.get("shipments", ()):
        for line in shipment["lines"]:
            units[(shipment["node"], line["sku"])] += line["qty"]
    return units


def check_invariants(db: Path, records: list[dict], sent: dict[str, dict], crashed: bool = False) -> dict:
    """Hold the database to the answers; returns figures for the report."""
    state = read_db(db)
    figures = Counter()

    # stock: never oversold, reserved is what the live reservations say, nothing vanished
    live, shipped = Counter(), Counter()
    per_order: dict[str, Counter] = defaultdict(Counter)
    for order_id, node, sku, qty, rstate in state["reservations"]:
        per_order[order_id][(node, sku)] += qty
        if rstate == "active":
            live[(sku, node)] += qty
        elif rstate == "shipped":
            shipped[(sku, node)] += qty
    for key, (on_hand, reserved) in state["stock"].items():
        assert 0 <= reserved <= on_hand, (key, on_hand, reserved)
        assert reserved == live[key], (key, reserved, live[key])
        assert on_hand == STOCK[key] - shipped[key], (key, on_hand, STOCK[key], shipped[key])
    assert set(state["stock"]) == set(STOCK)
    figures["units promised or shipped"] = sum(live.values()) + sum(shipped.values())
    assert figures["units promised or shipped"] <= sum(STOCK.values())

    # every stored order: its reservations are exactly what its decision names
    for order_id, stored in state["orders"].items():
        decision, order_state = stored["decision"], stored["state"]
        assert order_id in sent, order_id                          # only what clients sent
        assert decision["status"] in ("routed", "held"), (order_id, decision)
        if decision["status"] == "held":
            assert order_state in ("held", "cancelled") and decision.get("reason"), (order_id, stored)
            assert not per_order.get(order_id), (order_id, per_order[order_id])
        else:
            assert per_order[order_id] == lines_of(decision), (order_id, per_order[order_id], decision)
            wanted = Counter()
            for line in sent[order_id]["lines"]:
                wanted[line["sku"]] += line["qty"]
            got = Counter()
            for (node, sku), qty in per_order[order_id].items():
                got[sku] += qty
            assert got == wanted, (order_id, got, wanted)             # all of it, once
        figures[f"stored {order_state}"] += 1

    # every answer
    answers: dict[str, list[dict]] = defaultdict(list)
    for record in records:
        status = record["status"]
        if status is None:
            figures["requests without an answer (server killed)"] += 1
            assert crashed, record
            continue
        assert status < 500 or status == 503, record                  # never a 500
        body = record["body"]
        if status >= 400:
            assert isinstance(body.get("error"), str) and body["error"], record
            if status == 503:
                assert record["retry_after"], record
                figures["503 busy (retried)"] += 1
            elif status == 422:
                assert body["details"] and all(d["loc"] and d["msg"] for d in body["details"]), record
                figures["422 invalid order"] += 1
            elif status == 409:
                figures["409 conflict"] += 1
            else:
                raise AssertionError(f"unexpected refusal {record}")
            continue
        if record["do"] != "place":
            figures[f"{record['do']} answered"] += 1
            continue
        answers[record["id"]].append(record)
        figures[f"answer {status} {body['status']}"] += 1
        if body["status"] == "held":
            assert body.get("reason"), record
    for order_id, got in answers.items():
        assert order_id in state["orders"], f"{order_id} was acknowledged but is not stored"
        created = [r for r in got if r["status"] == 201]
        assert len(created) <= 1, (order_id, created)               # placed once, however often sent
        if not crashed:
            assert len(created) == 1, (order_id, got)
        routed = {json.dumps(r["body"]["shipments"], sort_keys=True) for r in got if r["body"]["status"] == "routed"}
        assert len(routed) <= 1, (order_id, routed)                 # one decision per order
        stored = state["orders"][order_id]["decision"]
        if routed:
            assert json.dumps(stored["shipments"], sort_keys=True) in routed, (order_id, stored)
        elif stored["status"] == "routed":
            assert order_id in state["rerouted"], (order_id, stored)  # held, then routed when stock came back
        if len(got) > 1:
            figures["ids answered more than once"] += 1
    if not crashed:
        assert set(state["orders"]) == set(answers)                # nothing stored that nobody was told of
    for record in records:                                         # an invalid order is not stored
        if record["status"] == 422 and record["do"] == "place":
            assert "-BAD-" in record["id"] and record["id"] not in state["orders"], record
    figures["stored orders"] = len(state["orders"])
    return dict(figures)


# ---- the tests ---------------------------------------------------------------------------------------

def sent_orders(steps: list[list[dict]]) -> dict[str, dict]:
    """The first body sent under each id (a reused id's other content is the 409)."""
    first: dict[str, dict] = {}
    for client_steps in steps:
        for step in client_steps:
            if step["do"] == "place" and step["body"]["id"] not in first:
                first[step["body"]["id"]] = step["body"]
    return first


def report(name: str, figures: dict, extra: dict) -> None:
    """Figures for docs/reliability.md (shown with pytest -s)."""
    print(f"\n{name}: " + json.dumps({**extra, **figures}, sort_keys=True))


def test_contention_nothing_oversold_nothing_lost(tmp_path):
    steps = plans(seed=7)
    sent = sent_orders(steps)
    with LiveServer(tmp_path / "server", "--demo", "--workers", str(WORKERS)) as live:
        add_items(live.http)
        started = time.monotonic()
        with Load(tmp_path / "load", live.base, steps) as load:
            load.wait(LOAD_SECONDS + 30)
        took = time.monotonic() - started
        assert live.stop() == 0, live.log()
    assert "Traceback" not in live.log(), live.log()
    records = load.records()
    assert len(sent) >= ORDERS
    figures = check_invariants(live.db, records, sent)
    assert figures["units promised or shipped"] > 0
    assert figures["answer 201 routed"] > 0 and figures["answer 201 held"] > 0
    assert figures["409 conflict"] > 0 and figures["422 invalid order"] > 0
    assert figures["ids answered more than once"] > 0
    # every order wants BF-HOT and far more is asked than there is: all of it is
    # promised or shipped, none left over while orders wait (cancelled units went
    # to held orders)
    stock = read_db(live.db)["stock"]
    assert sum(on_hand - reserved for (sku, _), (on_hand, reserved) in stock.items() if sku == HOT) == 0, stock
    report("contention", figures, {"clients": CLIENTS, "workers": WORKERS, "distinct orders": len(sent),
                                   "requests": len(records), "seconds": round(took, 1)})


def server_processes(pgid: int) -> list[int]:
    """The live processes of the server's process group (uvicorn and its workers)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[2]) == pgid and fields[0] != "Z":
                pids.append(int(entry.name))
    return pids


def kill_everything(live: LiveServer) -> int:
    """kill -9 every process of the server, master and workers; returns how many."""
    process = live.process
    victims = server_processes(process.pid)
    # uvicorn's master, each worker and multiprocessing's resource tracker
    assert len(victims) >= WORKERS + 1, victims
    os.killpg(process.pid, signal.SIGKILL)
    process.wait(15)
    deadline = time.monotonic() + 15
    while server_processes(process.pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not server_processes(process.pid), "a server process survived kill -9"
    live.process = None
    if live._client is not None:
        live._client.close()
        live._client = None
    return len(victims)


KILL_AT = (300, 900, 1500)      # acknowledged orders at which every server process is killed


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc to see every server process die")
def test_kill_9_mid_load_loses_nothing_acknowledged(tmp_path):
    steps = plans(seed=11)
    sent = sent_orders(steps)
    live = LiveServer(tmp_path / "server", "--demo", "--workers", str(WORKERS)).start()
    killed, restarts, checked = 0, 0, 0
    load = None
    try:
        add_items(live.http)
        started = time.monotonic()
        with Load(tmp_path / "load", live.base, steps) as load:
            for threshold in KILL_AT:
                deadline = time.monotonic() + LOAD_SECONDS
                while load.acknowledged() < threshold and load.running() and time.monotonic() < deadline:
                    time.sleep(0.02)
                if not load.running():
                    break
                killed += kill_everything(live)
                kill_time = time.time()
                # every order a client was told about before the kill
                before = {r["id"] for r in load.records()
                          if r["do"] == "place" and r["status"] in (200, 201) and r["at"] <= kill_time}
                live.start()                                     # same database file, a new port
                restarts += 1
                load.point_at(live.base)
                state = read_db(live.db)
                missing = before - set(state["orders"])
                assert not missing, f"acknowledged before the kill, gone after it: {sorted(missing)[:10]}"
                checked += len(before)
            load.wait(LOAD_SECONDS + 30)
        took = time.monotonic() - started
        assert restarts == len(KILL_AT), f"the load ended before kill {restarts + 1}"
        assert live.stop() == 0, live.log()
    finally:
        live.stop()
    records = load.records()
    figures = check_invariants(live.db, records, sent, crashed=True)
    assert figures["requests without an answer (server killed)"] > 0
    report("crash", figures, {"clients": CLIENTS, "workers": WORKERS, "distinct orders": len(sent),
                              "requests": len(records), "processes killed": killed, "restarts": restarts,
                              "acknowledged orders checked after a kill": checked, "seconds": round(took, 1)})


# ---- a database locked by someone else ---------------------------------------------------------

def snapshot(db: Path) -> dict[str, list]:
    """Every row of every table, read through a connection of its own."""
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        tables = [t for (t,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table' "
                                              "AND name NOT LIKE 'sqlite_%' ORDER BY name")]
        return {t: sorted(map(repr, conn.execute(f'SELECT * FROM "{t}"'))) for t in tables}
    finally:
        conn.close()


BUSY_MS = 300


def test_a_locked_database_is_503_with_retry_after_and_nothing_half_written(tmp_path):
    with LiveServer(tmp_path / "server", "--demo", "--workers", "2",
                    env={"STEVE_BUSY_TIMEOUT_MS": str(BUSY_MS)}) as live:
        http = live.http
        add_items(http)
        rng = random.Random(3)
        for order_id in ("LK-1", "LK-2"):
            assert http.post("/orders", json=order(order_id, rng, qty=1)).json()["status"] == "routed"
        active = http.get("/playbooks/active").json()["text"]
        candidates = [http.post("/playbooks", json={"text": active + f'\nrule "extra {n}"\n  when order.total > '
                                                    f'${5000 + n}\n  then ship complete\n'}).json()["version"]
                      for n in range(2)]
        network, catalog = http.get("/network").json(), http.get("/catalog").json()
        new_playbook = active + '\nrule "extra 3"\n  when order.total > $9000\n  then ship complete\n'
        writes = [
            ("POST", "/orders", {"json": order("LK-3", rng, qty=1)}),
            ("PUT", "/stock", {"json": [{"node": "PA-DC", "sku": HOT, "on_hand": 25}]}),
            ("POST", "/stock/adjust", {"json": {"event_id": "lk-1", "node": "KC-DC", "sku": HOT, "delta": 5}}),
            ("PUT", "/network", {"json": network}),
            ("PUT", "/catalog", {"json": catalog}),
            ("POST", "/playbooks", {"json": {"text": new_playbook}}),
            ("POST", f"/playbooks/{candidates[0]}/shadow", {}),
            ("POST", f"/playbooks/{candidates[1]}/activate", {}),
            ("POST", "/orders/LK-1/cancel", {}),
            ("POST", "/orders/LK-2/ship", {}),
        ]
        before = snapshot(live.db)
        locker = sqlite3.connect(live.db, isolation_level=None, timeout=0)
        try:
            locker.execute("BEGIN IMMEDIATE")                  # someone else holds the write lock
            for method, path, options in writes:
                started = time.monotonic()
                answer = http.request(method, path, **options)
                took = time.monotonic() - started
                assert answer.status_code == 503, (method, path, answer.status_code, answer.text)
                assert answer.headers["retry-after"] == "1"
                assert "busy" in answer.json()["error"]
                assert BUSY_MS / 1000 * 0.8 <= took < 3, (path, took)     # waited the busy timeout, no longer
            # readers are not blocked by a writer (WAL)
            for method, path, options in [("GET", "/health", {}), ("GET", "/orders/LK-1", {}),
                                          ("GET", f"/availability/{HOT}", {}),
                                          ("POST", "/route", {"json": order("LK-9", rng, qty=1)})]:
                assert http.request(method, path, **options).status_code == 200, path
            assert snapshot(live.db) == before                   # nothing half-written
        finally:
            locker.execute("ROLLBACK")
            locker.close()
        # the same requests again, once the lock is gone: each one goes through
        statuses = [http.request(method, path, **options).status_code for method, path, options in writes]
        assert statuses == [201, 200, 201, 200, 200, 201, 200, 200, 200, 200], statuses
        assert snapshot(live.db) != before
        live.stop()
    assert "Traceback" not in live.log(), live.log()


def test_a_lock_taken_after_a_commit_does_not_turn_it_into_a_503(tmp_path, monkeypatch):
    """Cancelling commits, then re-routes held orders in transactions of their
    own. If the database is locked in between, the cancel has happened: it is
    answered as done (not 503, which would make the client retry into a 409),
    and the held order waits for the next stock change."""
    from server.demo import load_demo
    from server.service import Service
    from server.store import Store

    store = Store(tmp_path / "steve.db")
    try:
        load_demo(store)
        service = Service(store)
        rows = [(node, sku, units) for (sku, node), units in STOCK.items()]
        catalog = service.get_document("catalog")
        catalog["items"].append({"sku": HOT, "name": "Doorbuster parka", "weight": 1.2, "price": 120.0})
        from engine.models import Catalog
        service.put_catalog(Catalog.model_validate(catalog), "test")
        with store.write() as conn:
            store.set_on_hand(conn, [r for r in rows if r[1] == HOT], "test")
        rng = random.Random(5)
        first, _ = service.place(order("LB-1", rng, qty=50))              # takes every unit
        waiting, _ = service.place(order("LB-2", rng, qty=1))
        assert (first["status"], waiting["status"]) == ("routed", "held")

        real_write, calls = store.write, []

        def locked_after_the_first(*args, **kwargs):
            calls.append(1)
            if len(calls) > 1:
                raise sqlite3.OperationalError("database is locked")
            return real_write(*args, **kwargs)

        monkeypatch.setattr(store, "write", locked_after_the_first)
        result = service.cancel("LB-1", "test")
        assert result["state"] == "cancelled" and sum(line["qty"] for line in result["released"]) == 50
        assert len(calls) == 2                                           # the cancel, then one reroute try
        monkeypatch.setattr(store, "write", real_write)
        assert service.order("LB-2")["state"] == "held"                  # waits for the next change
        assert service.adjust_stock("lb-1", {"event_id": "lb-1", "node": "PA-DC", "sku": HOT, "delta": 1},
                                    [("PA-DC", HOT, 1)], "test")[0]["rerouted"] == ["LB-2"]
    finally:
        store.close()
