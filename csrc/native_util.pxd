# Helpers every csrc/*.pyx shares, inline in a .pxd of their own (cimport them:
# `from native_util cimport check_i64, cptr, now`).
import numpy as np

from libc.stdint cimport int64_t
from posix.time cimport CLOCK_MONOTONIC, clock_gettime, timespec


cdef inline object check_i64(str name, object a, bint writable=False):
    """The array itself if it is a 1-D C-contiguous int64 numpy array: clear messages here
    beat Cython's generic 'Buffer dtype mismatch'."""
    if not isinstance(a, np.ndarray):
        raise TypeError(f"{name} must be a numpy int64 array, got {type(a).__name__}")
    if a.dtype != np.int64 or a.ndim != 1 or not a.flags.c_contiguous:
        raise TypeError(
            f"{name} must be a 1-D C-contiguous int64 array, got "
            f"dtype={a.dtype} ndim={a.ndim} contiguous={a.flags.c_contiguous}")
    if writable and not a.flags.writeable:
        raise ValueError(f"{name} must be writable")
    return a


cdef inline const int64_t* cptr(const int64_t[::1] a) noexcept nogil:
    # &a[0] on an empty view is out of range (and trips boundscheck in debug builds).
    return &a[0] if a.shape[0] else NULL


cdef inline double now() noexcept nogil:
    """Seconds on the monotonic clock (time.monotonic's on Linux)."""
    cdef timespec ts
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return ts.tv_sec + ts.tv_nsec * 1e-9
