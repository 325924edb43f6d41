"""Normalisation kernels: BatchNormalization (when not folded), LayerNormalization,
InstanceNormalization, LRN."""

from __future__ import annotations

import math
from typing import Optional

import numpy as np

from .base import Workspace, float_op, kernel


@kernel("BatchNormalization")
def _batchnorm(ctx, call, ins, outs):
    if len(outs) != 1 or call.op._training(call) or not float_op(outs):
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


def _standardize(ws: Workspace, x2: np.ndarray, o2: np.ndarray, eps: float,
                 mean: Optional[np.ndarray] = None, inv: Optional[np.ndarray] = None):
    """A kernel for o2 = (x2 - mean) * inv per row of the 2-D x2, inv = 1/sqrt(var + eps);
    ``mean`` and ``inv`` (rows, 1) are written too when given (else workspace). Returns the
    kernel and a getter of the inv array (callers scale it per row)."""
    rows, cols = x2.shape
    mean_slot = None if mean is not None else ws.request((rows, 1), x2.dtype)
    inv_slot = None if inv is not None else ws.request((rows, 1), x2.dtype)

    def get_inv():
        return inv if inv is not None else inv_slot.a

    def standardize():
        m = mean if mean is not None else mean_slot.a
        v = get_inv()
        np.mean(x2, axis=1, keepdims=True, out=m)
        np.subtract(x2, m, out=o2)
        np.vecdot(o2, o2, out=v[:, 0])  # sum of squares per row, no (rows, cols) temporary
        np.multiply(v, 1.0 / cols, out=v)
        np.add(v, eps, out=v)
        np.sqrt(v, out=v)
        np.reciprocal(v, out=v)
    return standardize, get_inv


@kernel("LayerNormalization")
def _layernorm(ctx, call, ins, outs):
    x, out = ins[0], outs[0]
    if not float_op(outs[:1]) or x.dtype != out.dtype or \
            any(o is not None and o.dtype != out.dtype for o in outs[1:]):
        return NotImplemented  # a stash_type other than the data's
    axis = call.op._axis(call)
    rows = math.prod(x.shape[:axis])
    x2, o2 = x.reshape(rows, -1), out.reshape(rows, -1)
    stats = [o.reshape(rows, 1) if o is not None else None for o in outs[1:3]]
    stats += [None] * (2 - len(stats))
    standardize, get_inv = _standardize(ctx.workspace, x2, o2, float(call.attr("epsilon")),
                                        *stats)
    scale = ins[1]
    bias = ins[2] if len(ins) > 2 else None

    def layernorm():
        standardize()
        np.multiply(o2, get_inv(), out=o2)
        np.multiply(out, scale, out=out)
        if bias is not None:
            np.add(out, bias, out=out)
    return layernorm


@kernel("InstanceNormalization")
def _instancenorm(ctx, call, ins, outs):
    x, out = ins[0], outs[0]
    if not float_op(outs) or x.dtype != out.dtype:
        return NotImplemented
    n, c = x.shape[:2]
    x2, o2 = x.reshape(n * c, -1), out.reshape(n * c, -1)
    standardize, get_inv = _standardize(ctx.workspace, x2, o2, float(call.attr("epsilon")))
    scale, bias = ins[1].reshape(c), ins[2].reshape(c, 1)
    o3 = out.reshape(n, c, -1)

    def instancenorm():
        standardize()
        inv = get_inv()
        np.multiply(inv.reshape(n, c), scale, out=inv.reshape(n, c))  # per row: inv * scale
        np.multiply(o2, inv, out=o2)
        np.add(o3, bias, out=o3)
    return instancenorm


@kernel("LRN")
def _lrn(ctx, call, ins, outs):
    x, out = ins[0], outs[0]
    if not float_op(outs) or x.ndim < 2:
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
