"""Compile passes: each rewrite keeps the outputs (run_reference before and after on random
inputs) and rewrites exactly what it should."""

from __future__ import annotations

import numpy as np
import pytest

import cnngraph
from cnngraph.errors import ShapeError
from cnngraph.execute import drop_identities, fold_batchnorm, fold_constants, fuse_conv, optimize
from cnngraph.execute.passes import constant_of
from cnngraph.ir import Graph, Node, TensorInfo
from cnngraph.passes.cost import count_costs
from cnngraph.passes.shapes import infer_shapes

from .nets import mixed_weighted

RNG = np.random.default_rng(7)


def graph(nodes, outputs, inputs=(("x", (2, 3, 8, 8)),), constants=None, opset=18):
    """A frozen graph of these nodes; ``constants`` maps name -> value."""
    g = Graph("t", opset=opset)
    for name, shape in inputs:
        g.add_input(TensorInfo(name, "float32", shape))
    for name, value in (constants or {}).items():
        g.add_constant(constant_of(name, np.asarray(value)))
    for n in nodes:
        g.add_node(n)
    g.outputs.extend(outputs)
    return g.freeze()


def rand(*shape, positive=False):
    v = RNG.standard_normal(shape).astype(np.float32)
    return np.abs(v) + 0.5 if positive else v


def same_outputs(a: Graph, b: Graph, batch=2, tol=1e-5):
    inputs = {t.name: rand(batch, *t.shape[1:]) for t in a.inputs}
    ra, rb = cnngraph.run_reference(a, inputs), cnngraph.run_reference(b, inputs)
    assert ra.keys() == rb.keys()
    for k in ra:
        np.testing.assert_allclose(rb[k], ra[k], rtol=tol, atol=tol)


def ops(g: Graph) -> list[str]:
    return [n.op_type for n in g.node_list()]


def conv(name, x, y, w="w", b="b", **attrs):
    return Node(name, "Conv", (x, w, b) if b else (x, w), (y,), attrs)


def conv_weights(cin=3, cout=4, k=3, bias=True):
    out = {"w": rand(cout, cin, k, k)}
    if bias:
        out["b"] = rand(cout)
    return out


# -- drop_identities ----------------------------------------------------------------------------
def test_drop_identities_rewires_readers():
    g = graph([conv("c", "x", "y", pads=[1, 1, 1, 1]),
               Node("d", "Dropout", ("y",), ("yd",), {"ratio": 0.3}),
               Node("r", "Relu", ("yd",), ("z",)),
               Node("i", "Identity", ("z",), ("out",))], ["out"], constants=conv_weights())
    h = drop_identities(g)
    assert ops(h) == ["Conv", "Relu"]
    assert h.nodes["r"].inputs == ("y",) and h.nodes["r"].outputs == ("out",)  # writes the output
    assert h.outputs == ["out"]
    same_outputs(g, h)


def test_drop_identities_keeps_an_identity_from_input_to_output():
    g = graph([Node("i", "Identity", ("x",), ("out",))], ["out"])
    assert ops(drop_identities(g)) == ["Identity"]


def test_drop_identities_keeps_a_used_mask_and_training_mode():
    g = graph([Node("d", "Dropout", ("x",), ("y", "mask")), Node("r", "Relu", ("y",), ("z",))],
              ["z", "mask"])
    assert "Dropout" in ops(drop_identities(g))
    g = graph([Node("d", "Dropout", ("x", "ratio", "train"), ("y",)),
               Node("r", "Relu", ("y",), ("z",))], ["z"],
              constants={"ratio": np.float32(0.5), "train": np.bool_(True)})
    assert "Dropout" in ops(drop_identities(g))


# -- fold_constants -----------------------------------------------------------------------------
def test_fold_constants_runs_weight_subgraphs_and_shape_chains():
    nodes = [
        Node("shape_w", "ConstantOfShape", ("wshape",), ("w",),
             {"value": np.array([0.1], np.float32)}),
        Node("c", "Conv", ("x", "w"), ("y",)),
        Node("s", "Shape", ("y",), ("ys",)),
        Node("g", "Gather", ("ys", "zero"), ("n",), {"axis": 0}),
        Node("u", "Unsqueeze", ("n", "zero1"), ("n1",)),
        Node("cat", "Concat", ("n1", "minus1"), ("target",), {"axis": 0}),
        Node("r", "Reshape", ("y", "target"), ("out",)),
    ]
    g = graph(nodes, ["out"], constants={
        "wshape": np.array([4, 3, 3, 3], np.int64), "zero": np.array(0, np.int64),
        "zero1": np.array([0], np.int64), "minus1": np.array([-1], np.int64)})
    h = fold_constants(g, batch=2)
    assert ops(h) == ["Conv", "Reshape"]
    assert h.constants["w"].value().shape == (4, 3, 3, 3)
    assert h.constants["target"].value().tolist() == [2, -1]
    assert "wshape" not in h.constants  # nothing reads it any more
    same_outputs(g, h)


def test_fold_constants_leaves_what_has_no_value():
    g = cnngraph.load("lenet5")  # structure only: weights without values
    h = fold_constants(g)
    assert len(h.nodes) == len(g.nodes) - len(infer_shapes(g).folded) or len(h.nodes) <= len(g)


# -- fold_batchnorm -----------------------------------------------------------------------------
def bn_constants(c=4):
    return {"scale": rand(c), "shift": rand(c), "mean": rand(c), "var": rand(c, positive=True)}


@pytest.mark.parametrize("bias", [True, False])
def test_fold_batchnorm_into_conv(bias):
    g = graph([conv("c", "x", "y", b="b" if bias else "", strides=[2, 2]),
               Node("bn", "BatchNormalization", ("y", "scale", "shift", "mean", "var"), ("z",),
                    {"epsilon": 1e-3}),
               Node("r", "Relu", ("z",), ("out",))], ["out"],
              constants={**conv_weights(bias=bias), **bn_constants()})
    h = fold_batchnorm(g)
    assert ops(h) == ["Conv", "Relu"]
    assert h.nodes["c"].outputs == ("z",)
    same_outputs(g, h)


def test_fold_batchnorm_keeps_a_conv_output_others_read():
    g = graph([conv("c", "x", "y"),
               Node("bn", "BatchNormalization", ("y", "scale", "shift", "mean", "var"), ("z",)),
               Node("a", "Add", ("y", "z"), ("out",))], ["out"],
              constants={**conv_weights(), **bn_constants()})
    assert ops(fold_batchnorm(g)) == ["Conv", "BatchNormalization", "Add"]


def test_fold_batchnorm_as_mul_and_add_by_channel_constants():
    """BatchNorm as older exporters write it: Mul and Add by (C, 1, 1) constants."""
    g = graph([conv("c", "x", "y"),
               Node("m", "Mul", ("y", "s"), ("ym",)),
               Node("a", "Add", ("t", "ym"), ("ya",)),
               Node("a2", "Add", ("ya", "x2"), ("out",))],  # not per channel: stays
              ["out"], inputs=(("x", (2, 3, 8, 8)), ("x2", (2, 4, 6, 6))),
              constants={**conv_weights(), "s": rand(4, 1, 1), "t": rand(1, 4, 1, 1)})
    h = fold_batchnorm(g)
    assert ops(h) == ["Conv", "Add"]
    same_outputs(g, h)


def test_fold_batchnorm_skips_weights_without_values():
    g = cnngraph.load("resnet18")
    assert ops(fold_batchnorm(g)).count("BatchNormalization") == ops(g).count(
        "BatchNormalization")


# -- fuse_conv ----------------------------------------------------------------------------------
@pytest.mark.parametrize("act,attrs,extra", [
    ("Relu", {}, {}),
    ("LeakyRelu", {"alpha": 0.2}, {}),
    ("Sigmoid", {}, {}),
    ("Tanh", {}, {}),
    ("HardSigmoid", {"alpha": 0.3, "beta": 0.4}, {}),
    ("HardSwish", {}, {}),
    ("Clip", {}, {"lo": np.float32(0), "hi": np.float32(6)}),
])
def test_fuse_conv_activation(act, attrs, extra):
    inputs = ("y", "lo", "hi") if act == "Clip" else ("y",)
    g = graph([conv("c", "x", "y", pads=[1, 1, 1, 1]), Node("a", act, inputs, ("out",), attrs)],
              ["out"], constants={**conv_weights(), **extra})
    h = fuse_conv(g)
    assert ops(h) == ["FusedConv"]
    assert h.nodes["c"].attrs["activation"] == act
    same_outputs(g, h)


def test_fuse_conv_clip_before_opset_11():
    g = graph([conv("c", "x", "y"), Node("a", "Clip", ("y",), ("out",), {"min": 0.0, "max": 6.0})],
              ["out"], constants=conv_weights(), opset=9)
    h = fuse_conv(g)
    assert h.nodes["c"].attrs["activation_params"] == (0.0, 6.0)
    same_outputs(g, h)


@pytest.mark.parametrize("add", ["Add", "Sum"])
def test_fuse_conv_residual_add_and_relu(add):
    """Relu(Add(Conv(x), r)) with a projection shortcut: one of the two convs takes the Add."""
    g = graph([conv("c1", "x", "y1", pads=[1, 1, 1, 1]),
               conv("c2", "x", "y2", w="w2", b=""),
               Node("add", add, ("y2", "y1"), ("s",)),
               Node("r", "Relu", ("s",), ("out",))], ["out"],
              constants={**conv_weights(), "w2": rand(4, 3, 1, 1)})
    h = fuse_conv(g)
    fused = [n for n in h.node_list() if n.op_type == "FusedConv"]
    assert ops(h).count("Conv") == 1 and len(fused) == 1
    assert fused[0].inputs[3] in ("y1", "y2") and fused[0].attrs["activation"] == "Relu"
    assert fused[0].outputs == ("out",)
    same_outputs(g, h)


def test_fuse_conv_keeps_a_conv_output_others_read():
    g = graph([conv("c", "x", "y"), Node("r", "Relu", ("y",), ("z",)),
               Node("a", "Add", ("y", "z"), ("out",))], ["out"], constants=conv_weights())
    assert ops(fuse_conv(g)) == ["Conv", "Relu", "Add"]


def test_fuse_conv_does_not_take_a_broadcast_add():
    g = graph([conv("c", "x", "y"), Node("a", "Add", ("y", "x2"), ("out",))], ["out"],
              inputs=(("x", (2, 3, 8, 8)), ("x2", (1, 4, 1, 1))), constants=conv_weights())
    assert ops(fuse_conv(g)) == ["Conv", "Add"]


# -- FusedConv, the op --------------------------------------------------------------------------
def test_fused_conv_shapes_costs_and_in_place():
    g = graph([conv("c1", "x", "y1", pads=[1, 1, 1, 1]), conv("c2", "x", "y2"),
               Node("add", "Add", ("y1", "y2p"), ("s",)), Node("r", "Relu", ("s",), ("out",)),
               Node("p", "Pad", ("y2", "pads"), ("y2p",))], ["out"],
              constants={**conv_weights(), "pads": np.array([0, 0, 1, 1, 0, 0, 1, 1])})
    h = fuse_conv(g)
    assert "FusedConv" in ops(h)
    before, after = count_costs(g, infer_shapes(g)), count_costs(h, infer_shapes(h))
    assert after.totals.macs == before.totals.macs
    assert after.totals.params == before.totals.params
    assert cnngraph.ops.lookup(h.nodes["c1"]).in_place == (3,)
    bad = Node("f", "FusedConv", ("x", "w", "b", "x"), ("z",), {"activation": "Relu"})
    with pytest.raises(ShapeError, match="residual shape"):
        infer_shapes(graph([bad], ["z"], constants=conv_weights()))
    bad = Node("f", "FusedConv", ("x", "w"), ("z",), {"activation": "Swish"})
    with pytest.raises(ShapeError, match="activation 'Swish'"):
        infer_shapes(graph([bad], ["z"], constants=conv_weights()))


# -- all of them on a real network -------------------------------------------------------------
def test_optimize_keeps_the_outputs():
    g = mixed_weighted()
    h = optimize(g)
    assert ops(h).count("FusedConv") >= 6
    assert not {"BatchNormalization", "Dropout", "Relu", "Clip", "Sigmoid"} & set(ops(h))
    assert len(h) == len(g) - 12
    same_outputs(g, h, batch=2, tol=1e-4)  # folding reorders float rounding
