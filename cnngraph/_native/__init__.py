"""Compiled extension modules land here, built from csrc/*.pyx by setup.py.

`pip install -e .` builds them; each has a pure-Python twin in cnngraph.passes (or
alongside its caller) that serves as its test oracle.
"""

import importlib


def native(name: str):
    """The compiled module ``cnngraph._native.<name>``, or an ImportError that says how to
    build it."""
    try:
        return importlib.import_module(f"cnngraph._native.{name}")
    except ImportError as exc:
        raise ImportError(
            "cnngraph's compiled extension is not built: run `pip install -e .` in the repo"
        ) from exc
