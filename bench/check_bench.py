"""How long `dsl.check` takes on a playbook once the parser is built.

    python bench/check_bench.py [PLAYBOOK] [--runs 200]

Prints the first call (which builds the LALR parser) and then the median and
worst of the following runs.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import dsl  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("playbook", nargs="?", default=str(ROOT / "tests/fixtures/seed/seed.playbook"))
    parser.add_argument("--runs", type=int, default=200)
    args = parser.parse_args()
    text = Path(args.playbook).read_text()
    started = time.perf_counter()
    first = dsl.check(text, Path(args.playbook).name)
    cold = time.perf_counter() - started
    times = []
    for _ in range(args.runs):
        started = time.perf_counter()
        dsl.check(text, Path(args.playbook).name)
        times.append(time.perf_counter() - started)
    print(f"{Path(args.playbook).name}: {len(text.splitlines())} lines, {len(first)} diagnostics")
    print(f"first check (builds the parser): {cold * 1000:.1f} ms")
    print(f"then, over {args.runs} runs: median {statistics.median(times) * 1000:.2f} ms, "
          f"worst {max(times) * 1000:.2f} ms")


if __name__ == "__main__":
    main()
