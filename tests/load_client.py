"""One load-generating client for the reliability tests (tests/test_reliability.py)
and the durability benchmark (bench/durability_bench.py), run as a process
of its own:

    python tests/load_client.py PLAN.json

The plan names a file holding the server's base URL (re-read after a
connection error, so the server may be killed and restarted on another
port), an output file, a deadline and a list of steps:

    {"url_file": ..., "out": ..., "seconds": 120,
     "steps": [{"do": "place", "body": {...}}, {"do": "cancel", "id": "..."},
               {"do": "ship", "id": "..."}, {"do": "cancel_if_routed"}, ...]}

Every answer is appended to the output file as one JSON line, flushed at
once, so what was acknowledged survives this process being killed and can
be counted while the load runs:

    {"step": 3, "do": "place", "id": "...", "attempt": 1, "status": 201,
     "body": {...}, "retry_after": null, "at": 1712345678.123}

A request that gets no answer (connection refused or reset, timeout) is
recorded with status null and sent again, the same body, until it is
answered or the deadline passes; a 503 is sent again after its Retry-After.
That is what a real client does, and what makes retries across a crash
part of the test.

Bounded: it talks to 127.0.0.1 only, sends each step until answered or the
deadline, and stops by itself when the steps or the time run out.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit

import httpx

RETRY_PAUSE = 0.05          # first pause after a request with no answer; doubles up to 1 s


def base_url(url_file: Path) -> str:
    url = url_file.read_text().strip()
    host = urlsplit(url).hostname
    if host != "127.0.0.1":
        raise SystemExit(f"load_client: refusing to send load to {host!r}: only 127.0.0.1")
    return url


def run(plan: dict) -> int:
    url_file, out_path = Path(plan["url_file"]), Path(plan["out"])
    deadline = time.monotonic() + float(plan["seconds"])
    headers = {"authorization": f"Bearer {plan['token']}"} if plan.get("token") else {}
    routed: list[str] = []          # ids this client placed that came back routed (for cancel/ship_if_routed)
    answered = 0
    with open(out_path, "a", encoding="utf-8") as out, httpx.Client(timeout=10.0, headers=headers) as http:
        base = base_url(url_file)

        def record(entry: dict) -> None:
            out.write(json.dumps(entry, separators=(",", ":")) + "\n")
            out.flush()

        for number, step in enumerate(plan["steps"]):
            kind = step["do"]
            if kind in ("cancel_if_routed", "ship_if_routed"):
                if not routed:
                    continue
                kind, order_id = kind.split("_")[0], routed.pop(0)
            else:
                order_id = step.get("id") or step["body"].get("id")
            if kind == "place":
                method, path, body = "POST", "/orders", step["body"]
            else:
                method, path, body = "POST", f"/orders/{order_id}/{kind}", None
            attempt, pause = 0, RETRY_PAUSE
            while time.monotonic() < deadline:
                attempt += 1
                entry = {"step": number, "do": kind, "id": order_id, "attempt": attempt}
                try:
                    response = http.request(method, base + path, json=body)
                except httpx.TransportError as error:
                    record({**entry, "status": None, "error": type(error).__name__, "at": time.time()})
                    time.sleep(pause)
                    pause = min(pause * 2, 1.0)
                    try:
                        base = base_url(url_file)        # the server may be back on another port
                    except OSError:
                        pass
                    continue
                try:
                    answer = response.json()
                except ValueError:
                    answer = {"_text": response.text[:2000]}
                record({**entry, "status": response.status_code, "body": answer,
                        "retry_after": response.headers.get("retry-after"), "at": time.time()})
                answered += 1
                if response.status_code == 503:
                    time.sleep(min(float(response.headers.get("retry-after") or 1), 2.0))
                    continue
                if kind == "place" and response.status_code in (200, 201) and answer.get("status") == "routed":
                    routed.append(order_id)
                break
            else:
                break                                      # out of time: stop, do not start new steps
    return 0 if answered else 1


if __name__ == "__main__":
    sys.exit(run(json.loads(Path(sys.argv[1]).read_text())))
