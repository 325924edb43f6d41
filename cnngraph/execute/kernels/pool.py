"""Pooling kernels: MaxPool (native when built), AveragePool (padded through the workspace),
global pooling."""

from __future__ import annotations

from typing import Optional

import numpy as np

from .base import Context, Kernel, float_op, kernel, native_conv_module, native_run


def _pool_window(call):
    from ...ops.pool import _window

    return _window(call)


def _native_max_pool(ctx: Context, x: np.ndarray, out: np.ndarray, win) -> Optional[Kernel]:
    """The native MaxPool (one pass per plane, no padded copy) when built and float32."""
    mod = native_conv_module()
    if mod is None or not hasattr(mod, "MaxPool") or x.dtype != np.float32 \
            or out.dtype != np.float32 or np.may_share_memory(x, out):
        return None
    try:
        pool = mod.MaxPool(win.kernel, win.strides, win.pads_begin, win.dilations)
        nbytes = pool.scratch_bytes(x.shape, out.shape, ctx.threads)
    except (TypeError, ValueError):
        return None
    ctx.kind = "native"
    return native_run(pool, (x, out), ctx, nbytes)


@kernel("MaxPool", "AveragePool")
def _pool(ctx, call, ins, outs):
    x = ins[0]
    if x.ndim != 4 or len([o for o in outs if o is not None]) != 1 or outs[0] is None \
            or not float_op(outs[:1]):
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
    if not float_op(outs):
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
