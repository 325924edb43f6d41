"""Memory-aware scheduling: an execution order of the running nodes with a low activation peak.

A `MemoryProblem` is n nodes (0..n-1 is the model's own order), their predecessors, and
the activation tensors: bytes, producer node (-1: a graph input, live from the start),
consumer nodes, and a pinned flag (graph outputs stay live to the end). The peak of an
order is the liveness module's: the maximum over steps of the bytes live at that step.

Orders (`schedule(problem, kind)`):

- ``own``: the model's order.
- ``list``: a memory-aware list scheduler (among ready nodes, the one leaving the fewest
  live bytes after it runs; then the smallest step total; then model order). Native.
- ``dfs``: post-order of a depth-first walk from the sinks.
- ``heuristic``: the best of own, list and dfs.
- ``optimal``: dynamic programming over executed sets (a state is the set of executed
  nodes; its live bytes are fixed by the set; its value is the best peak reaching it),
  pruned by the heuristic's peak, taking free moves at once, and solved independently
  between single-node cuts (nodes every path passes through), whose peaks combine by max.
  Past a state budget a bounded beam search takes over and ``proven_optimal`` is False.

The native cores live in csrc/schedule.pyx; `list_order_py` and `dp_segment_py` are their
pure-Python twins and test oracles.
"""

from __future__ import annotations

import itertools
import time
from dataclasses import dataclass, field
from typing import Optional, Sequence

import numpy as np

from .._native import native
from .liveness import liveness

__all__ = ["MemoryProblem", "Schedule", "memory_problem", "order_peak", "lower_bound",
           "schedule", "list_order_py", "dfs_order", "dp_segment_py", "segments",
           "sub_problems",
           "KINDS"]

KINDS = ("own", "list", "dfs", "heuristic", "optimal")
DEFAULT_MAX_STATES = 2_000_000
DEFAULT_TIME_LIMIT = 10.0  # seconds the exact search may take in all, before the beam
DEFAULT_BEAM = 256
_LB_ANCESTRY_LIMIT = 2_000  # above this many nodes the lower bound skips ancestry (it is
# quadratic in Python: 48 s at 10k nodes); without it the bound is weaker but still a bound


@dataclass(frozen=True)
class MemoryProblem:
    """Nodes 0..n-1 (model order), predecessor lists, and the activation tensors."""

    node_names: tuple
    preds: tuple  # per node: tuple of predecessor node indices
    sizes: tuple  # per tensor: bytes
    producer: tuple  # per tensor: node index, or -1 for a graph input
    consumers: tuple  # per tensor: tuple of distinct consumer node indices
    pinned: tuple  # per tensor: bool, live to the end (graph output)
    tensor_names: tuple = ()
    # Concat elimination: tensors placed together, each at its byte offset in the group
    groups: tuple = ()  # of tuples of (tensor, offset)
    # every activation tensor: (name, the problem tensor at its offset, its bytes)
    homes: tuple = ()
    # False: built from a graph in topological order (memory_problem): skip the checks
    check: bool = field(default=True, compare=False, repr=False)
    _cache: dict = field(default_factory=dict, compare=False, repr=False)

    def __post_init__(self):
        if not self.check:
            return
        n, T = len(self.node_names), len(self.sizes)
        if not (len(self.preds) == n and len(self.producer) == T == len(self.consumers)
                == len(self.pinned)):
            raise ValueError("MemoryProblem: preds must have one entry per node, and "
                             "producer/consumers/pinned one per tensor")
        if self.tensor_names and len(self.tensor_names) != T:
            raise ValueError("MemoryProblem: tensor_names must have one entry per tensor")
        for t in range(T):
            if self.sizes[t] < 0:
                raise ValueError(f"tensor {t}: negative size {self.sizes[t]}")
            p = self.producer[t]
            if not -1 <= p < n:
                raise ValueError(f"tensor {t}: producer {p} is outside [-1, {n})")
            if len(set(self.consumers[t])) != len(self.consumers[t]):
                raise ValueError(f"tensor {t}: repeated consumers {self.consumers[t]}")
            for c in self.consumers[t]:
                if not 0 <= c < n or c == p:
                    raise ValueError(f"tensor {t}: bad consumer {c} (producer {p})")
        for v, ps in enumerate(self.preds):
            for u in ps:
                if not 0 <= u < n or u == v:
                    raise ValueError(f"node {v}: bad predecessor {u}")
        self.topo_check()

    @property
    def n(self) -> int:
        return len(self.node_names)

    def all_preds(self) -> list:
        """Predecessors: the declared ones plus every consumed tensor's producer."""
        if "preds" not in self._cache:
            if self.n > _SMALL:  # from the CSR arrays, which compute them in numpy
                ptr, idx = self.arrays()["pred_ptr"].tolist(), self.arrays()["pred_idx"].tolist()
                self._cache["preds"] = [idx[ptr[v]:ptr[v + 1]] for v in range(self.n)]
                return self._cache["preds"]
            ps = [set(p) for p in self.preds]
            for t, cs in enumerate(self.consumers):
                if self.producer[t] >= 0:
                    for c in cs:
                        ps[c].add(self.producer[t])
            self._cache["preds"] = [sorted(p) for p in ps]
        return self._cache["preds"]

    def topo_check(self) -> None:
        preds = self.all_preds()
        indeg = [len(p) for p in preds]
        succ = [[] for _ in range(self.n)]
        for v, ps in enumerate(preds):
            for u in ps:
                succ[u].append(v)
        stack = [v for v in range(self.n) if indeg[v] == 0]
        seen = 0
        while stack:
            u = stack.pop()
            seen += 1
            for v in succ[u]:
                indeg[v] -= 1
                if indeg[v] == 0:
                    stack.append(v)
        if seen != self.n:
            raise ValueError("MemoryProblem: the dependencies have a cycle")

    def arrays(self) -> dict:
        """CSR int64 arrays for the native core (cached)."""
        if "arrays" in self._cache:
            return self._cache["arrays"]
        if self.n > _SMALL:
            self._cache["arrays"] = a = self._arrays_numpy()
            return a
        n, T = self.n, len(self.sizes)
        preds = self.all_preds()
        ins = [[] for _ in range(n)]
        outs = [[] for _ in range(n)]
        for t in range(T):
            for c in self.consumers[t]:
                ins[c].append(t)
            if self.producer[t] >= 0:
                outs[self.producer[t]].append(t)

        def csr(lists):
            ptr = np.cumsum([0] + [len(x) for x in lists]).astype(np.int64)
            idx = np.array([i for x in lists for i in x], dtype=np.int64)
            return ptr, idx

        a = {}
        a["pred_ptr"], a["pred_idx"] = csr(preds)
        a["in_ptr"], a["in_idx"] = csr(ins)
        a["out_ptr"], a["out_idx"] = csr(outs)
        a["cons_ptr"], a["cons_idx"] = csr(self.consumers)
        a["sizes"] = np.array(self.sizes, dtype=np.int64)
        a["producer"] = np.array(self.producer, dtype=np.int64)
        a["pinned"] = np.array([1 if p else 0 for p in self.pinned], dtype=np.int64)
        self._cache["arrays"] = a
        self._cache["ins"], self._cache["outs"] = ins, outs
        return a

    def _arrays_numpy(self) -> dict:
        """`arrays` without a Python loop per node or tensor (the same arrays: rows in
        index order, each row's entries ascending)."""
        n, T = self.n, len(self.sizes)
        i64 = np.int64

        def csr(rows, cols, nrows):  # rows sorted (stably) by row
            ptr = np.zeros(nrows + 1, dtype=i64)
            np.cumsum(np.bincount(rows, minlength=nrows), out=ptr[1:])
            return ptr, np.ascontiguousarray(cols, dtype=i64)

        a = {}
        lens = np.fromiter(map(len, self.consumers), dtype=i64, count=T)
        cons_idx = np.fromiter(itertools.chain.from_iterable(self.consumers), dtype=i64,
                               count=int(lens.sum()))
        a["cons_ptr"], a["cons_idx"] = csr(np.repeat(np.arange(T, dtype=i64), lens), cons_idx,
                                           T)
        a["sizes"] = np.array(self.sizes, dtype=i64)
        producer = a["producer"] = np.array(self.producer, dtype=i64)
        a["pinned"] = np.array(self.pinned, dtype=bool).astype(i64)
        cons_t = np.repeat(np.arange(T, dtype=i64), lens)  # the tensor of each consumer entry
        by_node = np.argsort(cons_idx, kind="stable")
        a["in_ptr"], a["in_idx"] = csr(cons_idx[by_node], cons_t[by_node], n)
        made = np.flatnonzero(producer >= 0)
        by_producer = made[np.argsort(producer[made], kind="stable")]
        a["out_ptr"], a["out_idx"] = csr(producer[by_producer], by_producer, n)
        # predecessors: declared ones and consumed tensors' producers, each row sorted, unique
        plens = np.fromiter(map(len, self.preds), dtype=i64, count=n)
        declared = np.fromiter(itertools.chain.from_iterable(self.preds), dtype=i64,
                               count=int(plens.sum()))
        fed = producer[cons_t] >= 0
        v = np.concatenate((np.repeat(np.arange(n, dtype=i64), plens), cons_idx[fed]))
        u = np.concatenate((declared, producer[cons_t[fed]]))
        key = np.unique(v * n + u)
        a["pred_ptr"], a["pred_idx"] = csr(key // n, key % n, n)
        return a

    def node_tensors(self):
        """Per node: the tensors it reads and the tensors it writes (lists, cached)."""
        if "ins" not in self._cache:
            a = self.arrays()
            for key, ptr, idx in (("ins", a["in_ptr"], a["in_idx"]),
                                  ("outs", a["out_ptr"], a["out_idx"])):
                ptr, idx = ptr.tolist(), idx.tolist()
                self._cache[key] = [idx[ptr[v]:ptr[v + 1]] for v in range(self.n)]
        return self._cache["ins"], self._cache["outs"]


@dataclass(frozen=True)
class Schedule:
    """An execution order and its activation memory."""

    kind: str  # own, list, dfs, heuristic (which one: see `chosen`), optimal, beam
    order: tuple  # node indices
    names: tuple  # node names, in the order
    peak_bytes: int
    live_bytes: tuple  # per step
    proven_optimal: bool
    lower_bound_bytes: int
    states_explored: int = 0
    chosen: str = ""  # for heuristic/optimal: which order won (or 'dp', 'beam')
    seconds: float = 0.0


# --- building a problem -----------------------------------------------------------------


def memory_problem(graph, shapes, dtype: str = "float32",
                   order: Optional[Sequence[str]] = None,
                   inplace: bool = True) -> MemoryProblem:
    """The scheduling problem of a graph's running nodes (``shapes.is_compute``).

    Tensors are the activations' storages (cnngraph.passes.aliasing): graph inputs and the
    running nodes' outputs, views folded into their source, and with ``inplace`` in-place
    outputs into the input they overwrite and Concat inputs into slices of its output.
    Bytes come from cost.tensor_bytes; constants are parameters and left out. ``order``
    (node names) sets the numbering 0..n-1; the default is the model's own order.
    """
    from .aliasing import alias_py, table

    if order is None:
        order = [n for n in graph.order() if shapes.is_compute(n)]
    order = list(order)
    tb = table(graph, shapes, order, dtype, inplace=inplace)
    if tb is not None:
        return _problem_from_table(order, tb)
    al = alias_py(graph, shapes, order, dtype, inplace=inplace)
    names, sizes, producer, consumers, pinned = [], [], [], [], []
    readers = al.readers
    for s, (_tensors, keep, pin) in al.leaves.items():
        p = al.producer[s]
        if len(keep) == 1:
            cs = readers[s]
        else:
            cs = sorted({c for t in keep for c in readers[t]} - {p})
        names.append(s)
        sizes.append(al.nbytes[s])
        producer.append(p)
        consumers.append(tuple(cs))
        pinned.append(pin)
    index = {s: k for k, s in enumerate(names)}
    return MemoryProblem(
        node_names=tuple(order),
        preds=tuple(map(tuple, al.preds)),
        sizes=tuple(sizes),
        producer=tuple(producer),
        consumers=tuple(consumers),
        pinned=tuple(pinned),
        tensor_names=tuple(names),
        groups=tuple(tuple((index[s], off) for s, off in g) for g in al.groups),
        homes=tuple((t, index[s], al.nbytes[t]) for t, s in al.leaf.items()),
        check=False,
    )


def _problem_from_table(order: list, tb) -> MemoryProblem:
    """`memory_problem` from the native aliasing's numbers, without naming every storage's
    tensors first (the same problem as from `alias`'s dicts)."""
    from .aliasing import rows, table_groups

    lv, names = tb.leaves, tb.names
    leaf_st = lv["leaf_st"]
    sizes, producer = np.array(tb.sizes, dtype=np.int64), np.array(tb.producer, dtype=np.int64)
    index = np.full(len(names), -1, dtype=np.int64)
    index[leaf_st] = np.arange(len(leaf_st), dtype=np.int64)
    leaf_names = [names[s] for s in leaf_st.tolist()]
    at = {s: k for k, s in enumerate(leaf_names)}
    leaf_t = lv["leaf_t"]
    return MemoryProblem(
        node_names=tuple(order),
        preds=tuple(map(tuple, rows(tb.core["pr_ptr"], tb.core["pr_idx"]))),
        sizes=tuple(sizes[leaf_st].tolist()),
        producer=tuple(producer[leaf_st].tolist()),
        consumers=tuple(map(tuple, rows(lv["cons_ptr"], lv["cons"]))),
        pinned=tuple((lv["pinned"] != 0).tolist()),
        tensor_names=tuple(leaf_names),
        groups=tuple(tuple((at[s], off) for s, off in g) for g in table_groups(tb)),
        homes=tuple(zip([names[t] for t in leaf_t.tolist()],
                        index[lv["leaf_home"]].tolist(), sizes[leaf_t].tolist())),
        check=False,
    )


# --- evaluating an order ----------------------------------------------------------------


def order_live(problem: MemoryProblem, order: Sequence[int]):
    """(live bytes per step, peak) of running ``order``, by the liveness core."""
    n = problem.n
    order = np.asarray(order, dtype=np.int64).reshape(-1)
    if order.shape[0] != n or not np.array_equal(np.sort(order), np.arange(n)):
        raise ValueError("order must be a permutation of the problem's nodes")
    if n == 0:
        return (), 0
    if n <= _SMALL:
        return _order_live_small(problem, order.tolist())
    a = problem.arrays()
    pos = np.empty(n, dtype=np.int64)
    pos[order] = np.arange(n, dtype=np.int64)
    pred_ptr, pred_idx = a["pred_ptr"], a["pred_idx"]
    node_of = np.repeat(np.arange(n, dtype=np.int64), np.diff(pred_ptr))
    late = pos[pred_idx] > pos[node_of]
    if late.any():
        k = int(np.argmax(late))
        raise ValueError(f"order runs node {int(node_of[k])} before its predecessor "
                         f"{int(pred_idx[k])}")
    # each tensor's reads: its consumers' steps, then the last step if pinned (graph outputs)
    cons_ptr, pinned = a["cons_ptr"], a["pinned"]
    reads = np.insert(pos[a["cons_idx"]], np.repeat(cons_ptr[1:], pinned), n - 1)
    ptr = cons_ptr + np.concatenate(([0], np.cumsum(pinned)))
    producer = a["producer"]
    steps = np.where(producer >= 0, pos[np.maximum(producer, 0)], -1)
    live, peak, _ = liveness(a["sizes"], steps, ptr, reads, n)
    return tuple(live.tolist()), int(peak)


# Below this many nodes an order is scored in plain Python: the DP scores many small
# segments, where numpy's per-call cost would dominate.
_SMALL = 256


def _order_live_small(problem: MemoryProblem, order: list):
    n = problem.n
    pos = [0] * n
    for step, v in enumerate(order):
        pos[v] = step
    for v, ps in enumerate(problem.all_preds()):
        for u in ps:
            if pos[u] > pos[v]:
                raise ValueError(f"order runs node {v} before its predecessor {u}")
    live = [0] * n
    for t, size in enumerate(problem.sizes):
        p = problem.producer[t]
        first = pos[p] if p >= 0 else 0
        last = n - 1 if problem.pinned[t] else max([first] + [pos[c] for c in
                                                                problem.consumers[t]])
        for step in range(first, last + 1):
            live[step] += size
    return tuple(live), max(live)


def order_peak(problem: MemoryProblem, order: Sequence[int]) -> int:
    return order_live(problem, order)[1]


# --- lower bound ------------------------------------------------------------------------


def _ancestry(problem: MemoryProblem):
    """Ancestor and descendant sets of every node, as Python-int bitsets (cached)."""
    if "ancestry" in problem._cache:
        return problem._cache["ancestry"]
    n = problem.n
    preds = problem.all_preds()
    topo = _topo(problem)
    anc = [0] * n
    for v in topo:
        a = 0
        for u in preds[v]:
            a |= anc[u] | (1 << u)
        anc[v] = a
    succ = [[] for _ in range(n)]
    for v in range(n):
        for u in preds[v]:
            succ[u].append(v)
    desc = [0] * n
    for v in reversed(topo):
        d = 0
        for w in succ[v]:
            d |= desc[w] | (1 << w)
        desc[v] = d
    problem._cache["ancestry"] = (anc, desc)
    return anc, desc


def _topo(problem: MemoryProblem) -> list:
    """Kahn's order preferring the smallest index (the model order when it is valid)."""
    import heapq
    preds = problem.all_preds()
    n = problem.n
    indeg = [len(p) for p in preds]
    succ = [[] for _ in range(n)]
    for v in range(n):
        for u in preds[v]:
            succ[u].append(v)
    heap = [v for v in range(n) if indeg[v] == 0]
    heapq.heapify(heap)
    out = []
    while heap:
        u = heapq.heappop(heap)
        out.append(u)
        for v in succ[u]:
            indeg[v] -= 1
            if indeg[v] == 0:
                heapq.heappush(heap, v)
    return out


def lower_bound(problem: MemoryProblem) -> int:
    """Max over nodes of the bytes that must be live while it runs, in any order.

    For node v: its inputs and outputs, and every tensor produced before v in every order
    (a graph input, or by an ancestor of v) that some descendant of v still reads or that
    is pinned. Ancestry is skipped above 2,000 nodes (then: inputs, outputs, pinned inputs).
    """
    n = problem.n
    if n == 0:
        return 0
    if n > _LB_ANCESTRY_LIMIT:
        return _lower_bound_local(problem)
    ins, outs = problem.node_tensors()
    T = len(problem.sizes)
    always = [t for t in range(T) if problem.producer[t] < 0 and problem.pinned[t]]
    anc, desc = _ancestry(problem)
    cmask = [sum(1 << c for c in cs) for cs in problem.consumers]
    best = 0
    for v in range(n):
        must = set(ins[v]) | set(outs[v]) | set(always)
        for t in range(T):
            if t in must:
                continue
            p = problem.producer[t]
            if (p < 0 or (anc[v] >> p) & 1) and (problem.pinned[t] or cmask[t] & desc[v]):
                must.add(t)
        best = max(best, sum(problem.sizes[t] for t in must))
    return best


def _lower_bound_local(problem: MemoryProblem) -> int:
    """The bound without ancestry, over the CSR arrays: max over nodes of the bytes of its
    inputs, its outputs and the pinned graph inputs (a node never reads what it writes, so
    the three overlap only where an input is a pinned graph input)."""
    a = problem.arrays()
    sizes = a["sizes"]
    always = (a["producer"] < 0) & (a["pinned"] != 0)

    def row_sums(ptr, idx, weights):
        cum = np.concatenate(([0], np.cumsum(weights[idx])))
        return cum[ptr[1:]] - cum[ptr[:-1]]

    ins = row_sums(a["in_ptr"], a["in_idx"], np.where(always, 0, sizes))
    outs = row_sums(a["out_ptr"], a["out_idx"], sizes)
    return int((ins + outs).max()) + int(sizes[always].sum())


# --- heuristics -------------------------------------------------------------------------


def list_order_py(problem: MemoryProblem) -> list:
    """Memory-aware list scheduling (twin of the native core): among ready nodes, the
    one leaving the fewest live bytes after it runs, then the smallest step total, then
    the smallest index."""
    n = problem.n
    preds = problem.all_preds()
    ins, outs = problem.node_tensors()
    sizes, pinned, cons = problem.sizes, problem.pinned, problem.consumers
    remaining = [len(c) for c in cons]
    indeg = [len(p) for p in preds]
    succ = [[] for _ in range(n)]
    for v in range(n):
        for u in preds[v]:
            succ[u].append(v)
    out_all = [sum(sizes[t] for t in outs[v]) for v in range(n)]
    out_live = [sum(sizes[t] for t in outs[v] if cons[t] or pinned[t]) for v in range(n)]
    ready = [v for v in range(n) if indeg[v] == 0]
    order = []
    while ready:
        best = None
        for v in ready:
            freed = sum(sizes[t] for t in ins[v] if not pinned[t] and remaining[t] == 1)
            key = (out_live[v] - freed, out_all[v], v)
            if best is None or key < best:
                best = key
        v = best[2]
        ready.remove(v)
        order.append(v)
        for t in ins[v]:
            remaining[t] -= 1
        for w in succ[v]:
            indeg[w] -= 1
            if indeg[w] == 0:
                ready.append(w)
    return order


def dfs_order(problem: MemoryProblem) -> list:
    """Post-order of a depth-first walk from the sinks (last sink first visited last),
    visiting predecessors in model order."""
    n = problem.n
    preds = problem.all_preds()
    has_succ = [False] * n
    for v in range(n):
        for u in preds[v]:
            has_succ[u] = True
    seen = [False] * n
    order = []
    for root in range(n):
        if has_succ[root] or seen[root]:
            continue
        stack = [(root, 0)]
        seen[root] = True
        while stack:
            v, i = stack.pop()
            ps = preds[v]
            while i < len(ps) and seen[ps[i]]:
                i += 1
            if i < len(ps):
                stack.append((v, i + 1))
                seen[ps[i]] = True
                stack.append((ps[i], 0))
            else:
                order.append(v)
    return order


def _native():
    return native("schedule")


def list_order(problem: MemoryProblem) -> list:
    """The list scheduler, native."""
    a = problem.arrays()
    out = np.empty(problem.n, dtype=np.int64)
    _native().list_schedule(problem.n, a["pred_ptr"], a["pred_idx"], a["in_ptr"],
                            a["in_idx"], a["out_ptr"], a["out_idx"], a["cons_ptr"],
                            a["sizes"], a["pinned"], out)
    return out.tolist()


# --- exact search -----------------------------------------------------------------------


def segments(problem: MemoryProblem) -> list:
    """Split at single-node cuts: lists of node indices, each cut opening its segment.

    A cut is a node comparable with every other node (each is its ancestor or its
    descendant), so every order runs the segments one after the other.
    """
    n = problem.n
    if n == 0:
        return []
    anc, desc = _ancestry(problem)
    cuts = [v for v in range(n) if anc[v].bit_count() + desc[v].bit_count() + 1 == n]
    cutmask = sum(1 << c for c in cuts)
    segs = [[] for _ in range(len(cuts) + 1)]
    for v in range(n):
        segs[(anc[v] & cutmask).bit_count()].append(v)
    return [s for s in segs if s]


def sub_problems(problem: MemoryProblem, segs: list) -> list:
    """Every segment as a problem of its own (see `sub_problem`), in one pass."""
    seg_of = {}
    for i, s in enumerate(segs):
        for v in s:
            seg_of[v] = i
    local = {v: i for s in segs for i, v in enumerate(s)}
    preds = problem.all_preds()
    parts = [([], [], [], [], []) for _ in segs]  # sizes, producer, consumers, pinned, names
    for t in range(len(problem.sizes)):
        p = problem.producer[t]
        ps = seg_of[p] if p >= 0 else -1
        cs = problem.consumers[t]
        last = max((seg_of[c] for c in cs), default=max(ps, 0))
        if problem.pinned[t]:
            last = len(segs)
        name = problem.tensor_names[t] if problem.tensor_names else t
        for k in range(max(ps, 0), min(last, len(segs) - 1) + 1):
            sizes, producer, consumers, pinned, names = parts[k]
            sizes.append(problem.sizes[t])
            producer.append(local[p] if ps == k else -1)
            consumers.append(tuple(local[c] for c in cs if seg_of[c] == k))
            pinned.append(bool(last > k))
            names.append(name)
    out = []
    for k, nodes in enumerate(segs):
        sizes, producer, consumers, pinned, names = parts[k]
        out.append(MemoryProblem(
            node_names=tuple(problem.node_names[v] for v in nodes),
            preds=tuple(tuple(local[u] for u in preds[v] if seg_of[u] == k) for v in nodes),
            sizes=tuple(sizes), producer=tuple(producer), consumers=tuple(consumers),
            pinned=tuple(pinned), tensor_names=tuple(names)))
    return out


def sub_problem(problem: MemoryProblem, segs: list, k: int) -> MemoryProblem:
    """Segment k as a problem of its own: tensors from earlier segments are inputs,
    tensors read by later segments (or pinned) are pinned."""
    return sub_problems(problem, segs)[k]


def _dp_tables(problem: MemoryProblem):
    n = problem.n
    ins, outs = problem.node_tensors()
    sizes, pinned, cons = problem.sizes, problem.pinned, problem.consumers
    predmask = [sum(1 << u for u in ps) for ps in problem.all_preds()]
    out_all = [sum(sizes[t] for t in outs[v]) for v in range(n)]
    out_live = [sum(sizes[t] for t in outs[v] if cons[t] or pinned[t]) for v in range(n)]
    res0 = dead0 = 0
    for t in range(len(sizes)):
        if problem.producer[t] < 0:
            if cons[t] or pinned[t]:
                res0 += sizes[t]
            else:
                dead0 += sizes[t]
    return predmask, out_all, out_live, res0, dead0


def dp_segment_py(problem: MemoryProblem, upper_bound: int, floor: int = 0,
                  max_states: int = DEFAULT_MAX_STATES):
    """Twin of the native DP: (status, peak, order, states).

    status 1: ``order`` is optimal among orders with peak <= upper_bound (ties above
    ``floor`` broken by the first found); status -1: the state budget ran out (no order).
    Free moves: a ready node whose step total is at most max(peak so far, floor) and that
    does not raise the live bytes is taken at once (``floor`` must be a lower bound on
    the peak of every full order that matters, e.g. the problem's lower bound).
    """
    n = problem.n
    if n == 0:
        return 1, 0, [], 0
    ins, _ = problem.node_tensors()
    sizes, pinned, cons = problem.sizes, problem.pinned, problem.consumers
    predmask, out_all, out_live, res0, dead0 = _dp_tables(problem)
    cmask = [sum(1 << c for c in cs) for cs in cons]
    parent = {0: (None, -1)}
    level = {0: (0, res0)}
    states = 1
    for k in range(n):
        nxt = {}
        for S, (peak, res) in level.items():
            succ = []
            for v in range(n):
                if (S >> v) & 1 or predmask[v] & ~S:
                    continue
                dur = res + out_all[v] + (dead0 if k == 0 else 0)
                Sv = S | (1 << v)
                freed = 0
                for t in ins[v]:
                    if not pinned[t] and cmask[t] & ~Sv == 0:
                        freed += sizes[t]
                nres = res + out_live[v] - freed
                if dur <= max(peak, floor) and nres <= res:
                    succ = [(v, dur, nres)]
                    break
                succ.append((v, dur, nres))
            for v, dur, nres in succ:
                npk = max(peak, dur)
                if npk > upper_bound:
                    continue
                T = S | (1 << v)
                old = nxt.get(T)
                if old is None:
                    states += 1
                    if states > max_states:
                        return -1, 0, [], states
                    nxt[T] = (npk, nres)
                    parent[T] = (S, v)
                elif npk < old[0]:
                    nxt[T] = (npk, nres)
                    parent[T] = (S, v)
        level = nxt
        if not level:
            return 0, 0, [], states  # nothing within the upper bound
    (S, (peak, _)), = level.items()
    order = []
    while S:
        S, v = parent[S]
        order.append(v)
    return 1, peak, order[::-1], states


def dp_segment(problem: MemoryProblem, upper_bound: int, floor: int = 0,
               max_states: int = DEFAULT_MAX_STATES, time_limit: float = 0.0):
    """The native DP; same contract as `dp_segment_py`, plus ``time_limit`` seconds (0:
    none), past which it gives up as it does past ``max_states`` (status -1)."""
    n = problem.n
    if n == 0:
        return 1, 0, [], 0
    a = problem.arrays()
    out = np.empty(n, dtype=np.int64)
    status, peak, states = _native().dp_schedule(
        n, a["pred_ptr"], a["pred_idx"], a["in_ptr"], a["in_idx"], a["out_ptr"],
        a["out_idx"], a["cons_ptr"], a["cons_idx"], a["sizes"], a["producer"],
        a["pinned"], int(upper_bound), int(floor), int(max_states), out, float(time_limit))
    return status, peak, (out.tolist() if status == 1 else []), states


def beam_segment(problem: MemoryProblem, width: int = DEFAULT_BEAM):
    """Bounded beam search (Python): level by level, keep the `width` states with the
    smallest (peak, live bytes). Returns (peak, order)."""
    n = problem.n
    if n == 0:
        return 0, []
    ins, _ = problem.node_tensors()
    sizes, pinned, cons = problem.sizes, problem.pinned, problem.consumers
    predmask, out_all, out_live, res0, dead0 = _dp_tables(problem)
    cmask = [sum(1 << c for c in cs) for cs in cons]
    level = {0: (0, res0, ())}
    for k in range(n):
        nxt = {}
        for S, (peak, res, order) in level.items():
            for v in range(n):
                if (S >> v) & 1 or predmask[v] & ~S:
                    continue
                Sv = S | (1 << v)
                freed = sum(sizes[t] for t in ins[v] if not pinned[t] and cmask[t] & ~Sv == 0)
                npk = max(peak, res + out_all[v] + (dead0 if k == 0 else 0))
                if Sv not in nxt or npk < nxt[Sv][0]:
                    nxt[Sv] = (npk, res + out_live[v] - freed, order + (v,))
        level = dict(sorted(nxt.items(), key=lambda kv: kv[1][:2])[:width])
    (_, (peak, _, order)), = level.items()
    return peak, list(order)


# --- the entry point --------------------------------------------------------------------


def _make(problem, kind, order, lb, proven=False, states=0, chosen="", t0=None):
    live, peak = order_live(problem, order)
    return Schedule(kind, tuple(order), tuple(problem.node_names[v] for v in order), peak,
                    live, proven or peak == lb, lb, states, chosen or kind,
                    time.perf_counter() - t0 if t0 is not None else 0.0)


def schedule(problem: MemoryProblem, kind: str = "optimal", *, native: bool = True,
             max_states: int = DEFAULT_MAX_STATES, beam_width: int = DEFAULT_BEAM,
             time_limit: float = DEFAULT_TIME_LIMIT, force_dp: bool = False) -> Schedule:
    """An order of ``kind`` (see KINDS) with its peak, lower bound and proof status.

    ``native=False`` runs the pure-Python twins (test oracle). ``max_states`` is the DP's
    budget per segment and ``time_limit`` (native only) the seconds all segments' exact
    searches may take; a segment past either is solved by a beam of ``beam_width``.
    """
    t0 = time.perf_counter()
    if kind not in KINDS:
        raise ValueError(f"unknown schedule kind {kind!r}; expected one of {KINDS}")
    lb = lower_bound(problem)
    if kind == "own":
        return _make(problem, kind, range(problem.n), lb, t0=t0)
    if kind == "list":
        return _make(problem, kind, (list_order if native else list_order_py)(problem), lb,
                     t0=t0)
    if kind == "dfs":
        return _make(problem, kind, dfs_order(problem), lb, t0=t0)
    cands = [("own", list(range(problem.n))),
             ("list", (list_order if native else list_order_py)(problem)),
             ("dfs", dfs_order(problem))]
    scored = [(order_peak(problem, o), i, name, o) for i, (name, o) in enumerate(cands)]
    best_peak, _, best_name, best_order = min(scored)
    if kind == "heuristic" or (best_peak <= lb and not force_dp):
        return _make(problem, kind, best_order, lb, proven=best_peak <= lb, chosen=best_name,
                     t0=t0)
    dp = dp_segment if native else dp_segment_py
    segs = segments(problem)
    pos = {v: i for i, v in enumerate(best_order)}
    order, states, proven, floor = [], 0, True, lb
    for seg, sub in zip(segs, sub_problems(problem, segs)):
        heur = sorted(range(len(seg)), key=lambda i: pos[seg[i]])  # the heuristic's
        ub = order_peak(sub, heur)
        sub_order = heur
        if ub > floor:  # else any order of the segment is as good: the peak is elsewhere
            # strictly below the heuristic's peak, or else the heuristic is optimal
            if native:
                left = time_limit - (time.perf_counter() - t0)
                status, peak, found, st = (dp(sub, ub - 1, floor, max_states, left)
                                           if left > 0 else (-1, 0, [], 0))
            else:
                status, peak, found, st = dp(sub, ub - 1, floor, max_states)
            states += st
            if status == 1:
                sub_order, ub = found, peak
            elif status == -1:  # over budget: a beam, and no proof
                proven = False
                peak, found = beam_segment(sub, beam_width)
                if peak < ub:
                    sub_order, ub = found, peak
        floor = max(floor, ub)
        order.extend(seg[i] for i in sub_order)
    result = _make(problem, kind, order, lb, proven=proven, states=states,
                   chosen="dp" if proven else "beam", t0=t0)
    if result.peak_bytes > best_peak:  # the beam lost to the heuristic: keep the heuristic
        result = _make(problem, kind, best_order, lb, states=states, chosen=best_name, t0=t0)
    return result
