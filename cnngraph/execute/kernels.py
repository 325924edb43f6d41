"""Kernels: for one node, a zero-argument callable that computes its outputs into arena views.

``build_step(ctx, call, ins, outs)`` picks the kernel: a dedicated one that writes through
``out=`` into preallocated buffers (so a step allocates nothing of its own; numpy's ufuncs may
still take a small iterator buffer when they broadcast), or, for an op without one, the op's
own numpy reference whose result is copied into the output views (``ctx.kinds`` says
'reference'). Scratch space a kernel needs (padded inputs, im2col columns, temporaries, the
native kernels' scratch) comes from the shared workspace (``Workspace``), sized once for the
hungriest step.

Outputs may share memory with inputs as the planner decides (cnngraph.passes.aliasing):
element-wise kernels are correct when ``out`` is one of their inputs, a view or a Concat
whose data already sits in place does nothing, and a FusedConv may write over its residual.

Convolutions and dense layers go through ``conv_kernel`` / ``dense_kernel``: the compiled
``PackedConv`` / ``PackedDense`` (cnngraph._native.conv) when built and the case fits, else
numpy im2col + BLAS (``CNNGRAPH_NUMPY_KERNELS=1`` forces numpy). That is the one place to
change when the native kernel's interface moves.
"""

from __future__ import annotations

import math
import os
from typing import Callable, Optional, Sequence

import numpy as np
from numpy.lib.stride_tricks import as_strided

from .. import dtypes
from ..errors import UnsupportedOpError
from ..ops.base import Call, OpDef, normalize_axis

Kernel = Callable[[], None]

# Set to 1 to run the numpy kernels even when the native ones are built (tests compare both).
NUMPY_ONLY_ENV = "CNNGRAPH_NUMPY_KERNELS"


# -- workspace ------------------------------------------------------------------------------
class Slot:
    """A scratch array of one step; ``a`` is bound when the workspace is allocated."""

    __slots__ = ("shape", "dtype", "offset", "a")

    def __init__(self, shape, dtype, offset):
        self.shape, self.dtype, self.offset, self.a = tuple(shape), np.dtype(dtype), offset, None


class Workspace:
    """Scratch memory shared by every step: each step's slots start at offset 0 (steps run one
    at a time), so the workspace is as large as the hungriest step."""

    def __init__(self):
        self.slots: list[Slot] = []
        self.size = 0
        self._top = 0
        self.buffer: Optional[np.ndarray] = None

    def begin_step(self) -> None:
        self._top = 0

    def request(self, shape, dtype=np.float32) -> Slot:
        dtype = np.dtype(dtype)
        slot = Slot(shape, dtype, self._top)
        self._top += -(-math.prod(slot.shape) * dtype.itemsize // 64) * 64
        self.size = max(self.size, self._top)
        self.slots.append(slot)
        return slot

    def allocate(self) -> None:
        self.buffer = np.zeros(self.size, np.uint8)
        for s in self.slots:
            s.a = np.ndarray(s.shape, s.dtype, buffer=self.buffer, offset=s.offset)


class Context:
    """What kernels share while a graph compiles."""

    def __init__(self, threads: int):
        self.threads = threads
        self.workspace = Workspace()
        self.kinds: dict[str, str] = {}  # node -> kernel used ('numpy', 'native', 'reference')
        self.constants: set[str] = set()  # tensor names whose values are known now
        self.kind = "numpy"


def _numpy_only() -> bool:
    return os.environ.get(NUMPY_ONLY_ENV, "") not in ("", "0")


def _native_conv_module():
    """cnngraph._native.conv, or None when it is not built (or numpy is asked for)."""
    if _numpy_only():
        return None
    try:
        from .._native import native

        return native("conv")
    except ImportError:
        return None


# -- activations in place -------------------------------------------------------------------
def activation_kernel(name: str, params: Sequence[float], x: np.ndarray, out: np.ndarray,
                      tmp: Optional[Slot]) -> Optional[Kernel]:
    """out = act(x) with ufuncs writing into ``out`` (``x`` may be ``out``); ``tmp`` is scratch
    of out's shape for LeakyRelu and HardSwish. None for the identity."""
    if name == "":
        if x is out:
            return None
        return lambda: np.copyto(out, x)
    if name == "Relu":
        return lambda: np.maximum(x, 0, out=out)
    if name == "Clip":
        lo, hi = params
        return lambda: np.clip(x, lo, hi, out=out)
    if name == "Tanh":
        return lambda: np.tanh(x, out=out)
    if name == "Sigmoid":
        def sigmoid():
            np.negative(x, out=out)
            np.exp(out, out=out)
            np.add(out, 1, out=out)
            np.reciprocal(out, out=out)
        return sigmoid
    if name == "LeakyRelu":
        (alpha,) = params
        pick = np.maximum if alpha <= 1 else np.minimum

        def leaky():
            t = tmp.a
            np.multiply(x, alpha, out=t)
            pick(x, t, out=out)
        return leaky
    if name == "HardSigmoid":
        alpha, beta = params

        def hard_sigmoid():
            np.multiply(x, alpha, out=out)
            np.add(out, beta, out=out)
            np.clip(out, 0, 1, out=out)
        return hard_sigmoid
    if name == "HardSwish":
        def hard_swish():
            t = tmp.a
            np.multiply(x, 1 / 6, out=t)
            np.add(t, 0.5, out=t)
            np.clip(t, 0, 1, out=t)
            np.multiply(x, t, out=out)
        return hard_swish
    raise ValueError(f"no activation kernel for '{name}'")


NEEDS_TMP = ("LeakyRelu", "HardSwish")
TILE_BYTES = 4 << 20  # im2col columns per GEMM in the numpy conv


def _chain(*fns) -> Kernel:
    fns = [f for f in fns if f is not None]
    if len(fns) == 1:
        return fns[0]

    def run():
        for f in fns:
            f()
    return run


# -- convolution ----------------------------------------------------------------------------
def conv_kernel(ctx: Context, x: np.ndarray, w: np.ndarray, b: Optional[np.ndarray],
                out: np.ndarray, residual: Optional[np.ndarray], strides, pads, dilations,
                group: int, activation: str = "", params: Sequence[float] = ()) -> Kernel:
    """out = act(conv(x, w) + b + residual): the native PackedConv when built, else numpy.
    ``out`` may be ``residual`` (computed in place)."""
    mod = _native_conv_module()
    if mod is not None and hasattr(mod, "PackedConv") and x.ndim == 4 \
            and out.dtype == np.float32 and not np.may_share_memory(x, out):
        name, alpha, beta = _NATIVE_ACTIVATIONS.get(activation, ("none", None, None))
        if activation == "LeakyRelu":
            alpha = params[0]
        elif activation in ("Clip", "HardSigmoid"):
            alpha, beta = (float(np.clip(p, -_FLT_MAX, _FLT_MAX)) for p in params)
        try:
            packed = mod.PackedConv(w, b, tuple(strides), tuple(pads), tuple(dilations),
                                    int(group), name, alpha, beta, input_shape=x.shape)
            nbytes = packed.scratch_bytes(x.shape, ctx.threads)
        except (TypeError, ValueError):  # a case (or an interface) the native kernel lacks
            packed = None
        if packed is not None:
            ctx.kind = "native"
            return _chain(_native_run(packed, x, out, residual, ctx, nbytes),
                          None if activation in _NATIVE_ACTIVATIONS else
                          activation_kernel(activation, params, out, out, None))
    ctx.kind = "numpy"
    return conv_numpy(ctx.workspace, x, w, b, out, residual, strides, pads, dilations, group,
                      activation, params)


_FLT_MAX = float(np.finfo(np.float32).max)
# FusedConv activation -> the native epilogue's (name, alpha, beta); others run after it
_NATIVE_ACTIVATIONS = {"": ("none", None, None), "Relu": ("relu", None, None),
                       "LeakyRelu": ("leaky_relu", None, None), "Clip": ("clip", None, None),
                       "Sigmoid": ("sigmoid", None, None),
                       "HardSigmoid": ("hardsigmoid", None, None),
                       "HardSwish": ("hardswish", None, None)}


def _native_run(packed, x, out, residual, ctx: Context, nbytes: int) -> Kernel:
    """packed.run with scratch from the shared workspace (so it allocates nothing), its
    arguments checked once: bound at the first call (the workspace exists only once every
    step is built), the bound call (no per-call checks in Python) from then on."""
    scratch = ctx.workspace.request((max(nbytes, 1),), np.uint8)
    threads = ctx.threads
    args = (x, out) if residual is _NO_RESIDUAL else (x, out, residual)
    bound = None

    def run():
        nonlocal bound
        if bound is None:
            bound = packed.bind(*args, threads=threads, scratch=scratch.a)
        bound()
    return run


_NO_RESIDUAL = object()  # MaxPool.bind takes none


def conv_numpy(ws: Workspace, x, w, b, out, residual, strides, pads, dilations, group,
               activation="", params=()) -> Kernel:
    """2-D convolution by im2col into workspace columns and one matmul per image and tile of
    output rows, batched over the groups (depthwise too: (1 x kh*kw) @ (kh*kw x pixels) per
    channel beats kh*kw strided multiply-adds); 1x1 stride-1 without im2col. Bias, residual
    and activation run in place on the output afterwards."""
    n, c, h, wd = x.shape
    m, cg, kh, kw = w.shape
    oh, ow = out.shape[2:]
    sh, sw = strides
    dh, dw = dilations
    pt, pl, pb, pr = pads
    g = group
    mg = m // g
    k = cg * kh * kw
    dtype = out.dtype
    alias = residual is not None and np.may_share_memory(out, residual)
    act_tmp = ws.request(out.shape, dtype) if activation in NEEDS_TMP else None
    padded = pt or pl or pb or pr
    xp = ws.request((c, h + pt + pb, wd + pl + pr), dtype) if padded else None
    pointwise = kh == kw == 1 and not padded and sh == sw == 1
    # Output rows per GEMM: the im2col columns (and the in-place temporary) stay within
    # TILE_BYTES however large the layer (VGG's 3x3 convs would need 115 MB at once).
    per_row = (g * k * ow if not pointwise else 0) + (m * ow if alias else 0)
    rows = oh if not per_row else max(1, min(oh, TILE_BYTES // (per_row * dtype.itemsize)))
    tiles = [(r, min(oh, r + rows)) for r in range(0, oh, rows)]
    cols = None if pointwise else ws.request((g, k, rows * ow), dtype)
    tmp = ws.request((g, mg, rows * ow), dtype) if alias else None
    wpack = np.ascontiguousarray(w.reshape(g, mg, k), dtype=dtype)
    bias = None if b is None else np.ascontiguousarray(b, dtype=dtype).reshape(m, 1, 1)

    def source(i: int) -> np.ndarray:
        """The (padded) input image i."""
        if not padded:
            return x[i]
        p = xp.a
        if pt:
            p[:, :pt] = 0
        if pb:
            p[:, pt + h:] = 0
        if pl:
            p[:, pt:pt + h, :pl] = 0
        if pr:
            p[:, pt:pt + h, pl + wd:] = 0
        np.copyto(p[:, pt:pt + h, pl:pl + wd], x[i])
        return p

    def image(i: int) -> None:
        src = source(i)
        dest = out[i].reshape(g, mg, oh * ow)
        flat = src.reshape(g, k, h * wd) if pointwise else None
        s0, s1, s2 = src.strides
        for r0, r1 in tiles:
            j0, j1 = r0 * ow, r1 * ow
            if pointwise:
                col = flat[:, :, j0:j1]
            else:
                col = cols.a[:, :, :j1 - j0]
                patches = as_strided(src[:, r0 * sh:], shape=(c, kh, kw, r1 - r0, ow),
                                     strides=(s0, s1 * dh, s2 * dw, s1 * sh, s2 * sw),
                                     writeable=False)
                np.copyto(col.reshape(c, kh, kw, r1 - r0, ow), patches)
            if alias:  # the output overwrites the residual: GEMM aside, then add
                t = tmp.a[:, :, :j1 - j0]
                np.matmul(wpack, col, out=t)
                r = residual[i].reshape(g, mg, oh * ow)[:, :, j0:j1]
                np.add(t, r, out=dest[:, :, j0:j1])
            else:
                np.matmul(wpack, col, out=dest[:, :, j0:j1])

    def conv():
        for i in range(n):
            image(i)

    epilogue = []
    if bias is not None:
        epilogue.append(lambda: np.add(out, bias, out=out))
    if residual is not None and not alias:
        epilogue.append(lambda: np.add(out, residual, out=out))
    epilogue.append(activation_kernel(activation, params, out, out, act_tmp))
    return _chain(conv, *epilogue)


# -- dense ----------------------------------------------------------------------------------
def dense_kernel(ctx: Context, a: np.ndarray, w: np.ndarray, c: Optional[np.ndarray],
                 out: np.ndarray) -> Kernel:
    """out = a @ w.T (+ c, broadcast): ``w`` (N, K), the layout Gemm's transB=1 weights
    already have, and c prepacked constants (alpha and beta already applied)."""
    mod = _native_conv_module()
    row = c is None or (c.size == out.shape[1] and c.shape[-1] == out.shape[1])
    if mod is not None and hasattr(mod, "PackedDense") and a.ndim == 2 and row \
            and a.flags.c_contiguous and out.dtype == np.float32:
        try:
            packed = mod.PackedDense(np.ascontiguousarray(w, dtype=np.float32),
                                     None if c is None else
                                     np.ascontiguousarray(c.reshape(-1), dtype=np.float32))
            nbytes = packed.scratch_bytes(a.shape[0], ctx.threads)
        except (TypeError, ValueError):
            packed = None
        if packed is not None:
            ctx.kind = "native"
            return _native_run(packed, a, out, None, ctx, nbytes)
    ctx.kind = "numpy"
    b = w.T
    if c is None:
        return lambda: np.matmul(a, b, out=out)

    def dense():
        np.matmul(a, b, out=out)
        np.add(out, c, out=out)
    return dense


# -- the op table ---------------------------------------------------------------------------
BUILDERS: dict[str, Callable] = {}


def kernel(*op_types):
    def deco(fn):
        for t in op_types:
            BUILDERS[t] = fn
        return fn
    return deco


def build_step(ctx: Context, call: Call, ins: list, outs: list) -> Optional[Kernel]:
    """The kernel of one node (None: nothing to do, e.g. a view already in place)."""
    ctx.workspace.begin_step()
    ctx.kind = "numpy"
    fn = None
    builder = BUILDERS.get(call.node.op_type)
    if builder is not None and call.node.domain in ("", "ai.onnx"):
        fn = builder(ctx, call, ins, outs)
    if fn is NotImplemented or builder is None:
        ctx.kind = "reference"
        fn = reference_kernel(call, ins, outs)
    ctx.kinds[call.node.name] = ctx.kind
    return fn


def reference_kernel(call: Call, ins: list, outs: list) -> Kernel:
    """The op's numpy reference, its results copied into the output views (allocates: the
    path for ops without a dedicated kernel)."""
    op = call.op
    if type(op).evaluate is OpDef.evaluate:
        raise UnsupportedOpError(call.node, "has no kernel and no numpy reference to run it")
    call.values = list(ins)
    pairs = [(i, o) for i, o in enumerate(outs) if o is not None]

    def run():
        results = op.evaluate(call)
        for i, o in pairs:
            np.copyto(o, results[i], casting="unsafe")
    return run


def _is_float(a) -> bool:
    return a is not None and a.dtype.kind == "f"


def _float_op(outs) -> bool:
    return len(outs) == 1 and outs[0] is not None and outs[0].dtype.kind == "f"


@kernel("Conv", "FusedConv")
def _conv(ctx, call, ins, outs):
    x, w = ins[0], ins[1]
    if x.ndim != 4 or not _float_op(outs) or len(outs) != 1:
        return NotImplemented
    b = ins[2] if len(ins) > 2 else None
    residual = ins[3] if len(ins) > 3 else None
    win = call.op.window(call)
    act, params = ("", ())
    if call.node.op_type == "FusedConv":
        act, params = call.op.activation(call)
    return conv_kernel(ctx, x, w, b, outs[0], residual, win.strides, win.pads, win.dilations,
                       int(call.attr("group")), act, params)


@kernel("Gemm")
def _gemm(ctx, call, ins, outs):
    a, b = ins[0], ins[1]
    c = ins[2] if len(ins) > 2 else None
    if not _float_op(outs):
        return NotImplemented
    out = outs[0]
    alpha, beta = float(call.attr("alpha")), float(call.attr("beta"))
    a = a.T if call.attr("transA") else a
    if call.node.inputs[1] in ctx.constants:
        w = b if call.attr("transB") else b.T  # (N, K): no copy of a transB=1 weight
        if alpha != 1:
            w = w * alpha
        if c is not None and call.node.inputs[2] not in ctx.constants:  # C at run time
            if beta != 1:
                return NotImplemented
            b = np.ascontiguousarray(w.T, dtype=out.dtype)

            def gemm():
                np.matmul(a, b, out=out)
                np.add(out, c, out=out)
            return gemm
        if c is not None:
            c = np.ascontiguousarray(c * beta if beta != 1 else c, dtype=out.dtype)
        return dense_kernel(ctx, a, w, c, out)
    b = b.T if call.attr("transB") else b
    steps = [lambda: np.matmul(a, b, out=out)]
    if alpha != 1:
        steps.append(lambda: np.multiply(out, alpha, out=out))
    if c is not None:
        if beta != 1:
            return NotImplemented
        steps.append(lambda: np.add(out, c, out=out))
    return _chain(*steps)


@kernel("MatMul")
def _matmul(ctx, call, ins, outs):
    a, b = ins
    out = outs[0]
    if not _float_op(outs) or a.dtype != out.dtype or b.dtype != out.dtype:
        return NotImplemented
    return lambda: np.matmul(a, b, out=out)


_UNARY = {"Relu": "Relu", "Sigmoid": "Sigmoid", "Tanh": "Tanh", "LeakyRelu": "LeakyRelu",
          "HardSigmoid": "HardSigmoid", "HardSwish": "HardSwish", "Clip": "Clip"}
_UFUNCS = {"Exp": np.exp, "Log": np.log, "Sqrt": np.sqrt, "Neg": np.negative, "Abs": np.abs,
           "Reciprocal": np.reciprocal}


@kernel(*_UNARY)
def _activation(ctx, call, ins, outs):
    if not _float_op(outs) or not _is_float(ins[0]):
        return NotImplemented
    name, params = call.node.op_type, ()
    if name == "LeakyRelu":
        params = (float(call.attr("alpha")),)
    elif name == "HardSigmoid":
        params = (float(call.attr("alpha")), float(call.attr("beta")))
    elif name == "Clip":
        if call.opset < 11:
            params = (float(call.attr("min")), float(call.attr("max")))
        else:
            bounds = []
            for i, default in ((1, -np.inf), (2, np.inf)):
                if len(ins) > i and ins[i] is not None:
                    if call.node.inputs[i] not in ctx.constants:
                        return NotImplemented  # bounds computed at run time
                    bounds.append(float(np.asarray(ins[i]).reshape(())))
                else:
                    bounds.append(default)
            params = tuple(bounds)
    out = outs[0]
    tmp = ctx.workspace.request(out.shape, out.dtype) if name in NEEDS_TMP else None
    return activation_kernel(name, params, ins[0], out, tmp)


@kernel(*_UFUNCS)
def _unary(ctx, call, ins, outs):
    if not _float_op(outs):
        return NotImplemented
    fn, x, out = _UFUNCS[call.node.op_type], ins[0], outs[0]
    return lambda: fn(x, out=out)


_BINARY = {"Add": np.add, "Sub": np.subtract, "Mul": np.multiply, "Div": np.divide,
           "Pow": np.power, "Max": np.maximum, "Min": np.minimum, "Sum": np.add,
           "Mean": np.add}
_COMMUTATIVE = ("Add", "Mul", "Max", "Min", "Sum", "Mean")


@kernel(*_BINARY)
def _binary(ctx, call, ins, outs):
    op_type = call.node.op_type
    out = outs[0]
    if not _float_op(outs) or not all(_is_float(v) for v in ins):
        return NotImplemented
    ins = [v if v.dtype == out.dtype else v.astype(out.dtype) for v in ins]
    fn = _BINARY[op_type]
    if len(ins) == 1:
        first = activation_kernel("", (), ins[0], out, None)
        rest = []
    else:
        if op_type in _COMMUTATIVE:
            # An input that shares the output's memory (computed in place) goes first, so the
            # later inputs are not overwritten before they are read.
            ins = sorted(ins, key=lambda v: not np.may_share_memory(v, out))
        a, b = ins[0], ins[1]

        def first():
            fn(a, b, out=out)
        rest = [(lambda v=v: fn(out, v, out=out)) for v in ins[2:]]
    if op_type == "Mean":
        scale = 1.0 / len(ins)
        rest.append(lambda: np.multiply(out, scale, out=out))
    return _chain(first, *rest)


@kernel("BatchNormalization")
def _batchnorm(ctx, call, ins, outs):
    if len(outs) != 1 or call.op._training(call) or not _float_op(outs):
        return NotImplemented
    x, out = ins[0], outs[0]
    scale, b, mean, var = (np.asarray(v, np.float64) for v in ins[1:5])
    s = scale / np.sqrt(var + float(call.attr("epsilon")))
    t = b - mean * s
    shape = s.shape + (1,) * (x.ndim - 1 - s.ndim)
    s, t = s.reshape(shape).astype(out.dtype), t.reshape(shape).astype(out.dtype)

    def bn():
        np.multiply(x, s, out=out)
        np.add(out, t, out=out)
    return bn


def _pool_window(call):
    from ..ops.pool import _window

    return _window(call)


def _native_max_pool(ctx: Context, x: np.ndarray, out: np.ndarray, win) -> Optional[Kernel]:
    """The native MaxPool (one pass per plane, no padded copy) when built and float32."""
    mod = _native_conv_module()
    if mod is None or not hasattr(mod, "MaxPool") or x.dtype != np.float32 \
            or out.dtype != np.float32 or np.may_share_memory(x, out):
        return None
    try:
        pool = mod.MaxPool(win.kernel, win.strides, win.pads_begin, win.dilations)
        nbytes = pool.scratch_bytes(x.shape, out.shape, ctx.threads)
    except (TypeError, ValueError):
        return None
    ctx.kind = "native"
    return _native_run(pool, x, out, _NO_RESIDUAL, ctx, nbytes)


@kernel("MaxPool", "AveragePool")
def _pool(ctx, call, ins, outs):
    x = ins[0]
    if x.ndim != 4 or len([o for o in outs if o is not None]) != 1 or outs[0] is None \
            or not _float_op(outs[:1]):
        return NotImplemented
    out = outs[0]
    win = _pool_window(call)
    n, c, h, wd = x.shape
    oh, ow = win.out
    sh, sw = win.strides
    dh, dw = win.dilations
    kh, kw = win.kernel
    pt, pl = win.pads_begin
    # the padded extent every window reads (ceil_mode may reach past the end padding)
    hp = max(h + pt + win.pads_end[0], (oh - 1) * sh + dh * (kh - 1) + 1)
    wp = max(wd + pl + win.pads_end[1], (ow - 1) * sw + dw * (kw - 1) + 1)
    is_max = call.node.op_type == "MaxPool"
    if is_max:
        native = _native_max_pool(ctx, x, out, win)
        if native is not None:
            return native
    fill = -np.inf if is_max else 0.0
    padded = (hp, wp) != (h, wd) or pt or pl
    xp = ctx.workspace.request((n, c, hp, wp), x.dtype) if padded else None

    def taps(src):
        for a in range(kh):
            for bb in range(kw):
                yield src[:, :, a * dh:a * dh + sh * (oh - 1) + 1:sh,
                          bb * dw:bb * dw + sw * (ow - 1) + 1:sw]

    divisor = None
    if not is_max:
        # how many elements each window averages: the reference's rule, computed once
        counted = np.zeros((hp, wp))
        include = bool(call.attr("count_include_pad"))
        if include:
            counted[:h + pt + win.pads_end[0], :wd + pl + win.pads_end[1]] = 1
        else:
            counted[pt:pt + h, pl:pl + wd] = 1
        divisor = sum(t for t in taps(counted[None, None]))[0, 0].astype(out.dtype)

    combine = np.maximum if is_max else np.add
    # Separable: reduce along W into rows (kw taps), then along H (kh taps): kh + kw passes
    # instead of kh * kw.
    rows = ctx.workspace.request((n, c, hp, ow), x.dtype) if kw > 1 else None

    def pool():
        src = x
        if padded:  # fill only the border: the inside is the input's copy
            p = xp.a
            p[:, :, :pt] = fill
            p[:, :, pt + h:] = fill
            p[:, :, pt:pt + h, :pl] = fill
            p[:, :, pt:pt + h, pl + wd:] = fill
            np.copyto(p[:, :, pt:pt + h, pl:pl + wd], x)
            src = p
        if rows is None:
            t = src[:, :, :, :sw * (ow - 1) + 1:sw]
        else:
            t = rows.a
            for bb in range(kw):
                view = src[:, :, :, bb * dw:bb * dw + sw * (ow - 1) + 1:sw]
                if bb == 0:
                    np.copyto(t, view)
                else:
                    combine(t, view, out=t)
        for a in range(kh):
            view = t[:, :, a * dh:a * dh + sh * (oh - 1) + 1:sh]
            if a == 0:
                np.copyto(out, view)
            else:
                combine(out, view, out=out)
        if divisor is not None:
            np.divide(out, divisor, out=out)
    return pool


@kernel("GlobalAveragePool", "GlobalMaxPool")
def _global_pool(ctx, call, ins, outs):
    x, out = ins[0], outs[0]
    if not _float_op(outs):
        return NotImplemented
    flat = x.reshape(x.shape[0], x.shape[1], -1)
    dest = out.reshape(x.shape[0], x.shape[1])
    if call.node.op_type == "GlobalMaxPool":
        return lambda: np.max(flat, axis=2, out=dest)
    if flat.dtype.kind != "f" or flat.shape[2] == 0:
        return lambda: np.mean(flat, axis=2, out=dest)
    # each plane's sum as a matrix-vector product: one BLAS call, where numpy's mean reduces
    # plane by plane (1280 planes of 7 x 7: 17 us against 73)
    ones = np.ones((flat.shape[2], 1), flat.dtype)
    column = dest.reshape(dest.shape + (1,))
    scale = flat.dtype.type(1 / flat.shape[2])

    def global_average():
        np.matmul(flat, ones, out=column)
        np.multiply(column, scale, out=column)
    return global_average


@kernel("LRN")
def _lrn(ctx, call, ins, outs):
    x, out = ins[0], outs[0]
    if not _float_op(outs) or x.ndim < 2:
        return NotImplemented
    size = int(call.attr("size"))
    below, above = (size - 1) // 2, size // 2
    alpha, beta, bias = (float(call.attr(a)) for a in ("alpha", "beta", "bias"))
    c = x.shape[1]
    sq = ctx.workspace.request(x.shape, x.dtype)
    acc = ctx.workspace.request(x.shape, x.dtype)
    offsets = [(d, max(0, -d), min(c, c - d)) for d in range(-below, above + 1)
               if max(0, -d) < min(c, c - d)]

    def lrn():
        s, a = sq.a, acc.a
        np.multiply(x, x, out=s)
        a.fill(0)
        for d, lo, hi in offsets:
            np.add(a[:, lo:hi], s[:, lo + d:hi + d], out=a[:, lo:hi])
        np.multiply(a, alpha / size, out=a)
        np.add(a, bias, out=a)
        np.power(a, beta, out=a)
        np.divide(x, a, out=out)
    return lrn


@kernel("Softmax", "LogSoftmax")
def _softmax(ctx, call, ins, outs):
    x, out = ins[0], outs[0]
    if not _float_op(outs):
        return NotImplemented
    op = call.op
    if call.opset < 13:
        span = op.span(call)
        x2, o2 = x.reshape(-1, span), out.reshape(-1, span)
        axis = 1
    else:
        axis = op.axis(call)
        x2, o2 = x, out
    red_shape = list(x2.shape)
    red_shape[axis] = 1
    red = ctx.workspace.request(red_shape, x.dtype)
    log = call.node.op_type == "LogSoftmax"
    tmp = ctx.workspace.request(x2.shape, x.dtype) if log else None

    def softmax():
        r = red.a
        np.max(x2, axis=axis, keepdims=True, out=r)
        np.subtract(x2, r, out=o2)
        if log:
            t = tmp.a
            np.exp(o2, out=t)
            np.sum(t, axis=axis, keepdims=True, out=r)
            np.log(r, out=r)
            np.subtract(o2, r, out=o2)
            return
        np.exp(o2, out=o2)
        np.sum(o2, axis=axis, keepdims=True, out=r)
        np.divide(o2, r, out=o2)
    return softmax


_REDUCE = {"ReduceMean": np.mean, "ReduceSum": np.sum, "ReduceMax": np.max, "ReduceMin": np.min}


@kernel(*_REDUCE)
def _reduce(ctx, call, ins, outs):
    x, out = ins[0], outs[0]
    if not _float_op(outs):
        return NotImplemented
    axes = call.op.axes(call)
    if axes is None:
        return activation_kernel("", (), x, out, None)
    fn = _REDUCE[call.node.op_type]
    keep = bool(call.attr("keepdims"))
    return lambda: fn(x, axis=axes, keepdims=keep, out=out)


@kernel("Concat")
def _concat(ctx, call, ins, outs):
    out = outs[0]
    axis = normalize_axis(call, int(call.attr("axis")), out.ndim)
    copies = []
    at = 0
    for v in ins:
        index = (slice(None),) * axis + (slice(at, at + v.shape[axis]),)
        dest = out[index]
        at += v.shape[axis]
        if _same_memory(dest, v):
            continue  # the producer wrote straight into its slice of the output
        copies.append((dest, v))
    if not copies:
        return None

    def concat():
        for dest, v in copies:
            np.copyto(dest, v)
    return concat


def _same_memory(a: np.ndarray, b: np.ndarray) -> bool:
    """Whether b already is a's elements in a's layout (a view the planner placed there)."""
    return (a.shape == b.shape and a.dtype == b.dtype and a.flags.c_contiguous
            and b.flags.c_contiguous and a.size > 0
            and a.__array_interface__["data"][0] == b.__array_interface__["data"][0])


@kernel("Reshape", "Flatten", "Squeeze", "Unsqueeze", "Identity", "Dropout")
def _view(ctx, call, ins, outs):
    x, out = ins[0], outs[0]
    if any(o is not None for o in outs[1:]):
        return NotImplemented  # Dropout's mask
    if call.node.op_type == "Dropout" and call.opset >= 12 and len(ins) > 2 \
            and ins[2] is not None and bool(np.asarray(ins[2]).any()):
        return NotImplemented
    src = x.reshape(out.shape)
    if _same_memory(out, src):
        return None  # a view in place: nothing to move
    return lambda: np.copyto(out, src)


@kernel("Transpose")
def _transpose(ctx, call, ins, outs):
    x, out = ins[0], outs[0]
    perm = call.node.attrs.get("perm")
    src = x.transpose(tuple(perm)) if perm is not None else x.T
    return lambda: np.copyto(out, src)


@kernel("Gather")
def _gather(ctx, call, ins, outs):
    x, out = ins[0], outs[0]
    if call.node.inputs[1] not in ctx.constants:
        return NotImplemented
    axis = normalize_axis(call, int(call.attr("axis")), x.ndim)
    idx = call.op.indices(call, axis)
    return lambda: np.take(x, idx, axis=axis, out=out, mode="clip")


@kernel("Cast")
def _cast(ctx, call, ins, outs):
    x, out = ins[0], outs[0]
    return lambda: np.copyto(out, x, casting="unsafe")


@kernel("Pad")
def _pad(ctx, call, ins, outs):
    x, out = ins[0], outs[0]
    op = call.op
    from ..ops.shape import _text

    widths = op.widths(call)
    if _text(call, "mode") != "constant" or any(b < 0 or e < 0 for b, e in widths):
        return NotImplemented
    if call.opset >= 11:
        value = ins[2] if len(ins) > 2 and ins[2] is not None else 0
    else:
        value = call.attr("value")
    value = np.asarray(value).item()
    inner = tuple(slice(b, b + d) for (b, _), d in zip(widths, x.shape))
    dest = out[inner]

    def pad():
        out.fill(value)
        np.copyto(dest, x)
    return pad


@kernel("Slice")
def _slice(ctx, call, ins, outs):
    x, out = ins[0], outs[0]
    src = x[tuple(call.op.slices(call))]
    return lambda: np.copyto(out, src)


def dtype_of(t) -> np.dtype:
    return dtypes.numpy_dtype(t.dtype)
