"""The Python builder: shapes, parameters and MACs of built networks against the domain formulas,
names and block paths, errors, and that what it emits is plain, valid ONNX.

Every expected number is computed here from the formulas in DOMAIN.md."""

import math

import numpy as np
import onnx
import pytest
from onnx import helper, numpy_helper

import cnngraph
from cnngraph.dtypes import NAME_TO_ONNX
from cnngraph.errors import CnnGraphError, ShapeError
from cnngraph.frontends import builder as nb
from cnngraph.frontends.builder import BuildError, Network, Tensor
from cnngraph.ir import block_paths

# LeNet-5's C3 connection table (LeCun et al. 1998, Table I): C3 map i reads these S2 maps.
C3_TABLE = [
    [0, 1, 2], [1, 2, 3], [2, 3, 4], [3, 4, 5], [0, 4, 5], [0, 1, 5],
    [0, 1, 2, 3], [1, 2, 3, 4], [2, 3, 4, 5], [0, 3, 4, 5], [0, 1, 4, 5], [0, 1, 2, 5],
    [0, 1, 3, 4], [1, 2, 4, 5], [0, 2, 3, 5],
    [0, 1, 2, 3, 4, 5],
]


def conv_params(k, cin, kh, kw=None, groups=1, bias=True):
    """K * (kh * kw * Cin / groups) + K"""
    return k * (kh * (kw or kh) * cin // groups) + (k if bias else 0)


def dense_params(n_in, n_out):
    return n_in * n_out + n_out


def analyze(net, **kw):
    return cnngraph.analyze(net.build(), **kw)


def lenet5():
    """LeNet-5 as the 1998 paper draws it, from the builder alone."""
    net = Network("lenet5")
    x = net.input("x", ("N", 1, 32, 32))
    y = net.conv(x, 6, 5, activation="tanh", name="c1")
    y = net.subsample(y, activation="tanh", name="s2")
    y = net.sparse_conv(y, C3_TABLE, 5, activation="tanh", name="c3")
    y = net.subsample(y, activation="tanh", name="s4")
    y = net.conv(y, 120, 5, activation="tanh", name="c5")
    y = net.dense(y, 84, activation="tanh", name="f6")
    net.output(net.dense(y, 10, name="output"))
    return net


# -- shapes, parameters, MACs --------------------------------------------------------------------
def test_alexnet_conv1():
    net = Network("alexnet")
    x = net.input("x", ("N", 3, 227, 227))
    y = net.conv(x, 96, 11, stride=4, name="conv1")
    assert y.shape == (1, 96, 55, 55)
    net.output(y)
    a = analyze(net)
    conv1 = a.layer("conv1")
    assert conv1.params == conv1.trainable_params == 96 * (11 * 11 * 3) + 96 == 34_944
    assert conv1.macs == 96 * 11 * 11 * 3 * 55 * 55


@pytest.mark.parametrize("size, filters, kernel, stride, padding, out", [
    (32, 64, 3, 1, "valid", 30),  # 32x32x1 through 64 filters 3x3 valid: 30x30x64
    (5, 1, 3, 1, 1, 5),  # one pixel of zero padding keeps 5x5
    (5, 1, 3, 1, "same", 5),
    (224, 8, 7, 2, "same", 112),  # same: ceil(224 / 2)
    (225, 8, 3, 2, "same", 113),  # ceil(225 / 2)
    (28, 4, 3, 1, (1, 1), 28),
    (28, 4, 3, 2, (0, 0, 1, 1), 14),  # ONNX order: begins then ends
])
def test_conv_output_sizes(size, filters, kernel, stride, padding, out):
    net = Network("n")
    x = net.input("x", (1, 1, size, size))
    assert net.conv(x, filters, kernel, stride=stride, padding=padding).shape == (
        1, filters, out, out)


def test_same_padding_is_explicit_at_stride_1_and_auto_pad_otherwise():
    net = Network("n")
    x = net.input("x", (1, 3, 10, 10))
    net.conv(x, 4, 5, padding="same", name="s1")
    net.conv(x, 4, 2, padding="same", name="even")  # the odd pixel at the end
    net.conv(x, 4, 3, stride=2, padding="same", name="s2")
    assert net.nodes["s1"].attrs["pads"] == [2, 2, 2, 2]
    assert net.nodes["even"].attrs["pads"] == [0, 0, 1, 1]
    assert net.nodes["s2"].attrs["auto_pad"] == "SAME_UPPER"


def test_grouped_dilated_and_1d_convs():
    net = Network("n")
    x = net.input("x", (1, 96, 27, 27))
    y = net.conv(x, 256, 5, padding=2, groups=2, name="conv2")  # AlexNet's two-GPU conv2
    d = net.conv(x, 8, 3, dilation=2, name="dilated")
    s = net.input("s", (1, 4, 100))
    t = net.conv(s, 8, 5, stride=2, name="conv1d")
    net.output(y)
    net.output(d)
    net.output(t)
    a = analyze(net)
    assert y.shape == (1, 256, 27, 27)
    assert a.layer("conv2").params == conv_params(256, 96, 5, groups=2) == 307_456
    assert d.shape == (1, 8, 23, 23)  # span 2*(3-1)+1 = 5
    assert t.shape == (1, 8, 48)


def test_depthwise_separable_cost_ratio():
    # Dk x Dk depthwise on M maps, then N pointwise filters, output Dp x Dp
    M, N, Dk, Dp = 32, 64, 3, 16
    net = Network("n")
    x = net.input("x", (1, M, Dp, Dp))
    sep = net.separable_conv(x, N, Dk, padding="same", bias=False, name="sep")
    std = net.conv(x, N, Dk, padding="same", bias=False, name="std")
    net.output(sep)
    net.output(std)
    a = analyze(net)
    sep_macs = a.block("sep").macs
    std_macs = a.layer("std").macs
    assert sep_macs == M * Dp**2 * (Dk**2 + N)
    assert std_macs == N * Dp**2 * Dk**2 * M
    assert sep_macs / std_macs == pytest.approx(1 / N + 1 / Dk**2)
    assert a.block("sep").params == M * Dk * Dk + M * N
    assert [n.op_type for n in net.nodes.values()] == ["Conv", "Conv", "Conv"]
    assert net.nodes["sep/depthwise"].attrs["group"] == M


def test_depthwise_conv_with_multiplier():
    net = Network("n")
    x = net.input("x", (1, 8, 10, 10))
    y = net.depthwise_conv(x, 3, multiplier=2, name="dw")
    net.output(y)
    assert y.shape == (1, 16, 8, 8)
    assert analyze(net).totals.params == conv_params(16, 8, 3, groups=8) == 16 * 9 + 16


def test_lenet5_has_60850_trainable_parameters():
    a = analyze(lenet5())
    assert a.totals.params == a.totals.trainable_params == 60_850
    parts = {
        "c1": a.layer("c1").params, "s2": a.block("s2").params, "c3": a.block("c3").params,
        "s4": a.block("s4").params, "c5": a.layer("c5").params, "f6": a.layer("f6").params,
        "output": a.layer("output").params,
    }
    assert parts == {
        "c1": conv_params(6, 1, 5),  # 156
        "s2": 2 * 6,  # one coefficient and one bias per map
        "c3": sum(len(maps) * 5 * 5 + 1 for maps in C3_TABLE),  # 1,516
        "s4": 2 * 16,
        "c5": conv_params(120, 16, 5),  # 48,120
        "f6": dense_params(120, 84),  # 10,164
        "output": dense_params(84, 10),  # 850: the RBF output counted as 84*10 + 10
    }
    assert parts["c3"] == 1_516 and parts["c5"] == 48_120 and parts["f6"] == 10_164
    shapes = {l.name: l.output_shapes[0] for l in a.layers}
    assert shapes["c1"] == (1, 6, 28, 28)
    assert shapes["s2/bias"] == (1, 6, 14, 14)
    assert shapes["c3/bias"] == (1, 16, 10, 10)
    assert shapes["s4/bias"] == (1, 16, 5, 5)
    assert shapes["c5"] == (1, 120, 1, 1)
    assert shapes["output"] == (1, 10)
    # C3's MACs count only the connected inputs
    c3_macs = sum(l.macs for l in a.layers if l.block == "c3")
    assert c3_macs == sum(len(maps) for maps in C3_TABLE) * 5 * 5 * 10 * 10


def test_lenet5_c3_uses_standard_ops_only():
    net = lenet5()
    ops = {n.op_type for n in net.nodes.values() if n.block == "c3"}
    assert ops == {"Gather", "Conv", "Concat", "Add", "Tanh"}
    # every map reads a different subset: one group each, already in table order, and the
    # group that reads all six maps reads the input directly
    assert "c3/order" not in net.nodes
    assert net.nodes["c3/conv_15"].inputs[0] == "s2/tanh"
    assert net.constants["c3/inputs_0/indices"].value().tolist() == [0, 1, 2]


def test_sparse_conv_groups_identical_subsets_and_restores_table_order():
    net = Network("n")
    x = net.input("x", (1, 4, 9, 9))
    table = [[0, 1], [2, 3], [1, 0], [3], [0, 1, 2, 3]]
    y = net.sparse_conv(x, table, 3, name="sc")
    net.output(y)
    assert y.shape == (1, 5, 7, 7)
    # groups: {0,1} -> maps 0, 2; {2,3} -> 1; {3} -> 3; all -> 4; concat order 0 2 1 3 4
    assert net.nodes["sc/conv_0"].inputs[1] == "sc/conv_0/W"
    assert net.constants["sc/conv_0/W"].shape == (2, 2, 3, 3)
    assert net.constants["sc/order/indices"].value().tolist() == [0, 2, 1, 3, 4]
    a = analyze(net)
    assert a.totals.params == sum(len(m) * 9 + 1 for m in table)


def test_subsample_has_two_parameters_per_map():
    net = Network("n")
    x = net.input("x", ("N", 6, 28, 28))
    y = net.subsample(x, name="s2")
    net.output(y)
    a = analyze(net)
    assert [l.op for l in a.layers] == ["AveragePool", "Mul", "Add"]
    assert a.block("s2").params == a.block("s2").trainable_params == 12
    assert net.constants["s2/scale/W"].shape == (1, 6, 1, 1)
    assert y.shape == (1, 6, 14, 14)


def test_dense_flattens_and_batchnorm_splits_trainable():
    net = Network("n")
    x = net.input("x", ("N", 64, 6, 6))
    b = net.batchnorm(x, name="bn")
    y = net.dense(b, 100, activation="relu", name="fc")
    net.output(y)
    a = analyze(net)
    assert [l.name for l in a.layers] == ["bn", "fc_flatten", "fc", "fc_relu"]
    assert a.layer("fc").params == dense_params(64 * 36, 100)
    assert a.layer("bn").params == 4 * 64
    assert a.layer("bn").trainable_params == 2 * 64
    assert a.totals.non_trainable_params == 2 * 64
    assert a.layer("fc").macs == 64 * 36 * 100


def test_pools_ceil_mode_and_global():
    net = Network("n")
    x = net.input("x", (1, 64, 112, 112))
    m = net.max_pool(x, 3, stride=2, ceil_mode=True, name="pool1")  # GoogLeNet's (torch)
    f = net.max_pool(x, 3, stride=2, name="floor")
    p = net.avg_pool(x, 3, stride=1, padding="same", count_include_pad=True, name="avg")
    g = net.global_avg_pool(x)
    gm = net.global_max_pool(x)
    assert m.shape == (1, 64, 56, 56) and f.shape == (1, 64, 55, 55)
    assert p.shape == x.shape
    assert g.shape == gm.shape == (1, 64, 1, 1)
    assert net.nodes["pool1"].attrs["ceil_mode"] == 1
    assert net.nodes["avg"].attrs["count_include_pad"] == 1


def test_alexnet_tail_layers():
    net = Network("n")
    x = net.input("x", ("N", 96, 55, 55))
    y = net.lrn(x, size=5, alpha=1e-4, beta=0.75, bias=2.0, name="norm1")
    f = net.flatten(net.input("p", ("N", 256, 6, 6)), name="flat")
    d = net.dropout(net.dense(f, 4096, activation="relu", name="fc6"), 0.5, name="drop6")
    s = net.softmax(net.dense(d, 1000, name="fc8"), name="prob")
    net.output(y)
    net.output(s)
    a = analyze(net)
    assert f.shape == (1, 9216) and s.shape == (1, 1000)
    assert a.totals.params == dense_params(9216, 4096) + dense_params(4096, 1000)
    assert net.nodes["norm1"].attrs == {"size": 5, "alpha": 1e-4, "beta": 0.75, "bias": 2.0}
    assert a.layer("drop6").params == 0


@pytest.mark.parametrize("kind, op", [("relu", "Relu"), ("relu6", "Clip"),
                                      ("sigmoid", "Sigmoid"), ("tanh", "Tanh"),
                                      ("leaky_relu", "LeakyRelu"), ("softmax", "Softmax"),
                                      ("hard_swish", "HardSwish")])
def test_activations(kind, op):
    net = Network("n")
    x = net.input("x", (1, 8, 4, 4))
    y = net.activation(x, kind)
    z = net.conv(x, 8, 1, activation=kind, name="c")
    net.output(y)
    net.output(z)
    assert y.name == f"{kind}_1" and z.name == f"c_{kind}"
    assert net.nodes[y.name].op_type == op
    a = analyze(net)
    assert a.totals.params == conv_params(8, 8, 1)  # Clip's bounds are no parameters
    if kind == "relu6":
        assert net.constants["relu6_1/max"].value() == 6


def test_add_multiply_concat_reshape():
    net = Network("n")
    x = net.input("x", (1, 16, 8, 8))
    three = net.add(x, net.relu(x), net.sigmoid(x), name="sum3")
    v = net.reshape(net.global_avg_pool(x), (16,), name="vec")
    scaled = net.multiply(x, v, name="scale")
    scaled2 = net.multiply(v, x, name="scale2")
    cat = net.concat([x, three, scaled], name="cat")
    net.output(cat)
    net.output(scaled2)
    assert net.nodes["sum3"].op_type == "Sum"
    assert v.shape == (1, 16)
    assert scaled.shape == scaled2.shape == (1, 16, 8, 8)
    assert net.nodes["scale_reshape"].op_type == "Reshape"
    assert net.nodes["scale2"].inputs == ("scale2_reshape", "x")
    assert cat.shape == (1, 48, 8, 8)
    analyze(net, batch=4)  # the reshapes keep whatever batch the graph is run with


# -- reusable blocks -----------------------------------------------------------------------------
def inception_params(cin, c1, c3r, c3, c5r, c5, pp):
    return (conv_params(c1, cin, 1) + conv_params(c3r, cin, 1) + conv_params(c3, c3r, 3)
            + conv_params(c5r, cin, 1) + conv_params(c5, c5r, 5) + conv_params(pp, cin, 1))


def test_inception_module():
    net = Network("googlenet")
    x = net.input("x", ("N", 192, 28, 28))
    y = nb.inception(net, x, 64, 96, 128, 16, 32, 32, name="inception_3a")
    z = nb.inception(net, y, 128, 128, 192, 32, 96, 64, name="inception_3b")
    net.output(z)
    assert y.shape == (1, 64 + 128 + 32 + 32, 28, 28)
    assert z.shape == (1, 128 + 192 + 96 + 64, 28, 28)
    a = analyze(net)
    assert a.block("inception_3a").params == inception_params(192, 64, 96, 128, 16, 32, 32)
    assert a.block("inception_3b").params == inception_params(256, 128, 128, 192, 32, 96, 64)
    assert a.block("inception_3a").macs == 28 * 28 * (inception_params(
        192, 64, 96, 128, 16, 32, 32) - (64 + 96 + 128 + 16 + 32 + 32))
    names = [n for n in net.nodes if n.startswith("inception_3a/")]
    assert names[:3] == ["inception_3a/1x1", "inception_3a/1x1_relu", "inception_3a/3x3_reduce"]
    assert names[-1] == "inception_3a/output"
    assert net.nodes["inception_3a/pool"].attrs["pads"] == [1, 1, 1, 1]
    assert net.nodes["inception_3a/pool"].attrs["strides"] == [1, 1]


def bn_params(c):
    return 4 * c


def test_residual_basic_with_and_without_projection():
    net = Network("resnet")
    x = net.input("x", ("N", 64, 56, 56))
    same = nb.residual_basic(net, x, 64, name="layer1.0")
    down = nb.residual_basic(net, same, 128, stride=2, name="layer2.0")
    net.output(down)
    assert same.shape == (1, 64, 56, 56) and down.shape == (1, 128, 28, 28)
    a = analyze(net)
    assert a.block("layer1.0").params == 2 * conv_params(64, 64, 3, bias=False) + 2 * bn_params(64)
    assert a.block("layer2.0").params == (
        conv_params(128, 64, 3, bias=False) + conv_params(128, 128, 3, bias=False)
        + conv_params(128, 64, 1, bias=False) + 3 * bn_params(128))
    assert a.block("layer2.0/downsample").params == 64 * 128 + bn_params(128)
    assert "layer1.0/downsample/conv" not in net.nodes
    assert net.nodes["layer1.0/add"].inputs == ("layer1.0/bn2", "x")
    assert net.nodes["layer2.0/downsample/conv"].attrs["strides"] == [2, 2]
    assert a.block("layer1.0").non_trainable_params == 2 * 2 * 64


def test_residual_bottleneck_puts_the_stride_on_the_3x3():
    net = Network("resnet50")
    x = net.input("x", ("N", 256, 56, 56))
    y = nb.residual_bottleneck(net, x, 128, stride=2, name="layer2.0")
    net.output(y)
    assert y.shape == (1, 512, 28, 28)
    assert net.nodes["layer2.0/conv1"].attrs["strides"] == [1, 1]
    assert net.nodes["layer2.0/conv2"].attrs["strides"] == [2, 2]
    a = analyze(net)
    assert a.totals.params == (
        conv_params(128, 256, 1, bias=False) + conv_params(128, 128, 3, bias=False)
        + conv_params(512, 128, 1, bias=False) + conv_params(512, 256, 1, bias=False)
        + 2 * bn_params(128) + 2 * bn_params(512))


def test_se_block_params():
    C, r = 256, 16
    net = Network("se")
    x = net.input("x", ("N", C, 14, 14))
    y = nb.se_block(net, x, ratio=r, name="se")
    net.output(y)
    assert y.shape == x.shape
    a = analyze(net)
    assert a.block("se").params == 2 * C * C // r + C // r + C
    assert [l.op for l in a.layers] == ["GlobalAveragePool", "Flatten", "Gemm", "Relu", "Gemm",
                                        "Sigmoid", "Reshape", "Mul"]


def test_dense_block_grows_channels_and_transition_halves():
    k, layers, c0 = 32, 6, 64
    net = Network("densenet")
    x = net.input("x", ("N", c0, 56, 56))
    y = nb.dense_block(net, x, layers, k, name="denseblock1")
    t = nb.transition(net, y, y.channels // 2, name="transition1")
    net.output(t)
    assert y.shape == (1, c0 + layers * k, 56, 56)
    assert t.shape == (1, (c0 + layers * k) // 2, 28, 28)
    a = analyze(net)
    expected = sum(bn_params(c0 + i * k) + conv_params(4 * k, c0 + i * k, 1, bias=False)
                   + bn_params(4 * k) + conv_params(k, 4 * k, 3, bias=False)
                   for i in range(layers))
    assert a.block("denseblock1").params == expected
    assert a.block("denseblock1/denselayer3").layers == 7  # bn relu conv bn relu conv concat


def test_mobilenet_units_and_fire():
    net = Network("m")
    x = net.input("x", ("N", 32, 112, 112))
    y = nb.depthwise_separable(net, x, 64, name="dw1")
    z = nb.depthwise_separable(net, y, 128, stride=2, name="dw2")
    a = nb.inverted_residual(net, z, 128, name="ir_add")  # stride 1, same channels: adds
    b = nb.inverted_residual(net, a, 160, stride=2, expansion=1, name="ir_plain")
    f = nb.fire(net, b, 16, 64, 64, name="fire2")
    net.output(f)
    assert y.shape == (1, 64, 112, 112) and z.shape == (1, 128, 56, 56)
    assert a.name == "ir_add/add" and b.shape == (1, 160, 28, 28)
    assert "ir_plain/expand" not in net.nodes
    assert f.shape == (1, 128, 28, 28)
    an = analyze(net)
    assert an.block("dw1").params == 32 * 9 + bn_params(32) + 32 * 64 + bn_params(64)
    assert an.block("ir_add").params == (128 * 768 + bn_params(768) + 768 * 9 + bn_params(768)
                                          + 768 * 128 + bn_params(128))
    assert an.block("fire2").params == (conv_params(16, 160, 1) + conv_params(64, 16, 1)
                                         + conv_params(64, 16, 3))
    assert net.nodes["ir_add/expand_bn_relu6"].op_type == "Clip"


# -- names and block paths -----------------------------------------------------------------------
def test_block_paths_match_onnx_name_scopes():
    net = Network("n")
    x = net.input("x", ("N", 64, 28, 28))
    with net.block("layer1"):
        y = nb.residual_basic(net, x, 128, stride=2, name="layer1.0")
        y = nb.se_block(net, y, name="se")
    y = nb.inception(net, y, 8, 8, 8, 8, 8, 8, name="inception_3a")
    y = net.subsample(y, name="s")
    net.output(y)
    graph = net.build()
    names = list(graph.nodes)
    assert [graph.nodes[n].block for n in names] == block_paths(names)
    a = cnngraph.analyze(graph)
    blocks = [b.name for b in a.blocks]
    for expected in ("layer1", "layer1/layer1.0", "layer1/layer1.0/downsample", "layer1/se",
                     "inception_3a", "s"):
        assert expected in blocks
    assert graph.nodes["layer1/layer1.0/downsample/conv"].block == "layer1/layer1.0/downsample"
    assert a.block("layer1").params == (a.block("layer1/layer1.0").params
                                         + a.block("layer1/se").params)


def test_automatic_names_are_readable_and_unique():
    net = Network("n")
    x = net.input("x", (1, 3, 8, 8))
    y = net.conv(x, 4, 3)
    y = net.relu(y)
    y = net.conv(y, 4, 3, activation="relu")
    with net.block():
        z = net.relu(y)
    assert [n for n in net.nodes] == ["conv_1", "relu_1", "conv_2", "conv_2_relu",
                                      "block_1/relu_2"]
    assert z.name == "block_1/relu_2"
    net.relu(y, name="relu_3")
    assert net.relu(y).name == "relu_4"  # skips the name taken explicitly


def test_constants_are_named_after_their_node_and_carry_no_weights():
    net = lenet5()
    c = net.constants
    assert c["c1/W"].shape == (6, 1, 5, 5) and c["c1/B"].shape == (6,)
    assert c["f6/W"].shape == (84, 120)  # Gemm with transB=1
    assert all(c[n].loader is None for n in ("c1/W", "c1/B", "s2/scale/W", "c3/bias/B"))
    assert c["c3/inputs_0/indices"].dtype == "int64"
    bn = Network("b")
    bn.batchnorm(bn.input("x", (1, 3, 4, 4)), name="bn")
    assert list(bn.constants) == ["bn/scale", "bn/B", "bn/mean", "bn/var"]


def test_build_keeps_the_symbolic_batch():
    graph = lenet5().build()
    assert graph.inputs[0].shape == ("N", 1, 32, 32)
    assert graph.source == "<builder:lenet5>" and graph.opset == 18
    one = cnngraph.analyze(graph)
    eight = cnngraph.analyze(graph, batch=8)
    assert eight.totals.macs == 8 * one.totals.macs
    assert eight.totals.params == one.totals.params
    assert eight.layer("output").output_shapes == ((8, 10),)


# -- errors --------------------------------------------------------------------------------------
def test_shape_error_names_the_layer_and_carries_its_origin():
    net = Network("n")
    x = net.input("x", (1, 1, 4, 4))
    with net.at(("net.cnn", 7, 3)):
        with pytest.raises(ShapeError) as e:
            net.conv(x, 6, 5, name="c1")
    message = str(e.value)
    assert "'c1'" in message and "kernel 5" in message and "\n" not in message
    assert e.value.layer == "c1" and e.value.origin == ("net.cnn", 7, 3)
    assert len(net) == 0 and not net.constants  # the failed layer left nothing behind


@pytest.mark.parametrize("call, words", [
    (lambda net, x: net.conv(x, 0, 3, name="bad"), "filters must be a positive int"),
    (lambda net, x: net.conv(x, 4, 3, padding="full", name="bad"), "padding 'full'"),
    (lambda net, x: net.conv(x, 4, 3, padding=-1, name="bad"), "must not be negative"),
    (lambda net, x: net.conv(x, 4, (3, 3, 3), name="bad"), "kernel must be an int or 2 ints"),
    (lambda net, x: net.conv(x, 4, 3, groups=2, name="bad"), "groups=2 must divide"),
    (lambda net, x: net.conv(x, 4, 3, activation="swish", name="bad"), "activation 'swish'"),
    (lambda net, x: net.conv(x, 4, 3, bias="yes", name="bad"), "bias must be True or False"),
    (lambda net, x: net.dropout(x, 1.5, name="bad"), "rate must be in [0, 1), got 1.5"),
    (lambda net, x: net.sparse_conv(x, [[0, 3]], 3, name="bad"), "reads input map 3"),
    (lambda net, x: net.sparse_conv(x, [[0, 0]], 3, name="bad"), "lists an input map twice"),
    (lambda net, x: net.add(x, name="bad"), "at least two inputs"),
    (lambda net, x: net.concat([], name="bad"), "non-empty list"),
    (lambda net, x: net.reshape(x, (0, 5), name="bad"), "positive ints"),
    (lambda net, x: net.relu("x", name="bad"), "must be a Tensor"),
    (lambda net, x: net.relu(Tensor("y", (1, 3)), name="bad"), "not a tensor of network 'n'"),
    (lambda net, x: net.max_pool(net.flatten(x), 2, name="bad"), "rank >= 3"),
    (lambda net, x: net.dense(net.input("v", (4,)), 2, name="bad"), "rank >= 2"),
])
def test_bad_arguments_raise_one_line_naming_the_layer(call, words):
    net = Network("n")
    x = net.input("x", (1, 3, 8, 8))
    with pytest.raises(CnnGraphError) as e:
        call(net, x)
    message = str(e.value)
    assert words in message, message
    assert "\n" not in message
    assert "'bad'" in message
    assert e.value.layer == "bad"


def test_op_rule_errors_from_merges():
    net = Network("n")
    a = net.input("a", (1, 3, 8, 8))
    b = net.input("b", (1, 4, 8, 8))
    with pytest.raises(ShapeError, match="node 'res' \\(Add\\): cannot broadcast"):
        net.add(a, b, name="res")
    with pytest.raises(ShapeError, match="node 'cat' \\(Concat\\)"):
        net.concat([a, net.max_pool(b, 2)], name="cat")


def test_names_must_be_unique():
    net = Network("n")
    x = net.input("x", (1, 3, 8, 8))
    net.conv(x, 4, 3, activation="relu", name="conv1")
    with pytest.raises(BuildError, match="layer 'conv1' \\(relu\\): the name is already used"):
        net.relu(x, name="conv1")
    with pytest.raises(BuildError, match="'conv1_relu'"):  # a helper node's name
        net.relu(x, name="conv1_relu")
    with pytest.raises(BuildError, match="block 'conv1'"):
        with net.block("conv1"):
            pass
    with pytest.raises(BuildError, match="contains '/'"):
        net.relu(x, name="a/b")
    with pytest.raises(BuildError, match="input name 'x' is already used"):
        net.input("x", (1, 3))
    with net.block("stem"):
        net.relu(x, name="r")
    with pytest.raises(BuildError, match="block 'stem'.*already used by a block"):
        with net.block("stem"):
            pass
    with pytest.raises(BuildError, match="layer 'stem' \\(relu\\)"):
        net.relu(x, name="stem")
    with pytest.raises(BuildError, match="already used"):
        nb.inception(net, x, 4, 4, 4, 4, 4, 4, name="stem")


def test_a_failing_block_leaves_the_network_unchanged():
    net = Network("n")
    x = net.input("x", (1, 8, 8, 8))
    before = (dict(net.nodes), dict(net.constants))
    with pytest.raises(BuildError, match="block 'se': 8 channels / ratio 16 leaves no hidden"):
        nb.se_block(net, x, ratio=16, name="se")
    net.relu(x, name="kept")
    # fails at its second layer, after norm1 and its ReLU were added
    with pytest.raises(BuildError, match="layer 'db/denselayer1/conv1' \\(conv\\): filters"):
        nb.dense_block(net, x, 2, 0, name="db")
    assert "kept" in net.nodes  # layers outside the failed block stay
    assert ({k: v for k, v in net.nodes.items() if k != "kept"}, dict(net.constants)) == before
    y = nb.se_block(net, x, ratio=4, name="se")  # the names are free again
    assert y.name == "se/scale"


def test_max_nodes_limit():
    net = Network("n", max_nodes=10)
    x = net.input("x", (1, 4))
    with pytest.raises(BuildError, match="already has 10 nodes, its max_nodes limit"):
        for _ in range(100):
            x = net.relu(x)
    assert len(net) == 10
    with pytest.raises(BuildError, match="max_nodes must be a positive int"):
        Network("n", max_nodes=0)


def test_build_needs_inputs_and_outputs():
    net = Network("n")
    with pytest.raises(BuildError, match="no inputs"):
        net.build()
    x = net.input("x", ("N", 3))
    with pytest.raises(BuildError, match="no outputs"):
        net.build()
    net.output(x)
    with pytest.raises(BuildError, match="already an output"):
        net.output(x)
    with pytest.raises(BuildError, match="shape"):
        net.input("y", (1, "H", 3))


def test_origins_are_recorded_per_node():
    net = Network("n")
    x = net.input("x", (1, 3, 8, 8))
    with net.at(("m.cnn", 2, 1)):
        y = net.conv(x, 4, 3, activation="relu", name="c")
    with net.at(("m.cnn", 3, 1)):
        nb.fire(net, y, 2, 4, 4, name="fire")
    net.relu(y, name="plain")
    assert net.origins["c"] == net.origins["c_relu"] == ("m.cnn", 2, 1)
    assert net.origins["fire/concat"] == ("m.cnn", 3, 1)
    assert "plain" not in net.origins


def test_vocabulary_lists_the_api():
    for name in nb.LAYERS:
        assert callable(getattr(Network, name)), name
    for name, fn in nb.BLOCKS.items():
        assert fn.__name__ == name
    assert cnngraph.Network is Network


# -- what the builder emits is plain, valid ONNX ------------------------------------------------
# A test oracle, not an exporter: weights are random, just enough for onnx and onnxruntime.
def to_onnx(graph, seed=0):
    rng = np.random.default_rng(seed)
    inits = []
    for c in graph.constants.values():
        value = c.value()
        if value is None:
            value = rng.normal(0, 0.1, c.shape).astype(c.dtype)
            if c.name.endswith("/var"):
                value = np.abs(value) + 1
        inits.append(numpy_helper.from_array(np.asarray(value, c.dtype), c.name))
    nodes = [helper.make_node(n.op_type, list(n.inputs), list(n.outputs), name=n.name,
                              **dict(n.attrs)) for n in graph.node_list()]
    inputs = [helper.make_tensor_value_info(t.name, NAME_TO_ONNX[t.dtype], t.shape)
              for t in graph.inputs]
    types = cnngraph.analyze(graph).shapes.types
    outputs = [helper.make_tensor_value_info(o, onnx.TensorProto.FLOAT,
                                             ("N",) + types[o].shape[1:])
               for o in graph.outputs]
    g = helper.make_graph(nodes, graph.name, inputs, outputs, inits)
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 18)])


def zoo_of_layers():
    """One network that uses every layer and every block."""
    net = Network("everything")
    x = net.input("x", ("N", 3, 32, 32))
    y = net.conv(x, 16, 3, padding="same", activation="relu6", name="stem")
    y = net.lrn(y, bias=2.0)
    y = nb.inception(net, y, 8, 8, 8, 4, 8, 8, name="inception_3a")
    y = nb.residual_basic(net, y, 32, stride=2, name="res1")
    y = nb.residual_bottleneck(net, y, 8, name="res2")
    y = nb.se_block(net, y, ratio=8, name="se")
    y = nb.depthwise_separable(net, y, 32, name="dws")
    y = nb.inverted_residual(net, y, 32, name="ir")
    y = nb.dense_block(net, y, 2, 8, name="db")
    y = nb.transition(net, y, 24, name="tr")
    y = nb.fire(net, y, 8, 12, 12, name="fire")
    y = net.separable_conv(y, 24, 3, stride=2, padding="same", activation="relu", name="sep")
    y = net.sparse_conv(y, [[0, 1], [2, 3], [0, 1], list(range(24))], 3, padding=1,
                        activation="sigmoid", name="sparse")
    y = net.subsample(y, activation="tanh", name="sub")
    a = net.avg_pool(y, 2, stride=1, padding="same", name="avg")
    m = net.max_pool(y, 2, stride=1, ceil_mode=True, name="mx")
    y = net.add(a, m, net.activation(a, "leaky_relu"), name="sum")
    g = net.global_max_pool(y)
    v = net.reshape(g, (-1,), name="vec")
    y = net.multiply(y, v, name="scale")
    y = net.dropout(net.flatten(y), 0.3)
    y = net.dense(y, 10, activation="hard_sigmoid")
    net.output(net.softmax(y, name="prob"))
    return net


def test_every_node_is_valid_onnx_with_the_same_shapes():
    net = zoo_of_layers()
    graph = net.build()
    model = to_onnx(graph)
    onnx.checker.check_model(model, full_check=True)  # strict shape inference too
    inferred = onnx.shape_inference.infer_shapes(model, strict_mode=True)
    theirs = {vi.name: tuple(d.dim_value if d.HasField("dim_value") else d.dim_param
                             for d in vi.type.tensor_type.shape.dim)
              for vi in inferred.graph.value_info}
    a = cnngraph.analyze(graph)
    for lay in a.layers:
        if lay.name in theirs:
            assert theirs[lay.name][1:] == lay.output_shapes[0][1:], lay.name


@pytest.mark.onnxruntime
def test_onnxruntime_runs_it_and_sparse_conv_equals_a_masked_conv():
    ort = pytest.importorskip("onnxruntime")
    model = to_onnx(zoo_of_layers().build())
    session = ort.InferenceSession(model.SerializeToString())
    (prob,) = session.run(None, {"x": np.ones((2, 3, 32, 32), np.float32)})
    assert prob.shape == (2, 10) and np.allclose(prob.sum(1), 1, atol=1e-5)

    # LeNet's C3 computed by the builder's ops = one dense conv whose weights are zero where
    # the table has no connection
    net = Network("c3")
    x = net.input("x", (1, 6, 14, 14))
    net.output(net.sparse_conv(x, C3_TABLE, 5, name="c3"))
    graph = net.build()
    model = to_onnx(graph, seed=1)
    weights = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
    full = np.zeros((16, 6, 5, 5), np.float32)
    groups = {}
    for i, maps in enumerate(C3_TABLE):
        groups.setdefault(tuple(maps), []).append(i)
    for g, (maps, outs) in enumerate(groups.items()):
        for j, o in enumerate(outs):
            full[o, list(maps)] = weights[f"c3/conv_{g}/W"][j]
    bias = weights["c3/bias/B"].reshape(16)
    data = np.random.default_rng(2).normal(size=(1, 6, 14, 14)).astype(np.float32)
    (got,) = ort.InferenceSession(model.SerializeToString()).run(None, {"x": data})
    from cnngraph.ops.conv import conv_reference
    want = conv_reference(data, full, bias, (1, 1), (0, 0, 0, 0), (1, 1), 1)
    assert np.allclose(got, want, atol=1e-4)


def test_big_networks_build_quickly():
    net = Network("deep")
    x = net.input("x", ("N", 16, 8, 8))
    for i in range(300):
        x = nb.residual_basic(net, x, 16, name=f"unit{i}")
    net.output(x)
    assert len(net) == 300 * 7
    assert math.isclose(analyze(net).totals.params,
                        300 * (2 * conv_params(16, 16, 3, bias=False) + 2 * bn_params(16)))
