"""Gemm and MatMul: dense layers on the native ``PackedDense`` (packed, or at small batches
streaming the weights as given), else numpy's matmul."""

from __future__ import annotations

from typing import Optional

import numpy as np

from .base import Context, Kernel, chain, float_op, kernel, native_conv_module, native_run

STREAM_BATCH = 8  # up to this many rows a dense layer streams its weights as given


def dense_kernel(ctx: Context, a: np.ndarray, w: np.ndarray, c: Optional[np.ndarray],
                 out: np.ndarray) -> Kernel:
    """out = a @ w.T (+ c, broadcast): ``w`` (N, K), the layout Gemm's transB=1 weights
    already have, and c prepacked constants (alpha and beta already applied). At small
    batches reading ``w`` is the whole cost, and packing it would only hold it twice."""
    mod = native_conv_module()
    row = c is None or (c.size == out.shape[1] and c.shape[-1] == out.shape[1])
    if mod is not None and hasattr(mod, "PackedDense") and a.ndim == 2 and row \
            and a.flags.c_contiguous and out.dtype == np.float32:
        try:
            packed = mod.PackedDense(np.ascontiguousarray(w, dtype=np.float32),
                                     None if c is None else
                                     np.ascontiguousarray(c.reshape(-1), dtype=np.float32),
                                     pack=a.shape[0] > STREAM_BATCH)
            nbytes = packed.scratch_bytes(a.shape[0], ctx.threads)
        except (TypeError, ValueError):
            packed = None
        if packed is not None:
            ctx.kind = "native"
            return native_run(packed, (a, out), ctx, nbytes)
    ctx.kind = "numpy"
    b = w.T
    if c is None:
        return lambda: np.matmul(a, b, out=out)

    def dense():
        np.matmul(a, b, out=out)
        np.add(out, c, out=out)
    return dense


@kernel("Gemm")
def _gemm(ctx, call, ins, outs):
    a, b = ins[0], ins[1]
    c = ins[2] if len(ins) > 2 else None
    if not float_op(outs):
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
    return chain(*steps)


@kernel("MatMul")
def _matmul(ctx, call, ins, outs):
    a, b = ins
    out = outs[0]
    if not float_op(outs) or a.dtype != out.dtype or b.dtype != out.dtype:
        return NotImplemented
    return lambda: np.matmul(a, b, out=out)
