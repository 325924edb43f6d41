"""Activations: shapes vs onnx.shape_inference, values vs onnx's reference evaluator (and
onnxruntime where the reference lacks an old opset's semantics), FLOPs from each op's per-element
constant, and the errors."""

import numpy as np
import pytest

from cnngraph.errors import ShapeError, UnsupportedOpError
from cnngraph.ops import REGISTRY, TensorType
from tests.util import call_of, cost, evaluate, infer, onnx_infer, onnx_run, ort_run

X = np.linspace(-4, 4, 3 * 5 * 7, dtype=np.float32).reshape(3, 5, 7)  # odd sizes, both signs

# op, attributes, the first opset that has it
UNARY = [
    ("Relu", {}, 7),
    ("LeakyRelu", {}, 7),
    ("LeakyRelu", {"alpha": 0.3}, 7),
    ("Sigmoid", {}, 7),
    ("Tanh", {}, 7),
    ("HardSigmoid", {}, 7),
    ("HardSigmoid", {"alpha": 0.3, "beta": 0.4}, 7),
    ("HardSwish", {}, 14),
    ("Erf", {}, 9),
    ("Gelu", {}, 20),
    ("Gelu", {"approximate": "tanh"}, 20),
    ("Softmax", {}, 7),
    ("Softmax", {"axis": 0}, 13),
    ("LogSoftmax", {}, 7),
    ("LogSoftmax", {"axis": 1}, 13),
    ("Clip", {}, 7),
    ("Identity", {}, 7),
]
IDS = [f"{op}-{'-'.join(f'{k}={v}' for k, v in attrs.items())}" for op, attrs, _ in UNARY]

# FLOPs per element (the op's documented constant)
PER_ELEMENT = [
    ("Relu", {}, 1), ("LeakyRelu", {}, 2), ("Sigmoid", {}, 4), ("Tanh", {}, 1),
    ("HardSigmoid", {}, 4), ("HardSwish", {}, 5), ("Erf", {}, 1), ("Clip", {}, 2),
    ("Gelu", {}, 5), ("Gelu", {"approximate": "tanh"}, 9), ("Softmax", {}, 5),
    ("Identity", {}, 0),
]


def f32(shape):
    return TensorType(shape, "float32")


@pytest.mark.parametrize("op, attrs, since", UNARY, ids=IDS)
@pytest.mark.parametrize("shape", [(1, 3, 5, 7), (5, 7)])
def test_shapes_match_onnx(op, attrs, since, shape):
    for opset in sorted({since, 11 if since <= 11 else since, max(since, 18)}):
        assert infer(op, [f32(shape)], attrs, opset) == [shape]
        assert onnx_infer(op, [f32(shape)], attrs, opset) == [shape]


def test_rank_1():
    x = f32((7,))
    for op, attrs, since in UNARY:
        if "axis" not in attrs:
            opset = max(since, 13)
            assert infer(op, [x], attrs, opset) == [(7,)] == onnx_infer(op, [x], attrs, opset)
    for op in ["Softmax", "LogSoftmax"]:  # the default axis 1 does not exist (onnxruntime agrees)
        with pytest.raises(ShapeError, match="axis 1 is out of range for rank 1"):
            infer(op, [f32((7,))], opset=11)


@pytest.mark.parametrize("op, attrs, since", UNARY, ids=IDS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_values_match_onnx(op, attrs, since, dtype):
    x = X.astype(dtype)
    opset = max(since, 18)
    (ours,) = evaluate(op, [x], attrs, opset)
    assert ours.shape == x.shape and ours.dtype == dtype
    np.testing.assert_allclose(ours, onnx_run(op, [x], attrs, opset)[0], rtol=1e-5, atol=1e-6)


def test_hand_computed():
    x = np.float32([-3, -1, 0, 1, 3])  # (5,)
    np.testing.assert_array_equal(evaluate("Relu", [x])[0], [0, 0, 0, 1, 3])
    np.testing.assert_allclose(evaluate("LeakyRelu", [x], {"alpha": 0.1})[0],
                               [-0.3, -0.1, 0, 1, 3], rtol=1e-6)
    np.testing.assert_allclose(evaluate("HardSigmoid", [x])[0], [0, 0.3, 0.5, 0.7, 1], rtol=1e-6)
    np.testing.assert_allclose(evaluate("HardSwish", [x])[0], [0, -1 / 3, 0, 2 / 3, 3], rtol=1e-6)
    np.testing.assert_allclose(evaluate("Sigmoid", [x])[0][2], 0.5)
    np.testing.assert_allclose(evaluate("Erf", [x])[0][[2, 3]], [0, 0.8427007], rtol=1e-6)
    np.testing.assert_allclose(evaluate("Gelu", [x], opset=20)[0][[2, 3]], [0, 0.8413447],
                               rtol=1e-6)
    np.testing.assert_array_equal(evaluate("Relu", [np.int8([-5, 7])])[0], [0, 7])


@pytest.mark.parametrize("op, attrs, k", PER_ELEMENT)
def test_flops_per_element(op, attrs, k):
    assert cost(op, [f32((2, 3, 5, 7))], attrs, opset=20) == (0, k * 2 * 3 * 5 * 7)


def test_gelu_rejects_an_unknown_approximation():
    with pytest.raises(ShapeError, match="approximate='exact' is not one of 'none', 'tanh'"):
        infer("Gelu", [f32((2, 3))], {"approximate": "exact"}, opset=20)


# -- PRelu ------------------------------------------------------------------------------------
@pytest.mark.parametrize("opset", [7, 9, 16, 18])
@pytest.mark.parametrize("slope", [(3, 1, 1), (1,), (5,), (1, 3, 4, 5), ()])
def test_prelu_slope_broadcasts_to_x(slope, opset):
    x = f32((2, 3, 4, 5))
    assert infer("PRelu", [x, f32(slope)], opset=opset) == [(2, 3, 4, 5)]
    assert onnx_infer("PRelu", [x, f32(slope)], opset=opset) == [(2, 3, 4, 5)]


def test_prelu_values():
    x = np.float32([[-2, 4], [-6, 8]]).reshape(1, 2, 2, 1)  # (1, 2, 2, 1)
    slope = np.float32([0.5, 0.25]).reshape(2, 1, 1)  # (2, 1, 1): one per channel
    (ours,) = evaluate("PRelu", [x, slope])
    np.testing.assert_array_equal(ours.reshape(2, 2), [[-1, 4], [-1.5, 8]])
    np.testing.assert_array_equal(ours, onnx_run("PRelu", [x, slope])[0])
    assert cost("PRelu", [x, slope]) == (0, 2 * 4)


def test_prelu_slope_is_a_parameter():
    assert REGISTRY["PRelu"].attribute_inputs == ()


@pytest.mark.parametrize("slope", [(3,), (2, 3, 4, 5, 1), (1, 3, 4, 2)])
def test_prelu_slope_that_would_grow_x_is_an_error(slope):
    pattern = r"slope \(" + ", ".join(map(str, slope)) + r"\) does not broadcast to \(2, 3, 4, 5\)"
    with pytest.raises(ShapeError, match=pattern):
        infer("PRelu", [f32((2, 3, 4, 5)), f32(slope)])


def test_prelu_dtype_mismatch():
    with pytest.raises(ShapeError, match="input 0 is float32 but input 1 is float16"):
        infer("PRelu", [f32((2, 3)), TensorType((3,), "float16")])


# -- Clip -------------------------------------------------------------------------------------
@pytest.mark.parametrize("attrs", [{"min": -1.0, "max": 2.0}, {"min": 0.5}, {"max": -0.5}, {}])
def test_clip_attributes_before_opset_11(attrs):
    (ours,) = evaluate("Clip", [X], attrs, opset=7)
    expected = np.clip(X, attrs.get("min", -np.inf), attrs.get("max", np.inf))
    np.testing.assert_array_equal(ours, expected)
    np.testing.assert_array_equal(ours, onnx_run("Clip", [X], attrs, opset=7)[0])


@pytest.mark.parametrize("opset", [11, 13, 18])
@pytest.mark.parametrize("lo, hi", [(-1.0, 2.0), (0.5, None), (None, -0.5), (None, None)])
def test_clip_inputs_from_opset_11(lo, hi, opset):
    bounds = [None if b is None else np.array(b, np.float32) for b in (lo, hi)]
    while bounds and bounds[-1] is None:  # trailing omitted inputs are left off the node
        bounds.pop()
    (ours,) = evaluate("Clip", [X, *bounds], opset=opset)
    expected = np.clip(X, -np.inf if lo is None else lo, np.inf if hi is None else hi)
    np.testing.assert_array_equal(ours, expected)
    np.testing.assert_array_equal(ours, onnx_run("Clip", [X, *bounds], opset=opset)[0])
    assert infer("Clip", [X, *bounds], opset=opset) == [(3, 5, 7)]


def test_clip_min_above_max_gives_max_and_integers_stay_integers():
    x = np.int32([[-5, 0, 5]])  # (1, 3)
    (ours,) = evaluate("Clip", [x, np.array(2, np.int32), np.array(1, np.int32)], opset=13)
    assert ours.dtype == np.int32
    np.testing.assert_array_equal(ours, [[1, 1, 1]])


def test_clip_bounds_are_settings_and_must_be_scalars():
    assert REGISTRY["Clip"].attribute_inputs == (1, 2)
    assert infer("Clip", [X, np.float32([0.0])], opset=13) == [(3, 5, 7)]  # one element is fine
    with pytest.raises(ShapeError, match=r"min must be a scalar, got shape \(2\)"):
        infer("Clip", [X, np.float32([0, 1])], opset=13)
    with pytest.raises(ShapeError, match=r"max must be a scalar, got shape \(1, 3\)"):
        infer("Clip", [X, None, np.zeros((1, 3), np.float32)], opset=13)
    with pytest.raises(ShapeError, match="input 0 is float32 but input 1 is float64"):
        infer("Clip", [X, np.array(0.0)], opset=13)


# -- Softmax, LogSoftmax ----------------------------------------------------------------------
Y = np.linspace(-2, 3, 2 * 3 * 4, dtype=np.float32).reshape(2, 3, 4)  # (2, 3, 4)


@pytest.mark.parametrize("op", ["Softmax", "LogSoftmax"])
@pytest.mark.parametrize("axis", [None, 0, 1, 2, -1, -3])
def test_softmax_from_opset_13_normalizes_one_axis(op, axis):
    attrs = {} if axis is None else {"axis": axis}
    (ours,) = evaluate(op, [Y], attrs, opset=13)
    np.testing.assert_allclose(ours, onnx_run(op, [Y], attrs, opset=13)[0], rtol=1e-5, atol=1e-6)
    probs = ours if op == "Softmax" else np.exp(ours)
    np.testing.assert_allclose(probs.sum(axis=-1 if axis is None else axis), 1, rtol=1e-5)


@pytest.mark.parametrize("op", ["Softmax", "LogSoftmax"])
@pytest.mark.parametrize("opset", [7, 11])
def test_softmax_before_opset_13_coerces_to_2d(op, opset):
    """Default axis 1: each (3, 4) slice of the (2, 3, 4) input is one distribution."""
    (ours,) = evaluate(op, [Y], opset=opset)
    probs = ours if op == "Softmax" else np.exp(ours)
    np.testing.assert_allclose(probs.sum(axis=(1, 2)), [1, 1], rtol=1e-5)
    flat = Y.reshape(2, 12)
    expected = np.exp(flat) / np.exp(flat).sum(axis=1, keepdims=True)
    expected = expected if op == "Softmax" else np.log(expected)
    np.testing.assert_allclose(ours, expected.reshape(2, 3, 4), rtol=1e-5, atol=1e-6)


@pytest.mark.onnxruntime
@pytest.mark.parametrize("op", ["Softmax", "LogSoftmax"])
@pytest.mark.parametrize("axis", [None, 0, 2])
def test_softmax_before_opset_13_matches_onnxruntime(op, axis):
    attrs = {} if axis is None else {"axis": axis}
    (ours,) = evaluate(op, [Y], attrs, opset=11)
    np.testing.assert_allclose(ours, ort_run(op, [Y], attrs, opset=11)[0], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("op", ["Softmax", "LogSoftmax"])
def test_softmax_axis_out_of_range(op):
    with pytest.raises(ShapeError, match="axis 3 is out of range for rank 3"):
        infer(op, [f32((2, 3, 4))], {"axis": 3})
    with pytest.raises(ShapeError, match="axis -4 is out of range for rank 3"):
        infer(op, [f32((2, 3, 4))], {"axis": -4}, opset=11)


@pytest.mark.parametrize("opset, attrs, rows", [
    (13, {}, 2 * 3),  # axis -1: rows of 4
    (13, {"axis": 0}, 3 * 4),  # columns of 2
    (11, {}, 2),  # axis 1 coerced: rows of 3*4
    (11, {"axis": 2}, 2 * 3),
    (11, {"axis": 0}, 1),  # the whole tensor is one row
])
def test_softmax_flops(opset, attrs, rows):
    x = f32((2, 3, 4))
    assert cost("Softmax", [x], attrs, opset) == (0, 5 * 24)
    assert cost("LogSoftmax", [x], attrs, opset) == (0, 5 * 24 + rows)


# -- Dropout, Identity ------------------------------------------------------------------------
def types(op, inputs, attrs=None, opset=18, n_outputs=1):
    call = call_of(op, inputs, attrs, opset, n_outputs)
    return [(t.shape, t.dtype) for t in call.op.infer(call)]


@pytest.mark.parametrize("opset, mask", [(7, "float32"), (9, "float32"), (10, "bool"),
                                         (12, "bool"), (18, "bool")])
def test_dropout_mask_is_bool_from_opset_10(opset, mask):
    attrs = {"ratio": 0.3} if opset < 12 else {}
    assert types("Dropout", [X], attrs, opset, 2) == [((3, 5, 7), "float32"), ((3, 5, 7), mask)]
    assert types("Dropout", [X], attrs, opset) == [((3, 5, 7), "float32")]
    assert onnx_infer("Dropout", [X], attrs, opset, 2)[0] == (3, 5, 7)
    ours = evaluate("Dropout", [X], attrs, opset, 2)
    np.testing.assert_array_equal(ours[0], X)
    assert ours[1].dtype == np.dtype(mask) and ours[1].all()


@pytest.mark.onnxruntime
@pytest.mark.parametrize("opset", [7, 10, 12])
def test_dropout_matches_onnxruntime(opset):
    """Before opset 12 the spec leaves the inference mask's contents open (onnxruntime fills
    it with zeros, onnx's reference with ones); only its type and Y are compared there."""
    attrs = {"ratio": 0.3} if opset < 12 else {}
    mask = "float32" if opset < 10 else "bool"
    theirs = ort_run("Dropout", [X], attrs, opset, ("float32", mask))
    ours = evaluate("Dropout", [X], attrs, opset, 2)
    assert ours[1].dtype == theirs[1].dtype
    np.testing.assert_array_equal(ours[0], theirs[0])
    if opset >= 12:
        np.testing.assert_array_equal(ours[1], theirs[1])


def test_dropout_ratio_and_training_mode_inputs_from_opset_12():
    assert REGISTRY["Dropout"].attribute_inputs == (1, 2)
    assert REGISTRY["Dropout"].is_view and REGISTRY["Identity"].is_view
    inputs = [X, np.array(0.3, np.float32), np.array(False)]
    ours = evaluate("Dropout", inputs, opset=12, n_outputs=2)
    theirs = onnx_run("Dropout", inputs, opset=12, n_outputs=2)
    for a, b in zip(ours, theirs):
        assert a.dtype == b.dtype
        np.testing.assert_array_equal(a, b)
    assert onnx_infer("Dropout", inputs, opset=12, n_outputs=2) == [(3, 5, 7), (3, 5, 7)]
    assert cost("Dropout", inputs, opset=12, n_outputs=2) == (0, 0)


def test_dropout_in_training_mode_is_not_folded():
    training = [X, np.array(0.3, np.float32), np.array(True)]
    with pytest.raises(UnsupportedOpError, match="training_mode drops at random"):
        evaluate("Dropout", training, opset=13)
    no_drop = [X, np.array(0.0, np.float32), np.array(True)]
    np.testing.assert_array_equal(evaluate("Dropout", no_drop, opset=13)[0], X)


def test_identity():
    assert infer("Identity", [f32(())], opset=7) == [()]
    np.testing.assert_array_equal(evaluate("Identity", [np.int64([1, 2])])[0], [1, 2])
    assert cost("Identity", [f32((2, 3))]) == (0, 0)
