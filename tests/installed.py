"""Which Steve is installed, as `steve serve` would import it, and whether it
is this checkout (imported by tests/live_server.py and bench/run.py; no
third-party imports, so the bench needs no test extras for it).

The answer comes from a child process started the way the servers are: this
interpreter, a temporary working folder and no PYTHONPATH. So a checkout that
happens to be on this process's path (`python -m pytest` from the checkout,
PYTHONPATH=.) does not make an out-of-date installed copy look current.
"""

from __future__ import annotations

import functools
import json
import os
import subprocess
import sys
import tempfile
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
_SETUPTOOLS = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["setuptools"]
PACKAGES = tuple(_SETUPTOOLS["packages"])
# the files a package installs: its modules and its package data ("*.lark" -> ".lark")
SOURCES = (".py", *sorted({glob.removeprefix("*") for globs in _SETUPTOOLS["package-data"].values()
                           for glob in globs}))
_ASK = """
import importlib, json, os, sys
out = {}
for name in sys.argv[1:]:
    try:
        out[name] = os.path.dirname(importlib.import_module(name).__file__)
    except Exception:
        out[name] = None
print(json.dumps(out))
"""


@functools.cache
def installed_folders() -> dict[str, str | None]:
    """package -> the folder `steve serve` imports it from (None: not installed)."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    with tempfile.TemporaryDirectory() as folder:
        answer = subprocess.run([sys.executable, "-c", _ASK, *PACKAGES], cwd=folder, env=env,
                                capture_output=True, text=True, timeout=120, check=True)
    return json.loads(answer.stdout)


def _sources(folder: Path) -> dict[str, Path]:
    return {p.name: p for p in folder.iterdir() if p.is_file() and p.suffix in SOURCES}


@functools.cache
def installed_is_checkout() -> bool:
    """True when the installed Steve is this checkout: an editable install, or
    `pip install .` of these very sources (each package's source files are
    the same set with the same bytes). Then the installed build, its compiled
    modules included (setup.py), is the one to run; otherwise the checkout's
    sources are."""
    for package, where in installed_folders().items():
        if where is None:
            return False
        installed, mine = Path(where).resolve(), (ROOT / package).resolve()
        if installed == mine:
            continue
        theirs, ours = _sources(installed), _sources(mine)
        if theirs.keys() != ours.keys():
            return False
        if any(theirs[name].read_bytes() != ours[name].read_bytes() for name in ours):
            return False
    return True


def extension_modules(folder: Path) -> set[str]:
    """The modules in `folder` that are compiled extensions."""
    return {p.name.split(".")[0] for p in folder.iterdir()
            if p.is_file() and p.suffix in (".so", ".pyd")}


def compiled_modules() -> list[str]:
    """The engine modules running as compiled extensions in this process."""
    import engine
    return sorted(extension_modules(Path(engine.__file__).parent))
