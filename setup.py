"""Steve's build: everything is in pyproject.toml except this one step.

`pip install .` compiles the routing engine's hot modules with Cython (the
same .py files, turned into C extensions: about a fifth less CPU per order;
docs/benchmarks.md). The .py files are installed too and are what the
extensions were built from. Nothing is compiled

* in an editable install (`pip install -e .`): edits take effect at once;
* when STEVE_PURE_PYTHON=1 is set at install time;
* when a module fails to compile (no C compiler, say): that module stays
  pure Python, with a warning, and behaves the same.

Type annotations are not used as C types (annotation_typing=False): a
compiled module computes exactly what the pure Python one does.
"""

from __future__ import annotations

import os

from setuptools import setup
from setuptools.command.build_ext import build_ext

# The modules every order goes through (engine.route and the service's
# recheck); the reference durable_rules engine, the pydantic models and the
# rest stay pure Python.
COMPILED = [
    "engine/_kept.py", "engine/_search.py", "engine/_bigsearch.py", "engine/_bigplan.py",
    "engine/allocator.py", "engine/compare.py", "engine/costs.py", "engine/decision.py",
    "engine/effects.py", "engine/facts.py", "engine/fastmatch.py", "engine/geo.py",
    "engine/limits.py", "engine/matching.py", "engine/recheck.py", "engine/router.py",
    "engine/stock.py",
]


class OptionalBuildExt(build_ext):
    """build_ext that leaves a module pure Python when it cannot compile it,
    and compiles nothing in an editable install."""

    def finalize_options(self):
        super().finalize_options()
        if self.parallel is None:
            self.parallel = os.cpu_count() or 1      # the modules compile side by side

    def run(self):
        if getattr(self, "editable_mode", False):
            return
        super().run()

    def build_extension(self, ext):
        try:
            super().build_extension(ext)
        except Exception as error:      # noqa: BLE001 - any compiler failure: stay pure Python
            self.warn(f"{ext.name} not compiled ({error}); it stays pure Python")


def _extensions():
    if os.environ.get("STEVE_PURE_PYTHON") == "1":
        return []
    try:
        from Cython.Build import cythonize
    except ImportError:
        return []
    return cythonize(COMPILED, language_level=3, quiet=True, build_dir="build/cython",
                     nthreads=os.cpu_count() or 1,
                     compiler_directives={"annotation_typing": False, "binding": True})


setup(ext_modules=_extensions(), cmdclass={"build_ext": OptionalBuildExt})
