"""Run the real `steve serve` as a child process for end-to-end tests.

The console script next to the running interpreter is started on a free
loopback port with its own database file; readiness is a poll of /health
against a deadline (never a fixed sleep). `stop()` terminates it and waits,
killing the whole process group (uvicorn's workers too) if it does not go.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

from installed import installed_is_checkout

ROOT = Path(__file__).resolve().parent.parent
START_DEADLINE = 30.0
STOP_DEADLINE = 15.0


def _die_with_parent() -> None:
    """Linux: the server gets SIGTERM if the test run itself is killed, so no
    orphan is left serving (it runs in a session of its own)."""
    if sys.platform.startswith("linux"):
        import ctypes
        PR_SET_PDEATHSIG = 1
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def steve_executable() -> str:
    script = Path(sys.executable).with_name("steve")
    if not script.exists():
        raise RuntimeError(f"no steve console script next to {sys.executable}: install the project first")
    return str(script)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def server_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """The test's environment minus any Steve configuration, so that only the
    command line configures the server; the checkout comes first on the path
    unless the installed Steve is this checkout (then it runs as installed,
    compiled modules and all)."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("STEVE_") and k != "PROMETHEUS_MULTIPROC_DIR"}
    first = [] if installed_is_checkout() else [str(ROOT)]
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [*first, env.get("PYTHONPATH")]))
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra or {})
    return env


class LiveServer:
    def __init__(self, folder: Path, *args: str, db: Path | None = None, env: dict[str, str] | None = None):
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.db = Path(db) if db else self.folder / "steve.db"
        self.args = list(args)
        self.env = server_env(env)
        self.process: subprocess.Popen | None = None
        self.port = 0
        self.log_path = self.folder / "server.log"
        self._client: httpx.Client | None = None

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def client(self, **options) -> httpx.Client:
        """A new client for this server (the caller closes it)."""
        return httpx.Client(base_url=self.base, timeout=options.pop("timeout", 30.0), **options)

    @property
    def http(self) -> httpx.Client:
        """The server's shared client."""
        if self._client is None:
            self._client = self.client()
        return self._client

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def start(self) -> "LiveServer":
        for attempt in range(3):        # another process may grab the free port first
            self.port = free_port()
            with open(self.log_path, "ab") as log:
                self.process = subprocess.Popen(
                    [steve_executable(), "serve", "--db", str(self.db), "--host", "127.0.0.1",
                     "--port", str(self.port), *self.args],
                    stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                    env=self.env, cwd=self.folder, start_new_session=True, preexec_fn=_die_with_parent)
            if self._wait_ready():
                return self
            exited = self.process.poll() is not None
            self.stop()
            if not (exited and "address already in use" in self.log().lower()):
                break
        raise RuntimeError(f"steve serve did not become ready; its output:\n{self.log()}")

    def _wait_ready(self) -> bool:
        deadline = time.monotonic() + START_DEADLINE
        delay = 0.02
        with httpx.Client(timeout=2.0) as probe:
            while time.monotonic() < deadline:
                if self.process.poll() is not None:
                    return False
                try:
                    if probe.get(self.base + "/health").status_code == 200:
                        return True
                except httpx.TransportError:
                    pass
                time.sleep(delay)                 # back-off between polls, bounded by the deadline
                delay = min(delay * 1.5, 0.25)
        return False

    def stop(self) -> int | None:
        """Terminate the server and wait for it; returns its exit code."""
        if self._client is not None:
            self._client.close()
            self._client = None
        process, self.process = self.process, None
        if process is None:
            return None
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(STOP_DEADLINE)
            except subprocess.TimeoutExpired:
                self.kill(process)
        return process.returncode

    @staticmethod
    def kill(process: subprocess.Popen) -> None:
        """SIGKILL the server and its workers: its own process group (it was
        started in a new session, and is not reaped yet, so the id is its)."""
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(STOP_DEADLINE)

    def __enter__(self) -> "LiveServer":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
