"""Build the Cython extensions: every csrc/<stem>.pyx becomes cnngraph._native.<stem>.

Everything else (metadata, dependencies, packages) lives in pyproject.toml.
Set CNNGRAPH_DEBUG_CHECKS=1 to build with bounds/wraparound/initialization checks on.
A .pyx that needs hand-written C adds it with a `# distutils: sources = csrc/x.c` header.
"""
import os
import shutil
from pathlib import Path

import numpy
from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

DEBUG_CHECKS = os.environ.get("CNNGRAPH_DEBUG_CHECKS") == "1"

# The one place compiler directives are set. The def wrappers validate their
# arguments, so the nogil cores run unchecked; debug builds turn the checks back on.
DIRECTIVES = {
    "language_level": 3,
    "boundscheck": DEBUG_CHECKS,
    "wraparound": DEBUG_CHECKS,
    "initializedcheck": DEBUG_CHECKS,
    "cdivision": True,
}


class BuildExt(build_ext):
    """setuptools' build_ext (Cython's, when Cython is installed), plus a compiler check."""

    def initialize_options(self):
        super().initialize_options()
        self.cython_c_in_temp = 1  # generated .c goes to build/, so csrc/ holds only sources

    def build_extensions(self):
        exe = getattr(self.compiler, "compiler_so", None)  # None for MSVC, which has no CC
        if exe and shutil.which(exe[0]) is None:
            raise SystemExit(
                f"cnngraph: C compiler '{exe[0]}' not found; install one "
                "(e.g. `apt-get install build-essential`, or gcc) and retry."
            )
        # A stale .so from the other mode would otherwise survive: rebuild when it flips.
        stamp = Path(self.build_temp, "cnngraph-debug-checks")
        mode = str(int(DEBUG_CHECKS))
        if not stamp.exists() or stamp.read_text() != mode:
            self.force = True
        if self.compiler.compiler_type == "unix":
            for ext in self.extensions:
                ext.extra_compile_args = ["-O3", *ext.extra_compile_args]
        super().build_extensions()
        stamp.parent.mkdir(parents=True, exist_ok=True)
        stamp.write_text(mode)


def _extensions():
    exts = []
    for pyx in sorted(Path("csrc").glob("*.pyx")):
        ext = Extension(
            f"cnngraph._native.{pyx.stem}",
            [pyx.as_posix()],
            include_dirs=["csrc", numpy.get_include()],
            define_macros=[("NPY_NO_DEPRECATED_API", "NPY_1_7_API_VERSION")],
        )
        ext.cython_directives = dict(DIRECTIVES)
        exts.append(ext)
    return exts


setup(ext_modules=_extensions(), cmdclass={"build_ext": BuildExt})
