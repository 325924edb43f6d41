"""Element-wise unary ufuncs and broadcasting binary ops, correct when ``out`` is an input."""

from __future__ import annotations

import numpy as np

from .activation import activation_kernel
from .base import chain, float_op, is_float, kernel

_UFUNCS = {"Exp": np.exp, "Log": np.log, "Sqrt": np.sqrt, "Neg": np.negative, "Abs": np.abs,
           "Reciprocal": np.reciprocal}


@kernel(*_UFUNCS)
def _unary(ctx, call, ins, outs):
    if not float_op(outs):
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
    if not float_op(outs) or not all(is_float(v) for v in ins):
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
    return chain(first, *rest)
