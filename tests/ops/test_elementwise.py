"""Elementwise ops: broadcasting shapes vs onnx.shape_inference, values vs onnx's reference
evaluator, FLOPs from the formula, and the errors."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cnngraph.errors import ShapeError
from cnngraph.ops import TensorType
from tests.util import cost, evaluate, infer, onnx_infer, onnx_run

BINARY = ["Add", "Sub", "Mul", "Div", "Pow"]
VARIADIC = ["Max", "Min", "Sum", "Mean"]
UNARY = ["Sqrt", "Neg", "Abs", "Exp", "Log", "Reciprocal"]

# (shape a, shape b, broadcast shape), each written out by hand
PAIRS = [
    ((1, 3, 1, 1), (2, 3, 4, 5), (2, 3, 4, 5)),  # per-channel scale against NCHW
    ((2, 3, 4, 5), (1, 3, 1, 1), (2, 3, 4, 5)),
    ((5,), (2, 3, 4, 5), (2, 3, 4, 5)),  # rank mismatch: aligned on the right
    ((3, 1), (1, 7), (3, 7)),  # both sides grow
    ((), (2, 3), (2, 3)),  # scalar
    ((2, 1, 5), (3, 1), (2, 3, 5)),
    ((7, 3), (7, 3), (7, 3)),
]


def oracle(op, xs):
    """onnx's reference output. Its Mean adds in place into a copy of the first input and so
    cannot broadcast: Mean is checked against its definition, onnx's Sum over the count."""
    if op == "Mean":
        return onnx_run("Sum", xs)[0] / len(xs)
    return onnx_run(op, xs)[0]


def rand(shape, seed=0, low=0.5, high=2.0, dtype=np.float32):
    """Positive values, so Pow, Sqrt and Log stay real."""
    return np.random.default_rng(seed).uniform(low, high, shape).astype(dtype)


def f32(shape):
    return TensorType(shape, "float32")


@pytest.mark.parametrize("opset", [7, 11, 18])
@pytest.mark.parametrize("op", BINARY)
@pytest.mark.parametrize("a, b, expected", PAIRS)
def test_binary_shapes_match_onnx(op, a, b, expected, opset):
    assert infer(op, [f32(a), f32(b)], opset=opset) == [expected]
    assert onnx_infer(op, [f32(a), f32(b)], opset=opset) == [expected]


@pytest.mark.parametrize("opset", [8, 13, 18])
@pytest.mark.parametrize("op", VARIADIC)
@pytest.mark.parametrize("a, b, expected", PAIRS)
def test_variadic_shapes_match_onnx(op, a, b, expected, opset):
    assert infer(op, [f32(a), f32(b)], opset=opset) == [expected]
    assert onnx_infer(op, [f32(a), f32(b)], opset=opset) == [expected]


@pytest.mark.parametrize("op", VARIADIC)
def test_variadic_three_inputs_and_one(op):
    shapes = [(2, 1), (1, 3), (3,)]  # -> (2, 3)
    xs = [rand(s, seed=i) for i, s in enumerate(shapes)]
    assert infer(op, xs) == [(2, 3)] == onnx_infer(op, xs)
    np.testing.assert_allclose(evaluate(op, xs)[0], oracle(op, xs), rtol=1e-6)
    x = rand((3, 5))
    assert infer(op, [x]) == [(3, 5)]
    np.testing.assert_allclose(evaluate(op, [x])[0], x, rtol=1e-6)


@pytest.mark.parametrize("op", BINARY + VARIADIC)
@pytest.mark.parametrize("a, b, expected", PAIRS)
def test_values_match_onnx(op, a, b, expected):
    x, y = rand(a, seed=1), rand(b, seed=2)
    (ours,) = evaluate(op, [x, y])
    assert ours.shape == expected and ours.dtype == np.float32
    np.testing.assert_allclose(ours, oracle(op, [x, y]), rtol=1e-6)


def test_hand_computed_broadcast():
    x = np.array([[1, 2, 3], [4, 5, 6]], np.float32)  # (2, 3)
    y = np.array([10, 20, 30], np.float32)  # (3,)
    np.testing.assert_array_equal(evaluate("Add", [x, y])[0], [[11, 22, 33], [14, 25, 36]])
    np.testing.assert_array_equal(evaluate("Sub", [x, y])[0], [[-9, -18, -27], [-6, -15, -24]])
    np.testing.assert_array_equal(evaluate("Mul", [x, y])[0], [[10, 40, 90], [40, 100, 180]])
    c = np.array([1, 2, 3], np.float32).reshape(1, 3, 1, 1)  # (1, 3, 1, 1) per channel
    z = np.ones((2, 3, 4, 5), np.float32)
    (out,) = evaluate("Mul", [c, z])
    assert out.shape == (2, 3, 4, 5)
    assert (out[:, 0] == 1).all() and (out[:, 1] == 2).all() and (out[:, 2] == 3).all()
    three = [np.float32([1, 5]), np.float32([[4], [0]]), np.array(3, np.float32)]
    np.testing.assert_array_equal(evaluate("Max", three)[0], [[4, 5], [3, 5]])  # (2, 2)
    np.testing.assert_array_equal(evaluate("Min", three)[0], [[1, 3], [0, 0]])
    np.testing.assert_array_equal(evaluate("Sum", three)[0], [[8, 12], [4, 8]])
    np.testing.assert_allclose(evaluate("Mean", three)[0], [[8 / 3, 4], [4 / 3, 8 / 3]])


def test_integer_division_truncates_toward_zero():
    a = np.array([7, -7, 7, -7, 6], np.int32)  # (5,)
    b = np.array([2, 2, -2, -2, 3], np.int32)
    (ours,) = evaluate("Div", [a, b])
    assert ours.dtype == np.int32
    np.testing.assert_array_equal(ours, [3, -3, -3, 3, 2])
    np.testing.assert_array_equal(ours, onnx_run("Div", [a, b])[0])


def test_integer_ops_keep_their_dtype():
    a = np.array([[1, -2, 3]], np.int64)  # (1, 3)
    b = np.array([[2], [3]], np.int64)  # (2, 1)
    for op in ["Add", "Sub", "Mul", "Max", "Min", "Sum"]:
        (ours,) = evaluate(op, [a, b])
        assert ours.dtype == np.int64 and ours.shape == (2, 3)
        np.testing.assert_array_equal(ours, onnx_run(op, [a, b])[0])


def test_pow_exponent_type_may_differ_from_opset_12():
    x = np.array([[1, 2], [3, 4]], np.float32)  # (2, 2)
    e = np.array([2, 3], np.int64)  # (2,)
    (ours,) = evaluate("Pow", [x, e])
    assert ours.dtype == np.float32
    np.testing.assert_array_equal(ours, [[1, 8], [9, 64]])
    assert infer("Pow", [x, e], opset=12) == [(2, 2)]
    with pytest.raises(ShapeError, match="input 0 is float32 but input 1 is int64"):
        infer("Pow", [x, e], opset=11)


@pytest.mark.parametrize("op", BINARY + VARIADIC)
def test_incompatible_pair_is_an_error(op):
    with pytest.raises(ShapeError, match=r"cannot broadcast \(2, 3\) with \(4\)"):
        infer(op, [f32((2, 3)), f32((4,))])
    with pytest.raises(ShapeError, match=r"cannot broadcast \(2, 3, 4, 5\) with \(1, 4, 1, 1\)"):
        infer(op, [f32((2, 3, 4, 5)), f32((1, 4, 1, 1))])


def test_incompatible_pair_is_an_error_for_onnx_too():
    with pytest.raises(Exception, match="[Ii]ncompatible"):
        onnx_infer("Add", [f32((2, 3)), f32((4,))])


@pytest.mark.parametrize("op", BINARY + VARIADIC)
def test_dtype_mismatch_names_both_dtypes(op):
    with pytest.raises(ShapeError, match="input 0 is float32 but input 1 is float64"):
        infer(op, [f32((2, 3)), TensorType((2, 3), "float64")], opset=11)


@pytest.mark.parametrize("op", VARIADIC)
def test_variadic_needs_equal_shapes_before_opset_8(op):
    assert infer(op, [f32((2, 3)), f32((2, 3))], opset=7) == [(2, 3)]
    with pytest.raises(ShapeError, match=r"before opset 8 .* needs inputs of one shape, got "
                                         r"\(2, 3\) and \(3\)"):
        infer(op, [f32((2, 3)), f32((3,))], opset=7)


@pytest.mark.parametrize("op", BINARY)
def test_binary_takes_exactly_two_inputs(op):
    with pytest.raises(ShapeError, match="takes 2 inputs, got 3"):
        infer(op, [f32((2,))] * 3)


@pytest.mark.parametrize("op", BINARY + ["Max", "Min", "Sum"])
def test_flops_one_per_pair_per_output_element(op):
    assert cost(op, [f32((1, 3, 1, 1)), f32((2, 3, 4, 5))]) == (0, 2 * 3 * 4 * 5)
    if op not in BINARY:
        assert cost(op, [f32((2, 1)), f32((1, 3)), f32((3,))]) == (0, 2 * (2 * 3))
        assert cost(op, [f32((2, 3))]) == (0, 0)


def test_mean_flops_adds_and_one_divide():
    assert cost("Mean", [f32((2, 1)), f32((1, 3)), f32((3,))]) == (0, 2 * 6 + 6)
    assert cost("Mean", [f32((1, 3, 1, 1)), f32((2, 3, 4, 5))]) == (0, 2 * 120)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(1, 4), min_size=0, max_size=4), st.data())
def test_random_broadcast_shapes_agree_with_numpy(shape, data):
    """Knock dims out to 1 or drop leading ones; the result must be numpy's."""
    other = [data.draw(st.sampled_from([d, 1])) for d in shape]
    other = other[data.draw(st.integers(0, len(other))):]
    expected = np.broadcast_shapes(tuple(shape), tuple(other))
    assert infer("Add", [f32(tuple(shape)), f32(tuple(other))]) == [expected]
    assert infer("Sum", [f32(tuple(other)), f32(tuple(shape)), f32(())]) == [expected]


@pytest.mark.parametrize("opset", [7, 13, 18])
@pytest.mark.parametrize("op", UNARY)
@pytest.mark.parametrize("shape", [(1, 3, 5, 7), (7,), ()])
def test_unary_shapes_match_onnx(op, shape, opset):
    assert infer(op, [f32(shape)], opset=opset) == [shape]
    assert onnx_infer(op, [f32(shape)], opset=opset) == [shape]


@pytest.mark.parametrize("op", UNARY)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_unary_values_match_onnx(op, dtype):
    x = rand((2, 3, 5), dtype=dtype)
    (ours,) = evaluate(op, [x])
    assert ours.dtype == dtype
    np.testing.assert_allclose(ours, onnx_run(op, [x])[0], rtol=1e-6)
    assert cost(op, [x]) == (0, 2 * 3 * 5)


def test_unary_hand_computed():
    x = np.array([-4.0, 1.0, 4.0], np.float32)  # (3,)
    y = np.array([0.25, 1.0, 4.0], np.float32)
    np.testing.assert_array_equal(evaluate("Neg", [x])[0], [4, -1, -4])
    np.testing.assert_array_equal(evaluate("Abs", [x])[0], [4, 1, 4])
    np.testing.assert_array_equal(evaluate("Sqrt", [y])[0], [0.5, 1, 2])
    np.testing.assert_array_equal(evaluate("Reciprocal", [y])[0], [4, 1, 0.25])
    np.testing.assert_allclose(evaluate("Exp", [np.float32([0, 1])])[0], [1, np.e], rtol=1e-6)
    np.testing.assert_allclose(evaluate("Log", [np.float32([1, np.e])])[0], [0, 1], atol=1e-6)
    np.testing.assert_array_equal(evaluate("Abs", [np.array([-3, 2], np.int8)])[0], [3, 2])
