"""Shape propagation with constant folding.

One walk over the graph in topological order gives every tensor a static shape and dtype, and
marks what is known before the run: weights, and everything computed only from weights and
static shapes (ConstantOfShape of a shape initializer, Reshape of a constant, Shape -> Gather ->
Concat chains). Small constants get their values (the op's numpy reference computes them);
large ones keep only their type, so weight bytes are never read.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping, Optional

import numpy as np

from ..errors import (
    InputShapeError,
    ShapeError,
    UnsupportedOpError,
    located_in,
)
from ..ir import Graph, Node
from ..ops import Call, TensorType, lookup
from ..ops.base import LazyValues, check_opset, shape_str

# Constants up to this many elements get values; larger ones (weights) only a type.
VALUE_LIMIT = 1 << 16


@dataclass
class Shapes:
    """What shape propagation knows about every tensor of one graph."""

    types: dict[str, TensorType] = field(default_factory=dict)
    values: dict[str, np.ndarray] = field(default_factory=dict)
    constant: set[str] = field(default_factory=set)  # tensors known before the run
    folded: set[str] = field(default_factory=set)  # nodes computed at compile time
    unknown: list[str] = field(default_factory=list)  # nodes skipped (allow_unknown)
    calls: dict[str, Call] = field(default_factory=dict)  # each node as its op saw it
    pending: dict[str, Call] = field(default_factory=dict)  # folded outputs not yet computed
    batch: int = 1
    graph: Optional[Graph] = None

    def value(self, name: str) -> Optional[np.ndarray]:
        """The compile-time value of a tensor (None if only known at run time, or too large),
        computed on first use: a small initializer is decoded, a folded node's numpy
        reference runs (its inputs resolve the same way)."""
        if name in self.values:
            return self.values[name]
        call = self.pending.pop(name, None)
        if call is not None:
            _evaluate(call, self)
            return self.values.get(name)
        const = self.graph.constants.get(name) if self.graph is not None else None
        if const is not None and const.size <= VALUE_LIMIT:
            value = const.value()
            if value is not None:
                self.values[name] = value
            return value
        return None

    def is_compute(self, node_name: str) -> bool:
        """A node that runs at inference: neither folded nor skipped as unknown."""
        return node_name not in self.folded and node_name not in self.unknown


def bind_inputs(graph: Graph, batch: Optional[int] = None,
                input_shapes: Optional[Mapping[str, tuple]] = None) -> dict[str, TensorType]:
    """Static shapes for the graph inputs.

    A symbolic leading dim (and any dim sharing its name) is the batch: ``batch`` or 1.
    ``batch`` also replaces a fixed leading dim. ``input_shapes`` gives whole shapes by name.
    Any other unknown dim is an error naming the input.
    """
    input_shapes = dict(input_shapes or {})
    names = set(graph.input_names)
    for name in input_shapes:
        if name not in names:
            raise InputShapeError(
                f"--input-shape names '{name}', but the graph inputs are "
                f"{', '.join(repr(n) for n in sorted(names)) or 'none'}")
    bound = {}
    for info in graph.inputs:
        if info.name in input_shapes:
            shape = tuple(int(d) for d in input_shapes[info.name])
            if info.shape is not None and len(info.shape) != len(shape):
                raise InputShapeError(
                    f"--input-shape {info.name}={'x'.join(map(str, shape))} has rank "
                    f"{len(shape)}, but the model declares rank {len(info.shape)}")
        elif info.shape is None:
            raise InputShapeError(
                f"input '{info.name}' has no declared shape; give it with "
                f"--input-shape {info.name}=1x3x224x224")
        else:
            batch_symbol = info.shape[0] if info.shape and isinstance(info.shape[0], str) else None
            dims = []
            for axis, d in enumerate(info.shape):
                if axis == 0 and (batch is not None or not isinstance(d, int)):
                    d = batch if batch is not None else 1
                elif batch_symbol is not None and d == batch_symbol:
                    d = batch if batch is not None else 1
                if not isinstance(d, int) or d < 0:
                    shown = "x".join(str(x) if x is not None else "?" for x in info.shape)
                    raise InputShapeError(
                        f"input '{info.name}' has unknown dimension {axis} "
                        f"('{d if d is not None else '?'}') in shape {shown}; give it with "
                        f"--input-shape {info.name}=...")
                dims.append(d)
            shape = tuple(dims)
        if any(d < 1 for d in shape):
            raise InputShapeError(f"input '{info.name}' has an empty shape {shape_str(shape)}")
        bound[info.name] = TensorType(shape, info.dtype)
    return bound


def infer_shapes(graph: Graph, batch: Optional[int] = None,
                 input_shapes: Optional[Mapping[str, tuple]] = None,
                 allow_unknown: bool = False) -> Shapes:
    """Static shapes for every tensor, folding constants on the way.

    >>> from cnngraph.ir import Graph, Node, TensorInfo
    >>> g = Graph("t"); g.add_input(TensorInfo("x", "float32", ("N", 3, 8, 8)))
    >>> _ = g.add_node(Node("r", "Relu", ("x",), ("y",))); g.outputs.append("y")
    >>> str(infer_shapes(g.freeze(), batch=2).types["y"])
    '2x3x8x8'
    """
    with located_in(graph):
        return _infer(graph, batch, input_shapes, allow_unknown)


def _infer(graph, batch, input_shapes, allow_unknown) -> Shapes:
    result = Shapes(graph=graph)
    result.types.update(bind_inputs(graph, batch, input_shapes))
    if graph.inputs:
        result.batch = result.types[graph.inputs[0].name].shape[0]
    for const in graph.constants.values():
        result.types[const.name] = TensorType(const.shape, const.dtype)
        result.constant.add(const.name)
    types = result.types
    skipped: set[str] = set()  # tensors whose type is unknown (outputs of skipped nodes)
    for name in graph.order():
        node = graph.nodes[name]
        if skipped and any(t in skipped for t in node.inputs if t):
            _skip(result, skipped, node)
            continue
        try:
            op = lookup(node)
        except UnsupportedOpError:
            if not allow_unknown:
                raise
            _skip(result, skipped, node)
            continue
        check_opset(node, graph.opset)
        call = result.calls[name] = make_call(graph, result, node, op)
        outs = op.infer(call)
        if len(outs) < len(node.outputs) and any(node.outputs[len(outs):]):
            raise ShapeError(node, f"has {len(node.outputs)} outputs; the op defines {len(outs)}")
        for out_name, t in zip(node.outputs, outs):
            if out_name:
                types[out_name] = t
        _fold(result, node, op, call, outs)
    return result


def _skip(result: Shapes, skipped: set[str], node: Node) -> None:
    result.unknown.append(node.name)
    skipped.update(o for o in node.outputs if o)


def make_call(graph: Graph, result: Shapes, node: Node, op) -> Call:
    types = [result.types[t] if t else None for t in node.inputs]
    values = LazyValues(node.inputs, result.value)
    return Call(node, op, types, values, graph.opset)


def _fold(result: Shapes, node: Node, op, call: Call, outs: list[TensorType]) -> None:
    """Mark a node whose inputs are all known before the run as folded; its small outputs
    get values when something asks for them (most folded weights are never asked)."""
    if op.never_fold or not (op.shape_only or all(t in result.constant for t in node.inputs if t)):
        return
    result.folded.add(node.name)
    result.constant.update(o for o in node.outputs if o)
    if all(t.size <= VALUE_LIMIT for t in outs):
        result.pending.update((o, call) for o in node.outputs if o)


def _evaluate(call: Call, result: Shapes) -> None:
    node, op = call.node, call.op
    for o in node.outputs:
        result.pending.pop(o, None)
    if not op.shape_only and any(call.values[i] is None for i, t in enumerate(node.inputs) if t):
        return  # an input too large to hold a value: the output's type is all we know
    try:
        values = op.evaluate(call)
    except UnsupportedOpError:
        return
    for out_name, v in zip(node.outputs, values):
        if not out_name:
            continue
        t = result.types[out_name]
        v = np.asarray(v)
        if tuple(v.shape) != t.shape or (v.dtype.name != t.dtype and t.dtype != "bfloat16"):
            raise ShapeError(node, f"the numpy reference gives {v.dtype.name} "
                                   f"{shape_str(v.shape)} where the shape rule gives {t.dtype} "
                                   f"{shape_str(t.shape)}")
        result.values[out_name] = v
