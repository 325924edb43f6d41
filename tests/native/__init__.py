"""Tests of the compiled kernels (cnngraph._native.conv), skipped when it is not built; both
instruction sets where the CPU has AVX2."""

import importlib.util

import pytest

HAVE_NATIVE = importlib.util.find_spec("cnngraph._native.conv") is not None
MARKS = [
    pytest.mark.native,
    pytest.mark.skipif(not HAVE_NATIVE, reason="compiled extension not built: pip install -e ."),
]

if HAVE_NATIVE:
    from cnngraph._native import native

    conv = native("conv")
    ISAS = ["generic"] + (["avx2"] if conv.set_isa("avx2") == "avx2" else [])
else:  # pragma: no cover
    conv = None
    ISAS = ["generic"]
