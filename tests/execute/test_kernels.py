"""Kernels against the ops' numpy references: one-node graphs compiled and run, random shapes
(hypothesis) for conv and pooling, and outputs that share memory with an input (in place)."""

from __future__ import annotations

import contextlib
import os

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import cnngraph
from cnngraph.execute.kernels import NUMPY_ONLY_ENV, Context, build_step, conv_numpy
from cnngraph.execute.passes import constant_of
from cnngraph.ir import Graph, Node, TensorInfo
from cnngraph.ops.conv import FusedConv, conv_reference
from cnngraph.passes.shapes import infer_shapes, make_call

RNG = np.random.default_rng(11)
SETTINGS = settings(max_examples=40, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow])


try:
    from cnngraph._native import native

    native("conv")
    PATHS = ["numpy", "native"]
except ImportError:
    PATHS = ["numpy"]


@contextlib.contextmanager
def kernels(path):
    """Run with the numpy kernels only, or with the native ones where they apply."""
    old = os.environ.get(NUMPY_ONLY_ENV)
    os.environ[NUMPY_ONLY_ENV] = "1" if path == "numpy" else "0"
    try:
        yield
    finally:
        if old is None:
            del os.environ[NUMPY_ONLY_ENV]
        else:
            os.environ[NUMPY_ONLY_ENV] = old


def rand(*shape):
    return RNG.standard_normal(shape).astype(np.float32)


def one_node(op_type, inputs, attrs=None, constants=None, opset=18, n_outputs=1):
    """A graph of one node; ``inputs`` are (name, array) pairs, graph inputs unless named in
    ``constants`` (name -> array)."""
    constants = constants or {}
    g = Graph("one", opset=opset)
    values = {}
    names = []
    for name, value in inputs:
        names.append(name)
        if name is None or name == "":
            continue
        if name in constants:
            g.add_constant(constant_of(name, constants[name]))
        else:
            g.add_input(TensorInfo(name, str(value.dtype), value.shape))
            values[name] = value
    outs = [f"y{i}" for i in range(n_outputs)]
    g.add_node(Node("n", op_type, tuple(n or "" for n in names), tuple(outs), attrs or {}))
    g.outputs.extend(outs)
    return g.freeze(), values


def check(op_type, inputs, attrs=None, constants=None, opset=18, n_outputs=1, tol=1e-5,
          kind=None):
    g, values = one_node(op_type, inputs, attrs, constants, opset, n_outputs)
    compiled = cnngraph.compile(g)
    got = compiled.run(values)
    want = cnngraph.run_reference(g, values)
    for k in want:
        np.testing.assert_allclose(got[k], want[k], rtol=tol, atol=tol)
    if kind is not None:
        assert compiled.kernels["n"] == kind
    return compiled


# -- convolution --------------------------------------------------------------------------------
@st.composite
def conv_cases(draw):
    group_kind = draw(st.sampled_from(["one", "two", "depthwise", "multiplier"]))
    cin = draw(st.integers(1, 4)) * (2 if group_kind == "two" else 1)
    group = {"one": 1, "two": 2, "depthwise": cin, "multiplier": cin}[group_kind]
    cout = {"one": draw(st.integers(1, 5)), "two": 2 * draw(st.integers(1, 3)),
            "depthwise": cin, "multiplier": 2 * cin}[group_kind]
    kh, kw = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    strides = [draw(st.integers(1, 3)), draw(st.integers(1, 3))]
    dilations = [draw(st.integers(1, 2)), draw(st.integers(1, 2))]
    pads = [draw(st.integers(0, 2)) for _ in range(4)]
    h = draw(st.integers(max(1, dilations[0] * (kh - 1) + 1 - pads[0] - pads[2]), 9))
    w = draw(st.integers(max(1, dilations[1] * (kw - 1) + 1 - pads[1] - pads[3]), 9))
    n = draw(st.integers(1, 2))
    bias = draw(st.booleans())
    return n, cin, h, w, cout, group, (kh, kw), strides, dilations, pads, bias


@pytest.mark.parametrize("path", PATHS)
@SETTINGS
@given(case=conv_cases())
def test_conv_random_shapes(path, case):
    n, cin, h, w, cout, group, (kh, kw), strides, dilations, pads, bias = case
    x, wt = rand(n, cin, h, w), rand(cout, cin // group, kh, kw)
    inputs = [("x", x), ("w", wt), ("b" if bias else "", None)]
    constants = {"w": wt, "b": rand(cout)}
    with kernels(path):
        check("Conv", inputs, dict(group=group, strides=strides, dilations=dilations,
                                   pads=pads), constants, tol=1e-4, kind=path)


def test_conv_hand_checked():
    """x (1,1,3,3) = 1..9, w (1,1,2,2) = ones, stride 1, no pad: sums of 2x2 windows."""
    x = np.arange(1, 10, dtype=np.float32).reshape(1, 1, 3, 3)
    compiled = check("Conv", [("x", x), ("w", None)], {}, {"w": np.ones((1, 1, 2, 2),
                                                                         np.float32)})
    y = compiled.run({"x": x})["y0"]
    assert y.reshape(2, 2).tolist() == [[12, 16], [24, 28]]


@pytest.mark.parametrize("act,params", [("", ()), ("Relu", ()), ("Clip", (0.0, 0.5)),
                                        ("LeakyRelu", (0.1,)), ("Sigmoid", ()), ("Tanh", ()),
                                        ("HardSigmoid", (0.2, 0.5)), ("HardSwish", ())])
@pytest.mark.parametrize("residual", [False, True])
@pytest.mark.parametrize("path", PATHS)
def test_fused_conv(act, params, residual, path):
    x, w, b, r = rand(2, 3, 7, 6), rand(4, 3, 3, 3), rand(4), rand(2, 4, 4, 3)
    inputs = [("x", x), ("w", w), ("b", b)] + ([("r", r)] if residual else [])
    with kernels(path):
        check("FusedConv", inputs, dict(strides=[2, 2], pads=[1, 1, 1, 0], activation=act,
                                        activation_params=params),
              {"w": w, "b": b}, tol=1e-5, kind=path)


@pytest.mark.parametrize("group", [1, 2])
def test_fused_conv_writes_over_its_residual(group):
    """The planner may give the output the residual's bytes (FusedConv.in_place = (3,))."""
    x, w, b = rand(2, 4, 5, 5), rand(6, 4 // group, 3, 3), rand(6)
    r = rand(2, 6, 5, 5)
    want = np.maximum(conv_reference(x, w, b, (1, 1), (1, 1, 1, 1), (1, 1), group) + r, 0)
    out = r.copy()
    from cnngraph.execute.kernels import Workspace

    ws = Workspace()
    fn = conv_numpy(ws, x, w, b, out, out, (1, 1), (1, 1, 1, 1), (1, 1), group, "Relu")
    ws.allocate()
    fn()
    np.testing.assert_allclose(out, want, rtol=1e-5, atol=1e-5)
    assert FusedConv.in_place == (3,)


# -- pooling ------------------------------------------------------------------------------------
@st.composite
def pool_cases(draw):
    kh, kw = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    strides = [draw(st.integers(1, 3)), draw(st.integers(1, 3))]
    pads = [draw(st.integers(0, kh - 1)), draw(st.integers(0, kw - 1)),
            draw(st.integers(0, kh - 1)), draw(st.integers(0, kw - 1))]
    h = draw(st.integers(max(1, kh - pads[0] - pads[2]), 9))
    w = draw(st.integers(max(1, kw - pads[1] - pads[3]), 9))
    return (draw(st.integers(1, 2)), draw(st.integers(1, 3)), h, w, [kh, kw], strides, pads,
            draw(st.booleans()), draw(st.booleans()), draw(st.sampled_from(["Max", "Average"])))


@pytest.mark.parametrize("path", PATHS)
@SETTINGS
@given(pool_cases())
def test_pool_random_shapes(path, case):
    n, c, h, w, kernel, strides, pads, ceil, include, kind = case
    attrs = dict(kernel_shape=kernel, strides=strides, pads=pads, ceil_mode=int(ceil))
    if kind == "Average":
        attrs["count_include_pad"] = int(include)
    with kernels(path):  # MaxPool has a native kernel; AveragePool runs numpy either way
        check(f"{kind}Pool", [("x", rand(n, c, h, w))], attrs, tol=1e-5,
              kind="native" if path == "native" and kind == "Max" else "numpy")


def test_maxpool_with_indices_runs_its_reference():
    check("MaxPool", [("x", rand(1, 2, 5, 5))], dict(kernel_shape=[2, 2]), n_outputs=2,
          kind="reference")


@pytest.mark.parametrize("op", ["GlobalAveragePool", "GlobalMaxPool"])
def test_global_pool(op):
    check(op, [("x", rand(2, 3, 5, 4))], kind="numpy")


# -- normalization, softmax ----------------------------------------------------------------------
@pytest.mark.parametrize("size", [1, 2, 3, 5])
def test_lrn(size):
    check("LRN", [("x", rand(2, 6, 3, 4))], dict(size=size, alpha=1e-2, beta=0.75, bias=2.0),
          kind="numpy")


def test_batchnorm_unfolded():
    c = 3
    consts = {"s": rand(c), "b": rand(c), "m": rand(c), "v": np.abs(rand(c)) + 0.5}
    check("BatchNormalization", [("x", rand(2, c, 4, 4))] + [(k, None) for k in consts],
          {"epsilon": 1e-3}, consts, kind="numpy")


@pytest.mark.parametrize("op", ["Softmax", "LogSoftmax"])
@pytest.mark.parametrize("opset,axis", [(11, 1), (11, 2), (13, -1), (13, 1)])
def test_softmax(op, opset, axis):
    check(op, [("x", rand(2, 3, 4, 5))], {"axis": axis}, opset=opset, kind="numpy")


# -- element-wise and dense -----------------------------------------------------------------------
@pytest.mark.parametrize("op", ["Add", "Sub", "Mul", "Div", "Max", "Min", "Pow"])
@pytest.mark.parametrize("shape_b", [(2, 3, 4, 5), (3, 1, 1), (5,), ()])
def test_binary_broadcasting(op, shape_b):
    a = rand(2, 3, 4, 5)
    b = np.abs(rand(*shape_b)) + 0.5 if op in ("Div", "Pow") else rand(*shape_b)
    if op == "Pow":
        a = np.abs(a)
    check(op, [("a", a), ("b", b)], kind="numpy")


@pytest.mark.parametrize("op", ["Sum", "Mean", "Max", "Min"])
def test_variadic(op):
    check(op, [("a", rand(2, 3)), ("b", rand(1, 3)), ("c", rand(2, 3))], kind="numpy")


@pytest.mark.parametrize("op", ["Relu", "Sigmoid", "Tanh", "Exp", "Abs", "Neg", "HardSwish"])
def test_unary(op):
    check(op, [("x", rand(2, 3, 4))], kind="numpy")


def test_clip_leaky_hardsigmoid():
    check("Clip", [("x", rand(2, 5)), ("lo", None), ("hi", None)], {},
          {"lo": np.float32(-0.2), "hi": np.float32(0.3)}, kind="numpy")
    check("Clip", [("x", rand(2, 5)), ("", None), ("hi", None)], {}, {"hi": np.float32(0.3)})
    check("Clip", [("x", rand(2, 5))], {"min": -0.1, "max": 0.1}, opset=9, kind="numpy")
    check("Clip", [("x", rand(2, 5)), ("lo", np.float32(0.0))], {}, kind="numpy")  # at run time
    check("Clip", [("x", rand(2, 5)), ("lo", np.float32(0.2)), ("hi", np.float32(-0.1))], {},
          {"hi": np.float32(-0.1)}, kind="numpy")  # min > max: every element is max
    check("LeakyRelu", [("x", rand(2, 5))], {"alpha": 0.3}, kind="numpy")
    check("LeakyRelu", [("x", rand(2, 5))], {"alpha": 2.0}, kind="numpy")
    check("HardSigmoid", [("x", rand(2, 5))], {"alpha": 0.3, "beta": 0.6}, kind="numpy")


@pytest.mark.parametrize("op", ["Add", "Sub", "Mul", "Div", "Max"])
@pytest.mark.parametrize("into", [0, 1])
def test_binary_in_place(op, into):
    """The planner may write an element-wise output over either input (op.in_place)."""
    a, b = rand(2, 3, 4), np.abs(rand(2, 3, 4)) + 0.5
    g, _ = one_node(op, [("a", a), ("b", b)])
    shapes = infer_shapes(g)
    want = cnngraph.run_reference(g, {"a": a, "b": b})["y0"]
    ins = [a.copy(), b.copy()]
    ctx = Context(1)
    fn = build_step(ctx, make_call(g, shapes, g.nodes["n"], shapes.calls["n"].op), ins,
                    [ins[into]])
    ctx.workspace.allocate()
    fn()
    np.testing.assert_allclose(ins[into], want, rtol=1e-6)


def test_sum_in_place_over_a_later_input():
    a, b, c = rand(4), rand(4), rand(4)
    g, _ = one_node("Sum", [("a", a), ("b", b), ("c", c)])
    shapes = infer_shapes(g)
    ins = [a, b, c.copy()]
    ctx = Context(1)
    fn = build_step(ctx, make_call(g, shapes, g.nodes["n"], shapes.calls["n"].op), ins,
                    [ins[2]])
    fn()
    np.testing.assert_allclose(ins[2], a + b + c, rtol=1e-6, atol=1e-6)  # float32 sums


@pytest.mark.parametrize("ta,tb,alpha,beta", [(0, 0, 1.0, 1.0), (1, 1, 0.5, 2.0),
                                              (0, 1, 1.0, 1.0)])
@pytest.mark.parametrize("path", PATHS)
def test_gemm(ta, tb, alpha, beta, path):
    a = rand(3, 4) if not ta else rand(4, 3)
    b = rand(4, 5) if not tb else rand(5, 4)
    attrs = dict(transA=ta, transB=tb, alpha=alpha, beta=beta)
    with kernels(path):
        check("Gemm", [("a", a), ("b", b), ("c", rand(5))], attrs, {"b": b, "c": rand(5)},
              kind=path if not ta else "numpy")
        check("Gemm", [("a", a), ("b", b)], attrs, kind="numpy")  # B at run time


def test_matmul():
    check("MatMul", [("a", rand(2, 3, 4)), ("b", rand(4, 5))], kind="numpy")
    check("MatMul", [("a", rand(4)), ("b", None)], {}, {"b": rand(4, 5)}, kind="numpy")


# -- data movement --------------------------------------------------------------------------------
def test_concat_copies_and_skips_inputs_already_in_place():
    a, b = rand(1, 2, 3), rand(1, 4, 3)
    check("Concat", [("a", a), ("b", b)], {"axis": 1}, kind="numpy")
    g, _ = one_node("Concat", [("a", a), ("b", b)], {"axis": 1})
    shapes = infer_shapes(g)
    out = np.zeros((1, 6, 3), np.float32)
    call = make_call(g, shapes, g.nodes["n"], shapes.calls["n"].op)
    # inputs already written into their slices (what an eliminated Concat looks like)
    assert build_step(Context(1), call, [out[:, :2], out[:, 2:]], [out]) is None
    # one in place, one elsewhere: one copy
    fn = build_step(Context(1), call, [out[:, :2], b], [out])
    fn()
    np.testing.assert_array_equal(out[:, 2:], b)


def test_views_are_free_in_place_and_copied_elsewhere():
    x = rand(2, 3, 4)
    check("Flatten", [("x", x)], {"axis": 1})
    g, _ = one_node("Flatten", [("x", x)], {"axis": 1})
    shapes = infer_shapes(g)
    call = make_call(g, shapes, g.nodes["n"], shapes.calls["n"].op)
    assert build_step(Context(1), call, [x], [x.reshape(2, 12)]) is None


def test_pad_transpose_gather_slice():
    x = rand(1, 2, 3, 4)
    check("Pad", [("x", x), ("p", None), ("v", None)], {},
          {"p": np.array([0, 0, 1, 2, 0, 0, 2, 1]), "v": np.float32(0.5)}, kind="numpy")
    check("Pad", [("x", x), ("p", None)], {"mode": "reflect"},
          {"p": np.array([0, 0, 1, 1, 0, 0, 1, 1])}, kind="numpy")
    check("Transpose", [("x", x)], {"perm": [0, 2, 3, 1]}, kind="numpy")
    check("Gather", [("x", x), ("i", None)], {"axis": 1}, {"i": np.array([1, 0, -1])},
          kind="numpy")
    check("Slice", [("x", x), ("s", None), ("e", None), ("a", None)], {},
          {"s": np.array([1]), "e": np.array([3]), "a": np.array([2])}, kind="numpy")


def test_ops_without_a_kernel_run_their_reference():
    """What a dedicated kernel leaves out falls back to the op's numpy reference."""
    check("Dropout", [("x", rand(2, 3))], n_outputs=2, kind="reference")  # the mask


@pytest.mark.parametrize("op", ["ReduceMean", "ReduceSum", "ReduceMax", "ReduceMin"])
@pytest.mark.parametrize("keepdims", [0, 1])
def test_reduce(op, keepdims):
    x = rand(2, 3, 4, 5)
    check(op, [("x", x), ("axes", None)], {"keepdims": keepdims},
          {"axes": np.array([2, -1])}, kind="numpy")
    check(op, [("x", x)], {"keepdims": keepdims}, kind="numpy")  # every axis


@pytest.mark.parametrize("kernel,pads,alias", [(3, (1, 1, 1, 1), False), (3, (1, 0, 2, 1), True),
                                               (1, (0, 0, 0, 0), True), (1, (0, 0, 0, 0), False)])
def test_numpy_conv_in_row_tiles(monkeypatch, kernel, pads, alias):
    """Large layers run their im2col GEMM a few output rows at a time (TILE_BYTES)."""
    from cnngraph.execute.kernels import conv as k

    monkeypatch.setattr(k, "TILE_BYTES", 1)  # one output row per GEMM
    x, w, b = rand(2, 4, 7, 6), rand(6, 2, kernel, kernel), rand(6)
    want = conv_reference(x, w, b, (1, 1), pads, (1, 1), 2)
    oh, ow = want.shape[2:]
    r = rand(2, 6, oh, ow)
    out = r.copy() if alias else np.empty_like(want)
    ws = k.Workspace()
    fn = conv_numpy(ws, x, w, b, out, out if alias else r, (1, 1), pads, (1, 1), 2, "")
    ws.allocate()
    fn()
    np.testing.assert_allclose(out, want + r, rtol=1e-5, atol=1e-5)
