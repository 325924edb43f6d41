"""Pooling: shapes vs onnx.shape_inference, values vs onnx's reference evaluator (and
onnxruntime where either is wrong), FLOPs from the formula, and the errors."""

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from cnngraph.errors import ShapeError
from cnngraph.ops import TensorType
from tests.util import cost, evaluate, infer, onnx_infer, onnx_run, ort_run


def f32(*shape):
    return TensorType(shape, "float32")


def rand(*shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


# ---------------------------------------------------------------------------------------------
# by hand

def test_max_pool_by_hand_with_indices():
    x = np.arange(32, dtype=np.float32).reshape(1, 2, 4, 4)  # 1x2x4x4, rows 0..3, 4..7, ...
    y, idx = evaluate("MaxPool", [x], {"kernel_shape": [2, 2], "strides": [2, 2]}, n_outputs=2)
    np.testing.assert_array_equal(y[0, 0], [[5, 7], [13, 15]])  # 1x2x2x2
    np.testing.assert_array_equal(y[0, 1], [[21, 23], [29, 31]])
    assert idx.dtype == np.int64
    np.testing.assert_array_equal(idx[0, 0], [[5, 7], [13, 15]])  # flat, row-major
    np.testing.assert_array_equal(idx[0, 1], [[21, 23], [29, 31]])  # channel 1 starts at 16
    # column-major: the maximum at (h, w) is h + w*4
    _, idx = evaluate("MaxPool", [x], {"kernel_shape": [2, 2], "strides": [2, 2],
                                       "storage_order": 1}, n_outputs=2)
    np.testing.assert_array_equal(idx[0, 0], [[1 + 1 * 4, 1 + 3 * 4], [3 + 1 * 4, 3 + 3 * 4]])
    np.testing.assert_array_equal(idx[0, 1], idx[0, 0] + 16)


def test_max_pool_padding_never_wins():
    # all negative int8: a zero from the padding must not be the maximum
    x = -np.arange(1, 10, dtype=np.int8).reshape(1, 1, 3, 3)  # 1x1x3x3, -1 .. -9
    y, idx = evaluate("MaxPool", [x], {"kernel_shape": [2, 2], "pads": [1, 1, 1, 1],
                                       "strides": [2, 2]}, opset=12, n_outputs=2)
    assert y.dtype == np.int8
    np.testing.assert_array_equal(y[0, 0], [[-1, -2], [-4, -5]])  # 1x1x2x2
    np.testing.assert_array_equal(idx[0, 0], [[0, 1], [3, 4]])
    np.testing.assert_array_equal(y, onnx_run("MaxPool", [x], {
        "kernel_shape": [2, 2], "pads": [1, 1, 1, 1], "strides": [2, 2]}, opset=12)[0])


def test_average_pool_by_hand_count_include_pad():
    x = np.arange(1, 10, dtype=np.float32).reshape(1, 1, 3, 3)  # [[1,2,3],[4,5,6],[7,8,9]]
    attrs = {"kernel_shape": [2, 2], "pads": [1, 1, 0, 0], "strides": [2, 2]}
    # windows: {pad, pad, pad, 1}, {pad, pad, 2, 3}, {pad, 4, pad, 7}, {5, 6, 8, 9}
    excl = evaluate("AveragePool", [x], attrs)[0]
    np.testing.assert_allclose(excl[0, 0], [[1, 2.5], [5.5, 7]])
    incl = evaluate("AveragePool", [x], {**attrs, "count_include_pad": 1})[0]
    np.testing.assert_allclose(incl[0, 0], [[0.25, 1.25], [2.75, 7]])


def test_global_pools_by_hand():
    x = np.array([[1, 2], [3, 6]], np.float32).reshape(1, 1, 2, 2)
    x = np.concatenate([x, -x], axis=1)  # 1x2x2x2
    np.testing.assert_array_equal(evaluate("GlobalAveragePool", [x])[0].ravel(), [3, -3])
    np.testing.assert_array_equal(evaluate("GlobalMaxPool", [x])[0].ravel(), [6, -1])


# ---------------------------------------------------------------------------------------------
# against onnx

# (input, attrs) valid for MaxPool and AveragePool at every opset from 7
CASES = [
    ((1, 2, 7, 9), {"kernel_shape": [3, 3]}),
    ((2, 2, 7, 9), {"kernel_shape": [3, 2], "strides": [2, 3]}),
    ((1, 2, 7, 9), {"kernel_shape": [3, 3], "strides": [2, 2], "pads": [1, 0, 1, 2]}),
    ((1, 2, 7, 9), {"kernel_shape": [3, 3], "strides": [2, 2], "auto_pad": "SAME_UPPER"}),
    ((1, 2, 8, 9), {"kernel_shape": [4, 2], "strides": [3, 2], "auto_pad": "SAME_LOWER"}),
    ((1, 2, 7, 9), {"kernel_shape": [3, 3], "strides": [2, 2], "auto_pad": "VALID"}),
    ((1, 3, 55, 55), {"kernel_shape": [3, 3], "strides": [2, 2]}),  # AlexNet: 55 -> 27
    ((1, 2, 11), {"kernel_shape": [3], "strides": [2], "pads": [1, 1]}),  # 1-D
    ((1, 2, 5, 6, 7), {"kernel_shape": [2, 3, 2], "strides": [2, 1, 2]}),  # 3-D
]
# ceil_mode (opset 10+) where ceil gives more than floor; the last window starts inside
CEIL_CASES = [
    ((1, 2, 6, 6), {"kernel_shape": [3, 3], "strides": [2, 2], "ceil_mode": 1}),  # 3, floor 2
    ((1, 2, 5, 8), {"kernel_shape": [2, 2], "strides": [2, 3], "ceil_mode": 1}),  # 3x3
    ((1, 2, 7, 7), {"kernel_shape": [3, 3], "strides": [2, 2], "pads": [0, 0, 1, 1],
                    "ceil_mode": 1}),  # 4x4, floor 3x3
    ((1, 2, 9), {"kernel_shape": [2], "strides": [2], "ceil_mode": 1}),  # 1-D: 5, floor 4
]
# dilations: MaxPool from opset 10, AveragePool from 19
DILATED = [
    ((1, 2, 10, 9), {"kernel_shape": [3, 2], "dilations": [2, 3], "pads": [1, 1, 1, 1]}),
    ((1, 2, 11, 10), {"kernel_shape": [2, 2], "dilations": [2, 2], "strides": [3, 2],
                      "ceil_mode": 1}),  # 4x5, floor 3x4
]


def cases_for(op, opset):
    cases = list(CASES)
    if opset >= 10:
        cases += CEIL_CASES
    if opset >= (19 if op == "AveragePool" else 10):
        cases += DILATED
    return cases


@pytest.mark.parametrize("op, opset", [(op, opset) for op in ("MaxPool", "AveragePool")
                                       for opset in (7, 10, 11, 18, 19)])
def test_pool_shapes_match_onnx(op, opset):
    for xs, attrs in cases_for(op, opset):
        assert infer(op, [f32(*xs)], attrs, opset) == onnx_infer(op, [f32(*xs)], attrs, opset), (
            xs, attrs)


def test_max_pool_indices_shape_matches_onnx():
    for xs, attrs in cases_for("MaxPool", 18):
        assert infer("MaxPool", [f32(*xs)], attrs, n_outputs=2) == onnx_infer(
            "MaxPool", [f32(*xs)], attrs, n_outputs=2)


@pytest.mark.parametrize("xs, attrs", [c for c in cases_for("MaxPool", 18)
                                       if c[1].get("auto_pad") != "SAME_LOWER"])
def test_max_pool_values_match_onnx(xs, attrs):
    # onnx's reference MaxPool makes SAME_LOWER floor(n/s) long; onnxruntime checks it below
    x = rand(*xs)
    np.testing.assert_array_equal(evaluate("MaxPool", [x], attrs)[0],
                                  onnx_run("MaxPool", [x], attrs)[0])


@pytest.mark.onnxruntime
@pytest.mark.parametrize("storage_order", [0, 1])
@pytest.mark.parametrize("xs, attrs", cases_for("MaxPool", 18))
def test_max_pool_values_and_indices_match_onnxruntime(xs, attrs, storage_order):
    # onnx's reference evaluator gets the indices wrong with unit strides (another code path)
    x = rand(*xs)
    attrs = {**attrs, "storage_order": storage_order}
    ours = evaluate("MaxPool", [x], attrs, n_outputs=2)
    theirs = ort_run("MaxPool", [x], attrs, out_types=(1, 7))
    np.testing.assert_array_equal(ours[0], theirs[0])
    np.testing.assert_array_equal(ours[1], theirs[1])


@pytest.mark.parametrize("count_include_pad", [0, 1])
@pytest.mark.parametrize("xs, attrs", cases_for("AveragePool", 19))
def test_average_pool_values_match_onnx(xs, attrs, count_include_pad):
    x = rand(*xs)
    attrs = {**attrs, "count_include_pad": count_include_pad}
    np.testing.assert_allclose(evaluate("AveragePool", [x], attrs, opset=19)[0],
                               onnx_run("AveragePool", [x], attrs, opset=19)[0],
                               rtol=1e-5, atol=1e-6)


@pytest.mark.onnxruntime
@pytest.mark.parametrize("count_include_pad", [0, 1])
@pytest.mark.parametrize("xs, attrs", cases_for("AveragePool", 19))
def test_average_pool_values_match_onnxruntime(xs, attrs, count_include_pad):
    x = rand(*xs)
    attrs = {**attrs, "count_include_pad": count_include_pad}
    np.testing.assert_allclose(evaluate("AveragePool", [x], attrs, opset=19)[0],
                               ort_run("AveragePool", [x], attrs, opset=19)[0],
                               rtol=1e-5, atol=1e-6)


@pytest.mark.onnxruntime
@pytest.mark.parametrize("xs", [(2, 3, 5, 7), (1, 4, 9), (1, 2, 3, 4, 5)])
@pytest.mark.parametrize("op", ["GlobalAveragePool", "GlobalMaxPool"])
def test_global_pools_match_onnx(op, xs):
    x = rand(*xs)
    assert infer(op, [x]) == onnx_infer(op, [x]) == [xs[:2] + (1,) * (len(xs) - 2)]
    # onnx's reference GlobalMaxPool reduces the wrong axes unless the input is 4-D
    oracle = onnx_run if op == "GlobalAveragePool" or len(xs) == 4 else ort_run
    np.testing.assert_allclose(evaluate(op, [x])[0], oracle(op, [x], {})[0], rtol=1e-6)


# ---------------------------------------------------------------------------------------------
# ceil_mode: the last window must start inside the input or its left padding

def test_ceil_mode_rounds_up():
    # 6 wide, kernel 3, stride 2: windows start at 0, 2 (floor); ceil adds one at 4 (covers 4, 5
    # and one pixel past the end)
    assert infer("MaxPool", [f32(1, 1, 6, 6)], {"kernel_shape": [3, 3], "strides": [2, 2]}) == [
        (1, 1, 2, 2)]
    assert infer("MaxPool", [f32(1, 1, 6, 6)], {"kernel_shape": [3, 3], "strides": [2, 2],
                                                "ceil_mode": 1}) == [(1, 1, 3, 3)]


@pytest.mark.onnxruntime
@pytest.mark.parametrize("n, k, s, pads, expected", [
    (5, 1, 3, [0, 0], 2),  # ceil(4/3)+1 = 3, but the third window would start at 6 >= 5
    (5, 2, 3, [0, 1], 2),  # ceil(4/3)+1 = 3, third start 6 >= 5 + 0
    (8, 2, 3, [1, 1], 3),  # ceil(8/3)+1 = 4, fourth start 9 >= 8 + 1
])
def test_ceil_mode_drops_a_window_starting_in_the_right_padding(n, k, s, pads, expected):
    # onnx.shape_inference (1.23) does not drop it; its reference evaluator and onnxruntime do,
    # and so does the domain rule.
    attrs = {"kernel_shape": [k], "strides": [s], "pads": pads, "ceil_mode": 1}
    x = rand(1, 1, n)
    assert infer("MaxPool", [x], attrs) == [(1, 1, expected)]
    assert infer("AveragePool", [x], attrs) == [(1, 1, expected)]
    np.testing.assert_array_equal(evaluate("MaxPool", [x], attrs)[0],
                                  onnx_run("MaxPool", [x], attrs)[0])
    for op in ("MaxPool", "AveragePool"):
        np.testing.assert_allclose(evaluate(op, [x], attrs)[0], ort_run(op, [x], attrs)[0],
                                   rtol=1e-6)


@pytest.mark.onnxruntime
@pytest.mark.parametrize("count_include_pad", [0, 1])
def test_ceil_mode_average_ignores_the_overhang(count_include_pad):
    # 1, 2, 3, 4 with kernel 3, stride 3, ceil: windows {1, 2, 3} and {4, past, past}. The part
    # past the end never counts, padding or not: [2, 4]. (onnx's reference evaluator shifts the
    # windows by half the overhang here and gives [1.5, 3].)
    x = np.array([1, 2, 3, 4], np.float32).reshape(1, 1, 4)
    attrs = {"kernel_shape": [3], "strides": [3], "ceil_mode": 1,
             "count_include_pad": count_include_pad}
    y = evaluate("AveragePool", [x], attrs)[0]
    np.testing.assert_array_equal(y.ravel(), [2, 4])
    np.testing.assert_array_equal(y, ort_run("AveragePool", [x], attrs)[0])
    # with one pixel of explicit padding at the end, that pixel counts only if asked to
    attrs["pads"] = [0, 1]
    y = evaluate("AveragePool", [x], attrs)[0]
    np.testing.assert_allclose(y.ravel(), [2, 2 if count_include_pad else 4])
    np.testing.assert_allclose(y, ort_run("AveragePool", [x], attrs)[0])


@pytest.mark.onnxruntime
@settings(max_examples=40, deadline=None)
@given(n=st.integers(1, 12), k=st.integers(1, 4), s=st.integers(1, 4), d=st.integers(1, 2),
       pb=st.integers(0, 3), pe=st.integers(0, 3), ceil=st.integers(0, 1))
def test_max_pool_random_1d_matches_onnxruntime(n, k, s, d, pb, pe, ceil):
    pb, pe = min(pb, k - 1), min(pe, k - 1)  # pads smaller than the kernel, as runtimes demand
    attrs = {"kernel_shape": [k], "strides": [s], "dilations": [d], "pads": [pb, pe],
             "ceil_mode": ceil}
    x = rand(1, 2, n)
    if n + pb + pe < d * (k - 1) + 1:
        with pytest.raises(ShapeError, match="larger than the padded input"):
            infer("MaxPool", [x], attrs)
        return
    (out,) = infer("MaxPool", [x], attrs)[0][2:]
    # a window that covers only padding has no maximum (onnxruntime gives float's lowest value)
    assume(all(any(0 <= o * s - pb + j * d < n for j in range(k)) for o in range(out)))
    ours = evaluate("MaxPool", [x], attrs, n_outputs=2)
    theirs = ort_run("MaxPool", [x], attrs, out_types=(1, 7))
    assert infer("MaxPool", [x], attrs) == [theirs[0].shape]
    np.testing.assert_array_equal(ours[0], theirs[0])
    np.testing.assert_array_equal(ours[1], theirs[1])


# ---------------------------------------------------------------------------------------------
# costs and errors

def test_pool_costs():
    # AlexNet pool1: 55x55x96 -> 27x27x96, 3x3 windows
    x = f32(1, 96, 55, 55)
    attrs = {"kernel_shape": [3, 3], "strides": [2, 2]}
    y = 96 * 27 * 27
    assert cost("MaxPool", [x], attrs) == (0, y * 9)
    assert cost("AveragePool", [x], attrs) == (0, y * (9 + 1))
    assert cost("GlobalAveragePool", [x]) == (0, 96 * (55 * 55 + 1))
    assert cost("GlobalMaxPool", [x]) == (0, 96 * 55 * 55)


def test_pool_errors():
    with pytest.raises(ShapeError, match=r"input 4, kernel 5, stride 1, dilation 1, padding "
                                         r"\(0, 0\).*larger than the padded input"):
        infer("MaxPool", [f32(1, 1, 4, 4)], {"kernel_shape": [5, 5]})
    with pytest.raises(ShapeError, match=r"input 4, kernel 3, stride 2, dilation 3"):
        infer("MaxPool", [f32(1, 1, 4, 4)], {"kernel_shape": [3, 3], "strides": [2, 2],
                                             "dilations": [3, 3]})
    with pytest.raises(ShapeError, match=r"kernel_shape \[3\] needs 2 values"):
        infer("AveragePool", [f32(1, 1, 4, 4)], {"kernel_shape": [3]})
    with pytest.raises(ShapeError, match=r"attribute 'kernel_shape' is required"):
        infer("AveragePool", [f32(1, 1, 4, 4)], {})
    with pytest.raises(ShapeError, match=r"rank >= 3 .* got rank 2"):
        infer("MaxPool", [f32(1, 4)], {"kernel_shape": [2]})
    with pytest.raises(ShapeError, match=r"rank >= 3 .* got rank 2"):
        infer("GlobalAveragePool", [f32(1, 4)])


@pytest.mark.parametrize("pads, message", [
    ([3, 0, 0, 0], "must be smaller than the window 3"),
    ([0, -1, 0, 0], "must not be negative"),
])
def test_pool_padding_errors(pads, message):
    x = TensorType((1, 2, 6, 6), "float32")
    with pytest.raises(ShapeError, match=message):
        infer("MaxPool", [x], {"kernel_shape": [3, 3], "pads": pads})
