"""The runnable examples in docstrings are tests too."""

import doctest
import importlib
import pkgutil

import pytest

import cnngraph

MODULES = sorted(m.name for m in pkgutil.walk_packages(cnngraph.__path__, "cnngraph.")
                 if not m.name.startswith("cnngraph._native"))


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)
    assert result.failed == 0
