"""Start the service under uvicorn (what `steve serve` does)."""

from __future__ import annotations

import errno
import os
import shutil
import socket
import tempfile
import threading
import time
import urllib.error
import urllib.request

import uvicorn

from .app import route_time_limit
from .demo import DEMO_ORDER, load_demo
from .store import Store, busy_timeout_ms
from .workers import serve as own_socket_workers, supported as reuse_port_supported

LOOPBACK = {"127.0.0.1", "localhost", "::1"}


class ServeError(Exception):
    pass


def serve(db: str, host: str, port: int, workers: int, token: str | None, max_body: int, demo: bool,
          say=print) -> None:
    if not token and host not in LOOPBACK:
        raise SystemExit(f"steve: refusing to serve on {host} without a token: pass --token or set "
                         "STEVE_TOKEN (only loopback may run open)")
    try:
        busy_timeout_ms()
        route_time_limit()
    except ValueError as error:
        raise SystemExit(f"steve: {error}") from None
    store = Store(db)
    try:
        if demo:
            loaded = load_demo(store)
            say(f"Demo {'loaded into' if loaded else 'already present in'} {db}.")
        empty = store.is_empty()
        catalog = None if empty else store.document("catalog")
    finally:
        store.close()
    os.environ["STEVE_DB"] = os.path.abspath(db)
    os.environ["STEVE_MAX_BODY"] = str(max_body)
    if token:
        os.environ["STEVE_TOKEN"] = token
    else:
        os.environ.pop("STEVE_TOKEN", None)
        say("No token configured: write endpoints are open (loopback only).")
    metrics_dir = None
    if workers > 1 and not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        metrics_dir = tempfile.mkdtemp(prefix="steve-metrics-")
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = metrics_dir
    base = f"http://{'[' + host + ']' if ':' in host else host}:{port}"
    if empty:
        say("The database is empty: PUT /network, PUT /catalog, PUT /stock and POST /playbooks, "
            "or start with --demo.")
    elif _sells(catalog, [line["sku"] for line in DEMO_ORDER["lines"]]):
        import json
        # /route is a dry run: it needs no token even when one is configured
        say("Try:\n  curl -s " + base + "/route -H 'Content-Type: application/json'"
            + " -d '" + json.dumps(DEMO_ORDER) + "'")
    else:                           # a database of the user's own: the demo order would not route
        say(f"Try:\n  curl -s {base}/health")
    # uvicorn listens once its workers have started (a few seconds with several)
    say(f"Steve is starting on {base} ({workers} worker{'s' if workers != 1 else ''}, database {db}); "
        "press Ctrl+C to stop.")
    probe = "127.0.0.1" if host in ("0.0.0.0", "") else "::1" if host == "::" else host
    if not _taken(host, port):      # another server's answer there would read as Steve's
        threading.Thread(target=_announce_when_listening, daemon=True, name="steve-ready",
                         args=(f"http://{'[' + probe + ']' if ':' in probe else probe}:{port}/health", base,
                               say)).start()
    options = dict(app="server.app:create_app", factory=True, host=host, port=port, loop="uvloop",
                   http="httptools", log_level="warning", access_log=False)
    try:
        if workers > 1 and workers_own_sockets():
            status = own_socket_workers(options, workers, say=say)
            if status:
                raise SystemExit(status)
        else:
            uvicorn.run(**options, workers=workers)
    finally:
        if metrics_dir is not None:     # the workers' metric files die with the run
            shutil.rmtree(metrics_dir, ignore_errors=True)


def workers_own_sockets() -> bool:
    """Several workers each accept on a socket of their own (server/workers.py)
    where the kernel supports it, unless STEVE_SHARED_SOCKET=1 asks for
    uvicorn's one shared socket."""
    return reuse_port_supported() and os.environ.get("STEVE_SHARED_SOCKET", "") not in ("1", "true", "yes")


def _taken(host: str, port: int) -> bool:
    """True when something already listens on (host, port): uvicorn will
    not be able to bind it (and says so), and the /health answers there are
    not Steve's."""
    try:
        infos = socket.getaddrinfo(host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except OSError:
        return False                # uvicorn says what is wrong with the address
    for family, kind, proto, _, address in infos[:1]:
        with socket.socket(family, kind, proto) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)   # as uvicorn binds
            try:
                probe.bind(address)
            except OSError as error:
                return error.errno == errno.EADDRINUSE
    return False


def _announce_when_listening(health: str, base: str, say, deadline: float = 120.0) -> None:
    """Say "Steve is listening on …" once a worker answers on the port
    (any HTTP answer counts); nothing if none does within `deadline` s
    (uvicorn then says why, e.g. the address is in use)."""
    end = time.monotonic() + deadline
    direct = urllib.request.build_opener(urllib.request.ProxyHandler({}))     # never via http_proxy
    while time.monotonic() < end:
        try:
            with direct.open(health, timeout=2.0):
                pass
        except urllib.error.HTTPError:
            pass                        # an answer all the same (a proxy's or the token's)
        except (OSError, ValueError):
            time.sleep(0.1)
            continue
        say(f"Steve is listening on {base}.")
        return


def _sells(catalog: dict | None, skus: list[str]) -> bool:
    """True when the stored catalog has every one of `skus`."""
    known = {item.get("sku") for item in (catalog or {}).get("items", ())}
    return all(sku in known for sku in skus)
