"""Steve's build: everything is in pyproject.toml except this one step.

`pip install .` compiles the routing engine's hot modules with Cython (the
same .py files, turned into C extensions: about a fifth less CPU per order;
docs/benchmarks.md). The .py files are installed too and are what the
extensions were built from. Nothing is compiled

* in an editable install (`pip install -e .`): edits take effect at once;
* when STEVE_PURE_PYTHON=1 is set at install time;
* when Cython 3 is not there (a build without build isolation, say);
* for a module that fails to translate or compile (no C compiler, say):
  that module stays pure Python, with a warning (`pip install -v` shows it),
  and behaves the same.

Every build compiles afresh into folders of its own (build/cython-<key>,
where the key covers Cython's version and the directives below), and a
module's old extension is deleted before it is compiled, so no extension
built from older sources is ever installed.

Type annotations are not used as C types (annotation_typing=False): a
compiled module computes exactly what the pure Python one does.
"""

from __future__ import annotations

import hashlib
import os
import sys

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
DIRECTIVES = {"annotation_typing": False, "binding": True}


def _jobs() -> int:
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:          # not on Linux
        cores = os.cpu_count() or 1
    return max(1, min(cores, 4))    # each gcc -O3 of a large module takes a few hundred MB


def _extensions() -> list:
    if os.environ.get("STEVE_PURE_PYTHON") == "1":
        return []
    try:
        import Cython
        from Cython.Build import cythonize
    except ImportError:
        return []
    if int(Cython.__version__.split(".")[0]) < 3:
        return []
    key = hashlib.sha256(repr((Cython.__version__, sorted(DIRECTIVES.items()))).encode()).hexdigest()[:12]
    return cythonize(COMPILED, language_level=3, quiet=True, build_dir=f"build/cython-{key}",
                     nthreads=_jobs(), exclude_failures=True, compiler_directives=DIRECTIVES)


class OptionalBuildExt(build_ext):
    """build_ext that compiles COMPILED (nothing in an editable install) and
    leaves a module pure Python when it cannot compile it."""

    def finalize_options(self):
        super().finalize_options()
        if getattr(self, "editable_mode", False):
            self.extensions = []            # the sources run as they are
        if self.parallel is None:
            self.parallel = _jobs()         # the modules compile side by side

    def run(self):
        # an extension left in build/ by an earlier build (of a module no
        # longer compiled, say) would be installed over its .py: drop it
        wanted = {os.path.abspath(self.get_ext_fullpath(ext.name)) for ext in self.extensions}
        for package in {name.split("/")[0] for name in COMPILED}:
            folder = os.path.join(self.build_lib, package)
            if os.path.isdir(folder):
                for name in os.listdir(folder):
                    path = os.path.abspath(os.path.join(folder, name))
                    if name.endswith((".so", ".pyd")) and path not in wanted:
                        os.remove(path)
        super().run()

    def build_extension(self, ext):
        target = self.get_ext_fullpath(ext.name)
        if os.path.exists(target):
            os.remove(target)               # never ship one built from older sources
        try:
            super().build_extension(ext)
        except Exception as error:          # noqa: BLE001 - any compiler failure: stay pure Python
            if os.path.exists(target):
                os.remove(target)
            self.warn(f"{ext.name} not compiled ({error}); it stays pure Python")


# Translated only for a build that compiles (a wheel, `setup.py build`):
# not for metadata, an sdist or an editable install (`editable_wheel`).
COMPILING = any(command in sys.argv[1:] for command in ("bdist_wheel", "build", "build_ext", "install"))
setup(ext_modules=_extensions() if COMPILING else [], cmdclass={"build_ext": OptionalBuildExt})
