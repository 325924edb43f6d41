"""Reductions (ReduceMean, ReduceSum, ReduceMax, ReduceMin) into their output views."""

from __future__ import annotations

import numpy as np

from .activation import activation_kernel
from .base import float_op, kernel

_REDUCE = {"ReduceMean": np.mean, "ReduceSum": np.sum, "ReduceMax": np.max, "ReduceMin": np.min}


@kernel(*_REDUCE)
def _reduce(ctx, call, ins, outs):
    x, out = ins[0], outs[0]
    if not float_op(outs):
        return NotImplemented
    axes = call.op.axes(call)
    if axes is None:
        return activation_kernel("", (), x, out, None)
    fn = _REDUCE[call.node.op_type]
    keep = bool(call.attr("keepdims"))
    return lambda: fn(x, axis=axes, keepdims=keep, out=out)
