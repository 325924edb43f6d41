# distutils: sources = csrc/conv_kernels.c
"""Native float32 2-D convolution and dense layers with fused epilogues, and max pooling
(cnngraph._native.conv).

Weights are packed once into a `PackedConv` / `PackedDense`; `.run` then writes into a
caller-provided output (a view into the executor's arena) and allocates nothing, apart from
the object's own scratch buffer the first time it is needed (or pass ``scratch=``).

Epilogue: ``out = act(conv(x) + bias + residual)``, the order of ONNX's fused pattern
``Relu(Add(Conv(x, w, b), r))``. Activations: "none", "relu", "leaky_relu" (alpha, default
0.01), "clip" (alpha = min, beta = max; "relu6" is clip 0..6), "sigmoid", "hardsigmoid"
(alpha, beta; defaults 0.2, 0.5), "hardswish".

Kernels: csrc/conv_kernels.c (AVX2/FMA chosen at run time, portable C otherwise), threads
from a small persistent pool inside it. 3x3 stride-1 convs run Winograd F(2x2, 3x3) where it
is faster (``set_winograd`` / CNNGRAPH_WINOGRAD force or disable it). Test oracle: cnngraph.ops.conv.conv_reference.
"""
from libc.stdint cimport uintptr_t

import math

import numpy as np


cdef extern from "conv_kernels.h" nogil:
    enum:
        CG_ACT_NONE
        CG_ACT_RELU
        CG_ACT_LEAKY
        CG_ACT_CLIP
        CG_ACT_SIGMOID
        CG_ACT_HARDSIGMOID
        CG_ACT_HARDSWISH

    ctypedef struct cg_conv_t:
        int C, M, KH, KW, group
        int sh, sw, pt, pl, pb, pr, dh, dw
        int act
        float alpha, beta
        int Cg, Mg, K, mpanels, depthwise
        const float *wpacked
        const float *bias
        int wino, wkc

    ctypedef struct cg_dense_t:
        int K, M
        int act
        float alpha, beta
        const float *wpacked
        const float *w
        const float *bias

    void cg_conv_init(cg_conv_t *p)
    size_t cg_conv_packed_floats(const cg_conv_t *p)
    void cg_conv_pack(const cg_conv_t *p, const float *w, float *dst)
    size_t cg_conv_scratch_bytes(const cg_conv_t *p, int N, int H, int W, int threads)
    void cg_conv_run(const cg_conv_t *p, const float *x, float *y, const float *res,
                     int N, int H, int W, void *scratch, int threads)
    size_t cg_dense_packed_floats(const cg_dense_t *p)
    void cg_dense_pack(const cg_dense_t *p, const float *w, float *dst)
    size_t cg_dense_scratch_bytes(const cg_dense_t *p, int B, int threads)
    void cg_dense_run(const cg_dense_t *p, const float *x, float *y, const float *res,
                      int B, void *scratch, int threads)
    ctypedef struct cg_pool_t:
        int kh, kw, sh, sw, pt, pl, dh, dw

    size_t cg_maxpool_scratch_bytes(const cg_pool_t *q, int planes, int H, int W, int OW,
                                    int threads)
    void cg_maxpool_run(const cg_pool_t *q, const float *x, float *y, int planes, int H, int W,
                        int OH, int OW, void *scratch, int threads)
    int cg_isa()
    int cg_set_isa(int want)
    int cg_num_procs()
    int cg_set_winograd(int mode)
    int cg_conv_uses_winograd(const cg_conv_t *p, int H, int W)
    void cg_set_wino_blocking(int vfloats, int mb)
    void cg_set_blocking(int kc, int mc, int nc, int dk)
    double cg_fma_loop(long iters, int threads)


_ACTS = {
    "none": CG_ACT_NONE, "relu": CG_ACT_RELU, "leaky_relu": CG_ACT_LEAKY, "clip": CG_ACT_CLIP,
    "relu6": CG_ACT_CLIP, "sigmoid": CG_ACT_SIGMOID, "hardsigmoid": CG_ACT_HARDSIGMOID,
    "hardswish": CG_ACT_HARDSWISH,
}
_INT_MAX = 2**31 - 1


def isa():
    """The kernel flavour in use: "avx2" (AVX2/FMA, chosen at run time) or "generic"."""
    return "avx2" if cg_isa() else "generic"


def set_isa(name):
    """Force "generic" (portable C) or ask for "avx2" (granted only if the CPU has it); for
    tests and benchmarks. Returns the flavour now in use."""
    if name not in ("avx2", "generic"):
        raise ValueError(f"isa must be 'avx2' or 'generic', got {name!r}")
    cg_set_isa(1 if name == "avx2" else 0)
    return isa()


def _set_blocking(int kc=0, int mc=0, int nc=0, int direct_kmax=-1):
    """Cache blocking of the GEMM (KC, MC, NC; 0 keeps a value) and the largest K that runs in
    direct mode (-1 keeps it, 0 turns direct mode off): for tuning only. Not thread safe
    against running convs; scratch_bytes changes with them. Results stay within rounding."""
    cg_set_blocking(kc, mc, nc, direct_kmax)


_WINO_MODES = {"auto": -1, "off": 0, "on": 1}


def set_winograd(mode):
    """Winograd F(2x2, 3x3) for 3x3 stride-1 dilation-1 group-1 convs, read when a PackedConv is
    constructed: "auto" (the default: used where measured faster, AVX2 only), "off", or "on"
    (every eligible conv, any input size and ISA; for tests). The environment variable
    CNNGRAPH_WINOGRAD (auto/off/on) sets the initial mode. Returns the previous mode."""
    if mode not in _WINO_MODES:
        raise ValueError(f"winograd mode must be one of {sorted(_WINO_MODES)}, got {mode!r}")
    prev = winograd_mode()
    cg_set_winograd(_WINO_MODES[mode])
    return prev


def winograd_mode():
    """The Winograd mode new PackedConvs get: "auto", "off" or "on"."""
    return {v: k for k, v in _WINO_MODES.items()}[cg_set_winograd(-2)]


def _set_wino_blocking(int vfloats=0, int mb=0):
    """Winograd blocking (target floats of a thread's V block, rows per block; 0 keeps a
    value): for tuning only, like _set_blocking."""
    cg_set_wino_blocking(vfloats, mb)


def default_threads():
    """Threads used when ``threads`` is 0 or None: all cores."""
    return cg_num_procs()


def fma_flops(long iters, int threads=1):
    """Run a tight loop of independent FMAs (12 ymm chains with AVX2) on ``threads`` threads;
    returns the flops done. Time it to measure the machine's peak."""
    if iters < 0 or threads < 1:
        raise ValueError(f"iters must be >= 0 and threads >= 1, got {iters}, {threads}")
    cdef double f
    with nogil:
        f = cg_fma_loop(iters, threads)
    return f


cdef int _threads(object threads) except -1:
    if threads is None:
        return 0
    t = int(threads)
    if t < 0 or t > 256:  # 256: the pool's size (csrc/conv_kernels.c POOL_MAX)
        raise ValueError(f"threads must be None, 0 (all cores) or 1..256, got {threads}")
    return t


cdef tuple _act(object activation, object alpha, object beta):
    if activation is None:
        activation = "none"
    if activation not in _ACTS:
        raise ValueError(f"activation must be one of {sorted(_ACTS)}, got {activation!r}")
    defaults = {"leaky_relu": (0.01, 0.0), "clip": (-math.inf, math.inf), "relu6": (0.0, 6.0),
                "hardsigmoid": (0.2, 0.5)}.get(activation, (0.0, 0.0))
    a = defaults[0] if alpha is None else float(alpha)
    b = defaults[1] if beta is None else float(beta)
    if activation == "relu6" and (alpha is not None or beta is not None):
        raise ValueError("relu6 takes no alpha/beta (use activation='clip')")
    if activation == "clip" and not a <= b:
        raise ValueError(f"clip needs min <= max, got min={a} max={b}")
    return _ACTS[activation], a, b


cdef object _f32(str name, object a, int ndim, bint writable=False):
    if not isinstance(a, np.ndarray):
        raise ValueError(f"{name} must be a numpy float32 array, got {type(a).__name__}")
    if a.dtype != np.float32 or a.ndim != ndim or not a.flags.c_contiguous:
        raise ValueError(
            f"{name} must be a {ndim}-D C-contiguous float32 array, got dtype={a.dtype} "
            f"ndim={a.ndim} shape={a.shape} contiguous={a.flags.c_contiguous}")
    if writable and not a.flags.writeable:
        raise ValueError(f"{name} must be writable")
    return a


cdef object _bias_copy(object bias, int M):
    """The kernel's own float32 copy of a (M,) bias, or None."""
    if bias is None:
        return None
    if not isinstance(bias, np.ndarray) or bias.shape != (M,):
        raise ValueError(f"bias must be a ({M},) numpy array, got "
                         f"{getattr(bias, 'shape', type(bias).__name__)}")
    return np.ascontiguousarray(bias, dtype=np.float32).copy()


cdef const float* _floats(object a):
    """The data of a float32 array, or NULL for None."""
    if a is None:
        return NULL
    return <const float*><uintptr_t>a.ctypes.data


cdef object _aligned_empty(size_t nfloats):
    # 64-byte aligned float32 storage: the packed panels are read with aligned loads.
    raw = np.empty(nfloats + 16, dtype=np.float32)
    cdef size_t off = ((64 - (<uintptr_t>raw.ctypes.data) % 64) % 64) // 4
    return raw[off:off + nfloats]


cdef void* _scratch_ptr(object owner, object scratch, size_t need, str where) except NULL:
    if scratch is not None:
        if not isinstance(scratch, np.ndarray) or not scratch.flags.c_contiguous \
                or not scratch.flags.writeable:
            raise ValueError(f"{where}: scratch must be a writable C-contiguous numpy array")
        if <size_t>scratch.nbytes < need:
            raise ValueError(f"{where}: scratch has {scratch.nbytes} bytes, needs {need} "
                             f"(see scratch_bytes)")
        return <void*><uintptr_t>scratch.ctypes.data
    buf = owner._scratch
    if buf is None or <size_t>buf.nbytes < need:
        buf = np.empty(max(need, 64), dtype=np.uint8)  # once, or when a bigger call comes
        owner._scratch = buf
    return <void*><uintptr_t>buf.ctypes.data


cdef enum:
    _CONV, _DENSE, _MAXPOOL


cdef class Bound:
    """One kernel call with its arrays checked once (``bind`` of PackedConv, PackedDense or
    MaxPool): calling it runs the kernel on whatever those arrays hold then, without the
    per-call checks of ``run`` (an executor step). It keeps the arrays alive."""

    cdef int kind
    cdef object owner, keep
    cdef const cg_conv_t *conv
    cdef const cg_dense_t *dense
    cdef const cg_pool_t *pool
    cdef const float *x
    cdef float *y
    cdef const float *res
    cdef void *scratch
    cdef size_t scratch_bytes
    cdef int n, h, w, oh, ow, t

    def __call__(self):
        cdef size_t need
        if self.kind == _CONV:
            need = cg_conv_scratch_bytes(self.conv, self.n, self.h, self.w, self.t)
        elif self.kind == _DENSE:
            need = cg_dense_scratch_bytes(self.dense, self.n, self.t)
        else:
            need = cg_maxpool_scratch_bytes(self.pool, self.n, self.h, self.w, self.ow, self.t)
        if need > self.scratch_bytes:  # the ISA changed since bind: bind again
            raise ValueError(f"scratch has {self.scratch_bytes} bytes, the kernel now needs "
                             f"{need}")
        with nogil:
            if self.kind == _CONV:
                cg_conv_run(self.conv, self.x, self.y, self.res, self.n, self.h, self.w,
                            self.scratch, self.t)
            elif self.kind == _DENSE:
                cg_dense_run(self.dense, self.x, self.y, self.res, self.n, self.scratch, self.t)
            else:
                cg_maxpool_run(self.pool, self.x, self.y, self.n, self.h, self.w, self.oh,
                               self.ow, self.scratch, self.t)


cdef Bound _bound(int kind, object owner, object x, object out, object residual, object scratch,
                  size_t need, int t, str where):
    cdef Bound b = Bound.__new__(Bound)
    b.kind = kind
    b.owner = owner
    b.scratch = _scratch_ptr(owner, scratch, need, where)
    buf = scratch if scratch is not None else owner._scratch
    b.scratch_bytes = buf.nbytes
    b.keep = (x, out, residual, buf)
    b.x = <const float*><uintptr_t>x.ctypes.data
    b.y = <float*><uintptr_t>out.ctypes.data
    b.res = NULL
    if residual is not None:
        b.res = <const float*><uintptr_t>residual.ctypes.data
    b.t = t
    return b


cdef _check_res_out(object residual, object out, object other, str where):
    """residual must be exactly out (in place) or not overlap it; inputs must not overlap."""
    if np.may_share_memory(other, out):
        raise ValueError(f"{where}: x overlaps out; the output must not alias the input")
    if residual is not None and residual.ctypes.data != out.ctypes.data \
            and np.may_share_memory(residual, out):
        raise ValueError(f"{where}: residual partly overlaps out; it must be out itself "
                         "(in place) or separate memory")


cdef class PackedConv:
    """A float32 NCHW 2-D convolution with its weights packed once, and a fused epilogue.

    PackedConv(w, bias=None, strides=(1, 1), pads=(0, 0, 0, 0), dilations=(1, 1), group=1,
               activation="none", alpha=None, beta=None, input_shape=None)

    w: (M, C/group, KH, KW) float32; bias: (M,) or None; pads = (top, left, bottom, right).
    ``input_shape``: the shape it will run on (a compiled graph's), so that only the weights
    of the path that shape takes are packed (a Winograd layer holds no im2col copy); other
    shapes then still run, on that path.
    ``run(x, out, residual=None, threads=None, scratch=None)`` computes
    ``out = act(conv(x, w) + bias + residual)``.

    >>> import numpy as np
    >>> w = np.ones((1, 1, 3, 3), np.float32)
    >>> conv = PackedConv(w, pads=(1, 1, 1, 1), activation="relu")
    >>> x = np.ones((1, 1, 3, 3), np.float32)
    >>> out = np.empty(conv.output_shape(x.shape), np.float32)
    >>> conv.run(x, out, threads=1)
    >>> out[0, 0].tolist()
    [[4.0, 6.0, 4.0], [6.0, 9.0, 6.0], [4.0, 6.0, 4.0]]
    """

    cdef cg_conv_t p
    cdef object _wpacked
    cdef object _bias
    cdef public object _scratch
    cdef readonly tuple weight_shape, strides, pads, dilations
    cdef readonly int group
    cdef readonly str activation

    def __init__(self, w, bias=None, strides=(1, 1), pads=(0, 0, 0, 0), dilations=(1, 1),
                 int group=1, activation="none", alpha=None, beta=None, input_shape=None):
        if not isinstance(w, np.ndarray) or w.ndim != 4:
            raise ValueError(f"w must be a 4-D (M, C/group, KH, KW) numpy array, got "
                             f"{getattr(w, 'shape', type(w).__name__)}")
        w = np.ascontiguousarray(w, dtype=np.float32)
        M, Cg, KH, KW = (int(v) for v in w.shape)
        strides, pads, dilations = tuple(strides), tuple(pads), tuple(dilations)
        if len(strides) != 2 or len(dilations) != 2 or len(pads) != 4:
            raise ValueError(f"strides and dilations need 2 values, pads 4 (top, left, bottom, "
                             f"right); got strides={strides} pads={pads} dilations={dilations}")
        strides = tuple(int(v) for v in strides)
        pads = tuple(int(v) for v in pads)
        dilations = tuple(int(v) for v in dilations)
        if min(strides + dilations) < 1 or min(pads) < 0:
            raise ValueError(f"strides {strides} and dilations {dilations} must be >= 1, "
                             f"pads {pads} >= 0")
        if max(strides + dilations + pads) > 1 << 20:
            raise ValueError(f"strides {strides}, pads {pads} or dilations {dilations} too large")
        if min(M, Cg, KH, KW) < 1 or group < 1 or M % group:
            raise ValueError(f"weight {w.shape} with group={group}: all dims must be >= 1 and "
                             f"M={M} divisible by group")
        if M * Cg * KH * KW * group > _INT_MAX // 2 or Cg * KH * KW > 1 << 24:
            raise ValueError(f"weight {w.shape} with group={group} is too large")
        self.p.C, self.p.M, self.p.KH, self.p.KW, self.p.group = Cg * group, M, KH, KW, group
        self.p.sh, self.p.sw = strides
        self.p.pt, self.p.pl, self.p.pb, self.p.pr = pads
        self.p.dh, self.p.dw = dilations
        self.p.act, self.p.alpha, self.p.beta = _act(activation, alpha, beta)
        cg_conv_init(&self.p)
        if input_shape is not None:  # the one input it will run on: pack one path's weights
            input_shape = tuple(int(v) for v in input_shape)
            if len(input_shape) != 4 or min(input_shape) < 1:
                raise ValueError(f"input_shape must be 4 positive ints (N, C, H, W), got "
                                 f"{input_shape}")
            if self.p.wino == 1 and cg_conv_uses_winograd(&self.p, input_shape[2],
                                                          input_shape[3]):
                self.p.wino = 2
        self._bias = _bias_copy(bias, M)
        self.p.bias = _floats(self._bias)
        self._wpacked = _aligned_empty(cg_conv_packed_floats(&self.p))
        cdef uintptr_t wsrc = w.ctypes.data, wdst = self._wpacked.ctypes.data
        with nogil:
            cg_conv_pack(&self.p, <const float*>wsrc, <float*>wdst)
        self.p.wpacked = <const float*>wdst
        self._scratch = None
        self.weight_shape = (M, Cg, KH, KW)
        self.strides, self.pads, self.dilations = strides, pads, dilations
        self.group = group
        self.activation = "none" if activation is None else activation

    @property
    def packed_bytes(self):
        """Bytes of the packed weights this object holds."""
        return self._wpacked.nbytes

    @property
    def winograd(self):
        """False, "auto" (Winograd weights packed, used for inputs where it is faster) or "on"
        (forced: used for every input)."""
        return (False, "auto", "on")[self.p.wino]

    def uses_winograd(self, input_shape):
        """True when ``run`` on this input shape takes the Winograd F(2x2, 3x3) path."""
        self.output_shape(input_shape)
        return bool(cg_conv_uses_winograd(&self.p, int(input_shape[2]), int(input_shape[3])))

    @property
    def depthwise(self):
        """True when the direct depthwise kernel runs (one input channel per group)."""
        return bool(self.p.depthwise)

    def output_shape(self, input_shape):
        """(N, M, OH, OW) for an (N, C, H, W) input; ValueError when the shapes do not fit."""
        if len(input_shape) != 4:
            raise ValueError(f"input must be 4-D (N, C, H, W), got shape {tuple(input_shape)}")
        n, c, h, w = (int(v) for v in input_shape)
        if c != self.p.C:
            raise ValueError(f"input {tuple(input_shape)} has {c} channels, weight "
                             f"{self.weight_shape} with group={self.group} needs {self.p.C}")
        if n < 1 or h < 1 or w < 1 or n * c * h * w > _INT_MAX * 4 or h > 1 << 24 or w > 1 << 24:
            raise ValueError(f"input shape {tuple(input_shape)} is empty or too large")
        hp = h + self.p.pt + self.p.pb - self.p.dh * (self.p.KH - 1)
        wp = w + self.p.pl + self.p.pr - self.p.dw * (self.p.KW - 1)
        if hp < 1 or wp < 1:
            raise ValueError(f"input {tuple(input_shape)} with pads {self.pads} is smaller than "
                             f"the dilated kernel {self.weight_shape[2:]} "
                             f"(dilations {self.dilations})")
        oh, ow = (hp - 1) // self.p.sh + 1, (wp - 1) // self.p.sw + 1
        if n * self.p.M * oh * ow > _INT_MAX * 4 or self.p.M * oh * ow > _INT_MAX:
            raise ValueError(f"output ({n}, {self.p.M}, {oh}, {ow}) is too large")
        return (n, self.p.M, oh, ow)

    def scratch_bytes(self, input_shape, threads=None):
        """Bytes of scratch ``run`` needs for this input shape and thread count."""
        n, _, h, w = input_shape
        self.output_shape(input_shape)
        return int(cg_conv_scratch_bytes(&self.p, n, h, w, _threads(threads)))

    def run(self, x, out, residual=None, threads=None, scratch=None):
        """out = act(conv(x) + bias + residual), written into ``out`` (N, M, OH, OW).

        x, out and residual are C-contiguous float32 NCHW. residual (same shape as out) may be
        ``out`` itself (in place); any other overlap is refused. threads: None or 0 = all
        cores; results are bit-identical for every thread count (the work split never changes
        an element's sequence of operations). scratch: optional writable buffer of at
        least ``scratch_bytes(x.shape, threads)`` bytes; without it the object's own buffer
        (allocated on first use) serves, so do not run one object from two threads at once.
        """
        self.bind(x, out, residual, threads, scratch)()

    def bind(self, x, out, residual=None, threads=None, scratch=None):
        """``run``'s checks once: a `Bound` call that runs this conv on these arrays."""
        _f32("x", x, 4)
        _f32("out", out, 4, writable=True)
        shape = self.output_shape(x.shape)
        if tuple(out.shape) != shape:
            raise ValueError(f"out has shape {tuple(out.shape)}, expected {shape} for input "
                             f"{tuple(x.shape)}, weight {self.weight_shape}, strides "
                             f"{self.strides}, pads {self.pads}, dilations {self.dilations}")
        if residual is not None:
            _f32("residual", residual, 4)
            if tuple(residual.shape) != shape:
                raise ValueError(f"residual has shape {tuple(residual.shape)}, expected {shape}")
        _check_res_out(residual, out, x, "PackedConv.run")
        cdef int t = _threads(threads)
        cdef int n = x.shape[0], h = x.shape[2], w = x.shape[3]
        cdef size_t need = cg_conv_scratch_bytes(&self.p, n, h, w, t)
        cdef Bound b = _bound(_CONV, self, x, out, residual, scratch, need, t, "PackedConv.run")
        b.conv = &self.p
        b.n, b.h, b.w = n, h, w
        return b


cdef class PackedDense:
    """A dense (fully connected) layer, ONNX Gemm with transB=1: y = act(x @ w.T + bias).

    PackedDense(w, bias=None, activation="none", alpha=None, beta=None, pack=True); w: (M, K)
    float32, bias: (M,) or None. ``run(x, out, residual=None, threads=None, scratch=None)``
    with x (B, K), out (B, M), residual (B, M) or out itself. ``pack=False`` keeps ``w`` as
    it is (no copy if it is C-contiguous float32) and streams its rows: the choice for small
    batches, where reading the weights is the whole cost.

    >>> import numpy as np
    >>> fc = PackedDense(np.array([[1, 2], [3, 4], [5, 6]], np.float32), np.ones(3, np.float32))
    >>> out = np.empty((1, 3), np.float32)
    >>> fc.run(np.array([[1, -1]], np.float32), out)
    >>> out.tolist()
    [[0.0, 0.0, 0.0]]
    """

    cdef cg_dense_t p
    cdef object _wpacked
    cdef object _w
    cdef object _bias
    cdef public object _scratch
    cdef readonly str activation

    def __init__(self, w, bias=None, activation="none", alpha=None, beta=None, pack=True):
        if not isinstance(w, np.ndarray) or w.ndim != 2 or min(w.shape) < 1:
            raise ValueError(f"w must be a non-empty 2-D (M, K) numpy array, got "
                             f"{getattr(w, 'shape', type(w).__name__)}")
        w = np.ascontiguousarray(w, dtype=np.float32)
        M, K = (int(v) for v in w.shape)
        if M * K > _INT_MAX // 2:
            raise ValueError(f"weight {w.shape} is too large")
        self.p.M, self.p.K = M, K
        self.p.act, self.p.alpha, self.p.beta = _act(activation, alpha, beta)
        self._bias = _bias_copy(bias, M)
        self.p.bias = _floats(self._bias)
        cdef uintptr_t wsrc = w.ctypes.data, wdst
        if pack:
            self._wpacked = _aligned_empty(cg_dense_packed_floats(&self.p))
            wdst = self._wpacked.ctypes.data
            with nogil:
                cg_dense_pack(&self.p, <const float*>wsrc, <float*>wdst)
            self.p.wpacked = <const float*>wdst
            self.p.w = NULL
        else:
            self._w = w
            self.p.wpacked = NULL
            self.p.w = <const float*>wsrc
        self._scratch = None
        self.activation = "none" if activation is None else activation

    @property
    def weight_shape(self):
        return (self.p.M, self.p.K)

    @property
    def packed(self):
        return self.p.wpacked != NULL

    def scratch_bytes(self, int batch, threads=None):
        """Bytes of scratch ``run`` needs for ``batch`` rows and this thread count."""
        if batch < 1:
            raise ValueError(f"batch must be >= 1, got {batch}")
        return int(cg_dense_scratch_bytes(&self.p, batch, _threads(threads)))

    def run(self, x, out, residual=None, threads=None, scratch=None):
        """out = act(x @ w.T + bias + residual); same conventions as PackedConv.run."""
        self.bind(x, out, residual, threads, scratch)()

    def bind(self, x, out, residual=None, threads=None, scratch=None):
        """``run``'s checks once: a `Bound` call that runs this layer on these arrays."""
        _f32("x", x, 2)
        _f32("out", out, 2, writable=True)
        if x.shape[1] != self.p.K or x.shape[0] < 1:
            raise ValueError(f"x has shape {tuple(x.shape)}, expected (B, {self.p.K}) for "
                             f"weight {self.weight_shape}")
        shape = (x.shape[0], self.p.M)
        if tuple(out.shape) != shape:
            raise ValueError(f"out has shape {tuple(out.shape)}, expected {shape}")
        if residual is not None:
            _f32("residual", residual, 2)
            if tuple(residual.shape) != shape:
                raise ValueError(f"residual has shape {tuple(residual.shape)}, expected {shape}")
        if x.shape[0] > _INT_MAX // max(self.p.K, self.p.M):
            raise ValueError(f"x {tuple(x.shape)} is too large")
        _check_res_out(residual, out, x, "PackedDense.run")
        cdef int t = _threads(threads)
        cdef int b = x.shape[0]
        cdef size_t need = cg_dense_scratch_bytes(&self.p, b, t)
        cdef Bound bd = _bound(_DENSE, self, x, out, residual, scratch, need, t, "PackedDense.run")
        bd.dense = &self.p
        bd.n = b
        return bd


def _init_winograd_from_env():
    import os

    mode = os.environ.get("CNNGRAPH_WINOGRAD", "").strip().lower()
    if mode in _WINO_MODES:
        set_winograd(mode)


_init_winograd_from_env()


cdef class MaxPool:
    """2-D max pooling over float32 NCHW (padding counts as -inf; NaN propagates).

    MaxPool(kernel, strides=(1, 1), pads=(0, 0), dilations=(1, 1)); pads are the top and left
    ones: the output shape, which ``run`` takes from ``out``, carries the end pads and ceil
    mode. ``run(x, out, threads=None, scratch=None)``.

    >>> import numpy as np
    >>> out = np.empty((1, 1, 2, 2), np.float32)
    >>> MaxPool((2, 2), (2, 2)).run(np.arange(16, dtype=np.float32).reshape(1, 1, 4, 4), out)
    >>> out.tolist()
    [[[[5.0, 7.0], [13.0, 15.0]]]]
    """

    cdef cg_pool_t q
    cdef public object _scratch

    def __init__(self, kernel, strides=(1, 1), pads=(0, 0), dilations=(1, 1)):
        vals = [tuple(int(v) for v in t) for t in (kernel, strides, pads, dilations)]
        if any(len(t) != 2 for t in vals):
            raise ValueError(f"kernel, strides, pads and dilations take 2 values each, got "
                             f"{kernel}, {strides}, {pads}, {dilations}")
        (kh, kw), (sh, sw), (pt, pl), (dh, dw) = vals
        if min(kh, kw, sh, sw, dh, dw) < 1 or min(pt, pl) < 0 or kh > 64 or kw > 32 \
                or max(sh, sw, dh, dw, pt, pl) > 1 << 16:
            raise ValueError(f"MaxPool: kernel {kernel} (at most 64 x 32), strides {strides}, "
                             f"dilations {dilations} must be positive, pads {pads} >= 0")
        self.q.kh, self.q.kw, self.q.sh, self.q.sw = kh, kw, sh, sw
        self.q.pt, self.q.pl, self.q.dh, self.q.dw = pt, pl, dh, dw
        self._scratch = None

    def _dims(self, x_shape, out_shape):
        if len(x_shape) != 4 or len(out_shape) != 4 or tuple(x_shape[:2]) != tuple(out_shape[:2]):
            raise ValueError(f"MaxPool: input {tuple(x_shape)} and output {tuple(out_shape)} must "
                             f"be 4-D with the same N and C")
        n, c, h, w = (int(v) for v in x_shape)
        oh, ow = int(out_shape[2]), int(out_shape[3])
        if min(n, c, h, w, oh, ow) < 1 or n * c > _INT_MAX or max(h, w, oh, ow) > 1 << 24:
            raise ValueError(f"MaxPool: input {tuple(x_shape)} or output {tuple(out_shape)} is "
                             f"empty or too large")
        return n * c, h, w, oh, ow

    def scratch_bytes(self, input_shape, output_shape, threads=None):
        """Bytes of scratch ``run`` needs for these shapes and thread count."""
        planes, h, w, _, ow = self._dims(input_shape, output_shape)
        return int(cg_maxpool_scratch_bytes(&self.q, planes, h, w, ow, _threads(threads)))

    def run(self, x, out, threads=None, scratch=None):
        """out = max pool of x; x and out C-contiguous float32 NCHW, not overlapping."""
        self.bind(x, out, threads, scratch)()

    def bind(self, x, out, threads=None, scratch=None):
        """``run``'s checks once: a `Bound` call that pools x into out."""
        _f32("x", x, 4)
        _f32("out", out, 4, writable=True)
        cdef int planes, h, w, oh, ow
        planes, h, w, oh, ow = self._dims(x.shape, out.shape)
        if np.may_share_memory(x, out):
            raise ValueError("MaxPool.run: x overlaps out")
        cdef int t = _threads(threads)
        cdef size_t need = cg_maxpool_scratch_bytes(&self.q, planes, h, w, ow, t)
        cdef Bound b = _bound(_MAXPOOL, self, x, out, None, scratch, need, t, "MaxPool.run")
        b.pool = &self.q
        b.n, b.h, b.w, b.oh, b.ow = planes, h, w, oh, ow
        return b
