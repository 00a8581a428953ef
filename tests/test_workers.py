"""server/workers.py: `steve serve --workers N` gives each worker a listening
socket of its own (SO_REUSEPORT), so that the kernel spreads connections
over the workers; checked on the real server through /proc."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from live_server import LiveServer, server_env, steve_executable
from server.workers import supported

pytestmark = pytest.mark.skipif(not supported(), reason="SO_REUSEPORT balancing is Linux only")

LISTEN, ESTABLISHED = "0A", "01"


def tcp_sockets(port: int) -> list[tuple[str, int, int]]:
    """(state, remote port, inode) of the loopback TCP sockets whose local port is `port`."""
    rows = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with open(table) as lines:
            next(lines)
            for line in lines:
                fields = line.split()
                local, remote, state, inode = fields[1], fields[2], fields[3], int(fields[9])
                if int(local.rsplit(":", 1)[1], 16) == port:
                    rows.append((state, int(remote.rsplit(":", 1)[1], 16), inode))
    return rows


def socket_inodes(pid: int) -> set[int]:
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(int(target[8:-1]))
    return inodes


def workers_of(live: LiveServer) -> list[int]:
    """The worker processes: the server's children started by multiprocessing."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            command = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        if int(fields[1]) == live.process.pid and fields[0] != "Z" and b"spawn_main" in command:
            found.append(int(entry.name))
    return sorted(found)


def listening(live: LiveServer, workers: list[int]) -> dict[int, set[int]]:
    """worker -> the inodes of its sockets listening on the server's port."""
    inodes = {inode for state, _, inode in tcp_sockets(live.port) if state == LISTEN}
    return {pid: socket_inodes(pid) & inodes for pid in workers}


def wait_for(check, what: str, deadline: float = 30.0):
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        value = check()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"not within {deadline:.0f} s: {what}")


def test_each_worker_listens_on_its_own_socket_and_connections_spread(tmp_path):
    with LiveServer(tmp_path / "server", "--demo", "--workers", "2") as live:
        workers = wait_for(lambda: len(workers_of(live)) == 2 and workers_of(live), "two workers")
        # /health answered once the first worker listens; the second may still be starting
        owned = wait_for(lambda: all((found := listening(live, workers)).values()) and found,
                         "both workers listening")
        sockets = set().union(*owned.values())
        assert [len(inodes) for inodes in owned.values()] == [1, 1], owned
        assert len(set().union(*owned.values())) == 2          # two sockets, not one shared
        assert not socket_inodes(live.process.pid) & sockets  # the parent's guard never listens

        clients = [httpx.Client(base_url=live.base, timeout=10.0) for _ in range(24)]
        try:
            for client in clients:
                assert client.get("/health").status_code == 200    # each on a connection of its own
            served = {pid: 0 for pid in workers}
            for state, _, inode in tcp_sockets(live.port):
                if state == ESTABLISHED:
                    for pid, inodes in ((p, socket_inodes(p)) for p in workers):
                        served[pid] += inode in inodes
            # 24 connections hashed over two sockets all land on one about once in 8 million runs
            assert sum(served.values()) == 24 and all(served.values()), served
        finally:
            for client in clients:
                client.close()
        assert live.stop() == 0, live.log()


def test_a_worker_that_dies_is_replaced(tmp_path):
    with LiveServer(tmp_path / "server", "--demo", "--workers", "2") as live:
        first = wait_for(lambda: len(workers_of(live)) == 2 and workers_of(live), "two workers")
        time.sleep(0.5)
        os.kill(first[0], signal.SIGKILL)
        now = wait_for(lambda: (w := workers_of(live)) and len(w) == 2 and first[0] not in w and w,
                       "a new worker in place of the one killed")
        assert first[1] in now
        wait_for(lambda: all(listening(live, now).values()), "the new worker listening")
        for _ in range(10):
            with live.client() as http:         # new connections: either worker answers
                assert http.get("/health").status_code == 200
        assert "starting another" in live.log()
        assert live.stop() == 0, live.log()


def test_a_port_in_use_is_refused_at_once(tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        ran = subprocess.run([steve_executable(), "serve", "--db", str(tmp_path / "s.db"), "--port", str(port),
                              "--workers", "2"], capture_output=True, text=True, env=server_env(), timeout=60)
    assert ran.returncode == 1
    assert f"steve: cannot listen on 127.0.0.1:{port}: Address already in use" in ran.stdout + ran.stderr


def test_steve_shared_socket_keeps_uvicorns_one_socket(tmp_path):
    with LiveServer(tmp_path / "server", "--demo", "--workers", "2", env={"STEVE_SHARED_SOCKET": "1"}) as live:
        workers = wait_for(lambda: len(workers_of(live)) == 2 and workers_of(live), "two workers")
        shared = {inode for state, _, inode in tcp_sockets(live.port) if state == LISTEN}
        assert len(shared) == 1      # bound by uvicorn's parent before the workers start
        assert all(socket_inodes(pid) & shared == shared for pid in workers)
        assert live.stop() == 0, live.log()


def test_a_second_steve_on_the_same_port_is_refused(tmp_path):
    """Both would bind with SO_REUSEPORT as the same user, which the kernel
    allows: the second must not share the port (and its connections)."""
    with LiveServer(tmp_path / "first", "--demo", "--workers", "2") as live:
        ran = subprocess.run([steve_executable(), "serve", "--db", str(tmp_path / "second.db"), "--port",
                              str(live.port), "--workers", "2"], capture_output=True, text=True,
                             env=server_env(), timeout=60)
        assert ran.returncode == 1
        assert f"steve: cannot listen on 127.0.0.1:{live.port}: Address already in use" in ran.stdout + ran.stderr
        assert live.http.get("/health").status_code == 200


BROKEN_APP = """
def create_app():
    raise RuntimeError("this app cannot start")
"""


def test_workers_that_cannot_start_stop_the_server(tmp_path):
    """An app factory that raises (uvicorn lets the error out, exit code 1
    of a plain crash): the workers say STARTUP_FAILURE, and the parent
    stops rather than start them again and again."""
    (tmp_path / "broken_app.py").write_text(BROKEN_APP)
    script = ("import sys; from server.workers import serve; "
              "sys.exit(serve(dict(app='broken_app:create_app', factory=True, host='127.0.0.1', port=0, "
              "log_level='critical'), 2))")
    env = server_env()
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(tmp_path), env.get("PYTHONPATH")]))
    started = time.monotonic()
    ran = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env,
                         cwd=tmp_path, timeout=60)
    assert ran.returncode == 1, ran.stdout + ran.stderr
    assert "steve: a worker failed to start; stopping" in ran.stdout
    assert "RuntimeError: this app cannot start" in ran.stderr
    assert "starting another" not in ran.stdout
    assert time.monotonic() - started < 30
