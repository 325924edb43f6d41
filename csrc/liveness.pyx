"""Tensor liveness over an execution order: the bytes live at every step, and their peak.

The def wrapper validates everything; `liveness_core` (liveness_core.pxd) trusts it.
Pure-Python twin and test oracle: cnngraph.passes.liveness.liveness_py.
"""
from libc.stdint cimport int64_t

from liveness_core cimport liveness_core
from native_util cimport check_i64, cptr

import numpy as np


def liveness(sizes, producer_step, consumer_ptr, consumer_step, Py_ssize_t num_steps,
             live_out):
    """Bytes live at each step of an execution order; returns (peak_bytes, peak_step).

    sizes[t]: bytes of tensor t. producer_step[t]: step of the node producing t, or -1
    for a graph input (live from step 0). Tensor t's readers are the steps
    consumer_step[consumer_ptr[t]:consumer_ptr[t + 1]] (repeats allowed; the caller pins
    graph outputs with a read at num_steps - 1). t is live on [first, last] with
    first = max(producer_step[t], 0) and last = max(first, its last read).
    live_out (int64[num_steps], OUT) receives the live bytes per step. The peak step is
    the first step reaching the peak; num_steps == 0 gives (0, -1).

    >>> import numpy as np
    >>> i64 = lambda *v: np.array(v, dtype=np.int64)
    >>> out = np.empty(2, dtype=np.int64)
    >>> liveness(i64(4, 8), i64(-1, 0), i64(0, 1, 2), i64(0, 1), 2, out), out.tolist()
    ((12, 0), [12, 8])
    """
    cdef const int64_t[::1] sz = check_i64("sizes", sizes)
    cdef const int64_t[::1] prod = check_i64("producer_step", producer_step)
    cdef const int64_t[::1] ptr = check_i64("consumer_ptr", consumer_ptr)
    cdef const int64_t[::1] cons = check_i64("consumer_step", consumer_step)
    cdef int64_t[::1] out = check_i64("live_out", live_out, writable=True)
    cdef Py_ssize_t T = sz.shape[0], t, e, peak_step
    cdef int64_t first, peak

    if num_steps < 0:
        raise ValueError(f"num_steps must be >= 0, got {num_steps}")
    if prod.shape[0] != T:
        raise ValueError(f"producer_step has length {prod.shape[0]}, expected {T} (one per tensor)")
    if ptr.shape[0] != T + 1:
        raise ValueError(f"consumer_ptr has length {ptr.shape[0]}, expected {T + 1} (tensors + 1)")
    if out.shape[0] != num_steps:
        raise ValueError(f"live_out has length {out.shape[0]}, expected num_steps={num_steps}")
    if ptr[0] != 0 or ptr[T] != cons.shape[0]:
        raise ValueError(
            f"consumer_ptr must run from 0 to len(consumer_step)={cons.shape[0]}, "
            f"got {ptr[0]}..{ptr[T]}"
        )
    for t in range(T):  # before any read through ptr, so the loop below stays in bounds
        if ptr[t + 1] < ptr[t]:
            raise ValueError(
                f"consumer_ptr decreases at tensor {t}: {ptr[t]} then {ptr[t + 1]}")
    for t in range(T):
        if sz[t] < 0:
            raise ValueError(f"tensor {t}: size {sz[t]} bytes is negative")
        if prod[t] < -1 or prod[t] >= num_steps:
            raise ValueError(
                f"tensor {t}: producer step {prod[t]} is outside [-1, {num_steps})")
        first = prod[t] if prod[t] > 0 else 0
        for e in range(ptr[t], ptr[t + 1]):
            if cons[e] < 0 or cons[e] >= num_steps:
                raise ValueError(
                    f"tensor {t}: consumer step {cons[e]} is outside [0, {num_steps})")
            if cons[e] < first:
                raise ValueError(
                    f"tensor {t}: read at step {cons[e]}, before it is produced at step {prod[t]}")

    with nogil:
        peak = liveness_core(cptr(sz), cptr(prod), cptr(ptr), cptr(cons), T, num_steps,
                             <int64_t*>cptr(out), &peak_step)
    return int(peak), int(peak_step)
