"""Shape and data-movement ops: shapes against onnx shape inference, values against the onnx
reference evaluator (or hand-computed arrays), error messages, and 0 FLOPs."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from onnx import numpy_helper

from cnngraph.errors import ShapeError
from cnngraph.ir import Constant as Initializer
from cnngraph.ir import Graph, Node, TensorInfo
from cnngraph.ops import TensorType
from cnngraph.passes.shapes import infer_shapes
from tests.util import call_of, cost, evaluate, infer, onnx_infer, onnx_run, ort_run


def F(*shape):  # a float32 activation of this shape (type only, no value)
    return TensorType(shape, "float32")


def I64(*values):
    return np.array(values, dtype=np.int64)


def arange(*shape, dtype=np.float32):
    return np.arange(int(np.prod(shape)), dtype=dtype).reshape(shape)


def same_as_onnx(op, inputs, attrs=None, opset=18, n_outputs=1, constant_inputs=()):
    """Our shapes equal onnx shape inference's (constant inputs are initializers there)."""
    ours = infer(op, inputs, attrs, opset, n_outputs)
    assert ours == onnx_infer(op, inputs, attrs, opset, n_outputs, constant_inputs)
    return ours


def values_as_onnx(op, inputs, attrs=None, opset=18, n_outputs=1):
    """Our numpy reference equals onnx's reference evaluator, dtype included."""
    ours = evaluate(op, inputs, attrs, opset, n_outputs)
    theirs = onnx_run(op, inputs, attrs, opset, n_outputs)
    assert len(ours) == len(theirs)
    for a, b in zip(ours, theirs):
        assert a.dtype == b.dtype and a.shape == b.shape
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    return ours


def with_axes(opsets, axes):
    """(opset, axes) pairs, leaving out negative axes before opset 11, which added them."""
    negative = lambda a: min(a) < 0 if isinstance(a, list) else a < 0  # noqa: E731
    return [(o, a) for o in opsets for a in axes if o >= 11 or not negative(a)]


# -- Reshape -------------------------------------------------------------------------------------
@pytest.mark.parametrize("opset", [7, 13, 18])
@pytest.mark.parametrize("x, target", [
    ((2, 3, 4), [0, -1]),      # -> (2, 12)
    ((2, 3, 4), [-1]),         # -> (24,)
    ((2, 3, 4), [4, 0, 2]),    # 0 copies dim 1 -> (4, 3, 2)
    ((1, 6, 5, 5), [1, -1]),   # the classic flatten before a dense layer -> (1, 150)
    ((3, 5), [5, 1, 3]),
])
def test_reshape_shape(opset, x, target):
    same_as_onnx("Reshape", [F(*x), I64(*target)], opset=opset, constant_inputs=(1,))


def test_reshape_values():
    x = arange(2, 3, 2)  # 2x3x2
    out, = evaluate("Reshape", [x, I64(0, -1)])
    assert out.shape == (2, 6)
    np.testing.assert_array_equal(out[1], [6, 7, 8, 9, 10, 11])


def test_reshape_allowzero_keeps_a_literal_zero():
    x = TensorType((3, 0), "float32")
    assert same_as_onnx("Reshape", [x, I64(0, 3)], {"allowzero": 1}, opset=14,
                        constant_inputs=(1,)) == [(0, 3)]
    assert infer("Reshape", [x, I64(0, 0)]) == [(3, 0)]  # without it, 0 copies the input dim


def test_reshape_size_mismatch_names_both_shapes():
    with pytest.raises(ShapeError, match=r"cannot reshape \(2, 3, 4\) \(24 elements\) to "
                                         r"\(5, 5\) \(25 elements\)"):
        infer("Reshape", [F(2, 3, 4), I64(5, 5)])
    with pytest.raises(ShapeError, match=r"cannot reshape \(2, 3, 4\) .* to \(5, -1\): "
                                         r"24 is not a multiple of 5"):
        infer("Reshape", [F(2, 3, 4), I64(5, -1)])


def test_reshape_bad_targets():
    with pytest.raises(ShapeError, match="more than one -1"):
        infer("Reshape", [F(2, 3, 4), I64(-1, -1)])
    with pytest.raises(ShapeError, match="copies dimension 2 with 0, but the input"):
        infer("Reshape", [F(2, 12), I64(2, 3, 0)])


def test_reshape_needs_a_constant_shape():
    with pytest.raises(ShapeError, match="shape \\('in1'\\) must be a compile-time constant"):
        infer("Reshape", [F(2, 3, 4), TensorType((2,), "int64")])


# -- Flatten -------------------------------------------------------------------------------------
@pytest.mark.parametrize("opset, axis", with_axes([9, 11, 18], [-3, -1, 0, 1, 2, 3]))
def test_flatten_shape(opset, axis):
    same_as_onnx("Flatten", [F(2, 3, 5)], {"axis": axis}, opset=opset)


def test_flatten_values_and_axis_range():
    x = arange(2, 3, 2)  # 2x3x2
    out, = evaluate("Flatten", [x])  # default axis 1 -> 2x6
    np.testing.assert_array_equal(out, [[0, 1, 2, 3, 4, 5], [6, 7, 8, 9, 10, 11]])
    assert infer("Flatten", [F(2, 3, 2)], {"axis": -1}) == [(6, 2)]
    with pytest.raises(ShapeError, match="axis 4 is out of range for rank 3"):
        infer("Flatten", [F(2, 3, 2)], {"axis": 4})


# -- Squeeze / Unsqueeze -------------------------------------------------------------------------
@pytest.mark.parametrize("opset", [11, 13, 18])
@pytest.mark.parametrize("axes", [None, [0], [-1], [0, 3]])
def test_squeeze_shape(opset, axes):
    x = F(1, 3, 2, 1)
    if axes is None:
        inputs, attrs = [x], {}
    elif opset < 13:
        inputs, attrs = [x], {"axes": axes}
    else:
        inputs, attrs = [x, I64(*axes)], {}
    same_as_onnx("Squeeze", inputs, attrs, opset=opset, constant_inputs=(1,))


def test_squeeze_values_and_errors():
    out, = evaluate("Squeeze", [arange(1, 3, 1), I64(-1)])
    assert out.shape == (1, 3)
    with pytest.raises(ShapeError, match="cannot squeeze axis 1 of size 3"):
        infer("Squeeze", [F(1, 3, 1), I64(1)])
    with pytest.raises(ShapeError, match=r"axes \[0, -3\] repeat an axis"):
        infer("Squeeze", [F(1, 3, 1), I64(0, -3)])


@pytest.mark.parametrize("opset, axes", with_axes([7, 11, 13, 18],
                                                  [[0], [-1], [1, 3], [0, -1]]))
def test_unsqueeze_shape(opset, axes):
    x = F(3, 4)
    inputs, attrs = ([x], {"axes": axes}) if opset < 13 else ([x, I64(*axes)], {})
    same_as_onnx("Unsqueeze", inputs, attrs, opset=opset, constant_inputs=(1,))


def test_unsqueeze_scalar_and_errors():
    out, = evaluate("Unsqueeze", [np.array(7, dtype=np.int64), I64(0)])  # scalar -> [7]
    assert out.dtype == np.int64 and out.tolist() == [7]
    with pytest.raises(ShapeError, match="axis 3 is out of range for rank 3"):
        infer("Unsqueeze", [F(3, 4), I64(3)])
    with pytest.raises(ShapeError, match="axes are required"):
        infer("Unsqueeze", [F(3, 4)], opset=11)


# -- Transpose -----------------------------------------------------------------------------------
@pytest.mark.parametrize("opset", [7, 13])
@pytest.mark.parametrize("perm", [None, [0, 2, 3, 1], [3, 1, 0, 2]])
def test_transpose(opset, perm):
    attrs = {} if perm is None else {"perm": perm}
    same_as_onnx("Transpose", [F(2, 3, 4, 5)], attrs, opset=opset)
    values_as_onnx("Transpose", [arange(2, 3, 4, 5)], attrs, opset=opset)


def test_transpose_bad_perm():
    with pytest.raises(ShapeError, match=r"perm \[0, 0, 1\] is not a permutation"):
        infer("Transpose", [F(2, 3, 4)], {"perm": [0, 0, 1]})


# -- Concat --------------------------------------------------------------------------------------
@pytest.mark.parametrize("opset, axis", with_axes([7, 11, 13, 18], [1, -3]))
def test_concat_shape(opset, axis):
    inputs = [F(2, 1, 5, 5), F(2, 3, 5, 5), F(2, 4, 5, 5)]  # inception-style channel concat
    assert same_as_onnx("Concat", inputs, {"axis": axis}, opset=opset) == [(2, 8, 5, 5)]


def test_concat_values():
    a, b = arange(2, 1), arange(2, 2) + 10  # 2x1, 2x2
    out, = values_as_onnx("Concat", [a, b], {"axis": 1})
    np.testing.assert_array_equal(out, [[0, 10, 11], [1, 12, 13]])


def test_concat_mismatch_names_the_input():
    inputs = [F(1, 2, 3), F(1, 2, 3), F(1, 3, 4)]
    with pytest.raises(ShapeError, match=r"input 2 has shape \(1, 3, 4\) but input 0 has "
                                         r"\(1, 2, 3\): every dimension except axis 1 must match"):
        infer("Concat", inputs, {"axis": 1})
    with pytest.raises(ShapeError, match="input 1 has rank 2 but input 0 has rank 3"):
        infer("Concat", [F(1, 2, 3), F(2, 3)], {"axis": 0})


# -- Split ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("opset, inputs, attrs, n", [
    (11, [F(2, 6)], {"axis": 1, "split": [1, 2, 3]}, 3),
    (11, [F(2, 6)], {"axis": -1}, 2),                           # equal: 3 + 3
    (13, [F(2, 6), I64(4, 2)], {"axis": 1}, 2),
    (13, [F(6, 2)], {}, 3),                                     # equal along axis 0
    (18, [F(2, 7)], {"axis": 1, "num_outputs": 3}, 3),          # 3, 3, 1: the last is smaller
    (18, [F(2, 8), I64(5, 3)], {"axis": 1}, 2),
])
def test_split_shape(opset, inputs, attrs, n):
    same_as_onnx("Split", inputs, attrs, opset=opset, n_outputs=n, constant_inputs=(1,))


def test_split_values():
    x = arange(2, 7)  # 2x7
    outs = values_as_onnx("Split", [x], {"axis": 1, "num_outputs": 3}, n_outputs=3)
    assert [o.shape for o in outs] == [(2, 3), (2, 3), (2, 1)]
    np.testing.assert_array_equal(outs[2], [[6], [13]])
    outs = values_as_onnx("Split", [x, I64(2, 5)], {"axis": 1}, n_outputs=2)
    np.testing.assert_array_equal(outs[0], [[0, 1], [7, 8]])


def test_split_errors():
    with pytest.raises(ShapeError, match="axis 1 of size 7 does not split into 2 equal outputs"):
        infer("Split", [F(2, 7)], {"axis": 1}, opset=13, n_outputs=2)
    with pytest.raises(ShapeError, match=r"split \[2, 2\] must be 2 non-negative sizes .* "
                                         r"adding up to axis 1's 7"):
        infer("Split", [F(2, 7), I64(2, 2)], {"axis": 1}, n_outputs=2)


# -- Slice ---------------------------------------------------------------------------------------
BIG = 2**63 - 1  # what exporters write for "to the end"

SLICES = [  # starts, ends, axes, steps on a 5x6x7 input
    ([1], [3], [0], [1]),
    ([0, 2], [BIG, -1], [1, 2], [1, 1]),        # INT_MAX end, negative end
    ([-3], [-1], [2], [1]),
    ([4], [-BIG - 1], [2], [-1]),               # walk down to the start: 5 elements
    ([-1, 5], [-BIG - 1, 0], [0, 1], [-2, -2]), # negative steps on two axes
    ([2], [100], [-1], [3]),                    # clamped end, stride 3
    ([3], [1], [0], [1]),                       # empty
]


@pytest.mark.parametrize("opset", [10, 13, 18])
@pytest.mark.parametrize("starts, ends, axes, steps", SLICES)
def test_slice_shape_and_values(opset, starts, ends, axes, steps):
    inputs = [arange(5, 6, 7), I64(*starts), I64(*ends), I64(*axes), I64(*steps)]
    assert infer("Slice", inputs, opset=opset) == onnx_infer(
        "Slice", [F(5, 6, 7)] + inputs[1:], opset=opset, constant_inputs=(1, 2, 3, 4))
    values_as_onnx("Slice", inputs, opset=opset)


def test_slice_attributes_before_opset_10():
    attrs = {"starts": [1, -2], "ends": [BIG, 7], "axes": [0, 2]}
    assert same_as_onnx("Slice", [F(5, 6, 7)], attrs, opset=9) == [(4, 6, 2)]
    out, = evaluate("Slice", [arange(5, 6, 7)], attrs, opset=9)
    np.testing.assert_array_equal(out, arange(5, 6, 7)[1:, :, -2:])


def spec_slice(dim, start, end, step):
    """The indices Slice reads, walked one by one as the ONNX spec words it."""
    start, end = start + dim if start < 0 else start, end + dim if end < 0 else end
    if step > 0:
        i, end = min(max(start, 0), dim), min(max(end, 0), dim)
    else:
        i, end = min(max(start, 0), dim - 1), min(max(end, -1), dim - 1)
    picked = []
    while (i < end) if step > 0 else (i > end):
        picked.append(i)
        i += step
    return picked


@settings(max_examples=200, deadline=None)
@given(dim=st.integers(0, 6), start=st.integers(-9, 9), end=st.integers(-9, 9),
       step=st.integers(-3, 3).filter(bool))
def test_slice_follows_the_spec(dim, start, end, step):
    x = np.arange(dim, dtype=np.int64)
    inputs = [x, I64(start), I64(end), I64(0), I64(step)]
    out, = evaluate("Slice", inputs)
    assert out.tolist() == spec_slice(dim, start, end, step)
    assert infer("Slice", inputs) == [out.shape]


@pytest.mark.onnxruntime
@pytest.mark.parametrize("dim, start, end, step", [(1, -2, -2, -1), (3, -5, -9, -1),
                                                   (3, 5, -9, -1), (4, -9, 9, 2)])
def test_slice_clamps_like_onnxruntime(dim, start, end, step):
    """A start below -dim walking down clamps to 0 (Python's x[-5:-9:-1] would be empty);
    the onnx reference slices the Python way, onnxruntime follows the spec."""
    inputs = [np.arange(dim, dtype=np.int64), I64(start), I64(end), I64(0), I64(step)]
    out, = evaluate("Slice", inputs)
    np.testing.assert_array_equal(out, ort_run("Slice", inputs, {}, 18, out_types=(7,))[0])


def test_slice_errors():
    with pytest.raises(ShapeError, match="step 0 on axis 0"):
        infer("Slice", [F(5), I64(0), I64(3), I64(0), I64(0)])
    with pytest.raises(ShapeError, match="must have the same length"):
        infer("Slice", [F(5, 5), I64(0, 1), I64(3)])


# -- Gather --------------------------------------------------------------------------------------
@pytest.mark.parametrize("opset, axis, indices", [
    (opset, axis, indices) for opset, axis in with_axes([7, 11, 13, 18], [0, 1, -1])
    for indices in [np.array(1, dtype=np.int64),  # a scalar index drops the axis
                    I64(0, 2), np.array([[0, 1], [3, 2]], dtype=np.int64)]
])
def test_gather_shape(opset, axis, indices):
    same_as_onnx("Gather", [F(4, 5, 6), indices], {"axis": axis}, opset=opset)


def test_gather_values_negative_indices():
    data = arange(3, 2, dtype=np.int64)  # [[0, 1], [2, 3], [4, 5]]
    out, = values_as_onnx("Gather", [data, I64(-1, 0)])
    np.testing.assert_array_equal(out, [[4, 5], [0, 1]])
    assert out.dtype == np.int64  # the data's type, not the indices'
    out, = evaluate("Gather", [data.astype(np.float32), np.array([1], dtype=np.int32)],
                    {"axis": 1})
    assert out.dtype == np.float32 and out.ravel().tolist() == [1, 3, 5]


def test_gather_index_out_of_range():
    with pytest.raises(ShapeError, match="index 3 is out of range for axis 0 of size 3"):
        infer("Gather", [F(3, 2), I64(0, 3)])
    with pytest.raises(ShapeError, match="index -4 is out of range for axis 1 of size 2"):
        evaluate("Gather", [arange(3, 2), I64(-4)], {"axis": 1})


# -- Shape / Size --------------------------------------------------------------------------------
@pytest.mark.parametrize("opset, attrs", [
    (7, {}), (13, {}), (15, {"start": 1}), (18, {"start": -3, "end": -1}),
    (18, {"end": 10}), (18, {"start": 3, "end": 1}),
])
def test_shape(opset, attrs):
    x = F(2, 3, 5, 7)
    same_as_onnx("Shape", [x], attrs, opset=opset)
    out, = evaluate("Shape", [x], attrs, opset=opset)  # from the type alone: shape_only
    assert out.dtype == np.int64
    np.testing.assert_array_equal(out, onnx_run("Shape", [np.zeros((2, 3, 5, 7), np.float32)],
                                                attrs, opset=opset)[0])


def test_size():
    assert same_as_onnx("Size", [F(2, 3, 5)]) == [()]
    out, = evaluate("Size", [F(2, 3, 5)])
    assert out.dtype == np.int64 and out.shape == () and int(out) == 30


# -- Constant / ConstantOfShape ------------------------------------------------------------------
def test_constant_from_an_array():
    value = np.array([[1.5, 2.0, 3.0]], dtype=np.float32)  # 1x3
    assert infer("Constant", [], {"value": value}) == onnx_infer(
        "Constant", [], {"value": numpy_helper.from_array(value)})
    out, = evaluate("Constant", [], {"value": value})
    assert out.dtype == np.float32
    np.testing.assert_array_equal(out, value)


@pytest.mark.parametrize("attrs, dtype, shape", [
    ({"value_float": 2.5}, np.float32, ()),
    ({"value_floats": [1.0, 2.0]}, np.float32, (2,)),
    ({"value_int": 3}, np.int64, ()),
    ({"value_ints": [1, -1]}, np.int64, (2,)),
])
def test_constant_scalar_attributes(attrs, dtype, shape):
    assert same_as_onnx("Constant", [], attrs, opset=13) == [shape]
    out, = values_as_onnx("Constant", [], attrs, opset=13)
    assert out.dtype == dtype


def test_constant_needs_exactly_one_attribute():
    with pytest.raises(ShapeError, match="needs exactly one of value, .*; got value_int, "
                                         "value_ints"):
        infer("Constant", [], {"value_int": 1, "value_ints": [1]})


@pytest.mark.parametrize("opset", [9, 13, 18])
def test_constant_of_shape(opset):
    shape = I64(2, 3)
    assert same_as_onnx("ConstantOfShape", [shape], opset=opset, constant_inputs=(0,)) == [(2, 3)]
    out, = values_as_onnx("ConstantOfShape", [shape], opset=opset)
    assert out.dtype == np.float32 and not out.any()  # default: float32 zeros


def test_constant_of_shape_value_sets_the_type():
    seven = np.array([7], dtype=np.int64)
    out, = evaluate("ConstantOfShape", [I64(2)], {"value": seven})
    assert out.dtype == np.int64 and out.tolist() == [7, 7]
    theirs, = onnx_run("ConstantOfShape", [I64(2)], {"value": numpy_helper.from_array(seven)})
    np.testing.assert_array_equal(out, theirs)
    out, = evaluate("ConstantOfShape", [I64()])  # an empty shape gives a scalar
    assert out.shape == ()
    with pytest.raises(ShapeError, match="value must hold one element, not 2"):
        infer("ConstantOfShape", [I64(2)], {"value": np.zeros(2, np.float32)})


# -- Cast ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("opset", [9, 13, 19])
@pytest.mark.parametrize("to, dtype", [(1, np.float32), (7, np.int64), (9, np.bool_),
                                       (10, np.float16), (2, np.uint8)])
def test_cast(opset, to, dtype):
    x = np.array([[-1.7, 0.0, 2.5]], dtype=np.float32)  # 1x3
    assert same_as_onnx("Cast", [F(1, 3)], {"to": to}, opset=opset) == [(1, 3)]
    call = call_of("Cast", [x], {"to": to})
    assert call.op.infer(call)[0].dtype == np.dtype(dtype).name
    if to != 2:  # -1.7 -> uint8 is implementation-defined
        out, = values_as_onnx("Cast", [x], {"to": to}, opset=opset)
        assert out.dtype == dtype


def test_cast_unknown_type():
    with pytest.raises(ShapeError, match="to=8: unsupported ONNX element type 8"):
        infer("Cast", [F(2)], {"to": 8})  # 8 = string


# -- Pad -----------------------------------------------------------------------------------------
@pytest.mark.parametrize("mode", ["constant", "reflect", "edge"])
@pytest.mark.parametrize("opset", [7, 11, 13, 18])
def test_pad_shape_and_values(mode, opset):
    x = arange(1, 2, 3, 4)
    pads = [0, 0, 1, 2, 0, 1, 2, 1]  # begins per axis, then ends
    if opset < 11:
        inputs, attrs = [x], {"pads": pads, "mode": mode, "value": 1.5}
    else:
        inputs, attrs = [x, I64(*pads), np.array(1.5, np.float32)], {"mode": mode}
    typed = [F(1, 2, 3, 4)] + inputs[1:]
    assert same_as_onnx("Pad", typed, attrs, opset, constant_inputs=(1, 2)) == [(1, 3, 6, 7)]
    values_as_onnx("Pad", inputs, attrs, opset=opset)


def test_pad_axes_opset_18():
    x = arange(2, 3)
    inputs = [x, I64(1, 2), None, I64(-1)]  # pad only the last axis: 1 before, 2 after
    assert same_as_onnx("Pad", [F(2, 3)] + inputs[1:], opset=18,
                        constant_inputs=(1, 3)) == [(2, 6)]
    out, = values_as_onnx("Pad", inputs, opset=18)
    np.testing.assert_array_equal(out, [[0, 0, 1, 2, 0, 0], [0, 3, 4, 5, 0, 0]])


def test_pad_negative_pads_crop():
    x = arange(3, 4)  # [[0 1 2 3] [4 5 6 7] [8 9 10 11]]
    inputs = [x, I64(-1, 1, 0, -2), np.array(-1, np.float32)]  # crop row 0, cols 2..3
    assert infer("Pad", inputs, opset=13) == [(2, 3)]
    out, = evaluate("Pad", inputs, opset=13)
    np.testing.assert_array_equal(out, [[-1, 4, 5], [-1, 8, 9]])
    out, = evaluate("Pad", inputs[:2], {"mode": "edge"}, opset=13)
    np.testing.assert_array_equal(out, [[4, 4, 5], [8, 8, 9]])


def test_pad_errors():
    with pytest.raises(ShapeError, match=r"pads \(-2, -2\) crop more than axis 0's 3"):
        infer("Pad", [F(3), I64(-2, -2)])
    with pytest.raises(ShapeError, match=r"reflect pads \(3, 0\) on axis 0 must be smaller "
                                         r"than its size 3"):
        infer("Pad", [F(3), I64(3, 0)], {"mode": "reflect"})
    with pytest.raises(ShapeError, match=r"pads \[1, 1\] must hold 2 values per padded axis "
                                         r"\(2\)"):
        infer("Pad", [F(3, 3), I64(1, 1)])


# -- Resize / Upsample ---------------------------------------------------------------------------
E = np.array([], dtype=np.float32)  # an empty roi/scales input
S = lambda *v: np.array(v, dtype=np.float32)  # noqa: E731


@pytest.mark.parametrize("opset, inputs, attrs", [
    (10, [F(1, 3, 5, 7), S(1, 1, 2, 1.5)], {}),
    (10, [F(1, 3, 5, 7), S(1, 1, 0.5, 0.6)], {"mode": "linear"}),    # floor(2.5), floor(4.2)
    (11, [F(1, 3, 5, 7), E, S(1, 1, 1.7, 0.3)], {"mode": "cubic"}),  # floor(8.5), floor(2.1)
    (11, [F(1, 3, 5, 7), E, E, I64(1, 3, 9, 4)], {"mode": "linear"}),
    (13, [F(1, 3, 5, 7), None, S(1, 1, 3, 3)], {}),
    (13, [F(1, 3, 5, 7), None, None, I64(1, 3, 2, 2)], {}),
    (18, [F(1, 3, 5, 7), None, S(2, 0.5)], {"axes": [2, 3]}),
    (18, [F(1, 3, 5, 7), None, None, I64(8, 3)], {"axes": [-2, -1]}),
    (18, [F(1, 3, 5, 7), None, None, I64(8, 3)],
     {"axes": [2, 3], "keep_aspect_ratio_policy": "not_larger"}),   # scale 3/7: (2, 3)
    (18, [F(1, 3, 5, 7), None, None, I64(8, 3)],
     {"axes": [2, 3], "keep_aspect_ratio_policy": "not_smaller"}),  # scale 8/5: (8, 11)
])
def test_resize_shape(opset, inputs, attrs):
    same_as_onnx("Resize", inputs, attrs, opset=opset, constant_inputs=(1, 2, 3))


def test_resize_linear_by_hand():
    x = S(0, 4).reshape(1, 1, 1, 2)  # 1x1x1x2
    out, = evaluate("Resize", [x, None, S(1, 1, 1, 2)], {"mode": "linear"})
    # half_pixel sources -0.25, 0.25, 0.75, 1.25; the ends clamp to the edge samples
    np.testing.assert_allclose(out.ravel(), [0, 1, 3, 4])
    out, = evaluate("Resize", [x, None, S(1, 1, 1, 2)], {"mode": "nearest"})
    np.testing.assert_allclose(out.ravel(), [0, 0, 4, 4])


RESIZE_VALUES = [  # (scales or sizes, attrs): where the onnx reference is trustworthy
    (S(1, 1, 2, 1.5), {"mode": "nearest"}),
    (S(1, 1, 0.5, 0.6), {"mode": "nearest", "nearest_mode": "round_prefer_ceil",
                         "coordinate_transformation_mode": "asymmetric"}),
    (S(1, 1, 1.7, 0.3), {"mode": "nearest", "nearest_mode": "floor"}),
    (S(1, 1, 2, 1.5), {"mode": "linear"}),
    (S(1, 1, 0.5, 0.6), {"mode": "linear", "coordinate_transformation_mode":
                         "pytorch_half_pixel"}),
    (S(1, 1, 0.5, 0.6), {"mode": "linear", "antialias": 1}),
    (S(1, 1, 1.7, 0.3), {"mode": "cubic"}),
    (S(1, 1, 0.5, 0.6), {"mode": "cubic", "antialias": 1, "exclude_outside": 1}),
    (S(1, 1, 2, 1.5), {"mode": "cubic", "cubic_coeff_a": -0.5, "exclude_outside": 1,
                       "coordinate_transformation_mode": "asymmetric"}),
    (I64(1, 2, 9, 4), {"mode": "linear"}),
    (I64(1, 2, 3, 10), {"mode": "cubic", "coordinate_transformation_mode": "half_pixel"}),
]


@pytest.mark.parametrize("given, attrs", RESIZE_VALUES)
def test_resize_values(given, attrs):
    x = np.random.default_rng(0).standard_normal((1, 2, 5, 7)).astype(np.float32)
    inputs = [x, E, given] if given.dtype == np.float32 else [x, E, E, given]
    values_as_onnx("Resize", inputs, attrs, opset=19)


@pytest.mark.onnxruntime
@pytest.mark.parametrize("op, opset, inputs, attrs", [
    # The onnx reference divides by scale*in - 1 instead of out - 1 here; onnxruntime and the
    # spec use the integer output length.
    ("Resize", 19, [None, E, S(1, 1, 2, 1.5)],
     {"mode": "linear", "coordinate_transformation_mode": "align_corners"}),
    ("Resize", 19, [None, E, S(1, 1, 0.5, 0.6)],
     {"mode": "nearest", "coordinate_transformation_mode": "align_corners"}),
    # ...and picks a wrong neighbour for cubic half_pixel_symmetric at an integer source.
    ("Resize", 19, [None, E, S(1, 1, 2, 1.5)],
     {"mode": "cubic", "coordinate_transformation_mode": "half_pixel_symmetric"}),
    ("Resize", 19, [None, S(0, 0, 0.2, 0.1, 1, 1, 0.9, 1.2), S(1, 1, 1.6, 0.8)],
     {"mode": "linear", "coordinate_transformation_mode": "tf_crop_and_resize",
      "extrapolation_value": -3.0}),
    # ...and samples -0.5 for pytorch_half_pixel into one output; the spec says 0
    ("Resize", 19, [None, E, None, I64(1, 2, 1, 3)],
     {"mode": "cubic", "coordinate_transformation_mode": "pytorch_half_pixel"}),
    # Resize-10: asymmetric coordinates; nearest floors when enlarging, ceils when shrinking
    ("Resize", 10, [None, S(1, 1, 0.6, 2.5)], {"mode": "nearest"}),
    ("Resize", 10, [None, S(1, 1, 2, 1.5)], {"mode": "linear"}),
    ("Upsample", 9, [None, S(1, 1, 2, 1.5)], {"mode": "linear"}),
    ("Upsample", 7, [None], {"mode": "nearest", "scales": [1.0, 1.0, 2.0, 1.5]}),
])
def test_resample_values_against_onnxruntime(op, opset, inputs, attrs):
    x = np.random.default_rng(0).standard_normal((1, 2, 5, 7)).astype(np.float32)
    inputs = [x] + inputs[1:]
    out, = evaluate(op, inputs, attrs, opset=opset)
    np.testing.assert_allclose(out, ort_run(op, inputs, attrs, opset)[0], atol=1e-5)


@pytest.mark.parametrize("opset, inputs, attrs", [
    (7, [F(1, 3, 5, 7)], {"scales": [1.0, 1.0, 2.0, 1.5]}),
    (9, [F(1, 3, 5, 7), S(1, 1, 3, 2)], {"mode": "linear"}),
])
def test_upsample_shape(opset, inputs, attrs):
    same_as_onnx("Upsample", inputs, attrs, opset=opset, constant_inputs=(1,))


def test_upsample_values():
    x = arange(1, 1, 2, 2)  # [[0 1] [2 3]]
    out, = values_as_onnx("Upsample", [x, S(1, 1, 2, 2)], opset=9)
    np.testing.assert_array_equal(out[0, 0], [[0, 0, 1, 1], [0, 0, 1, 1],
                                              [2, 2, 3, 3], [2, 2, 3, 3]])


def test_resize_costs():
    x = F(1, 3, 4, 4)
    out = 1 * 3 * 8 * 8
    # 2 resized axes; one axis costs 2*taps - 1: linear 2 taps -> 3, cubic 4 taps -> 7
    assert cost("Resize", [x, None, S(1, 1, 2, 2)], {"mode": "linear"}) == (0, out * 2 * 3)
    assert cost("Resize", [x, None, S(1, 1, 2, 2)], {"mode": "cubic"}) == (0, out * 2 * 7)
    assert cost("Resize", [x, None, S(1, 1, 2, 2)], {"mode": "nearest"}) == (0, 0)
    assert cost("Resize", [x, None, S(1, 1, 1, 2)], {"mode": "linear"}) == (0, 3 * 4 * 8 * 3)
    # antialias halving: the linear kernel spans 4 taps -> 7 per axis
    assert cost("Resize", [x, None, S(1, 1, 0.5, 0.5)],
                {"mode": "linear", "antialias": 1}) == (0, 3 * 2 * 2 * 2 * 7)
    assert cost("Upsample", [x, S(1, 1, 2, 2)], {"mode": "linear"}, opset=9) == (0, out * 2 * 3)


def test_resize_errors():
    with pytest.raises(ShapeError, match="exactly one of scales and sizes must be given"):
        infer("Resize", [F(1, 3, 4, 4), None, S(1, 1, 2, 2), I64(1, 3, 8, 8)])
    with pytest.raises(ShapeError, match="scale 0.2 on axis 2 of size 4 gives output size 0"):
        infer("Resize", [F(1, 3, 4, 4), None, S(1, 1, 0.2, 1)])
    with pytest.raises(ShapeError, match=r"sizes \[8, 8\] must have one value per resized "
                                         r"axis \(4\)"):
        infer("Resize", [F(1, 3, 4, 4), None, None, I64(8, 8)])
    with pytest.raises(ShapeError, match=r"scales \[1, 1, 0.5, 1\] must be >= 1: Upsample "
                                         r"cannot shrink"):
        infer("Upsample", [F(1, 3, 4, 4), S(1, 1, 0.5, 1)], opset=9)
    with pytest.raises(ShapeError, match="scales \\('in2'\\) must be a compile-time constant"):
        infer("Resize", [F(1, 3, 4, 4), None, TensorType((4,), "float32")])


# -- Expand / Tile / Where -----------------------------------------------------------------------
@pytest.mark.parametrize("opset", [8, 13, 18])
@pytest.mark.parametrize("x, shape", [
    ((3, 1), [2, 1, 6]),   # bidirectional: the 1 in the shape keeps the input's 3
    ((3, 4), [1, 1]),
    ((1,), [2, 3]),
])
def test_expand_shape(opset, x, shape):
    same_as_onnx("Expand", [F(*x), I64(*shape)], opset=opset, constant_inputs=(1,))


def test_expand_values_and_error():
    out, = values_as_onnx("Expand", [arange(3, 1), I64(2, 1, 2)])  # -> 2x3x2
    np.testing.assert_array_equal(out[1], [[0, 0], [1, 1], [2, 2]])
    with pytest.raises(ShapeError, match=r"cannot broadcast \(3, 4\) with \(2, 4, 5\)"):
        infer("Expand", [F(3, 4), I64(2, 4, 5)])


@pytest.mark.parametrize("opset", [7, 13])
def test_tile(opset):
    assert same_as_onnx("Tile", [F(2, 3), I64(2, 1)], opset=opset,
                        constant_inputs=(1,)) == [(4, 3)]
    out, = values_as_onnx("Tile", [arange(1, 2), I64(2, 3)], opset=opset)  # 1x2 -> 2x6
    np.testing.assert_array_equal(out, [[0, 1, 0, 1, 0, 1]] * 2)
    with pytest.raises(ShapeError, match=r"repeats \[2\] must be 2 non-negative counts"):
        infer("Tile", [F(2, 3), I64(2)], opset=opset)


@pytest.mark.parametrize("opset", [9, 16])
def test_where(opset):
    cond = np.array([[True], [False]])  # 2x1
    x, y = arange(1, 3), -arange(2, 3)  # 1x3, 2x3
    assert same_as_onnx("Where", [TensorType((2, 1), "bool"), F(1, 3), F(2, 3)],
                        opset=opset) == [(2, 3)]
    out, = values_as_onnx("Where", [cond, x, y], opset=opset)
    np.testing.assert_array_equal(out, [[0, 1, 2], [-3, -4, -5]])
    with pytest.raises(ShapeError, match="the condition is float32, not bool"):
        infer("Where", [F(2, 1), F(1, 3), F(2, 3)])


# -- costs and flags -----------------------------------------------------------------------------
@pytest.mark.parametrize("op, inputs, attrs", [
    ("Reshape", [F(2, 3, 4), I64(6, 4)], {}),
    ("Transpose", [F(2, 3, 4)], {}),
    ("Concat", [F(2, 3), F(2, 3)], {"axis": 0}),
    ("Gather", [F(5, 3), I64(1, 2)], {}),
    ("Pad", [F(2, 3), I64(1, 1, 1, 1)], {}),
    ("Slice", [F(5, 3), I64(1), I64(3)], {}),
    ("Cast", [F(5, 3)], {"to": 7}),
    ("Expand", [F(3, 1), I64(3, 4)], {}),
    ("Where", [TensorType((3,), "bool"), F(3), F(3)], {}),
])
def test_data_movement_costs_nothing(op, inputs, attrs):
    assert cost(op, inputs, attrs) == (0, 0)


def test_flags():
    from cnngraph.ops import REGISTRY
    views = {op for op, cls in REGISTRY.items() if cls.is_view}
    assert {"Reshape", "Flatten", "Squeeze", "Unsqueeze"} <= views
    assert not {"Transpose", "Concat", "Slice"} & views  # these copy
    assert REGISTRY["Shape"].shape_only and REGISTRY["Size"].shape_only
    assert REGISTRY["Resize"].attribute_inputs == (1, 2, 3)
    assert REGISTRY["Pad"].attribute_inputs == (1, 2, 3)
    assert REGISTRY["ConstantOfShape"].attribute_inputs == (0,)


# -- constant folding through a graph ------------------------------------------------------------
def test_shape_chain_folds_to_a_static_reshape():
    """Shape -> Gather -> Unsqueeze -> Concat -> Reshape, as torch exports x.view(x.size(0), -1),
    and ConstantOfShape producing a weight."""
    g = Graph("chain", opset=13)
    g.add_input(TensorInfo("x", "float32", ("N", 3, 4, 4)))
    for name, value in [("zero", np.array(0, np.int64)), ("axes", I64(0)),
                        ("minus1", I64(-1)), ("wshape", I64(48, 5))]:
        g.add_constant(Initializer(name, "int64", value.shape, lambda v=value: v))
    g.add_node(Node("shape", "Shape", ["x"], ["s"]))
    g.add_node(Node("gather", "Gather", ["s", "zero"], ["n"]))
    g.add_node(Node("unsq", "Unsqueeze", ["n", "axes"], ["n1"]))
    g.add_node(Node("concat", "Concat", ["n1", "minus1"], ["target"], {"axis": 0}))
    g.add_node(Node("reshape", "Reshape", ["x", "target"], ["flat"]))
    g.add_node(Node("w", "ConstantOfShape", ["wshape"], ["weight"],
                    {"value": np.array([0.5], np.float32)}))
    g.add_node(Node("dense", "MatMul", ["flat", "weight"], ["y"]))
    g.outputs.append("y")
    result = infer_shapes(g.freeze(), batch=2, allow_unknown=True)
    assert result.values["target"].tolist() == [2, -1]
    assert result.types["flat"].shape == (2, 48)
    assert result.types["weight"].shape == (48, 5)
    assert float(result.value("weight")[0, 0]) == 0.5
    assert {"shape", "gather", "unsq", "concat", "w"} <= result.folded
    assert "reshape" not in result.folded  # x is an activation
