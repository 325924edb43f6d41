"""Storage sharing decisions over integer arrays: readers, predecessors, views, in-place
outputs and Concat slices (the rules of cnngraph.passes.aliasing).

The def wrapper validates shapes and ranges; `alias_core` trusts them. Pure-Python twin and
test oracle: cnngraph.passes.aliasing.alias_py (the same rules in the same order, the same
walk for the ancestor check, so its visit budget runs out at the same node).
"""
from libc.stdint cimport int64_t
from libc.stdlib cimport qsort

from native_util cimport check_i64, cptr

import numpy as np

cdef enum:  # node_flags bits
    VIEW = 1
    GRAD_FROM_OUTPUT = 2
    CONCAT = 4  # a Concat whose inputs would be contiguous slices of its output


cdef bint all_ancestors(const int64_t* targets, Py_ssize_t count, int64_t node,
                        const int64_t* pr_ptr, const int64_t* pr_idx, int64_t budget,
                        int64_t stamp, int64_t* seen, int64_t* todo_mark,
                        int64_t* stack) noexcept nogil:
    """Whether every target is an ancestor of node: the twin's walk up from it, never
    below the lowest target, giving up (False) past `budget` visited nodes."""
    cdef Py_ssize_t k, top = 0, nseen = 1
    cdef int64_t lowest = targets[0], highest = targets[0], todo = 0, u, w, e
    for k in range(count):
        if targets[k] < lowest:
            lowest = targets[k]
        if targets[k] > highest:
            highest = targets[k]
    if highest >= node:
        return False
    for k in range(count):
        if todo_mark[targets[k]] != stamp:
            todo_mark[targets[k]] = stamp
            todo += 1
    stack[top] = node
    top += 1
    seen[node] = stamp
    while top > 0 and todo > 0:
        top -= 1
        w = stack[top]
        for e in range(pr_ptr[w], pr_ptr[w + 1]):
            u = pr_idx[e]
            if u >= lowest and seen[u] != stamp:
                if nseen > budget:
                    return False
                seen[u] = stamp
                nseen += 1
                if todo_mark[u] == stamp:
                    todo_mark[u] = -1
                    todo -= 1
                stack[top] = u
                top += 1
    return todo == 0


cdef void alias_core(Py_ssize_t n, Py_ssize_t T, const int64_t* in_ptr, const int64_t* in_ids,
                     const int64_t* out0, const int64_t* sizes, const int64_t* producer,
                     const int64_t* is_output, const int64_t* flags, const int64_t* ip_ptr,
                     const int64_t* ip_k, bint inplace, bint training, int64_t budget,
                     int64_t* rd_ptr, int64_t* rd_idx, int64_t* pr_ptr, int64_t* pr_idx,
                     int64_t* value, int64_t* storage, int64_t* tail, int64_t* parent,
                     int64_t* offset, int64_t* made, int64_t* mark, int64_t* mark2, int64_t* mark3,
                     int64_t* buf, int64_t* vnext, int64_t* vlast, int64_t* cnext,
                     int64_t* hasout) noexcept nogil:
    """Fills readers (CSR by tensor, node order), preds (CSR by node, ascending), and per
    tensor its value (and vnext: the views of a value, in order), per value its storage
    (and cnext: the values of a storage, in order), per storage its last value (tail), and per
    storage the storage it is a slice of (parent, -1: none) at offset, the slices
    numbered in the order they were made (made)."""
    cdef Py_ssize_t i, e, k, t, j, m, cnt, nin
    cdef int64_t v, st, out, u, p, x, so, total, stamp = 0, nslices = 0
    cdef bint ok

    # readers: each node once per tensor, in node order
    for t in range(T + 1):
        rd_ptr[t] = 0
        mark[t] = -1
    for i in range(n):
        for e in range(in_ptr[i], in_ptr[i + 1]):
            t = in_ids[e]
            if t >= 0 and mark[t] != i:
                mark[t] = i
                rd_ptr[t + 1] += 1
    for t in range(T):
        rd_ptr[t + 1] += rd_ptr[t]
        mark2[t] = rd_ptr[t]  # fill cursor
        mark[t] = -1
    # preds: the producers of a node's inputs, ascending
    pr_ptr[0] = 0
    for i in range(n):
        cnt = pr_ptr[i]
        for e in range(in_ptr[i], in_ptr[i + 1]):
            t = in_ids[e]
            if t < 0 or mark[t] == i:
                continue
            mark[t] = i
            rd_idx[mark2[t]] = i
            mark2[t] += 1
            p = producer[t]
            if p < 0:
                continue
            for j in range(pr_ptr[i], cnt):  # insertion into the sorted row, no repeats
                if pr_idx[j] >= p:
                    break
            else:
                j = cnt
            if j < cnt and pr_idx[j] == p:
                continue
            for m in range(cnt, j, -1):
                pr_idx[m] = pr_idx[m - 1]
            pr_idx[j] = p
            cnt += 1
        pr_ptr[i + 1] = cnt

    # 1. values: a view joins its source's value; members of a value in tensor order
    for t in range(T):
        value[t] = t
        storage[t] = t
        tail[t] = t
        parent[t] = -1
        offset[t] = 0
        made[t] = -1
        vnext[t] = -1
        vlast[t] = t
        cnext[t] = -1
        hasout[t] = is_output[t]
    for t in range(n if n > T else T):  # marks are indexed by nodes and by tensors
        mark[t] = -1
        mark2[t] = -1
        mark3[t] = -1
    for i in range(n):
        if flags[i] & VIEW and in_ptr[i + 1] > in_ptr[i] and in_ids[in_ptr[i]] >= 0 \
                and out0[i] >= 0:
            v = value[in_ids[in_ptr[i]]]
            value[out0[i]] = v
            vnext[vlast[v]] = out0[i]
            vlast[v] = out0[i]
            if is_output[out0[i]]:
                hasout[v] = 1

    # 2. storages: values written over each other in place
    if inplace:
        for i in range(n):
            out = out0[i]
            if ip_ptr[i] == ip_ptr[i + 1] or out < 0 or value[out] != out:
                continue
            nin = in_ptr[i + 1] - in_ptr[i]
            for e in range(ip_ptr[i], ip_ptr[i + 1]):
                k = ip_k[e]
                if k >= nin or in_ids[in_ptr[i] + k] < 0:
                    continue
                v = value[in_ids[in_ptr[i] + k]]
                st = storage[v]
                if sizes[v] != sizes[out] or tail[st] != v or producer[st] < 0 or hasout[v]:
                    continue
                # the value's other readers (its members' readers, but node i)
                stamp += 1
                cnt = 0
                x = v
                while x >= 0:
                    for j in range(rd_ptr[x], rd_ptr[x + 1]):
                        u = rd_idx[j]
                        if u != i and mark[u] != stamp:
                            mark[u] = stamp
                            buf[cnt] = u
                            cnt += 1
                    x = vnext[x]
                if cnt and not all_ancestors(buf, cnt, i, pr_ptr, pr_idx, budget, stamp,
                                             mark2, mark3, buf + cnt):
                    continue
                if training:
                    ok = (flags[i] & (GRAD_FROM_OUTPUT | VIEW)) != 0
                    for j in range(cnt):
                        if not flags[buf[j]] & (GRAD_FROM_OUTPUT | VIEW):
                            ok = False
                    if not ok:
                        continue
                storage[out] = st
                cnext[tail[st]] = out
                tail[st] = out
                break

    # 3. Concat elimination: an input's storage becomes a slice of the output's storage
    if inplace and not training:
        for i in range(n):
            out = out0[i]
            if not flags[i] & CONCAT or out < 0:
                continue
            so = storage[out]
            if tail[so] != out:
                continue
            stamp += 1
            cnt = 0
            total = 0
            ok = True
            for e in range(in_ptr[i], in_ptr[i + 1]):
                t = in_ids[e]
                if t < 0:
                    ok = False
                    break
                v = value[t]
                st = storage[v]
                if tail[st] != v or producer[st] < 0 or parent[st] >= 0 \
                        or mark[st] == stamp or sizes[st] == 0:
                    ok = False
                    break
                mark[st] = stamp
                buf[cnt] = st
                cnt += 1
                total += sizes[st]
            if not ok or total != sizes[out]:
                continue
            total = 0
            for j in range(cnt):
                parent[buf[j]] = so
                offset[buf[j]] = total
                made[buf[j]] = nslices
                nslices += 1
                total += sizes[buf[j]]


cdef int _cmp_i64(const void* a, const void* b) noexcept nogil:
    cdef int64_t x = (<const int64_t*>a)[0], y = (<const int64_t*>b)[0]
    return (x > y) - (x < y)


cdef Py_ssize_t tensors_of(int64_t st, const int64_t* cnext, const int64_t* vnext,
                           int64_t* out) noexcept nogil:
    """The tensors of storage st (its values oldest first, each followed by its views)
    into out (NULL: only counted); returns how many."""
    cdef Py_ssize_t k = 0
    cdef int64_t v = st, u
    while v >= 0:
        u = v
        while u >= 0:
            if out != NULL:
                out[k] = u
            k += 1
            u = vnext[u]
        v = cnext[v]
    return k


cdef void leaves_count(Py_ssize_t T, const int64_t* value, const int64_t* storage,
                       const int64_t* parent, const int64_t* fchild, const int64_t* cnext,
                       const int64_t* vnext, const int64_t* rd_ptr, int64_t* buf,
                       int64_t* counts) noexcept nogil:
    """counts (OUT): leaf storages, entries of their keep lists, bound on their readers."""
    cdef Py_ssize_t t, j, m
    cdef int64_t up
    counts[0] = counts[1] = counts[2] = 0
    for t in range(T):
        if value[t] != t or storage[t] != t or fchild[t] >= 0:
            continue
        counts[0] += 1
        up = t
        while up >= 0:
            m = tensors_of(up, cnext, vnext, buf)
            counts[1] += m
            for j in range(m):
                counts[2] += rd_ptr[buf[j] + 1] - rd_ptr[buf[j]]
            up = parent[up]


cdef void leaves_core(Py_ssize_t T, const int64_t* value, const int64_t* storage,
                      const int64_t* parent, const int64_t* fchild, const int64_t* cnext,
                      const int64_t* vnext, const int64_t* rd_ptr, const int64_t* rd_idx,
                      const int64_t* producer, const int64_t* is_output, Py_ssize_t nmark,
                      int64_t* mark, int64_t* leaf_t, int64_t* leaf_home, int64_t* leaf_st,
                      int64_t* ten_lo, int64_t* ten_hi, int64_t* plain, int64_t* keep_ptr, int64_t* keep,
                      int64_t* pinned, int64_t* cons_ptr, int64_t* cons) noexcept nogil:
    """Per tensor, in the twin's order, the leaf storage at its offset (leaf_t, leaf_home);
    per leaf storage its tensors (leaf_t[ten_lo[k]:ten_hi[k]]), whether it is one
    tensor sharing nothing (plain), the tensors keeping it alive (keep CSR), pinned, and
    the nodes reading them but its producer (cons CSR, ascending)."""
    cdef Py_ssize_t t, j, L = 0, K = 0, kp = 0, cp = 0, start
    cdef int64_t home, up, r
    cdef bint pin
    for t in range(nmark):  # indexed by nodes
        mark[t] = -1
    keep_ptr[0] = cons_ptr[0] = 0
    for t in range(T):
        if value[t] != t or storage[t] != t:
            continue  # reached from its storage
        home = t
        while fchild[home] >= 0:  # an eliminated Concat lives at its first slice
            home = fchild[home]
        start = L
        L += tensors_of(t, cnext, vnext, leaf_t + L)
        for j in range(start, L):
            leaf_home[j] = home
        if fchild[t] >= 0:
            continue
        leaf_st[K] = t
        ten_lo[K] = start
        ten_hi[K] = L
        plain[K] = cnext[t] < 0 and vnext[t] < 0
        for j in range(start, L):
            keep[kp] = leaf_t[j]
            kp += 1
        up = parent[t]  # a slice lives while any enclosing storage is read
        while up >= 0:
            kp += tensors_of(up, cnext, vnext, keep + kp)
            up = parent[up]
        keep_ptr[K + 1] = kp
        pin = False
        start = cp
        for j in range(keep_ptr[K], kp):
            if is_output[keep[j]]:
                pin = True
            for r in range(rd_ptr[keep[j]], rd_ptr[keep[j] + 1]):
                if rd_idx[r] != producer[t] and mark[rd_idx[r]] != K:
                    mark[rd_idx[r]] = K
                    cons[cp] = rd_idx[r]
                    cp += 1
        qsort(cons + start, cp - start, sizeof(int64_t), _cmp_i64)
        cons_ptr[K + 1] = cp
        pinned[K] = pin
        K += 1


def alias_arrays(Py_ssize_t n, in_ptr, in_ids, out0, sizes, producer, is_output,
                 node_flags, inplace_ptr, inplace_k, bint inplace, bint training,
                 int64_t budget):
    """The sharing decisions of n nodes (topologically numbered) over T tensors.

    Node i reads in_ids[in_ptr[i]:in_ptr[i + 1]] (its inputs in order; -1: not an
    activation) and writes out0[i] (its first output, -1: none). Tensor t has sizes[t]
    bytes, producer[t] (-1: graph input) and is_output[t] (a graph output). node_flags:
    1 a view, 2 gradient from the output, 4 a Concat along a contiguous axis. Node i may
    write over its inputs inplace_k[inplace_ptr[i]:inplace_ptr[i + 1]] (positions).

    Returns int64 arrays: readers (rd_ptr, rd_idx: per tensor its reading nodes, in order),
    preds (pr_ptr, pr_idx: per node the producers of its inputs, ascending), and per tensor
    value (the tensor a view aliases, else itself), storage (the value a value was written
    over in place, else itself), parent (the storage a storage is a slice of, -1: none),
    offset (its byte offset there) and made (the slices numbered in the order made).
    """
    cdef const int64_t[::1] ip = check_i64("in_ptr", in_ptr)
    cdef const int64_t[::1] ii = check_i64("in_ids", in_ids)
    cdef const int64_t[::1] o0 = check_i64("out0", out0)
    cdef const int64_t[::1] sz = check_i64("sizes", sizes)
    cdef const int64_t[::1] pd = check_i64("producer", producer)
    cdef const int64_t[::1] io = check_i64("is_output", is_output)
    cdef const int64_t[::1] fl = check_i64("node_flags", node_flags)
    cdef const int64_t[::1] kp = check_i64("inplace_ptr", inplace_ptr)
    cdef const int64_t[::1] kk = check_i64("inplace_k", inplace_k)
    cdef Py_ssize_t T = sz.shape[0], E = ii.shape[0], i, e
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    if pd.shape[0] != T or io.shape[0] != T:
        raise ValueError("producer and is_output must have one entry per tensor")
    if o0.shape[0] != n or fl.shape[0] != n:
        raise ValueError("out0 and node_flags must have one entry per node")
    if ip.shape[0] != n + 1 or ip[0] != 0 or ip[n] != E:
        raise ValueError("in_ptr must have n + 1 entries, from 0 to len(in_ids)")
    if kp.shape[0] != n + 1 or kp[0] != 0 or kp[n] != kk.shape[0]:
        raise ValueError("inplace_ptr must have n + 1 entries, from 0 to len(inplace_k)")
    for i in range(n):
        if ip[i + 1] < ip[i] or kp[i + 1] < kp[i]:
            raise ValueError(f"in_ptr or inplace_ptr decreases at node {i}")
        if not -1 <= o0[i] < T:
            raise ValueError(f"node {i}: output {o0[i]} is outside [-1, {T})")
        if o0[i] >= 0 and pd[o0[i]] != i:
            raise ValueError(f"node {i}: its output {o0[i]} has producer {pd[o0[i]]}")
        for e in range(ip[i], ip[i + 1]):
            if not -1 <= ii[e] < T or (ii[e] >= 0 and pd[ii[e]] >= i):
                raise ValueError(f"node {i}: input {ii[e]} is not a tensor made before it")
        for e in range(kp[i], kp[i + 1]):
            if kk[e] < 0:
                raise ValueError(f"node {i}: negative in-place input position {kk[e]}")
    for i in range(T):
        if not -1 <= pd[i] < n or sz[i] < 0:
            raise ValueError(f"tensor {i}: producer {pd[i]} or size {sz[i]} out of range")
    i64 = np.int64
    rd_ptr, rd_idx = np.empty(T + 1, i64), np.empty(E, i64)
    pr_ptr, pr_idx = np.empty(n + 1, i64), np.empty(E, i64)
    value, storage, tail = np.empty(T, i64), np.empty(T, i64), np.empty(T, i64)
    parent, offset, made = np.empty(T, i64), np.empty(T, i64), np.empty(T, i64)
    big = max(n, T) + 1
    cdef int64_t[::1] w_rp = rd_ptr, w_ri = rd_idx, w_pp = pr_ptr, w_pi = pr_idx
    cdef int64_t[::1] w_v = value, w_s = storage, w_t = tail, w_p = parent, w_o = offset
    cdef int64_t[::1] w_m = made
    cdef int64_t[::1] mark = np.empty(big, i64), mark2 = np.empty(big, i64)
    cdef int64_t[::1] mark3 = np.empty(big, i64)
    # other readers (<= n) then the ancestor walk's stack (<= n + 1)
    cdef int64_t[::1] buf = np.empty(2 * n + 2 + E, i64)
    vnext_a, cnext_a = np.empty(T + 1, i64), np.empty(T + 1, i64)
    cdef int64_t[::1] vnext = vnext_a, cnext = cnext_a, vlast = np.empty(T + 1, i64)
    cdef int64_t[::1] hasout = np.empty(T + 1, i64)
    with nogil:
        alias_core(n, T, cptr(ip), cptr(ii), cptr(o0), cptr(sz), cptr(pd), cptr(io),
                   cptr(fl), cptr(kp), cptr(kk), inplace, training, budget,
                   &w_rp[0], <int64_t*>cptr(w_ri), &w_pp[0], <int64_t*>cptr(w_pi),
                   <int64_t*>cptr(w_v), <int64_t*>cptr(w_s), <int64_t*>cptr(w_t),
                   <int64_t*>cptr(w_p), <int64_t*>cptr(w_o), <int64_t*>cptr(w_m),
                   &mark[0], &mark2[0],
                   &mark3[0], &buf[0], &vnext[0], &vlast[0], &cnext[0], &hasout[0])
    return rd_ptr, rd_idx[:w_rp[T]].copy(), pr_ptr, pr_idx[:w_pp[n]].copy(), value, storage, \
        parent, offset, made, vnext_a, cnext_a


def leaf_arrays(Py_ssize_t n, value, storage, parent, offset, vnext, cnext, rd_ptr, rd_idx,
                producer, is_output):
    """The leaf storages of what `alias_arrays` returned for n nodes (see leaves_core), as
    int64 arrays in a dict: leaf_t, leaf_home, leaf_st, ten_lo, ten_hi, plain, keep_ptr,
    keep, pinned, cons_ptr, cons."""
    cdef const int64_t[::1] v = check_i64("value", value), st = check_i64("storage", storage)
    cdef const int64_t[::1] par = check_i64("parent", parent)
    cdef const int64_t[::1] off = check_i64("offset", offset)
    cdef const int64_t[::1] vn = check_i64("vnext", vnext), cn = check_i64("cnext", cnext)
    cdef const int64_t[::1] rp = check_i64("rd_ptr", rd_ptr), ri = check_i64("rd_idx", rd_idx)
    cdef const int64_t[::1] pd = check_i64("producer", producer)
    cdef const int64_t[::1] io = check_i64("is_output", is_output)
    cdef Py_ssize_t T = v.shape[0], t
    if not st.shape[0] == par.shape[0] == off.shape[0] == pd.shape[0] == io.shape[0] == T:
        raise ValueError("every per-tensor array must have one entry per tensor")
    if vn.shape[0] < T or cn.shape[0] < T or rp.shape[0] != T + 1:
        raise ValueError("vnext, cnext and rd_ptr must cover every tensor")
    if ri.shape[0] != rp[T] or n < 0:
        raise ValueError("rd_ptr must end at len(rd_idx), and n must be >= 0")
    for t in range(T):  # the links must stay among the tensors
        if not (0 <= v[t] < T and 0 <= st[t] < T and -1 <= par[t] < T and -1 <= vn[t] < T
                and -1 <= cn[t] < T and -1 <= pd[t] < n):
            raise ValueError(f"tensor {t}: a link is outside the tensors")
    for t in range(ri.shape[0]):
        if not 0 <= ri[t] < n:
            raise ValueError(f"rd_idx[{t}] = {ri[t]} is outside [0, {n})")
    i64 = np.int64
    fchild_a = np.full(T + 1, -1, i64)
    cdef int64_t[::1] fchild = fchild_a
    for t in range(T):
        if par[t] >= 0 and off[t] == 0:
            fchild[par[t]] = t
    cdef int64_t[::1] buf = np.empty(T + 1, i64), counts = np.zeros(3, i64)
    with nogil:
        leaves_count(T, cptr(v), cptr(st), cptr(par), &fchild[0], cptr(cn), cptr(vn), &rp[0],
                     &buf[0], &counts[0])
    K, nkeep, ncons = counts[0], counts[1], counts[2]
    out = {k: np.empty(m, i64) for k, m in (
        ("leaf_t", T), ("leaf_home", T), ("leaf_st", K), ("ten_lo", K), ("ten_hi", K),
        ("plain", K),
        ("keep_ptr", K + 1), ("keep", nkeep), ("pinned", K), ("cons_ptr", K + 1),
        ("cons", ncons))}
    cdef int64_t[::1] lt = out["leaf_t"], lh = out["leaf_home"], ls = out["leaf_st"]
    cdef int64_t[::1] lo = out["ten_lo"], hi = out["ten_hi"], pl = out["plain"]
    cdef int64_t[::1] kpp = out["keep_ptr"]
    cdef int64_t[::1] kk = out["keep"], pin = out["pinned"], cpp = out["cons_ptr"]
    cdef int64_t[::1] cc = out["cons"]
    cdef int64_t[::1] mark = np.empty(n + 1, i64)
    with nogil:
        leaves_core(T, cptr(v), cptr(st), cptr(par), &fchild[0], cptr(cn), cptr(vn), &rp[0],
                    cptr(ri), cptr(pd), cptr(io), n, &mark[0], <int64_t*>cptr(lt),
                    <int64_t*>cptr(lh), <int64_t*>cptr(ls), <int64_t*>cptr(lo),
                    <int64_t*>cptr(hi), <int64_t*>cptr(pl),
                    &kpp[0], <int64_t*>cptr(kk), <int64_t*>cptr(pin), &cpp[0],
                    <int64_t*>cptr(cc))
    return out
