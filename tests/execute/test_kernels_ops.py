"""Dedicated kernels of the ops that used to run their numpy reference (ConvTranspose,
Resize/Upsample, Erf/Gelu/PRelu, LayerNormalization, InstanceNormalization, Split, Where,
Expand, Tile, Pad): one-node models compiled and run, against onnx's reference evaluator or
onnxruntime, and the kernel is a dedicated one (not 'reference')."""

from __future__ import annotations

import math

import numpy as np
import onnx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from onnx.reference import ReferenceEvaluator

import cnngraph
from cnngraph.frontends.onnx import from_model

from ..util import one_node_model
from .nets import allocated_by_run

RNG = np.random.default_rng(23)
SETTINGS = settings(max_examples=60, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow])


def rand(*shape):
    return RNG.standard_normal(shape).astype(np.float32)


def oracle_run(model, feeds, oracle):
    if oracle == "cnngraph":  # the op's own numpy reference: where the oracles disagree
        got = cnngraph.run_reference(from_model(model), feeds)
        return [got[o.name] for o in model.graph.output]
    if oracle == "onnx":
        return ReferenceEvaluator(model).run(None, feeds)
    ort = pytest.importorskip("onnxruntime")
    for out in model.graph.output:  # onnxruntime wants the output types: float32 here
        out.type.tensor_type.elem_type = onnx.TensorProto.FLOAT
    session = ort.InferenceSession(model.SerializeToString(),
                                   providers=["CPUExecutionProvider"])
    return session.run(None, feeds)


def check(op_type, inputs, attrs=None, opset=18, n_outputs=1, constant_inputs=(),
          oracle="onnx", tol=1e-5, kind="numpy"):
    """Compile and run one node; compare every output with the oracle's."""
    model = one_node_model(op_type, inputs, attrs, opset, n_outputs, constant_inputs)
    compiled = cnngraph.compile(from_model(model), threads=1)
    feeds = {f"in{i}": x for i, x in enumerate(inputs)
             if x is not None and i not in constant_inputs}
    got = compiled.run(feeds)
    want = oracle_run(model, feeds, oracle)
    for i, w in enumerate(want):
        g = got[f"out{i}"]
        assert g.shape == w.shape, (i, g.shape, w.shape)
        np.testing.assert_allclose(g, w, rtol=tol, atol=tol, err_msg=f"output {i}")
    assert compiled.kernels["n"] == kind
    return compiled


# -- data movement --------------------------------------------------------------------------------
@pytest.mark.parametrize("split,axis,n", [(None, 1, 3), ([1, 4, 1], 1, 3), ([2, 0, 3], -1, 3),
                                          (None, 0, 2)])
def test_split(split, axis, n):
    x = rand(2, 6, 5)
    inputs = [x] + ([np.array(split, np.int64)] if split else [])
    check("Split", inputs, {"axis": axis}, opset=13, n_outputs=n, constant_inputs=(1,))


def test_split_num_outputs():
    check("Split", [rand(7, 3)], {"axis": 0, "num_outputs": 3}, opset=18, n_outputs=3)


@pytest.mark.parametrize("shapes", [((2, 3), (2, 3), (2, 3)), ((1, 3), (2, 1), (3,)),
                                    ((2, 1, 4), (), (3, 1))])
def test_where(shapes):
    c, a, b = shapes
    cond = RNG.random(c) > 0.5
    check("Where", [np.asarray(cond), rand(*a), rand(*b)])


def test_where_with_a_constant_branch():
    cond = RNG.random((2, 3)) > 0.5
    check("Where", [cond, rand(2, 3), np.float32(-1.0)], constant_inputs=(2,))


@pytest.mark.parametrize("x,shape", [((3, 1), (2, 3, 4)), ((1,), (5,)), ((2, 1, 3), (1, 4, 1))])
def test_expand(x, shape):
    check("Expand", [rand(*x), np.array(shape, np.int64)], constant_inputs=(1,))


@pytest.mark.parametrize("x,repeats", [((2, 3), (1, 1)), ((2, 3), (3, 2)), ((1, 2, 3), (2, 1, 3)),
                                       ((4,), (0,))])
def test_tile(x, repeats):
    check("Tile", [rand(*x), np.array(repeats, np.int64)], constant_inputs=(1,))


def test_tile_hand_checked():
    x = np.array([[1, 2]], np.float32)
    compiled = check("Tile", [x, np.array([2, 2], np.int64)], constant_inputs=(1,))
    y = compiled.run({"in0": x})["out0"]
    assert y.tolist() == [[1, 2, 1, 2], [1, 2, 1, 2]]


# -- padding --------------------------------------------------------------------------------------
PADS = [[0, 0, 1, 2, 0, 0, 2, 1], [0, 1, 0, 3, 0, 0, 2, 0], [0, 0, -1, 2, 0, 0, 1, -2],
        [0, 0, 0, 0, 0, 0, 0, 0]]


@pytest.mark.parametrize("mode", ["constant", "reflect", "edge", "wrap"])
@pytest.mark.parametrize("pads", PADS)
def test_pad_modes(mode, pads):
    x = rand(1, 2, 4, 5)
    if mode == "reflect" and max(pads) >= 3:
        pads = [min(p, 2) for p in pads]
    # onnx's reference evaluator refuses negative pads (crops): onnxruntime then
    check("Pad", [x, np.array(pads, np.int64), np.float32(0.5)], {"mode": mode}, opset=19,
          constant_inputs=(1, 2), oracle="ort" if min(pads) < 0 else "onnx")


def test_pad_wrap_wider_than_the_axis():
    """onnxruntime repeats the period for wrap pads longer than the axis."""
    x = rand(1, 3, 2)
    check("Pad", [x, np.array([0, 4, 5, 0, 7, 3], np.int64)], {"mode": "wrap"}, opset=19,
          constant_inputs=(1,), oracle="ort")


def test_pad_hand_checked():
    x = np.array([[1, 2, 3]], np.float32)
    pads = np.array([0, 2, 0, 2], np.int64)
    for mode, want in [("reflect", [3, 2, 1, 2, 3, 2, 1]), ("edge", [1, 1, 1, 2, 3, 3, 3]),
                       ("wrap", [2, 3, 1, 2, 3, 1, 2]), ("constant", [0, 0, 1, 2, 3, 0, 0])]:
        compiled = check("Pad", [x, pads], {"mode": mode}, opset=19, constant_inputs=(1,))
        assert compiled.run({"in0": x})["out0"].tolist() == [want], mode


def test_pad_axes_and_an_old_opset():
    x = rand(2, 3, 4)
    check("Pad", [x, np.array([1, 2, 0, 1], np.int64), None, np.array([2, 0], np.int64)],
          {"mode": "edge"}, opset=18, constant_inputs=(1, 3))
    check("Pad", [x], {"mode": "reflect", "pads": [0, 1, 1, 0, 1, 2]}, opset=2)
    check("Pad", [x], {"pads": [0, 1, 1, 0, 1, 2], "value": 2.5}, opset=2)


def test_pad_value_computed_at_run_time():
    """The constant value is an input of the graph: read when the step runs, not compiled in."""
    x = rand(2, 3)
    check("Pad", [x, np.array([1, 0, 0, 2], np.int64), np.array(7.5, np.float32)],
          opset=18, constant_inputs=(1,))


# -- normalization --------------------------------------------------------------------------------
@pytest.mark.parametrize("axis,param_shape", [(-1, (5,)), (1, (3, 4, 5)), (2, (1, 5)),
                                              (0, (2, 3, 4, 5))])
@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("stats", [1, 3])
def test_layernorm(axis, param_shape, bias, stats):
    x = rand(2, 3, 4, 5) * 3 + 1
    inputs = [x, rand(*param_shape)] + ([rand(*param_shape)] if bias else [])
    check("LayerNormalization", inputs, {"axis": axis, "epsilon": 1e-3}, opset=17,
          n_outputs=stats, constant_inputs=(1, 2), tol=2e-5)


def test_layernorm_parameters_at_run_time():
    check("LayerNormalization", [rand(4, 6), rand(6), rand(6)], opset=17, tol=2e-5)


@pytest.mark.parametrize("shape", [(2, 3, 5, 4), (1, 4, 7), (3, 2, 2, 3, 2)])
def test_instancenorm(shape):
    c = shape[1]
    x = rand(*shape) * 2 - 0.5
    check("InstanceNormalization", [x, rand(c), rand(c)], {"epsilon": 1e-4},
          constant_inputs=(1, 2), tol=2e-5)
    check("InstanceNormalization", [x, rand(c), rand(c)], tol=2e-5)  # parameters at run time


# -- transposed convolution -----------------------------------------------------------------------
@st.composite
def conv_transpose_cases(draw):
    rank = draw(st.sampled_from([1, 2, 2, 2, 3]))
    group = draw(st.sampled_from([1, 1, 2, 3]))
    cin = group * draw(st.integers(1, 3))
    mg = draw(st.integers(1, 3))
    kernel = [draw(st.integers(1, 4)) for _ in range(rank)]
    strides = [draw(st.integers(1, 3)) for _ in range(rank)]
    dilations = [draw(st.integers(1, 2)) for _ in range(rank)]
    spatial = [draw(st.integers(1, 6 if rank < 3 else 3)) for _ in range(rank)]
    # output_padding below the stride (and the dilation), pads that leave an output
    output_padding = [draw(st.integers(0, min(s, d) - 1)) for s, d in zip(strides, dilations)]
    full = [s * (n - 1) + op + d * (k - 1) + 1 for s, n, op, d, k in
            zip(strides, spatial, output_padding, dilations, kernel)]
    pads = [draw(st.integers(0, max(0, min(3, f - 1)))) for f in full]
    pads += [draw(st.integers(0, max(0, min(3, f - 1 - p)))) for f, p in zip(full, pads)]
    bias = draw(st.booleans())
    return (draw(st.integers(1, 2)), cin, spatial, mg, group, kernel, strides, dilations,
            output_padding, pads, bias)


@SETTINGS
@given(case=conv_transpose_cases())
def test_conv_transpose_random(case):
    n, cin, spatial, mg, group, kernel, strides, dilations, output_padding, pads, bias = case
    inputs = [rand(n, cin, *spatial), rand(cin, mg, *kernel)] + ([rand(mg * group)] if bias
                                                                 else [])
    attrs = dict(group=group, strides=strides, dilations=dilations,
                 output_padding=output_padding, pads=pads)
    check("ConvTranspose", inputs, attrs, opset=17, constant_inputs=(1, 2), oracle="ort",
          tol=1e-4)


def test_conv_transpose_hand_checked():
    """x = [[1, 2], [3, 4]], 2x2 ones kernel, stride 2: each input becomes a 2x2 block; with
    stride 1 the blocks overlap and add."""
    x = np.array([[[[1, 2], [3, 4]]]], np.float32)
    w = np.ones((1, 1, 2, 2), np.float32)
    compiled = check("ConvTranspose", [x, w], {"strides": [2, 2]}, constant_inputs=(1,))
    assert compiled.run({"in0": x})["out0"][0, 0].tolist() == [
        [1, 1, 2, 2], [1, 1, 2, 2], [3, 3, 4, 4], [3, 3, 4, 4]]
    compiled = check("ConvTranspose", [x, w], {}, constant_inputs=(1,))
    assert compiled.run({"in0": x})["out0"][0, 0].tolist() == [
        [1, 3, 2], [4, 10, 6], [3, 7, 4]]


@pytest.mark.parametrize("attrs", [dict(auto_pad="SAME_UPPER", strides=[2, 2]),
                                   dict(auto_pad="SAME_LOWER", strides=[2, 1]),
                                   dict(output_shape=[9, 8], strides=[2, 2]),
                                   dict(output_padding=[1, 0], strides=[2, 2], pads=[1, 0, 0, 1])])
def test_conv_transpose_output_shapes(attrs):
    check("ConvTranspose", [rand(2, 4, 4, 4), rand(4, 3, 3, 2), rand(3)], attrs,
          constant_inputs=(1, 2), oracle="ort", tol=1e-4)


def test_conv_transpose_weight_at_run_time_and_row_tiles(monkeypatch):
    """A weight computed by the graph (read when the step runs); large layers scatter a few
    input rows per GEMM (TILE_BYTES)."""
    from cnngraph.execute.kernels import conv as k

    check("ConvTranspose", [rand(1, 4, 5, 5), rand(4, 2, 3, 3)], dict(strides=[2, 2], group=2),
          oracle="ort", tol=1e-4)
    monkeypatch.setattr(k, "TILE_BYTES", 1)  # one input row per GEMM
    check("ConvTranspose", [rand(2, 3, 5, 4), rand(3, 2, 3, 3), rand(2)],
          dict(strides=[2, 1], pads=[1, 0, 2, 1], output_padding=[1, 0]),
          constant_inputs=(1, 2), oracle="ort", tol=1e-4)


# -- resampling -----------------------------------------------------------------------------------
TRANSFORMS = ["half_pixel", "half_pixel_symmetric", "pytorch_half_pixel", "align_corners",
              "asymmetric", "tf_half_pixel_for_nn", "tf_crop_and_resize"]


@st.composite
def resize_cases(draw):
    mode = draw(st.sampled_from(["nearest", "linear", "cubic"]))
    transform = draw(st.sampled_from(TRANSFORMS if mode == "nearest" else
                                     [t for t in TRANSFORMS if t != "tf_half_pixel_for_nn"]))
    n, h, w = draw(st.integers(1, 2)), draw(st.integers(1, 7)), draw(st.integers(1, 7))
    attrs = {"mode": mode, "coordinate_transformation_mode": transform}
    if mode == "nearest":
        attrs["nearest_mode"] = draw(st.sampled_from(["round_prefer_floor", "round_prefer_ceil",
                                                      "floor", "ceil"]))
    if mode == "cubic":
        attrs["exclude_outside"] = draw(st.integers(0, 1))
    roi = np.array([], np.float32)
    if transform == "tf_crop_and_resize":
        # bounds no sample lands exactly on an input border with (a sample a rounding error
        # past the last input is outside in float64 but on it in onnxruntime's float32)
        lo = [draw(st.sampled_from([0.0, 0.13])) for _ in range(2)]
        hi = [draw(st.sampled_from([0.77, 1.19])) for _ in range(2)]
        roi = np.array([0, 0] + lo + [1, 1] + hi, np.float32)
        attrs["extrapolation_value"] = -2.0
    if draw(st.booleans()):
        scales = [draw(st.sampled_from([0.5, 0.6, 1.0, 1.5, 2.0, 3.0])) for _ in range(2)]
        scales = [max(s, 1 / n) for s, n in zip(scales, (h, w))]  # at least one output
        given = [roi, np.array([1, 1] + scales, np.float32)]
    else:
        sizes = [draw(st.integers(1, 12)) for _ in range(2)]
        given = [roi, np.array([], np.float32), np.array([n, 2] + sizes, np.int64)]
    return n, h, w, given, attrs


@SETTINGS
@given(case=resize_cases())
def test_resize_random(case):
    """Every mode against the op's own numpy reference (the kernel follows its interpolation
    exactly), and linear and cubic outside tf_crop_and_resize against onnxruntime too.
    Elsewhere the oracles part from the spec and each other: onnxruntime computes nearest's
    coordinates in float32 (floor, ceil and ties move at exact integers and halves), onnx's
    reference has align_corners and some nearest transforms its own way, and for
    tf_crop_and_resize both differ (onnxruntime rounds before it asks whether a sample is
    outside the crop; onnx's reference divides by a fractional output length)."""
    n, h, w, given, attrs = case
    inputs = [rand(n, 2, h, w)] + given
    constant = tuple(range(1, 1 + len(given)))
    check("Resize", inputs, attrs, opset=13, constant_inputs=constant, oracle="cnngraph",
          tol=1e-5)
    if attrs["mode"] != "nearest" and \
            attrs["coordinate_transformation_mode"] != "tf_crop_and_resize":
        check("Resize", inputs, attrs, opset=13, constant_inputs=constant, oracle="ort",
              tol=1e-4)


@pytest.mark.parametrize("given, attrs", [
    ([1, 1, 0.5, 0.6], {"mode": "linear", "antialias": 1}),
    ([1, 1, 0.5, 0.7], {"mode": "cubic", "antialias": 1, "exclude_outside": 1}),
    ([2.0, 1.5], {"mode": "nearest", "axes": [2, 3]}),
    ([0.6, 2.0], {"mode": "linear", "axes": [3, 2]}),
])
def test_resize_opset_19(given, attrs):
    check("Resize", [rand(1, 2, 7, 9), None, np.array(given, np.float32)], attrs, opset=19,
          constant_inputs=(2,), oracle="ort", tol=1e-4)


@pytest.mark.parametrize("op, opset, given, attrs", [
    ("Resize", 10, [np.array([1, 1, 0.6, 2.5], np.float32)], {"mode": "nearest"}),
    ("Resize", 10, [np.array([1, 1, 2, 1.5], np.float32)], {"mode": "linear"}),
    ("Upsample", 9, [np.array([1, 1, 2, 1.5], np.float32)], {"mode": "linear"}),
    ("Upsample", 9, [np.array([1, 1, 2, 3], np.float32)], {"mode": "nearest"}),
    ("Upsample", 7, [], {"mode": "nearest", "scales": [1.0, 1.0, 2.0, 1.5]}),
])
def test_resize_old_opsets_and_upsample(op, opset, given, attrs):
    check(op, [rand(2, 3, 5, 7)] + given, attrs, opset=opset, constant_inputs=(1,),
          oracle="ort", tol=1e-4)


def test_resize_nearest_hand_checked():
    x = np.array([[[[1, 2], [3, 4]]]], np.float32)
    compiled = check("Resize", [x, None, np.array([1, 1, 2, 2], np.float32)],
                     {"mode": "nearest"}, constant_inputs=(2,))
    assert compiled.run({"in0": x})["out0"][0, 0].tolist() == [
        [1, 1, 2, 2], [1, 1, 2, 2], [3, 3, 4, 4], [3, 3, 4, 4]]


def test_resize_of_nothing_is_a_copy():
    check("Resize", [rand(1, 2, 3, 3), None, np.array([1, 1, 1, 1], np.float32)],
          {"mode": "linear"}, constant_inputs=(2,))


# -- erf, gelu, prelu -----------------------------------------------------------------------------
def test_erf_is_accurate_to_float32():
    """Within one float32 ulp of math.erf (computed in float64) everywhere: small arguments
    (relative accuracy), around 1, the tails where erf rounds to +-1, and the specials."""
    grid = np.concatenate([np.linspace(-6, 6, 400_001), np.geomspace(1e-38, 1, 2000),
                           -np.geomspace(1e-38, 1, 2000), [0.0, 3.925, 3.93, 10, 1e30]])
    x = grid.astype(np.float32)
    compiled = check("Erf", [x], opset=13)
    got = compiled.run({"in0": x})["out0"].astype(np.float64)
    want = np.array([math.erf(v) for v in x.astype(np.float64)])
    ulp = np.spacing(np.abs(want).astype(np.float32)).astype(np.float64)
    assert float(np.max(np.abs(got - want) / ulp)) <= 1.0
    special = np.array([np.inf, -np.inf, np.nan], np.float32)
    y = compiled.run({"in0": np.resize(special, x.shape)})["out0"][:3]
    assert y[0] == 1 and y[1] == -1 and np.isnan(y[2])


@pytest.mark.parametrize("shape", [(3, 4), (2, 3, 5, 7), (20000,)])
def test_erf_shapes(shape):
    check("Erf", [rand(*shape) * 2], opset=13, tol=1e-6)


@pytest.mark.parametrize("approximate", ["none", "tanh"])
def test_gelu(approximate):
    x = rand(2, 3, 50, 90) * 3  # more than one chunk
    check("Gelu", [x], {"approximate": approximate}, opset=20, tol=2e-6)


@pytest.mark.parametrize("slope_shape", [(1,), (3, 1, 1), (5,), (2, 3, 4, 5)])
def test_prelu(slope_shape):
    check("PRelu", [rand(2, 3, 4, 5), rand(*slope_shape)], opset=16, constant_inputs=(1,),
          tol=0)
    check("PRelu", [rand(2, 3, 4, 5), rand(*slope_shape)], opset=16, tol=0)  # slope at run time


# -- a step allocates nothing ---------------------------------------------------------------------
def _i64(*v):
    return np.array(v, np.int64)


def _f32(*v):
    return np.array(v, np.float32)


ALLOCATION_CASES = {  # op: (inputs, attrs, opset, constant inputs, outputs); outputs >= 256 KB
    "ConvTranspose": ([rand(1, 16, 32, 32), rand(16, 8, 4, 4), rand(16)],
                      dict(strides=[2, 2], pads=[1, 1, 1, 1], group=2), 17, (1, 2), 1),
    "Resize-nearest": ([rand(1, 8, 64, 64), None, _f32(1, 1, 2, 2)], {"mode": "nearest"}, 19,
                       (2,), 1),
    "Resize-linear": ([rand(1, 8, 64, 64), None, _f32(1, 1, 2, 1.5)], {"mode": "linear"}, 19,
                      (2,), 1),
    "Resize-cubic": ([rand(1, 16, 64, 64), None, _f32(1, 1, 0.75, 2)], {"mode": "cubic"}, 19,
                     (2,), 1),
    "Upsample": ([rand(1, 16, 32, 32), _f32(1, 1, 2, 2)], {"mode": "nearest"}, 9, (1,), 1),
    "Erf": ([rand(1, 16, 64, 64)], {}, 13, (), 1),
    "Gelu": ([rand(1, 16, 64, 64)], {}, 20, (), 1),
    "PRelu": ([rand(1, 16, 64, 64), rand(16, 1, 1)], {}, 16, (1,), 1),
    "LayerNormalization": ([rand(64, 1024), rand(1024), rand(1024)], {}, 17, (1, 2), 3),
    "InstanceNormalization": ([rand(2, 16, 64, 64), rand(16), rand(16)], {}, 13, (1, 2), 1),
    "Split": ([rand(1, 32, 64, 64)], {"axis": 1}, 13, (), 2),
    "Where": ([RNG.random((1, 16, 64, 64)) > 0.5, rand(1, 16, 64, 64), rand(16, 1, 1)], {},
              16, (), 1),
    "Expand": ([rand(1, 16, 1, 1), _i64(2, 16, 64, 64)], {}, 13, (1,), 1),
    "Tile": ([rand(1, 16, 32, 32), _i64(1, 1, 2, 2)], {}, 13, (1,), 1),
    "Pad-reflect": ([rand(1, 16, 64, 64), _i64(0, 0, 3, 2, 0, 0, 1, 4)], {"mode": "reflect"},
                    19, (1,), 1),
    "Pad-wrap": ([rand(1, 16, 64, 64), _i64(0, 0, 3, -2, 0, 0, 70, 4)], {"mode": "wrap"},
                 19, (1,), 1),
    "Pad-edge": ([rand(1, 16, 64, 64), _i64(0, 0, 3, 2, 0, 0, 1, 4)], {"mode": "edge"},
                 19, (1,), 1),
    "Pad-value-at-run-time": ([rand(1, 16, 64, 64), _i64(0, 0, 3, 2, 0, 0, 1, 4),
                               _f32(2.5).reshape(())], {}, 19, (1,), 1),
}


@pytest.mark.parametrize("case", ALLOCATION_CASES)
def test_a_step_allocates_nothing(case):
    """Run once, then trace a second run: what it allocates (numpy's iterator buffers, Python
    objects) stays far below any of the node's outputs: no temporary the size of a tensor."""
    inputs, attrs, opset, constant, n_outputs = ALLOCATION_CASES[case]
    op_type = case.split("-")[0]
    model = one_node_model(op_type, inputs, attrs, opset, n_outputs, constant)
    compiled = cnngraph.compile(from_model(model), threads=1)
    assert compiled.kernels["n"] != "reference"
    compiled.bind({f"in{i}": x for i, x in enumerate(inputs)
                   if x is not None and i not in constant})
    current, peak = allocated_by_run(compiled)
    biggest = max(v.nbytes for v in compiled.tensors.values())
    assert biggest >= 256 * 1024
    # the executor test's bound: iterator buffers of broadcasting ufuncs (32 KB) pass
    assert peak < 64 * 1024, f"{case}: a run allocated {peak} B at its peak"
    assert current < 4 * 1024
