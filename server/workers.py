"""Several worker processes, each accepting on a listening socket of its own.

uvicorn's own `--workers` binds one socket in the parent and every worker
accepts on it. uvloop accepts every connection waiting when it wakes, so the
first worker awake takes most of them: with 32 keep-alive clients one worker
was seen serving 60-70% of the orders (its core busy, its queue long) while
the other idled. Here each worker binds its own socket on the same address
with SO_REUSEPORT (Linux), and the kernel spreads new connections over the
workers by a hash of the client's address and port.

The parent first checks that nothing listens on the address (a socket
without SO_REUSEPORT cannot bind beside a listening one, another Steve's
included) and takes a lock named after it (an abstract UNIX socket, against
a second Steve whose workers are still starting); then it holds the port
with one more socket, bound but never listening (it gets no connections).
A taken port is refused at once (exit 1). It restarts a worker that dies,
and stops (exit 1) when a worker cannot start or keeps dying right after
starting; Ctrl+C, SIGTERM or SIGHUP stop it (exit 0), the workers shutting
down gracefully for up to 30 s in all (a second signal kills them).
Connections waiting in a worker's queue when it stops are reset, where a
shared socket would have kept them for another worker.
"""

from __future__ import annotations

import errno
import multiprocessing
import os
import signal
import socket
import sys
import threading
import time
import traceback

import uvicorn
from uvicorn.config import STARTUP_FAILURE      # a worker's exit code when it could not start



def supported() -> bool:
    """True where the kernel balances connections over SO_REUSEPORT sockets."""
    return sys.platform.startswith("linux") and hasattr(socket, "SO_REUSEPORT")


def listener(host: str, port: int, reuse_port: bool = True) -> socket.socket:
    """A socket bound to (host, port) as uvicorn binds its own, with
    SO_REUSEPORT unless `reuse_port` is False."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if reuse_port:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    return sock


def _worker(options: dict, parent: int) -> None:
    """One worker process: its own socket, then uvicorn's server on it. It
    shuts down (as on SIGTERM) if the parent is gone, killed with -9 say,
    rather than serve on unsupervised. Anything that stops it before it
    serves exits with uvicorn's STARTUP_FAILURE, so that the parent stops
    instead of starting it again and again."""
    config = uvicorn.Config(**options)
    try:
        sock = listener(config.host, config.port)
    except OSError as error:
        print(f"steve: a worker cannot listen on {_where(config.host, config.port)}: {error.strerror or error}",
              file=sys.stderr)
        sys.exit(STARTUP_FAILURE)
    threading.Thread(target=_watch_parent, args=(parent,), daemon=True, name="steve-parent-watch").start()
    server = uvicorn.Server(config)
    try:
        server.run(sockets=[sock])
    except Exception:           # noqa: BLE001 - the app failed to load (the factory raised, an import failed)
        if server.started:
            raise
        traceback.print_exc()
        sys.exit(STARTUP_FAILURE)
    if not server.started:
        sys.exit(STARTUP_FAILURE)


def _watch_parent(parent: int) -> None:
    while os.getppid() == parent:
        time.sleep(1.0)
    os.kill(os.getpid(), signal.SIGTERM)


def _where(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _port_free(host: str, port: int) -> None:
    """Raise OSError (EADDRINUSE) when something listens on (host, port),
    another Steve's workers included: a socket without SO_REUSEPORT cannot
    bind beside a listening one (SO_REUSEADDR: a port left in TIME_WAIT by
    a server just stopped is free)."""
    listener(host, port, reuse_port=False).close()


def _port_lock(host: str, port: int) -> socket.socket:
    """A lock on the address for this run, against a second Steve started
    while this one's workers are not listening yet: an abstract UNIX
    socket named after it (Linux; gone with the process)."""
    lock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        lock.bind(f"\0steve-serve-{host}-{port}")
    except OSError:
        lock.close()
        raise OSError(errno.EADDRINUSE, "another steve serve is using this port") from None
    return lock


QUICK_DEATH_S = 10.0        # a worker that dies this soon after its start ...
QUICK_DEATHS = 5            # ... this many times in a row stops the server
SHUTDOWN_S = 30.0           # the workers' graceful shutdown, all together; then they are killed


def serve(options: dict, workers: int, say=print) -> int:
    """Run `workers` uvicorn workers with uvicorn.Config(**options) (host,
    port, app, ...) until Ctrl+C, SIGTERM or SIGHUP; the exit status (1 when
    the port is taken or the workers cannot start)."""
    host, port = options["host"], options["port"]
    try:
        if port:
            _port_free(host, port)
        lock = _port_lock(host, port) if port else None
        try:
            guard = listener(host, port)
        except OSError:
            if lock is not None:
                lock.close()
            raise
    except OSError as error:
        say(f"steve: cannot listen on {_where(host, port)}: {error.strerror or error}")
        return 1
    options = {**options, "port": guard.getsockname()[1]}     # port 0: the one the system chose, for all
    spawn = multiprocessing.get_context("spawn")
    signals: list[int] = []         # appended to by the handler (it must not take a lock)
    watched = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
    previous = {sig: signal.signal(sig, lambda number, _: signals.append(number)) for sig in watched}

    def start():
        process = spawn.Process(target=_worker, args=(options, os.getpid()), name="steve-worker")
        process.start()
        return process, time.monotonic()

    running: list = []
    quick = [0] * workers           # deaths in a row soon after a start, per worker slot
    status = 0
    try:
        running.extend(start() for _ in range(workers))
        while not signals and status == 0:
            time.sleep(0.2)
            for number, (process, started) in enumerate(running):
                if process.is_alive():
                    if quick[number] and time.monotonic() - started >= QUICK_DEATH_S:
                        quick[number] = 0       # it lived: earlier quick deaths no longer count
                    continue
                if process.exitcode == STARTUP_FAILURE:     # it would fail the same way again
                    say("steve: a worker failed to start; stopping")
                    status = 1
                    break
                quick[number] = quick[number] + 1 if time.monotonic() - started < QUICK_DEATH_S else 0
                if quick[number] >= QUICK_DEATHS:
                    say(f"steve: a worker stopped {QUICK_DEATHS} times in a row right after starting; stopping")
                    status = 1
                    break
                say(f"steve: worker {process.pid} stopped (exit code {process.exitcode}); starting another")
                running[number] = start()
    finally:
        _stop(running, signals)
        guard.close()
        if lock is not None:
            lock.close()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return status


def _stop(running: list, signals: list[int]) -> None:
    """SIGTERM every worker (uvicorn shuts down gracefully), wait SHUTDOWN_S
    for them all, then kill what is left; a second signal kills at once."""
    for process, _ in running:
        if process.is_alive():
            process.terminate()
    asked = len(signals)
    deadline = time.monotonic() + SHUTDOWN_S
    while any(process.is_alive() for process, _ in running):
        if time.monotonic() > deadline or len(signals) > max(asked, 1):
            break
        time.sleep(0.05)
    for process, _ in running:
        if process.is_alive():
            process.kill()
        process.join()
