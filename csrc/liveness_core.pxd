# The liveness core as an inline function in a .pxd of its own (no .pyx of this name):
# csrc/liveness.pyx wraps it, and any other .pyx in csrc/ can `from liveness_core cimport
# liveness_core` to call it inside its own nogil loops (e.g. to score candidate orders)
# with no Python-level import. (A liveness.pxd would not be found: the module's qualified
# name is cnngraph._native.liveness, so Cython looks for cnngraph/_native/liveness.pxd.)
from libc.stdint cimport int64_t


cdef inline int64_t liveness_core(
    const int64_t* sizes,
    const int64_t* producer_step,
    const int64_t* consumer_ptr,
    const int64_t* consumer_step,
    Py_ssize_t num_tensors,
    Py_ssize_t num_steps,
    int64_t* live_out,          # OUT: bytes live at each step, length num_steps
    Py_ssize_t* peak_step,      # OUT: first step reaching the peak, -1 if num_steps == 0
) noexcept nogil:
    """Fill live_out and return the peak; trusts its arguments (the def wrapper checks).

    O(T + E + num_steps): each tensor adds its size on [first, last] to a difference
    array (live_out itself), and one prefix sum turns it into the live bytes per step.
    """
    cdef Py_ssize_t s, t, e
    cdef int64_t first, last, running, peak
    peak_step[0] = -1
    if num_steps == 0:
        return 0  # no step to be live at (graph inputs included)
    for s in range(num_steps):
        live_out[s] = 0
    for t in range(num_tensors):
        first = producer_step[t] if producer_step[t] > 0 else 0  # -1: graph input
        last = first  # an output nobody reads still occupies memory while its node runs
        for e in range(consumer_ptr[t], consumer_ptr[t + 1]):
            if consumer_step[e] > last:
                last = consumer_step[e]
        live_out[first] += sizes[t]
        if last + 1 < num_steps:
            live_out[last + 1] -= sizes[t]
    running = 0
    peak = -1
    for s in range(num_steps):
        running += live_out[s]
        live_out[s] = running
        if running > peak:  # strict: keep the first step that reaches the peak
            peak = running
            peak_step[0] = s
    return peak
