"""Graph -> ONNX ModelProto: the network as it is in the IR, with its weights or fresh ones.

Nodes keep their names (so block scopes such as 'inception_3a/1x1' or
'/layer1/layer1.0/conv1/Conv' re-import to the same block paths), attributes and domains; the
graph inputs keep their declared shapes (a symbolic batch stays a dim_param); the outputs get
the types cnngraph's shape pass infers; every constant becomes an initializer (IR >= 4, so
never listed among the inputs).

Weights (``weights=``):

- ``"keep"``: the constants' own values (an error naming a constant that has none);
- ``"zeros"``: every parameter zero;
- ``"random"``: a sensible initialisation, so outputs depend on the inputs and activations
  stay of order 1 (see ``_initial``): He-normal weights, small biases, per-channel scales near
  1 and shifts near 0, PRelu slopes 0.25, BatchNorm scale 1 and shift 0 with its running mean
  and variance calibrated on a seeded random input;
- ``"auto"`` (default): ``"keep"`` when the graph holds its weights, ``"random"`` when it is
  structure only (a weight without a value, or one made by ConstantOfShape as in onnx's light
  models).

Parameters are what the cost pass counts: float constants a running node reads (directly or
through folded views), except operator settings (Resize scales, Clip bounds, scalars), which
always keep their values, as do integer constants (shapes, indices). A parameter made by a
folded node (ConstantOfShape, Constant, ...) becomes an initializer in its place, and the
folded nodes nothing reads any more go with it. An operator setting without a value is an
error naming it and its reader.

Opset (``opset=``): the graph's own by default. A newer one goes through onnx's version
converter. An older one down to 13 is cnngraph's own work (the converter has almost no
down-adapters): each node steps back one op version at a time where the older version says
the same for it (versions that only added element types; added attributes left at their
defaults; ReduceMean-18's axes input back to an attribute...), and a node that cannot is an
error naming it. Below 13 the converter takes over from 13.

>>> from cnngraph.ir import Constant, Graph, Node, TensorInfo
>>> g = Graph("t", opset=13); g.add_input(TensorInfo("x", "float32", ("N", 4)))
>>> g.add_constant(Constant("w", "float32", (4, 2), None))
>>> _ = g.add_node(Node("fc", "MatMul", ("x", "w"), ("y",))); g.outputs.append("y")
>>> m = to_onnx(g.freeze(), seed=1)
>>> [i.name for i in m.graph.initializer], m.graph.output[0].type.tensor_type.shape.dim[0].dim_param
(['w'], 'N')
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import math
import os
import sys
from typing import NamedTuple, Optional

import numpy as np
import onnx
from onnx import helper, numpy_helper

from .. import dtypes
from ..errors import CnnGraphError, ExportError
from ..ir import BLOCK_KEY, Constant, Graph, Node, block_paths
from ..passes.cost import param_source
from ..passes.shapes import Shapes, bind_inputs, infer_shapes
from .reference import execute

WEIGHT_MODES = ("auto", "random", "zeros", "keep")

# Above this many bytes of initializers, export() writes the weights to a side file: one
# protobuf message cannot exceed 2 GiB.
_EXTERNAL_BYTES = 1 << 30



class _Param(NamedTuple):
    source: str  # the tensor that holds the values (an initializer in the export)
    tensor: str  # the tensor as its first running reader sees it (through views)
    node: str  # that reader
    index: int  # the reader's input slot


class _Plan(NamedTuple):
    params: dict  # source -> _Param, in order of first use
    settings: dict  # tensor (or its source) that must keep its value -> (reader, input slot)
    structure_only: bool


def to_onnx(graph: Graph, weights: str = "auto", seed: int = 0,
            opset: Optional[int] = None) -> onnx.ModelProto:
    """The graph as an ONNX model (see the module docstring for ``weights``).

    ``seed`` makes random weights repeatable (each parameter's draw depends only on the seed
    and its name); ``opset`` re-targets the model (see the module docstring), an ExportError
    naming the node or the converter's complaint when it cannot.
    """
    if weights not in WEIGHT_MODES:
        raise ExportError(f"weights '{weights}' is not one of {', '.join(WEIGHT_MODES)}")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ExportError(f"seed {seed!r} must be a whole number >= 0")
    if opset is not None and (isinstance(opset, bool) or not isinstance(opset, (int, np.integer))
                              or opset < 1):
        raise ExportError(f"opset {opset!r} must be a whole number >= 1")
    try:
        shapes = infer_shapes(graph)  # a symbolic batch at 1, a fixed one as declared
        plan = _plan(graph, shapes)
        if weights == "auto":
            weights = "random" if plan.structure_only else "keep"
        if weights == "keep":
            out = graph
        else:
            out = _materialise(graph, shapes, plan, weights, int(seed))
        target = graph.opset if opset is None else int(opset)
        if target < graph.opset and graph.opset > DOWN_FLOOR:
            out = _downgrade(out, shapes, max(target, DOWN_FLOOR), target)
        model = _model(out, graph, shapes)
        if target != out.opset:
            model = _retarget(model, target, out.opset)
    except CnnGraphError as e:
        e.with_source(graph.source or graph.name)
        raise
    return model


def export(graph: Graph, path: str, weights: str = "auto", seed: int = 0,
           opset: Optional[int] = None) -> onnx.ModelProto:
    """Write ``to_onnx(graph, ...)`` to ``path`` and return the model as written. Weights beyond
    1 GiB go to ``path + '.data'`` beside it (ONNX external data; the returned model's
    initializers then point there)."""
    model = to_onnx(graph, weights=weights, seed=seed, opset=opset)
    size = sum(len(t.raw_data) for t in model.graph.initializer)
    try:
        if size > _EXTERNAL_BYTES:
            onnx.save_model(model, path, save_as_external_data=True,
                            all_tensors_to_one_file=True,
                            location=os.path.basename(path) + ".data")
        else:
            onnx.save_model(model, path)
    except OSError as e:
        raise ExportError(f"{path}: cannot write ({e.strerror or e})") from None
    return model


# -- which constants are parameters -----------------------------------------------------------
def _plan(graph: Graph, shapes: Shapes) -> _Plan:
    params: dict[str, _Param] = {}
    settings: dict[str, tuple[str, int]] = {}
    for name in graph.order():
        if not shapes.is_compute(name):
            continue
        node = graph.nodes[name]
        op = shapes.calls[name].op
        for i, t in enumerate(node.inputs):
            if not t or t not in shapes.constant:
                continue
            ttype = shapes.types[t]
            if not dtypes.is_float(ttype.dtype):
                continue  # shapes, indices: kept as they are
            source = param_source(graph, shapes, t)
            # the cost pass's rule: any size at a weight input (not a scalar), else more than
            # one element; a single number elsewhere (x / 255) is an operator constant
            weight = ttype.size > 1 or (i in op.weight_inputs and ttype.rank > 0)
            if i in op.attribute_inputs or not weight:
                settings.setdefault(t, (name, i))
                settings.setdefault(source, (name, i))
            elif source not in params:
                params[source] = _Param(source, t, name, i)
    structure_only = False
    for source in params:
        const = graph.constants.get(source)
        if const is not None:
            structure_only |= const.loader is None
        else:
            structure_only |= graph.nodes[graph.producer[source]].op_type == "ConstantOfShape"
    return _Plan(params, settings, structure_only)


# -- fresh weights ----------------------------------------------------------------------------
def _materialise(graph: Graph, shapes: Shapes, plan: _Plan, mode: str,
                 seed: int) -> Graph:
    """A copy of the graph whose parameters are new initializers; folded nodes that made them,
    and folded nodes nothing reads any more, are dropped."""
    values: dict[str, np.ndarray] = {}
    for source, p in plan.params.items():
        if source in plan.settings:
            continue  # also read as an operator setting: its value stays
        ptype = shapes.types[p.tensor]
        dtype = dtypes.numpy_dtype(ptype.dtype)
        if mode == "zeros":
            v = np.zeros(ptype.shape, dtype)
        else:
            v = _initial(shapes.calls[p.node], p.index, ptype.shape, _rng(seed, source), dtype)
        values[source] = v.astype(dtype, copy=False).reshape(shapes.types[source].shape)
    # Folded producers of new initializers go; their other outputs, if read, become
    # initializers too, with the values the shape pass folded.
    dropped = {graph.producer[s] for s in values if s in graph.producer}
    for name in dropped:
        node = graph.nodes[name]
        for o in node.outputs:
            if o and o not in values and graph.consumers.get(o):
                v = shapes.value(o)
                if v is None:
                    raise ExportError(f"node '{name}' ({node.op_type}) makes a parameter and "
                                      f"'{o}', which has no value to keep")
                values[o] = np.asarray(v)
    # One backward sweep: a folded node stays only if something kept reads its outputs.
    needed = set(graph.outputs)
    kept = []
    for name in reversed(graph.order()):
        node = graph.nodes[name]
        if name in dropped:
            continue
        if name in shapes.folded and not any(o in needed for o in node.outputs if o):
            continue
        kept.append(node)
        needed.update(t for t in node.inputs if t)
    out = Graph(graph.name, source=graph.source, opset=graph.opset)
    for info in graph.inputs:
        out.add_input(info)
    for node in reversed(kept):
        out.add_node(node)
    out.outputs.extend(graph.outputs)
    for name in sorted(needed, key=_first_use(out)):
        if name in values:
            t = shapes.types[name]
            out.add_constant(Constant(name, t.dtype, t.shape,
                                      functools.partial(values.__getitem__, name)))
        elif name in graph.constants:
            const = graph.constants[name]
            if const.loader is None:
                raise ExportError(_no_value(graph, plan, name))
            out.add_constant(const)
    out.freeze()
    if mode == "random":
        _calibrate(out, graph, shapes, plan, values, seed)
    return out


def _no_value(graph: Graph, plan: _Plan, name: str) -> str:
    """Why a constant that keeps its value cannot: it has none."""
    const = graph.constants[name]
    what = f"constant '{name}' {list(const.shape)} ({const.dtype})"
    reader = plan.settings.get(name)
    if reader is None:
        reader = next(((n, i) for n in graph.consumers.get(name, [])
                       for i, t in enumerate(graph.nodes[n].inputs) if t == name), None)
        kind = "a shape, index or other integer" if not dtypes.is_float(const.dtype) else \
            "not a parameter"
    else:
        kind = "an operator setting"
    where = ""
    if reader is not None:
        node = graph.nodes[reader[0]]
        where = f", input {reader[1]} of node '{node.name}' ({node.op_type}),"
    return f"{what}{where} is {kind} and keeps its value, but it has none"


def _first_use(graph: Graph):
    """Sort key: constants in the order the nodes read them (a repeatable initializer order)."""
    first: dict[str, int] = {}
    for i, node in enumerate(graph.nodes.values()):
        for t in node.inputs:
            first.setdefault(t, i)
    return lambda name: (first.get(name, len(first)), name)


def _rng(seed: int, name: str) -> np.random.Generator:
    """A generator that depends only on the seed and the tensor's name, so adding a layer does
    not change the others' weights."""
    digest = int.from_bytes(hashlib.sha256(name.encode("utf-8")).digest()[:8], "little")
    return np.random.default_rng([seed, digest])


def _he(normal, shape: tuple, fan_in: float) -> np.ndarray:
    """He-normal: std sqrt(2 / fan_in) keeps the second moment through ReLU layers."""
    v = normal(shape)
    v *= math.sqrt(2.0 / max(fan_in, 1.0))
    return v


def _initial(call, index: int, shape: tuple, rng: np.random.Generator,
             dtype: np.dtype) -> np.ndarray:
    """Fresh values for the parameter at input ``index`` of ``call``'s node, in the shape that
    node reads it (drawn in float32, or float64 for a float64 parameter)."""
    dtype = np.dtype(np.float64 if dtype == np.float64 else np.float32)
    normal = functools.partial(rng.standard_normal, dtype=dtype)
    op_type = call.node.op_type
    if op_type == "Conv" and index == 1:  # (K, Cin/group, *kernel)
        return _he(normal, shape, math.prod(shape[1:]))
    if op_type == "ConvTranspose" and index == 1:
        # (Cin, Cout/group, *kernel): an output sums about Cin/group * prod(kernel/stride) terms
        group = int(call.attr("group"))
        strides = call.node.attrs.get("strides") or [1] * (len(shape) - 2)
        return _he(normal, shape, shape[0] // group * math.prod(shape[2:]) / math.prod(strides))
    if op_type == "Gemm" and index in (0, 1):
        return _he(normal, shape, call.op.dims(call)[1])  # K, whatever transA / transB say
    if op_type == "MatMul":
        return _he(normal, shape, call.shape(0)[-1])  # K
    if op_type == "BatchNormalization":
        # scale 1, shift 0; mean 0 and var 1 until _calibrate measures them
        return np.ones(shape, dtype) if index in (1, 4) else np.zeros(shape, dtype)
    if op_type in ("InstanceNormalization", "LayerNormalization"):
        return np.ones(shape, dtype) if index == 1 else np.zeros(shape, dtype)
    if op_type == "PRelu":
        return np.full(shape, 0.25, dtype)
    if op_type in ("Mul", "Div"):
        return 1 + normal(shape) * dtype.type(0.1)  # a scale (per channel, say) near 1
    if op_type == "Pow":
        return np.ones(shape, dtype)
    if op_type in ("Conv", "ConvTranspose", "Gemm", "Add", "Sub", "Sum"):
        # biases and shifts: near zero, but not zero, so a numeric test sees them
        return normal(shape) * dtype.type(0.01)
    return normal(shape) * dtype.type(0.1)  # an operand of some other op: small, not zero


def _calibrate(out: Graph, graph: Graph, shapes: Shapes, plan: _Plan,
               values: dict[str, np.ndarray], seed: int) -> None:
    """Set every new BatchNormalization mean and variance to the statistics of the BN's actual
    input on a seeded standard-normal input (batch 1, or the model's fixed batch), in one pass in
    graph order: a BN's input never depends on its own statistics, and each BN then outputs
    about N(0, 1)."""
    targets: dict[str, dict[int, str]] = {}
    for source, p in plan.params.items():
        if source in values and graph.nodes[p.node].op_type == "BatchNormalization" \
                and p.index in (3, 4):
            targets.setdefault(p.node, {})[p.index] = source
    if not targets:
        return
    rng = _rng(seed, "\0calibration input")
    feeds = {}
    for name, t in bind_inputs(out).items():
        if dtypes.is_float(t.dtype):
            feeds[name] = rng.standard_normal(t.shape).astype(dtypes.numpy_dtype(t.dtype))
        else:
            feeds[name] = np.zeros(t.shape, dtypes.numpy_dtype(t.dtype))

    def before(node: Node, inputs: list) -> Optional[list]:
        slots = targets.get(node.name)
        if slots is None:
            return None
        mean, var = _statistics(inputs[0], inputs[3].shape)
        replaced = list(inputs)
        for index, stat in ((3, mean), (4, var)):
            source = slots.get(index)
            if source is None:
                continue
            v = stat.astype(inputs[index].dtype)
            values[source] = v.reshape(values[source].shape)
            replaced[index] = v
        return replaced

    execute(out, feeds, before=before)


def _statistics(x: np.ndarray, param_shape: tuple) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel mean and variance of a BN input (N, C, ...) for parameters of
    ``param_shape`` ((C,), or (C, H, W) for opset 7's spatial=0).

    A channel's statistics over few samples (a 2x2 map at batch 1) are noise, and dividing by a
    variance that came out small by chance amplifies every other input: they are shrunk
    towards the statistics of all channels together, by n / (n + SHRINK) for n samples per
    channel (n = 1, as after global pooling, takes the pooled ones: a channel's own mean would
    zero its output whatever the input). A channel constant on this input keeps at least 1% of
    the average variance, not 1/sqrt(epsilon) of gain.
    """
    x = x.astype(np.float64)
    axes = (0,) + tuple(range(1 + len(param_shape), x.ndim))
    n = math.prod(x.shape[a] for a in axes)
    mean, var = x.mean(axis=axes), x.var(axis=axes)
    w = n / (n + _SHRINK) if n > 1 else 0.0
    mean = w * mean + (1 - w) * x.mean()
    var = w * var + (1 - w) * x.var()
    var = np.maximum(var, 0.01 * var.mean())
    return mean.reshape(param_shape), var.reshape(param_shape)


_SHRINK = 4  # pseudo-samples of the all-channel statistics in a channel's own


# -- the ModelProto ---------------------------------------------------------------------------
def _model(out: Graph, graph: Graph, shapes: Shapes) -> onnx.ModelProto:
    from .. import __version__

    nodes = out.node_list()
    scoped = block_paths([n.name for n in nodes])
    domains = sorted({n.domain for n in nodes if n.domain not in ("", "ai.onnx")})
    imports = [helper.make_opsetid("", out.opset)] + [helper.make_opsetid(d, 1) for d in domains]
    # Filled in place: a model of half a gigabyte is not worth copying three times over.
    model = onnx.ModelProto()
    model.ir_version = max(4, helper.find_min_ir_version_for(imports))
    model.opset_import.extend(imports)
    model.producer_name, model.producer_version = "cnngraph", __version__
    g = model.graph
    g.name = out.name
    g.node.extend(_node(n, out.opset, n.block if block != n.block else None)
                  for n, block in zip(nodes, scoped))
    for const in out.constants.values():
        _fill_tensor(g.initializer.add(), const)
    g.input.extend(helper.make_tensor_value_info(t.name, dtypes.NAME_TO_ONNX[t.dtype], t.shape)
                   for t in out.inputs)
    g.output.extend(helper.make_tensor_value_info(name, dtypes.NAME_TO_ONNX[dtype], dims)
                    for name, dtype, dims in _output_types(graph, shapes))
    return model


def _output_types(graph: Graph, shapes: Shapes) -> list[tuple[str, str, list]]:
    """Each output's type at batch 1; with a symbolic (or unknown) batch, the dims that grow
    with it (found by a second pass at batch 2) get its name (or stay unknown), as do dims that
    change otherwise."""
    leading = [t.shape[0] for t in graph.inputs if t.shape]
    symbol = next((d for d in leading if isinstance(d, str)), None)
    other = None
    if any(not isinstance(d, int) for d in leading):
        try:
            other = infer_shapes(graph, batch=2)
        except CnnGraphError:
            other = None  # the model cannot run at another batch: its outputs are as at 1
    result = []
    for name in graph.outputs:
        t = shapes.types[name]
        dims: list = list(t.shape)
        if other is not None:
            for i, (d1, d2) in enumerate(zip(t.shape, other.types[name].shape)):
                if d1 != d2:
                    dims[i] = symbol if d2 == 2 * d1 else None
        result.append((name, t.dtype, dims))
    return result


@functools.lru_cache(maxsize=None)
def _attribute_types(op_type: str, opset: int, domain: str) -> dict:
    try:
        schema = onnx.defs.get_schema(op_type, opset, domain)
    except onnx.defs.SchemaError:
        return {}
    return {name: int(a.type.value) for name, a in schema.attributes.items()}


def _node(node: Node, opset: int, block: Optional[str]) -> onnx.NodeProto:
    proto = helper.make_node(node.op_type, node.inputs, node.outputs, name=node.name,
                             domain=node.domain or None)
    types = _attribute_types(node.op_type, opset, node.domain or "")
    for key, value in node.attrs.items():
        try:
            proto.attribute.append(_attribute(key, value, types.get(key)))
        except (TypeError, ValueError) as e:
            raise ExportError(f"node '{node.name}' ({node.op_type}): attribute {key}="
                              f"{value!r} cannot be written to ONNX ({e})") from None
    if block is not None:  # the block came from elsewhere (a producer's metadata)
        entry = proto.metadata_props.add()
        entry.key, entry.value = BLOCK_KEY, block
    return proto


_A = onnx.AttributeProto


def _attribute(key: str, value, kind: Optional[int]) -> onnx.AttributeProto:
    """An attribute back in ONNX form, of the type the op's schema declares (so alpha=1 is a
    FLOAT and an empty list has a type)."""
    if isinstance(value, np.ndarray) and kind in (_A.INTS, _A.FLOATS, _A.STRINGS, _A.INT,
                                                  _A.FLOAT):
        value = value.tolist()
    if kind == _A.INT:
        value = int(value)
    elif kind == _A.FLOAT:
        value = float(value)
    elif kind == _A.INTS:
        value = [int(v) for v in value]
    elif kind == _A.FLOATS:
        value = [float(v) for v in value]
    elif kind == _A.STRINGS:
        value = [str(v) for v in value]
    elif isinstance(value, np.ndarray):
        value = _tensor("", value)
    elif isinstance(value, (list, tuple)) and value and isinstance(value[0], np.ndarray):
        value = [_tensor("", v) for v in value]
    elif isinstance(value, np.generic):
        value = value.item()
    elif kind is None and isinstance(value, (list, tuple)) and not value:
        kind = _A.INTS  # an empty list of unknown kind: onnx needs some type
    return helper.make_attribute(key, value, attr_type=kind)


def _fill_tensor(proto: onnx.TensorProto, const: Constant) -> None:
    value = const.value()
    if value is None:
        raise ExportError(f"constant '{const.name}' {list(const.shape)} has no value (a "
                          f"structure-only graph or external data); export with weights="
                          f"'random' or 'zeros', or give its value")
    value = np.asarray(value)
    if const.dtype in _RAW and sys.byteorder == "little":
        # numpy_helper.from_array's layout, written straight into the model
        proto.name = const.name
        proto.data_type = dtypes.NAME_TO_ONNX[const.dtype]
        proto.dims.extend(value.shape)
        proto.raw_data = value.astype(const.dtype, copy=False).tobytes()
    else:
        proto.CopyFrom(_tensor(const.name, value, const.dtype))


# Element types whose raw_data is the numpy array's own bytes.
_RAW = frozenset({"float32", "float64", "float16", "int8", "uint8", "int16", "uint16",
                  "int32", "uint32", "int64", "uint64", "bool"})


def _tensor(name: str, value: np.ndarray, dtype: Optional[str] = None) -> onnx.TensorProto:
    if dtype == "bfloat16" and value.dtype.name != "bfloat16":
        import ml_dtypes  # onnx's own dependency for its narrow float types

        value = value.astype(ml_dtypes.bfloat16)
    elif dtype is not None and dtype != "bfloat16" and value.dtype.name != dtype:
        value = value.astype(dtypes.numpy_dtype(dtype))
    if not value.flags.c_contiguous:  # (np.ascontiguousarray would make a scalar 1-D)
        value = value.copy(order="C")
    return numpy_helper.from_array(value, name)


def _retarget(model: onnx.ModelProto, opset: int, current: int) -> onnx.ModelProto:
    from onnx import version_converter

    try:
        converted = version_converter.convert_version(model, opset)
    except Exception as e:  # the converter raises RuntimeError, ValueError, ... with C++ text
        text = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        text = text.split("failed: ", 1)[-1]
        raise ExportError(f"onnx's converter cannot take the model from opset {current} to "
                          f"{opset}: {text}") from None
    converted.ir_version = max(converted.ir_version,
                               helper.find_min_ir_version_for(list(converted.opset_import)))
    return converted


# -- to an older opset --------------------------------------------------------------------------
# onnx's version converter has almost no down-adapters (not even Relu 14 -> 13), so cnngraph
# takes a graph down itself as far as opset 13, one op version at a time, wherever the older
# version means the same for this node; below 13, the converter decides.
DOWN_FLOOR = 13


def _downgrade(graph: Graph, shapes: Shapes, opset: int, requested: int) -> Graph:
    """The graph with every node in its form at ``opset`` (older than the graph's own), or an
    ExportError naming the first node whose older form cannot say the same thing."""
    out = Graph(graph.name, source=graph.source, opset=opset)
    for info in graph.inputs:
        out.add_input(info)
    for node in graph.node_list():
        try:
            out.add_node(_older(node, graph.opset, opset, shapes))
        except ExportError as e:
            raise ExportError(f"cannot re-target to opset {requested}: {e.message}") from None
    out.outputs.extend(graph.outputs)
    read = {t for node in out.nodes.values() for t in node.inputs} | set(out.outputs)
    for name, const in graph.constants.items():
        if name in read:  # (an axes input that became an attribute is not)
            out.add_constant(const)
    return out.freeze()


def _since(op_type: str, opset: int) -> Optional[int]:
    """The version of an op in force at ``opset`` (None: the op does not exist yet)."""
    try:
        return onnx.defs.get_schema(op_type, opset, "").since_version
    except onnx.defs.SchemaError:
        return None


def _older(node: Node, current: int, target: int, shapes: Shapes) -> Node:
    if node.domain not in ("", "ai.onnx") or not onnx.defs.has(node.op_type):
        return node
    since = _since(node.op_type, current)
    while since is not None and since > target:
        older = _since(node.op_type, since - 1)
        if older is None:
            raise ExportError(f"node '{node.name}' ({node.op_type}): the op does not exist "
                              f"before opset {since}")
        if (node.op_type, since) not in _SAME_BELOW:
            rule = _DOWN_RULES.get((node.op_type, since))
            if rule is None:
                raise ExportError(f"node '{node.name}' ({node.op_type}): cnngraph cannot take "
                                  f"{node.op_type}-{since} to its version {older}")
            node = rule(node, shapes, since)
        since = older
    return node


# Versions that only admit more element types than the one before (bfloat16, int8, float8...):
# a node of a float model means the same in the older version.
_SAME_BELOW = frozenset({
    ("Add", 14), ("Sub", 14), ("Mul", 14), ("Div", 14), ("Relu", 14), ("Identity", 14),
    ("BatchNormalization", 15), ("Pow", 15), ("Identity", 16), ("LeakyRelu", 16),
    ("PRelu", 16), ("Where", 16), ("Constant", 19), ("Identity", 19), ("Reshape", 19),
    ("Shape", 19), ("Size", 19), ("ConstantOfShape", 20), ("ReduceMax", 20), ("ReduceMin", 20),
    ("Constant", 21), ("ConstantOfShape", 21), ("Identity", 21), ("Reshape", 21),
    ("Shape", 21), ("Size", 21), ("Flatten", 21), ("Transpose", 21), ("Squeeze", 21),
    ("Unsqueeze", 21), ("Cast", 21), ("Pad", 21), ("Conv", 22), ("ConvTranspose", 22),
    ("MaxPool", 22), ("AveragePool", 22), ("GlobalAveragePool", 22), ("GlobalMaxPool", 22),
    ("InstanceNormalization", 22), ("HardSigmoid", 22), ("HardSwish", 22), ("Dropout", 22),
})


def _unsaid(node: Node, since: int, reason: str) -> ExportError:
    return ExportError(f"node '{node.name}' ({node.op_type}): {reason}, which "
                       f"{node.op_type} before opset {since} cannot express")


def _defaults_only(**defaults):
    """A version that added attributes: the node goes back if it leaves them at their
    defaults (None: the attribute must be absent)."""
    def rule(node: Node, shapes: Shapes, since: int) -> Node:
        for name, default in defaults.items():
            if name in node.attrs and (default is None or node.attrs[name] != default):
                raise _unsaid(node, since, f"it sets {name}={node.attrs[name]!r}")
        attrs = {k: v for k, v in node.attrs.items() if k not in defaults}
        return dataclasses.replace(node, attrs=attrs)
    return rule


def _forbid(name: str, value):
    """A version that added a value of an attribute."""
    def rule(node: Node, shapes: Shapes, since: int) -> Node:
        if node.attrs.get(name) == value:
            raise _unsaid(node, since, f"it sets {name}={value!r}")
        return node
    return rule


def _pad_axes(node: Node, shapes: Shapes, since: int) -> Node:
    """Pad-18 added the optional axes input."""
    if len(node.inputs) > 3 and node.inputs[3]:
        raise _unsaid(node, since, "it pads only some axes (input 3)")
    return dataclasses.replace(node, inputs=node.inputs[:3])


def _split_outputs(node: Node, shapes: Shapes, since: int) -> Node:
    """Split-18 added num_outputs; Split-13 splits equally into as many outputs as it has."""
    if "num_outputs" not in node.attrs:
        return node
    sizes = {shapes.types[o].shape for o in node.outputs if o}
    if len(sizes) != 1:
        raise _unsaid(node, since, "it splits into unequal parts by num_outputs")
    return dataclasses.replace(node, attrs={k: v for k, v in node.attrs.items()
                                            if k != "num_outputs"})


def _axes_to_attribute(node: Node, shapes: Shapes, since: int) -> Node:
    """Reduce*-18 read the axes from input 1; before, from the axes attribute."""
    attrs = dict(node.attrs)
    noop = attrs.pop("noop_with_empty_axes", 0)
    axes = node.inputs[1] if len(node.inputs) > 1 else ""
    if axes:
        value = shapes.value(axes)
        if value is None:
            raise _unsaid(node, since, f"its axes ('{axes}') are computed at run time")
        if value.size:
            attrs["axes"] = [int(a) for a in value.reshape(-1)]
    if noop and "axes" not in attrs:
        raise _unsaid(node, since, "it reduces nothing (noop_with_empty_axes=1, no axes)")
    return dataclasses.replace(node, inputs=node.inputs[:1], attrs=attrs)


def _no_zero_dims(node: Node, shapes: Shapes, since: int) -> Node:
    """Reshape-14 added allowzero; it changes nothing when the shape has no 0 in it."""
    if node.attrs.get("allowzero", 0):
        value = shapes.value(node.inputs[1]) if len(node.inputs) > 1 else None
        if value is None or not value.all():
            raise _unsaid(node, since, "it sets allowzero=1 for a shape that may hold a 0")
    return dataclasses.replace(node, attrs={k: v for k, v in node.attrs.items()
                                            if k != "allowzero"})


def _unit_dilations(node: Node, shapes: Shapes, since: int) -> Node:
    """AveragePool-19 added dilations."""
    if any(int(d) != 1 for d in node.attrs.get("dilations", ())):
        raise _unsaid(node, since, f"it sets dilations={list(node.attrs['dilations'])}")
    return dataclasses.replace(node, attrs={k: v for k, v in node.attrs.items()
                                            if k != "dilations"})


_DOWN_RULES = {
    ("Reshape", 14): _no_zero_dims,
    ("BatchNormalization", 14): _defaults_only(training_mode=0),
    ("Shape", 15): _defaults_only(start=0, end=None),
    ("Pad", 18): _pad_axes,
    ("Resize", 18): _defaults_only(antialias=0, axes=None, keep_aspect_ratio_policy="stretch"),
    ("Split", 18): _split_outputs,
    ("ReduceMean", 18): _axes_to_attribute,
    ("ReduceMax", 18): _axes_to_attribute,
    ("ReduceMin", 18): _axes_to_attribute,
    ("AveragePool", 19): _unit_dilations,
    ("Cast", 19): _defaults_only(saturate=1),
    ("Pad", 19): _forbid("mode", "wrap"),
    ("Resize", 19): _forbid("coordinate_transformation_mode", "half_pixel_symmetric"),
}
