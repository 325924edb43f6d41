"""Arena placement: an offset for every tensor in one arena, tensors alive at once apart.

Tensor t occupies [offset[t], offset[t] + aligned size) over the steps
[start[t], end[t]] (inclusive). No arena can be smaller than the peak of the live aligned
bytes over the steps (the lower bound); `place` takes the best of eight greedy strategies
(orders by size, by breadth, by interval length, by start; each with a first-fit and a
best-fit rule, see csrc/placement.pyx) and then improves it by a seeded local search under
a time cap.

`place` and `greedy` run the compiled core (csrc/placement.pyx); `greedy_py` and
`lower_bound_py` are its plain-Python twins and test oracles; `intervals_from_order`
and `graph_intervals` build the intervals from an execution order.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Hashable, Mapping, Optional, Sequence

import numpy as np

from .._native import native

__all__ = ["STRATEGIES", "Placement", "place", "greedy", "greedy_py", "lower_bound",
           "lower_bound_py", "check_placement", "intervals_from_order", "graph_intervals"]

ORDERS = ("size", "breadth", "length", "start")
RULES = ("first", "best")
STRATEGIES = tuple(f"{o}/{r}-fit" for o in ORDERS for r in RULES)  # index = 2*order + rule


@dataclass(frozen=True)
class Placement:
    """Offsets (bytes, one per tensor, multiples of the alignment) and the arena they need."""

    offsets: tuple
    arena_bytes: int
    lower_bound_bytes: int  # peak of the live aligned bytes: no arena is smaller
    strategy: str  # the greedy strategy searched from; "+search" if the search improved it
    greedy_arenas: dict  # strategy name -> its arena bytes
    search_iterations: int = 0

    @property
    def ratio(self) -> float:
        """arena / lower bound (1.0 when both are 0)."""
        return self.arena_bytes / self.lower_bound_bytes if self.lower_bound_bytes else 1.0


def _native():
    return native("placement")


def _arrays(sizes, starts, ends):
    return [np.ascontiguousarray(a, dtype=np.int64) for a in (sizes, starts, ends)]


def _strategy_index(strategy) -> int:
    if isinstance(strategy, str):
        if strategy not in STRATEGIES:
            raise ValueError(f"unknown strategy {strategy!r}; one of {', '.join(STRATEGIES)}")
        return STRATEGIES.index(strategy)
    return int(strategy)


def place(sizes, starts, ends, alignment: int = 64, time_budget: float = 0.05,
          seed: int = 0, max_iterations: Optional[int] = None) -> Placement:
    """Place tensors (bytes, live on steps [start, end] inclusive) in one arena (native).

    The best greedy strategy, then a local search for at most `time_budget` seconds (0:
    none) and `max_iterations` moves (None: no cap). With time_budget=0 and
    max_iterations=N the result is reproducible exactly for a given seed; under a time cap
    it depends on how many moves fit in the time.

    A chain x -> a -> b -> c (x live at step 0, a at 0-1, b at 1-2, c at 2): the arena is
    the largest adjacent pair, 256 + 320 bytes.

    >>> p = place([64, 256, 128, 320], [0, 0, 1, 2], [0, 1, 2, 2], time_budget=0)
    >>> p.arena_bytes, p.lower_bound_bytes, p.ratio
    (448, 448, 1.0)
    """
    arrays = _arrays(sizes, starts, ends)
    n = arrays[0].shape[0]
    offsets = np.empty(n, dtype=np.int64)
    arenas = np.empty(len(STRATEGIES), dtype=np.int64)
    budget = float(time_budget or 0.0)
    if max_iterations is None:  # 0 for the core: until the time is up
        max_iterations = 0
        if budget <= 0:
            budget = 0.0  # neither cap: no search
    elif max_iterations <= 0:
        budget, max_iterations = 0.0, 0  # no moves allowed: no search
    s, arena, lb, iters = _native().place(*arrays, int(alignment), budget,
                                          int(max_iterations), int(seed) & (2**64 - 1),
                                          offsets, arenas)
    greedy_arenas = {name: int(a) for name, a in zip(STRATEGIES, arenas)}
    name = STRATEGIES[s] + ("+search" if n and arena < arenas[s] else "")
    return Placement(tuple(int(v) for v in offsets), int(arena), int(lb), name,
                     greedy_arenas, int(iters))


def greedy(sizes, starts, ends, alignment: int = 64, strategy="size/first-fit"):
    """One greedy strategy (native): returns (offsets int64 array, arena bytes)."""
    arrays = _arrays(sizes, starts, ends)
    offsets = np.empty(arrays[0].shape[0], dtype=np.int64)
    arena = _native().greedy(*arrays, int(alignment), _strategy_index(strategy), offsets)
    return offsets, int(arena)


def lower_bound(sizes, starts, ends, alignment: int = 64) -> int:
    """Peak of the live aligned bytes over the steps (native)."""
    return int(_native().lower_bound(*_arrays(sizes, starts, ends), int(alignment)))


# ------------------------------------------------------------------ pure-Python twin

def _aligned(sizes, alignment):
    return [-(-int(s) // alignment) * alignment for s in sizes]


def lower_bound_py(sizes, starts, ends, alignment: int = 64) -> int:
    """The lower bound by the definition: max over steps of the live aligned bytes."""
    size = _aligned(sizes, alignment)
    steps = range(max((int(e) for e in ends), default=-1) + 1)
    return max((sum(z for z, a, b in zip(size, starts, ends) if a <= s <= b) for s in steps),
               default=0)


def _order_py(kind, size, starts, ends):
    n = len(size)
    if kind == "size":
        return sorted(range(n), key=lambda t: (-size[t], t))
    if kind == "length":
        return sorted(range(n), key=lambda t: (-(ends[t] - starts[t]), -size[t], t))
    if kind == "start":
        return sorted(range(n), key=lambda t: (starts[t], -size[t], t))
    # breadth: steps by decreasing live bytes, each step's unordered tensors largest first
    steps = range(max(ends, default=-1) + 1)
    live = {s: [t for t in range(n) if starts[t] <= s <= ends[t]] for s in steps}
    order, seen = [], set()
    for s in sorted(steps, key=lambda s: (-sum(size[t] for t in live[s]), s)):
        new = sorted((t for t in live[s] if t not in seen), key=lambda t: (-size[t], t))
        seen.update(new)
        order += new
    return order


def _fit_py(t, rule, size, starts, ends, offsets):
    if size[t] == 0:
        return 0
    spans = sorted((offsets[j], offsets[j] + size[j]) for j in offsets
                   if size[j] > 0 and starts[j] <= ends[t] and starts[t] <= ends[j])
    cur, best = 0, None  # best: (gap, offset)
    for lo, hi in spans:
        if lo > cur:
            gap = lo - cur
            if gap >= size[t]:
                if rule == "first":
                    return cur
                if best is None or gap < best[0]:
                    best = (gap, cur)
        cur = max(cur, hi)
    return best[1] if best else cur


def greedy_py(sizes, starts, ends, alignment: int = 64, strategy="size/first-fit"):
    """Pure-Python twin of `greedy`, O(n^2): returns (offsets list, arena bytes)."""
    name = STRATEGIES[_strategy_index(strategy)]
    kind, rule = name.split("/")
    rule = rule[: -len("-fit")]
    size = _aligned(sizes, alignment)
    starts, ends = [int(v) for v in starts], [int(v) for v in ends]
    placed: dict[int, int] = {}
    for t in _order_py(kind, size, starts, ends):
        placed[t] = _fit_py(t, rule, size, starts, ends, placed)
    offsets = [placed[t] for t in range(len(size))]
    return offsets, max((o + z for o, z in zip(offsets, size)), default=0)


def check_placement(sizes, starts, ends, offsets, alignment: int = 64) -> int:
    """Raise AssertionError if two tensors alive at once overlap or an offset is
    misaligned; return the arena bytes (max offset + aligned size)."""
    size = _aligned(sizes, alignment)
    n = len(size)
    for t in range(n):
        assert offsets[t] >= 0 and offsets[t] % alignment == 0, f"tensor {t}: offset {offsets[t]}"
    by_start = sorted(range(n), key=lambda t: starts[t])
    for i, t in enumerate(by_start):  # sweep: only tensors starting by t's end can meet it
        for u in by_start[i + 1:]:
            if starts[u] > ends[t]:
                break
            if size[t] and size[u] and offsets[t] < offsets[u] + size[u] \
                    and offsets[u] < offsets[t] + size[t]:
                raise AssertionError(f"tensors {t} and {u} are alive together and overlap")
    return max((o + z for o, z in zip(offsets, size)), default=0)


# ------------------------------------------------------------------ intervals

def intervals_from_order(
    order: Sequence[Hashable],
    node_inputs: Mapping[Hashable, Sequence[str]],
    node_outputs: Mapping[Hashable, Sequence[str]],
    tensor_bytes: Mapping[str, int],
    graph_inputs: Sequence[str],
    graph_outputs: Sequence[str],
):
    """(names, sizes, starts, ends) for running the nodes in `order`, with the rules of
    cnngraph.passes.liveness.order_liveness: a graph input is live from step 0, a tensor
    from its producer's step to its last reader's, graph outputs to the last step; only
    tensors in `tensor_bytes` count.

    >>> intervals_from_order(["A", "B", "C"], {"A": ["x"], "B": ["a"], "C": ["b"]},
    ...                      {"A": ["a"], "B": ["b"], "C": ["c"]},
    ...                      {"x": 100, "a": 200, "b": 50, "c": 300}, ["x"], ["c"])
    (['x', 'a', 'b', 'c'], [100, 200, 50, 300], [0, 0, 1, 2], [0, 1, 2, 2])
    """
    order = tuple(order)
    start: dict[str, int] = {}
    for name in graph_inputs:
        if name in tensor_bytes:
            start[name] = 0
    for step, node in enumerate(order):
        for name in node_outputs[node]:
            if name in tensor_bytes and name not in start:
                start[name] = step
    end = dict(start)
    for step, node in enumerate(order):
        for name in node_inputs[node]:
            if name in end:
                end[name] = max(end[name], step)
    for name in graph_outputs:
        if name in end:
            end[name] = max(len(order) - 1, 0)
    names = list(start)
    return (names, [int(tensor_bytes[n]) for n in names], [start[n] for n in names],
            [end[n] for n in names])


def graph_intervals(graph, dtype: str = "float32", batch: Optional[int] = None):
    """Intervals of a graph's activations (and inputs) in its own node order."""
    from .analysis import analyze
    from .cost import tensor_bytes

    a = analyze(graph, batch=batch, dtype=dtype)
    order = a.memory.liveness.order
    sizes = {t: tensor_bytes(a.shapes, t, dtype) for t in graph.input_names}
    sizes.update(a.costs.output_bytes)
    nodes = graph.nodes
    return intervals_from_order(order, {n: nodes[n].inputs for n in order},
                                {n: nodes[n].outputs for n in order}, sizes,
                                graph.input_names, [t for t in graph.outputs if t in sizes])
