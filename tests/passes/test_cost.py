"""Parameter counting rules and per-layer costs on small hand-built graphs.

Every expected number is computed here from the domain formulas."""

import numpy as np
import pytest
from onnx import TensorProto, helper, numpy_helper

import cnngraph
from cnngraph.frontends import from_model


def model(nodes, inputs, outputs, inits=(), opset=13):
    graph = helper.make_graph(nodes, "g", inputs, outputs, list(inits))
    m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    return from_model(m, source="test.onnx")


def vi(name, shape, dtype=TensorProto.FLOAT):
    return helper.make_tensor_value_info(name, dtype, shape)


def init(name, array):
    return numpy_helper.from_array(np.asarray(array), name)


def ones(*shape):
    return np.ones(shape, np.float32)


def test_conv_params_macs_and_bias_flops():
    # AlexNet conv1 at 227: 96 filters 11x11 stride 4 -> 55x55x96, 34,944 params
    nodes = [helper.make_node("Conv", ["x", "w", "b"], ["y"], name="conv1", strides=[4, 4])]
    a = cnngraph.analyze(model(nodes, [vi("x", (1, 3, 227, 227))], [vi("y", None)],
                               [init("w", ones(96, 3, 11, 11)), init("b", ones(96))]))
    (conv,) = a.layers
    assert conv.output_shapes == ((1, 96, 55, 55),)
    assert conv.params == conv.trainable_params == 96 * (11 * 11 * 3) + 96 == 34_944
    assert conv.macs == 96 * (11 * 11 * 3) * 55 * 55
    assert conv.other_flops == 96 * 55 * 55  # one bias add per output element
    assert conv.flops == 2 * conv.macs + conv.other_flops
    assert conv.activation_bytes == 96 * 55 * 55 * 4


def test_depthwise_separable_costs_match_the_formula():
    # Dk=3 depthwise on M=32 maps, then N=64 pointwise filters, output Dp=16
    M, N, Dk, Dp = 32, 64, 3, 16
    nodes = [helper.make_node("Conv", ["x", "dw"], ["d"], name="dw", group=M, pads=[1] * 4),
             helper.make_node("Conv", ["d", "pw"], ["y"], name="pw")]
    a = cnngraph.analyze(model(nodes, [vi("x", (1, M, Dp, Dp))], [vi("y", None)],
                               [init("dw", ones(M, 1, Dk, Dk)), init("pw", ones(N, M, 1, 1))]))
    assert a.layers[0].params == M * Dk * Dk
    assert a.totals.macs == M * Dp**2 * (Dk**2 + N)
    standard = N * Dp**2 * Dk**2 * M
    assert a.totals.macs / standard == pytest.approx(1 / N + 1 / Dk**2)


def test_batchnorm_running_stats_are_non_trainable():
    c = 8
    nodes = [helper.make_node("BatchNormalization", ["x", "s", "b", "m", "v"], ["y"], name="bn")]
    a = cnngraph.analyze(model(nodes, [vi("x", (1, c, 4, 4))], [vi("y", None)],
                               [init(n, ones(c)) for n in "sbmv"]))
    assert (a.totals.trainable_params, a.totals.non_trainable_params) == (2 * c, 2 * c)


def test_shared_weight_counts_once():
    nodes = [helper.make_node("Conv", ["x", "w"], ["a"], name="c1", pads=[1] * 4),
             helper.make_node("Conv", ["a", "w"], ["y"], name="c2", pads=[1] * 4)]
    a = cnngraph.analyze(model(nodes, [vi("x", (1, 4, 6, 6))], [vi("y", None)],
                               [init("w", ones(4, 4, 3, 3))]))
    assert [l.params for l in a.layers] == [4 * 4 * 9, 0]
    assert a.costs.shared_params == {"w": ["c1", "c2"]}
    assert a.layers[1].macs == a.layers[0].macs  # sharing changes params, not compute


def test_weights_through_identity_transpose_and_constant_subgraphs():
    # w -> Identity -> c1; the same w -> Transpose -> Transpose -> c2: one parameter.
    # A second weight made by ConstantOfShape of a shape initializer, Reshape'd by a Shape ->
    # Gather -> Concat chain on static shapes.
    nodes = [
        helper.make_node("Identity", ["w"], ["w_id"], name="id"),
        helper.make_node("Transpose", ["w"], ["wt"], name="t1", perm=[1, 0, 2, 3]),
        helper.make_node("Transpose", ["wt"], ["wtt"], name="t2", perm=[1, 0, 2, 3]),
        helper.make_node("Conv", ["x", "w_id"], ["a"], name="c1", pads=[1] * 4),
        helper.make_node("Conv", ["a", "wtt"], ["b"], name="c2", pads=[1] * 4),
        helper.make_node("ConstantOfShape", ["flat_shape"], ["flat"], name="cos",
                         value=helper.make_tensor("v", TensorProto.FLOAT, [1], [0.5])),
        helper.make_node("Shape", ["w"], ["wshape"], name="shape"),
        helper.make_node("Gather", ["wshape", "idx"], ["k"], name="gather", axis=0),
        helper.make_node("Concat", ["k", "rest"], ["w2shape"], name="cat", axis=0),
        helper.make_node("Reshape", ["flat", "w2shape"], ["w2"], name="reshape"),
        helper.make_node("Conv", ["b", "w2"], ["y"], name="c3"),
    ]
    inits = [init("w", ones(4, 4, 3, 3)), init("flat_shape", np.array([4 * 4], np.int64)),
             init("idx", np.array([0], np.int64)), init("rest", np.array([4, 1, 1], np.int64))]
    a = cnngraph.analyze(model(nodes, [vi("x", (1, 4, 6, 6))], [vi("y", None)], inits))
    assert [l.name for l in a.layers] == ["c1", "c2", "c3"]
    assert [l.params for l in a.layers] == [144, 0, 16]
    assert len(a.shapes.folded) == 8


def test_scalars_integers_and_operator_settings_are_not_parameters():
    nodes = [
        helper.make_node("Div", ["x", "scale"], ["a"], name="div"),  # scalar constant
        helper.make_node("Resize", ["a", "", "scales"], ["b"], name="up", mode="nearest"),
        helper.make_node("Clip", ["b", "lo", "hi"], ["c"], name="clip"),
        helper.make_node("Reshape", ["c", "shape"], ["y"], name="flat"),
    ]
    inits = [init("scale", np.array(255.0, np.float32)),
             init("scales", np.array([1, 1, 2, 2], np.float32)),
             init("lo", np.array(0.0, np.float32)), init("hi", np.array(6.0, np.float32)),
             init("shape", np.array([1, -1], np.int64))]
    a = cnngraph.analyze(model(nodes, [vi("x", (1, 3, 4, 4))], [vi("y", None)], inits))
    assert a.totals.params == 0
    assert a.layers[-1].output_shapes == ((1, 3 * 8 * 8),)


def test_gemm_and_blocks():
    nodes = [helper.make_node("Flatten", ["x"], ["f"], name="/head/flatten/Flatten"),
             helper.make_node("Gemm", ["f", "w", "b"], ["y"], name="/head/fc/Gemm", transB=1)]
    a = cnngraph.analyze(model(nodes, [vi("x", (2, 16, 2, 2))], [vi("y", None)],
                               [init("w", ones(10, 64)), init("b", ones(10))]))
    fc = a.layers[1]
    assert fc.block == "head"
    assert fc.params == 64 * 10 + 10
    assert fc.macs == 2 * 64 * 10  # batch 2
    (block,) = a.blocks
    assert (block.name, block.params, block.macs, block.layers) == ("head", 650, 1280, 2)


def test_dtype_sets_byte_counts_but_not_integer_tensors():
    nodes = [helper.make_node("Relu", ["x"], ["y"], name="r")]
    g = model(nodes, [vi("x", (1, 8, 4, 4))], [vi("y", None)])
    for dtype, size in (("float32", 4), ("float16", 2), ("bfloat16", 2), ("int8", 1)):
        a = cnngraph.analyze(g, dtype=dtype)
        assert a.layers[0].activation_bytes == 8 * 4 * 4 * size
    with pytest.raises(cnngraph.errors.CnnGraphError, match="dtype 'float64'"):
        cnngraph.analyze(g, dtype="float64")


def test_single_element_weights_count_but_single_operator_constants_do_not():
    # a one-unit dense layer's bias (shape (1,)) is a parameter; x / 255 is not
    nodes = [helper.make_node("Div", ["x", "k"], ["a"], name="norm"),
             helper.make_node("Gemm", ["a", "w", "b"], ["y"], name="fc", transB=1)]
    a = cnngraph.analyze(model(nodes, [vi("x", (1, 8))], [vi("y", None)],
                               [init("k", np.array([255.0], np.float32)),
                                init("w", ones(1, 8)), init("b", ones(1))]))
    assert [l.params for l in a.layers] == [0, 8 + 1]
