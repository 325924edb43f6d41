"""Reductions: shapes vs onnx.shape_inference across the opsets where axes moved from attribute to
input, values vs onnx's reference evaluator, FLOPs from the formula, and the errors."""

import numpy as np
import pytest

from cnngraph.errors import ShapeError
from cnngraph.ops import TensorType
from tests.util import cost, evaluate, infer, onnx_infer, onnx_run

OPS = ["ReduceMean", "ReduceSum", "ReduceMax", "ReduceMin"]
# the opset from which axes is input 1 instead of an attribute
AXES_INPUT = {"ReduceMean": 18, "ReduceSum": 13, "ReduceMax": 18, "ReduceMin": 18}


def node_form(op, opset, axes, attrs):
    """(extra inputs, attrs) for axes at this opset: an attribute, or a constant input 1."""
    if opset >= AXES_INPUT[op]:
        return ([] if axes is None else [np.array(axes, np.int64)]), attrs
    return [], (attrs if axes is None else {**attrs, "axes": axes})


def test_reductions_by_hand():
    x = np.array([[1, 2, 3], [4, 5, 6]], np.float32)  # 2x3
    assert evaluate("ReduceSum", [x, np.array([1])], {"keepdims": 0})[0].tolist() == [6, 15]
    assert evaluate("ReduceMean", [x, np.array([0])], {"keepdims": 0})[0].tolist() == [
        2.5, 3.5, 4.5]
    y = evaluate("ReduceMax", [x])[0]  # no axes: all of them, kept as 1
    assert y.shape == (1, 1) and y.tolist() == [[6]]
    assert evaluate("ReduceMin", [x, np.array([-1])])[0].tolist() == [[1], [4]]  # 2x1
    # noop_with_empty_axes: no axes means the identity
    np.testing.assert_array_equal(evaluate("ReduceSum", [x], {"noop_with_empty_axes": 1})[0], x)


# (input shape, axes or None, keepdims)
CASES = [
    ((2, 3, 4), None, 1),
    ((2, 3, 4), None, 0),  # a scalar
    ((2, 3, 4), [1], 1),
    ((2, 3, 4), [1], 0),
    ((2, 3, 4), [0, -1], 0),
    ((2, 3, 4), [-2], 1),
    ((2, 3, 4), [2, 0, 1], 0),
    ((1, 64, 7, 7), [2, 3], 1),  # global average pooling written as ReduceMean
    ((5,), [0], 0),
]


@pytest.mark.parametrize("opset", [11, 13, 18])
@pytest.mark.parametrize("op", OPS)
def test_reduce_shapes_match_onnx(op, opset):
    for xs, axes, keepdims in CASES:
        extra, attrs = node_form(op, opset, axes, {"keepdims": keepdims})
        inputs = [TensorType(xs, "float32")] + extra
        assert infer(op, inputs, attrs, opset) == onnx_infer(
            op, inputs, attrs, opset, constant_inputs=(1,)), (xs, axes, keepdims)


@pytest.mark.parametrize("opset", [11, 13, 18])
@pytest.mark.parametrize("op", OPS)
def test_reduce_values_match_onnx(op, opset):
    for xs, axes, keepdims in CASES:
        x = np.random.default_rng(len(xs)).standard_normal(xs).astype(np.float32)
        extra, attrs = node_form(op, opset, axes, {"keepdims": keepdims})
        ours = evaluate(op, [x] + extra, attrs, opset)[0]
        theirs = onnx_run(op, [x] + extra, attrs, opset)[0]
        assert ours.shape == theirs.shape and ours.dtype == theirs.dtype
        np.testing.assert_allclose(ours, theirs, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("op", OPS)
def test_reduce_empty_axes(op):
    opset = AXES_INPUT[op]
    x = np.arange(6, dtype=np.float32).reshape(2, 3)
    empty = np.array([], np.int64)
    for inputs, attrs, expected in [
        ([x], {"noop_with_empty_axes": 1}, (2, 3)),  # identity
        ([x, empty], {"noop_with_empty_axes": 1}, (2, 3)),
        ([x, empty], {}, (1, 1)),  # empty axes without noop: reduce everything
        ([x], {"keepdims": 0}, ()),
    ]:
        assert infer(op, inputs, attrs, opset) == [expected]
        assert infer(op, inputs, attrs, opset) == onnx_infer(op, inputs, attrs, opset,
                                                             constant_inputs=(1,))
        np.testing.assert_array_equal(evaluate(op, inputs, attrs, opset)[0],
                                      onnx_run(op, inputs, attrs, opset)[0])


@pytest.mark.parametrize("op", OPS)
def test_reduce_keeps_integer_types(op):
    x = np.array([[1, 2, 3], [4, 5, 7]], np.int32)
    y = evaluate(op, [x], {"axes": [1], "keepdims": 0}, opset=11)[0]
    assert y.dtype == np.int32
    np.testing.assert_array_equal(y, onnx_run(op, [x], {"axes": [1], "keepdims": 0}, 11)[0])


@pytest.mark.parametrize("op", OPS)
def test_reduce_costs(op):
    # one add or comparison per input element, whatever the axes; the identity costs nothing
    x = TensorType((2, 64, 7, 7), "float32")
    assert cost(op, [x], {"axes": [2, 3]}, opset=11) == (0, 2 * 64 * 7 * 7)
    assert cost(op, [x], {}, opset=11) == (0, 2 * 64 * 7 * 7)
    assert cost(op, [x], {"noop_with_empty_axes": 1}, opset=18) == (0, 0)


@pytest.mark.parametrize("op", OPS)
def test_reduce_errors(op):
    x = TensorType((2, 3, 4), "float32")
    with pytest.raises(ShapeError, match=r"axis 3 is out of range for rank 3"):
        infer(op, [x], {"axes": [3]}, opset=11)
    with pytest.raises(ShapeError, match=r"axes \[1, -2\] name an axis twice"):
        infer(op, [x], {"axes": [1, -2]}, opset=11)
    # axes given as an input only known at run time: no static shape
    with pytest.raises(ShapeError, match=r"axes \('in1'\) must be a compile-time constant"):
        infer(op, [x, TensorType((1,), "int64")], {}, opset=18)
