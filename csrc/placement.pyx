"""Arena placement: one offset per tensor so that tensors alive at once never overlap.

The def wrappers (`greedy`, `place`) validate everything and build the indexes; the
`cdef ... noexcept nogil` cores trust them. Pure-Python twin and test oracle:
cnngraph.passes.placement.greedy_py.

Strategies (index: name): an order, then each tensor in turn at the offset chosen by a
rule against the already-placed tensors whose live interval overlaps its own.
  orders: size    (-size, index)                    TFLite's greedy by size
          breadth steps by (-live bytes, step), each step's unplaced live tensors by
                  (-size, index)                    Pisarchyk & Lee 2020
          length  (-(end - start), -size, index)
          start   (start, -size, index)
  rules:  first   the lowest offset where it fits
          best    the smallest gap it fits in (lowest offset on ties), else the top
Strategy index = 2 * order + rule (rule 0 = first, 1 = best). A zero-byte tensor blocks
nothing and sits at offset 0.
"""
from libc.stdint cimport int64_t, uint64_t
from libc.stdlib cimport qsort

from native_util cimport check_i64, now

import numpy as np

cdef enum:
    NUM_STRATEGIES = 8

ctypedef struct Key3:
    int64_t a
    int64_t b
    int64_t c

ctypedef struct Span:  # an occupied byte range [lo, hi) of the arena
    int64_t lo
    int64_t hi


cdef int _cmp_key3(const void* x, const void* y) noexcept nogil:
    cdef const Key3* p = <const Key3*>x
    cdef const Key3* q = <const Key3*>y
    if p.a != q.a:
        return -1 if p.a < q.a else 1
    if p.b != q.b:
        return -1 if p.b < q.b else 1
    if p.c != q.c:
        return -1 if p.c < q.c else 1
    return 0


cdef int _cmp_span(const void* x, const void* y) noexcept nogil:
    cdef const Span* p = <const Span*>x
    cdef const Span* q = <const Span*>y
    if p.lo != q.lo:
        return -1 if p.lo < q.lo else 1
    if p.hi != q.hi:
        return -1 if p.hi < q.hi else 1
    return 0


ctypedef struct Ctx:
    Py_ssize_t n              # tensors
    Py_ssize_t K              # start points (distinct start steps)
    const int64_t* size       # aligned bytes
    const int64_t* start      # original steps (for the order keys)
    const int64_t* end
    const int64_t* ps         # rank of the start among the start points
    const int64_t* pe         # rank of the last start point <= end (>= ps)
    const int64_t* live_ptr   # CSR, K + 1: tensors live at each start point, by index
    const int64_t* live_idx
    const int64_t* start_ptr  # CSR, K + 1: tensors starting at each start point, by index
    const int64_t* start_idx
    unsigned char* placed     # scratch, n
    int64_t* offset           # OUT, n
    Span* spans               # scratch, n
    Key3* keys                # scratch, max(n, K)
    int64_t* live             # scratch, K: live bytes per start point


cdef inline int64_t _fit(Ctx* c, Py_ssize_t t, int rule) noexcept nogil:
    """Offset for tensor t against the placed tensors overlapping it in time."""
    cdef int64_t sz = c.size[t], cur, gap, best_off, best_gap
    cdef Py_ssize_t m = 0, e, q, j, k
    if sz == 0:
        return 0
    # Overlapping = live at t's first start point, or starting later within its interval.
    for e in range(c.live_ptr[c.ps[t]], c.live_ptr[c.ps[t] + 1]):
        j = c.live_idx[e]
        if c.placed[j] and c.size[j] > 0:
            c.spans[m].lo = c.offset[j]
            c.spans[m].hi = c.offset[j] + c.size[j]
            m += 1
    for e in range(c.start_ptr[c.ps[t] + 1], c.start_ptr[c.pe[t] + 1]):
        j = c.start_idx[e]
        if c.placed[j] and c.size[j] > 0:
            c.spans[m].lo = c.offset[j]
            c.spans[m].hi = c.offset[j] + c.size[j]
            m += 1
    if m > 1:
        qsort(c.spans, m, sizeof(Span), _cmp_span)
    cur = 0
    if rule == 0:
        for k in range(m):
            if c.spans[k].lo - cur >= sz:
                return cur
            if c.spans[k].hi > cur:
                cur = c.spans[k].hi
        return cur
    best_off = -1
    best_gap = 0
    for k in range(m):
        if c.spans[k].lo > cur:
            gap = c.spans[k].lo - cur
            if gap >= sz and (best_off < 0 or gap < best_gap):
                best_off = cur
                best_gap = gap
        if c.spans[k].hi > cur:
            cur = c.spans[k].hi
    return best_off if best_off >= 0 else cur


cdef int64_t _place_from(Ctx* c, const int64_t* order, Py_ssize_t frm, int rule,
                         int64_t* prefix_top) noexcept nogil:
    """Place order[frm:] (order[:frm] stays put); prefix_top[i] = max top of order[:i+1]."""
    cdef Py_ssize_t i, t
    cdef int64_t top = prefix_top[frm - 1] if frm > 0 else 0
    for i in range(frm, c.n):
        c.placed[order[i]] = 0
    for i in range(frm, c.n):
        t = order[i]
        c.offset[t] = _fit(c, t, rule)
        c.placed[t] = 1
        if c.offset[t] + c.size[t] > top:
            top = c.offset[t] + c.size[t]
        prefix_top[i] = top
    return top


cdef int64_t _live_points(Ctx* c) noexcept nogil:
    """Live bytes at every start point into c.live; returns the peak (the lower bound)."""
    cdef Py_ssize_t p, t
    cdef int64_t run = 0, peak = 0
    for p in range(c.K):
        c.live[p] = 0
    for t in range(c.n):
        c.live[c.ps[t]] += c.size[t]
        if c.pe[t] + 1 < c.K:
            c.live[c.pe[t] + 1] -= c.size[t]
    for p in range(c.K):
        run += c.live[p]
        c.live[p] = run
        if run > peak:
            peak = run
    return peak


cdef void _order(Ctx* c, int kind, int64_t* order) noexcept nogil:
    """The tensor order of order-kind 0 size, 1 breadth, 2 length, 3 start."""
    cdef Py_ssize_t i, t, p, e, m, k = 0
    if kind == 1:
        _live_points(c)
        for p in range(c.K):
            c.keys[p].a = -c.live[p]
            c.keys[p].b = p
            c.keys[p].c = 0
        qsort(c.keys, c.K, sizeof(Key3), _cmp_key3)
        for t in range(c.n):
            c.placed[t] = 0  # "already in the order"
        for i in range(c.K):
            p = c.keys[i].b
            m = 0
            for e in range(c.live_ptr[p], c.live_ptr[p + 1]):
                t = c.live_idx[e]
                if not c.placed[t]:
                    c.placed[t] = 1
                    c.spans[m].lo = -c.size[t]  # spans as scratch: (-size, index)
                    c.spans[m].hi = t
                    m += 1
            qsort(c.spans, m, sizeof(Span), _cmp_span)
            for e in range(m):
                order[k] = c.spans[e].hi
                k += 1
        return
    for t in range(c.n):
        if kind == 0:
            c.keys[t].a = -c.size[t]
            c.keys[t].b = t
        elif kind == 2:
            c.keys[t].a = -(c.end[t] - c.start[t])
            c.keys[t].b = -c.size[t]
        else:
            c.keys[t].a = c.start[t]
            c.keys[t].b = -c.size[t]
        c.keys[t].c = t
    qsort(c.keys, c.n, sizeof(Key3), _cmp_key3)
    for i in range(c.n):
        order[i] = c.keys[i].c


cdef inline uint64_t _next(uint64_t* s) noexcept nogil:
    """splitmix64."""
    s[0] += <uint64_t>0x9E3779B97F4A7C15
    cdef uint64_t z = s[0]
    z = (z ^ (z >> 30)) * <uint64_t>0xBF58476D1CE4E5B9
    z = (z ^ (z >> 27)) * <uint64_t>0x94D049BB133111EB
    return z ^ (z >> 31)


cdef inline Py_ssize_t _below(uint64_t* s, Py_ssize_t n) noexcept nogil:
    return <Py_ssize_t>(_next(s) % <uint64_t>n)


cdef int64_t _search(Ctx* c, int64_t* order, int rule, int64_t* prefix_top, int64_t arena,
                     int64_t lower, double deadline, int64_t max_iters, uint64_t seed,
                     int64_t* saved, int64_t* iters_out) noexcept nogil:
    """Local search from a placed order: accept a move unless it grows the arena.

    Moves: hoist a tensor that reaches the arena's top to a random earlier position, or
    swap two nearby tensors; only the changed suffix of the order is re-placed.
    """
    cdef Py_ssize_t n = c.n, i, j = 0, p = 0, k, cnt, pick
    cdef int64_t it = 0, new, t
    cdef uint64_t rng = seed
    cdef bint hoist
    while it < max_iters and arena > lower and n > 1:
        if deadline > 0 and now() >= deadline:  # between moves: one can overrun it
            break
        it += 1
        hoist = (_next(&rng) & 1) == 0
        i = 0
        if hoist:
            cnt = 0
            for k in range(1, n):
                if c.offset[order[k]] + c.size[order[k]] == arena:
                    cnt += 1
            if cnt == 0:
                hoist = False
            else:
                pick = _below(&rng, cnt)
                for k in range(1, n):
                    if c.offset[order[k]] + c.size[order[k]] == arena:
                        if pick == 0:
                            i = k
                            break
                        pick -= 1
                j = _below(&rng, i)
                p = j
        if not hoist:
            i = _below(&rng, n - 1)
            j = i + 1 + _below(&rng, min(16, n - 1 - i))
            p = i
        for k in range(p, n):  # offsets and tops of the suffix, in the old order
            saved[2 * (k - p)] = c.offset[order[k]]
            saved[2 * (k - p) + 1] = prefix_top[k]
        if hoist:
            t = order[i]
            for k in range(i, j, -1):
                order[k] = order[k - 1]
            order[j] = t
        else:
            t = order[i]
            order[i] = order[j]
            order[j] = t
        new = _place_from(c, order, p, rule, prefix_top)
        if new <= arena:
            arena = new
            continue
        if hoist:  # undo the move, then the offsets
            t = order[j]
            for k in range(j, i):
                order[k] = order[k + 1]
            order[i] = t
        else:
            t = order[i]
            order[i] = order[j]
            order[j] = t
        for k in range(p, n):
            c.offset[order[k]] = saved[2 * (k - p)]
            prefix_top[k] = saved[2 * (k - p) + 1]
    iters_out[0] = it
    return arena


# ---------------------------------------------------------------------------- wrappers

cdef inline int64_t* _p(int64_t[::1] a) noexcept nogil:
    return &a[0] if a.shape[0] else NULL


cdef class _Problem:
    """Validated, aligned inputs plus the interval indexes and scratch of one instance."""
    cdef Ctx c
    cdef object keep  # the numpy arrays the Ctx points into
    cdef int64_t[::1] size, start, end, ps, pe, live_ptr, live_idx, start_ptr, start_idx
    cdef int64_t[::1] offset, live, keybuf, spanbuf
    cdef unsigned char[::1] placed

    def __init__(self, sizes, starts, ends, int64_t alignment, offsets_out):
        check_i64("sizes", sizes)
        check_i64("starts", starts)
        check_i64("ends", ends)
        self.offset = check_i64("offsets_out", offsets_out, writable=True)
        cdef Py_ssize_t n = sizes.shape[0]
        if starts.shape[0] != n or ends.shape[0] != n or offsets_out.shape[0] != n:
            raise ValueError(
                f"sizes, starts, ends and offsets_out must have one entry per tensor; got "
                f"lengths {n}, {starts.shape[0]}, {ends.shape[0]}, {offsets_out.shape[0]}")
        if not 1 <= alignment <= (1 << 30):
            raise ValueError(f"alignment must be in [1, 2**30] bytes, got {alignment}")
        if n:
            bad = np.flatnonzero(sizes < 0)
            if bad.size:
                raise ValueError(f"tensor {bad[0]}: size {sizes[bad[0]]} bytes is negative")
            bad = np.flatnonzero(starts < 0)
            if bad.size:
                raise ValueError(f"tensor {bad[0]}: start step {starts[bad[0]]} is negative")
            bad = np.flatnonzero(ends < starts)
            if bad.size:
                raise ValueError(f"tensor {bad[0]}: end step {ends[bad[0]]} is before its "
                                 f"start step {starts[bad[0]]}")
            if int(sizes.max()) > (1 << 60):
                raise ValueError("a tensor over 2**60 bytes cannot be placed")
        aligned = (sizes + (alignment - 1)) // alignment * alignment
        if n and float(aligned.sum(dtype=np.float64)) >= 2.0 ** 61:
            raise ValueError("the tensors' total aligned bytes must stay below 2**62")
        points = np.unique(starts)
        ps = np.searchsorted(points, starts).astype(np.int64)
        pe = (np.searchsorted(points, ends, side="right") - 1).astype(np.int64)
        K = points.shape[0]
        counts = pe - ps + 1
        diff = np.zeros(K + 1, dtype=np.int64)  # live tensor count per point
        np.add.at(diff, ps, 1)
        np.add.at(diff, pe + 1, -1)
        live_ptr = np.zeros(K + 1, dtype=np.int64)
        live_ptr[1:] = np.cumsum(np.cumsum(diff[:K]))
        M = int(counts.sum()) if n else 0
        # Tensor t is live at points ps[t]..pe[t]; list them per point in index order.
        rep = np.repeat(np.arange(n, dtype=np.int64), counts)
        first = np.repeat(np.cumsum(counts) - counts, counts)
        pts = np.repeat(ps, counts) + (np.arange(M, dtype=np.int64) - first)
        live_idx = rep[np.argsort(pts, kind="stable")].astype(np.int64)
        start_ptr = np.zeros(K + 1, dtype=np.int64)
        np.add.at(start_ptr, ps + 1, 1)
        start_ptr = np.cumsum(start_ptr).astype(np.int64)
        start_idx = np.argsort(ps, kind="stable").astype(np.int64)
        self.keep = (aligned, starts, ends, ps, pe, live_ptr, live_idx, start_ptr, start_idx)
        self.size, self.start, self.end = aligned, starts, ends
        self.ps, self.pe = ps, pe
        self.live_ptr, self.live_idx = np.ascontiguousarray(live_ptr), live_idx
        self.start_ptr, self.start_idx = start_ptr, start_idx
        self.live = np.zeros(K, dtype=np.int64)
        self.keybuf = np.zeros(3 * max(n, K), dtype=np.int64)
        self.spanbuf = np.zeros(2 * n, dtype=np.int64)
        self.placed = np.zeros(n, dtype=np.uint8)
        self.c.n = n
        self.c.K = K
        self.c.size = _p(self.size)
        self.c.start = _p(self.start)
        self.c.end = _p(self.end)
        self.c.ps = _p(self.ps)
        self.c.pe = _p(self.pe)
        self.c.live_ptr = _p(self.live_ptr)
        self.c.live_idx = _p(self.live_idx)
        self.c.start_ptr = _p(self.start_ptr)
        self.c.start_idx = _p(self.start_idx)
        self.c.placed = &self.placed[0] if n else NULL
        self.c.offset = _p(self.offset)
        self.c.spans = <Span*>_p(self.spanbuf)
        self.c.keys = <Key3*>_p(self.keybuf)
        self.c.live = _p(self.live)


def lower_bound(sizes, starts, ends, int64_t alignment=64):
    """Peak of the live aligned bytes over the steps: no arena can be smaller."""
    cdef _Problem pb = _Problem(sizes, starts, ends, alignment,
                                np.zeros(len(sizes), dtype=np.int64))
    cdef int64_t lb
    with nogil:
        lb = _live_points(&pb.c)
    return int(lb)


def greedy(sizes, starts, ends, int64_t alignment, int strategy, offsets_out):
    """One greedy strategy (0..7, see the module docstring); returns the arena bytes.

    sizes: bytes per tensor; tensor t is live on steps [starts[t], ends[t]] (inclusive).
    offsets_out (int64[n], OUT) receives each tensor's offset (a multiple of alignment).

    >>> import numpy as np
    >>> i64 = lambda *v: np.array(v, dtype=np.int64)
    >>> off = np.empty(3, dtype=np.int64)
    >>> greedy(i64(100, 200, 50), i64(0, 0, 1), i64(0, 1, 1), 64, 0, off), off.tolist()
    (384, [256, 0, 256])
    """
    if not 0 <= strategy < NUM_STRATEGIES:
        raise ValueError(f"strategy must be in [0, {NUM_STRATEGIES}), got {strategy}")
    cdef _Problem pb = _Problem(sizes, starts, ends, alignment, offsets_out)
    cdef int64_t[::1] order = np.empty(pb.c.n, dtype=np.int64)
    cdef int64_t[::1] tops = np.empty(pb.c.n, dtype=np.int64)
    cdef int64_t arena
    with nogil:
        _order(&pb.c, strategy // 2, _p(order))
        arena = _place_from(&pb.c, _p(order), 0, strategy % 2, _p(tops))
    return int(arena)


def place(sizes, starts, ends, int64_t alignment, double time_budget, int64_t max_iters,
          uint64_t seed, offsets_out, arenas_out):
    """Best of the 8 greedy strategies, then a local search; returns
    (strategy, arena_bytes, lower_bound_bytes, search_iterations).

    arenas_out (int64[8], OUT) receives each greedy strategy's arena; offsets_out
    (int64[n], OUT) the final offsets. The search (after the greedy phase) runs until
    max_iters moves (0: no cap), time_budget seconds (<= 0: no cap) or the lower bound,
    whichever comes first; with neither cap there is no search. For a given
    seed the result depends only on the number of moves made, so a run with no time cap is
    reproducible exactly.
    """
    check_i64("arenas_out", arenas_out, writable=True)
    if arenas_out.shape[0] != NUM_STRATEGIES:
        raise ValueError(f"arenas_out must have length {NUM_STRATEGIES}")
    if max_iters < 0:
        raise ValueError(f"max_iters must be >= 0, got {max_iters}")
    cdef _Problem pb = _Problem(sizes, starts, ends, alignment, offsets_out)
    cdef Py_ssize_t n = pb.c.n
    cdef int64_t[::1] arenas = arenas_out
    cdef int64_t[::1] order = np.empty(n, dtype=np.int64)
    cdef int64_t[::1] tops = np.empty(n, dtype=np.int64)
    cdef int64_t[::1] saved = np.empty(2 * n, dtype=np.int64)
    cdef int64_t arena, best = -1, lb, iters = 0
    cdef int s, best_s = 0
    cdef double deadline = 0.0
    with nogil:
        lb = _live_points(&pb.c)
        for s in range(NUM_STRATEGIES):
            _order(&pb.c, s // 2, _p(order))
            arena = _place_from(&pb.c, _p(order), 0, s % 2, _p(tops))
            arenas[s] = arena
            if best < 0 or arena < best:
                best = arena
                best_s = s
        if n:
            _order(&pb.c, best_s // 2, _p(order))  # re-place the winner to search from it
            arena = _place_from(&pb.c, _p(order), 0, best_s % 2, _p(tops))
            if time_budget > 0:  # the cap is on the search alone: greedy always runs
                deadline = now() + time_budget
            if time_budget > 0 or max_iters > 0:
                arena = _search(&pb.c, _p(order), best_s % 2, _p(tops), arena, lb, deadline,
                                max_iters if max_iters > 0 else (<int64_t>1 << 62),
                                seed, _p(saved), &iters)
        else:
            arena = 0
    return best_s, int(arena), int(lb), int(iters)
