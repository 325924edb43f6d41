"""The executor: a compiled graph run step by step inside one preallocated arena.

``compile(graph)`` optimizes the graph (cnngraph.execute.passes), plans its memory
(``plan_memory``, optimal schedule), allocates one uint8 arena of ``plan.arena_bytes``, makes
every activation tensor a view at its planned offset, prepacks the weights, and builds one
kernel call per step. ``Compiled.run(inputs)`` copies the inputs into their views, runs the
steps in the planned order, and returns copies of the outputs. A step allocates nothing (the
ops without a dedicated kernel excepted: they run their numpy reference and copy it in).

>>> import numpy as np, cnngraph
>>> from cnngraph.execute import random_weights
>>> net = cnngraph.Network("tiny")
>>> x = net.input("x", ("N", 3, 8, 8))
>>> net.output(net.dense(net.conv(x, 4, 3, activation="relu"), 2))
>>> g = random_weights(net.build())
>>> c = compile(g)
>>> y = c.run({"x": np.ones((1, 3, 8, 8), np.float32)})
>>> next(iter(y.values())).shape
(1, 2)
"""

from __future__ import annotations

import ctypes
import os
from typing import Mapping, Optional

import numpy as np

from .. import dtypes
from ..errors import CnnGraphError, InputShapeError, NodeError, UnsupportedOpError, located_in
from ..ir import Graph
from ..ops.base import shape_str
from ..passes.plan import MemoryPlan, plan_memory
from ..passes.shapes import Shapes, infer_shapes, make_call
from .kernels import Context, Kernel, build_step
from .passes import optimize

__all__ = ["Compiled", "compile", "run", "set_threads"]

STRUCTURE_ONLY_HINT = ("the model is structure only (no weights); export it with weights "
                       "first: cnngraph export MODEL --weights random -o model.onnx")


class Compiled:
    """A graph ready to run: its plan, its arena, one kernel per step.

    ``tensors`` maps every activation to its view in ``arena``; ``kernels`` each node to the
    kernel that runs it ('numpy', 'native' or 'reference'); ``workspace_bytes`` is the scratch
    space the kernels share (im2col columns, padded inputs), apart from the arena.
    """

    def __init__(self, graph: Graph, shapes: Shapes, plan: MemoryPlan, arena: np.ndarray,
                 tensors: dict, steps: list, ctx: Context, outputs: dict, threads: int):
        self.graph = graph
        self.shapes = shapes
        self.plan = plan
        self.arena = arena
        self.tensors = tensors
        self.steps = steps  # (node name, kernel) in execution order
        self._kernels = [fn for _, fn in steps]
        self._workspace = ctx.workspace
        self.kernels = dict(ctx.kinds)
        self._outputs = outputs
        self.threads = threads
        # numpy's BLAS gets the threads only when no step runs natively: its idle threads
        # spin after each call and would take the cores from the native kernels' pool
        self._blas_threads = threads if "native" not in self.kernels.values() else 1
        self.input_types = {t.name: shapes.types[t.name] for t in graph.inputs}

    @property
    def arena_bytes(self) -> int:
        return self.arena.nbytes

    @property
    def workspace_bytes(self) -> int:
        return self._workspace.size

    def bind(self, inputs: Mapping[str, np.ndarray]) -> None:
        """Copy the inputs into their arena views, checking names, shapes and element types."""
        unknown = sorted(set(inputs) - set(self.input_types))
        if unknown:
            raise InputShapeError(
                f"inputs name {', '.join(repr(n) for n in unknown)}, which the model does not "
                f"have (its inputs: {', '.join(repr(n) for n in self.input_types)})")
        for name, t in self.input_types.items():
            if name not in inputs:
                raise InputShapeError(f"input '{name}' {shape_str(t.shape)} {t.dtype} is not "
                                      f"given")
            a = np.asarray(inputs[name])
            want = dtypes.numpy_dtype(t.dtype)
            if a.dtype.kind != want.kind or (a.dtype.kind not in "fc" and a.dtype != want):
                raise InputShapeError(f"input '{name}' is {a.dtype.name}; the model takes "
                                      f"{t.dtype}")
            if tuple(a.shape) != t.shape:
                raise InputShapeError(f"input '{name}' has shape {shape_str(a.shape)}; the model "
                                      f"was compiled for {shape_str(t.shape)}")
            view = self.tensors.get(name)
            if view is not None:
                np.copyto(view, a, casting="same_kind")

    def run(self, inputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """The graph outputs by name (copies: the arena is reused by the next run)."""
        self.bind(inputs)
        self.execute()
        return {name: np.array(v) for name, v in self._outputs.items()}

    def execute(self) -> None:
        """Run every step on what the arena holds now (inputs already bound)."""
        set_threads(self._blas_threads)
        with np.errstate(over="ignore", under="ignore", invalid="ignore", divide="ignore"):
            for fn in self._kernels:
                fn()

    def __repr__(self) -> str:
        return (f"Compiled({self.graph.name!r}, {len(self.steps)} steps, arena "
                f"{self.arena_bytes} B, workspace {self.workspace_bytes} B)")


def compile(graph: Graph, batch: Optional[int] = None, threads: Optional[int] = None,
            input_shapes: Optional[Mapping[str, tuple]] = None) -> Compiled:
    """Optimize, plan and prepare ``graph`` to run at ``batch`` (default: the model's, or 1)
    on ``threads`` threads (default: every core)."""
    with located_in(graph):
        return _compile(graph, batch, threads, input_shapes)


def run(graph: Graph, inputs: Mapping[str, np.ndarray], threads: Optional[int] = None
        ) -> dict[str, np.ndarray]:
    """Compile ``graph`` for the inputs' batch and run it once.

    >>> import numpy as np, cnngraph
    >>> from cnngraph.execute import random_weights
    >>> g = random_weights(cnngraph.load("lenet5"))
    >>> out = run(g, {"image": np.zeros((2, 1, 32, 32), np.float32)})
    >>> out["output"].shape
    (2, 10)
    """
    batch = None
    first = graph.inputs[0] if graph.inputs else None
    if first is not None and first.name in inputs and first.shape:
        a = np.asarray(inputs[first.name])
        if a.ndim == len(first.shape) and a.ndim and a.shape[0] != first.shape[0]:
            batch = int(a.shape[0])
    return compile(graph, batch=batch, threads=threads).run(inputs)


_CACHE_LIMIT = 1 << 16  # constants up to this many bytes are decoded once and kept


def _compile(graph, batch, threads, input_shapes) -> Compiled:
    threads = int(threads) if threads else (os.cpu_count() or 1)
    g = optimize(graph, batch=batch, input_shapes=input_shapes)
    shapes = infer_shapes(g, batch=batch, input_shapes=input_shapes)
    plan = plan_memory(g, batch=batch, input_shapes=input_shapes, schedule_kind="optimal")
    arena = np.zeros(plan.arena_bytes, np.uint8)
    tensors = {}
    for name, (offset, nbytes) in plan.locations().items():
        t = shapes.types[name]
        if dtypes.is_float(t.dtype) and t.dtype != "float32":
            producer = g.producer.get(name)
            message = (f"tensor '{name}' is {t.dtype}; the executor runs float32 models "
                       f"(integer tensors aside)")
            if producer is None:
                raise InputShapeError(message)
            raise UnsupportedOpError(g.nodes[producer], message)
        view = np.ndarray(t.shape, dtypes.numpy_dtype(t.dtype), buffer=arena, offset=offset)
        if view.nbytes != nbytes:  # the plan counts every float as float32: they must agree
            raise CnnGraphError(f"tensor '{name}': the plan holds {nbytes} bytes for "
                                f"{view.nbytes}")
        tensors[name] = view
    ctx = Context(threads)
    constants: dict[str, np.ndarray] = {}
    ctx.constants = g.constants.keys()  # known before the run (cached or not)

    def value(name: str, node) -> np.ndarray:
        if name in tensors:
            return tensors[name]
        if name in constants:
            return constants[name]
        const = g.constants.get(name)
        v = const.value() if const is not None else None
        if v is None:
            what = (f"constant '{name}' {shape_str(const.shape)}" if const is not None else
                    f"'{name}', computed before the run from constants without values,")
            raise NodeError(node, f"reads {what} which has no value: {STRUCTURE_ONLY_HINT}")
        v = np.asarray(v, dtype=dtypes.numpy_dtype(shapes.types[name].dtype))
        if v.nbytes <= _CACHE_LIMIT:  # weights are packed by their kernel: not held twice
            constants[name] = v
        return v

    steps: list[tuple[str, Kernel]] = []
    for name in plan.schedule.names:
        node = g.nodes[name]
        ins = [value(t, node) if t else None for t in node.inputs]
        outs = [tensors.get(o) if o else None for o in node.outputs]
        call = make_call(g, shapes, node, shapes.calls[name].op)
        fn = build_step(ctx, call, ins, outs)
        if fn is not None:
            steps.append((name, fn))
    ctx.workspace.allocate()
    outputs = {o: value(o, None) if o not in tensors else tensors[o] for o in g.outputs}
    return Compiled(g, shapes, plan, arena, tensors, steps, ctx, outputs, threads)


# -- BLAS threads -----------------------------------------------------------------------------
_BLAS_SETTERS = ("scipy_openblas_set_num_threads64_", "scipy_openblas_set_num_threads",
                 "openblas_set_num_threads64_", "openblas_set_num_threads")
_blas = {"fn": None, "looked": False, "now": None}


def _find_blas():
    """numpy's OpenBLAS thread setter, found among the libraries this process loaded."""
    try:
        with open("/proc/self/maps") as f:
            libs = {line.split()[-1] for line in f if "blas" in line.lower() and ".so" in line}
    except OSError:
        return None
    for path in sorted(libs):
        try:
            lib = ctypes.CDLL(path)
        except OSError:
            continue
        for sym in _BLAS_SETTERS:
            fn = getattr(lib, sym, None)
            if fn is not None:
                fn.argtypes = [ctypes.c_int]
                return fn
    return None


def set_threads(n: int) -> None:
    """Let numpy's BLAS use ``n`` threads (quietly nothing if it cannot be found)."""
    if _blas["now"] == n:
        return
    if not _blas["looked"]:
        _blas["fn"], _blas["looked"] = _find_blas(), True
    if _blas["fn"] is not None:
        _blas["fn"](int(n))
    _blas["now"] = n
