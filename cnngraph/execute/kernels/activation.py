"""Activation kernels (ops/activation.py): in place or into a separate output, Erf and Gelu
evaluated over cache-sized chunks, PRelu, Softmax and LogSoftmax."""

from __future__ import annotations

import math
from typing import Optional, Sequence

import numpy as np

from .base import Kernel, Slot, chunked, float_op, is_float, kernel


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


_UNARY = {"Relu": "Relu", "Sigmoid": "Sigmoid", "Tanh": "Tanh", "LeakyRelu": "LeakyRelu",
          "HardSigmoid": "HardSigmoid", "HardSwish": "HardSwish", "Clip": "Clip"}


@kernel(*_UNARY)
def _activation(ctx, call, ins, outs):
    if not float_op(outs) or not is_float(ins[0]):
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
            bounds, late = [], False
            for i, default in ((1, -np.inf), (2, np.inf)):
                if len(ins) > i and ins[i] is not None:
                    late = late or call.node.inputs[i] not in ctx.constants
                    bounds.append(ins[i].reshape(()))
                else:
                    bounds.append(default)
            if late:  # a bound computed by an earlier step: read when this one runs
                x, out, (lo, hi) = ins[0], outs[0], bounds
                return lambda: np.clip(x, lo, hi, out=out)
            params = tuple(float(b) for b in bounds)
    out = outs[0]
    tmp = ctx.workspace.request(out.shape, out.dtype) if name in NEEDS_TMP else None
    return activation_kernel(name, params, ins[0], out, tmp)


# erf(x) = x * P(x^2) / Q(x^2) for |x| <= ERF_CLAMP (past it float32's erf is +-1): a rational
# least-squares fit (relative error 2e-9 on the range), evaluated in float64 and rounded once,
# within 0.53 float32 ulp of the correctly rounded erf (tests check against math.erf).
ERF_P = (1.128379169127905, 0.18514376714717262, 0.05424895650969836, 0.00383945725514415,
         0.00037693428339343133, 4.613835139333222e-06, -1.282492945176017e-08)


ERF_Q = (1.0, 0.4974127977844293, 0.11388067083086306, 0.015432343658951995,
         0.001301927723214925, 6.244227150075526e-05)


ERF_CLAMP = 3.925


def _horner(coefs, t, acc) -> None:
    """acc = sum coefs[i] * t**i, in place (coefs lowest degree first)."""
    np.multiply(t, coefs[-1], out=acc)
    np.add(acc, coefs[-2], out=acc)
    for c in coefs[-3::-1]:
        np.multiply(acc, t, out=acc)
        np.add(acc, c, out=acc)


def _erf_into(a, t, p, q) -> None:
    """p = erf(a) in float64 (a is clamped in place; t and q are scratch)."""
    np.clip(a, -ERF_CLAMP, ERF_CLAMP, out=a)
    np.multiply(a, a, out=t)
    _horner(ERF_P, t, p)
    _horner(ERF_Q, t, q)
    np.divide(p, q, out=p)
    np.multiply(p, a, out=p)


@kernel("Erf")
def _erf(ctx, call, ins, outs):
    x, out = ins[0], outs[0]
    if not float_op(outs) or x.dtype != out.dtype or not x.flags.c_contiguous:
        return NotImplemented

    def erf(xs, os, a, t, p, q):
        np.copyto(a, xs)
        _erf_into(a, t, p, q)
        np.copyto(os, p, casting="same_kind")
    return chunked(ctx.workspace, x, out, 4, np.float64, erf)


@kernel("Gelu")
def _gelu(ctx, call, ins, outs):
    x, out = ins[0], outs[0]
    if not float_op(outs) or x.dtype != out.dtype or not x.flags.c_contiguous:
        return NotImplemented
    if call.op.approximate(call) == "tanh":
        k = math.sqrt(2 / math.pi)

        def gelu_tanh(xs, os, t):  # x/2 * (1 + tanh(k * (x + 0.044715 x^3)))
            np.multiply(xs, xs, out=t)
            np.multiply(t, 0.044715, out=t)
            np.add(t, 1, out=t)
            np.multiply(t, xs, out=t)
            np.multiply(t, k, out=t)
            np.tanh(t, out=t)
            np.add(t, 1, out=t)
            np.multiply(t, xs, out=t)
            np.multiply(t, 0.5, out=os)
        return chunked(ctx.workspace, x, out, 1, x.dtype, gelu_tanh)

    def gelu(xs, os, a, t, p, q):  # x/2 * (1 + erf(x / sqrt 2)), all in float64
        np.copyto(a, xs)
        np.multiply(a, math.sqrt(0.5), out=a)
        _erf_into(a, t, p, q)
        np.copyto(t, xs)
        np.add(p, 1, out=p)
        np.multiply(p, t, out=p)
        np.multiply(p, 0.5, out=p)
        np.copyto(os, p, casting="same_kind")
    return chunked(ctx.workspace, x, out, 4, np.float64, gelu)


@kernel("PRelu")
def _prelu(ctx, call, ins, outs):
    """max(x, 0) + slope * min(x, 0): x where x >= 0, slope * x below, exactly."""
    x, slope, out = ins[0], ins[1], outs[0]
    if not float_op(outs) or x.dtype != out.dtype or not is_float(slope):
        return NotImplemented
    tmp = ctx.workspace.request(out.shape, out.dtype)

    def prelu():
        t = tmp.a
        np.minimum(x, 0, out=t)
        np.multiply(t, slope, out=t)
        np.maximum(x, 0, out=out)
        np.add(out, t, out=out)
    return prelu


@kernel("Softmax", "LogSoftmax")
def _softmax(ctx, call, ins, outs):
    x, out = ins[0], outs[0]
    if not float_op(outs):
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
