"""Scheduling: hand-checked graphs, random DAGs against brute force, native vs twin.

Tensor sizes are in bytes.
"""

import importlib.util
import time

import networkx as nx
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from cnngraph.passes import schedule as sch
from cnngraph.passes.schedule import (
    MemoryProblem,
    dfs_order,
    dp_segment,
    dp_segment_py,
    list_order_py,
    lower_bound,
    memory_problem,
    order_peak,
    schedule,
    segments,
    sub_problem,
)

HAVE_NATIVE = importlib.util.find_spec("cnngraph._native.schedule") is not None
native = pytest.mark.skipif(not HAVE_NATIVE, reason="compiled extension not built")
IMPLS = [False, pytest.param(True, marks=native)]


def peak_by_definition(p: MemoryProblem, order) -> int:
    """Live bytes at step s: tensors with first <= s <= last (independent of liveness)."""
    n = p.n
    pos = {v: s for s, v in enumerate(order)}
    peak = 0
    for s in range(n):
        live = 0
        for t, size in enumerate(p.sizes):
            first = pos[p.producer[t]] if p.producer[t] >= 0 else 0
            last = max([first] + [pos[c] for c in p.consumers[t]])
            if p.pinned[t]:
                last = n - 1
            if first <= s <= last:
                live += size
        peak = max(peak, live)
    return peak


def brute_force(p: MemoryProblem) -> int:
    g = nx.DiGraph()
    g.add_nodes_from(range(p.n))
    g.add_edges_from((u, v) for v, ps in enumerate(p.all_preds()) for u in ps)
    return min(peak_by_definition(p, o) for o in nx.all_topological_sorts(g))


@st.composite
def problems(draw, max_nodes=8, min_nodes=1, density=None):
    """A random DAG (edges from lower to higher index, so 0..n-1 is a valid model order)."""
    n = draw(st.integers(min_nodes, max_nodes))
    dens = density if density is not None else draw(st.floats(0.1, 0.7))
    sizes, producer, consumers, pinned = [], [], [], []
    size = st.integers(0, 100)
    for _ in range(draw(st.integers(0, 2))):  # graph inputs
        sizes.append(draw(size))
        producer.append(-1)
        consumers.append(tuple(sorted(draw(st.sets(st.integers(0, n - 1), max_size=3)))))
        pinned.append(draw(st.booleans()) and draw(st.booleans()))
    for v in range(n):
        for _ in range(draw(st.sampled_from([1, 1, 1, 2, 0]))):
            later = list(range(v + 1, n))
            cons = [w for w in later if draw(st.floats(0, 1)) < dens]
            sizes.append(draw(size))
            producer.append(v)
            consumers.append(tuple(cons))
            pinned.append(not cons or (draw(st.booleans()) and draw(st.booleans())))
    preds = []
    for v in range(n):
        extra = [u for u in range(v) if draw(st.floats(0, 1)) < 0.05]
        preds.append(tuple(extra))
    return MemoryProblem(tuple(f"n{v}" for v in range(n)), tuple(preds), tuple(sizes),
                         tuple(producer), tuple(consumers), tuple(pinned))


SETTINGS = settings(max_examples=150, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow])


# --- hand-checked -------------------------------------------------------------------


def chain(sizes):
    """x -> N0 -> t0 -> N1 -> t1 ...; the last tensor is a graph output."""
    n = len(sizes) - 1
    return MemoryProblem(tuple(f"N{i}" for i in range(n)), tuple(() for _ in range(n)),
                         tuple(sizes), tuple(range(-1, n)),
                         tuple((i,) for i in range(n)) + ((),),
                         tuple(i == n for i in range(n + 1)))


@pytest.mark.parametrize("use_native", IMPLS)
@given(sizes=st.lists(st.integers(0, 1000), min_size=2, max_size=12))
@settings(max_examples=60, deadline=None)
def test_chain_optimum_is_largest_adjacent_pair(use_native, sizes):
    p = chain(sizes)
    s = schedule(p, "optimal", native=use_native)
    assert s.peak_bytes == max(a + b for a, b in zip(sizes, sizes[1:]))
    assert s.proven_optimal and s.order == tuple(range(p.n))
    assert s.lower_bound_bytes == s.peak_bytes


def inception():
    """x(10) -> S -> a(100); a -> P -> p(50) -> Q -> q(5); a -> R -> r(50) -> U -> u(5);
    (q, u) -> C -> c(10), a graph output. Model order S, P, R, Q, U, C.

    Own order, live per step: S x+a=110, P a+p=150, R a+p+r=200, Q p+r+q=105,
    U r+q+u=60, C q+u+c=20 -> 200. Best: S, P, Q, R, U, C: 110, 150, a+p+q=155,
    a+q+r=155, 60, 20 -> 155, 45 bytes less. Lower bound: P or R, a + its output = 150.
    """
    names = ("S", "P", "R", "Q", "U", "C")
    #         x    a    p    r    q    u    c
    sizes = (10, 100, 50, 50, 5, 5, 10)
    producer = (-1, 0, 1, 2, 3, 4, 5)
    consumers = ((0,), (1, 2), (3,), (4,), (5,), (5,), ())
    pinned = (False,) * 6 + (True,)
    return MemoryProblem(names, ((),) * 6, sizes, producer, consumers, pinned,
                         ("x", "a", "p", "r", "q", "u", "c"))


@pytest.mark.parametrize("use_native", IMPLS)
def test_inception_optimum_beats_model_order(use_native):
    p = inception()
    own = schedule(p, "own", native=use_native)
    opt = schedule(p, "optimal", native=use_native)
    assert own.peak_bytes == 200 and own.live_bytes == (110, 150, 200, 105, 60, 20)
    assert opt.peak_bytes == 155 == own.peak_bytes - 45
    assert opt.proven_optimal and opt.lower_bound_bytes == 150
    assert opt.names in (("S", "P", "Q", "R", "U", "C"), ("S", "R", "U", "P", "Q", "C"))
    assert opt.live_bytes[2:4] == (155, 155)


def test_unknown_kind_and_bad_orders():
    p = inception()
    with pytest.raises(ValueError, match="unknown schedule kind"):
        schedule(p, "fastest")
    with pytest.raises(ValueError, match="before its predecessor"):
        order_peak(p, [1, 0, 2, 3, 4, 5])
    with pytest.raises(ValueError, match="cycle"):
        MemoryProblem(("a", "b"), ((1,), (0,)), (), (), (), ())


@pytest.mark.parametrize("use_native", IMPLS)
def test_budget_falls_back_to_beam(use_native):
    p = inception()
    s = schedule(p, "optimal", native=use_native, max_states=2)
    assert not s.proven_optimal and s.chosen in ("beam", "own", "list", "dfs")
    assert s.peak_bytes >= 155 and s.peak_bytes == order_peak(p, s.order)


@pytest.mark.skipif(not HAVE_NATIVE, reason="the time limit is the native DP's")
def test_dp_stops_at_its_time_limit():
    # 40 independent chains x_i -> y_i, no bound to prune by: 2^40 executed sets
    k = 40
    names = tuple(f"n{i}" for i in range(2 * k))
    p = MemoryProblem(names, tuple(() for _ in names),
                      sizes=tuple(10 + i % 7 for i in range(k)) + tuple(1 for _ in range(k)),
                      producer=tuple(range(2 * k)),
                      consumers=tuple((k + i,) for i in range(k)) + tuple(() for _ in range(k)),
                      pinned=tuple(i >= k for i in range(2 * k)))
    t = time.perf_counter()
    status, _, _, states = dp_segment(p, 10**12, 0, max_states=10**9, time_limit=0.2)
    assert status == -1 and 0 < states < 10**9
    assert time.perf_counter() - t < 3


# --- random DAGs --------------------------------------------------------------------


@pytest.mark.parametrize("use_native", IMPLS)
@given(p=problems())
@SETTINGS
def test_optimum_matches_brute_force_and_bounds(use_native, p):
    opt = schedule(p, "optimal", native=use_native)
    assert opt.proven_optimal
    assert opt.peak_bytes == peak_by_definition(p, opt.order) == brute_force(p)
    assert opt.lower_bound_bytes <= opt.peak_bytes
    for kind in ("own", "list", "dfs", "heuristic"):
        h = schedule(p, kind, native=use_native)
        assert opt.peak_bytes <= h.peak_bytes == peak_by_definition(p, h.order)
    assert schedule(p, "heuristic", native=use_native).peak_bytes == min(
        schedule(p, k, native=use_native).peak_bytes for k in ("own", "list", "dfs"))


@pytest.mark.parametrize("use_native", IMPLS)
@given(p=problems(max_nodes=10, min_nodes=9, density=0.45))
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_ten_node_dags_match_brute_force(use_native, p):
    g = nx.DiGraph()
    g.add_edges_from((u, v) for v, ps in enumerate(p.all_preds()) for u in ps)
    g.add_nodes_from(range(p.n))
    count = 0
    for _ in nx.all_topological_sorts(g):
        count += 1
        if count > 20000:
            break
    assume(count <= 20000)
    assert schedule(p, "optimal", native=use_native).peak_bytes == brute_force(p)


@given(p=problems(max_nodes=12))
@SETTINGS
def test_segments_combine_by_max(p):
    """Solving between cuts gives the same optimum as one DP over the whole graph."""
    ub = schedule(p, "heuristic", native=False).peak_bytes
    status, whole, order, _ = dp_segment_py(p, ub)
    assert status == 1 and whole == order_peak(p, order)
    segs = segments(p)
    assert sorted(v for s in segs for v in s) == list(range(p.n))
    peaks = [dp_segment_py(sub_problem(p, segs, k), ub)[1] for k in range(len(segs))]
    assert max(peaks, default=0) == whole == schedule(p, "optimal", native=False).peak_bytes


@native
@given(p=problems(max_nodes=14))
@SETTINGS
def test_native_equals_twin(p):
    assert sch.list_order(p) == list_order_py(p)
    ub = order_peak(p, list_order_py(p))
    lb = lower_bound(p)
    for floor in (0, lb):
        for budget in (3, 2_000_000):
            assert sch.dp_segment(p, ub, floor, budget) == dp_segment_py(p, ub, floor, budget)
    assert sch.dp_segment(p, -1) == dp_segment_py(p, -1)  # nothing within the bound


def test_dfs_order_is_topological():
    p = inception()
    assert dfs_order(p) == [0, 1, 3, 2, 4, 5]


@native
def test_native_wrapper_checks():
    import numpy as np

    from cnngraph._native import schedule as native_mod
    z = np.zeros(1, dtype=np.int64)
    with pytest.raises(TypeError, match="int64"):
        native_mod.list_schedule(1, [0, 0], z, z, z, z, z, z, z, z, z)
    a = inception().arrays()
    with pytest.raises(ValueError, match="pred_ptr"):
        native_mod.dp_schedule(6, a["pred_ptr"][:-1], a["pred_idx"], a["in_ptr"],
                               a["in_idx"], a["out_ptr"], a["out_idx"], a["cons_ptr"],
                               a["cons_idx"], a["sizes"], a["producer"], a["pinned"],
                               1000, 0, 10, np.empty(6, dtype=np.int64))


# --- real models --------------------------------------------------------------------


@pytest.mark.parametrize("model", ["googlenet", "xception"])
def test_zoo_model(model):
    import cnngraph
    from cnngraph.passes.analysis import inference_memory
    from cnngraph.passes.cost import count_costs
    from cnngraph.passes.shapes import infer_shapes
    g = cnngraph.load(model)
    shapes = infer_shapes(g)
    p = memory_problem(g, shapes)
    mem = inference_memory(g, shapes, count_costs(g, shapes), "float32", schedule="own")
    own = schedule(p, "own", native=HAVE_NATIVE)
    assert own.peak_bytes == mem.peak_activation_bytes
    assert own.live_bytes == mem.live_bytes
    opt = schedule(p, "optimal", native=HAVE_NATIVE)
    assert opt.proven_optimal and opt.lower_bound_bytes <= opt.peak_bytes <= own.peak_bytes
    assert set(opt.names) == set(p.node_names)


@pytest.mark.parametrize("model", ["googlenet", "densenet121"])
def test_small_and_numpy_order_scoring_agree(model, monkeypatch):
    import cnngraph
    from cnngraph.passes import schedule as sched
    from cnngraph.passes.shapes import infer_shapes

    g = cnngraph.load(model)
    p = memory_problem(g, infer_shapes(g))
    orders = [list(range(p.n)), schedule(p, "dfs").order, schedule(p, "list").order]
    monkeypatch.setattr(sched, "_SMALL", 10**9)
    small = [sched.order_live(p, o) for o in orders]
    monkeypatch.setattr(sched, "_SMALL", 0)
    assert [sched.order_live(p, o) for o in orders] == small
    with pytest.raises(ValueError, match="before its predecessor"):
        sched.order_live(p, orders[0][::-1])
