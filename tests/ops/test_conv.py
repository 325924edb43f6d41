"""Conv and ConvTranspose: shapes vs onnx.shape_inference, values vs onnx's reference evaluator
(and onnxruntime where that reference is wrong), MACs from the formula, and the errors."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cnngraph.errors import ShapeError
from cnngraph.ops import TensorType
from tests.util import cost, evaluate, infer, onnx_infer, onnx_run, ort_run


def f32(*shape):
    return TensorType(shape, "float32")


def rand(*shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


# ---------------------------------------------------------------------------------------------
# Conv

def test_conv_domain_examples():
    # AlexNet conv1: 227x227x3 through 96 filters 11x11, stride 4, valid -> 55x55x96
    x, w = f32(1, 3, 227, 227), f32(96, 3, 11, 11)
    assert infer("Conv", [x, w], {"strides": [4, 4]}) == [(1, 96, 55, 55)]
    assert infer("Conv", [x, w], {"strides": [4, 4], "auto_pad": "VALID"}) == [(1, 96, 55, 55)]
    # LeNet-style: 32x32x1 through 64 filters 3x3 valid -> 30x30x64
    assert infer("Conv", [f32(1, 1, 32, 32), f32(64, 1, 3, 3)], {}) == [(1, 64, 30, 30)]
    # 5x5 through 3x3 with one pixel of zero padding keeps 5x5
    assert infer("Conv", [f32(1, 1, 5, 5), f32(1, 1, 3, 3)], {"pads": [1, 1, 1, 1]}) == [
        (1, 1, 5, 5)]


def test_conv_same_padding_by_hand():
    # 5x5 input of ones, 3x3 ones kernel, pad 1: corners see 4, edges 6, the inside 9
    y = evaluate("Conv", [np.ones((1, 1, 5, 5), np.float32), np.ones((1, 1, 3, 3), np.float32)],
                 {"pads": [1, 1, 1, 1]})[0]
    expected = np.array([[4, 6, 6, 6, 4],
                         [6, 9, 9, 9, 6],
                         [6, 9, 9, 9, 6],
                         [6, 9, 9, 9, 6],
                         [4, 6, 6, 6, 4]], np.float32)  # 5x5
    np.testing.assert_array_equal(y[0, 0], expected)


def test_conv_groups_by_hand():
    # x: 1x2x1x1 = [1, 10]; group=2 with 1x1 weights [2], [3]: each channel scaled on its own
    x = np.array([1, 10], np.float32).reshape(1, 2, 1, 1)
    w = np.array([2, 3], np.float32).reshape(2, 1, 1, 1)
    y = evaluate("Conv", [x, w, np.array([0.5, -1], np.float32)], {"group": 2})[0]
    np.testing.assert_array_equal(y.reshape(2), [2.5, 29.0])


# (input, weight, attrs): every auto_pad, odd sizes, groups, depthwise, dilations,
# asymmetric pads, 1-D and 3-D
CONV_CASES = [
    ((1, 3, 7, 9), (4, 3, 3, 3), {}),
    ((2, 3, 7, 9), (4, 3, 3, 2), {"strides": [2, 3]}),
    ((1, 3, 7, 9), (4, 3, 3, 3), {"auto_pad": "SAME_UPPER", "strides": [2, 2]}),
    ((1, 3, 8, 9), (4, 3, 4, 2), {"auto_pad": "SAME_LOWER", "strides": [3, 2]}),
    ((1, 3, 8, 9), (4, 3, 4, 2), {"auto_pad": "SAME_UPPER", "strides": [1, 1]}),
    ((1, 3, 7, 9), (4, 3, 3, 3), {"auto_pad": "VALID", "strides": [2, 2]}),
    ((1, 3, 7, 9), (4, 3, 3, 3), {"pads": [0, 1, 2, 3]}),  # asymmetric pads
    ((1, 3, 10, 11), (4, 3, 3, 3), {"dilations": [2, 3], "pads": [1, 1, 1, 1]}),
    ((1, 4, 7, 7), (6, 2, 3, 3), {"group": 2}),  # grouped
    ((1, 4, 7, 7), (4, 1, 3, 3), {"group": 4, "strides": [2, 2], "pads": [1, 1, 1, 1]}),  # dw
    ((1, 4, 7, 7), (8, 1, 3, 3), {"group": 4}),  # depthwise with multiplier 2
    ((1, 4, 6, 6), (5, 4, 1, 1), {}),  # pointwise
    ((2, 3, 11), (4, 3, 3), {"strides": [2], "pads": [1, 2]}),  # 1-D
    ((1, 2, 5, 6, 7), (3, 2, 3, 2, 3), {"strides": [1, 2, 2], "pads": [1, 0, 1, 1, 1, 0]}),  # 3-D
    ((1, 2, 5, 6, 7), (3, 2, 3, 3, 3), {"auto_pad": "SAME_LOWER", "strides": [2, 2, 2]}),
]


@pytest.mark.parametrize("opset", [7, 11, 18])
@pytest.mark.parametrize("xs, ws, attrs", CONV_CASES)
def test_conv_shape_matches_onnx(xs, ws, attrs, opset):
    inputs = [f32(*xs), f32(*ws), f32(ws[0])]
    assert infer("Conv", inputs, attrs, opset) == onnx_infer("Conv", inputs, attrs, opset)


@pytest.mark.parametrize("xs, ws, attrs", CONV_CASES)
def test_conv_values_match_onnx(xs, ws, attrs):
    inputs = [rand(*xs), rand(*ws, seed=1), rand(ws[0], seed=2)]
    np.testing.assert_allclose(evaluate("Conv", inputs, attrs)[0],
                               onnx_run("Conv", inputs, attrs)[0], rtol=1e-5, atol=1e-5)


def test_conv_same_lower_puts_the_odd_pixel_first():
    # 1x4 input, kernel 2: total padding 1. SAME_UPPER pads the end, SAME_LOWER the start.
    x = np.array([[[[1, 2, 3, 4]]]], np.float32)
    w = np.array([[[[1, 10]]]], np.float32)
    upper = evaluate("Conv", [x, w], {"auto_pad": "SAME_UPPER"})[0].ravel()
    lower = evaluate("Conv", [x, w], {"auto_pad": "SAME_LOWER"})[0].ravel()
    np.testing.assert_array_equal(upper, [21, 32, 43, 4])  # [1,2],[2,3],[3,4],[4,0]
    np.testing.assert_array_equal(lower, [10, 21, 32, 43])  # [0,1],[1,2],[2,3],[3,4]


@settings(max_examples=40, deadline=None)
@given(n=st.integers(1, 12), k=st.integers(1, 5), s=st.integers(1, 4), d=st.integers(1, 3),
       pb=st.integers(0, 3), pe=st.integers(0, 3),
       auto_pad=st.sampled_from(["NOTSET", "SAME_UPPER", "SAME_LOWER", "VALID"]))
def test_conv_random_1d_shapes_match_onnx(n, k, s, d, pb, pe, auto_pad):
    attrs = {"strides": [s], "dilations": [d], "auto_pad": auto_pad}
    if auto_pad == "NOTSET":
        attrs["pads"] = [pb, pe]
    inputs = [f32(1, 2, n), f32(3, 2, k)]
    padded = n + (pb + pe if auto_pad == "NOTSET" else 0)
    if auto_pad not in ("SAME_UPPER", "SAME_LOWER") and padded < d * (k - 1) + 1:
        with pytest.raises(ShapeError, match="larger than the padded input"):
            infer("Conv", inputs, attrs)
    else:
        assert infer("Conv", inputs, attrs) == onnx_infer("Conv", inputs, attrs)


@pytest.mark.parametrize("bias", [False, True])
def test_conv_costs(bias):
    # grouped, strided: Y = 2x6x4x4, each output reads Cin/group * kh*kw = 2 * 3*3 inputs
    inputs = [f32(2, 4, 9, 9), f32(6, 2, 3, 3)] + ([f32(6)] if bias else [])
    attrs = {"group": 2, "strides": [2, 2]}
    assert infer("Conv", inputs, attrs) == [(2, 6, 4, 4)]
    y = 2 * 6 * 4 * 4
    assert cost("Conv", inputs, attrs) == (y * 2 * 3 * 3, y if bias else 0)


def test_conv_costs_alexnet_and_depthwise():
    # AlexNet conv1: 96 * (11*11*3) * 55*55 MACs
    macs, _ = cost("Conv", [f32(1, 3, 227, 227), f32(96, 3, 11, 11)], {"strides": [4, 4]})
    assert macs == 96 * 11 * 11 * 3 * 55 * 55 == 105_415_200
    # depthwise 3x3 on M=8 maps of 10x10 (same): M * Dp^2 * Dk^2
    macs, _ = cost("Conv", [f32(1, 8, 10, 10), f32(8, 1, 3, 3)],
                   {"group": 8, "pads": [1, 1, 1, 1]})
    assert macs == 8 * 10 * 10 * 3 * 3


def test_conv_kernel_larger_than_padded_input():
    with pytest.raises(ShapeError, match=r"input 5, kernel 7, stride 2, dilation 1, "
                                         r"padding \(0, 0\).*larger than the padded input"):
        infer("Conv", [f32(1, 1, 5, 5), f32(1, 1, 7, 7)], {"strides": [2, 2]})
    # padding that makes it fit is fine; one pixel less is not
    assert infer("Conv", [f32(1, 1, 5, 5), f32(1, 1, 7, 7)], {"pads": [1, 1, 1, 1]}) == [
        (1, 1, 1, 1)]
    with pytest.raises(ShapeError, match=r"kernel 7, stride 1, dilation 1, padding \(1, 0\)"):
        infer("Conv", [f32(1, 1, 5, 5), f32(1, 1, 7, 7)], {"pads": [1, 1, 0, 1]})
    # dilation makes a 3x3 kernel span 5
    with pytest.raises(ShapeError, match=r"input 4, kernel 3, stride 1, dilation 2"):
        infer("Conv", [f32(1, 1, 4, 4), f32(1, 1, 3, 3)], {"dilations": [2, 2]})


def test_conv_channel_and_group_errors():
    with pytest.raises(ShapeError, match=r"input has 3 channels.*each filter must span 3, but "
                                         r"the weight spans 4"):
        infer("Conv", [f32(1, 3, 8, 8), f32(16, 4, 3, 3)])
    with pytest.raises(ShapeError, match=r"group=2 must divide input channels 3"):
        infer("Conv", [f32(1, 3, 8, 8), f32(4, 1, 3, 3)], {"group": 2})
    with pytest.raises(ShapeError, match=r"group=2 must divide .* filters 5"):
        infer("Conv", [f32(1, 4, 8, 8), f32(5, 2, 3, 3)], {"group": 2})
    with pytest.raises(ShapeError, match=r"with group=4 each filter must span 1"):
        infer("Conv", [f32(1, 4, 8, 8), f32(4, 2, 3, 3)], {"group": 4})
    with pytest.raises(ShapeError, match=r"bias shape \[8\] must be \[16\]"):
        infer("Conv", [f32(1, 3, 8, 8), f32(16, 3, 3, 3), f32(8)])
    with pytest.raises(ShapeError, match=r"kernel_shape \[5, 5\] does not match weight \[3, 3\]"):
        infer("Conv", [f32(1, 3, 8, 8), f32(16, 3, 3, 3)], {"kernel_shape": [5, 5]})
    with pytest.raises(ShapeError, match=r"input rank 4 and weight rank 3"):
        infer("Conv", [f32(1, 3, 8, 8), f32(16, 3, 3)])
    with pytest.raises(ShapeError, match=r"attribute strides=\[2\] needs 2 values"):
        infer("Conv", [f32(1, 3, 8, 8), f32(16, 3, 3, 3)], {"strides": [2]})


def test_conv_error_names_node_and_shapes():
    with pytest.raises(ShapeError) as e:
        infer("Conv", [f32(1, 3, 4, 4), f32(2, 3, 5, 5)])
    assert "node 'n' (Conv)" in str(e.value) and "(1, 3, 4, 4), (2, 3, 5, 5)" in str(e.value)


# ---------------------------------------------------------------------------------------------
# ConvTranspose

def test_conv_transpose_by_hand():
    x = np.array([[1, 2], [3, 4]], np.float32).reshape(1, 1, 2, 2)
    ones = np.ones((1, 1, 2, 2), np.float32)
    # stride 1: the 2x2 patches overlap into 3x3
    y = evaluate("ConvTranspose", [x, ones])[0]
    np.testing.assert_array_equal(y[0, 0], [[1, 3, 2],
                                            [4, 10, 6],
                                            [3, 7, 4]])
    # stride 2: each input becomes its own 2x2 block of the 4x4 output; bias 0.5 on top
    y = evaluate("ConvTranspose", [x, ones, np.array([0.5], np.float32)], {"strides": [2, 2]})[0]
    np.testing.assert_array_equal(y[0, 0], np.array([[1, 1, 2, 2],
                                                     [1, 1, 2, 2],
                                                     [3, 3, 4, 4],
                                                     [3, 3, 4, 4]]) + 0.5)
    # pads crop the full 4x4 result: one row on top, one column on the right -> 3x3
    y = evaluate("ConvTranspose", [x, ones], {"strides": [2, 2], "pads": [1, 0, 0, 1]})[0]
    np.testing.assert_array_equal(y[0, 0], [[1, 1, 2],
                                            [3, 3, 4],
                                            [3, 3, 4]])


# (input, weight, attrs); the weight is Cin x Cout/group x kernel
CT_CASES = [
    ((1, 2, 4, 5), (2, 3, 3, 3), {}),
    ((2, 2, 4, 5), (2, 3, 3, 2), {"strides": [2, 3]}),
    ((1, 2, 4, 5), (2, 3, 3, 3), {"strides": [2, 2], "output_padding": [1, 0]}),
    ((1, 2, 4, 5), (2, 3, 3, 3), {"strides": [2, 2], "pads": [1, 0, 2, 1]}),
    ((1, 2, 4, 5), (2, 3, 3, 3), {"strides": [2, 1], "dilations": [2, 3], "pads": [1, 1, 0, 0]}),
    ((1, 2, 4, 5), (2, 3, 3, 3), {"strides": [2, 2], "output_shape": [8, 9]}),
    ((1, 2, 4, 5), (2, 3, 3, 3), {"strides": [2, 2], "output_shape": [7, 10],
                                  "auto_pad": "SAME_UPPER"}),
    ((1, 2, 4, 5), (2, 3, 3, 3), {"auto_pad": "SAME_UPPER", "strides": [2, 2]}),
    ((1, 2, 4, 5), (2, 3, 4, 3), {"auto_pad": "SAME_LOWER", "strides": [2, 3]}),
    ((1, 2, 4, 5), (2, 3, 3, 3), {"auto_pad": "VALID", "strides": [2, 2]}),
    ((1, 4, 3, 3), (4, 1, 3, 3), {"group": 4, "strides": [2, 2]}),  # depthwise
    ((2, 3, 6), (3, 2, 4), {"strides": [2], "pads": [1, 2]}),  # 1-D
    ((1, 2, 3, 4, 2), (2, 2, 2, 3, 2), {"strides": [2, 1, 2], "pads": [0, 1, 0, 1, 0, 0]}),  # 3-D
]


@pytest.mark.parametrize("opset", [9, 11, 18])
@pytest.mark.parametrize("xs, ws, attrs", CT_CASES)
def test_conv_transpose_shape_matches_onnx(xs, ws, attrs, opset):
    inputs = [f32(*xs), f32(*ws)]
    assert infer("ConvTranspose", inputs, attrs, opset) == onnx_infer("ConvTranspose", inputs,
                                                                      attrs, opset)


@pytest.mark.parametrize("xs, ws, attrs", [
    c for c in CT_CASES
    if "group" not in c[2] and ("output_shape" not in c[2] or "auto_pad" in c[2])])
def test_conv_transpose_values_match_onnx(xs, ws, attrs):
    # onnx's reference ignores output_shape without auto_pad (it keeps pads 0) and, with groups,
    # adds the first group's bias to every group and mixes up groups of several outputs: those
    # cases are checked against onnxruntime below
    inputs = [rand(*xs), rand(*ws, seed=1), rand(ws[1], seed=2)]
    np.testing.assert_allclose(evaluate("ConvTranspose", inputs, attrs)[0],
                               onnx_run("ConvTranspose", inputs, attrs)[0], rtol=1e-5, atol=1e-5)


@pytest.mark.onnxruntime
@pytest.mark.parametrize("xs, ws, attrs", CT_CASES + [
    # grouped with several outputs per group: onnx's reference mixes up the groups here
    ((1, 4, 3, 4), (4, 3, 3, 3), {"group": 2, "strides": [2, 2], "pads": [1, 0, 0, 1]}),
    ((1, 6, 5), (6, 2, 3), {"group": 3, "strides": [3], "output_padding": [2]}),
    # output_shape without auto_pad: the odd pixel of padding is cropped from the start
    ((1, 2, 4, 5), (2, 3, 3, 3), {"strides": [2, 2], "output_shape": [8, 10]}),
    ((1, 2, 4, 5), (2, 3, 3, 3), {"strides": [2, 2], "output_shape": [8, 10],
                                  "auto_pad": "SAME_LOWER"}),
])
def test_conv_transpose_values_match_onnxruntime(xs, ws, attrs):
    group = attrs.get("group", 1)
    inputs = [rand(*xs), rand(*ws, seed=1), rand(ws[1] * group, seed=2)]
    np.testing.assert_allclose(evaluate("ConvTranspose", inputs, attrs)[0],
                               ort_run("ConvTranspose", inputs, attrs)[0], rtol=1e-5, atol=1e-5)


@pytest.mark.onnxruntime
def test_conv_transpose_same_ignores_output_padding():
    # The spec: SAME_* pads so that out = in * stride. onnx.shape_inference adds output_padding
    # (9x11 here); onnx's reference evaluator and onnxruntime both give 8x10.
    inputs = [rand(1, 2, 4, 5), rand(2, 3, 3, 3, seed=1)]
    attrs = {"auto_pad": "SAME_LOWER", "strides": [2, 2], "output_padding": [1, 1]}
    assert infer("ConvTranspose", inputs, attrs) == [(1, 3, 8, 10)]
    ours = evaluate("ConvTranspose", inputs, attrs)[0]
    np.testing.assert_allclose(ours, onnx_run("ConvTranspose", inputs, attrs)[0], atol=1e-5)
    np.testing.assert_allclose(ours, ort_run("ConvTranspose", inputs, attrs)[0], atol=1e-5)


@pytest.mark.onnxruntime
@pytest.mark.parametrize("auto_pad", ["SAME_UPPER", "SAME_LOWER"])
def test_conv_transpose_same_with_a_kernel_shorter_than_the_stride(auto_pad):
    # The scatter, 2*(4-1) + 1 = 7 by 3*(5-1) + 2 = 14, falls short of n*s = 8x15: onnxruntime
    # and onnx.shape_inference keep it at 7x14. (onnx's reference evaluator pads it to 8x15.)
    inputs = [rand(1, 2, 4, 5), rand(2, 3, 1, 2, seed=1)]
    attrs = {"strides": [2, 3], "auto_pad": auto_pad}
    assert infer("ConvTranspose", inputs, attrs) == onnx_infer("ConvTranspose", inputs, attrs) == [
        (1, 3, 7, 14)]
    np.testing.assert_allclose(evaluate("ConvTranspose", inputs, attrs)[0],
                               ort_run("ConvTranspose", inputs, attrs)[0], rtol=1e-5, atol=1e-5)


def test_conv_transpose_output_shape_crops_like_the_spec():
    # in 3, kernel 2, stride 2: the full scatter is 6 long. output_shape 5 crops 1 pixel: from
    # the start by default (and SAME_LOWER), from the end with SAME_UPPER.
    x = np.array([1, 2, 3], np.float32).reshape(1, 1, 3)
    w = np.array([1, 10], np.float32).reshape(1, 1, 2)
    full = [1, 10, 2, 20, 3, 30]
    for attrs, expected in [({}, full[1:]), ({"auto_pad": "SAME_LOWER"}, full[1:]),
                            ({"auto_pad": "SAME_UPPER"}, full[:-1])]:
        attrs = {"strides": [2], "output_shape": [5], **attrs}
        np.testing.assert_array_equal(evaluate("ConvTranspose", [x, w], attrs)[0].ravel(),
                                      expected)


@pytest.mark.parametrize("bias", [False, True])
def test_conv_transpose_costs(bias):
    # X = 2x4x3x5, group 2, Cout/group = 3, kernel 3x2: every input element times every tap
    # into 3 channels. Y = 2x6x7x10 (stride 2: 2*(3-1)+3 = 7, 2*(5-1)+2 = 10)
    inputs = [f32(2, 4, 3, 5), f32(4, 3, 3, 2)] + ([f32(6)] if bias else [])
    attrs = {"group": 2, "strides": [2, 2]}
    assert infer("ConvTranspose", inputs, attrs) == [(2, 6, 7, 10)]
    assert cost("ConvTranspose", inputs, attrs) == (
        2 * 4 * 3 * 5 * 3 * 3 * 2, 2 * 6 * 7 * 10 if bias else 0)


def test_conv_transpose_errors():
    x, w = f32(1, 2, 4, 4), f32(2, 3, 3, 3)
    with pytest.raises(ShapeError, match=r"input has 3 channels but the weight is for 2"):
        infer("ConvTranspose", [f32(1, 3, 4, 4), w])
    with pytest.raises(ShapeError, match=r"group=3 must divide input channels 2"):
        infer("ConvTranspose", [x, w], {"group": 3})
    with pytest.raises(ShapeError, match=r"bias shape \[3\] must be \[6\]"):
        infer("ConvTranspose", [x, f32(2, 3, 3, 3), f32(3)], {"group": 2})
    with pytest.raises(ShapeError, match=r"output size 12 on spatial axis 0 is larger than the 9"):
        infer("ConvTranspose", [x, w], {"strides": [2, 2], "output_shape": [12, 9]})
    with pytest.raises(ShapeError, match=r"output size 0 on spatial axis 1: input 4, kernel 3, "
                                         r"stride 1, dilation 1, output_padding 0, "
                                         r"padding \(3, 3\)"):
        infer("ConvTranspose", [x, w], {"pads": [0, 3, 0, 3]})
    with pytest.raises(ShapeError, match=r"attribute output_shape=\[1, 3, 6, 6\] needs 2 values"):
        infer("ConvTranspose", [x, w], {"output_shape": [1, 3, 6, 6]})
    with pytest.raises(ShapeError, match=r"kernel_shape \[2, 2\] does not match weight \[3, 3\]"):
        infer("ConvTranspose", [x, w], {"kernel_shape": [2, 2]})
