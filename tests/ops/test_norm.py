"""Normalizations: shapes vs onnx.shape_inference, values vs onnx's reference evaluator (and
onnxruntime where that reference is wrong), FLOPs from the formula, and the errors."""

import numpy as np
import pytest

from cnngraph.errors import ShapeError, UnsupportedOpError
from cnngraph.ir import Node
from cnngraph.ops import TensorType, lookup
from tests.util import call_of, cost, evaluate, infer, onnx_infer, onnx_run, ort_run


def f32(*shape):
    return TensorType(shape, "float32")


def rand(*shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


# ---------------------------------------------------------------------------------------------
# LRN

def test_lrn_by_hand():
    x = np.array([1, 2, 3], np.float32).reshape(1, 3, 1, 1)  # 1x3x1x1
    # size 3: each channel sums the squares of itself and one neighbour on each side
    # (5, 14, 13); alpha/size = 1, bias 1, beta 1
    y = evaluate("LRN", [x], {"size": 3, "alpha": 3.0, "beta": 1.0, "bias": 1.0})[0]
    np.testing.assert_allclose(y.ravel(), [1 / 6, 2 / 15, 3 / 14], rtol=1e-6)
    # size 2: no channel below, one above: (1+4, 4+9, 9)
    y = evaluate("LRN", [x], {"size": 2, "alpha": 2.0, "beta": 1.0, "bias": 1.0})[0]
    np.testing.assert_allclose(y.ravel(), [1 / 6, 2 / 14, 3 / 10], rtol=1e-6)
    # beta 0.5, bias 2, size 1: x / sqrt(2 + alpha * x^2)
    y = evaluate("LRN", [x], {"size": 1, "alpha": 0.5, "beta": 0.5, "bias": 2.0})[0]
    np.testing.assert_allclose(y.ravel(), x.ravel() / np.sqrt(2 + 0.5 * x.ravel() ** 2),
                               rtol=1e-6)


@pytest.mark.parametrize("opset", [7, 13, 18])
def test_lrn_shape_matches_onnx(opset):
    for xs in [(2, 5, 7, 9), (1, 3, 4), (1, 96, 55, 55)]:
        assert infer("LRN", [f32(*xs)], {"size": 5}, opset) == onnx_infer(
            "LRN", [f32(*xs)], {"size": 5}, opset)


@pytest.mark.onnxruntime
@pytest.mark.parametrize("size", [1, 3, 5])
def test_lrn_values_match_onnxruntime(size):
    # onnx's reference LRN loops over the batch axis instead of the channels; onnxruntime takes
    # odd sizes only (even ones are checked by hand above)
    x = rand(2, 7, 3, 4)
    for attrs in [{"size": size}, {"size": size, "alpha": 0.01, "beta": 0.5, "bias": 2.0}]:
        np.testing.assert_allclose(evaluate("LRN", [x], attrs)[0], ort_run("LRN", [x], attrs)[0],
                                   rtol=1e-5, atol=1e-6)


def test_lrn_cost_and_errors():
    # AlexNet's LRN after conv1: 55x55x96, size 5: 5 squares, 5 adds, scale, bias, pow, divide
    assert cost("LRN", [f32(1, 96, 55, 55)], {"size": 5}) == (0, 96 * 55 * 55 * (2 * 5 + 4))
    with pytest.raises(ShapeError, match=r"size=0 must be positive"):
        infer("LRN", [f32(1, 3, 4, 4)], {"size": 0})
    with pytest.raises(ShapeError, match=r"attribute 'size' is required"):
        infer("LRN", [f32(1, 3, 4, 4)], {})
    with pytest.raises(ShapeError, match=r"rank >= 2 .* got rank 1"):
        infer("LRN", [f32(3)], {"size": 3})


# ---------------------------------------------------------------------------------------------
# BatchNormalization

def bn_inputs(c=3, seed=0, shape=None):
    """scale, B, mean, var of shape (c,) (or ``shape``); var positive."""
    shape = shape or (c,)
    return [rand(*shape, seed=seed), rand(*shape, seed=seed + 1), rand(*shape, seed=seed + 2),
            np.abs(rand(*shape, seed=seed + 3)) + 0.1]


def test_batch_norm_by_hand():
    x = np.array([[1, 3], [2, 4]], np.float32).reshape(1, 2, 1, 2)  # 1x2x1x2
    scale, b = np.array([2, 1], np.float32), np.array([0, 1], np.float32)
    mean, var = np.array([1, 2], np.float32), np.array([4, 1], np.float32)
    y = evaluate("BatchNormalization", [x, scale, b, mean, var], {"epsilon": 0.0})[0]
    # channel 0: (x - 1) / 2 * 2 + 0 -> [0, 2]; channel 1: (x - 2) / 1 * 1 + 1 -> [1, 3]
    np.testing.assert_array_equal(y.reshape(2, 2), [[0, 2], [1, 3]])


def test_batch_norm_opset7_per_activation_by_hand():
    # spatial=0: one statistic per (channel, position): params are C x W = 1x2
    x = np.array([[10, 20]], np.float32).reshape(1, 1, 2)
    ones, zeros = np.ones((1, 2), np.float32), np.zeros((1, 2), np.float32)
    mean = np.array([[10, 0]], np.float32)
    inputs = [x, ones, zeros, mean, ones]
    attrs = {"spatial": 0, "epsilon": 0.0}
    assert infer("BatchNormalization", inputs, attrs, opset=7) == onnx_infer(
        "BatchNormalization", inputs, attrs, opset=7) == [(1, 1, 2)]
    np.testing.assert_array_equal(
        evaluate("BatchNormalization", inputs, attrs, opset=7)[0].ravel(), [0, 20])


@pytest.mark.parametrize("opset", [7, 9, 14, 15, 18])
@pytest.mark.parametrize("xs", [(2, 3, 5, 7), (4, 3), (1, 3, 6), (1, 3, 2, 3, 4)])
def test_batch_norm_inference_matches_onnx(xs, opset):
    inputs = [rand(*xs, seed=9)] + bn_inputs(xs[1])
    assert infer("BatchNormalization", inputs, {}, opset) == onnx_infer(
        "BatchNormalization", inputs, {}, opset)
    # The inference form is the same at every opset. onnx's reference evaluator computes batch
    # statistics at opsets 7 and 9 even for one output, so it is run at opset 14.
    np.testing.assert_allclose(evaluate("BatchNormalization", inputs, {}, opset)[0],
                               onnx_run("BatchNormalization", inputs, {}, max(opset, 14))[0],
                               rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("opset", [14, 15, 18])
def test_batch_norm_training_mode_matches_onnx(opset):
    inputs = [rand(4, 3, 5, 2, seed=9)] + bn_inputs(3)
    attrs = {"training_mode": 1, "momentum": 0.8}
    assert infer("BatchNormalization", inputs, attrs, opset, n_outputs=3) == onnx_infer(
        "BatchNormalization", inputs, attrs, opset, n_outputs=3) == [(4, 3, 5, 2), (3,), (3,)]
    ours = evaluate("BatchNormalization", inputs, attrs, opset, n_outputs=3)
    theirs = onnx_run("BatchNormalization", inputs, attrs, opset, n_outputs=3)
    assert len(ours) == len(theirs) == 3
    for a, b in zip(ours, theirs):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5)
    # with only Y asked for, the training form still normalizes with the batch statistics
    y = evaluate("BatchNormalization", inputs, attrs, opset)[0]
    np.testing.assert_allclose(y, theirs[0], rtol=1e-5, atol=1e-5)


def test_batch_norm_extra_outputs_types():
    # opset 15: mean/var (and the running outputs) may have another type than X
    x = TensorType((2, 3, 4, 4), "float16")
    h, s = TensorType((3,), "float16"), f32(3)
    call = call_of("BatchNormalization", [x, h, h, s, s], {"training_mode": 1}, 15, n_outputs=3)
    assert [str(t) + " " + t.dtype for t in call.op.infer(call)] == [
        "2x3x4x4 float16", "3 float32", "3 float32"]
    # before opset 14 the training form has four extra outputs: mean, var, saved mean, saved var
    inputs = [rand(2, 3, 4)] + bn_inputs(3)
    assert infer("BatchNormalization", inputs, {}, 9, n_outputs=5) == [(2, 3, 4)] + [(3,)] * 4
    with pytest.raises(UnsupportedOpError, match="training form .* before opset 14"):
        evaluate("BatchNormalization", inputs, {}, 9, n_outputs=5)


def test_batch_norm_cost_and_flags():
    inputs = [f32(2, 64, 56, 56)] + [f32(64)] * 4
    assert cost("BatchNormalization", inputs) == (0, 2 * 2 * 64 * 56 * 56)
    op = lookup(Node("bn", "BatchNormalization", [], []))
    assert op.non_trainable_inputs == (3, 4)  # running mean and variance


def test_batch_norm_errors():
    x = f32(1, 3, 4, 4)
    with pytest.raises(ShapeError, match=r"mean \(input 3\) has shape \(4\); it must be \(3\)"):
        infer("BatchNormalization", [x, f32(3), f32(3), f32(4), f32(3)])
    with pytest.raises(ShapeError, match=r"scale \(input 1\) has shape \(3\); it must be "
                                         r"\(3, 4, 4\)"):
        infer("BatchNormalization", [x] + [f32(3)] * 4, {"spatial": 0}, opset=7)
    with pytest.raises(ShapeError, match=r"training_mode=0 has only the output Y, but the node "
                                         r"has 3 outputs"):
        infer("BatchNormalization", [x] + [f32(3)] * 4, {}, opset=15, n_outputs=3)
    with pytest.raises(ShapeError, match=r"rank >= 2 .* got rank 1"):
        infer("BatchNormalization", [f32(3)] + [f32(3)] * 4)


# ---------------------------------------------------------------------------------------------
# InstanceNormalization

def test_instance_norm_by_hand():
    x = np.array([1, 2, 3, 4], np.float32).reshape(1, 1, 2, 2)  # mean 2.5, variance 1.25
    y = evaluate("InstanceNormalization", [x, np.array([2], np.float32),
                                           np.array([1], np.float32)], {"epsilon": 0.0})[0]
    np.testing.assert_allclose(y.ravel(), (np.arange(1, 5) - 2.5) / np.sqrt(1.25) * 2 + 1,
                               rtol=1e-6)


@pytest.mark.parametrize("opset", [7, 18])
@pytest.mark.parametrize("xs", [(2, 3, 5, 7), (1, 3, 6), (2, 3, 2, 3, 4)])
def test_instance_norm_matches_onnx(xs, opset):
    inputs = [rand(*xs), rand(xs[1], seed=1), rand(xs[1], seed=2)]
    assert infer("InstanceNormalization", inputs, {}, opset) == onnx_infer(
        "InstanceNormalization", inputs, {}, opset)
    np.testing.assert_allclose(evaluate("InstanceNormalization", inputs, {"epsilon": 1e-3})[0],
                               onnx_run("InstanceNormalization", inputs, {"epsilon": 1e-3})[0],
                               rtol=1e-5, atol=1e-5)


def test_instance_norm_cost_and_errors():
    assert cost("InstanceNormalization", [f32(2, 3, 8, 8), f32(3), f32(3)]) == (
        0, 6 * 2 * 3 * 8 * 8)
    with pytest.raises(ShapeError, match=r"B \(input 2\) has shape \(1\); it must be \(3\)"):
        infer("InstanceNormalization", [f32(2, 3, 8, 8), f32(3), f32(1)])


# ---------------------------------------------------------------------------------------------
# LayerNormalization

def test_layer_norm_by_hand():
    x = np.array([[1, 3], [0, 4]], np.float32)  # 2x2; rows: mean 2, variance 1 and 4
    scale, b = np.array([1, 2], np.float32), np.array([0, 1], np.float32)
    y, mean, inv_std = evaluate("LayerNormalization", [x, scale, b], {"epsilon": 0.0},
                                n_outputs=3)
    np.testing.assert_allclose(y, [[-1, 3], [-1, 3]])  # normalized [-1, 1], then * scale + b
    np.testing.assert_allclose(mean, [[2], [2]])
    np.testing.assert_allclose(inv_std, [[1], [0.5]])


@pytest.mark.parametrize("opset", [17, 18])
@pytest.mark.parametrize("axis", [0, 1, 2, -1, -2])
@pytest.mark.parametrize("bias", [True, False])
def test_layer_norm_matches_onnx(axis, bias, opset):
    xs = (2, 3, 5)
    normalized = xs[axis:]
    inputs = [rand(*xs), rand(*normalized, seed=1)] + ([rand(*normalized, seed=2)] if bias else [])
    attrs = {"axis": axis}
    assert infer("LayerNormalization", inputs, attrs, opset, n_outputs=3) == onnx_infer(
        "LayerNormalization", inputs, attrs, opset, n_outputs=3)
    ours = evaluate("LayerNormalization", inputs, attrs, opset, n_outputs=3)
    theirs = onnx_run("LayerNormalization", inputs, attrs, opset, n_outputs=3)
    assert len(ours) == len(theirs) == 3
    for a, b in zip(ours, theirs):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5)


def test_layer_norm_broadcast_scale_and_stash_type():
    # Scale of shape (1, 5) broadcasts over the normalized (3, 5); stash_type 1 keeps the
    # statistics in float32 for a float16 input
    x = rand(2, 3, 5).astype(np.float16)
    scale = rand(1, 5, seed=1).astype(np.float16)
    call = call_of("LayerNormalization", [x, scale], {"axis": 1}, 18, n_outputs=3)
    assert [(t.shape, t.dtype) for t in call.op.infer(call)] == [
        ((2, 3, 5), "float16"), ((2, 1, 1), "float32"), ((2, 1, 1), "float32")]
    y, mean, _ = evaluate("LayerNormalization", [x, scale], {"axis": 1}, n_outputs=3)
    assert y.dtype == np.float16 and mean.dtype == np.float32
    np.testing.assert_allclose(mean.ravel(), x.astype(np.float32).mean(axis=(1, 2)), rtol=1e-6)


def test_layer_norm_cost_and_errors():
    x = f32(2, 10, 16)
    assert cost("LayerNormalization", [x, f32(16), f32(16)]) == (0, 7 * 2 * 10 * 16)
    assert cost("LayerNormalization", [x, f32(16)]) == (0, 6 * 2 * 10 * 16)
    with pytest.raises(ShapeError, match=r"Scale \(input 1\) of shape \(10\) does not broadcast "
                                         r"to the normalized shape \(16\)"):
        infer("LayerNormalization", [x, f32(10)])
    with pytest.raises(ShapeError, match=r"B \(input 2\) of shape \(2, 10, 16\) does not "
                                         r"broadcast to the normalized shape \(10, 16\)"):
        infer("LayerNormalization", [x, f32(16), f32(2, 10, 16)], {"axis": 1})
    with pytest.raises(ShapeError, match=r"axis 3 is out of range for rank 3"):
        infer("LayerNormalization", [x, f32(16)], {"axis": 3})
