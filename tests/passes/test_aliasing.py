"""Shared storage in the memory plan: views, in-place outputs, Concat slices.

The strongest check runs a graph *inside its plan*: one byte arena, every tensor read from
and written to the offset the plan gives it, nodes in the plan's order, and compares every
value with the plain numpy reference interpreter. A tensor overwritten while still needed,
or a slice written in the wrong place, changes a value.
"""

import importlib.util

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import cnngraph
from cnngraph.frontends.builder import Network
from cnngraph.passes.aliasing import alias
from cnngraph.passes.placement import check_placement
from cnngraph.passes.plan import plan_memory
from cnngraph.passes.shapes import infer_shapes, make_call


def run_in_arena(graph, plan, inputs, weights):
    """Run ``graph`` in ``plan``'s arena; assert each value read equals the reference's."""
    ref = cnngraph.run_reference(graph, inputs, weights=weights, keep=True)
    graph = graph if not weights else _with(graph, weights)
    shapes = infer_shapes(graph, input_shapes={k: v.shape for k, v in inputs.items()})
    where = plan.locations()
    arena = np.frombuffer(np.random.default_rng(1).bytes(plan.arena_bytes), np.uint8).copy()

    def view(t):
        off, nbytes = where[t]
        assert off + nbytes <= plan.arena_bytes
        return arena[off:off + nbytes].view(np.float32).reshape(shapes.types[t].shape)

    for t, v in inputs.items():
        view(t)[...] = v
    for name in plan.schedule.names:
        node = graph.nodes[name]
        values = []
        for t in node.inputs:
            if t in where:
                got = view(t).copy()
                np.testing.assert_array_equal(got, ref[t], err_msg=f"{t} read by {name}")
                values.append(got)
            else:
                values.append(ref[t] if t else None)
        call = make_call(graph, shapes, node, shapes.calls[name].op)
        call.values = values
        for t, v in zip(node.outputs, call.op.evaluate(call)):
            if t in where:
                view(t)[...] = v
    for t in graph.outputs:
        np.testing.assert_array_equal(view(t), ref[t], err_msg=f"graph output {t}")


def _with(graph, weights):
    from cnngraph.backends.reference import _with_weights
    return _with_weights(graph, weights)


def random_weights(graph, seed=0):
    rng = np.random.default_rng(seed)
    out = {}
    for name, c in graph.constants.items():
        if c.value() is None:
            v = rng.standard_normal(c.shape).astype(np.float32) * 0.3
            if "var" in name:
                v = np.abs(v) + 0.5
            out[name] = v
    return out


def check(graph, batch=1, inplace=True, schedule_kind="optimal"):
    p = plan_memory(graph, batch=batch, inplace=inplace, schedule_kind=schedule_kind)
    check_placement(p.problem.sizes, p.starts, p.ends, p.placement.offsets, 64,
                    p.problem.groups)
    shape = tuple(batch if d == "N" else d for d in graph.inputs[0].shape)
    x = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
    run_in_arena(graph, p, {graph.inputs[0].name: x}, random_weights(graph))
    return p


def leaves(graph, batch=1, inplace=True):
    shapes = infer_shapes(graph, batch=batch)
    order = [n for n in graph.order() if shapes.is_compute(n)]
    return alias(graph, shapes, order, inplace=inplace)


# -- the rules, one by one ---------------------------------------------------------------

def test_view_aliases_its_input_even_without_inplace():
    net = Network("v")
    x = net.input("x", (1, 2, 4, 4))
    c = net.conv(x, 3, 3, padding=1)
    f = net.flatten(c)
    net.output(net.dense(f, 5))
    assert leaves(net.build(), inplace=False).leaf[f.name] == c.name


def test_chain_conv_bn_relu_shares_one_storage_and_plain_numbers_without_inplace():
    net = Network("c")
    x = net.input("x", (1, 4, 8, 8))
    net.output(net.conv(net.relu(net.batchnorm(net.conv(x, 8, 3, padding=1))), 4, 1))
    g = net.build()
    on, off = check(g), check(g, inplace=False)
    big = 8 * 8 * 8 * 4  # conv1's output: conv, bn and relu are one storage in place
    assert on.peak_activation_bytes == big + 4 * 8 * 8 * 4  # + the 1x1 conv's output
    assert off.peak_activation_bytes == 2 * big  # plain: bn's input and output both live


def test_no_inplace_over_a_value_read_later():
    net = Network("r")
    x = net.input("x", (1, 4, 8, 8))
    a = net.conv(x, 4, 3, padding=1)
    b = net.relu(a)  # a is read again below, after the relu: relu must not overwrite it
    net.output(net.add(net.conv(b, 4, 3, padding=1), a))
    g = net.build()
    al = leaves(g)
    assert al.leaf[b.name] != al.leaf[a.name]
    check(g)


def test_inplace_over_a_value_whose_other_readers_come_first():
    # SE: x is read by the global pool, then by the Mul: the pool is an ancestor of the Mul
    net = Network("se")
    x = net.input("x", (1, 8, 4, 4))
    y = net.conv(x, 8, 3, padding=1)
    s = net.sigmoid(net.dense(net.flatten(net.global_avg_pool(y)), 8))
    m = net.multiply(y, s)
    net.output(net.conv(m, 2, 1))
    g = net.build()
    assert leaves(g).leaf[m.name] == y.name
    check(g)


def test_graph_inputs_and_outputs_are_never_overwritten():
    net = Network("io")
    x = net.input("x", (1, 4, 4, 4))
    r = net.relu(x)
    net.output(r)
    net.output(net.sigmoid(r))
    al = leaves(net.build())
    assert len(set(al.leaf.values())) == 3


def test_concat_slices_at_batch_1_copy_at_batch_2():
    net = Network("cat")
    x = net.input("x", ("N", 4, 6, 6))
    a = net.relu(net.conv(x, 3, 3, padding=1))
    b = net.conv(x, 5, 1)
    net.output(net.conv(net.concat([a, b]), 2, 1))
    g = net.build()
    one = check(g)
    assert [[off for _, off in grp] for grp in one.problem.groups] == [[0, 3 * 36 * 4]]
    two = check(g, batch=2)
    assert two.problem.groups == ()
    plain = check(g, inplace=False)
    assert one.peak_activation_bytes < plain.peak_activation_bytes


def test_nested_concats_make_one_group_like_a_dense_block():
    net = Network("dense")
    x = net.input("x", (1, 4, 6, 6))
    h = net.conv(x, 4, 1)
    for _ in range(3):
        h = net.concat([h, net.conv(net.relu(net.batchnorm(h)), 2, 3, padding=1)])
    net.output(net.global_avg_pool(h))
    p = check(net.build())
    assert len(p.problem.groups) == 1 and len(p.problem.groups[0]) == 4
    assert [off for _, off in p.problem.groups[0]] == [0, 4 * 144, 6 * 144, 8 * 144]


def test_concat_of_one_tensor_twice_copies():
    net = Network("twice")
    x = net.input("x", (1, 2, 4, 4))
    a = net.conv(x, 2, 1)
    net.output(net.conv(net.concat([a, a]), 2, 1))
    g = net.build()
    assert check(g).problem.groups == ()


@pytest.mark.parametrize("name", ["googlenet", "squeezenet1_0", "densenet121",
                                  "se_resnet50", "mobilenet_v2"])
def test_zoo_plans_place_and_beat_plain_liveness(name):
    g = cnngraph.load(name)
    on, off = plan_memory(g), plan_memory(g, inplace=False)
    check_placement(on.problem.sizes, on.starts, on.ends, on.placement.offsets, 64,
                    on.problem.groups)
    assert on.peak_activation_bytes < off.peak_activation_bytes
    assert on.arena_bytes <= 1.01 * on.placement.lower_bound_bytes
    assert set(on.locations()) == set(off.locations())


@pytest.mark.slow
@pytest.mark.parametrize("name", ["googlenet", "squeezenet1_0"])
def test_zoo_model_runs_correctly_inside_its_plan(name):
    check(cnngraph.load(name))


# -- random graphs -----------------------------------------------------------------------

@st.composite
def random_networks(draw):
    net = Network("rand")
    x = net.input("x", ("N", 3, 5, 5))
    ts = [net.conv(x, 2, 1)]
    for _ in range(draw(st.integers(2, 12))):
        kind = draw(st.sampled_from(["conv", "relu", "bn", "add", "concat", "se", "flat"]))
        a = ts[draw(st.integers(0, len(ts) - 1))]
        if kind == "conv":
            ts.append(net.conv(a, draw(st.integers(1, 4)), 3, padding=1))
        elif kind == "relu":
            ts.append(net.relu(a))
        elif kind == "bn":
            ts.append(net.batchnorm(a))
        elif kind == "add":
            same = [t for t in ts if t.shape == a.shape]
            ts.append(net.add(a, same[draw(st.integers(0, len(same) - 1))]))
        elif kind == "concat":
            ts.append(net.concat([a, ts[draw(st.integers(0, len(ts) - 1))]]))
        elif kind == "se":
            s = net.sigmoid(net.dense(net.flatten(net.global_avg_pool(a)), a.shape[1]))
            ts.append(net.multiply(a, s))
        else:
            ts.append(net.conv(net.reshape(net.flatten(a), (-1, 5, 5)), 2, 1))
    for t in {ts[-1].name: ts[-1], ts[draw(st.integers(0, len(ts) - 1))].name: None}:
        net.output(next(u for u in ts if u.name == t))
    return net.build()


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(random_networks(), st.sampled_from([1, 2]), st.booleans(),
       st.sampled_from(["own", "heuristic", "optimal"]))
def test_random_graphs_run_correctly_inside_their_plan(graph, batch, inplace, kind):
    check(graph, batch=batch, inplace=inplace, schedule_kind=kind)


def test_concat_written_over_later_keeps_its_own_storage():
    # relu(c) overwrites c in place; a is read again after that, so a cannot be a slice of c
    net = Network("late")
    x = net.input("x", (1, 2, 4, 4))
    a = net.conv(x, 2, 1)
    c = net.concat([a, net.conv(x, 2, 1)])
    r = net.relu(c)
    net.output(net.add(net.conv(r, 2, 1), net.conv(a, 2, 1)))
    g = net.build()
    assert leaves(g).leaf[r.name] == c.name
    assert check(g).problem.groups == ()


# -- the native core against its twin ----------------------------------------------------

HAVE_NATIVE = importlib.util.find_spec("cnngraph._native.aliasing") is not None


def _same_aliasing(a, b):
    for field in a._fields:
        x, y = getattr(a, field), getattr(b, field)
        assert x == y, field
        if isinstance(x, dict):
            assert list(x) == list(y), f"{field}: order"


@pytest.mark.skipif(not HAVE_NATIVE, reason="compiled extension not built")
@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(random_networks(), st.sampled_from([1, 2]), st.booleans(), st.booleans(),
       st.sampled_from([1, 2, 4096]))
def test_native_alias_equals_twin(graph, batch, inplace, training, budget):
    # a small visit budget makes the ancestor walks give up part way, as on huge graphs
    from cnngraph.passes import aliasing, schedule

    shapes = infer_shapes(graph, batch=batch)
    order = [n for n in graph.order() if shapes.is_compute(n)]
    old = aliasing._ANCESTRY_BUDGET
    aliasing._ANCESTRY_BUDGET = budget
    try:
        twin = aliasing.alias_py(graph, shapes, order, inplace=inplace, training=training)
        _same_aliasing(twin, alias(graph, shapes, order, inplace=inplace, training=training))
        if not training:  # the problem straight from the native numbers, and via the twin
            fast = schedule.memory_problem(graph, shapes, inplace=inplace)
            aliasing_alias, aliasing.table = aliasing.table, lambda *a, **k: None
            try:
                slow = schedule.memory_problem(graph, shapes, inplace=inplace)
            finally:
                aliasing.table = aliasing_alias
            for f in ("preds", "sizes", "producer", "consumers", "pinned", "tensor_names",
                      "groups", "homes"):
                assert getattr(fast, f) == getattr(slow, f), f
    finally:
        aliasing._ANCESTRY_BUDGET = old


@pytest.mark.skipif(not HAVE_NATIVE, reason="compiled extension not built")
def test_native_alias_declines_a_tensor_named_twice_and_checks_its_arrays():
    from cnngraph._native import aliasing as native_mod
    from cnngraph.passes.aliasing import table

    net = Network("twice")
    x = net.input("x", (1, 2, 4, 4))
    net.output(net.relu(net.conv(x, 2, 1)))
    g = net.build()
    shapes = infer_shapes(g)
    order = [n for n in g.order() if shapes.is_compute(n)]
    assert table(g, shapes, order[::-1]) is None  # not a topological order
    z = np.zeros(1, np.int64)
    with pytest.raises(ValueError, match="in_ptr"):
        native_mod.alias_arrays(1, np.zeros(3, np.int64), z[:0], np.full(1, -1), z[:0],
                                z[:0], z[:0], z, np.zeros(2, np.int64), z[:0], True, False, 9)
    with pytest.raises(TypeError, match="int64"):
        native_mod.alias_arrays(0, [0], z[:0], z[:0], z[:0], z[:0], z[:0], z[:0], z, z[:0],
                                True, False, 9)
