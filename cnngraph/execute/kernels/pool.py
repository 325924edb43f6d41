"""Pooling kernels: MaxPool, AveragePool (padded through the workspace), global pooling."""

from __future__ import annotations

import numpy as np

from .base import float_op, kernel


def _pool_window(call):
    from ...ops.pool import _window

    return _window(call)


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
    return lambda: np.mean(flat, axis=2, out=dest)
