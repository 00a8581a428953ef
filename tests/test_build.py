"""The compiled build (setup.py): `pip install .` turns the engine's hot
modules into C extensions with Cython; an editable install runs the sources.

Either way the decisions are the same bytes: the last test routes every
fixture and 3,000 generated Black Friday orders (with reservations) in two
child processes, one running Steve as installed (as `steve serve` imports
it: no PYTHONPATH, a temporary working folder) and one running the
checkout's pure Python sources, and compares them byte for byte. Under CI
(`pip install '.[test]'`) that compares the compiled build with the sources;
in an editable checkout both sides run the sources.
"""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

from installed import extension_modules, installed_folders

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))

import generate  # noqa: E402


def _compiled_list() -> list[str]:
    """setup.py's COMPILED, read without running setup.py."""
    tree = ast.parse((ROOT / "setup.py").read_text(encoding="utf-8"))
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == "COMPILED" for t in node.targets):
            return ast.literal_eval(node.value)
    raise AssertionError("setup.py has no COMPILED list")


def test_the_compiled_modules_are_the_engines_own_and_exclude_the_reference_engine():
    compiled = _compiled_list()
    assert len(compiled) == len(set(compiled)) > 10
    for path in compiled:
        assert (ROOT / path).is_file(), path
        assert path.startswith("engine/"), path
    # durable_rules stays behind its pure Python adapter; pydantic models stay classes pydantic made
    assert "engine/durable_engine.py" not in compiled and "engine/models.py" not in compiled
    assert {"engine/router.py", "engine/facts.py", "engine/fastmatch.py", "engine/allocator.py"} <= set(compiled)


def test_an_installed_build_has_the_compiled_modules_and_an_editable_one_none():
    folder = Path(installed_folders()["engine"]).resolve()
    found = extension_modules(folder)
    if folder == (ROOT / "engine").resolve():
        assert found == set()           # editable: the sources, so that edits take effect
    elif os.environ.get("STEVE_PURE_PYTHON") == "1":
        assert found == set()           # installed with STEVE_PURE_PYTHON=1 (set it here too)
    else:
        assert found == {Path(p).stem for p in _compiled_list()}


def _snapshot(out: Path, data: Path, folder: Path, installed: bool) -> list[str]:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    extra = ["--installed"] if installed else []
    subprocess.run([sys.executable, str(ROOT / "bench" / "snapshot.py"), str(out), "--orders", "3000",
                    "--data", str(data), *extra], check=True, env=env, cwd=folder, timeout=600)
    return out.read_text(encoding="utf-8").splitlines()


def test_the_installed_engine_decides_byte_for_byte_as_the_pure_python_sources(tmp_path):
    data = tmp_path / "bench-data"
    generate.write(data, 2026, 3_000)
    installed = _snapshot(tmp_path / "installed.tsv", data, tmp_path, installed=True)
    sources = _snapshot(tmp_path / "sources.tsv", data, tmp_path, installed=False)
    assert len(installed) == len(sources) > 3_000
    for mine, theirs in zip(installed, sources):
        assert mine == theirs
