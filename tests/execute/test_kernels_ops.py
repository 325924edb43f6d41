"""Dedicated kernels of the ops that used to run their numpy reference (ConvTranspose,
Resize/Upsample, Erf/Gelu/PRelu, LayerNormalization, InstanceNormalization, Split, Where,
Expand, Tile, Pad): one-node models compiled and run, against onnx's reference evaluator or
onnxruntime, and the kernel is a dedicated one (not 'reference')."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx.reference import ReferenceEvaluator

import cnngraph
from cnngraph.frontends.onnx import from_model

from ..util import one_node_model

RNG = np.random.default_rng(23)


def rand(*shape):
    return RNG.standard_normal(shape).astype(np.float32)


def oracle_run(model, feeds, oracle):
    if oracle == "onnx":
        return ReferenceEvaluator(model).run(None, feeds)
    ort = pytest.importorskip("onnxruntime")
    for out in model.graph.output:  # onnxruntime wants the output types: float32 here
        out.type.tensor_type.elem_type = onnx.TensorProto.FLOAT
    session = ort.InferenceSession(model.SerializeToString(),
                                   providers=["CPUExecutionProvider"])
    return session.run(None, feeds)


def check(op_type, inputs, attrs=None, opset=18, n_outputs=1, constant_inputs=(),
          oracle="onnx", tol=1e-5, kind="numpy"):
    """Compile and run one node; compare every output with the oracle's."""
    model = one_node_model(op_type, inputs, attrs, opset, n_outputs, constant_inputs)
    compiled = cnngraph.compile(from_model(model), threads=1)
    feeds = {f"in{i}": x for i, x in enumerate(inputs)
             if x is not None and i not in constant_inputs}
    got = compiled.run(feeds)
    want = oracle_run(model, feeds, oracle)
    for i, w in enumerate(want):
        g = got[f"out{i}"]
        assert g.shape == w.shape, (i, g.shape, w.shape)
        np.testing.assert_allclose(g, w, rtol=tol, atol=tol, err_msg=f"output {i}")
    assert compiled.kernels["n"] == kind
    return compiled


# -- data movement --------------------------------------------------------------------------------
@pytest.mark.parametrize("split,axis,n", [(None, 1, 3), ([1, 4, 1], 1, 3), ([2, 0, 3], -1, 3),
                                          (None, 0, 2)])
def test_split(split, axis, n):
    x = rand(2, 6, 5)
    inputs = [x] + ([np.array(split, np.int64)] if split else [])
    check("Split", inputs, {"axis": axis}, opset=13, n_outputs=n, constant_inputs=(1,))


def test_split_num_outputs():
    check("Split", [rand(7, 3)], {"axis": 0, "num_outputs": 3}, opset=18, n_outputs=3)


@pytest.mark.parametrize("shapes", [((2, 3), (2, 3), (2, 3)), ((1, 3), (2, 1), (3,)),
                                    ((2, 1, 4), (), (3, 1))])
def test_where(shapes):
    c, a, b = shapes
    cond = RNG.random(c) > 0.5
    check("Where", [np.asarray(cond), rand(*a), rand(*b)])


def test_where_with_a_constant_branch():
    cond = RNG.random((2, 3)) > 0.5
    check("Where", [cond, rand(2, 3), np.float32(-1.0)], constant_inputs=(2,))


@pytest.mark.parametrize("x,shape", [((3, 1), (2, 3, 4)), ((1,), (5,)), ((2, 1, 3), (1, 4, 1))])
def test_expand(x, shape):
    check("Expand", [rand(*x), np.array(shape, np.int64)], constant_inputs=(1,))


@pytest.mark.parametrize("x,repeats", [((2, 3), (1, 1)), ((2, 3), (3, 2)), ((1, 2, 3), (2, 1, 3)),
                                       ((4,), (0,))])
def test_tile(x, repeats):
    check("Tile", [rand(*x), np.array(repeats, np.int64)], constant_inputs=(1,))


def test_tile_hand_checked():
    x = np.array([[1, 2]], np.float32)
    compiled = check("Tile", [x, np.array([2, 2], np.int64)], constant_inputs=(1,))
    y = compiled.run({"in0": x})["out0"]
    assert y.tolist() == [[1, 2, 1, 2], [1, 2, 1, 2]]


# -- padding --------------------------------------------------------------------------------------
PADS = [[0, 0, 1, 2, 0, 0, 2, 1], [0, 1, 0, 3, 0, 0, 2, 0], [0, 0, -1, 2, 0, 0, 1, -2],
        [0, 0, 0, 0, 0, 0, 0, 0]]


@pytest.mark.parametrize("mode", ["constant", "reflect", "edge", "wrap"])
@pytest.mark.parametrize("pads", PADS)
def test_pad_modes(mode, pads):
    x = rand(1, 2, 4, 5)
    if mode == "reflect" and max(pads) >= 3:
        pads = [min(p, 2) for p in pads]
    # onnx's reference evaluator refuses negative pads (crops): onnxruntime then
    check("Pad", [x, np.array(pads, np.int64), np.float32(0.5)], {"mode": mode}, opset=19,
          constant_inputs=(1, 2), oracle="ort" if min(pads) < 0 else "onnx")


def test_pad_wrap_wider_than_the_axis():
    """onnxruntime repeats the period for wrap pads longer than the axis."""
    x = rand(1, 3, 2)
    check("Pad", [x, np.array([0, 4, 5, 0, 7, 3], np.int64)], {"mode": "wrap"}, opset=19,
          constant_inputs=(1,), oracle="ort")


def test_pad_hand_checked():
    x = np.array([[1, 2, 3]], np.float32)
    pads = np.array([0, 2, 0, 2], np.int64)
    for mode, want in [("reflect", [3, 2, 1, 2, 3, 2, 1]), ("edge", [1, 1, 1, 2, 3, 3, 3]),
                       ("wrap", [2, 3, 1, 2, 3, 1, 2]), ("constant", [0, 0, 1, 2, 3, 0, 0])]:
        compiled = check("Pad", [x, pads], {"mode": mode}, opset=19, constant_inputs=(1,))
        assert compiled.run({"in0": x})["out0"].tolist() == [want], mode


def test_pad_axes_and_an_old_opset():
    x = rand(2, 3, 4)
    check("Pad", [x, np.array([1, 2, 0, 1], np.int64), None, np.array([2, 0], np.int64)],
          {"mode": "edge"}, opset=18, constant_inputs=(1, 3))
    check("Pad", [x], {"mode": "reflect", "pads": [0, 1, 1, 0, 1, 2]}, opset=2)
    check("Pad", [x], {"pads": [0, 1, 1, 0, 1, 2], "value": 2.5}, opset=2)


def test_pad_value_computed_at_run_time():
    """The constant value is an input of the graph: read when the step runs, not compiled in."""
    x = rand(2, 3)
    check("Pad", [x, np.array([1, 0, 0, 2], np.int64), np.array(7.5, np.float32)],
          opset=18, constant_inputs=(1,))


# -- normalization --------------------------------------------------------------------------------
@pytest.mark.parametrize("axis,param_shape", [(-1, (5,)), (1, (3, 4, 5)), (2, (1, 5)),
                                              (0, (2, 3, 4, 5))])
@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("stats", [1, 3])
def test_layernorm(axis, param_shape, bias, stats):
    x = rand(2, 3, 4, 5) * 3 + 1
    inputs = [x, rand(*param_shape)] + ([rand(*param_shape)] if bias else [])
    check("LayerNormalization", inputs, {"axis": axis, "epsilon": 1e-3}, opset=17,
          n_outputs=stats, constant_inputs=(1, 2), tol=2e-5)


def test_layernorm_parameters_at_run_time():
    check("LayerNormalization", [rand(4, 6), rand(6), rand(6)], opset=17, tol=2e-5)


@pytest.mark.parametrize("shape", [(2, 3, 5, 4), (1, 4, 7), (3, 2, 2, 3, 2)])
def test_instancenorm(shape):
    c = shape[1]
    x = rand(*shape) * 2 - 0.5
    check("InstanceNormalization", [x, rand(c), rand(c)], {"epsilon": 1e-4},
          constant_inputs=(1, 2), tol=2e-5)
    check("InstanceNormalization", [x, rand(c), rand(c)], tol=2e-5)  # parameters at run time
