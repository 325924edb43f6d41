"""Liveness: hand-checked orders, native core vs its pure-Python twin, and bad inputs.

Tensor sizes are in bytes; each case writes the live set of every step beside it.
"""

import importlib.util

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import cnngraph.passes.liveness as lv_mod
from cnngraph.passes.liveness import Liveness, liveness, liveness_py, order_liveness

HAVE_NATIVE = importlib.util.find_spec("cnngraph._native.liveness") is not None
NATIVE = [
    pytest.mark.native,
    pytest.mark.skipif(not HAVE_NATIVE, reason="compiled extension not built: pip install -e ."),
]


def needs_native(test):
    for mark in NATIVE:
        test = mark(test)
    return test


@pytest.fixture(params=["python", pytest.param("native", marks=NATIVE)])
def impl(request, monkeypatch):
    """Run order_liveness on the native core, and again on the pure-Python twin."""
    if request.param == "python":
        monkeypatch.setattr(lv_mod, "liveness", liveness_py)
    return request.param


def i64(*values):
    return np.array(values, dtype=np.int64)


def csr(reads):
    """Per-tensor lists of read steps -> (consumer_ptr, consumer_step)."""
    ptr = np.cumsum([0] + [len(r) for r in reads]).astype(np.int64)
    return ptr, np.array([s for r in reads for s in r], dtype=np.int64)


# --- hand-checked orders -----------------------------------------------------------


def test_chain_peak_is_two_consecutive_activations(impl):
    # x -> A -> a -> B -> b -> C -> c, sizes x=100 a=200 b=50 c=300 (all = 650)
    lv = order_liveness(
        ["A", "B", "C"],
        {"A": ["x"], "B": ["a"], "C": ["b"]},
        {"A": ["a"], "B": ["b"], "C": ["c"]},
        {"x": 100, "a": 200, "b": 50, "c": 300},
        ["x"], ["c"],
    )
    # step 0: x+a, step 1: a+b, step 2: b+c
    assert lv == Liveness(("A", "B", "C"), (300, 250, 350), 350, 2)


def test_skip_connection_stays_live_across_steps(impl):
    # A: x->a, B: a->b, C: b->c, D: Add(a, c)->d; x=10 a=20 b=30 c=40 d=50
    lv = order_liveness(
        ["A", "B", "C", "D"],
        {"A": ["x"], "B": ["a"], "C": ["b"], "D": ["a", "c"]},
        {"A": ["a"], "B": ["b"], "C": ["c"], "D": ["d"]},
        {"x": 10, "a": 20, "b": 30, "c": 40, "d": 50},
        ["x"], ["d"],
    )
    # 0: x,a=30  1: a,b=50  2: a,b,c=90 (a waits for D)  3: a,c,d=110
    assert lv.live_bytes == (30, 50, 90, 110)
    assert (lv.peak_bytes, lv.peak_step) == (110, 3)


def test_graph_input_is_live_from_step_zero(impl):
    # A: x->a, B: a->b, C: (b, y)->c; y is read only by the last node. x=1 y=1000 a=2 b=4 c=8
    lv = order_liveness(
        ["A", "B", "C"],
        {"A": ["x"], "B": ["a"], "C": ["b", "y"]},
        {"A": ["a"], "B": ["b"], "C": ["c"]},
        {"x": 1, "y": 1000, "a": 2, "b": 4, "c": 8},
        ["x", "y"], ["c"],
    )
    # 0: x,y,a=1003  1: y,a,b=1006  2: y,b,c=1012
    assert lv.live_bytes == (1003, 1006, 1012)
    assert (lv.peak_bytes, lv.peak_step) == (1012, 2)


def test_graph_output_is_pinned_to_the_end(impl):
    # A: x->a (a graph output, read by nobody), B: x->b, C: b->c; x=8 a=16 b=4 c=2
    lv = order_liveness(
        ["A", "B", "C"],
        {"A": ["x"], "B": ["x"], "C": ["b"]},
        {"A": ["a"], "B": ["b"], "C": ["c"]},
        {"x": 8, "a": 16, "b": 4, "c": 2},
        ["x"], ["a", "c"],
    )
    # 0: x,a=24  1: x,a,b=28  2: a,b,c=22 (unpinned, a would die after step 0)
    assert lv.live_bytes == (24, 28, 22)
    assert (lv.peak_bytes, lv.peak_step) == (28, 1)


@needs_native
def test_tensor_read_twice_by_one_node_counts_once():
    # A: x->a, B: Add(a, a)->b; x=4 a=8 b=8
    lv = order_liveness(
        ["A", "B"], {"A": ["x"], "B": ["a", "a"]}, {"A": ["a"], "B": ["b"]},
        {"x": 4, "a": 8, "b": 8}, ["x"], ["b"],
    )
    assert lv.live_bytes == (12, 16)  # 0: x,a  1: a,b
    # the same through the arrays: tensor a (index 1) has the read step 1 twice
    ptr, cons = csr([[0], [1, 1], [1]])
    out = np.empty(2, dtype=np.int64)
    from cnngraph._native.liveness import liveness as native_liveness

    assert native_liveness(i64(4, 8, 8), i64(-1, 0, 1), ptr, cons, 2, out) == (16, 1)
    assert out.tolist() == [12, 16]


def test_weights_not_in_tensor_bytes_are_ignored_and_dead_outputs_live_one_step(impl):
    # Conv(x, w)->y plus an unused second output m; w is a weight (not counted)
    lv = order_liveness(
        ["conv", "relu"], {"conv": ["x", "w"], "relu": ["y"]},
        {"conv": ["y", "m"], "relu": ["z"]},
        {"x": 1, "y": 10, "m": 100, "z": 1000}, ["x"], ["z"],
    )
    assert lv.live_bytes == (111, 1010)  # 0: x,y,m  1: y,z


@needs_native
def test_first_step_wins_a_tie_and_empty_order():
    live, peak, step = liveness(i64(5, 5), i64(0, 1), *csr([[], []]), 2)
    assert (live.tolist(), peak, step) == ([5, 5], 5, 0)
    live, peak, step = liveness(i64(), i64(), i64(0), i64(), 0)
    assert (live.tolist(), peak, step) == ([], 0, -1)
    assert order_liveness([], {}, {}, {"x": 4}, ["x"], []) == Liveness((), (), 0, -1)


# --- native core vs its pure-Python twin ------------------------------------------------


@st.composite
def problems(draw, max_steps=12, max_tensors=10):
    """Random valid inputs: each tensor has a producer step and reads at or after it."""
    num_steps = draw(st.integers(0, max_steps))
    T = draw(st.integers(0, max_tensors))
    sizes, producers, reads = [], [], []
    for _ in range(T):
        sizes.append(draw(st.integers(0, 2**40)))
        p = draw(st.integers(-1, num_steps - 1)) if num_steps else -1
        producers.append(p)
        lo = max(p, 0)
        reads.append(draw(st.lists(st.integers(lo, num_steps - 1), max_size=4))
                     if num_steps else [])
    return sizes, producers, reads, num_steps


@needs_native
@settings(max_examples=400, deadline=None)
@given(problems())
def test_native_matches_python_twin(problem):
    sizes, producers, reads, num_steps = problem
    args = (i64(*sizes), i64(*producers), *csr(reads), num_steps)
    live, peak, step = liveness(*args)
    live_py, peak_py, step_py = liveness_py(*args)
    assert live.tolist() == live_py.tolist()
    assert (peak, step) == (peak_py, step_py)
    # invariants the definition implies, independent of both implementations
    if num_steps:
        spans = [max([max(p, 0), *r]) - max(p, 0) + 1 for p, r in zip(producers, reads)]
        assert int(live.sum()) == sum(s * n for s, n in zip(sizes, spans))
        assert peak == max(live_py.tolist()) and live[step] == peak
        assert all(v < peak for v in live[:step].tolist())


@st.composite
def dags(draw, max_nodes=8):
    """A random DAG (node i writes t{i}, reads earlier tensors, maybe twice) and a random
    topological order of it."""
    n = draw(st.integers(1, max_nodes))
    ins = {i: draw(st.lists(st.sampled_from(["x", "y"] + [f"t{j}" for j in range(i)]),
                            min_size=1, max_size=3)) for i in range(n)}
    order, done = [], set()
    priority = draw(st.permutations(range(n)))
    while len(order) < n:  # Kahn's algorithm, ties broken by the drawn priority
        ready = [i for i in range(n) if i not in done
                 and all(t in ("x", "y") or int(t[1:]) in done for t in ins[i])]
        node = min(ready, key=priority.__getitem__)
        order.append(node)
        done.add(node)
    sizes = {t: draw(st.integers(0, 1000)) for t in ["x", "y"] + [f"t{i}" for i in range(n)]}
    outputs = draw(st.lists(st.sampled_from(sorted(sizes)), min_size=1, max_size=2))
    return order, ins, sizes, outputs


# the impl fixture's monkeypatch holds for every example, as intended
@settings(max_examples=200, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(dags())
def test_order_liveness_matches_the_definition_in_words(impl, dag):
    # Live at a step: the running node's inputs and outputs, plus everything available
    # earlier (graph inputs, earlier outputs) that a later step or the graph output needs.
    # Graph inputs are in memory when the run starts, so all of them count at step 0.
    order, ins, sizes, outputs = dag
    lv = order_liveness(order, ins, {i: [f"t{i}"] for i in order}, sizes, ["x", "y"], outputs)
    expected = []
    for s, node in enumerate(order):
        later = {t for n in order[s + 1:] for t in ins[n]} | set(outputs)
        earlier = {"x", "y"} | {f"t{n}" for n in order[:s]}
        live = set(ins[node]) | {f"t{node}"} | (earlier & later) | ({"x", "y"} if s == 0 else set())
        expected.append(sum(sizes[t] for t in live))
    assert lv.live_bytes == tuple(expected)
    assert lv.peak_bytes == max(expected)
    assert lv.peak_step == expected.index(max(expected))


# --- bad inputs: both implementations reject them with the same message ----------------

BAD = [
    # (sizes, producer_step, reads, num_steps, message)
    ([4], [0], [[3]], 2, r"tensor 0: consumer step 3 is outside \[0, 2\)"),
    ([4], [0], [[-1]], 2, r"tensor 0: consumer step -1 is outside \[0, 2\)"),
    ([4, 4], [0, -2], [[1], []], 2, r"tensor 1: producer step -2 is outside \[-1, 2\)"),
    ([4], [2], [[]], 2, r"tensor 0: producer step 2 is outside \[-1, 2\)"),
    ([4, 4], [0, 1], [[1], [0]], 2, r"tensor 1: read at step 0, before it is produced at step 1"),
    ([-4], [0], [[]], 1, r"tensor 0: size -4 bytes is negative"),
    ([4], [-1], [[]], -1, r"num_steps must be >= 0"),
]


@pytest.mark.parametrize("sizes,prod,reads,num_steps,msg", BAD)
@pytest.mark.parametrize("impl", ["python", pytest.param("native", marks=NATIVE)])
def test_bad_steps_raise_value_error(impl, sizes, prod, reads, num_steps, msg):
    fn = liveness_py if impl == "python" else liveness
    with pytest.raises(ValueError, match=msg):
        fn(i64(*sizes), i64(*prod), *csr(reads), num_steps)


@needs_native
def test_native_wrapper_checks_arrays():
    from cnngraph._native.liveness import liveness as native_liveness

    ptr, cons = csr([[1]])
    out = np.empty(2, dtype=np.int64)
    with pytest.raises(TypeError, match="sizes must be a 1-D C-contiguous int64 array"):
        native_liveness(i64(4).astype(np.int32), i64(0), ptr, cons, 2, out)
    with pytest.raises(TypeError, match="producer_step must be a numpy int64 array"):
        native_liveness(i64(4), [0], ptr, cons, 2, out)
    with pytest.raises(TypeError, match="live_out must be a 1-D C-contiguous"):
        native_liveness(i64(4), i64(0), ptr, cons, 2, np.empty(4, dtype=np.int64)[::2])
    with pytest.raises(ValueError, match="live_out has length 3, expected num_steps=2"):
        native_liveness(i64(4), i64(0), ptr, cons, 2, np.empty(3, dtype=np.int64))
    with pytest.raises(ValueError, match="consumer_ptr has length 1, expected 2"):
        native_liveness(i64(4), i64(0), i64(0), cons, 2, out)
    with pytest.raises(ValueError, match="consumer_ptr must run from 0 to len"):
        native_liveness(i64(4), i64(0), i64(0, 2), cons, 2, out)
    with pytest.raises(ValueError, match="consumer_ptr decreases at tensor 1: 5 then 1"):
        native_liveness(i64(4, 4), i64(0, 0), i64(0, 5, 1), cons, 2, out)
    ro = np.zeros(2, dtype=np.int64)
    ro.flags.writeable = False
    with pytest.raises(ValueError, match="live_out must be writable"):
        native_liveness(i64(4), i64(0), ptr, cons, 2, ro)
    # read-only inputs are fine (const memoryviews)
    sizes = i64(4)
    sizes.flags.writeable = False
    assert native_liveness(sizes, i64(0), ptr, cons, 2, out) == (4, 0)


def test_order_liveness_names_an_unknown_tensor(impl):
    with pytest.raises(ValueError, match=r"tensor 'ghost' \(read by node 'B'\)"):
        order_liveness(["A", "B"], {"A": ["x"], "B": ["ghost"]}, {"A": ["a"], "B": ["b"]},
                       {"x": 1, "a": 1, "b": 1, "ghost": 1}, ["x"], ["b"])
    with pytest.raises(ValueError, match=r"tensor 'y' \(a graph output\)"):
        order_liveness(["A"], {"A": ["x"]}, {"A": ["a"]}, {"x": 1, "a": 1, "y": 1},
                       ["x"], ["a", "y"])
    with pytest.raises(ValueError, match=r"tensor 'a' is produced by node 'B' but is already "
                                         r"produced by node 'A'"):
        order_liveness(["A", "B"], {"A": ["x"], "B": ["x"]}, {"A": ["a"], "B": ["a"]},
                       {"x": 1, "a": 1}, ["x"], ["a"])
