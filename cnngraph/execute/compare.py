"""Side by side with onnxruntime: the same model and input through both, errors and latency.

What ``cnngraph run --check / --bench`` prints comes from here.
"""

from __future__ import annotations

import os
import statistics
import time
from typing import Callable, Mapping, NamedTuple, Optional

import numpy as np

from ..errors import CnnGraphError
from ..ir import Graph

RTOL, ATOL = 1e-4, 1e-5


class OutputError(NamedTuple):
    """One output against its reference: the largest absolute difference, that difference
    relative to the reference's largest magnitude, and whether allclose(rtol, atol) holds."""

    name: str
    max_abs: float
    max_rel: float
    ok: bool


def compare(outputs: Mapping[str, np.ndarray], reference: Mapping[str, np.ndarray],
            rtol: float = RTOL, atol: float = ATOL) -> list[OutputError]:
    """Per output: max |a - b|, max |a - b| / max |b|, and numpy.allclose(a, b, rtol, atol).

    >>> compare({"y": np.array([1.0, 2.0])}, {"y": np.array([1.0, 2.00001])})[0].ok
    True
    """
    rows = []
    for name, ref in reference.items():
        got = np.asarray(outputs[name], dtype=np.float64)
        ref = np.asarray(ref, dtype=np.float64)
        if got.shape != ref.shape:
            rows.append(OutputError(name, float("inf"), float("inf"), False))
            continue
        diff = float(np.abs(got - ref).max()) if ref.size else 0.0
        scale = float(np.abs(ref).max()) if ref.size else 0.0
        rel = diff / scale if scale else (0.0 if diff == 0 else float("inf"))
        rows.append(OutputError(name, diff, rel, bool(np.allclose(got, ref, rtol=rtol,
                                                                   atol=atol))))
    return rows


def onnx_bytes(graph: Graph, model: Optional[str] = None) -> bytes:
    """The ONNX model onnxruntime should run: the file itself when ``model`` is an ONNX file or
    a built-in example, else the graph exported with its own weights."""
    from ..frontends import examples

    path = examples().get(model, model) if model else None
    if path and os.path.exists(path) and not path.endswith(".cnn"):
        with open(path, "rb") as f:
            return f.read()
    from ..backends.export_onnx import to_onnx

    return to_onnx(graph, weights="keep").SerializeToString()


def onnxruntime_session(model: bytes, threads: int, optimize: bool = True):
    """An onnxruntime CPU session (graph optimisations on, unless ``optimize`` is False) on
    ``threads`` threads."""
    try:
        import onnxruntime as ort
    except ImportError:
        raise CnnGraphError("--check and --bench need onnxruntime (pip install onnxruntime)"
                            ) from None
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    # Idle workers must not spin: a spinning session keeps a core busy between its runs, which
    # the engine timed next to it (alternately) would pay for.
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    if not optimize:
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    try:
        return ort.InferenceSession(model, options, providers=["CPUExecutionProvider"])
    except Exception as e:  # onnxruntime raises its own types
        raise CnnGraphError(f"onnxruntime cannot load the model: "
                            f"{str(e).splitlines()[0] if str(e) else type(e).__name__}"
                            ) from None


def run_onnxruntime(session, inputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    names = [o.name for o in session.get_outputs()]
    try:
        values = session.run(names, dict(inputs))
    except Exception as e:
        raise CnnGraphError(f"onnxruntime cannot run the model: "
                            f"{str(e).splitlines()[0] if str(e) else type(e).__name__}"
                            ) from None
    return dict(zip(names, values))


def median_seconds(fn: Callable[[], object], repeat: int, warmup: int = 2) -> float:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def bench_pair(a: Callable[[], object], b: Callable[[], object], repeat: int = 20,
               warmup: int = 2) -> tuple[float, float]:
    """Median seconds of ``a`` and ``b``, run alternately (so both see the same machine)."""
    for _ in range(warmup):
        a()
        b()
    ta, tb = [], []
    for _ in range(repeat):
        t = time.perf_counter()
        a()
        ta.append(time.perf_counter() - t)
        t = time.perf_counter()
        b()
        tb.append(time.perf_counter() - t)
    return statistics.median(ta), statistics.median(tb)


def random_inputs(types: Mapping, seed: int = 0) -> dict[str, np.ndarray]:
    """Standard normal float inputs (zeros for integer ones) of the compiled input types."""
    rng = np.random.default_rng(seed)
    out = {}
    for name, t in types.items():
        dtype = np.dtype("float32" if t.dtype == "bfloat16" else t.dtype)
        if dtype.kind == "f":
            out[name] = rng.standard_normal(t.shape).astype(dtype)
        else:
            out[name] = np.zeros(t.shape, dtype)
    return out
