"""The text DSL: networks written in it equal the builder's, its statement forms, and every
error message (exact position, caret and wording), through the API and the CLI.

Expected numbers come from the formulas in DOMAIN.md or from the same network built with the
builder."""

import json
import os
import re
import time

import pytest

import cnngraph
from cnngraph.cli import main
from cnngraph.errors import CnnGraphError, LoadError
from cnngraph.frontends import builder as nb
from cnngraph.frontends import dsl
from cnngraph.frontends.builder import Network
from cnngraph.frontends.dsl import DslError, compile_dsl, load_dsl, parse_dsl
from cnngraph.ir import block_paths
from tests.frontends.test_builder import C3_TABLE, conv_params, lenet5

DOCS = os.path.join(os.path.dirname(__file__), "..", "..", "docs", "dsl.md")

LENET5 = """\
# LeNet-5 (LeCun et al. 1998)
network lenet5
input x: Nx1x32x32

c1 = conv(6, 5, activation=tanh)      # 28x28x6
s2 = subsample(activation=tanh)       # 14x14x6, 2 trainable parameters per map
c3 = sparse_conv(TABLE, 5, activation=tanh)
s4 = subsample(activation=tanh)
c5 = conv(120, 5, activation=tanh)
f6 = dense(84, activation=tanh)
output = dense(10)
""".replace("TABLE", repr(C3_TABLE))

INCEPTION = """\
block inception(c1, r3, c3, r5, c5, pp) {
  b1 = conv(in, c1, 1, activation=relu)
  r = conv(in, r3, 1, activation=relu)
  b2 = conv(r, c3, 3, padding=same, activation=relu)
  r5x5 = conv(in, r5, 1, activation=relu)
  b3 = conv(r5x5, c5, 5, padding=same, activation=relu)
  p = max_pool(in, 3, stride=1, padding=same)
  b4 = conv(pp, 1, activation=relu)
  concat([b1, b2, b3, b4])
}
"""


def analyze(graph, **kw):
    return cnngraph.analyze(graph, **kw)


def same_graph(g, h):
    """Node for node: names, ops, attributes, inputs, blocks; constants' shapes; outputs."""
    assert list(g.nodes) == list(h.nodes)
    for name, node in g.nodes.items():
        other = h.nodes[name]
        assert (node.op_type, dict(node.attrs), node.inputs, node.outputs, node.block) == (
            other.op_type, dict(other.attrs), other.inputs, other.outputs, other.block), name
    assert {c.name: c.shape for c in g.constants.values()} == {
        c.name: c.shape for c in h.constants.values()}
    assert g.outputs == h.outputs
    assert [(t.name, t.shape) for t in g.inputs] == [(t.name, t.shape) for t in h.inputs]


def error(text, filename="t.cnn"):
    with pytest.raises(DslError) as info:
        parse_dsl(text, filename)
    return info.value


# -- networks equal the builder's ------------------------------------------------------------
def test_lenet5_equals_the_builder_lenet5():
    g = parse_dsl(LENET5, "lenet5.cnn")
    built = lenet5().build()
    same_graph(g, built)
    a, b = analyze(g), analyze(built)
    assert a.totals.params == a.totals.trainable_params == 60_850
    assert [(l.name, l.output_shapes, l.params, l.macs) for l in a.layers] == [
        (l.name, l.output_shapes, l.params, l.macs) for l in b.layers]
    shapes = {l.name: l.output_shapes[0] for l in a.layers}
    assert shapes["c1"] == (1, 6, 28, 28) and shapes["s4/bias"] == (1, 16, 5, 5)
    assert shapes["c5"] == (1, 120, 1, 1) and shapes["output"] == (1, 10)
    assert g.name == "lenet5" and g.source == "lenet5.cnn"
    assert g.inputs[0].shape == ("N", 1, 32, 32)


def test_inception_block_defined_in_the_dsl_gives_the_formulas_params_and_channels():
    text = INCEPTION + """
input x: Nx192x28x28
inception_3a = inception(64, 96, 128, 16, 32, 32)
inception_3b = inception(128, 128, 192, 32, 96, 64)
"""
    g = parse_dsl(text)
    a = analyze(g)

    def formula(cin, c1, r3, c3, r5, c5, pp):
        return (conv_params(c1, cin, 1) + conv_params(r3, cin, 1) + conv_params(c3, r3, 3)
                + conv_params(r5, cin, 1) + conv_params(c5, r5, 5) + conv_params(pp, cin, 1))

    assert a.block("inception_3a").params == formula(192, 64, 96, 128, 16, 32, 32) == 163_696
    assert a.block("inception_3b").params == formula(256, 128, 128, 192, 32, 96, 64)
    out_a = [l for l in a.layers if l.block == "inception_3a"][-1]
    assert out_a.output_shapes[0] == (1, 64 + 128 + 32 + 32, 28, 28)
    assert a.layer(g.outputs[0]).output_shapes[0] == (1, 128 + 192 + 96 + 64, 28, 28)
    # chaining: 3b reads 3a's output; the call's name scopes the body's names
    assert g.nodes["inception_3b/b1"].inputs[0] == out_a.name == "inception_3a/concat_1"
    assert g.nodes["inception_3a/b4"].inputs[0] == "inception_3a/p"
    # the same numbers as the builder's own inception block
    net = Network("n")
    y = nb.inception(net, net.input("x", ("N", 192, 28, 28)), 64, 96, 128, 16, 32, 32,
                     name="inception_3a")
    net.output(y)
    ref = analyze(net.build()).block("inception_3a")
    assert (ref.params, ref.macs) == (a.block("inception_3a").params,
                                     a.block("inception_3a").macs)


def test_built_in_blocks_are_called_like_layers():
    g = parse_dsl("""
input x: Nx192x28x28
inception_3a = inception(64, 96, 128, 16, 32, 32)
se = se_block(ratio=16)
fire(16, 64, 64)
""")
    net = Network("network")
    y = nb.inception(net, net.input("x", ("N", 192, 28, 28)), 64, 96, 128, 16, 32, 32,
                     name="inception_3a")
    y = nb.se_block(net, y, ratio=16, name="se")
    net.output(nb.fire(net, y, 16, 64, 64))
    same_graph(g, net.build())


# -- repetition and scopes ------------------------------------------------------------------
RESNET_STAGES = """
input x: Nx64x56x56
layer1 = 2 x residual_basic(64)
layer2 {
  residual_basic(128, stride=2)   # layer2.0
  3 x residual_basic(128)         # layer2.1 .. layer2.3
}
"""


def test_repetition_and_scopes_make_torchvision_block_paths():
    g = parse_dsl(RESNET_STAGES)
    names = list(g.nodes)
    assert [g.nodes[n].block for n in names] == block_paths(names)
    blocks = {n.block for n in g.nodes.values()}
    assert blocks == {"layer1/layer1.0", "layer1/layer1.1", "layer2/layer2.0",
                      "layer2/layer2.0/downsample", "layer2/layer2.1", "layer2/layer2.2",
                      "layer2/layer2.3"}
    assert "layer2/layer2.0/conv1" in g.nodes
    # the same as the builder's blocks and names
    net = Network("network")
    y = net.input("x", ("N", 64, 56, 56))
    with net.block("layer1"):
        for i in range(2):
            y = nb.residual_basic(net, y, 64, name=f"layer1.{i}")
    with net.block("layer2"):
        y = nb.residual_basic(net, y, 128, stride=2, name="layer2.0")
        for i in range(1, 4):
            y = nb.residual_basic(net, y, 128, name=f"layer2.{i}")
    net.output(y)
    same_graph(g, net.build())
    a = analyze(g)
    assert a.block("layer2").params == sum(a.block(f"layer2/layer2.{i}").params
                                            for i in range(4))


def test_unnamed_blocks_outside_a_scope_get_automatic_names_and_layers_keep_theirs():
    g = parse_dsl("""
block unit(c) {
  conv(c, 3, padding=same)
}
input x: 1x8x8x8
residual_basic(8)
2 x unit(8)
stage {
  unit(8)            # stage.0
  conv(8, 1)         # a layer: an automatic name inside the scope
  u = unit(8)        # named: keeps its name, takes no number
  unit(8)            # stage.1
}
""")
    assert [n for n in g.nodes if not n.startswith("residual_1/")] == [
        "unit_1/conv_1", "unit_2/conv_2", "stage/stage.0/conv_3", "stage/conv_4",
        "stage/u/conv_5", "stage/stage.1/conv_6"]
    assert "residual_1/conv1" in g.nodes


def test_repetition_counts_from_parameters_and_expressions():
    g = parse_dsl("""
block stage(c, n=2, first_stride=1 + 1) {
  residual_bottleneck(c, stride=first_stride)
  (n - 1) x residual_bottleneck(c)
}
input x: 1x64x56x56
layer1 = stage(64, 3, 1)
layer2 = stage(c=128, n=4)
layer3 = stage(256, n=1)           # 0 copies of the rest
""")
    blocks = sorted({n.block.split("/")[1] for n in g.nodes.values() if "/" in n.block})
    assert blocks == [f"bottleneck_{i}" for i in range(1, 9)]  # 3 + 4 + 1 units
    assert g.nodes["layer2/bottleneck_4/conv2"].attrs["strides"] == [2, 2]  # the default
    assert g.nodes["layer1/bottleneck_1/conv2"].attrs["strides"] == [1, 1]
    assert len({n.block.split("/")[1] for n in g.nodes.values()
                if n.block.startswith("layer3/")}) == 1


def test_a_named_repetition_is_a_scope_around_the_copies():
    same_graph(parse_dsl("input x: Nx64x56x56\nlayer1 = 3 x residual_basic(64)"),
               parse_dsl("input x: Nx64x56x56\nlayer1 {\n  3 x residual_basic(64)\n}"))
    g = parse_dsl("input x: 1x4x8x8\nconvs = 3 x conv(4, 3, padding=1)")
    assert list(g.nodes) == ["convs/conv_1", "convs/conv_2", "convs/conv_3"]


def test_scopes_nest_see_outward_and_keep_their_names_inside():
    g = parse_dsl("""
input x: 1x4x8x8
a = conv(4, 1)
features {
  stage1 {
    b = conv(a, 4, 1)      # an outer name
    c = add(b, a)
  }
}
y = conv(features, 2, 1)   # the scope's name is its output
""")
    assert g.nodes["features/stage1/b"].inputs[0] == "a"
    assert g.nodes["features/stage1/c"].inputs == ("features/stage1/b", "a")
    assert g.nodes["y"].inputs[0] == "features/stage1/c"
    e = error("input x: 1x4x8x8\ns {\n  b = conv(4, 1)\n}\nconv(b, 4, 1)\n")
    assert e.message == "undefined name 'b'" and (e.line, e.column) == (5, 6)


# -- chaining and references -------------------------------------------------------------------
def test_chaining_and_explicit_references():
    g = parse_dsl("""
input x: 1x8x16x16
stem = conv(8, 3, padding=same, activation=relu)
left = conv(16, 1)               # reads stem
right = conv(stem, 16, 3, padding=same)
merged = add(left, right, activation=relu)
both = concat([left, right, merged])
r = conv(8, 1)
res = add(stem)                  # the previous output (r) + stem
squeeze = global_avg_pool()
gate = sigmoid()
scaled = multiply(res, gate)
times = multiply(gate)           # gate * gate
output scaled, both
""")
    n = g.nodes
    assert n["stem"].inputs[0] == "x"
    assert n["left"].inputs[0] == "stem_relu" and n["right"].inputs[0] == "stem_relu"
    assert n["merged"].inputs == ("left", "right")
    assert n["both"].inputs == ("left", "right", "merged_relu")
    assert n["res"].inputs == ("r", "stem_relu")
    assert n["scaled"].op_type == "Mul" and n["scaled"].inputs[0] == "res"
    assert n["times"].inputs == ("scaled", "gate")  # the previous output first
    assert g.outputs == ["scaled", "both"]


def test_calls_do_not_nest():
    e = error("input x: 1x8x4x4\nsigmoid(global_avg_pool())\n")
    assert (e.message, e.line, e.column) == (
        "calls do not nest: put global_avg_pool(...) on its own line before this one", 2, 9)


def test_values_strings_booleans_floats_lists_and_negatives():
    g = parse_dsl("""
input x: 1x4x9x9
a = conv(4, [3, 1], stride=[1, 2], padding=[1, 0], bias=false, activation="relu6")
b = lrn(size=3, alpha=1e-4, beta=0.75, bias=2)
d = dropout(0.25)
r = reshape([-1])
s = softmax(axis=-1)
""")
    n = g.nodes
    assert n["a"].attrs["kernel_shape"] == [3, 1] and n["a"].attrs["strides"] == [1, 2]
    assert len(n["a"].inputs) == 2  # no bias
    assert n["a_relu6"].op_type == "Clip"
    assert n["b"].attrs["bias"] == 2.0 and n["b"].attrs["alpha"] == 1e-4
    assert n["s"].attrs["axis"] == -1


def test_outputs_default_to_the_last_statement():
    g = parse_dsl("input x: 1x4\na = dense(3)\nb = dense(a, 2)\n")
    assert g.outputs == ["b"]
    g = parse_dsl("input x: 1x4\na = dense(3)\nb = dense(a, 2)\noutput a\noutput b\n")
    assert g.outputs == ["a", "b"]


def test_network_name_defaults_to_the_file_stem(tmp_path):
    path = tmp_path / "my_net.cnn"
    path.write_text("input x: 1x4\ndense(2)\n")
    assert load_dsl(str(path)).name == "my_net"
    assert parse_dsl("network foo\ninput x: 1x4\ndense(2)").name == "foo"
    assert parse_dsl("input x: 1x4\ndense(2)").name == "network"


def test_lexical_details():
    text = ("\ufeff# a comment\r\n"
            "input x: N x 3 x 8 x 8   # spaced shape\r\n"
            "conv(4,\n     3,\n     padding = same,   # continued inside ( )\n)\r\n"
            "relu(); layer1.0 = relu()\n"
            "\tbad = relu() + 1\n")
    e = error(text)
    assert (e.line, e.column) == (8, 15) and e.text == "\tbad = relu() + 1"
    assert str(e).splitlines()[2] == "\t             ^"  # the tab kept under the tab
    g = parse_dsl(text.rsplit("\n", 2)[0] + "\n")
    assert list(g.nodes) == ["conv_1", "relu_1", "layer1.0"]
    assert g.inputs[0].shape == ("N", 3, 8, 8)


def test_origins_map_every_node_to_its_statement():
    net = compile_dsl(LENET5, "lenet5.cnn")
    assert net.origins["c1"] == ("lenet5.cnn", 5, 6)
    assert net.origins["c1_tanh"] == ("lenet5.cnn", 5, 6)
    assert net.origins["c3/conv_0"] == ("lenet5.cnn", 7, 6)
    net = compile_dsl(INCEPTION + "input x: 1x8x8x8\ni = inception(1, 1, 1, 1, 1, 1)", "g.cnn")
    assert net.origins["i/b2"] == ("g.cnn", 4, 8)  # the statement in the block's body


# -- errors: exact position, caret, wording ---------------------------------------------------
ERRORS = [
    # syntax
    ("input x: 1x3x8x8\nconv(4 3)\n", 2, 8, "expected ',' or ')' after the argument, got '3'"),
    ("input x: 1x3x8x8\nc1 = \n", 2, 6,
     "expected a layer or block call after '=', got the end of the line"),
    ("input x: 1x3x8x8\nconv(4, 3) relu()\n", 2, 12,
     "expected the end of the statement, got 'relu'"),
    ("input x: 1x3x8x8\nconv(4, 3\nrelu()\n", 2, 5, "'(' was never closed"),
    ("input x: 1x3x8x8\nconv(4, [3, 3)\n", 2, 14,
     "')' does not match '[' opened at line 2, column 9"),
    ("input x: 1x3x8x8\nconv(4, 3))\n", 2, 11, "unmatched ')'"),
    ("input x: 1x3x8x8\nconv(4, 3) @\n", 2, 12, "unexpected character '@'"),
    ("input x: 1x3x8x8\nconv(4, \"same)\n", 2, 9, "this string is not closed on its line"),
    ("input x: 1x3x8x8\ncafé = relu()\n", 2, 4,
     "unexpected character 'é' (names are ASCII letters, digits and _)"),
    ("input x: 1x3x8x8\nconv(4 / 2, 3)\n", 2, 8,
     "unexpected character '/' (use // for floor division)"),
    ("input x: 1x3x8x8\nconv(4, 3x3)\n", 2, 9,
     "'3x3' is a shape, written only after 'input NAME:'; write a kernel or stride as a "
     "list: [3, 3]"),
    ("input x: 1x3x8x8\nconv(padding=1, 4, 3)\n", 2, 17,
     "a positional argument cannot follow a keyword argument"),
    ("input x: 1x3x8x8\nrelu\n", 2, 1,
     "'relu' is a layer or block: call it with parentheses, relu(...)"),
    ("input x: 1x3x8x8\nc1 conv(4, 3)\n", 2, 4,
     "expected '=', '(' or '{' after 'c1', got 'conv'"),
    ("input x: [1, 3]\n", 1, 10,
     "expected a shape such as 1x3x224x224 or Nx3x224x224 after ':', got '['"),
    ("input x: 1x0x8x8\n", 1, 12, "dimension 1 of input 'x' is 0; dimensions must be positive"),
    ("input x: 1x3x8x8\nnetwork foo\n", 2, 1,
     "'network NAME' must be the first statement of the file"),
    ("block b() {\n  input y: 1x2\n}\n", 2, 3,
     "'input' is only allowed at the top level of the file"),
    ("input x: 1x3x8x8\nin = relu()\n", 2, 1,
     "'in' is reserved and cannot start a statement"),
    ("input x: 1x3x8x8\n3 x c = relu()\n", 2, 5,
     "a repeated call cannot be named; name the repetition instead: 'NAME = n x call(...)'"),
    ("input x: 1x3x8x8\nconv(99999999999999999999, 3)\n", 2, 6,
     "the number 99999999999999999999 is too large (at most 18 digits)"),
    # unknown layer or block, arguments
    ("input x: 1x1x32x32\nc1 = conv(6, 5)\nc2 = convv(16, 5)\n", 3, 6,
     "unknown layer 'convv' (did you mean 'conv'?)"),
    ("input x: 1x3x8x8\nfc(10)\n", 2, 1, "unknown layer 'fc' (did you mean 'dense'?)"),
    ("input x: 1x3x8x8\nfrobnicate(10)\n", 2, 1, "unknown layer 'frobnicate'"),
    ("input x: 1x3x8x8\nconv(4, 3, strid=2)\n", 2, 12,
     "conv has no argument 'strid' (did you mean 'stride'?)"),
    ("input x: 1x3x8x8\nconv(4, 3, kernel=3)\n", 2, 12, "conv got argument 'kernel' twice"),
    ("input x: 1x3x8x8\nconv(4)\n", 2, 1, "conv is missing argument 'kernel'"),
    ("input x: 1x3x8x8\nconv(4, 3, 1, valid, 1, 1, true, relu, 9)\n", 2, 40,
     "conv takes at most 8 arguments after its input (filters, kernel, stride, padding, "
     "dilation, groups, bias, activation), got 9"),
    ("input x: 1x3x8x8\nflatten(1)\n", 2, 9, "flatten takes no arguments after its input"),
    ("input x: 1x3x8x8\nc = conv(4, 3, name=c)\n", 2, 16,
     "name a layer by assigning it: 'NAME = conv(...)', not with name="),
    ("input x: 1x3x8x8\nc1 = conv(\"six\", 3)\n", 2, 11,
     "layer 'c1' (conv): filters must be an int, got 'six'"),
    ("input x: 1x3x8x8\nc1 = conv(4, 3, padding=sam)\n", 2, 25,
     "layer 'c1' (conv): padding 'sam' must be 'valid', 'same', an int, 2 ints (per axis) or "
     "4 ints (ONNX begins then ends)"),
    ("input x: 1x3x8x8\nconv(4, 3, activation=rleu)\n", 2, 23,
     "layer 'conv_1' (conv): activation 'rleu' is not one of relu, relu6, sigmoid, tanh, "
     "leaky_relu, hard_sigmoid, hard_swish, softmax, log_softmax or 'linear'"),
    ("input x: 1x3x8x8\nd = dropout(rate=1.5)\n", 2, 18,
     "layer 'd' (dropout): rate must be in [0, 1), got 1.5"),
    ("input x: 1x16x8x8\nse = se_block(ratio=0)\n", 2, 21,
     "block 'se': ratio must be a positive int, got 0"),
    ("input x: 1x3x8x8\nblk = residual_basic(8, strde=2)\n", 2, 25,
     "residual_basic has no argument 'strde' (did you mean 'stride'?)"),
    ("input x: 1x3x8x8\na = relu()\nconv(4, a)\n", 3, 9,
     "'a' is a tensor, but argument 'kernel' of conv is a value"),
    ("input x: 1x3x8x8\na = relu()\nb = relu()\nconcat(a, b)\n", 4, 8,
     "concat takes a list of tensors first, e.g. concat([a, b])"),
    ("input x: 1x3x8x8\nadd()\n", 2, 1,
     "add needs 2 tensors: add(a, b), or add(b) to combine the previous output with b"),
    ("input x: 1x3x8x8\na = relu()\nadd(a, 3)\n", 3, 8,
     "add takes its tensors, then keyword arguments only (activation)"),
    ("input x: 1x3x8x8\nconv(4, 3, padding=same, stride=\"2\")\n", 2, 33,
     "layer 'conv_1' (conv): stride must be an int or 2 ints (one per spatial axis), got '2'"),
    ("input x: 1x3x8x8\nconv(4, 3 + \"same\")\n", 2, 13, "'+' needs numbers, got 'same'"),
    ("input x: 1x3x8x8\nconv(4, 3 + same)\n", 2, 13, "undefined name 'same'"),
    ("input x: 1x3x8x8\nconv(4, true * 3)\n", 2, 9, "'*' needs numbers, got true"),
    # names
    ("input x: 1x3x8x8\npool1 = max_pool(2)\nb = conv(pool11, 64, 1)\n", 3, 10,
     "undefined name 'pool11' (did you mean 'pool1'?)"),
    ("input x: 1x3x8x8\na = relu()\nconcat([a, bb])\n", 3, 12, "undefined name 'bb'"),
    ("input x: 1x3x8x8\na = relu()\noutput b\n", 3, 8, "undefined name 'b'"),
    ("input x: 1x3x8x8\na = relu()\noutput a, a\n", 3, 11, "'a' is already an output"),
    ("input x: 1x3x8x8\nconv(in, 3, 3)\n", 2, 6,
     "'in' is the input of a block: it is only defined inside a block's body"),
    ("input x: 1x3x8x8\nc1 = conv(4, 3)\nc1 = conv(4, 3)\n", 3, 1,
     "duplicate name 'c1' (first defined at line 2)"),
    ("input x: 1x3x8x8\nx = relu()\n", 2, 1, "duplicate name 'x' (first defined at line 1)"),
    ("input x: 1x3x8x8\na = relu()\ns {\n  a = relu()\n}\n", 4, 3,
     "duplicate name 'a' (first defined at line 2)"),
    ("input x: 1x3x8x8\nconv(4, 1)\nconv_1 = conv(4, 1)\n", 3, 1,
     "layer 'conv_1' (conv): the name is already used by a node of layer 'conv_1'"),
    ("conv(4, 3)\n", 1, 1, "nothing to read: declare an input first, e.g. "
     "'input x: 1x3x224x224'"),
    ("", 1, 1, "the file declares no input; start with one, e.g. 'input x: 1x3x224x224'"),
    ("input x: 1x3x8x8\n", 1, 1, "the file has no layers"),
    # blocks
    ("block b(c) {\n  conv(c, 3)\n}\nblock b(c) {\n  conv(c, 1)\n}\n", 4, 7,
     "block 'b' is already defined at line 1"),
    ("block conv(c) {\n  relu()\n}\n", 1, 7, "'conv' is a layer; a block cannot take a "
     "layer's name"),
    ("block b(c, c) {\n  relu()\n}\n", 1, 12, "block 'b' has two parameters named 'c'"),
    ("block b(c=1, d) {\n  relu()\n}\n", 1, 14,
     "parameter 'd' needs a default: it follows one that has a default"),
    ("block b(c) {\n}\n", 1, 7, "block 'b' is empty"),
    ("block u(c, d) {\n  conv(c, d)\n}\ninput x: 1x3x8x8\nu(4)\n", 5, 1,
     "block 'u' is missing argument 'd'"),
    ("block u(c) {\n  conv(c, 3)\n}\ninput x: 1x3x8x8\nu(4, 5)\n", 5, 6,
     "block 'u' takes at most 1 argument after its input (c), got 2"),
    ("block u(c) {\n  conv(c, 3)\n}\ninput x: 1x3x8x8\nu(k=4)\n", 5, 3,
     "block 'u' has no argument 'k'"),
    ("block u(c) {\n  conv(c, 3)\n}\ninput x: 1x3x8x8\na = relu()\nu(4, c=a)\n", 6, 6,
     "block 'u' got argument 'c' twice"),  # c is the positional 4
    ("block u(c) {\n  conv(c, 3)\n}\ninput x: 1x3x8x8\na = relu()\nu(c=a)\n", 6, 5,
     "'a' is a tensor, but argument 'c' of block 'u' is a value (only a block's first "
     "positional argument may be a tensor: its input)"),
    ("block u(c) {\n  c = conv(c, 3)\n}\ninput x: 1x3x8x8\nu(4)\n", 2, 3,
     "'c' is a parameter of this block and cannot name a tensor (in block 'u' called at "
     "line 5)"),
    ("block u(c) {\n  conv(c, 3)\n  conv(c, 9)\n}\ninput x: 1x3x8x8\nu1 = u(4)\n", 3, 3,
     "node 'u1/conv_2' (Conv): output size 0 on spatial axis 0: input 6, kernel 9, stride 1, "
     "dilation 1, padding (0, 0); the window is larger than the padded input; input shapes "
     "[(1, 4, 6, 6), (4, 4, 9, 9), (4)] (in block 'u' called at line 6)"),
    ("block u(c) {\n  conv(c // 0, 3)\n}\ninput x: 1x3x8x8\nu(4)\n", 2, 10,
     "division by zero (in block 'u' called at line 5)"),
    ("block u(c) {\n  conv(c, 3)\n}\ninput x: 1x3x8x8\nu = u(4)\nu2 = u(4)\nu = relu()\n",
     7, 1, "duplicate name 'u' (first defined at line 5)"),
    ("input x: 1x3x8x8\nn x relu()\n", 2, 1, "undefined name 'n'"),
    ("input x: 1x3x8x8\n(0 - 2) x relu()\n", 2, 2,
     "the repetition count must be 0 or more, got -2"),
    ("input x: 1x3x8x8\n(3 * 0.5) x relu()\n", 2, 2,
     "the repetition count must be a whole number, got 1.5"),
]


@pytest.mark.parametrize("text, line, column, message", ERRORS,
                         ids=[m[:40] for *_, m in ERRORS])
def test_error_messages(text, line, column, message):
    e = error(text)
    assert (e.message, e.line, e.column) == (message, line, column)
    source_line = text.split("\n")[line - 1]
    assert str(e) == (f"t.cnn:{line}:{column}: error: {message}\n{source_line}\n"
                      f"{' ' * (column - 1)}^")
    assert isinstance(e, CnnGraphError) and e.file == "t.cnn"


def test_a_shape_error_is_mapped_to_the_line_that_declared_the_layer():
    text = LENET5.replace("c5 = conv(120, 5", "c5 = conv(120, 7")
    e = error(text, "lenet5.cnn")
    assert str(e) == (
        "lenet5.cnn:9:6: error: node 'c5' (Conv): output size 0 on spatial axis 0: input 5, "
        "kernel 7, stride 1, dilation 1, padding (0, 0); the window is larger than the padded "
        "input; input shapes [(1, 16, 5, 5), (120, 16, 7, 7), (120)]\n"
        "c5 = conv(120, 7, activation=tanh)\n"
        "     ^")
    # a layer spread over lines: the line of its name
    e = error("input x: 1x3x8x8\na = conv(4, 3)\ny = add(\n  x,\n  a)\n")
    assert (e.line, e.column) == (3, 5) and "node 'y' (Add)" in e.message


def test_recursion_fails_fast_naming_the_cycle():
    e = error("block a(c) {\n  b(c)\n}\nblock b(c) {\n  conv(c, 3)\n  s {\n    a(c)\n  }\n}\n"
              "input x: 1x3x8x8\na(4)\n")
    assert (e.message, e.line, e.column) == ("block 'a' calls itself: a -> b -> a", 7, 5)
    e = error("block a(c) {\n  2 x a(c)\n}\ninput x: 1x3x8x8\na(4)\n")
    assert (e.message, e.line, e.column) == ("block 'a' calls itself: a -> a", 2, 7)
    # never called: still an error, found before anything runs
    e = error("block a() {\n  a()\n}\ninput x: 1x3x8x8\nrelu()\n")
    assert e.message == "block 'a' calls itself: a -> a"


@pytest.mark.parametrize("text, line, column, message", [
    ("input x: 1x3x8x8\n1000000000 x conv(4, 1)\n", 2, 1,
     "repetition count 1,000,000,000 is over the limit of 10,000"),
    ("block b() {\n  10000 x conv(4, 1)\n}\nblock a() {\n  10000 x b()\n}\n"
     "input x: 1x3x8x8\na()\n", 5, 3,
     "10,000 x b(...) expands to 100,000,000 layers, over the limit of 100,000 "
     "(in block 'a' called at line 8)"),
    # doubling through 40 levels of blocks: 2^40 layers, counted without building any
    ("".join(f"block b{i}() {{\n  b{i + 1}()\n  b{i + 1}()\n}}\n" for i in range(40))
     + "block b40() {\n  relu()\n}\ninput x: 1x3x8x8\nb0()\n", 95, 3,
     "block 'b23' grows to 131,072 layers here, over the limit of 100,000 (in block 'b23' "
     "called at line 90, in block 'b22' called at line 86, ... 21 more, in block 'b0' called "
     "at line 165)"),
    ("block big() {\n  10000 x relu()\n}\ninput x: 1x3x8x8\n" + "big()\n" * 11, 15, 1,
     "the network grows to 110,000 layers here, over the limit of 100,000"),
    ("input x: 1x3x8x8\ndense_block(1000000000, 32)\n", 2, 1,
     "dense_block(...) expands to 5,000,000,001 layers, over the limit of 100,000"),
    ("block u(n) {\n  n x relu()\n}\ninput x: 1x3x8x8\nu(99999)\n", 2, 3,
     "repetition count 99,999 is over the limit of 10,000 (in block 'u' called at line 5)"),
])
def test_absurd_sizes_fail_fast(text, line, column, message):
    start = time.perf_counter()
    e = error(text)
    assert time.perf_counter() - start < 0.5
    assert (e.message, e.line, e.column) == (message, line, column)


def test_deep_nesting_fails_with_a_message():
    text = "".join(f"block b{i}() {{\n  b{i + 1}()\n}}\n" for i in range(150))
    text += "block b150() {\n  relu()\n}\ninput x: 1x3x8x8\nb0()\n"
    e = error(text)
    assert e.message.startswith("block calls are nested more than 100 deep (in block 'b99'")
    e = error("input x: 1x3x8x8\nconv(4, " + "(" * 60 + "3" + ")" * 60 + ")\n")
    assert e.message == "brackets nested more than 50 deep"
    e = error("input x: 1x3x8x8\nconv(4, " + "1 + " * 150 + "1)\n")
    assert (e.message, e.column) == ("this expression is more than 100 operators or lists deep", 9)
    g = parse_dsl("input x: 1x3x8x8\nconv(4, " + "- " * 10_001 + "-3)\n")  # no recursion
    assert g.nodes["conv_1"].attrs["kernel_shape"] == [3, 3]
    # a cycle through 3,000 blocks: found without recursing, shown shortened
    text = "".join(f"block b{i}() {{\n  b{i + 1}()\n}}\n" for i in range(3000))
    e = error(text + "block b3000() {\n  b0()\n}\ninput x: 1x3x8x8\nrelu()\n")
    assert e.message == ("block 'b0' calls itself: b0 -> b1 -> b2 -> b3 -> b4 -> ... 2992 more "
                         "-> b2997 -> b2998 -> b2999 -> b3000 -> b0")


def test_a_file_that_is_not_utf8(tmp_path):
    path = tmp_path / "latin1.cnn"
    path.write_bytes(b"input x: 1x3x8x8\nc = conv(4, 3)  # caf\xe9\n")
    with pytest.raises(DslError) as info:
        load_dsl(str(path))
    e = info.value
    assert (e.line, e.column) == (2, 22)
    assert str(e) == (f"{path}:2:22: error: the file is not UTF-8 text (byte 0xe9)\n"
                      f"c = conv(4, 3)  # caf\ufffd\n" + " " * 21 + "^")
    binary = tmp_path / "model.cnn"
    binary.write_bytes(b"\x08\x07\x12\x04\xff\xfe\x00")
    with pytest.raises(DslError, match=r"model.cnn:1:5: error: the file is not UTF-8 text"):
        load_dsl(str(binary))


def test_missing_files_and_directories(tmp_path):
    with pytest.raises(LoadError, match="no such file"):
        load_dsl(str(tmp_path / "nope.cnn"))
    with pytest.raises(LoadError, match="is a directory"):
        load_dsl(str(tmp_path))


def test_long_lines_are_cut_around_the_caret():
    e = error("input x: 1x3x8x8\n" + "relu(); " * 50 + "@\n")
    first, text, caret = str(e).split("\n")
    assert first == "t.cnn:2:401: error: unexpected character '@'"
    assert len(text) == 160 and text[len(caret) - 1] == "@"


def test_the_parser_never_evaluates_user_text():
    source = open(dsl.__file__).read()
    assert not re.search(r"(?<![.\w])(eval|exec|compile|__import__)\(", source)
    e = error("input x: 1x3x8x8\nconv(__import__, 3)\n")
    assert e.message == "undefined name '__import__'"


# -- load(), the CLI, the docs ------------------------------------------------------------------
def test_load_dispatches_on_the_suffix(tmp_path):
    path = tmp_path / "lenet5.cnn"
    path.write_text(LENET5)
    g = cnngraph.load(str(path))
    assert g.name == "lenet5" and analyze(g).totals.params == 60_850


def test_cli_reports_a_cnn_file(tmp_path, capsys):
    path = tmp_path / "lenet5.cnn"
    path.write_text(LENET5)
    assert main(["report", str(path), "--format", "json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["model"] == {"name": "lenet5", "source": str(path)}
    assert report["totals"]["trainable_params"] == 60_850
    assert main(["report", str(path)]) == 0
    assert "60,850" in capsys.readouterr().out


def test_cli_exits_2_with_the_excerpt(tmp_path, capsys):
    path = tmp_path / "bad.cnn"
    path.write_text("input x: 1x1x32x32\nc1 = conv(6, 5)\nc2 = convv(16, 5)\n")
    assert main(["report", str(path)]) == 2
    err = capsys.readouterr().err
    assert err == (f"{path}:3:6: error: unknown layer 'convv' "
                   f"(did you mean 'conv'?)\nc2 = convv(16, 5)\n     ^\n")
    path.write_bytes(b"input x: 1x3x8x8\n\xff\n")
    assert main(["report", str(path)]) == 2
    assert "bad.cnn:2:1: error: the file is not UTF-8 text (byte 0xff)" in capsys.readouterr().err


def test_every_complete_example_in_the_docs_compiles():
    text = open(DOCS, encoding="utf-8").read()
    examples = re.findall(r"```cnn\n(.*?)```", text, re.S)
    assert len(examples) >= 2
    for example in examples:
        parse_dsl(example, "docs.cnn")


def test_an_analysis_time_shape_error_names_the_declaring_line(tmp_path):
    """Built at 32x32 the net is fine; analysed at 8x8 the 5x5 conv2 no longer fits, and the
    error says which line of the file declared it."""
    import cnngraph

    path = tmp_path / "small.cnn"
    path.write_text("input x: Nx1x32x32\nc1 = conv(6, 5)\np = max_pool(2)\nc2 = conv(16, 5)\n")
    graph = cnngraph.load(str(path))
    with pytest.raises(cnngraph.errors.ShapeError,
                       match=rf"node 'c2' \(Conv\).*declared at {re.escape(str(path))}:4:6"):
        cnngraph.analyze(graph, input_shapes={"x": (1, 1, 8, 8)})
