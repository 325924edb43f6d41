"""Shape and data-movement kernels: views that cost nothing, Concat (nothing when its inputs
were written in place), Transpose, Gather, Cast, Pad, Resize, Slice, Split, Where, Expand, Tile."""

from __future__ import annotations

from typing import Optional

import numpy as np

from ...ops.base import normalize_axis
from .activation import activation_kernel
from .base import Kernel, float_op, kernel, same_memory


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
        if same_memory(dest, v):
            continue  # the producer wrote straight into its slice of the output
        copies.append((dest, v))
    return _copies(copies)


def _copies(pairs: list) -> Optional[Kernel]:
    """Copy each (dest, src) pair; None when there is nothing to copy."""
    if not pairs:
        return None

    def copy():
        for dest, src in pairs:
            np.copyto(dest, src)
    return copy


@kernel("Reshape", "Flatten", "Squeeze", "Unsqueeze", "Identity", "Dropout")
def _view(ctx, call, ins, outs):
    x, out = ins[0], outs[0]
    if any(o is not None for o in outs[1:]):
        return NotImplemented  # Dropout's mask
    if call.node.op_type == "Dropout" and call.opset >= 12 and len(ins) > 2 \
            and ins[2] is not None and bool(np.asarray(ins[2]).any()):
        return NotImplemented
    src = x.reshape(out.shape)
    if same_memory(out, src):
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
    """Crop (negative pads) and copy the inside, then fill the borders one axis at a time:
    earlier axes over their whole padded extent, later ones over the inside, so each border
    slab reads only what is already in place (edge, reflect, wrap) or takes the value."""
    x, out = ins[0], outs[0]
    from ...ops.shape import _text

    widths = call.op.widths(call)
    mode = _text(call, "mode")
    src = x[tuple(slice(-min(b, 0), d + min(e, 0)) for d, (b, e) in zip(x.shape, widths))]
    grow = [(max(b, 0), max(e, 0)) for b, e in widths]
    inner = [slice(b, b + d) for (b, _), d in zip(grow, src.shape)]
    runtime_value = (mode == "constant" and call.opset >= 11 and len(ins) > 2
                     and ins[2] is not None and call.node.inputs[2] not in ctx.constants)
    if runtime_value:  # computed by an earlier step: read when the step runs
        value = ins[2].reshape(())
    elif call.opset < 11:
        value = np.asarray(call.attr("value")).item()
    else:
        value = np.asarray(ins[2] if len(ins) > 2 and ins[2] is not None else 0).item()
    fills, copies = [], []  # (slab, value) and (slab, source), in the order they must run
    for a, (b, e) in enumerate(grow):
        n = src.shape[a]

        def at(sl, a=a):
            return out[tuple(slice(None) for _ in range(a)) + (sl,) + tuple(inner[a + 1:])]
        steps = []
        if mode == "constant":
            steps = [(slice(0, b), None), (slice(b + n, b + n + e), None)]
        elif mode == "edge":
            steps = [(slice(0, b), slice(b, b + 1)), (slice(b + n, b + n + e),
                                                      slice(b + n - 1, b + n))]
        elif mode == "reflect":  # b, e < n (the op checks)
            steps = [(slice(0, b), slice(2 * b, b, -1)),
                     (slice(b + n, b + n + e), slice(b + n - 2, (b + n - 2 - e) if
                                                     b + n - 2 - e >= 0 else None, -1))]
        elif mode == "wrap":  # period n: chunks of at most n, each from the one before it
            steps = [(slice(max(0, j - n), j), slice(max(0, j - n) + n, j + n))
                     for j in range(b, 0, -n)]
            steps += [(slice(j, min(b + n + e, j + n)), slice(j - n, min(b + n + e, j + n) - n))
                      for j in range(b + n, b + n + e, n)]
        else:
            return NotImplemented
        for dest, source in steps:
            if dest.stop is not None and dest.stop <= dest.start:
                continue
            if source is None:
                fills.append(at(dest))
            else:
                copies.append((at(dest), at(source)))
    middle = out[tuple(inner)]
    # A border is copied from out itself: through a workspace buffer, as numpy would make a
    # temporary copy of a source within the destination's array.
    bounce = ctx.workspace.request((max([d.size for d, _ in copies], default=1),), out.dtype)

    def pad():
        np.copyto(middle, src)
        for slab in fills:
            if runtime_value:
                np.copyto(slab, value)
            else:
                slab.fill(value)
        for dest, source in copies:
            buf = bounce.a[:dest.size].reshape(dest.shape)
            np.copyto(buf, source)
            np.copyto(dest, buf)
    return pad


@kernel("Resize", "Upsample")
def _resize(ctx, call, ins, outs):
    """One resized axis at a time (every mode is separable), each as a few taps: output i
    along the axis = sum over taps t of weight[t, i] * input[index[t, i]], gathered with
    np.take into workspace. The taps come from the op's own interpolation matrix (nearest:
    one tap of weight 1; linear two, cubic four, antialias more); outputs outside the input
    (tf_crop_and_resize) get zero weights plus the extrapolation value."""
    x, out = ins[0], outs[0]
    if not float_op(outs) or x.dtype != out.dtype:
        return NotImplemented
    plan = call.op.plan(call)
    axes = plan.resized_axes(x.shape)
    if not axes:
        return activation_kernel("", (), x, out, None)
    shape = list(x.shape)
    steps = []
    for k, axis in enumerate(axes):
        matrix, outside = plan.weights(axis, shape[axis])
        shape[axis] = plan.out[axis]
        dest = None if k == len(axes) - 1 else ctx.workspace.request(shape, x.dtype)
        count = max(1, int((matrix != 0).sum(axis=1).max()))
        # the nonzero columns of each row, first; rows with fewer taps add zero weights
        order = np.argsort(matrix == 0, axis=1, kind="stable")[:, :count]
        weights = np.take_along_axis(matrix, order, axis=1)
        const = None
        if outside is not None and outside.any():
            weights[outside] = 0
            const = np.where(outside, plan.extrapolation, 0.0)
        trailing = (1,) * (len(shape) - axis - 1)
        taps = [(np.ascontiguousarray(order[:, t]),
                 weights[:, t].astype(x.dtype).reshape((-1,) + trailing)) for t in range(count)]
        plain = count == 1 and const is None and bool((weights == 1).all())
        tmp = None if plain else ctx.workspace.request(shape, x.dtype)
        steps.append((axis, dest, taps, plain, tmp,
                      None if const is None else const.astype(x.dtype).reshape((-1,) + trailing)))

    def resize():
        src = x
        for axis, dest, taps, plain, tmp, const in steps:
            d = out if dest is None else dest.a
            if plain:
                np.take(src, taps[0][0], axis=axis, out=d, mode="clip")
            else:
                t = tmp.a
                for j, (index, weight) in enumerate(taps):
                    np.take(src, index, axis=axis, out=t if j else d, mode="clip")
                    if j == 0:
                        np.multiply(d, weight, out=d)
                    else:
                        np.multiply(t, weight, out=t)
                        np.add(d, t, out=d)
                if const is not None:
                    np.add(d, const, out=d)
            src = d
    return resize


@kernel("Slice")
def _slice(ctx, call, ins, outs):
    x, out = ins[0], outs[0]
    src = x[tuple(call.op.slices(call))]
    return lambda: np.copyto(out, src)


@kernel("Split")
def _split(ctx, call, ins, outs):
    x = ins[0]
    axis, sizes = call.op.sizes(call)
    copies = []
    at = 0
    for size, out in zip(sizes, outs):
        src = x[(slice(None),) * axis + (slice(at, at + size),)]
        at += size
        if out is not None and not same_memory(out, src):
            copies.append((out, src))
    return _copies(copies)


@kernel("Where")
def _where(ctx, call, ins, outs):
    cond, x, y = ins
    out = outs[0]
    if any(np.may_share_memory(out, v) for v in ins):
        return NotImplemented  # Y first, then X where the condition holds: both must stay

    def where():
        np.copyto(out, y)
        np.copyto(out, x, where=cond)
    return where


@kernel("Expand")
def _expand(ctx, call, ins, outs):
    x, out = ins[0], outs[0]
    return lambda: np.copyto(out, x)


@kernel("Tile")
def _tile(ctx, call, ins, outs):
    """out seen as (r0, d0, r1, d1, ...): one broadcast copy of x as (1, d0, 1, d1, ...)."""
    x, out = ins[0], outs[0]
    repeats = call.op.repeats(call)
    if not (x.flags.c_contiguous and out.flags.c_contiguous):
        return NotImplemented  # the reshapes below must be views
    dest = out.reshape([v for r, d in zip(repeats, x.shape) for v in (r, d)])
    src = x.reshape([v for d in x.shape for v in (1, d)])
    return lambda: np.copyto(dest, src)
