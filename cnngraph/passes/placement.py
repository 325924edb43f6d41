"""Arena placement: an offset for every tensor in one arena, tensors alive at once apart.

Tensor t occupies [offset[t], offset[t] + aligned size) over the steps
[start[t], end[t]] (inclusive). No arena can be smaller than the peak of the live aligned
bytes over the steps (the lower bound); `place` takes the best of eight greedy strategies
(orders by size, by breadth, by interval length, by start; each with a first-fit and a
best-fit rule, see csrc/placement.pyx) and then improves it by a seeded local search under
a time cap.

`place` and `greedy` run the compiled core (csrc/placement.pyx); `greedy_py` and
`lower_bound_py` are its plain-Python twins and test oracles. The intervals come from an
execution order (cnngraph.passes.plan.intervals).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import numpy as np

from .._native import native

__all__ = ["STRATEGIES", "Placement", "place", "place_groups", "greedy", "greedy_py", "lower_bound",
           "lower_bound_py", "check_placement"]

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


# Above this many tensors `place_groups` places each group as one rectangle (its whole span
# over its whole lifetime) with the native placer: exact slices are placed in Python, whose
# cost grows with the tensors alive at once.
GROUP_EXACT_LIMIT = 2_000


def place_groups(sizes, starts, ends, groups, alignment: int = 64) -> Placement:
    """`place` when some tensors must lie together: each group (tensor, byte offset) is the
    slices of one eliminated Concat, placed as one unit at an aligned base with every slice
    at base + its offset and alive only over its own steps, so the group's bytes rise as its
    slices are produced. Other tensors are units of one. Best of four first-fit orders. Past
    GROUP_EXACT_LIMIT tensors, a group is one rectangle alive over all its slices' steps
    (valid, possibly larger) and the native `place` runs.

    >>> p = place_groups([64, 64, 128], [0, 1, 0], [2, 2, 0], [[(0, 0), (1, 64)]])
    >>> p.offsets, p.arena_bytes, p.lower_bound_bytes
    ((0, 64, 64), 192, 192)
    """
    n = len(sizes)
    if n > GROUP_EXACT_LIMIT:
        return _place_rectangles(sizes, starts, ends, groups, alignment)
    aligned = _aligned(sizes, alignment)
    in_group = {t for g in groups for t, _ in g}
    units = [list(g) for g in groups] + [[(t, 0)] for t in range(n) if t not in in_group]
    occupied = [int(sizes[t]) if t in in_group else aligned[t] for t in range(n)]
    span = [max(off + occupied[t] for t, off in u) for u in units]
    first = [min(starts[t] for t, _ in u) for u in units]
    last = [max(ends[t] for t, _ in u) for u in units]
    steps = max((int(e) for e in ends), default=-1) + 1
    keys = {"size": lambda u: (-span[u], u), "start": lambda u: (first[u], -span[u], u),
            "length": lambda u: (-(last[u] - first[u]), -span[u], u),
            "area": lambda u: (-span[u] * (last[u] - first[u] + 1), u)}
    best = None
    for name, key in keys.items():
        offsets = [0] * n
        alive: list = [[] for _ in range(steps)]  # per step: placed tensors alive then
        for u in sorted(range(len(units)), key=key):
            forbidden = []  # open intervals of bases where a member would overlap
            for t, off in units[u]:
                if not occupied[t]:
                    continue
                seen = set()
                for step in range(starts[t], ends[t] + 1):
                    for j in alive[step]:
                        if j not in seen:
                            seen.add(j)
                            forbidden.append((offsets[j] - off - occupied[t],
                                              offsets[j] + occupied[j] - off))
            base = 0
            for a, b in sorted(forbidden):
                if base <= a:
                    break
                if base < b:
                    base = -(-b // alignment) * alignment
            for t, off in units[u]:
                offsets[t] = base + off
                if occupied[t]:
                    for step in range(starts[t], ends[t] + 1):
                        alive[step].append(t)
        arena = max((o + z for o, z in zip(offsets, occupied)), default=0)
        if best is None or arena < best[1]:
            best = (offsets, arena, name)
    live = np.zeros(steps + 1, dtype=np.int64)
    for t in range(n):
        live[starts[t]] += occupied[t]
        live[ends[t] + 1] -= occupied[t]
    lb = int(np.cumsum(live).max()) if n else 0
    offsets, arena, name = best
    return Placement(tuple(offsets), arena, lb, f"groups/{name}/first-fit",
                     {f"groups/{name}": arena}, 0)


def _place_rectangles(sizes, starts, ends, groups, alignment) -> Placement:
    """Each group as one tensor spanning its slices, alive from its first slice's start to
    its last slice's end; the rest as they are; the native placer; slices at base + offset.
    The lower bound stays that of the slices' own lifetimes."""
    in_group = {t for g in groups for t, _ in g}
    singles = [t for t in range(len(sizes)) if t not in in_group]
    usize = [int(sizes[t]) for t in singles] + [max(off + int(sizes[t]) for t, off in g)
                                                for g in groups]
    ustart = [int(starts[t]) for t in singles] + [min(starts[t] for t, _ in g) for g in groups]
    uend = [int(ends[t]) for t in singles] + [max(ends[t] for t, _ in g) for g in groups]
    p = place(usize, ustart, uend, alignment=alignment)
    offsets = [0] * len(sizes)
    for k, t in enumerate(singles):
        offsets[t] = p.offsets[k]
    for k, g in enumerate(groups):
        for t, off in g:
            offsets[t] = p.offsets[len(singles) + k] + off
    grouped = [int(sizes[t]) if t in in_group else -(-int(sizes[t]) // alignment) * alignment
               for t in range(len(sizes))]
    live = np.zeros(max((int(e) for e in ends), default=-1) + 2, dtype=np.int64)
    for t in range(len(sizes)):
        live[starts[t]] += grouped[t]
        live[ends[t] + 1] -= grouped[t]
    lb = int(np.cumsum(live).max()) if len(sizes) else 0
    return Placement(tuple(offsets), p.arena_bytes, lb, f"groups as rectangles/{p.strategy}",
                     p.greedy_arenas, p.search_iterations)


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


def check_placement(sizes, starts, ends, offsets, alignment: int = 64, groups=()) -> int:
    """Raise AssertionError if two tensors alive at once overlap or an offset is
    misaligned; return the arena bytes (max offset + aligned size). Tensors of a group
    (`place_groups`) occupy their exact bytes at their group's aligned base + offset."""
    size = _aligned(sizes, alignment)
    n = len(size)
    grouped = set()
    for g in groups:
        bases = {offsets[t] - off for t, off in g}
        assert len(bases) == 1, f"group {g}: members are not at one base ({bases})"
        assert bases.pop() % alignment == 0, f"group {g}: misaligned base"
        for t, _ in g:
            grouped.add(t)
            size[t] = int(sizes[t])
    for t in range(n):
        assert offsets[t] >= 0 and (t in grouped or offsets[t] % alignment == 0), \
            f"tensor {t}: offset {offsets[t]}"
    by_start = sorted(range(n), key=lambda t: starts[t])
    for i, t in enumerate(by_start):  # sweep: only tensors starting by t's end can meet it
        for u in by_start[i + 1:]:
            if starts[u] > ends[t]:
                break
            if size[t] and size[u] and offsets[t] < offsets[u] + size[u] \
                    and offsets[u] < offsets[t] + size[t]:
                raise AssertionError(f"tensors {t} and {u} are alive together and overlap")
    return max((o + z for o, z in zip(offsets, size)), default=0)
