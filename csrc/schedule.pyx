"""Memory-aware scheduling cores: the list scheduler and the exact DP over executed sets.

The def wrappers validate shapes and ranges; the `cdef ... noexcept nogil` cores trust
them. Pure-Python twins and test oracles: cnngraph.passes.schedule.list_order_py and
dp_segment_py (same iteration order, so the same orders and state counts).
"""
from libc.stdint cimport int64_t, uint64_t
from libc.stdlib cimport malloc, realloc, free
from libc.string cimport memset, memcpy, memcmp

from native_util cimport check_i64, cptr, now

import numpy as np


cdef void _check_csr(str name, const int64_t[::1] ptr, Py_ssize_t rows,
                     const int64_t[::1] idx, Py_ssize_t hi) except *:
    cdef Py_ssize_t i
    if ptr.shape[0] != rows + 1:
        raise ValueError(f"{name}_ptr has length {ptr.shape[0]}, expected {rows + 1}")
    if ptr[0] != 0:
        raise ValueError(f"{name}_ptr must start at 0")
    for i in range(rows):
        if ptr[i + 1] < ptr[i]:
            raise ValueError(f"{name}_ptr decreases at row {i}")
    if idx is not None:
        if ptr[rows] != idx.shape[0]:
            raise ValueError(f"{name}_ptr must end at len({name}_idx)={idx.shape[0]}")
        for i in range(idx.shape[0]):
            if idx[i] < 0 or idx[i] >= hi:
                raise ValueError(f"{name}_idx[{i}] = {idx[i]} is outside [0, {hi})")


# --- list scheduler ---------------------------------------------------------------------

cdef void list_core(Py_ssize_t n, const int64_t* pred_ptr, const int64_t* pred_idx,
                    const int64_t* in_ptr, const int64_t* in_idx,
                    const int64_t* out_ptr, const int64_t* out_idx,
                    const int64_t* cons_ptr, const int64_t* sizes, const int64_t* pinned,
                    int64_t* indeg, int64_t* remaining, int64_t* succ_cnt,
                    int64_t* succ_ptr, int64_t* succ_idx, int64_t* ready,
                    int64_t* order) noexcept nogil:
    """order (OUT): nodes by (live bytes after, step total, index), among ready ones."""
    cdef Py_ssize_t v, w, e, t, i, nready = 0, step, bi
    cdef int64_t delta, total, bdelta, btotal, bv
    for v in range(n):
        succ_cnt[v] = 0
    for v in range(n):
        indeg[v] = pred_ptr[v + 1] - pred_ptr[v]
        for e in range(pred_ptr[v], pred_ptr[v + 1]):
            succ_cnt[pred_idx[e]] += 1
    succ_ptr[0] = 0
    for v in range(n):
        succ_ptr[v + 1] = succ_ptr[v] + succ_cnt[v]
        succ_cnt[v] = succ_ptr[v]
    for v in range(n):
        for e in range(pred_ptr[v], pred_ptr[v + 1]):
            succ_idx[succ_cnt[pred_idx[e]]] = v
            succ_cnt[pred_idx[e]] += 1
    for v in range(n):
        if indeg[v] == 0:
            ready[nready] = v
            nready += 1
    for step in range(n):
        bi = -1
        bdelta = btotal = bv = 0
        for i in range(nready):
            v = ready[i]
            delta = 0
            total = 0
            for e in range(out_ptr[v], out_ptr[v + 1]):
                t = out_idx[e]
                total += sizes[t]
                if cons_ptr[t + 1] > cons_ptr[t] or pinned[t]:
                    delta += sizes[t]
            for e in range(in_ptr[v], in_ptr[v + 1]):
                t = in_idx[e]
                if not pinned[t] and remaining[t] == 1:
                    delta -= sizes[t]
            if bi < 0 or delta < bdelta or (delta == bdelta and (
                    total < btotal or (total == btotal and v < bv))):
                bi, bdelta, btotal, bv = i, delta, total, v
        v = bv
        nready -= 1
        ready[bi] = ready[nready]
        order[step] = v
        for e in range(in_ptr[v], in_ptr[v + 1]):
            remaining[in_idx[e]] -= 1
        for e in range(succ_ptr[v], succ_ptr[v + 1]):
            w = succ_idx[e]
            indeg[w] -= 1
            if indeg[w] == 0:
                ready[nready] = w
                nready += 1


def list_schedule(Py_ssize_t n, pred_ptr, pred_idx, in_ptr, in_idx, out_ptr, out_idx,
                  cons_ptr, sizes, pinned, order_out):
    """Memory-aware list schedule into order_out (int64[n], OUT). The dependencies must be
    acyclic (MemoryProblem checks that)."""
    cdef const int64_t[::1] pp = check_i64("pred_ptr", pred_ptr), pi = check_i64("pred_idx", pred_idx)
    cdef const int64_t[::1] ip = check_i64("in_ptr", in_ptr), ii = check_i64("in_idx", in_idx)
    cdef const int64_t[::1] op = check_i64("out_ptr", out_ptr), oi = check_i64("out_idx", out_idx)
    cdef const int64_t[::1] cp = check_i64("cons_ptr", cons_ptr), sz = check_i64("sizes", sizes)
    cdef const int64_t[::1] pin = check_i64("pinned", pinned)
    cdef int64_t[::1] out = check_i64("order_out", order_out, True)
    cdef Py_ssize_t T = sz.shape[0], t
    if n < 0:
        raise ValueError("n must be >= 0")
    _check_csr("pred", pp, n, pi, n)
    _check_csr("in", ip, n, ii, T)
    _check_csr("out", op, n, oi, T)
    _check_csr("cons", cp, T, None, n)
    if pin.shape[0] != T or out.shape[0] != n:
        raise ValueError("pinned must have one entry per tensor and order_out one per node")
    cdef int64_t[::1] indeg = np.empty(n, np.int64), succ_cnt = np.empty(n, np.int64)
    cdef int64_t[::1] succ_ptr = np.empty(n + 1, np.int64)
    cdef int64_t[::1] succ_idx = np.empty(pi.shape[0] + 1, np.int64)
    cdef int64_t[::1] ready = np.empty(n + 1, np.int64)
    cdef int64_t[::1] remaining = np.empty(T + 1, np.int64)
    for t in range(T):
        remaining[t] = cp[t + 1] - cp[t]
    if n == 0:
        return
    with nogil:
        list_core(n, cptr(pp), cptr(pi), cptr(ip), cptr(ii), cptr(op), cptr(oi),
                  cptr(cp), cptr(sz), cptr(pin), &indeg[0], &remaining[0], &succ_cnt[0],
                  &succ_ptr[0], &succ_idx[0], &ready[0], &out[0])


# --- DP over executed sets --------------------------------------------------------------

cdef struct States:
    Py_ssize_t W          # words per bitset
    Py_ssize_t count, cap
    uint64_t* bits        # count * W
    int64_t* peak
    int64_t* res
    int64_t* parent
    int64_t* last


cdef bint _grow(States* s) noexcept nogil:
    cdef Py_ssize_t cap = s.cap * 2 if s.cap else 1024
    cdef void* p
    p = realloc(s.bits, cap * s.W * sizeof(uint64_t))
    if p == NULL: return False
    s.bits = <uint64_t*>p
    p = realloc(s.peak, cap * sizeof(int64_t))
    if p == NULL: return False
    s.peak = <int64_t*>p
    p = realloc(s.res, cap * sizeof(int64_t))
    if p == NULL: return False
    s.res = <int64_t*>p
    p = realloc(s.parent, cap * sizeof(int64_t))
    if p == NULL: return False
    s.parent = <int64_t*>p
    p = realloc(s.last, cap * sizeof(int64_t))
    if p == NULL: return False
    s.last = <int64_t*>p
    s.cap = cap
    return True


cdef inline uint64_t _hash(const uint64_t* b, Py_ssize_t W) noexcept nogil:
    cdef uint64_t h = 0x9E3779B97F4A7C15ULL, x
    cdef Py_ssize_t i
    for i in range(W):
        x = b[i] + h
        x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ULL
        x = (x ^ (x >> 27)) * 0x94D049BB133111EBULL
        h = x ^ (x >> 31)
    return h


cdef struct Work:
    int64_t* out_all
    int64_t* out_live
    int64_t* sv
    int64_t* sdur
    int64_t* sres
    uint64_t* cur
    int64_t* table


cdef int64_t dp_core(Py_ssize_t n, const int64_t* pred_ptr, const int64_t* pred_idx,
                     const int64_t* in_ptr, const int64_t* in_idx,
                     const int64_t* out_ptr, const int64_t* out_idx,
                     const int64_t* cons_ptr, const int64_t* cons_idx,
                     const int64_t* sizes, const int64_t* producer, const int64_t* pinned,
                     Py_ssize_t T, int64_t upper_bound, int64_t floor, int64_t max_states,
                     double deadline, int64_t* order, int64_t* peak_out,
                     int64_t* states_out) noexcept nogil:
    """Returns 1 (order, OUT, is optimal within upper_bound), 0 (nothing within it),
    -1 (state or time budget exceeded) or -2 (out of memory)."""
    cdef States st
    cdef Work wk
    cdef int64_t status
    st.W = (n + 63) // 64
    st.count = st.cap = 0
    st.bits = NULL
    st.peak = st.res = st.parent = st.last = NULL
    wk.out_all = <int64_t*>malloc((n + 1) * sizeof(int64_t))
    wk.out_live = <int64_t*>malloc((n + 1) * sizeof(int64_t))
    wk.sv = <int64_t*>malloc((n + 1) * sizeof(int64_t))
    wk.sdur = <int64_t*>malloc((n + 1) * sizeof(int64_t))
    wk.sres = <int64_t*>malloc((n + 1) * sizeof(int64_t))
    wk.cur = <uint64_t*>malloc(st.W * sizeof(uint64_t))
    wk.table = NULL
    if wk.out_all == NULL or wk.out_live == NULL or wk.sv == NULL or wk.sdur == NULL \
            or wk.sres == NULL or wk.cur == NULL or not _grow(&st):
        status = -2
    else:
        status = dp_run(n, pred_ptr, pred_idx, in_ptr, in_idx, out_ptr, out_idx, cons_ptr,
                        cons_idx, sizes, producer, pinned, T, upper_bound, floor,
                        max_states, deadline, order, peak_out, &st, &wk)
    states_out[0] = st.count
    free(wk.table)
    free(wk.out_all); free(wk.out_live); free(wk.sv); free(wk.sdur); free(wk.sres)
    free(wk.cur)
    free(st.bits); free(st.peak); free(st.res); free(st.parent); free(st.last)
    return status


cdef int64_t dp_run(Py_ssize_t n, const int64_t* pred_ptr, const int64_t* pred_idx,
                    const int64_t* in_ptr, const int64_t* in_idx,
                    const int64_t* out_ptr, const int64_t* out_idx,
                    const int64_t* cons_ptr, const int64_t* cons_idx,
                    const int64_t* sizes, const int64_t* producer, const int64_t* pinned,
                    Py_ssize_t T, int64_t upper_bound, int64_t floor, int64_t max_states,
                    double deadline, int64_t* order, int64_t* peak_out, States* stp,
                    Work* wk) noexcept nogil:
    cdef Py_ssize_t W = stp.W, v, e, t, k, c, i, lo, hi, si, slot, mask
    cdef Py_ssize_t nsucc, tcap = 0
    cdef int64_t res0 = 0, dead0 = 0, pk, res, dur, nres, freed, npk
    cdef int64_t* out_all = wk.out_all
    cdef int64_t* out_live = wk.out_live
    cdef int64_t* sv = wk.sv
    cdef int64_t* sdur = wk.sdur
    cdef int64_t* sres = wk.sres
    cdef uint64_t* cur = wk.cur
    cdef bint ok, free_move
    for v in range(n):
        out_all[v] = out_live[v] = 0
        for e in range(out_ptr[v], out_ptr[v + 1]):
            t = out_idx[e]
            out_all[v] += sizes[t]
            if cons_ptr[t + 1] > cons_ptr[t] or pinned[t]:
                out_live[v] += sizes[t]
    for t in range(T):
        if producer[t] < 0:
            if cons_ptr[t + 1] > cons_ptr[t] or pinned[t]:
                res0 += sizes[t]
            else:
                dead0 += sizes[t]
    memset(stp.bits, 0, W * sizeof(uint64_t))
    stp.peak[0] = 0
    stp.res[0] = res0
    stp.parent[0] = -1
    stp.last[0] = -1
    stp.count = 1
    lo, hi = 0, 1
    for k in range(n):
        # a fresh open-addressing wk.table for level k + 1, at most half full
        tcap = 1024
        while tcap < 4 * (hi - lo):
            tcap *= 2
        free(wk.table)
        wk.table = <int64_t*>malloc(tcap * sizeof(int64_t))
        if wk.table == NULL:
            return -2
        for i in range(tcap):
            wk.table[i] = -1
        for si in range(lo, hi):
            pk = stp.peak[si]
            res = stp.res[si]
            memcpy(cur, &stp.bits[si * W], W * sizeof(uint64_t))
            nsucc = 0
            for v in range(n):
                if (cur[v >> 6] >> (v & 63)) & 1:
                    continue
                ok = True
                for e in range(pred_ptr[v], pred_ptr[v + 1]):
                    c = pred_idx[e]
                    if not ((cur[c >> 6] >> (c & 63)) & 1):
                        ok = False
                        break
                if not ok:
                    continue
                dur = res + out_all[v] + (dead0 if k == 0 else 0)
                freed = 0
                for e in range(in_ptr[v], in_ptr[v + 1]):
                    t = in_idx[e]
                    if pinned[t]:
                        continue
                    ok = True
                    for i in range(cons_ptr[t], cons_ptr[t + 1]):
                        c = cons_idx[i]
                        if c != v and not ((cur[c >> 6] >> (c & 63)) & 1):
                            ok = False
                            break
                    if ok:
                        freed += sizes[t]
                nres = res + out_live[v] - freed
                free_move = dur <= (pk if pk > floor else floor) and nres <= res
                if free_move:
                    nsucc = 0
                sv[nsucc] = v
                sdur[nsucc] = dur
                sres[nsucc] = nres
                nsucc += 1
                if free_move:
                    break
            for i in range(nsucc):
                v = sv[i]
                npk = pk if pk > sdur[i] else sdur[i]
                if npk > upper_bound:
                    continue
                # the successor's bits go into the next free row, then are looked up
                if stp.count == stp.cap:
                    if not _grow(stp):
                        return -2
                memcpy(&stp.bits[stp.count * W], &stp.bits[si * W], W * sizeof(uint64_t))
                stp.bits[stp.count * W + (v >> 6)] |= (<uint64_t>1) << (v & 63)
                mask = tcap - 1
                slot = <Py_ssize_t>(_hash(&stp.bits[stp.count * W], W) & <uint64_t>mask)
                while wk.table[slot] >= 0 and memcmp(&stp.bits[wk.table[slot] * W],
                                                  &stp.bits[stp.count * W],
                                                  W * sizeof(uint64_t)) != 0:
                    slot = (slot + 1) & mask
                if wk.table[slot] < 0:
                    wk.table[slot] = stp.count
                    stp.peak[stp.count] = npk
                    stp.res[stp.count] = sres[i]
                    stp.parent[stp.count] = si
                    stp.last[stp.count] = v
                    stp.count += 1
                    if stp.count > max_states:
                        return -1
                    if deadline > 0 and (stp.count & 4095) == 0 \
                            and now() >= deadline:
                        return -1
                    if 2 * (stp.count - hi) >= tcap:
                        # rehash into a wk.table twice the size
                        free(wk.table)
                        tcap *= 2
                        wk.table = <int64_t*>malloc(tcap * sizeof(int64_t))
                        if wk.table == NULL:
                            return -2
                        for c in range(tcap):
                            wk.table[c] = -1
                        mask = tcap - 1
                        for c in range(hi, stp.count):
                            slot = <Py_ssize_t>(_hash(&stp.bits[c * W], W) & <uint64_t>mask)
                            while wk.table[slot] >= 0:
                                slot = (slot + 1) & mask
                            wk.table[slot] = c
                elif npk < stp.peak[wk.table[slot]]:
                    stp.peak[wk.table[slot]] = npk
                    stp.parent[wk.table[slot]] = si
                    stp.last[wk.table[slot]] = v
        lo, hi = hi, stp.count
        if lo == hi:
            return 0
    # one state left: every node executed; walk the parents back
    si = lo
    peak_out[0] = stp.peak[si]
    for k in range(n - 1, -1, -1):
        order[k] = stp.last[si]
        si = stp.parent[si]
    return 1


def dp_schedule(Py_ssize_t n, pred_ptr, pred_idx, in_ptr, in_idx, out_ptr, out_idx,
                cons_ptr, cons_idx, sizes, producer, pinned, int64_t upper_bound,
                int64_t floor, int64_t max_states, order_out, double time_limit=0):
    """Exact DP over executed sets; returns (status, peak, states explored).

    status 1: order_out (int64[n], OUT) is an optimal order among those with peak <=
    upper_bound; 0: no order is within upper_bound; -1: more than max_states states, or
    more than time_limit seconds (0: no limit).
    Free moves use max(peak so far, floor): floor must be a lower bound on the peak.
    """
    cdef const int64_t[::1] pp = check_i64("pred_ptr", pred_ptr), pi = check_i64("pred_idx", pred_idx)
    cdef const int64_t[::1] ip = check_i64("in_ptr", in_ptr), ii = check_i64("in_idx", in_idx)
    cdef const int64_t[::1] op = check_i64("out_ptr", out_ptr), oi = check_i64("out_idx", out_idx)
    cdef const int64_t[::1] cp = check_i64("cons_ptr", cons_ptr), ci = check_i64("cons_idx", cons_idx)
    cdef const int64_t[::1] sz = check_i64("sizes", sizes), pr = check_i64("producer", producer)
    cdef const int64_t[::1] pin = check_i64("pinned", pinned)
    cdef int64_t[::1] out = check_i64("order_out", order_out, True)
    cdef Py_ssize_t T = sz.shape[0]
    cdef int64_t status, peak = 0, states = 0
    if n <= 0:
        raise ValueError("n must be >= 1")
    _check_csr("pred", pp, n, pi, n)
    _check_csr("in", ip, n, ii, T)
    _check_csr("out", op, n, oi, T)
    _check_csr("cons", cp, T, ci, n)
    if pin.shape[0] != T or pr.shape[0] != T or out.shape[0] != n:
        raise ValueError("producer/pinned need one entry per tensor, order_out one per node")
    if max_states < 1:
        raise ValueError("max_states must be >= 1")
    cdef double deadline = now() + time_limit if time_limit > 0 else 0
    with nogil:
        status = dp_core(n, cptr(pp), cptr(pi), cptr(ip), cptr(ii), cptr(op),
                         cptr(oi), cptr(cp), cptr(ci), cptr(sz), cptr(pr), cptr(pin),
                         T, upper_bound, floor, max_states, deadline, &out[0], &peak,
                         &states)
    if status == -2:
        raise MemoryError("schedule DP: out of memory")
    return int(status), int(peak), int(states)
