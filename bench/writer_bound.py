"""The best latency any server design could give at a rate, with routing as
fast as it is now: one writer, no HTTP, no lock hand-off, no other thread.

    PYTHONPATH=. python bench/writer_bound.py [--rates 400,500,600] [--seconds 10] [--dir DIR]

Orders of the benchmark data (bench/data, made by bench/generate.py) arrive
on a fixed schedule, RATE a second. One thread places them the way
POST /orders does under its write lock (server.service.Service: route,
reserve, save, one commit per batch), taking every order that is due,
up to the group commit's batch size, as soon as it is free. An order's
latency runs from its scheduled arrival to the commit of its batch, so the
time it waited counts (no coordinated omission). Everything an HTTP server
adds (parsing, validation, answering, a second worker, the cores shared
with the load generator) is left out: the figures are a lower bound for
`steve serve` at that rate on this machine. When the bound misses the
bar, no arrangement of processes and locks will meet it: routing itself
has to get faster.
"""

from __future__ import annotations

import argparse
import gc
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

from run import Data, _fill_database, _pct  # noqa: E402
from server.service import GroupCommit, Service, _prepared  # noqa: E402
from server.store import Store  # noqa: E402

WARM = 200          # orders placed before the clock starts (caches, compiled playbook)


def one_rate(folder: Path, data: Data, rate: int, seconds: int) -> dict:
    db = folder / f"writer-{rate}.db"
    _fill_database(db, data)
    store = Store(str(db))
    try:
        service = Service(store)
        service.warm()
        bodies = [json.loads(line) for line in data.lines]
        count = rate * seconds
        if WARM + count > len(bodies):
            raise SystemExit(f"{len(bodies)} orders are too few for {rate}/s over {seconds} s")
        for body in bodies[:WARM]:
            service.place(body)
        queued = [_prepared(body) for body in bodies[WARM:WARM + count]]
        gc.collect()
        latencies, batches = [], 0
        start = time.perf_counter() + 0.05
        placed = 0
        while placed < count:
            now = time.perf_counter()
            due = min(count, int((now - start) * rate) + 1)
            if due <= placed:
                time.sleep(max(0.0, start + placed / rate - now))
                continue
            batch = range(placed, min(due, placed + GroupCommit.MAX_BATCH))
            answers = service._place_batch([(*queued[k], None) for k in batch])
            done = time.perf_counter()
            errors = [error for _, error in answers if error is not None]
            if errors:
                raise SystemExit(f"placing failed: {errors[0]!r}")
            latencies += [(done - (start + k / rate)) * 1000 for k in batch]
            placed, batches = batch[-1] + 1, batches + 1
        elapsed = time.perf_counter() - start
    finally:
        store.close()
    latencies.sort()
    return {"offered_per_s": rate, "achieved_per_s": round(count / elapsed, 1), "orders": count,
            "mean_batch": round(count / batches, 2), "p50_ms": round(_pct(latencies, 0.50), 2),
            "p99_ms": round(_pct(latencies, 0.99), 2), "p999_ms": round(_pct(latencies, 0.999), 2),
            "max_ms": round(latencies[-1], 2)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rates", default="400,500,600", help="orders/s offered, comma-separated")
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--data", type=Path, default=HERE / "data")
    parser.add_argument("--dir", type=Path, default=None,
                        help="where the databases go (default: a temporary folder beside this file)")
    args = parser.parse_args(argv)
    data = Data(args.data, None)      # every order (a slice to None)
    folder = Path(tempfile.mkdtemp(prefix="writer-bound-", dir=args.dir or HERE))
    try:
        for rate in (int(r) for r in args.rates.split(",")):
            result = one_rate(folder, data, rate, args.seconds)
            print(json.dumps(result), flush=True)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
