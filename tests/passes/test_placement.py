"""Arena placement: hand-checked cases, native core vs its pure-Python twin, bad inputs,
and the zoo (arena within 1% of the live-bytes lower bound).

Sizes in the hand cases are multiples of 64 bytes (the default alignment), written as
"units" of 64 beside each interval.
"""

import importlib.util
import itertools

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cnngraph.passes.placement import (
    STRATEGIES,
    check_placement,
    greedy,
    greedy_py,
    lower_bound,
    lower_bound_py,
    place,
)
from cnngraph.passes.plan import intervals
from cnngraph.passes.schedule import MemoryProblem, memory_problem
from cnngraph.passes.shapes import infer_shapes

HAVE_NATIVE = importlib.util.find_spec("cnngraph._native.placement") is not None
pytestmark = [
    pytest.mark.native,
    pytest.mark.skipif(not HAVE_NATIVE, reason="compiled extension not built: pip install -e ."),
]
U = 64


def i64(*values):
    return np.array(values, dtype=np.int64)


# ---------------------------------------------------------------- hand-checked cases

def test_chain_arena_is_the_largest_adjacent_pair():
    # x -> a -> b -> c -> d: x [0,0], a [0,1], b [1,2], c [2,3], d [3,3] (d the output)
    sizes = [2 * U, 5 * U, 1 * U, 6 * U, 3 * U]
    starts, ends = [0, 0, 1, 2, 3], [0, 1, 2, 3, 3]
    pairs = max(sizes[i] + sizes[i + 1] for i in range(len(sizes) - 1))  # c + d
    assert pairs == 9 * U
    for s in STRATEGIES:
        offsets, arena = greedy(sizes, starts, ends, strategy=s)
        assert check_placement(sizes, starts, ends, offsets) == arena
    p = place(sizes, starts, ends, time_budget=0)
    assert (p.arena_bytes, p.lower_bound_bytes, p.ratio) == (9 * U, 9 * U, 1.0)


def test_breadth_beats_size():
    # A 3u [3,5], B 3u [3,5], C 4u [0,2], D 4u [2,4]; steps 3-4 hold A+B+D = 10u (the bound).
    # By size: C@0, D@4 (meets C at step 2), A@0, B: the 1u gap [3,4) is too small -> B@8: 11u.
    # By breadth: step 3 first: D@0, A@4, B@7 (10u), then C@4 (meets only D): 10u.
    sizes, starts, ends = [3 * U, 3 * U, 4 * U, 4 * U], [3, 3, 0, 2], [5, 5, 2, 4]
    assert greedy(sizes, starts, ends, strategy="size/first-fit")[1] == 11 * U
    offsets, arena = greedy(sizes, starts, ends, strategy="breadth/first-fit")
    assert (offsets.tolist(), arena) == ([4 * U, 7 * U, 4 * U, 0], 10 * U)
    p = place(sizes, starts, ends, time_budget=0)
    assert (p.arena_bytes, p.lower_bound_bytes) == (10 * U, 10 * U)
    assert p.strategy == "breadth/first-fit"


def test_size_beats_breadth():
    # A 4u [3,4], B 3u [1,2], C 3u [1,3], D 1u [2,2]; steps 2 and 3 hold 7u (the bound).
    # By size: A@0, B@0 (never meets A), C@4, D in the gap [3,4): 7u.
    # By breadth: step 2 first: B@0, C@3, D@6; then A meets C at [3,6) -> A@6: 10u.
    sizes, starts, ends = [4 * U, 3 * U, 3 * U, 1 * U], [3, 1, 1, 2], [4, 2, 3, 2]
    offsets, arena = greedy(sizes, starts, ends, strategy="size/first-fit")
    assert (offsets.tolist(), arena) == ([0, 0, 4 * U, 3 * U], 7 * U)
    offsets, arena = greedy(sizes, starts, ends, strategy="breadth/first-fit")
    assert (offsets.tolist(), arena) == ([6 * U, 0, 3 * U, 6 * U], 10 * U)
    assert place(sizes, starts, ends, time_budget=0).arena_bytes == 7 * U


def test_alignment_rounds_sizes_up():
    # 1 byte and 65 bytes alive together: 64 + 128 with alignment 64, 1 + 65 with 1.
    assert place([1, 65], [0, 0], [0, 0]).arena_bytes == 192
    assert place([1, 65], [0, 0], [0, 0], alignment=1).arena_bytes == 66
    p = place([100, 200, 300], [0, 0, 0], [1, 1, 1], alignment=256, time_budget=0)
    assert all(o % 256 == 0 for o in p.offsets) and p.arena_bytes == 256 + 256 + 512


def test_degenerate_inputs():
    p = place([], [], [])
    assert (p.offsets, p.arena_bytes, p.lower_bound_bytes, p.ratio) == ((), 0, 0, 1.0)
    # zero-byte tensors sit at 0 and block nothing
    p = place([0, 64, 0, 64], [0, 0, 0, 0], [3, 3, 3, 3], time_budget=0)
    assert p.arena_bytes == 128 and p.offsets[0] == p.offsets[2] == 0
    # all alive at once: the sum; never together: the largest
    assert place([64, 128, 192], [0, 0, 0], [5, 5, 5]).arena_bytes == 384
    assert place([64, 128, 192], [0, 1, 2], [0, 1, 2]).arena_bytes == 192


# ---------------------------------------------------------------- random instances

@st.composite
def problems(draw, max_tensors=14, max_step=10):
    n = draw(st.integers(0, max_tensors))
    starts = draw(st.lists(st.integers(0, max_step), min_size=n, max_size=n))
    spans = draw(st.lists(st.integers(0, 5), min_size=n, max_size=n))
    sizes = draw(st.lists(st.one_of(st.sampled_from([0, 1, 63, 64, 65, 128]),
                                    st.integers(0, 2000)), min_size=n, max_size=n))
    return sizes, starts, [s + d for s, d in zip(starts, spans)]


SETTINGS = settings(max_examples=150, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow])


@SETTINGS
@given(problems(), st.sampled_from([1, 8, 64]))
def test_native_greedy_matches_python_twin(problem, alignment):
    sizes, starts, ends = problem
    lb = lower_bound_py(sizes, starts, ends, alignment)
    assert lower_bound(sizes, starts, ends, alignment) == lb
    for s in STRATEGIES:
        offsets, arena = greedy(sizes, starts, ends, alignment, s)
        want_offsets, want_arena = greedy_py(sizes, starts, ends, alignment, s)
        assert (offsets.tolist(), arena) == (want_offsets, want_arena), s
        assert check_placement(sizes, starts, ends, offsets, alignment) == arena >= lb


@SETTINGS
@given(problems(), st.integers(0, 2**64 - 1))
def test_search_is_valid_and_never_worse_than_the_best_greedy(problem, seed):
    sizes, starts, ends = problem
    p = place(sizes, starts, ends, time_budget=0, max_iterations=300, seed=seed)
    assert check_placement(sizes, starts, ends, p.offsets) == p.arena_bytes
    assert p.lower_bound_bytes <= p.arena_bytes <= min(p.greedy_arenas.values())
    assert p.greedy_arenas == {s: greedy_py(sizes, starts, ends, 64, s)[1] for s in STRATEGIES}
    again = place(sizes, starts, ends, time_budget=0, max_iterations=300, seed=seed)
    assert again == p  # reproducible for a seed and a move count


def _optimum(sizes, starts, ends):
    """First fit over every order reaches the optimum (placing an optimal layout's tensors
    by increasing offset puts each no higher than it was)."""
    best = None
    for perm in itertools.permutations(range(len(sizes))):
        placed = {}
        for t in perm:
            spans = sorted((placed[j], placed[j] + sizes[j]) for j in placed
                           if starts[j] <= ends[t] and starts[t] <= ends[j])
            cur = 0
            for lo, hi in spans:
                if lo - cur >= sizes[t]:
                    break
                cur = max(cur, hi)
            placed[t] = cur
        arena = max((placed[t] + sizes[t] for t in placed), default=0)
        best = arena if best is None else min(best, arena)
    return best


@settings(max_examples=60, deadline=None)
@given(problems(max_tensors=6, max_step=5))
def test_search_against_brute_force_optimum(problem):
    sizes, starts, ends = problem
    sizes = [-(-s // U) * U for s in sizes]
    opt = _optimum(sizes, starts, ends)
    p = place(sizes, starts, ends, time_budget=0, max_iterations=2000)
    assert p.lower_bound_bytes <= opt <= p.arena_bytes


# ---------------------------------------------------------------- bad inputs

@pytest.mark.parametrize("sizes, starts, ends, alignment, msg", [
    ([-1], [0], [0], 64, "size -1 bytes is negative"),
    ([64], [-1], [0], 64, "start step -1 is negative"),
    ([64, 64], [0, 3], [0, 2], 64, "tensor 1: end step 2 is before its start step 3"),
    ([64], [0], [0], 0, "alignment must be in"),
    ([64, 64], [0], [0, 0], 64, "one entry per tensor"),
    ([2**61], [0], [0], 64, "2\\*\\*60 bytes"),
])
def test_bad_inputs_raise_value_error(sizes, starts, ends, alignment, msg):
    with pytest.raises(ValueError, match=msg):
        place(sizes, starts, ends, alignment)
    with pytest.raises(ValueError, match=msg):
        greedy(sizes, starts, ends, alignment)


def test_native_wrapper_checks_arrays_and_strategy():
    from cnngraph._native import placement as native
    out = np.empty(1, dtype=np.int64)
    with pytest.raises(TypeError, match="sizes must be a numpy int64 array"):
        native.greedy([64], i64(0), i64(0), 64, 0, out)
    with pytest.raises(TypeError, match="starts must be a 1-D C-contiguous int64"):
        native.greedy(i64(64), np.zeros(1, dtype=np.int32), i64(0), 64, 0, out)
    with pytest.raises(ValueError, match="strategy must be in"):
        native.greedy(i64(64), i64(0), i64(0), 64, 8, out)
    with pytest.raises(ValueError, match="unknown strategy"):
        greedy([64], [0], [0], strategy="nope")


# ---------------------------------------------------------------- intervals and the zoo

def test_intervals_follow_the_liveness_rules():
    # x -> A -> a; a -> B -> b; (a, b) -> C -> c; c is the output
    problem = MemoryProblem(node_names=("A", "B", "C"), preds=((), (), ()),
                            sizes=(1, 2, 3, 4), producer=(-1, 0, 1, 2),
                            consumers=((0,), (1, 2), (2,), ()), pinned=(0, 0, 0, 1))
    assert intervals(problem, (0, 1, 2)) == ((0, 0, 1, 2), (0, 2, 2, 2))


ZOO = ["resnet18", "resnet50", "googlenet", "densenet121", "mobilenet_v2", "squeezenet1_0",
       "se_resnet50", "xception"]


@pytest.mark.parametrize("name", ZOO)
def test_zoo_arena_within_one_percent_of_the_bound(name):
    import cnngraph
    g = cnngraph.load(name)
    problem = memory_problem(g, infer_shapes(g), inplace=False)
    sizes = problem.sizes
    starts, ends = intervals(problem, range(problem.n))
    # the bound with no alignment is the analysis' peak activation memory, own order
    peak = cnngraph.analyze(g, schedule="own", inplace=False).memory.peak_activation_bytes
    assert lower_bound(sizes, starts, ends, alignment=1) == peak
    p = place(sizes, starts, ends, time_budget=0, max_iterations=5000, seed=0)
    assert check_placement(sizes, starts, ends, p.offsets) == p.arena_bytes
    assert p.ratio <= 1.01, (p.strategy, p.greedy_arenas)


def test_a_large_graph_like_instance_is_placed_validly():
    """A large graph-like instance (speed is measured in benchmarks/, not here)."""
    r = np.random.default_rng(0)
    n = 20_000
    starts = np.arange(n, dtype=np.int64)
    span = np.minimum(r.geometric(0.3, n), 50)
    long = r.random(n) < 0.01
    span[long] = r.integers(50, 2000, long.sum())
    ends = np.minimum(starts + span, n - 1)
    sizes = r.choice([1, 2, 4, 8, 16], n) * r.integers(1, 64, n) * 1024
    p = place(sizes, starts, ends, time_budget=0.1)
    assert check_placement(sizes, starts, ends, p.offsets) == p.arena_bytes
    assert p.lower_bound_bytes <= p.arena_bytes <= 1.05 * p.lower_bound_bytes


def test_groups_as_rectangles_past_the_exact_limit(monkeypatch):
    import cnngraph
    from cnngraph.passes import placement
    from cnngraph.passes.plan import plan_memory

    g = cnngraph.load("googlenet")
    exact = plan_memory(g)
    monkeypatch.setattr(placement, "GROUP_EXACT_LIMIT", 10)
    rect = plan_memory(g)
    assert rect.placement.strategy.startswith("groups as rectangles")
    check_placement(rect.problem.sizes, rect.starts, rect.ends, rect.placement.offsets, 64,
                    rect.problem.groups)
    # a rectangle holds a slice before its producer runs: never smaller than exact slices
    assert rect.arena_bytes >= exact.arena_bytes
    assert rect.placement.lower_bound_bytes == exact.placement.lower_bound_bytes
