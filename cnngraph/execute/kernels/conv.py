"""Convolution kernels: the native ``PackedConv`` (cnngraph._native.conv) when built and the
case fits, else numpy im2col + BLAS in row tiles; ConvTranspose as GEMM + col2im."""

from __future__ import annotations

import math
from typing import Optional, Sequence

import numpy as np
from numpy.lib.stride_tricks import as_strided

from .activation import NEEDS_TMP, activation_kernel
from .base import (
    STRIDED_BUFSIZE,
    Context,
    Kernel,
    Workspace,
    chain,
    float_op,
    is_float,
    kernel,
    native_conv_module,
    native_run,
)

TILE_BYTES = 4 << 20  # im2col columns per GEMM in the numpy conv


def conv_kernel(ctx: Context, x: np.ndarray, w: np.ndarray, b: Optional[np.ndarray],
                out: np.ndarray, residual: Optional[np.ndarray], strides, pads, dilations,
                group: int, activation: str = "", params: Sequence[float] = ()) -> Kernel:
    """out = act(conv(x, w) + b + residual): the native PackedConv when built, else numpy.
    ``out`` may be ``residual`` (computed in place)."""
    mod = native_conv_module()
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
            return chain(native_run(packed, (x, out, residual), ctx, nbytes),
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
    return chain(conv, *epilogue)


@kernel("Conv", "FusedConv")
def _conv(ctx, call, ins, outs):
    x, w = ins[0], ins[1]
    if x.ndim != 4 or not float_op(outs) or len(outs) != 1:
        return NotImplemented
    b = ins[2] if len(ins) > 2 else None
    residual = ins[3] if len(ins) > 3 else None
    win = call.op.window(call)
    act, params = ("", ())
    if call.node.op_type == "FusedConv":
        act, params = call.op.activation(call)
    return conv_kernel(ctx, x, w, b, outs[0], residual, win.strides, win.pads, win.dilations,
                       int(call.attr("group")), act, params)


def _scatter_range(n: int, tap: int, stride: int, crop: int, size: int):
    """Inputs j in [lo, hi) whose tap lands inside the cropped output, o = tap + j*stride -
    crop in [0, size), and the first such o; None when none does."""
    lo = max(0, -((tap - crop) // stride))  # ceil((crop - tap) / stride)
    hi = min(n, (crop + size - 1 - tap) // stride + 1)
    if hi <= lo:
        return None
    return lo, hi, tap + lo * stride - crop


@kernel("ConvTranspose")
def _conv_transpose(ctx, call, ins, outs):
    """Per image and tile of input rows: one GEMM per group into workspace columns
    (Cout/group * kernel taps x pixels), then col2im: each tap's plane added into the strided
    output positions it reaches (pads crop, output_padding leaves bias-only positions). The
    output starts as the bias (or zeros)."""
    x, w, out = ins[0], ins[1], outs[0]
    if not float_op(outs) or not is_float(x) or not is_float(w):
        return NotImplemented
    win = call.op.window(call)
    g = int(call.attr("group"))
    n, c = x.shape[:2]
    spatial, kernel_shape = x.shape[2:], w.shape[2:]
    cg, mg = c // g, w.shape[1]
    taps = math.prod(kernel_shape)
    dtype = out.dtype
    # (g, mg*taps, cg): the GEMM's left side, packed once when the weight is a constant
    wt = w.reshape(g, cg, mg * taps).transpose(0, 2, 1)
    if call.node.inputs[1] in ctx.constants:
        wt = np.ascontiguousarray(wt, dtype=dtype)
    elif w.dtype != dtype:
        return NotImplemented
    b = ins[2] if len(ins) > 2 and ins[2] is not None else None
    bias = None if b is None else b.reshape((-1,) + (1,) * len(spatial))
    # Input rows (first spatial axis) per GEMM: the columns stay within TILE_BYTES.
    rest = math.prod(spatial[1:])
    per_row = g * mg * taps * rest * dtype.itemsize
    rows = max(1, min(spatial[0], TILE_BYTES // max(per_row, 1)))
    cols = ctx.workspace.request((g, mg * taps, rows * rest), dtype)
    # For each tile and tap: (output slices, column slices), computed once.
    plans = []
    for r0 in range(0, spatial[0], rows):
        r1 = min(spatial[0], r0 + rows)
        adds = []
        for k in np.ndindex(*kernel_shape):
            dest, src = [slice(None)], [slice(None)]
            for axis, kk in enumerate(k):
                length = (r1 - r0) if axis == 0 else spatial[axis]
                first = r0 if axis == 0 else 0
                found = _scatter_range(length, kk * win.dilations[axis] +
                                       first * win.strides[axis], win.strides[axis],
                                       win.pads_begin[axis], win.out[axis])
                if found is None:
                    break
                lo, hi, o0 = found
                s = win.strides[axis]
                dest.append(slice(o0, o0 + (hi - lo - 1) * s + 1, s))
                src.append(slice(lo, hi))
            else:
                adds.append((tuple(dest), (slice(None), *k, *src[1:])))
        plans.append((r0, r1, adds))

    def image(i: int) -> None:
        xi, oi = x[i], out[i]
        for r0, r1, adds in plans:
            m = (r1 - r0) * rest
            col = cols.a[:, :, :m]
            np.matmul(wt, xi[:, r0:r1].reshape(g, cg, m), out=col)
            planes = col.reshape((g * mg,) + kernel_shape + (r1 - r0,) + spatial[1:])
            for dest, src in adds:
                d = oi[dest]
                np.add(d, planes[src], out=d)

    def conv_transpose():
        if bias is None:
            out.fill(0)
        else:
            np.copyto(out, bias)
        # numpy buffers each strided operand of the adds (8192 elements by default)
        saved = np.setbufsize(STRIDED_BUFSIZE)
        try:
            for i in range(n):
                image(i)
        finally:
            np.setbufsize(saved)
    return conv_transpose
