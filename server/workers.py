"""Several worker processes, each accepting on a listening socket of its own.

uvicorn's own `--workers` binds one socket in the parent and every worker
accepts on it. uvloop accepts every connection waiting when it wakes, so the
first worker awake takes most of them: with 32 keep-alive clients one worker
was seen serving 60-70% of the orders (its core busy, its queue long) while
the other idled. Here each worker binds its own socket on the same address
with SO_REUSEPORT (Linux), and the kernel spreads new connections over the
workers by a hash of the client's address and port.

The parent holds the port with one more socket, bound but never listening
(it gets no connections): a second server on the same port fails at once,
as it would with uvicorn's supervisor. It restarts a worker that dies, and
stops everything when a worker fails to start or on Ctrl+C / SIGTERM.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import socket
import sys
import threading
import time

import uvicorn
from uvicorn.config import STARTUP_FAILURE      # a worker's exit code when it could not start



def supported() -> bool:
    """True where the kernel balances connections over SO_REUSEPORT sockets."""
    return sys.platform.startswith("linux") and hasattr(socket, "SO_REUSEPORT")


def listener(host: str, port: int) -> socket.socket:
    """A socket bound to (host, port) with SO_REUSEPORT, as uvicorn binds its own."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    return sock


def _worker(options: dict, parent: int) -> None:
    """One worker process: its own socket, then uvicorn's server on it. It
    shuts down (as on SIGTERM) if the parent is gone, killed with -9 say,
    rather than serve on unsupervised."""
    config = uvicorn.Config(**options)
    try:
        sock = listener(config.host, config.port)
    except OSError as error:
        print(f"steve: a worker cannot listen on {config.host}:{config.port}: {error.strerror or error}",
              file=sys.stderr)
        sys.exit(STARTUP_FAILURE)
    threading.Thread(target=_watch_parent, args=(parent,), daemon=True, name="steve-parent-watch").start()
    server = uvicorn.Server(config)
    server.run(sockets=[sock])
    if not server.started:          # the app failed to load or start: say so to the parent
        sys.exit(STARTUP_FAILURE)


def _watch_parent(parent: int) -> None:
    while os.getppid() == parent:
        time.sleep(1.0)
    os.kill(os.getpid(), signal.SIGTERM)


def serve(options: dict, workers: int, say=print) -> int:
    """Run `workers` uvicorn workers with uvicorn.Config(**options) (host,
    port, app, ...) until Ctrl+C or SIGTERM; the exit status (1 when a
    worker failed to start)."""
    try:
        guard = listener(options["host"], options["port"])
    except OSError as error:
        say(f"steve: cannot listen on {options['host']}:{options['port']}: {error.strerror or error}")
        return 1
    spawn = multiprocessing.get_context("spawn")
    stop = threading.Event()
    previous = {sig: signal.signal(sig, lambda *_: stop.set()) for sig in (signal.SIGINT, signal.SIGTERM)}

    def start():
        process = spawn.Process(target=_worker, args=(options, os.getpid()), name="steve-worker")
        process.start()
        return process

    running = [start() for _ in range(workers)]
    status = 0
    try:
        while not stop.wait(0.5):
            for number, process in enumerate(running):
                if process.is_alive():
                    continue
                if process.exitcode == STARTUP_FAILURE:     # it would fail the same way again
                    say("steve: a worker failed to start; stopping")
                    status = 1
                    stop.set()
                    break
                say(f"steve: worker {process.pid} stopped (exit code {process.exitcode}); starting another")
                running[number] = start()
    finally:
        for process in running:
            if process.is_alive():
                process.terminate()         # uvicorn shuts down gracefully on SIGTERM
        for process in running:
            process.join(timeout=30)
            if process.is_alive():
                process.kill()
                process.join()
        guard.close()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return status
