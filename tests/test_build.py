"""The compiled build (setup.py): `pip install .` turns the engine's hot
modules into C extensions with Cython; an editable install runs the sources.

Either way the decisions are the same bytes: the last test routes every
fixture and 3,000 generated Black Friday orders (with reservations) in this
process, with the engine as installed, and in a child process that runs the
checkout's pure Python sources, and compares the two byte for byte. Under
CI (`pip install '.[test]'`) that compares the compiled engine with the
sources; in an editable checkout both sides run the sources.
"""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

import engine
import engine.router

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))

import generate  # noqa: E402
import snapshot  # noqa: E402


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


def test_an_installed_build_runs_compiled_modules_and_a_checkout_its_sources():
    folder = Path(engine.__file__).resolve().parent
    extensions = {p.name.split(".")[0] for p in folder.glob("*.so")}
    if folder == (ROOT / "engine").resolve():
        # an editable install or the checkout on the path: sources only, so that edits take effect
        assert extensions == set()
        assert engine.router.__file__.endswith(".py")
    else:
        assert extensions == {Path(p).stem for p in _compiled_list()}
        assert engine.router.__file__.endswith(".so")


def test_the_installed_engine_decides_byte_for_byte_as_the_pure_python_sources(tmp_path):
    data = tmp_path / "bench-data"
    generate.write(data, 2026, 3_000)
    here = tmp_path / "installed.tsv"
    with open(here, "w", encoding="utf-8") as out:
        for name, text in snapshot.fixture_decisions():
            out.write(f"{name}\t{text}\n")
        for name, text in snapshot.bench_decisions(3_000, data):
            out.write(f"{name}\t{text}\n")
    sources = tmp_path / "sources.tsv"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    subprocess.run([sys.executable, str(ROOT / "bench" / "snapshot.py"), str(sources), "--orders", "3000",
                    "--data", str(data)], check=True, env=env, cwd=tmp_path, timeout=600)
    installed, pure = here.read_text().splitlines(), sources.read_text().splitlines()
    assert len(installed) == len(pure) > 3_000
    for mine, theirs in zip(installed, pure):
        assert mine == theirs
