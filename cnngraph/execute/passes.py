"""Compile passes: small rewrites of a frozen Graph, each returning a new frozen Graph that
computes the same outputs.

- ``drop_identities``: Dropout (inference) and Identity disappear; readers read the input.
- ``fold_constants``: every node computed only from constants and static shapes runs now
  (its numpy reference) and becomes a constant.
- ``fold_batchnorm``: BatchNormalization after a Conv (and Mul / Add by a per-channel
  constant, BatchNorm as older exporters spell it) folds into the Conv's weights and bias.
- ``fuse_conv``: Conv + residual Add + activation become one ``FusedConv`` node.

``optimize`` runs them in that order. A pass only rewrites what it can prove the same: a
tensor another node also reads, a graph output, a weight without a value all stay as they are.

>>> import cnngraph
>>> from cnngraph.execute import random_weights
>>> net = cnngraph.Network("unit"); x = net.input("x", ("N", 8, 16, 16))
>>> y = net.batchnorm(net.conv(x, 8, 3, padding="same"), activation="relu")
>>> net.output(net.add(net.batchnorm(net.conv(y, 8, 3, padding="same")), x, activation="relu"))
>>> g = random_weights(net.build())
>>> [n.op_type for n in g.node_list()]
['Conv', 'BatchNormalization', 'Relu', 'Conv', 'BatchNormalization', 'Add', 'Relu']
>>> [(n.op_type, n.attrs["activation"], n.inputs[3:]) for n in optimize(g).node_list()]
[('FusedConv', 'Relu', ()), ('FusedConv', 'Relu', ('x',))]
"""

from __future__ import annotations

import functools
from typing import Mapping, Optional, Sequence

import numpy as np

from .. import dtypes
from ..ir import Constant, Graph, Node
from ..ops import lookup
from ..ops.conv import FUSED_ACTIVATIONS
from ..passes.shapes import infer_shapes, make_call

__all__ = ["drop_identities", "fold_constants", "fold_batchnorm", "fuse_conv", "optimize",
           "PASSES"]


def _same(value: np.ndarray) -> np.ndarray:
    return value


def constant_of(name: str, value: np.ndarray) -> Constant:
    """A constant holding ``value`` (already computed)."""
    value = np.asarray(value)
    return Constant(name, dtypes.name_of(value.dtype), tuple(value.shape),
                    functools.partial(_same, value))


def rebuild(graph: Graph, nodes: Sequence[Node], constants: Optional[Mapping] = None) -> Graph:
    """A new frozen graph like ``graph`` with these nodes (in this order) and constants;
    constants nothing reads any more are dropped."""
    out = Graph(graph.name, graph.source, graph.opset)
    out.inputs = list(graph.inputs)
    out.outputs = list(graph.outputs)
    out.value_info = dict(graph.value_info)
    out.origins = dict(graph.origins)
    constants = graph.constants if constants is None else constants
    read = {t for n in nodes for t in n.inputs} | set(graph.outputs)
    out.constants = {k: c for k, c in constants.items() if k in read}
    for n in nodes:
        out.add_node(n)
    return out.freeze()


def _rename(node: Node, names: Mapping[str, str]) -> Node:
    def r(t: str) -> str:
        seen = 0
        while t in names and seen < 1000:
            t, seen = names[t], seen + 1
        return t

    inputs, outputs = tuple(map(r, node.inputs)), tuple(map(r, node.outputs))
    if inputs == node.inputs and outputs == node.outputs:
        return node
    return Node(node.name, node.op_type, inputs, outputs, node.attrs, node.block, node.domain)


def _value(graph: Graph, name: str) -> Optional[np.ndarray]:
    const = graph.constants.get(name)
    return None if const is None else const.value()


def _only_reader(graph: Graph, tensor: str, taken=()) -> Optional[Node]:
    """The one node reading ``tensor`` (once), when no one else does, it is no graph output
    and the reader is not ``taken`` by another rewrite already."""
    readers = graph.consumers.get(tensor, [])
    if len(readers) != 1 or tensor in graph.outputs or readers[0] in taken:
        return None
    node = graph.nodes[readers[0]]
    return node if node.inputs.count(tensor) == 1 else None


# -- drop Dropout and Identity ------------------------------------------------------------------
def drop_identities(graph: Graph) -> Graph:
    """Remove Dropout (inference form, mask unread) and Identity nodes.

    Readers of the output read the input instead; when the output is a graph output, the
    input's producer writes it under the output's name.
    """
    outputs, inputs = set(graph.outputs), set(graph.input_names)
    names: dict[str, str] = {}
    dropped = set()
    for node in graph.node_list():
        if node.op_type not in ("Dropout", "Identity") or node.domain not in ("", "ai.onnx"):
            continue
        if any(node.outputs[1:]) and any(graph.consumers.get(o) or o in outputs
                                         for o in node.outputs[1:] if o):
            continue  # the mask is used
        if node.op_type == "Dropout" and len(node.inputs) > 2 and node.inputs[2]:
            mode = _value(graph, node.inputs[2])
            if mode is None or bool(np.asarray(mode).any()):
                continue  # training mode (or unknown): it drops at random
        x, y = _rename(node, names).inputs[0], node.outputs[0]
        if y not in outputs:
            names[y] = x
        elif (x in graph.producer and x not in outputs and x not in inputs
              and graph.producer[x] not in dropped):
            names[x] = y  # the producer writes the graph output itself
        else:
            continue
        dropped.add(node.name)
    if not dropped:
        return graph
    return rebuild(graph, [_rename(n, names) for n in graph.node_list() if n.name not in dropped])


# -- fold constants -----------------------------------------------------------------------------
def fold_constants(graph: Graph, batch: Optional[int] = None,
                   input_shapes: Optional[Mapping[str, tuple]] = None) -> Graph:
    """Run every node whose inputs are all known before the run (weights, shapes at this
    ``batch``) and make its outputs constants. A node reading a constant without a value (a
    structure-only model) stays."""
    shapes = infer_shapes(graph, batch=batch, input_shapes=input_shapes)
    if not shapes.folded:
        return graph
    values: dict[str, np.ndarray] = {}
    constants = dict(graph.constants)
    kept = []
    for node in graph.node_list():
        if node.name not in shapes.folded:
            kept.append(node)
            continue
        op = lookup(node)
        ins = []
        for t in node.inputs:
            v = None
            if t:
                v = values.get(t)
                if v is None:
                    v = _value(graph, t)
            ins.append(v)
        if not op.shape_only and any(v is None for t, v in zip(node.inputs, ins) if t):
            kept.append(node)
            continue
        call = make_call(graph, shapes, node, op)
        call.values = ins
        try:
            outs = op.evaluate(call)
        except Exception:  # no reference (or one that refuses): leave the node to run
            kept.append(node)
            continue
        for name, v in zip(node.outputs, outs):
            if name:
                v = np.asarray(v, dtype=dtypes.numpy_dtype(shapes.types[name].dtype))
                values[name] = v
                constants[name] = constant_of(name, v)
    return rebuild(graph, kept, constants)


# -- fold BatchNormalization (and per-channel Mul/Add) into Conv --------------------------------
def _channel_vector(graph: Graph, name: str, channels: int, rank: int) -> Optional[np.ndarray]:
    """A constant that broadcasts against (N, C, spatial...) along C only, as a (C,) float64
    vector; None otherwise."""
    v = _value(graph, name)
    if v is None or v.ndim > rank:
        return None
    shape = (1,) * (rank - v.ndim) + v.shape
    if any(d != 1 for i, d in enumerate(shape) if i != 1) or shape[1] not in (1, channels):
        return None
    return np.broadcast_to(v.reshape(-1).astype(np.float64), (channels,))


def _affine(graph: Graph, node: Node, x: str, channels: int, rank: int):
    """(scale, shift) per channel when ``node`` computes scale * x + shift on channels."""
    if node.domain not in ("", "ai.onnx"):
        return None
    if node.op_type == "BatchNormalization":
        if len(node.inputs) != 5 or node.inputs[0] != x or any(node.outputs[1:]):
            return None
        if node.attrs.get("training_mode", 0) or (graph.opset < 9 and
                                                  not node.attrs.get("spatial", 1)):
            return None
        params = [_value(graph, t) for t in node.inputs[1:]]
        if any(p is None or p.shape != (channels,) for p in params):
            return None
        scale, b, mean, var = (p.astype(np.float64) for p in params)
        s = scale / np.sqrt(var + float(node.attrs.get("epsilon", 1e-5)))
        return s, b - mean * s
    if node.op_type in ("Mul", "Add", "Sub") and len(node.inputs) == 2:
        other = node.inputs[1] if node.inputs[0] == x else node.inputs[0]
        if node.op_type == "Sub" and node.inputs[0] != x:
            return None
        v = _channel_vector(graph, other, channels, rank)
        if v is None:
            return None
        if node.op_type == "Mul":
            return v, np.zeros(channels)
        return np.ones(channels), (v if node.op_type == "Add" else -v)
    return None


def fold_batchnorm(graph: Graph) -> Graph:
    """Fold BatchNormalization into the Conv before it, when the Conv's output has no other
    reader: W' = W * s, B' = (B - mean) * s + shift with s = scale / sqrt(var + eps). A Mul
    or Add by a per-channel constant (BatchNorm as some exporters write it) folds the same
    way."""
    constants = dict(graph.constants)
    nodes = {n.name: n for n in graph.node_list()}
    dropped = set()
    changed = False
    for conv in list(nodes.values()):
        if conv.op_type != "Conv" or conv.domain not in ("", "ai.onnx") or conv.name in dropped:
            continue
        w = graph.constants.get(conv.inputs[1])  # its metadata: the bytes are read lazily
        has_bias = len(conv.inputs) > 2 and bool(conv.inputs[2])
        b = _value(graph, conv.inputs[2]) if has_bias else None
        if w is None or w.loader is None or (has_bias and b is None):
            continue
        channels, rank = w.shape[0], len(w.shape)
        scale, shift = np.ones(channels), (b.astype(np.float64) if has_bias
                                           else np.zeros(channels))
        out = conv.outputs[0]
        while True:
            reader = _only_reader(graph, out, dropped)
            step = reader and _affine(graph, reader, out, channels, rank)
            if not step:
                break
            s, t = step
            scale, shift = scale * s, shift * s + t
            dropped.add(reader.name)
            out = reader.outputs[0]
        if out == conv.outputs[0]:
            continue
        changed = True
        wname, bname = _fresh(constants, conv.name + "/W_folded"), _fresh(constants,
                                                                          conv.name + "/B_folded")
        # computed when a kernel packs it, not held: a model's weights exist once at a time
        constants[wname] = w._replace(name=wname, loader=functools.partial(
            _scaled, w, scale.reshape((-1,) + (1,) * (rank - 1))))
        constants[bname] = constant_of(bname, shift.astype(dtypes.numpy_dtype(w.dtype)))
        nodes[conv.name] = Node(conv.name, conv.op_type, (conv.inputs[0], wname, bname), (out,),
                                conv.attrs, conv.block, conv.domain)
    if not changed:
        return graph
    # A folded chain ends at its last node's output: keep the Conv where that node was, so
    # the model's order stays valid.
    return rebuild(graph, _in_place_of(graph, nodes, dropped), constants)


def _scaled(weight: Constant, scale: np.ndarray) -> np.ndarray:
    w = weight.value()
    return (w * scale).astype(w.dtype)


def _fresh(taken, name: str) -> str:
    k, out = 0, name
    while out in taken:
        k += 1
        out = f"{name}.{k}"
    return out


def _in_place_of(graph: Graph, nodes: dict, dropped: set) -> list:
    """Nodes in the model's order, each rewritten node moved to where the last node of its
    chain was (that is where all its inputs are ready)."""
    last = {}  # original node whose place a rewritten node takes -> the rewritten node
    for n in nodes.values():
        if n.name not in dropped and n is not graph.nodes[n.name]:
            last[graph.producer[n.outputs[0]]] = n.name
    moved = set(last.values())
    order = []
    for name in graph.order():
        if name in last:
            order.append(nodes[last[name]])
        if name in dropped or name in moved:
            continue
        order.append(nodes[name])
    return order


# -- fuse Conv + residual Add + activation ------------------------------------------------------
def _activation(graph: Graph, node: Node):
    """(name, params) of an activation FusedConv can apply, or None."""
    if node.domain not in ("", "ai.onnx") or node.op_type not in FUSED_ACTIVATIONS:
        return None
    a = node.attrs
    if node.op_type == "Clip":
        if graph.opset < 11:
            lo, hi = a.get("min", -np.inf), a.get("max", np.inf)
        else:
            bounds = []
            for i in (1, 2):
                if len(node.inputs) > i and node.inputs[i]:
                    v = _value(graph, node.inputs[i])
                    if v is None or v.size != 1:
                        return None
                    bounds.append(float(v.reshape(())))
                else:
                    bounds.append(-np.inf if i == 1 else np.inf)
            lo, hi = bounds
        return "Clip", (float(lo), float(hi))
    if len(node.inputs) != 1:
        return None
    if node.op_type == "LeakyRelu":
        return "LeakyRelu", (float(a.get("alpha", 0.01)),)
    if node.op_type == "HardSigmoid":
        return "HardSigmoid", (float(a.get("alpha", 0.2)), float(a.get("beta", 0.5)))
    return node.op_type, ()


def fuse_conv(graph: Graph, batch: Optional[int] = None,
              input_shapes: Optional[Mapping[str, tuple]] = None) -> Graph:
    """Conv, then an Add (or two-input Sum) of a same-shaped tensor (the residual), then an
    activation, each step taken only when the Conv's chain has no other reader, become one
    FusedConv: Relu(Add(Conv(x), r)) -> FusedConv(x, W, B, r, activation='Relu')."""
    shapes = infer_shapes(graph, batch=batch, input_shapes=input_shapes)
    nodes = {n.name: n for n in graph.node_list()}
    dropped = set()
    changed = False
    for conv in list(nodes.values()):
        if conv.op_type != "Conv" or conv.domain not in ("", "ai.onnx") or conv.name in dropped:
            continue
        out, residual, act, params = conv.outputs[0], "", "", ()
        reader = _only_reader(graph, out, dropped)
        if (reader is not None and reader.op_type in ("Add", "Sum") and len(reader.inputs) == 2
                and reader.domain in ("", "ai.onnx")):
            other = reader.inputs[1] if reader.inputs[0] == out else reader.inputs[0]
            if (other not in graph.constants and other in shapes.types
                    and shapes.types[other] == shapes.types[out]):
                residual = other
                dropped.add(reader.name)
                out = reader.outputs[0]
                reader = _only_reader(graph, out, dropped)
        found = reader is not None and _activation(graph, reader)
        if found:
            act, params = found
            dropped.add(reader.name)
            out = reader.outputs[0]
        if out == conv.outputs[0]:
            continue
        changed = True
        bias = conv.inputs[2] if len(conv.inputs) > 2 else ""
        inputs = (conv.inputs[0], conv.inputs[1], bias, residual)
        inputs = inputs[:4 if residual else (3 if bias else 2)]
        attrs = dict(conv.attrs, activation=act, activation_params=tuple(params))
        nodes[conv.name] = Node(conv.name, "FusedConv", inputs, (out,), attrs, conv.block, "")
    if not changed:
        return graph
    return rebuild(graph, _in_place_of(graph, nodes, dropped))


PASSES = ("drop_identities", "fold_constants", "fold_batchnorm", "fuse_conv")


def optimize(graph: Graph, batch: Optional[int] = None,
             input_shapes: Optional[Mapping[str, tuple]] = None) -> Graph:
    """Every pass, in order: the graph the executor runs."""
    graph = drop_identities(graph)
    graph = fold_constants(graph, batch=batch, input_shapes=input_shapes)
    graph = fold_batchnorm(graph)
    return fuse_conv(graph, batch=batch, input_shapes=input_shapes)
