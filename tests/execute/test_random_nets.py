"""Random small networks (hypothesis): branches, residual adds, concats, in-place activations,
every compile pass, the planner's shared storage; compiled run == the reference interpreter."""

from __future__ import annotations

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import cnngraph
from cnngraph.execute import random_weights

ACTIVATIONS = [None, "relu", "relu6", "sigmoid", "tanh", "leaky_relu"]


@st.composite
def networks(draw):
    batch = draw(st.sampled_from([1, 2]))
    net = cnngraph.Network("random")
    channels = draw(st.integers(1, 4))
    x = net.input("x", (batch, channels, 9, 9))
    live = [x]
    for _ in range(draw(st.integers(2, 7))):
        a = draw(st.sampled_from(live))
        kind = draw(st.sampled_from(["conv", "conv_bn", "add", "concat", "act", "pool",
                                     "mul"]))
        act = draw(st.sampled_from(ACTIVATIONS))
        same = [t for t in live if t.shape == a.shape and t is not a]
        if kind in ("conv", "conv_bn"):
            y = net.conv(a, draw(st.integers(1, 6)), draw(st.sampled_from([1, 3])),
                         padding="same", groups=1, bias=kind == "conv",
                         activation=None if kind == "conv_bn" else act)
            if kind == "conv_bn":
                y = net.batchnorm(y, activation=act)
        elif kind == "add" and same:
            y = net.add(a, draw(st.sampled_from(same)), activation=act)
        elif kind == "mul" and same:
            y = net.multiply(a, draw(st.sampled_from(same)))
        elif kind == "concat" and len(live) > 1:
            others = [t for t in live if t.shape[2:] == a.shape[2:] and t is not a]
            y = net.concat([a] + others[:2]) if others else net.activation(a, "relu")
        elif kind == "pool":
            y = net.max_pool(a, 3, stride=1, padding="same")
        else:
            y = net.activation(a, act or "relu")
        live.append(y)
    outs = [t for t in live[1:] if t.shape == live[-1].shape][-1:]
    net.output(outs[0])
    return net.build()


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(networks(), st.integers(0, 1000))
def test_random_networks_run_as_the_reference(graph, seed):
    g = random_weights(graph, seed=seed)
    compiled = cnngraph.compile(g, threads=1)
    x = np.random.default_rng(seed).standard_normal(compiled.input_types["x"].shape)
    x = x.astype(np.float32)
    got = compiled.run({"x": x})
    want = cnngraph.run_reference(g, {"x": x})
    for k in want:
        np.testing.assert_allclose(got[k], want[k], rtol=1e-4, atol=1e-5)
    for v in compiled.tensors.values():
        assert v.base is compiled.arena
