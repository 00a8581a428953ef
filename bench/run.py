"""Black Friday at 3 AM on one small machine: Steve's benchmarks in one run.

    python bench/run.py                     # everything, prints a summary
    python bench/run.py --update-doc        # and rewrites the figures in docs/benchmarks.md
    python bench/run.py --only inprocess,quality --orders 2000

Parts (each can be chosen with --only):

  inprocess  route() on one core, no reservations: orders/s, p50/p99 per
             order, for Steve's default (compiled) matcher and, on the same
             orders, the peers: rules hand-written in Python (the floor),
             the rules in durable_rules' own DSL, Steve's durable_rules and
             reference Python matchers; plus matching alone per order.
  batch      route_batch() with reservations (stock runs down), orders/s.
  http       POST /orders (route + reserve) against `steve serve --workers 2`
             with wrk (Debian package `wrk`, Lua scripts) as the load
             generator: 32 connections on loopback, sharing the 2 cores with
             the server, in two runs, each on a freshly filled database:
             closed loop (as fast as it can: capacity, orders/s,
             p50/p99/p99.9) and open loop (--http-rate orders/s offered on a
             fixed schedule, latency from the scheduled send: achieved rate,
             p50/p90/p99/p99.9/max). Errors, the stock invariant after each
             run (reserved <= on_hand; reserved = live reservations), and the
             server's peak RSS (master and workers).
  quality    1,000 orders: the allocator's plan against an exact MILP (HiGHS
             via `pip install highspy`, bench only): share optimal, mean and
             worst gap, split rate against the optimum's.

Data: bench/data/ (made by bench/generate.py with the default seed when
missing). Results: bench/data/results.json. Loopback only; every loop is
bounded in count and time.
"""

from __future__ import annotations

import argparse
import gc
import json
import math
import os
import platform
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))
sys.path.insert(0, str(ROOT / "tests"))
import installed  # noqa: E402

# The installed Steve when it is this checkout (`pip install .`: the engine's
# hot modules compiled, see setup.py), else the checkout's own sources.
if not installed.installed_is_checkout():
    sys.path.insert(1, str(ROOT))

import dsl  # noqa: E402
import engine  # noqa: E402
from engine import allocator, fastmatch, matching  # noqa: E402
from engine.facts import gather  # noqa: E402
from steve.files import load_catalog, load_network, load_stock  # noqa: E402

import generate  # noqa: E402
import peers  # noqa: E402

DATA = ROOT / "bench" / "data"
DOC = ROOT / "docs" / "benchmarks.md"
PARTS = ("inprocess", "batch", "http", "quality")


# ---- set-up ---------------------------------------------------------------------------------

class Data:
    def __init__(self, folder: Path, count: int):
        if not (folder / "orders.jsonl").exists():
            print(f"generating the data set in {folder} ...", flush=True)
            generate.write(folder, 2026, 10_000)
        self.folder = folder
        self.playbook_text = (folder / "bench.playbook").read_text(encoding="utf-8")
        self.rulebook = dsl.compile(self.playbook_text, "bench.playbook")
        self.network = load_network(str(folder / "network.json"))
        self.catalog = load_catalog(str(folder / "catalog.json"))
        self.stock = load_stock(str(folder / "stock.csv"))
        self.lines = (folder / "orders.jsonl").read_text(encoding="utf-8").splitlines()[:count]
        self.orders = [json.loads(line) for line in self.lines]


def machine() -> dict:
    model = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    compiled = installed.compiled_modules()
    return {"nproc": os.cpu_count(), "cpu": model, "python": platform.python_version(),
            "platform": platform.platform(),
            "engine": f"{len(compiled)} modules compiled (Cython)" if compiled else "pure Python"}


def _probe_loop(_=None) -> float:
    started = time.perf_counter()
    total = 0
    for i in range(1_000_000):
        total += i * i % 7
    return time.perf_counter() - started


def speed_probe() -> dict:
    """How fast this (shared) machine is right now: a fixed loop on one core,
    then on both at once, in ms (best of 3). On the 2-core machine of
    docs/benchmarks.md one loop takes ~55 ms, and as long on both cores at
    once; in its slow spells (the neighbours' load) the loops took up to
    ~1.5x as long. A figure measured in such a spell is low by about as much."""
    from multiprocessing import Pool
    alone = min(_probe_loop() for _ in range(3))
    with Pool(2) as pool:
        both = min(max(pool.map(_probe_loop, [0, 1])) for _ in range(3))
    return {"one_core_ms": round(alone * 1000, 1), "two_cores_ms": round(both * 1000, 1)}


def _pct(sorted_values: list[float], share: float) -> float:
    if not sorted_values:
        return math.nan
    return sorted_values[min(len(sorted_values) - 1, max(0, math.ceil(share * len(sorted_values)) - 1))]


# ---- 1 and 5: in-process routing and the peers ------------------------------------------------

def route_all(data: Data, orders: list, matcher=None) -> dict:
    options = {} if matcher is None else {"matcher": matcher}
    stock = data.stock
    latencies, statuses = [], {}
    decisions = []
    started, cpu_started = time.perf_counter(), time.process_time()
    for order in orders:
        t0 = time.perf_counter()
        decision = engine.route(data.rulebook, data.network, data.catalog, stock, order, **options)
        latencies.append(time.perf_counter() - t0)
        statuses[decision.status] = statuses.get(decision.status, 0) + 1
        decisions.append(decision)
    elapsed = time.perf_counter() - started
    cpu = time.process_time() - cpu_started
    latencies.sort()
    return {"orders": len(orders), "seconds": round(elapsed, 3), "orders_per_s": round(len(orders) / elapsed, 1),
            "orders_per_cpu_s": round(len(orders) / cpu, 1),
            "p50_ms": round(_pct(latencies, 0.50) * 1000, 3), "p99_ms": round(_pct(latencies, 0.99) * 1000, 3),
            "statuses": statuses, "_decisions": decisions, "_latencies": latencies}


def route_interleaved(data: Data, orders: list, matchers: dict, chunk: int = 100) -> dict:
    """route_all for several matchers on the same orders, chunk by chunk in
    turn, so that a busy neighbour on a shared machine slows them alike."""
    parts: dict[str, list] = {label: [] for label in matchers}
    for start in range(0, len(orders), chunk):
        for label, matcher in matchers.items():
            gc.collect()                # no one pays for the garbage of the one before
            parts[label].append(route_all(data, orders[start:start + chunk], matcher))
    out = {}
    for label, results in parts.items():
        seconds = sum(r["seconds"] for r in results)
        cpu = sum(r["orders"] / r["orders_per_cpu_s"] for r in results)
        statuses: dict[str, int] = {}
        for r in results:
            for key, value in r["statuses"].items():
                statuses[key] = statuses.get(key, 0) + value
        latencies = sorted(x for r in results for x in r["_latencies"])
        out[label] = {"orders": len(orders), "seconds": round(seconds, 3),
                      "orders_per_s": round(len(orders) / seconds, 1),
                      "orders_per_cpu_s": round(len(orders) / cpu, 1),
                      "p50_ms": round(_pct(latencies, 0.50) * 1000, 3),
                      "p99_ms": round(_pct(latencies, 0.99) * 1000, 3), "statuses": statuses,
                      "_decisions": [d for r in results for d in r["_decisions"]]}
    return out


def _allocation(decision) -> tuple:
    return (decision.status, tuple((s.node, s.carrier, tuple((l.sku, l.qty) for l in s.lines))
                                   for s in decision.shipments))


def matching_only(data: Data, orders: list, matchers: dict) -> dict:
    bases = []
    for order in orders:
        try:
            bases.append(gather(engine.Order.model_validate(order), data.network, data.catalog, data.stock,
                                data.rulebook.settings.timezone).base)
        except engine.OrderError:
            continue
    out = {}
    for label, run in matchers.items():
        fresh = [matching.FactBase(dict(b.order), b.lines, b.candidates) for b in bases]
        started = time.perf_counter()
        for base in fresh:
            run(data.rulebook, base)
        out[label] = round((time.perf_counter() - started) / len(fresh) * 1e6, 1)
    out["orders"] = len(bases)
    out["candidates_per_order"] = round(sum(len(b.candidates) for b in bases) / len(bases), 1)
    return out


def part_inprocess(data: Data, args) -> dict:
    orders = data.orders
    engine.route(data.rulebook, data.network, data.catalog, data.stock, orders[0])   # warm the ZIP table
    gc.collect()
    gc.freeze()         # what is loaded stays: as steve serve does after its warm-up
    hand = peers.handwritten(data.rulebook)
    print("in-process: Steve (compiled matcher) and the hand-written rules, in turn ...", flush=True)
    both = route_interleaved(data, orders, {"steve": None, "handwritten": hand})
    steve, floor = both["steve"], both["handwritten"]
    same = sum(_allocation(a) == _allocation(b) for a, b in zip(steve["_decisions"], floor["_decisions"]))
    peer_count = min(len(orders), args.peer_orders)
    subset = orders[:peer_count]
    try:
        from engine import durable_engine
        durable_engine.warm(data.rulebook)
    except ImportError:
        durable_engine = None
    dsl_matcher = peers.durable_dsl(data.rulebook)
    peer_matchers = {"steve": None, "handwritten": hand, "python_reference": matching.run_rules,
                     "durable_dsl": dsl_matcher}
    if durable_engine is not None:
        peer_matchers["durable_engine"] = durable_engine.run_rules
    print(f"in-process: every peer on {peer_count:,} orders, in turn ...", flush=True)
    on_subset = route_interleaved(data, subset, peer_matchers, chunk=50)
    results = {"steve": steve, "handwritten": floor, "handwritten_same_allocation": same,
               "peer_orders": peer_count, "steve_on_peer_orders": on_subset["steve"],
               "handwritten_on_peer_orders": on_subset["handwritten"]}
    for key in ("python_reference", "durable_engine", "durable_dsl"):
        if key in on_subset:
            results[key] = on_subset[key]
    for key in ("handwritten_on_peer_orders", "python_reference", "durable_engine", "durable_dsl"):
        if key in results:
            results[key + "_same_allocation"] = sum(
                _allocation(a) == _allocation(b)
                for a, b in zip(on_subset["steve"]["_decisions"], results[key]["_decisions"]))
    matchers = {"compiled": fastmatch.run_rules, "handwritten": hand, "python": matching.run_rules,
                "durable_dsl": dsl_matcher}
    if durable_engine is not None:
        matchers["durable_engine"] = durable_engine.run_rules
    print("matching alone ...", flush=True)
    results["matching_us_per_order"] = matching_only(data, subset, matchers)
    for value in results.values():
        if isinstance(value, dict):
            value.pop("_decisions", None)
            value.pop("_latencies", None)
    return results


# ---- 2: batch with reservations --------------------------------------------------------------

def part_batch(data: Data, args) -> dict:
    print("batch with reservations ...", flush=True)
    stock = data.stock.copy()
    started = time.perf_counter()
    statuses = {}
    for decision in engine.route_batch(data.rulebook, data.network, data.catalog, stock, data.orders):
        statuses[decision.status] = statuses.get(decision.status, 0) + 1
    elapsed = time.perf_counter() - started
    return {"orders": len(data.orders), "seconds": round(elapsed, 3),
            "orders_per_s": round(len(data.orders) / elapsed, 1), "statuses": statuses}


# ---- 3 and 6: HTTP and memory ------------------------------------------------------------------

WRK_SCRIPT = r"""
local bodies = {}
local counter = 0
local next_tid = 0
function setup(thread)
  thread:set("tid", next_tid)
  next_tid = next_tid + 1
end
function init(args)
  local path, nthreads = args[1], tonumber(args[2])
  local i = 0
  for line in io.lines(path) do
    if i % nthreads == tid then table.insert(bodies, line) end
    i = i + 1
  end
end
function request()
  counter = counter + 1
  local body = bodies[((counter - 1) % #bodies) + 1]
  return wrk.format("POST", "/orders", {["Content-Type"] = "application/json"}, body)
end
function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'WRKJSON {"requests": %d, "duration_us": %d, "p50_us": %d, "p90_us": %d, "p99_us": %d, ' ..
    '"p999_us": %d, "max_us": %d, "connect": %d, "read": %d, "write": %d, "status": %d, "timeout": %d}\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(90),
    latency:percentile(99), latency:percentile(99.9), latency.max, e.connect, e.read, e.write,
    e.status, e.timeout))
end
"""

# Open loop at a fixed offered rate (wrk2's model, in wrk 4's Lua). The offered
# schedule is one send every 1/rate s for `seconds` from a common epoch, dealt
# round robin to the threads (thread t owns sends t, t + threads, ...). wrk
# calls delay() before every request of a connection but does not say which
# connection is asking, so a free connection claims its thread's next unclaimed
# send time and waits for it: while not every connection is busy this is the
# connections each sending at rate/connections with evenly spread phases; when
# all are busy, due sends wait for the first free connection and go at once.
# The k-th request a thread makes is charged from its k-th send time (or from
# when it is made, if wrk's whole-millisecond timer fired early), and its
# latency runs from that time to the response, found by the order id in the
# response: corrected for coordinated omission, as in wrk2. After the window
# wrk runs WRK_OPEN_DRAIN_S more seconds without sending, so that late answers
# are measured; a send still unanswered at the end (or never sent) counts with
# its time so far, a lower bound. done() runs in the main Lua state: it reads each
# thread's figures through the thread objects kept by setup() (thread:get
# copies a global of that thread's Lua state).
WRK_OPEN_DRAIN_S = 2
WRK_OPEN_SCRIPT = r"""
local ffi = require("ffi")
ffi.cdef[[
typedef struct { long tv_sec; long tv_nsec; } steve_timespec_t;
int clock_gettime(int clock_id, steve_timespec_t *tp);
]]
local CLOCK_MONOTONIC = 1
local ts = ffi.new("steve_timespec_t")
local function now_us()
  ffi.C.clock_gettime(CLOCK_MONOTONIC, ts)
  return tonumber(ts.tv_sec) * 1000000 + tonumber(ts.tv_nsec) / 1000
end

-- main state: the threads, and the schedule's epoch (once every thread has loaded its orders)
local threads, first_epoch = {}, nil
local LEAD_US = 100000
function setup(thread)
  if #threads == 0 then first_epoch = now_us() + LEAD_US end
  thread:set("tid", #threads)
  thread:set("epoch", first_epoch)
  table.insert(threads, thread)
end

-- thread states; globals, so that done() can read them with thread:get
claimed, sent, answered, in_window, unmatched = 0, 0, 0, 0, 0
samples, statuses, scheduled = {}, {}, {}      -- scheduled: order id -> send time, until answered
local bodies, ids = {}, {}
local headers = {["Content-Type"] = "application/json"}

function init(args)
  local path, nthreads, rate, seconds = args[1], tonumber(args[2]), tonumber(args[3]), tonumber(args[4])
  local i = 0
  for line in io.lines(path) do
    if i % nthreads == tid then
      table.insert(bodies, line)
      table.insert(ids, line:match('"id"%s*:%s*"([^"]*)"'))
    end
    i = i + 1
  end
  gap_us = 1000000 * nthreads / rate
  phase_us = 1000000 * tid / rate
  window_end = epoch + seconds * 1000000
  slots = math.ceil((seconds * 1000000 - phase_us) / gap_us)
end

local function slot(k)
  return epoch + phase_us + (k - 1) * gap_us
end

function delay()
  if claimed >= slots then return 3600000 end     -- the window is over: no more sends
  claimed = claimed + 1
  local wait_us = slot(claimed) - now_us()
  if wait_us <= 0 then return 0 end
  return math.ceil(wait_us / 1000)
end

function request()
  if claimed == 0 then      -- wrk's check of the script at start-up, before any delay(): not sent
    return wrk.format("POST", "/orders", headers, bodies[1])
  end
  sent = sent + 1
  local i = (sent - 1) % #bodies + 1
  local at, now = slot(sent), now_us()
  if at > now then at = now end
  scheduled[ids[i]] = at
  return wrk.format("POST", "/orders", headers, bodies[i])
end

function response(status, headers, body)
  local now = now_us()
  answered = answered + 1
  if now < window_end then in_window = in_window + 1 end
  statuses[status] = (statuses[status] or 0) + 1
  local id = body:match('"order_id"%s*:%s*"([^"]*)"')
  local at = id and scheduled[id]
  if at then
    samples[#samples + 1] = now - at
    scheduled[id] = nil
  else
    unmatched = unmatched + 1
  end
end

local function list(values)
  local out = {}
  for i, value in ipairs(values) do out[i] = string.format("%.0f", value) end
  return "[" .. table.concat(out, ",") .. "]"
end

function done(summary, latency, requests)
  local now = now_us()
  local parts = {}
  for _, thread in ipairs(threads) do
    local codes, open = {}, {}
    for code, count in pairs(thread:get("statuses")) do
      codes[#codes + 1] = string.format('"%d": %d', code, count)
    end
    for _, at in pairs(thread:get("scheduled")) do open[#open + 1] = now - at end
    local epoch, phase, gap = thread:get("epoch"), thread:get("phase_us"), thread:get("gap_us")
    for k = thread:get("sent") + 1, thread:get("slots") do open[#open + 1] = now - (epoch + phase + (k - 1) * gap) end
    parts[#parts + 1] = string.format(
      '{"slots": %d, "sent": %d, "answered": %d, "in_window": %d, "unmatched": %d, "statuses": {%s}, ' ..
      '"latency_us": %s, "unanswered_us": %s}',
      thread:get("slots"), thread:get("sent"), thread:get("answered"), thread:get("in_window"),
      thread:get("unmatched"), table.concat(codes, ", "), list(thread:get("samples")), list(open))
  end
  local e = summary.errors
  io.write(string.format(
    'WRKOPEN {"duration_us": %d, "connect": %d, "read": %d, "write": %d, "timeout": %d, "threads": [%s]}\n',
    summary.duration, e.connect, e.read, e.write, e.timeout, table.concat(parts, ", ")))
end
"""


def _fill_database(db: Path, data: Data) -> None:
    from engine.models import Catalog, Network
    from server.service import Service
    from server.store import Store
    store = Store(str(db))
    try:
        service = Service(store)
        service.put_network(Network.model_validate(json.loads((data.folder / "network.json").read_text())), "bench")
        service.put_catalog(Catalog.model_validate(json.loads((data.folder / "catalog.json").read_text())), "bench")
        rows = [(node, sku, level[0]) for (node, sku), level in sorted(data.stock.levels.items())]
        with store.write() as conn:
            store.set_on_hand(conn, rows, "bench")
        result, _ = service.add_playbook(data.playbook_text, "bench")
        service.activate(result["version"], "bench")
    finally:
        store.close()


def _tree(pid: int) -> list[int]:
    out, stack = [], [pid]
    while stack:
        current = stack.pop()
        out.append(current)
        try:
            children = Path(f"/proc/{current}/task/{current}/children").read_text().split()
        except OSError:
            children = []
        stack.extend(int(c) for c in children)
    return out


def _status_kb(pid: int, field: str) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def _stock_check(db: Path) -> dict:
    """The stock invariant on a database after a run: no row reserved over
    on hand, every row's reserved equal to the sum of its live reservations."""
    conn = sqlite3.connect(str(db))
    try:
        states = dict(conn.execute("SELECT state, COUNT(*) FROM orders GROUP BY state").fetchall())
        over = conn.execute("SELECT COUNT(*) FROM stock WHERE reserved > on_hand").fetchone()[0]
        mismatched = conn.execute(
            "SELECT COUNT(*) FROM stock s LEFT JOIN (SELECT node, sku, SUM(qty) AS q FROM reservations "
            "WHERE state = 'active' GROUP BY node, sku) r ON r.node = s.node AND r.sku = s.sku "
            "WHERE s.reserved != COALESCE(r.q, 0)").fetchone()[0]
        orphan = conn.execute(
            "SELECT COUNT(*) FROM (SELECT node, sku FROM reservations WHERE state = 'active' "
            "GROUP BY node, sku) r LEFT JOIN stock s ON s.node = r.node AND s.sku = r.sku "
            "WHERE s.node IS NULL").fetchone()[0]
        reserved_units = conn.execute("SELECT COALESCE(SUM(reserved), 0) FROM stock").fetchone()[0]
    finally:
        conn.close()
    return {"orders_stored": states, "reserved_over_on_hand": over,
            "reserved_not_equal_live_reservations": mismatched + orphan, "units_reserved": reserved_units}


def _cpu_ticks(pid: int) -> int:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return int(fields[11]) + int(fields[12])        # utime + stime
    except (OSError, IndexError, ValueError):
        return -1


def _wait_for_workers(supervisor: int, workers: int, timeout: float = 30.0) -> None:
    """Wait until `workers` worker processes run and have all been idle for
    half a second (their start-up done). /health answers as soon as the
    first worker is up; wrk opens its connections at once and keeps them,
    so a worker still starting then gets none of them for the whole run
    (one worker did all the work: ~430 instead of ~800 orders/s)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        children = [pid for pid in _tree(supervisor) if pid != supervisor and
                    "spawn_main" in _cmdline(pid)]
        if len(children) >= workers:
            before = {pid: _cpu_ticks(pid) for pid in children}
            time.sleep(0.5)
            if all(_cpu_ticks(pid) == ticks for pid, ticks in before.items()):
                return
        else:
            time.sleep(0.1)
    raise RuntimeError(f"the server's {workers} workers did not settle within {timeout:.0f} s")


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def _serve_and_load(wrk: str, data: Data, folder: Path, script_text: str, seconds: int, connections: int,
                    script_args: list[str]) -> tuple[subprocess.CompletedProcess, dict, dict]:
    """One run on a database of its own: fill it, start `steve serve
    --workers 2` on it, run wrk, stop the server; wrk's output, the server's
    memory, the stock invariant afterwards."""
    from live_server import LiveServer
    folder.mkdir(parents=True)
    db = folder / "steve.db"
    _fill_database(db, data)
    script = folder / "orders.lua"
    script.write_text(script_text, encoding="utf-8")
    server = LiveServer(folder, "--workers", "2", db=db)
    server.start()
    try:
        _wait_for_workers(server.process.pid, 2)
        pids = _tree(server.process.pid)
        idle_rss = {pid: _status_kb(pid, "VmRSS") for pid in pids}
        command = [wrk, "-t", "2", "-c", str(connections), "-d", f"{seconds}s", "--timeout", "10s",
                   "-s", str(script), server.base, "--", *script_args]
        ran = subprocess.run(command, capture_output=True, text=True, timeout=seconds + 60, check=False)
        pids = _tree(server.process.pid)
        peak = {pid: _status_kb(pid, "VmHWM") for pid in pids}
        rss = {pid: _status_kb(pid, "VmRSS") for pid in pids}
    finally:
        server.stop()
    memory = {"server_peak_rss_mb": {str(pid): round(kb / 1024, 1) for pid, kb in peak.items()},
              "server_peak_rss_mb_max": round(max(peak.values()) / 1024, 1),
              "server_peak_rss_mb_sum": round(sum(peak.values()) / 1024, 1),
              "server_rss_mb_idle_sum": round(sum(idle_rss.values()) / 1024, 1),
              "server_rss_mb_after_sum": round(sum(rss.values()) / 1024, 1)}
    return ran, memory, _stock_check(db)


def _wrk_line(ran: subprocess.CompletedProcess, tag: str) -> dict:
    line = next((l for l in ran.stdout.splitlines() if l.startswith(tag + " ")), None)
    if line is None:
        return {"error": "wrk printed no summary", "stdout": ran.stdout[-2000:], "stderr": ran.stderr[-2000:]}
    return json.loads(line[len(tag) + 1:])


def _closed_loop(stats: dict) -> dict:
    if "error" in stats:
        return stats
    seconds = stats["duration_us"] / 1e6
    kinds = {k: stats[k] for k in ("connect", "read", "write", "status", "timeout")}
    return {"seconds": round(seconds, 2), "requests": stats["requests"],
            "orders_per_s": round(stats["requests"] / seconds, 1),
            "p50_ms": stats["p50_us"] / 1000, "p90_ms": stats["p90_us"] / 1000,
            "p99_ms": stats["p99_us"] / 1000, "p999_ms": stats["p999_us"] / 1000,
            "max_ms": stats["max_us"] / 1000, "errors": sum(kinds.values()), "error_kinds": kinds}


def _open_loop(stats: dict, rate: int, seconds: int) -> dict:
    if "error" in stats:
        return stats
    threads = stats["threads"]
    statuses: dict[str, int] = {}
    for t in threads:
        for code, count in t["statuses"].items():
            statuses[code] = statuses.get(code, 0) + count
    answered = [x / 1000 for t in threads for x in t["latency_us"]]
    unanswered = [x / 1000 for t in threads for x in t["unanswered_us"]]
    latencies = sorted(answered + unanswered)      # every scheduled send; the unanswered as lower bounds
    kinds = {"non_2xx": sum(n for code, n in statuses.items() if not 200 <= int(code) < 300),
             **{k: stats[k] for k in ("connect", "read", "write", "timeout")}}
    achieved = sum(t["in_window"] for t in threads) / seconds
    return {"offered_per_s": rate, "achieved_per_s": round(achieved, 1), "kept_up": achieved >= 0.98 * rate,
            "seconds": seconds, "drain_seconds": WRK_OPEN_DRAIN_S,
            "scheduled": sum(t["slots"] for t in threads), "sent": sum(t["sent"] for t in threads),
            "responses": sum(t["answered"] for t in threads),
            "responses_in_window": sum(t["in_window"] for t in threads), "unanswered": len(unanswered),
            "p50_ms": round(_pct(latencies, 0.50), 2), "p90_ms": round(_pct(latencies, 0.90), 2),
            "p99_ms": round(_pct(latencies, 0.99), 2), "p999_ms": round(_pct(latencies, 0.999), 2),
            "max_ms": round(latencies[-1], 2) if latencies else math.nan,
            "errors": sum(kinds.values()), "error_kinds": kinds, "statuses": statuses,
            "repeated_orders": statuses.get("200", 0),
            "responses_without_schedule": sum(t["unmatched"] for t in threads)}


def part_http(data: Data, args) -> dict:
    wrk = shutil.which("wrk")
    if wrk is None:
        return {"skipped": "wrk is not installed (apt-get install wrk)"}
    folder = Path(tempfile.mkdtemp(prefix="steve-bench-"))
    try:
        bodies = folder / "orders.jsonl"
        bodies.write_text("\n".join(data.lines) + "\n", encoding="utf-8")
        threads = "2"
        results = {"load_generator": "wrk 4 (Debian) + Lua scripts, 2 threads, on the same 2 cores as the server",
                   "connections": args.connections, "orders_available": len(data.lines)}
        # Each run posts the orders from the start of the list to a freshly filled database of its own:
        # an order id already stored would be an idempotent replay (200, no routing), cheaper than a new order.
        print(f"http: closed loop, wrk -c {args.connections} for {args.http_seconds} s ...", flush=True)
        ran, memory, stock = _serve_and_load(wrk, data, folder / "closed", WRK_SCRIPT, args.http_seconds,
                                             args.connections, [str(bodies), threads])
        closed = _closed_loop(_wrk_line(ran, "WRKJSON"))
        if "requests" in closed and closed["requests"] > len(data.lines):
            closed["repeated_orders"] = closed["requests"] - len(data.lines)
        results["closed_loop"] = {**closed, "stock": stock, "memory": memory}
        rate = args.http_rate
        seconds = args.http_seconds
        if rate * seconds > len(data.lines):      # never more sends than distinct orders
            seconds = len(data.lines) // rate
            print(f"http: {len(data.lines):,} orders last {seconds} s at {rate}/s: open loop shortened", flush=True)
        if seconds < 1:
            results["open_loop"] = {"skipped": f"too few orders ({len(data.lines)}) for {rate}/s"}
        else:
            print(f"http: open loop, {rate} orders/s offered on {args.connections} connections for {seconds} s "
                  f"(+ {WRK_OPEN_DRAIN_S} s to drain) ...", flush=True)
            ran, memory, stock = _serve_and_load(wrk, data, folder / "open", WRK_OPEN_SCRIPT,
                                                 seconds + WRK_OPEN_DRAIN_S, args.connections,
                                                 [str(bodies), threads, str(rate), str(seconds)])
            results["open_loop"] = {**_open_loop(_wrk_line(ran, "WRKOPEN"), rate, seconds), "stock": stock,
                                    "memory": memory}
        runs = [results[k] for k in ("closed_loop", "open_loop") if "stock" in results[k]]
        results["reserved_over_on_hand"] = sum(r["stock"]["reserved_over_on_hand"] for r in runs)
        results["reserved_not_equal_live_reservations"] = sum(
            r["stock"]["reserved_not_equal_live_reservations"] for r in runs)
        results["server_peak_rss_mb_max"] = max(r["memory"]["server_peak_rss_mb_max"] for r in runs)
        results["server_peak_rss_mb_sum"] = max(r["memory"]["server_peak_rss_mb_sum"] for r in runs)
        results["server_processes"] = max(len(r["memory"]["server_peak_rss_mb"]) for r in runs)
        return results
    finally:
        shutil.rmtree(folder, ignore_errors=True)


# ---- 4: allocation quality --------------------------------------------------------------------

def part_quality(data: Data, args) -> dict:
    try:
        import exact
    except ImportError:
        return {"skipped": "highspy is not installed (pip install highspy)"}
    print(f"quality: {args.quality} orders against a MILP ...", flush=True)
    captured = []
    real_solve = allocator.solve

    def capture(problem, require_node=None):
        plan = real_solve(problem, require_node)
        if require_node is None and capture.active:
            captured.append((problem, plan))
            capture.active = False
        return plan

    allocator.solve = capture
    try:
        stock = data.stock.copy()
        for order in data.orders[:args.quality]:
            capture.active = True
            decision = engine.route(data.rulebook, data.network, data.catalog, stock, order)
            if decision.status == "routed":
                engine.reserve(stock, decision)
    finally:
        allocator.solve = real_solve
    rows = []
    started = time.perf_counter()
    for problem, plan in captured:
        if plan is None:
            continue
        optimum = exact.solve(problem)
        if optimum is None:
            rows.append({"lines": len(problem.lines), "gap": math.nan})
            continue
        rows.append({"lines": len(problem.lines), "gap": exact.gap(problem, plan, optimum),
                     "split": len(plan.shipments) > 1, "split_opt": optimum[2] > 1,
                     "exact": plan.exact})
    milp_seconds = time.perf_counter() - started
    valid = [r for r in rows if not math.isnan(r["gap"])]
    small = [r for r in valid if r["lines"] <= 3]
    finite = [r["gap"] for r in valid if not math.isinf(r["gap"])]

    def optimal(rs):
        return sum(r["gap"] <= 1e-9 for r in rs)

    return {
        "orders": len(data.orders[:args.quality]), "allocated": len(rows), "compared": len(valid),
        "milp_failed": len(rows) - len(valid), "milp_seconds": round(milp_seconds, 1),
        "optimal": optimal(valid), "share_optimal": round(optimal(valid) / max(len(valid), 1), 4),
        "small_orders": len(small), "small_optimal": optimal(small),
        "mean_gap_pct": round(100 * sum(finite) / max(len(finite), 1), 4),
        "worst_gap_pct": round(100 * max(finite, default=0.0), 3),
        "worse_on_avoided_or_days": sum(math.isinf(r["gap"]) for r in valid),
        "split_rate": round(sum(r["split"] for r in valid) / max(len(valid), 1), 4),
        "split_rate_optimum": round(sum(r["split_opt"] for r in valid) / max(len(valid), 1), 4),
        "proved_by_allocator": sum(r["exact"] for r in valid),
    }


# ---- report ---------------------------------------------------------------------------------------

def _verdict(ok: bool) -> str:
    return "pass" if ok else "FAIL"


def summary(results: dict) -> str:
    out = []
    m = results["machine"]
    out.append(f"Machine: {m['nproc']} cores ({m['cpu']}), Python {m['python']}; "
               f"engine: {m.get('engine', 'pure Python')}; "
               f"run {results['when']}, {results['orders']:,} orders.")
    probes = results.get("probes") or {}
    if probes:
        out.append("Speed probe before each part (a fixed loop, ms: one core / both cores at once; "
                   "see speed_probe): " + "; ".join(
                       f"{part} {p['one_core_ms']:.0f} / {p['two_cores_ms']:.0f}" for part, p in probes.items()) + ".")
    out.append("")
    out.append("| figure | measured | bar | |")
    out.append("| --- | --- | --- | --- |")
    ip = results.get("inprocess")
    if ip:
        s, h = ip["steve"], ip["handwritten"]
        ratio = h["orders_per_s"] / s["orders_per_s"]
        out.append(f"| in-process routing, one core | {s['orders_per_s']:,.0f} orders/s (p50 {s['p50_ms']:.2f} ms, "
                   f"p99 {s['p99_ms']:.2f} ms) | ≥ 2,000 orders/s | {_verdict(s['orders_per_s'] >= 2000)} |")
        out.append(f"| hand-written Python rules (floor) | {h['orders_per_s']:,.0f} orders/s: Steve takes "
                   f"{ratio:.2f}× its time | ≤ 3× | {_verdict(ratio <= 3)} |")
    b = results.get("batch")
    if b:
        out.append(f"| batch with reservations (route_batch) | {b['orders_per_s']:,.0f} orders/s | — | |")
    hp = results.get("http")
    if hp and "closed_loop" in hp:
        c, o = hp["closed_loop"], hp.get("open_loop", {})
        if "orders_per_s" in c:
            out.append(f"| HTTP capacity: POST /orders, 2 workers, closed loop (wrk -c {hp['connections']} as fast "
                       f"as it can, on the same 2 cores) | {c['orders_per_s']:,.0f} orders/s, "
                       f"p50 {c['p50_ms']:.1f} ms, p99 {c['p99_ms']:.1f} ms, p99.9 {c['p999_ms']:.1f} ms, "
                       f"{c['errors']} errors | "
                       f"capacity (no latency bar); 0 errors | {_verdict(c['errors'] == 0)} |")
        else:
            out.append(f"| HTTP closed loop | {c} | | |")
        if "offered_per_s" in o:
            ok = o["offered_per_s"] >= 500 and o["kept_up"] and o["p99_ms"] <= 50 and o["errors"] == 0
            out.append(f"| HTTP at a fixed rate: open loop, {o['offered_per_s']:,} orders/s offered on "
                       f"{hp['connections']} connections, latency from the scheduled send | "
                       f"{o['achieved_per_s']:,.0f} orders/s achieved "
                       f"({'kept up' if o['kept_up'] else 'fell behind'}), "
                       f"p50 {o['p50_ms']:.1f} ms, p90 {o['p90_ms']:.1f} ms, p99 {o['p99_ms']:.1f} ms, "
                       f"p99.9 {o['p999_ms']:.1f} ms, max {o['max_ms']:.1f} ms, {o['errors']} errors | "
                       f"≥ 500/s sustained, p99 ≤ 50 ms, 0 errors | {_verdict(ok)} |")
        elif o:
            out.append(f"| HTTP open loop | {o} | | |")
        if "reserved_over_on_hand" in hp:
            inv = hp["reserved_over_on_hand"] == 0 and hp["reserved_not_equal_live_reservations"] == 0
            out.append(f"| stock after the HTTP runs (each on its own database) | {hp['reserved_over_on_hand']} rows "
                       f"reserved > on hand, {hp['reserved_not_equal_live_reservations']} rows reserved ≠ live "
                       f"reservations | 0 and 0 | {_verdict(inv)} |")
            out.append(f"| server peak RSS (largest process; all {hp['server_processes']} together), either run | "
                       f"{hp['server_peak_rss_mb_max']:.0f} MB ({hp['server_peak_rss_mb_sum']:.0f} MB) | ≤ 300 MB | "
                       f"{_verdict(hp['server_peak_rss_mb_max'] <= 300)} |")
    elif hp:
        out.append(f"| HTTP | {hp} | | |")
    q = results.get("quality")
    if q and "compared" in q:
        ok = q["small_optimal"] == q["small_orders"] and q["mean_gap_pct"] <= 0.5
        out.append(f"| allocation vs exact MILP ({q['compared']} orders) | {q['share_optimal']:.1%} optimal; "
                   f"≤ 3 lines: {q['small_optimal']}/{q['small_orders']} optimal; mean gap {q['mean_gap_pct']:.3f}%, "
                   f"worst {q['worst_gap_pct']:.2f}%; split rate {q['split_rate']:.1%} vs {q['split_rate_optimum']:.1%} "
                   f"| every ≤ 3-line order optimal, mean gap ≤ 0.5% | {_verdict(ok)} |")
    if ip:
        out.append("")
        n = ip["peer_orders"]
        base = ip["steve_on_peer_orders"]["orders_per_s"]
        out.append(f"Peers on the same {n:,} orders and rules (route() with each matcher; ratio = its time / Steve's):")
        out.append("")
        out.append("| matcher | orders/s | × Steve's time | same allocations | matching alone, µs/order |")
        out.append("| --- | --- | --- | --- | --- |")
        mo = ip["matching_us_per_order"]
        rows = [("Steve (compiled, default)", ip["steve_on_peer_orders"], n, "compiled"),
                ("hand-written Python", ip["handwritten_on_peer_orders"],
                 ip["handwritten_on_peer_orders_same_allocation"], "handwritten"),
                ("Steve, reference Python matcher", ip.get("python_reference"),
                 ip.get("python_reference_same_allocation"), "python"),
                ("Steve, durable_rules matcher", ip.get("durable_engine"), ip.get("durable_engine_same_allocation"),
                 "durable_engine"),
                ("durable_rules DSL ruleset", ip.get("durable_dsl"), ip.get("durable_dsl_same_allocation"),
                 "durable_dsl")]
        for label, r, same, key in rows:
            if not r:
                continue
            total = r["orders"]
            out.append(f"| {label} | {r['orders_per_s']:,.0f} | {base / r['orders_per_s']:.2f} | "
                       f"{same:,}/{total:,} | {mo.get(key, float('nan')):,.1f} |")
        out.append("")
        out.append(f"Matching alone: on {mo['orders']:,} orders' facts, {mo['candidates_per_order']} "
                   "candidates per order. Over all orders the hand-written rules gave the same allocation as "
                   f"Steve on {ip['handwritten_same_allocation']:,}/{ip['handwritten']['orders']:,}.")
    return "\n".join(out)


def update_doc(text: str) -> None:
    doc = DOC.read_text(encoding="utf-8")
    begin, end = "<!-- results:begin -->", "<!-- results:end -->"
    if begin not in doc or end not in doc:
        raise SystemExit(f"{DOC} has no {begin} ... {end} section")
    head, rest = doc.split(begin, 1)
    _, tail = rest.split(end, 1)
    DOC.write_text(head + begin + "\n" + text + "\n" + end + tail, encoding="utf-8")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--orders", type=int, default=10_000)
    parser.add_argument("--peer-orders", type=int, default=1000, help="orders for the slow peers")
    parser.add_argument("--quality", type=int, default=1000)
    parser.add_argument("--http-seconds", type=int, default=12, help="seconds of each HTTP run")
    parser.add_argument("--http-rate", type=int, default=500,
                        help="orders/s offered by the open-loop HTTP run")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--only", default=",".join(PARTS))
    parser.add_argument("--update-doc", action="store_true")
    args = parser.parse_args()
    if args.http_rate < 1:
        parser.error("--http-rate must be at least 1")
    parts = [p for p in args.only.split(",") if p]
    data = Data(args.data, args.orders)
    results = {"machine": machine(), "when": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
               "orders": len(data.orders)}
    probes = results["probes"] = {}
    for part in parts:
        probes[part] = speed_probe()
        print(f"{part}: machine probe {probes[part]}", flush=True)
        results[part] = globals()[f"part_{part}"](data, args)
    (args.data / "results.json").write_text(json.dumps(results, indent=1) + "\n", encoding="utf-8")
    text = summary(results)
    print(text)
    if args.update_doc:
        update_doc(text)


if __name__ == "__main__":
    main()
