"""A plain numpy interpreter: run a Graph node by node with each op's own numpy reference.

Slow and obviously correct, it is the oracle the native executor and exported models are
checked against. It reuses the shape pass for every node's input types (``infer_shapes``), so
the Calls an op evaluates here are the ones it was analysed with, only with real values; every
value an op returns is checked against the shape rule's type.

>>> import numpy as np
>>> from cnngraph.ir import Constant, Graph, Node, TensorInfo
>>> g = Graph("t"); g.add_input(TensorInfo("x", "float32", ("N", 2)))
>>> g.add_constant(Constant("w", "float32", (2, 1), None))  # structure only: no value
>>> _ = g.add_node(Node("fc", "MatMul", ("x", "w"), ("y",))); g.outputs.append("y")
>>> out = run_reference(g.freeze(), {"x": np.array([[1, 2]], np.float32)},
...                     weights={"w": np.array([[3], [4]], np.float32)})
>>> out["y"]
array([[11.]], dtype=float32)
"""

from __future__ import annotations

import copy
import functools
from typing import Callable, Mapping, Optional

import numpy as np

from .. import dtypes
from ..errors import CnnGraphError, InputShapeError, NodeError, ShapeError, UnsupportedOpError
from ..ir import Constant, Graph, Node
from ..ops.base import OpDef, shape_str
from ..passes.shapes import Shapes, infer_shapes, make_call

# Called before a node runs with its input values; may return replacement values (the export
# uses it to calibrate BatchNormalization statistics on the way).
BeforeNode = Callable[[Node, list], Optional[list]]


def run_reference(graph: Graph, inputs: Mapping[str, np.ndarray],
                  weights: Optional[Mapping[str, np.ndarray]] = None,
                  batch: Optional[int] = None, keep: bool = False) -> dict[str, np.ndarray]:
    """Run ``graph`` on ``inputs`` (one array per graph input) with numpy, node by node.

    Constants take their values from ``weights`` where it names them (it must name constants
    of the graph, in their shapes), else from the constants themselves; a constant with no
    value (a structure-only graph, external data) that a node reads is an error naming the
    node. ``batch``, when given, must be the inputs' leading dimension. Returns the graph
    outputs by name, or with ``keep=True`` every tensor the run saw: inputs, the constants
    read, and every node's outputs.
    """
    return execute(graph, inputs, weights, batch, keep)


def execute(graph: Graph, inputs: Mapping[str, np.ndarray],
            weights: Optional[Mapping[str, np.ndarray]] = None,
            batch: Optional[int] = None, keep: bool = False,
            before: Optional[BeforeNode] = None) -> dict[str, np.ndarray]:
    """run_reference with a ``before(node, values)`` hook that may replace a node's input
    values; replaced values are what later readers of those tensors see too."""
    arrays = _bind_inputs(graph, inputs, batch)
    graph = _with_weights(graph, weights)
    try:
        shapes = infer_shapes(graph, input_shapes={n: a.shape for n, a in arrays.items()})
        return _run(graph, shapes, arrays, keep, before)
    except CnnGraphError as e:
        e.with_source(graph.source or graph.name)
        raise


def _bind_inputs(graph: Graph, inputs: Mapping[str, np.ndarray],
                 batch: Optional[int]) -> dict[str, np.ndarray]:
    """Every graph input given once, of its declared rank and element type."""
    declared = {t.name: t for t in graph.inputs}
    unknown = sorted(set(inputs) - set(declared))
    if unknown:
        raise InputShapeError(f"inputs name {', '.join(repr(n) for n in unknown)}, which the "
                              f"graph does not have (its inputs: "
                              f"{', '.join(repr(n) for n in declared) or 'none'})")
    arrays = {}
    for name, info in declared.items():
        if name not in inputs:
            raise InputShapeError(f"input '{name}' is not given")
        a = np.asarray(inputs[name])
        want = dtypes.numpy_dtype(info.dtype)
        if a.dtype != want:
            if not np.can_cast(a.dtype, want, "same_kind"):
                raise InputShapeError(f"input '{name}' is {a.dtype.name}; the graph declares "
                                      f"{info.dtype}")
            a = a.astype(want)
        if info.shape is not None and a.ndim != len(info.shape):
            raise InputShapeError(f"input '{name}' has shape {shape_str(a.shape)}; the graph "
                                  f"declares rank {len(info.shape)}")
        if batch is not None and (a.ndim == 0 or a.shape[0] != batch):
            raise InputShapeError(f"input '{name}' has shape {shape_str(a.shape)}, not batch "
                                  f"{batch}")
        arrays[name] = a
    return arrays


def _with_weights(graph: Graph, weights: Optional[Mapping[str, np.ndarray]]) -> Graph:
    """The graph seen with ``weights`` as its constants' values (a shallow copy: the shape
    pass then folds settings given in ``weights`` too)."""
    if not weights:
        return graph
    constants = dict(graph.constants)
    for name, value in weights.items():
        const = constants.get(name)
        if const is None:
            raise CnnGraphError(f"weights name '{name}', which is not a constant of the graph")
        value = np.asarray(value)
        if tuple(value.shape) != tuple(const.shape):
            raise CnnGraphError(f"weights['{name}'] has shape {shape_str(value.shape)}; the "
                                f"constant is {shape_str(const.shape)}")
        value = value.astype(dtypes.numpy_dtype(const.dtype), copy=False)
        constants[name] = const._replace(loader=functools.partial(_same, value))
    view = copy.copy(graph)
    view.constants = constants
    return view


def _same(value: np.ndarray) -> np.ndarray:
    return value


def _run(graph: Graph, shapes: Shapes, arrays: dict[str, np.ndarray], keep: bool,
         before: Optional[BeforeNode]) -> dict[str, np.ndarray]:
    env: dict[str, np.ndarray] = dict(arrays)
    # Readers still to come per tensor, so a value is dropped after its last use.
    pending: dict[str, int] = {}
    for node in graph.nodes.values():
        for t in set(node.inputs):
            if t:
                pending[t] = pending.get(t, 0) + 1
    wanted = set(graph.outputs)

    def value_of(name: str, node: Optional[Node]) -> np.ndarray:
        v = env.get(name)
        if v is None:
            v = _constant_value(graph.constants[name], node)
            env[name] = v
        return v

    for name in graph.order():
        node = graph.nodes[name]
        values = [value_of(t, node) if t else None for t in node.inputs]
        if before is not None:
            replaced = before(node, values)
            if replaced is not None:
                for t, old, new in zip(node.inputs, values, replaced):
                    if new is not old:
                        env[t] = new
                values = list(replaced)
        call = make_call(graph, shapes, node, shapes.calls[name].op)
        call.values = values
        outs = _evaluate(call)
        for out_name, v in zip(node.outputs, outs):
            if out_name:
                env[out_name] = _checked(node, shapes, out_name, v)
        if not keep:
            for t in set(node.inputs):
                if t:
                    pending[t] -= 1
                    if not pending[t] and t not in wanted:
                        env.pop(t, None)
    if keep:
        return env
    return {o: value_of(o, None) for o in graph.outputs}


def _constant_value(const: Constant, node: Optional[Node]) -> np.ndarray:
    value = const.value()
    if value is None:
        message = (f"constant '{const.name}' {shape_str(const.shape)} has no value (a "
                   f"structure-only graph or external data); give it in weights")
        if node is None:
            raise CnnGraphError(f"graph output {message}")
        raise NodeError(node, f"reads {message}")
    return np.asarray(value)


def _evaluate(call) -> list:
    op = call.op
    if type(op).evaluate is OpDef.evaluate:
        raise UnsupportedOpError(call.node, "has no numpy reference, so run_reference cannot "
                                            "run it")
    return op.evaluate(call)


def _checked(node: Node, shapes: Shapes, name: str, value) -> np.ndarray:
    """An op's value must have the type its shape rule gave: anything else is a bug in the op,
    caught here rather than three layers later."""
    v = np.asarray(value)
    t = shapes.types[name]
    if tuple(v.shape) != t.shape or (v.dtype != dtypes.numpy_dtype(t.dtype)):
        raise ShapeError(node, f"the numpy reference gives {v.dtype.name} {shape_str(v.shape)} "
                               f"for '{name}' where the shape rule gives {t.dtype} "
                               f"{shape_str(t.shape)}")
    return v
