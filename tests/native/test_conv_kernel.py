"""The native conv / dense kernels (cnngraph._native.conv) against numpy references.

Oracle: cnngraph.ops.conv.conv_reference in float64, then the epilogue
out = act(conv + bias + residual). Both kernel flavours run: AVX2/FMA (when the CPU has it)
and the portable C path.
"""

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cnngraph.ops.conv import conv_reference

from . import ISAS, MARKS, conv

pytestmark = MARKS

RTOL, ATOL = 1e-4, 1e-5


@pytest.fixture(params=ISAS)
def isa(request):
    conv.set_isa(request.param)
    yield request.param
    conv.set_isa("avx2")


def act_ref(v, activation, alpha=None, beta=None):
    if activation == "none":
        return v
    if activation == "relu":
        return np.maximum(v, 0)
    if activation == "leaky_relu":
        return np.where(v > 0, v, (0.01 if alpha is None else alpha) * v)
    if activation == "clip":
        return np.clip(v, alpha, beta)
    if activation == "relu6":
        return np.clip(v, 0, 6)
    if activation == "sigmoid":
        return 1 / (1 + np.exp(-v))
    if activation == "hardsigmoid":
        a, b = (0.2 if alpha is None else alpha), (0.5 if beta is None else beta)
        return np.clip(a * v + b, 0, 1)
    if activation == "hardswish":
        return v * np.clip(v / 6 + 0.5, 0, 1)
    raise AssertionError(activation)


def reference(x, w, b, strides, pads, dilations, group, residual=None, activation="none",
              alpha=None, beta=None):
    # conv_reference takes ONNX pads (begins then ends): (top, left, bottom, right) already is
    y = conv_reference(x.astype(np.float64), w.astype(np.float64),
                       None if b is None else b.astype(np.float64), strides, pads, dilations, group)
    if residual is not None:
        y = y + residual
    return act_ref(y, activation, alpha, beta)


def rand(*shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


def run_conv(x, w, b=None, strides=(1, 1), pads=(0, 0, 0, 0), dilations=(1, 1), group=1,
             residual=None, threads=1, **act):
    pc = conv.PackedConv(w, b, strides, pads, dilations, group, **act)
    out = np.full(pc.output_shape(x.shape), np.nan, np.float32)
    pc.run(x, out, residual, threads=threads)
    return out


# --------------------------------------------------------------------------------------- by hand

def test_ones_3x3_pad1_by_hand(isa):
    # x (1,1,3,3) ones, w (1,1,3,3) ones, pad 1: corners see 4 taps, edges 6, the centre 9
    x, w = np.ones((1, 1, 3, 3), np.float32), np.ones((1, 1, 3, 3), np.float32)
    y = run_conv(x, w, pads=(1, 1, 1, 1))
    assert y[0, 0].tolist() == [[4, 6, 4], [6, 9, 6], [4, 6, 4]]


def test_stride_dilation_asymmetric_pads_by_hand(isa):
    # x (1,1,1,5) = 1..5, w (1,1,1,2) = [1, 10], dilation 2, stride 2, pad left 1 right 0:
    # padded row [0,1,2,3,4,5]; taps at j and j+2 for j = 0, 2 -> [0+10*2, 2+10*4] = [20, 42]
    x = np.arange(1, 6, dtype=np.float32).reshape(1, 1, 1, 5)
    w = np.array([1, 10], np.float32).reshape(1, 1, 1, 2)
    y = run_conv(x, w, strides=(1, 2), pads=(0, 1, 0, 0), dilations=(1, 2))
    assert y.shape == (1, 1, 1, 2) and y[0, 0, 0].tolist() == [20, 42]


def test_epilogue_order_by_hand(isa):
    # 1x1 conv by 2, bias -3, residual 1: relu(2x - 3 + 1) for x = [0, 1, 2] -> [0, 0, 2]
    x = np.array([0, 1, 2], np.float32).reshape(1, 1, 1, 3)
    w = np.full((1, 1, 1, 1), 2, np.float32)
    r = np.ones((1, 1, 1, 3), np.float32)
    y = run_conv(x, w, np.array([-3], np.float32), residual=r, activation="relu")
    assert y[0, 0, 0].tolist() == [0, 0, 2]


def test_depthwise_multiplier_by_hand(isa):
    # 2 input channels, group 2, 2 outputs per group (multiplier 2), 1x1 kernel [1, 2, 3, 4]:
    # outputs = [x0, 2 x0, 3 x1, 4 x1]
    x = np.array([5, 7], np.float32).reshape(1, 2, 1, 1)
    w = np.array([1, 2, 3, 4], np.float32).reshape(4, 1, 1, 1)
    y = run_conv(x, w, group=2)
    assert y.ravel().tolist() == [5, 10, 21, 28]


def test_dense_by_hand(isa):
    # x (2,2) @ w(3,2).T + b: rows [1,-1] and [2,1]
    w = np.array([[1, 2], [3, 4], [5, 6]], np.float32)
    b = np.array([0.5, 0, -20], np.float32)
    x = np.array([[1, -1], [2, 1]], np.float32)
    out = np.empty((2, 3), np.float32)
    conv.PackedDense(w, b).run(x, out)
    assert out.tolist() == [[-0.5, -1, -21], [4.5, 10, -4]]
    conv.PackedDense(w, b, activation="relu").run(x, out, residual=out)  # in place
    assert out.tolist() == [[0, 0, 0], [9, 20, 0]]
    streamed = conv.PackedDense(w, b, pack=False)
    streamed.run(x, out)
    assert out.tolist() == [[-0.5, -1, -21], [4.5, 10, -4]]
    assert streamed.scratch_bytes(2) <= 64


# --------------------------------------------------------------------------------------- random

@st.composite
def conv_cases(draw):
    group = draw(st.sampled_from([1, 1, 1, 2, 3, "dw"]))
    if group == "dw":
        c = draw(st.integers(1, 12))
        group, mg = c, draw(st.sampled_from([1, 1, 2]))
    else:
        c = group * draw(st.integers(1, 9))
        mg = draw(st.integers(1, 20))
    kh, kw = draw(st.integers(1, 5)), draw(st.integers(1, 5))
    sh, sw = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    dh, dw = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    pads = tuple(draw(st.integers(0, 3)) for _ in range(4))
    h = draw(st.integers(max(1, dh * (kh - 1) + 1 - pads[0] - pads[2]), 20))
    w = draw(st.integers(max(1, dw * (kw - 1) + 1 - pads[1] - pads[3]), 20))
    n = draw(st.integers(1, 2))
    act = draw(st.sampled_from(["none", "relu", "leaky_relu", "clip", "relu6", "sigmoid",
                                "hardsigmoid", "hardswish"]))
    bias = draw(st.booleans())
    residual = draw(st.sampled_from([None, "separate", "inplace"]))
    return dict(n=n, c=c, h=h, w=w, m=mg * group, kh=kh, kw=kw, strides=(sh, sw), pads=pads,
                dilations=(dh, dw), group=group, act=act, bias=bias, residual=residual,
                seed=draw(st.integers(0, 2**16)))


def check_case(case, threads):
    rng = np.random.default_rng(case["seed"])
    x = rng.standard_normal((case["n"], case["c"], case["h"], case["w"])).astype(np.float32)
    w = rng.standard_normal((case["m"], case["c"] // case["group"], case["kh"],
                             case["kw"])).astype(np.float32)
    b = rng.standard_normal(case["m"]).astype(np.float32) if case["bias"] else None
    act = {"activation": case["act"]}
    if case["act"] == "clip":
        act.update(alpha=-0.5, beta=0.7)
    pc = conv.PackedConv(w, b, case["strides"], case["pads"], case["dilations"], case["group"],
                         **act)
    shape = pc.output_shape(x.shape)
    res = rng.standard_normal(shape).astype(np.float32) if case["residual"] else None
    want = reference(x, w, b, case["strides"], case["pads"], case["dilations"], case["group"],
                     res, **act)
    out = res.copy() if case["residual"] == "inplace" else np.full(shape, np.nan, np.float32)
    pc.run(x, out, out if case["residual"] == "inplace" else res, threads=threads)
    np.testing.assert_allclose(out, want, rtol=RTOL, atol=ATOL * max(1.0, np.abs(want).max()))
    return out


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(case=conv_cases(), threads=st.sampled_from([1, 2]))
def test_random_convs_match_reference(isa, case, threads):
    check_case(case, threads)


@settings(max_examples=25, deadline=None)
@given(case=conv_cases())
def test_thread_counts_agree(case):
    # bit for bit: the panel grid and K blocking depend on the shapes only, never on threads
    a = check_case(case, 1)
    np.testing.assert_array_equal(a, check_case(case, 2))
    np.testing.assert_array_equal(a, check_case(case, 3))


@pytest.mark.parametrize("shape", [
    # (C, H, W, M, K, stride, pad, group): sizes that cross the kernel's blocks (K > 256,
    # spatial > 1536 columns, M not a multiple of 6, 7x7 tails), and ResNet/MobileNet layers
    (64, 56, 56, 64, 3, 1, 1, 1),
    (300, 9, 9, 70, 1, 1, 0, 1),
    (96, 14, 14, 130, 3, 2, 1, 1),
    (512, 7, 7, 20, 3, 1, 1, 1),
    (3, 61, 47, 16, 7, 2, 3, 1),
    (64, 40, 40, 64, 3, 1, 1, 64),
    (32, 29, 33, 32, 3, 2, 1, 32),
    (8, 10, 10, 8, 9, 1, 4, 8),   # depthwise 9x9: more taps than the unrolled path holds
    (302, 7, 7, 70, 1, 1, 0, 1),  # 49 columns: the last panel is one column (two K blocks)
    (13, 7, 7, 9, 1, 1, 0, 1),    # ... K not a multiple of 4
])
@pytest.mark.parametrize("threads", [1, 2])
def test_block_crossing_shapes(isa, shape, threads):
    c, h, w, m, k, s, p, g = shape
    x, wt = rand(1, c, h, w, seed=1), rand(m, c // g, k, k, seed=2)
    b, r = rand(m, seed=3), None
    pc = conv.PackedConv(wt, b, (s, s), (p, p, p, p), (1, 1), g, activation="relu")
    r = rand(*pc.output_shape(x.shape), seed=4)
    out = r.copy()
    pc.run(x, out, out, threads=threads)
    want = reference(x, wt, b, (s, s), (p, p, p, p), (1, 1), g, r, "relu")
    np.testing.assert_allclose(out, want, rtol=RTOL, atol=ATOL * np.abs(want).max())
    if threads == 2:  # the threaded splits (column chunks, shared-B row chunks) change no bit
        one = r.copy()
        pc.run(x, one, one, threads=1)
        np.testing.assert_array_equal(out, one)


@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(batch=st.integers(1, 20), k=st.one_of(st.integers(1, 300), st.integers(1000, 2600)),
       m=st.integers(1, 40), act=st.sampled_from(["none", "relu", "sigmoid"]),
       bias=st.booleans(), residual=st.sampled_from([None, "separate", "inplace"]),
       threads=st.sampled_from([1, 2]), pack=st.booleans(), seed=st.integers(0, 1000))
def test_dense_matches_numpy(isa, batch, k, m, act, bias, residual, threads, pack, seed):
    """Both paths (packed GEMM; weights streamed as given), K across the streamed path's
    1024-wide blocks and batches across its 16-row passes."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((batch, k)).astype(np.float32)
    w = rng.standard_normal((m, k)).astype(np.float32)
    b = rng.standard_normal(m).astype(np.float32) if bias else None
    r = rng.standard_normal((batch, m)).astype(np.float32) if residual else None
    want = x.astype(np.float64) @ w.T.astype(np.float64)
    if bias:
        want += b
    if residual:
        want += r
    want = act_ref(want, act)
    out = r.copy() if residual == "inplace" else np.full((batch, m), np.nan, np.float32)
    fc = conv.PackedDense(w, b, activation=act, pack=pack)
    assert fc.packed == pack
    fc.run(x, out, out if residual == "inplace" else r, threads=threads)
    np.testing.assert_allclose(out, want, rtol=RTOL, atol=ATOL * max(1.0, np.abs(want).max()))
    if threads == 2 and residual != "inplace":  # each output is summed by one thread
        one = np.empty_like(out)
        fc.run(x, one, r, threads=1)
        np.testing.assert_array_equal(out, one)


def test_caller_scratch_and_scratch_bytes():
    x, w = rand(1, 8, 12, 12), rand(16, 8, 3, 3)
    pc = conv.PackedConv(w, pads=(1, 1, 1, 1))
    need = pc.scratch_bytes(x.shape, threads=2)
    assert need > 0 and pc.scratch_bytes(x.shape, threads=1) < need
    out = np.empty(pc.output_shape(x.shape), np.float32)
    pc.run(x, out, threads=2, scratch=np.empty(need, np.uint8))
    np.testing.assert_allclose(out, reference(x, w, None, (1, 1), (1, 1, 1, 1), (1, 1), 1),
                               rtol=RTOL, atol=1e-4)
    with pytest.raises(ValueError, match="scratch has"):
        pc.run(x, out, threads=2, scratch=np.empty(need - 1, np.uint8))


# --------------------------------------------------------------------------------------- Winograd

@pytest.fixture
def winograd_on():
    prev = conv.set_winograd("on")
    yield
    conv.set_winograd(prev)


@st.composite
def winograd_cases(draw):
    pads = tuple(draw(st.integers(0, 2)) for _ in range(4))
    h = draw(st.integers(max(1, 3 - pads[0] - pads[2]), 21))
    w = draw(st.integers(max(1, 3 - pads[1] - pads[3]), 21))
    act = draw(st.sampled_from(["none", "relu", "leaky_relu", "clip", "sigmoid", "hardswish"]))
    return dict(n=draw(st.integers(1, 2)), c=draw(st.integers(2, 40)), h=h, w=w,
                m=draw(st.integers(1, 40)), kh=3, kw=3, strides=(1, 1), pads=pads,
                dilations=(1, 1), group=1, act=act, bias=draw(st.booleans()),
                residual=draw(st.sampled_from([None, "separate", "inplace"])),
                seed=draw(st.integers(0, 2**16)))


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(case=winograd_cases())
def test_winograd_matches_reference_and_threads_agree(isa, winograd_on, case):
    # F(2x2, 3x3) forced for every input: odd sizes (partial tiles), asymmetric pads, in-place
    # residual, every epilogue; within rtol 1e-4 of the float64 reference (check_case) and
    # bit for bit the same on 1, 2 and 3 threads
    x_shape = (case["n"], case["c"], case["h"], case["w"])
    pc = conv.PackedConv(np.zeros((case["m"], case["c"], 3, 3), np.float32), pads=case["pads"])
    assert pc.winograd == "on" and pc.uses_winograd(x_shape)
    a = check_case(case, 1)
    np.testing.assert_array_equal(a, check_case(case, 2))
    np.testing.assert_array_equal(a, check_case(case, 3))


@pytest.mark.parametrize("shape", [
    # (C, H, W, M, pad): ResNet-50's 3x3 layers; K blocks (C > 256), several tile blocks per
    # image and row blocks (M > 48, not a multiple of 6), 8-tile groups straddling tile rows
    (64, 56, 56, 64, 1),
    (128, 28, 28, 128, 1),
    (256, 14, 14, 256, 1),
    (512, 7, 7, 512, 1),
    (300, 9, 9, 70, 1),
    (96, 40, 35, 53, 0),
    (17, 23, 45, 100, 2),
])
@pytest.mark.parametrize("threads", [1, 2, 3])
def test_winograd_block_crossing_shapes(isa, winograd_on, shape, threads):
    c, h, w, m, p = shape
    x, wt = rand(2, c, h, w, seed=1), rand(m, c, 3, 3, seed=2) / np.float32(np.sqrt(9 * c))
    b = rand(m, seed=3)
    pc = conv.PackedConv(wt, b, (1, 1), (p, p, p, p), (1, 1), 1, activation="relu")
    assert pc.uses_winograd(x.shape)
    r = rand(*pc.output_shape(x.shape), seed=4)
    want = reference(x, wt, b, (1, 1), (p, p, p, p), (1, 1), 1, r, "relu")
    out = r.copy()
    need = pc.scratch_bytes(x.shape, threads)
    pc.run(x, out, out, threads=threads, scratch=np.empty(need, np.uint8))  # exactly enough
    np.testing.assert_allclose(out, want, rtol=RTOL, atol=RTOL * np.abs(want).max())
    if threads > 1:
        one = r.copy()
        pc.run(x, one, one, threads=1)
        np.testing.assert_array_equal(out, one)


def test_winograd_selection():
    w64 = rand(64, 64, 3, 3)
    prev = conv.set_winograd("auto")
    try:
        assert conv.winograd_mode() == "auto"
        pc = conv.PackedConv(w64, pads=(1, 1, 1, 1))
        assert pc.winograd == "auto"
        assert pc.uses_winograd((1, 64, 56, 56)) == (conv.isa() == "avx2")
        assert not pc.uses_winograd((1, 64, 3, 3))  # too few tiles: the packed GEMM runs
        # not eligible: other kernels, strides, dilations, groups; too few channels
        assert not conv.PackedConv(rand(64, 64, 5, 5)).winograd
        assert not conv.PackedConv(w64, strides=(2, 2)).winograd
        assert not conv.PackedConv(w64, dilations=(2, 1)).winograd
        assert not conv.PackedConv(rand(64, 32, 3, 3), group=2).winograd
        assert not conv.PackedConv(rand(64, 64, 3, 3), group=64).winograd
        assert not conv.PackedConv(rand(8, 8, 3, 3)).winograd
        conv.set_winograd("off")
        assert not conv.PackedConv(w64).winograd
        conv.set_winograd("on")
        pc = conv.PackedConv(rand(2, 2, 3, 3))  # any size, even one output
        assert pc.winograd == "on" and pc.uses_winograd((1, 2, 3, 3))
        assert not conv.PackedConv(rand(2, 1, 3, 3)).winograd  # one channel: depthwise kernel
        with pytest.raises(ValueError, match="winograd mode"):
            conv.set_winograd("yes")
    finally:
        conv.set_winograd(prev)


def test_winograd_auto_and_off_agree(isa):
    # the automatic choice (Winograd where it is faster) against the GEMM paths
    x, w, b = rand(1, 64, 30, 30, seed=5), rand(64, 64, 3, 3, seed=6) / 24, rand(64, seed=7)
    outs = {}
    prev = conv.winograd_mode()
    try:
        for mode in ("auto", "off"):
            conv.set_winograd(mode)
            pc = conv.PackedConv(w, b, pads=(1, 1, 1, 1), activation="relu")
            outs[mode] = np.empty(pc.output_shape(x.shape), np.float32)
            pc.run(x, outs[mode], threads=2)
    finally:
        conv.set_winograd(prev)
    want = reference(x, w, b, (1, 1), (1, 1, 1, 1), (1, 1), 1, None, "relu")
    for out in outs.values():
        np.testing.assert_allclose(out, want, rtol=RTOL, atol=RTOL * np.abs(want).max())


def test_winograd_env_var():
    import os
    import subprocess
    import sys

    code = ("from cnngraph._native import native; c = native('conv'); "
            "print(c.winograd_mode(), c.PackedConv(__import__('numpy').ones((64, 64, 3, 3), "
            "'float32')).winograd)")
    env = dict(os.environ, CNNGRAPH_WINOGRAD="off")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                         check=True).stdout.split()
    assert out == ["off", "False"]
    env["CNNGRAPH_WINOGRAD"] = "on"
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                         check=True).stdout.split()
    assert out == ["on", "on"]


# --------------------------------------------------------------------------------------- errors

def test_argument_errors():
    w = rand(4, 2, 3, 3)
    with pytest.raises(ValueError, match="4-D"):
        conv.PackedConv(w[0])
    with pytest.raises(ValueError, match="divisible by group"):
        conv.PackedConv(rand(5, 1, 3, 3), group=2)
    with pytest.raises(ValueError, match="pads"):
        conv.PackedConv(w, pads=(1, 1))
    with pytest.raises(ValueError, match=">= 1"):
        conv.PackedConv(w, strides=(0, 1))
    with pytest.raises(ValueError, match="activation"):
        conv.PackedConv(w, activation="gelu")
    with pytest.raises(ValueError, match="bias"):
        conv.PackedConv(w, rand(3))
    pc = conv.PackedConv(w, pads=(1, 1, 1, 1))
    x = rand(1, 2, 5, 5)
    out = np.empty((1, 4, 5, 5), np.float32)
    with pytest.raises(ValueError, match="channels"):
        pc.run(rand(1, 3, 5, 5), out)
    with pytest.raises(ValueError, match="float32"):
        pc.run(x.astype(np.float64), out)
    with pytest.raises(ValueError, match="C-contiguous"):
        pc.run(np.asfortranarray(x), out)
    with pytest.raises(ValueError, match="out has shape"):
        pc.run(x, np.empty((1, 4, 4, 4), np.float32))
    with pytest.raises(ValueError, match="residual has shape"):
        pc.run(x, out, residual=np.empty((1, 4, 4, 4), np.float32))
    with pytest.raises(ValueError, match="writable"):
        ro = np.empty_like(out)
        ro.flags.writeable = False
        pc.run(x, ro)
    with pytest.raises(ValueError, match="threads"):
        pc.run(x, out, threads=-1)
    with pytest.raises(ValueError, match="smaller than"):
        conv.PackedConv(rand(1, 1, 5, 5)).output_shape((1, 1, 3, 3))
    big = np.zeros(2 * out.size, np.float32)
    with pytest.raises(ValueError, match="partly overlaps"):
        pc.run(x, big[:out.size].reshape(out.shape),
               residual=big[8:8 + out.size].reshape(out.shape))
    xy = np.zeros((1, 4, 5, 5), np.float32)
    with pytest.raises(ValueError, match="overlaps out"):
        conv.PackedConv(rand(4, 4, 1, 1)).run(xy, xy)
    with pytest.raises(ValueError, match="expected"):
        conv.PackedDense(rand(3, 4)).run(rand(2, 5), np.empty((2, 3), np.float32))
    with pytest.raises(ValueError, match="2-D"):
        conv.PackedDense(rand(3, 4, 1))


def test_docstring_examples():
    # tests/test_docstrings.py leaves the compiled modules out; this one's examples run here
    import doctest

    assert doctest.testmod(conv, optionflags=doctest.ELLIPSIS).failed == 0


def test_threads_survive_fork():
    # the worker pool is rebuilt in a forked child instead of waiting on threads it lacks
    import multiprocessing as mp

    x, w = rand(1, 8, 12, 12), rand(16, 8, 3, 3)
    pc = conv.PackedConv(w, pads=(1, 1, 1, 1))
    out = np.empty(pc.output_shape(x.shape), np.float32)
    pc.run(x, out, threads=2)  # the parent's pool exists now
    ctx = mp.get_context("fork")
    with ctx.Pool(1) as pool:
        got = pool.apply_async(_run_in_child, (x, w)).get(timeout=60)
    np.testing.assert_allclose(got, out, rtol=1e-6, atol=1e-6)


def _run_in_child(x, w):
    pc = conv.PackedConv(w, pads=(1, 1, 1, 1))
    out = np.empty(pc.output_shape(x.shape), np.float32)
    pc.run(x, out, threads=2)
    return out


def test_input_shape_packs_only_the_winograd_weights():
    rng = np.random.default_rng(3)
    w = rng.standard_normal((64, 64, 3, 3)).astype(np.float32)
    x = rng.standard_normal((1, 64, 28, 28)).astype(np.float32)
    both = conv.PackedConv(w, pads=(1, 1, 1, 1))
    if not both.uses_winograd(x.shape):
        pytest.skip("Winograd is not chosen on this CPU")
    one = conv.PackedConv(w, pads=(1, 1, 1, 1), input_shape=x.shape)
    assert one.winograd == "on" and one.packed_bytes < both.packed_bytes
    a, b = (np.empty((1, 64, 28, 28), np.float32) for _ in range(2))
    both.run(x, a, threads=1)
    one.run(x, b, threads=1)
    np.testing.assert_array_equal(a, b)
    small = rng.standard_normal((1, 64, 3, 3)).astype(np.float32)  # another shape still runs
    c = np.empty((1, 64, 3, 3), np.float32)
    one.run(small, c, threads=1)
    ref = reference(small, w, None, (1, 1), (1, 1, 1, 1), (1, 1), 1)
    np.testing.assert_allclose(c, ref, rtol=1e-4, atol=1e-4 * np.abs(ref).max())


def test_bound_call_reads_its_arrays_at_each_call(isa):
    # bind checks once; each call then runs on what x (and the residual) hold at that moment
    w, b = rand(8, 4, 3, 3, seed=5), rand(8, seed=6)
    pc = conv.PackedConv(w, b, pads=(1, 1, 1, 1), activation="relu")
    x = rand(1, 4, 9, 7, seed=7)
    res = rand(1, 8, 9, 7, seed=8)
    out = np.empty_like(res)
    call = pc.bind(x, out, res, threads=2)
    for seed in (9, 10):
        x[...] = rand(1, 4, 9, 7, seed=seed)
        call()
        want = reference(x, w, b, (1, 1), (1, 1, 1, 1), (1, 1), 1, res, "relu")
        np.testing.assert_allclose(out, want, rtol=RTOL, atol=ATOL * np.abs(want).max())
    with pytest.raises(ValueError, match="expected"):
        pc.bind(x, np.empty((1, 8, 9, 6), np.float32))
    dense = conv.PackedDense(rand(5, 3, seed=11))
    xd, yd = rand(2, 3, seed=12), np.empty((2, 5), np.float32)
    dense.bind(xd, yd)()
    np.testing.assert_allclose(yd, xd @ rand(5, 3, seed=11).T, rtol=1e-5, atol=1e-5)
