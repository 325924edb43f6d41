"""Helpers for op tests: run one node through cnngraph, and through onnx as the oracle."""

from __future__ import annotations

from typing import Optional, Sequence, Union

import numpy as np
import onnx
from onnx import helper, numpy_helper

from cnngraph.dtypes import NAME_TO_ONNX, name_of
from cnngraph.ir import Node
from cnngraph.ops import Call, TensorType, lookup

Operand = Union[np.ndarray, TensorType, None]  # a value, a type only, or an omitted input


def _type(x: Operand) -> Optional[TensorType]:
    if x is None:
        return None
    if isinstance(x, TensorType):
        return x
    return TensorType(tuple(x.shape), name_of(x.dtype))


def call_of(op_type: str, inputs: Sequence[Operand], attrs: Optional[dict] = None,
            opset: int = 18, n_outputs: int = 1) -> Call:
    names = [f"in{i}" if x is not None else "" for i, x in enumerate(inputs)]
    node = Node("n", op_type, names, [f"out{i}" for i in range(n_outputs)], attrs or {})
    op = lookup(node)
    values = [x if isinstance(x, np.ndarray) else None for x in inputs]
    return Call(node, op, [_type(x) for x in inputs], values, opset)


def infer(op_type, inputs, attrs=None, opset=18, n_outputs=1) -> list[tuple[int, ...]]:
    """cnngraph's output shapes for one node."""
    call = call_of(op_type, inputs, attrs, opset, n_outputs)
    return [t.shape for t in call.op.infer(call)]


def evaluate(op_type, inputs, attrs=None, opset=18, n_outputs=1) -> list[np.ndarray]:
    """cnngraph's numpy reference for one node (every input must be a value)."""
    call = call_of(op_type, inputs, attrs, opset, n_outputs)
    return [np.asarray(v) for v in call.op.evaluate(call)]


def cost(op_type, inputs, attrs=None, opset=18, n_outputs=1) -> tuple[int, int]:
    """(macs, other_flops) of one node."""
    call = call_of(op_type, inputs, attrs, opset, n_outputs)
    outs = call.op.infer(call)
    return call.op.macs(call, outs), call.op.other_flops(call, outs)


def one_node_model(op_type, inputs, attrs=None, opset=18, n_outputs=1,
                   constant_inputs=()) -> onnx.ModelProto:
    """A single-node ONNX model. Inputs whose index is in constant_inputs become initializers
    (so onnx's data propagation sees their values); the rest are graph inputs."""
    graph_inputs, inits, names = [], [], []
    for i, x in enumerate(inputs):
        if x is None:
            names.append("")
            continue
        name = f"in{i}"
        names.append(name)
        t = _type(x)
        if i in constant_inputs:
            inits.append(numpy_helper.from_array(np.asarray(x), name))
        else:
            graph_inputs.append(helper.make_tensor_value_info(name, NAME_TO_ONNX[t.dtype], t.shape))
    outs = [f"out{i}" for i in range(n_outputs)]
    node = helper.make_node(op_type, names, outs, name="n", **(attrs or {}))
    graph = helper.make_graph([node], "g", graph_inputs,
                              [helper.make_tensor_value_info(o, 0, None) for o in outs], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = min(model.ir_version, 8)
    return model


def onnx_infer(op_type, inputs, attrs=None, opset=18, n_outputs=1, constant_inputs=()):
    """onnx.shape_inference's output shapes for one node (the independent oracle)."""
    model = one_node_model(op_type, inputs, attrs, opset, n_outputs, constant_inputs)
    inferred = onnx.shape_inference.infer_shapes(model, strict_mode=True, data_prop=True)
    shapes = []
    for out in inferred.graph.output:
        dims = out.type.tensor_type.shape.dim
        shapes.append(tuple(d.dim_value for d in dims))
    return shapes


def onnx_run(op_type, inputs, attrs=None, opset=18, n_outputs=1) -> list[np.ndarray]:
    """onnx's reference evaluator on one node (all inputs are values)."""
    from onnx.reference import ReferenceEvaluator

    model = one_node_model(op_type, inputs, attrs, opset, n_outputs)
    feeds = {f"in{i}": x for i, x in enumerate(inputs) if x is not None}
    return ReferenceEvaluator(model).run(None, feeds)


def ort_run(op_type, inputs, attrs=None, opset=18, out_types=("float32",)) -> list[np.ndarray]:
    """onnxruntime on one node: the oracle where onnx's reference evaluator is wrong.

    out_types gives each output's element type (a dtype name or an ONNX code); shapes are left
    to the runtime. Skips the test when onnxruntime is not installed."""
    import pytest

    ort = pytest.importorskip("onnxruntime")
    model = one_node_model(op_type, inputs, attrs, opset, len(out_types))
    for out, t in zip(model.graph.output, out_types):
        out.type.tensor_type.elem_type = NAME_TO_ONNX[t] if isinstance(t, str) else t
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return session.run(None, {f"in{i}": x for i, x in enumerate(inputs) if x is not None})
