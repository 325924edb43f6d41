"""The native max pooling (cnngraph._native.conv.MaxPool) against a numpy loop over windows."""

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from . import ISAS, MARKS, conv

pytestmark = MARKS


def max_pool_reference(x, kernel, strides, pads, dilations, out_hw):
    """Every window's max over the -inf padded input, one window at a time."""
    (kh, kw), (sh, sw), (pt, pl), (dh, dw), (oh, ow) = kernel, strides, pads, dilations, out_hw
    n, c, h, w = x.shape
    hp = max(h + pt, (oh - 1) * sh + (kh - 1) * dh + 1)
    wp = max(w + pl, (ow - 1) * sw + (kw - 1) * dw + 1)
    xp = np.full((n, c, hp, wp), -np.inf, np.float32)
    xp[:, :, pt:pt + h, pl:pl + w] = x
    y = np.empty((n, c, oh, ow), np.float32)
    for i in range(oh):
        for j in range(ow):
            win = xp[:, :, i * sh:i * sh + (kh - 1) * dh + 1:dh,
                     j * sw:j * sw + (kw - 1) * dw + 1:dw]
            y[:, :, i, j] = win.reshape(n, c, -1).max(axis=2)  # NaN propagates
    return y


def math_ceil(a, b):
    return -(-a // b)


@st.composite
def pool_cases(draw):
    kh, kw = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    sh, sw = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    dh, dw = draw(st.integers(1, 2)), draw(st.integers(1, 2))
    pt, pl, pb, pr = (draw(st.integers(0, min(k - 1, 2))) for k in (kh, kw, kh, kw))
    h = draw(st.integers(max(1, dh * (kh - 1) + 1 - pt - pb), 30))
    w = draw(st.integers(max(1, dw * (kw - 1) + 1 - pl - pr), 30))
    ceil = draw(st.booleans())
    rnd = math_ceil if ceil else (lambda a, b: a // b)
    oh = rnd(h + pt + pb - dh * (kh - 1) - 1, sh) + 1
    ow = rnd(w + pl + pr - dw * (kw - 1) - 1, sw) + 1
    return dict(n=draw(st.integers(1, 2)), c=draw(st.integers(1, 12)), h=h, w=w,
                kernel=(kh, kw), strides=(sh, sw), pads=(pt, pl), dilations=(dh, dw),
                out_hw=(oh, ow), nan=draw(st.booleans()), seed=draw(st.integers(0, 2**16)))


@settings(max_examples=80, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(case=pool_cases(), threads=st.sampled_from([1, 2, 3]))
@pytest.mark.parametrize("isa", ISAS)
def test_max_pool_matches_reference(isa, case, threads):
    conv.set_isa(isa)
    try:
        rng = np.random.default_rng(case["seed"])
        x = rng.standard_normal((case["n"], case["c"], case["h"], case["w"])).astype(np.float32)
        if case["nan"]:
            x.flat[rng.integers(0, x.size)] = np.nan
        pool = conv.MaxPool(case["kernel"], case["strides"], case["pads"], case["dilations"])
        out = np.full((case["n"], case["c"]) + case["out_hw"], 7.0, np.float32)
        pool.run(x, out, threads=threads)
        want = max_pool_reference(x, case["kernel"], case["strides"], case["pads"],
                                  case["dilations"], case["out_hw"])
        np.testing.assert_array_equal(out, want)  # max is exact
    finally:
        conv.set_isa("avx2")


def test_max_pool_squeezenet_shape_by_hand():
    # 3x3 stride 2, ceil mode: the last window holds one column and one row of the input
    x = np.arange(5 * 5, dtype=np.float32).reshape(1, 1, 5, 5)
    out = np.empty((1, 1, 2, 2), np.float32)
    conv.MaxPool((3, 3), (2, 2)).run(x, out)
    assert out.tolist() == [[[[12, 14], [22, 24]]]]


def test_max_pool_argument_errors():
    with pytest.raises(ValueError, match="positive"):
        conv.MaxPool((0, 3), (2, 2))
    pool = conv.MaxPool((3, 3), (2, 2))
    x = np.zeros((1, 2, 5, 5), np.float32)
    with pytest.raises(ValueError, match="same N and C"):
        pool.run(x, np.empty((1, 3, 2, 2), np.float32))
    with pytest.raises(ValueError, match="float32"):
        pool.run(x.astype(np.float64), np.empty((1, 2, 2, 2), np.float32))
