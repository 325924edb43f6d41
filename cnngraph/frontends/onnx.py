"""ONNX ModelProto -> Graph.

Weights are never read here: initializers become Constants whose bytes are converted only if
a pass asks for them. Files are read lean (onnx_weights): large payloads stay in the file until
they are asked for, as external data does (read only then, from the model's folder).
Old-style models (IR < 4) list initializers among the graph inputs; those are constants, not
inputs. Weights computed by constant subgraphs (ConstantOfShape, Constant, Reshape of a
constant...) stay nodes here and are folded by the shape pass.
"""

from __future__ import annotations

import ast
import math
import os
from collections import Counter
from functools import partial
from types import MappingProxyType
from typing import Mapping, Optional

import numpy as np
import onnx
from google.protobuf.message import DecodeError
from onnx import numpy_helper

from .. import dtypes
from ..errors import CnnGraphError, LoadError
from ..ir import BLOCK_KEY, Constant, Graph, Node, TensorInfo, block_paths, gc_paused
from .onnx_weights import Payload, external_payload, load_lean


def load_onnx(path: str, lean: bool = True) -> Graph:
    """Read an ONNX file into a Graph (weights stay unread). ``lean``: leave the large
    payloads in the file until they are asked for (False: onnx.load parses them all).

    >>> import onnx.backend.test, os
    >>> light = os.path.join(os.path.dirname(onnx.backend.test.__file__), "data", "light")
    >>> load_onnx(os.path.join(light, "light_bvlc_alexnet.onnx")).opset
    9
    """
    if not os.path.exists(path):
        raise LoadError(f"{path}: no such file")
    if os.path.isdir(path):
        raise LoadError(f"{path}: is a directory, not an ONNX file")
    payloads: dict[str, Payload] = {}
    try:
        if lean and os.path.getsize(path):
            model, payloads = load_lean(path)
        else:
            model = onnx.load(path, load_external_data=False)
    except (DecodeError, ValueError, RuntimeError, OSError) as e:
        detail = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise LoadError(f"{path}: not a readable ONNX model ({detail})") from None
    if not model.HasField("graph") or model.ir_version == 0:
        raise LoadError(f"{path}: not an ONNX model (no graph or no IR version)")
    try:
        with gc_paused():
            return from_model(model, source=path, payloads=payloads)
    except CnnGraphError as e:
        e.with_source(path)
        raise


def from_model(model: onnx.ModelProto, source: str = "",
               payloads: Optional[Mapping[str, Payload]] = None) -> Graph:
    """Convert an in-memory ModelProto; ``payloads``: initializers whose values are still in
    the file (load_lean)."""
    payloads = payloads or {}
    opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 1)
    g = model.graph
    name = g.name or os.path.splitext(os.path.basename(source))[0] or "model"
    graph = Graph(name, source=source, opset=opset)

    for init in g.initializer:
        graph.add_constant(_constant(init, payloads.get(init.name), source))
    for sparse in g.sparse_initializer:
        graph.add_constant(Constant(sparse.values.name, dtypes.from_onnx(sparse.values.data_type),
                                    tuple(sparse.dims), None))
    for vi in g.input:
        if vi.name not in graph.constants:  # IR < 4: initializers are listed as inputs too
            graph.add_input(_tensor_info(vi))
    for vi in list(g.value_info) + list(g.output):
        if vi.type.HasField("tensor_type"):
            graph.value_info[vi.name] = _tensor_info(vi)

    # Protobuf fields are slow to read: read each node's once.
    plain = [(n.name, n.op_type, tuple(n.input), tuple(n.output), n.domain, n) for n in g.node]
    names = _node_names(plain)
    # Only torch's exporter writes scope metadata; other producers' nodes need not be asked.
    scoped = _scoped_name if model.producer_name == "pytorch" else _plain_name
    blocks = block_paths([scoped(*p) for p in plain])
    if model.producer_name == "cnngraph":  # its export states blocks its names do not carry
        blocks = [_metadata(p[5], BLOCK_KEY, b) for p, b in zip(plain, blocks)]
    for (_, op_type, inputs, outputs, domain, proto), name, block in zip(
            plain, names, blocks):
        graph.add_node(Node(
            name=name, op_type=op_type, inputs=inputs, outputs=outputs,
            attrs=MappingProxyType({a.name: _attr_value(a) for a in proto.attribute}),
            block=block, domain=domain,
        ))
    graph.outputs.extend(o.name for o in g.output)
    return graph.freeze()


def _node_names(plain) -> list[str]:
    """Every node gets a unique, readable name: its own, else its first output's."""
    names, seen = [], Counter()
    for i, (name, op_type, _, outputs, _, _) in enumerate(plain):
        base = name or (outputs[0] if outputs and outputs[0] else f"{op_type}_{i}")
        seen[base] += 1
        names.append(base if seen[base] == 1 else f"{base}_{seen[base] - 1}")
    return names


def _metadata(node: onnx.NodeProto, key: str, default: str) -> str:
    return next((p.value for p in node.metadata_props if p.key == key), default)


def _plain_name(name, op_type, inputs, outputs, domain, proto) -> str:
    return name or (outputs[0] if outputs else "")


def _scoped_name(name, op_type, inputs, outputs, domain, proto) -> str:
    """The name that carries the node's module scope: torch's dynamo exporter keeps it in
    metadata (its node names are flat), others in the name or, failing that, the output."""
    for prop in proto.metadata_props:
        if prop.key == "pkg.torch.onnx.name_scopes":
            try:
                scopes = ast.literal_eval(prop.value)  # a list literal of module paths
            except (ValueError, SyntaxError):
                break
            return "/" + "/".join(_module_names(scopes[1:-1])) + "/" + op_type
    return _plain_name(name, op_type, inputs, outputs, domain, proto)


def _module_names(qualified: list) -> list:
    """Qualified module names as the TorchScript exporter scopes them: each level relative to
    its parent ('layer1.0.bn1' -> 'bn1'), but a Sequential's numbered child keeps its
    qualified name ('layer1.0'), so both exporters give the same block paths."""
    names, parent = [], ""
    for q in qualified:
        own = q[len(parent) + 1:] if parent and q.startswith(parent + ".") else q
        names.append(q if own.isdigit() else own)
        parent = q
    return names


def _tensor_info(vi: onnx.ValueInfoProto) -> TensorInfo:
    t = vi.type.tensor_type
    shape = None
    if t.HasField("shape"):
        shape = tuple(d.dim_value if d.HasField("dim_value") else (d.dim_param or None)
                      for d in t.shape.dim)
    dtype = dtypes.ONNX_TO_NAME.get(t.elem_type, "float32")
    return TensorInfo(vi.name, dtype, shape)


# Element types whose typed field holds values of the numpy type itself (float16 and the
# narrow integers are packed into int32_data, so they take onnx's general path).
_FIELDS = {1: ("float_data", np.float32), 7: ("int64_data", np.int64),
           6: ("int32_data", np.int32), 11: ("double_data", np.float64)}


def tensor_to_array(t: onnx.TensorProto) -> np.ndarray:
    """numpy_helper.to_array, with a fast path for the common plain layouts (it is called
    for every shape initializer and tensor attribute, and the general path is slow)."""
    field = _FIELDS.get(t.data_type)
    if field is not None and not t.HasField("segment"):
        dims = tuple(t.dims)
        if t.raw_data:
            return np.frombuffer(t.raw_data, dtype=field[1]).reshape(dims).copy()
        data = getattr(t, field[0])
        if len(data) == math.prod(dims):
            return np.array(data, dtype=field[1]).reshape(dims)
    return numpy_helper.to_array(t)


def _constant(init: onnx.TensorProto, payload: Optional[Payload], source: str) -> Constant:
    dims = tuple(init.dims)
    if payload is None and init.data_location == onnx.TensorProto.EXTERNAL and source:
        try:
            payload = external_payload(init, source)
        except LoadError as e:  # analysis needs no weights: refuse only when they are read
            return Constant(init.name, dtypes.from_onnx(init.data_type), dims,
                            partial(_refuse, e))
    if payload is not None:
        loader = partial(payload.read, dims)
    elif init.data_location == onnx.TensorProto.EXTERNAL:
        loader = None
    else:
        loader = partial(tensor_to_array, init)
    return Constant(init.name, dtypes.from_onnx(init.data_type), dims, loader)


def _refuse(error: LoadError):
    raise error


_A = onnx.AttributeProto
# The common attribute kinds, read straight from their fields (the general path is slower).
_FAST_ATTRS = {_A.INT: lambda a: a.i, _A.INTS: lambda a: list(a.ints),
               _A.FLOAT: lambda a: a.f, _A.FLOATS: lambda a: list(a.floats),
               _A.STRING: lambda a: a.s.decode("utf-8", "replace")}


def _attr_value(attr: onnx.AttributeProto):
    """Attributes as plain Python: str for strings, numpy arrays for tensors, lists for lists."""
    fast = _FAST_ATTRS.get(attr.type)
    if fast is not None:
        return fast(attr)
    value = onnx.helper.get_attribute_value(attr)
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if isinstance(value, onnx.TensorProto):
        return tensor_to_array(value)
    if isinstance(value, list):
        if value and isinstance(value[0], bytes):
            return [v.decode("utf-8", "replace") for v in value]
        if value and isinstance(value[0], onnx.TensorProto):
            return [tensor_to_array(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    return value
