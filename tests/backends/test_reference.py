"""The numpy interpreter: hand-computed graphs, its errors, and onnxruntime as the oracle on
real files (the torch exports with their own weights) and on exported light models."""

from __future__ import annotations

import functools
import glob
import os

import numpy as np
import onnx
import pytest

import cnngraph
from cnngraph.backends.reference import execute, run_reference
from cnngraph.errors import (
    CnnGraphError,
    InputShapeError,
    NodeError,
    ShapeError,
    UnsupportedOpError,
)
from cnngraph.frontends import from_model, light_model_path
from cnngraph.ir import Constant, Graph, Node, TensorInfo

DATA = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "data")
TORCH_FILES = sorted(os.path.basename(p) for p in glob.glob(os.path.join(DATA, "*.onnx")))


def const(name, value):
    value = np.asarray(value)
    return Constant(name, value.dtype.name, value.shape, functools.partial(np.array, value))


def residual_graph(w_value=True) -> Graph:
    """x (N, 2, 2, 2) -> 1x1 conv (2 -> 2 channels, bias) -> relu -> + x -> global avg pool."""
    g = Graph("residual", opset=13)
    g.add_input(TensorInfo("x", "float32", ("N", 2, 2, 2)))
    w = np.array([[1, 0], [1, -1]], np.float32).reshape(2, 2, 1, 1)  # (K=2, C=2, 1, 1)
    g.add_constant(const("W", w) if w_value else Constant("W", "float32", (2, 2, 1, 1)))
    g.add_constant(const("B", np.array([0.5, 0], np.float32)))
    g.add_node(Node("conv", "Conv", ("x", "W", "B"), ("c",)))
    g.add_node(Node("relu", "Relu", ("c",), ("r",)))
    g.add_node(Node("add", "Add", ("r", "x"), ("s",)))
    g.add_node(Node("gap", "GlobalAveragePool", ("s",), ("y",)))
    g.outputs.append("y")
    return g.freeze()


X = np.array([[[[1, 2], [3, 4]], [[4, 3], [2, 1]]]], np.float32)  # (1, 2, 2, 2)


def test_a_residual_unit_by_hand():
    out = run_reference(residual_graph(), {"x": X})
    assert list(out) == ["y"]
    # channel 0: x0 + 0.5 = [[1.5, 2.5], [3.5, 4.5]], relu keeps it, + x0 -> [[2.5, 4.5], ...]
    # channel 1: x0 - x1 = [[-3, -1], [1, 3]] -> relu [[0, 0], [1, 3]], + x1 -> [[4, 3], [3, 4]]
    expected = np.array([[2.5, 4.5], [6.5, 8.5]]).mean(), np.array([[4, 3], [3, 4]]).mean()
    np.testing.assert_allclose(out["y"].reshape(2), expected)
    assert out["y"].shape == (1, 2, 1, 1) and out["y"].dtype == np.float32


def test_keep_returns_every_tensor():
    seen = run_reference(residual_graph(), {"x": X}, keep=True)
    assert set(seen) == {"x", "W", "B", "c", "r", "s", "y"}
    np.testing.assert_array_equal(seen["r"], np.maximum(seen["c"], 0))


def test_batch_follows_the_inputs():
    x2 = np.concatenate([X, -X])
    out = run_reference(residual_graph(), {"x": x2}, batch=2)["y"]
    assert out.shape == (2, 2, 1, 1)
    np.testing.assert_array_equal(out[:1], run_reference(residual_graph(), {"x": X})["y"])
    with pytest.raises(InputShapeError, match=r"input 'x' has shape \(2, 2, 2, 2\), not batch 3"):
        run_reference(residual_graph(), {"x": x2}, batch=3)


def test_weights_fill_a_structure_only_graph_and_override_values():
    g = residual_graph(w_value=False)
    with pytest.raises(NodeError, match=r"node 'conv' \(Conv\): reads constant 'W' \(2, 2, 1, 1\) "
                                        r"has no value .* give it in weights"):
        run_reference(g, {"x": X})
    w = np.array([[1, 0], [1, -1]], np.float32).reshape(2, 2, 1, 1)
    np.testing.assert_array_equal(run_reference(g, {"x": X}, weights={"W": w})["y"],
                                  run_reference(residual_graph(), {"x": X})["y"])
    zero_bias = run_reference(residual_graph(), {"x": X}, weights={"B": np.zeros(2)})["y"]
    assert zero_bias.reshape(2)[0] == pytest.approx(np.array([[2, 4], [6, 8]]).mean())
    with pytest.raises(CnnGraphError, match="weights name 'nope', which is not a constant"):
        run_reference(g, {"x": X}, weights={"nope": w})
    with pytest.raises(CnnGraphError, match=r"weights\['W'\] has shape \(2, 2\); the constant is "
                                            r"\(2, 2, 1, 1\)"):
        run_reference(g, {"x": X}, weights={"W": w.reshape(2, 2)})


def test_input_errors():
    g = residual_graph()
    with pytest.raises(InputShapeError, match="input 'x' is not given"):
        run_reference(g, {})
    with pytest.raises(InputShapeError, match="inputs name 'z', which the graph does not have"):
        run_reference(g, {"x": X, "z": X})
    with pytest.raises(InputShapeError, match="the graph declares rank 4"):
        run_reference(g, {"x": X[0]})
    with pytest.raises(InputShapeError, match="input 'x' is complex128; the graph declares "
                                              "float32"):
        run_reference(g, {"x": X.astype(complex)})
    out = run_reference(g, {"x": X.astype(np.float64)})["y"]  # a float of another width: cast
    assert out.dtype == np.float32


def test_an_op_without_numpy_reference_is_named(monkeypatch):
    from cnngraph.ops import base

    class NoReference(base.OpDef):
        op_type = "NoReference"

        def infer(self, call):
            return [call.input(0)]

    monkeypatch.setitem(base.REGISTRY, "NoReference", NoReference)
    g = Graph("t", opset=13)
    g.add_input(TensorInfo("x", "float32", (1, 2)))
    g.add_node(Node("odd", "NoReference", ("x",), ("y",)))
    g.outputs.append("y")
    try:
        with pytest.raises(UnsupportedOpError, match=r"node 'odd' \(NoReference\): has no "
                                                     r"numpy reference, so run_reference cannot "
                                                     r"run it"):
            run_reference(g.freeze(), {"x": np.zeros((1, 2), np.float32)})
    finally:
        base._INSTANCES.pop("NoReference", None)  # lookup's cache of the op


def test_a_reference_that_disagrees_with_its_shape_rule_is_caught(monkeypatch):
    from cnngraph.ops.activation import Relu

    monkeypatch.setattr(Relu, "evaluate", lambda self, call: [call.values[0].astype(np.float64)])
    with pytest.raises(ShapeError, match=r"node 'relu' \(Relu\): the numpy reference gives "
                                         r"float64 \(1, 2, 2, 2\) for 'r' where the shape rule "
                                         r"gives float32"):
        run_reference(residual_graph(), {"x": X})


def test_the_training_form_of_batchnorm_before_opset_14_is_named():
    g = Graph("t", opset=9)
    g.add_input(TensorInfo("x", "float32", (2, 2, 1, 1)))
    for name in ("s", "b", "m", "v"):
        g.add_constant(const(name, np.ones(2, np.float32)))
    g.add_node(Node("bn", "BatchNormalization", ("x", "s", "b", "m", "v"),
                    ("y", "rm", "rv", "sm", "sv")))
    g.outputs.append("y")
    with pytest.raises(UnsupportedOpError, match=r"node 'bn' \(BatchNormalization\): the "
                                                 r"training form"):
        run_reference(g.freeze(), {"x": np.zeros((2, 2, 1, 1), np.float32)})


def test_the_hook_may_replace_values_later_readers_see():
    g = Graph("t", opset=13)
    g.add_input(TensorInfo("x", "float32", (1, 2)))
    g.add_constant(const("k", np.ones(2, np.float32)))
    g.add_node(Node("m1", "Mul", ("x", "k"), ("a",)))
    g.add_node(Node("m2", "Mul", ("a", "k"), ("b",)))
    g.outputs.append("b")

    def before(node, values):
        if node.name == "m1":
            return [values[0], np.full(2, 3, np.float32)]

    out = execute(g.freeze(), {"x": np.array([[1, 2]], np.float32)}, before=before)
    np.testing.assert_array_equal(out["b"], [[9, 18]])  # both multiplies saw k = 3


# -- onnxruntime is the oracle ------------------------------------------------------------------
def assert_close(got, want):
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)


@pytest.mark.onnxruntime
@pytest.mark.parametrize("name", TORCH_FILES)
def test_equals_onnxruntime_on_the_torch_files(name):
    """The files' own weights, batch 2 (their batch axis is symbolic)."""
    ort = pytest.importorskip("onnxruntime")
    path = os.path.join(DATA, name)
    session = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    x = np.random.default_rng(0).standard_normal((2, 3) + _spatial(path)).astype(np.float32)
    (want,) = session.run(None, {"input": x})
    got = run_reference(cnngraph.load(path), {"input": x}, batch=2)
    assert_close(got["output"], want)


def _spatial(path):
    dims = onnx.load(path).graph.input[0].type.tensor_type.shape.dim
    return tuple(d.dim_value for d in dims[2:])


@pytest.mark.onnxruntime
@pytest.mark.parametrize("name", ["squeezenet", "shufflenet"])
def test_equals_onnxruntime_on_exported_light_models(name):
    """Random weights (with BN calibrated, for shufflenet); the logits before the softmax are
    compared too, since the probabilities alone are all near 1/1000."""
    ort = pytest.importorskip("onnxruntime")
    from cnngraph.backends.export_onnx import to_onnx

    model = to_onnx(cnngraph.load(light_model_path(name)), weights="random")
    (softmax,) = [n for n in model.graph.node if n.op_type == "Softmax"]
    logits = softmax.input[0]
    model.graph.output.append(onnx.helper.make_tensor_value_info(logits, 1, None))
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    inp = model.graph.input[0]
    x = np.random.default_rng(1).standard_normal(
        [d.dim_value for d in inp.type.tensor_type.shape.dim]).astype(np.float32)
    want = session.run(None, {inp.name: x})
    got = run_reference(from_model(model), {inp.name: x}, keep=True)
    assert_close(got[model.graph.output[0].name], want[0])
    assert_close(got[logits], want[1])
    assert want[1].std() > 0.1  # the logits are not a constant: the comparison means something
