"""Elementwise arithmetic: broadcasting binary and variadic ops, and unary math.

Two small bases carry the family: ``Broadcasting`` (Add, Sub, Mul, Div, Pow, Max, Min, Sum,
Mean: numpy multidirectional broadcasting, one FLOP per pair of operands per output element)
and ``Unary`` (same shape and dtype out, a fixed number of FLOPs per element), which the
activations reuse. ``same_dtype`` and ``unidirectional`` are the checks shared with the
activation and linear families.
"""

from __future__ import annotations

from functools import reduce
from typing import Callable, ClassVar

import numpy as np

from .base import Call, OpDef, TensorType, broadcast, register, shape_str


def same_dtype(call: Call) -> str:
    """The element type every present input shares, or an error naming the two that differ."""
    present = [i for i in range(len(call.inputs)) if call.has_input(i)]
    first = call.input(present[0]).dtype
    for i in present[1:]:
        if call.input(i).dtype != first:
            raise call.error(f"input {present[0]} is {first} but input {i} is "
                             f"{call.input(i).dtype}; the inputs must share one element type")
    return first


def unidirectional(call: Call, shape: tuple, target: tuple, what: str) -> None:
    """Check that ``shape`` broadcasts to ``target`` without changing it (ONNX unidirectional
    broadcasting: right-aligned, each dim equal or 1, rank at most the target's)."""
    if len(shape) > len(target) or any(
            s not in (1, t) for s, t in zip(reversed(shape), reversed(target))):
        raise call.error(f"{what} {shape_str(shape)} does not broadcast to {shape_str(target)}")


class Broadcasting(OpDef):
    """Y = fn(fn(X0, X1), X2)... over inputs broadcast together (numpy rules)."""

    fn: ClassVar[Callable]  # the binary numpy function, folded left over the inputs
    variadic: ClassVar[bool] = False  # Sum/Max/Min/Mean take 1..n inputs, the rest exactly 2
    in_place = (0, 1)  # element by element: Y may be written over either input of its size

    def infer(self, call: Call) -> list[TensorType]:
        n = len(call.inputs)
        if n != 2 and not self.variadic:
            raise call.error(f"takes 2 inputs, got {n}")
        if n < 1:
            raise call.error("needs at least one input")
        shapes = [call.shape(i) for i in range(n)]
        if self.variadic and call.opset < 8 and len(set(shapes)) > 1:  # broadcasting came in 8
            raise call.error(f"before opset 8 {self.op_type} needs inputs of one shape, got "
                             + " and ".join(map(shape_str, shapes)))
        return [TensorType(broadcast(call, shapes), self.dtype(call))]

    def dtype(self, call: Call) -> str:
        return same_dtype(call)

    def evaluate(self, call: Call) -> list[np.ndarray]:
        dtype = call.values[0].dtype  # Pow's exponent may have another type: Y keeps X's
        return [np.asarray(reduce(type(self).fn, call.values)).astype(dtype, copy=False)]

    def other_flops(self, call: Call, outs: list[TensorType]) -> int:
        """other_flops = (number of inputs - 1) * |Y|"""
        return (len(call.inputs) - 1) * outs[0].size


def _divide(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Division; integers truncate toward zero as in C (ONNX), not toward -inf as numpy's //."""
    if np.issubdtype(a.dtype, np.integer):
        q = np.abs(a) // np.abs(b)
        return np.where((a < 0) ^ (b < 0), -q, q)
    return a / b


@register
class Add(Broadcasting):
    op_type = "Add"
    grad_from_output = True
    fn = np.add


@register
class Sub(Broadcasting):
    op_type = "Sub"
    grad_from_output = True
    fn = np.subtract


@register
class Mul(Broadcasting):
    op_type = "Mul"
    fn = np.multiply


@register
class Div(Broadcasting):
    op_type = "Div"
    fn = _divide


@register
class Pow(Broadcasting):
    """Y = X ** exponent; from opset 12 the exponent may have another type, Y keeps X's."""

    op_type = "Pow"
    fn = np.power

    def dtype(self, call: Call) -> str:
        return call.input(0).dtype if call.opset >= 12 else same_dtype(call)


@register
class Max(Broadcasting):
    op_type = "Max"
    fn = np.maximum
    variadic = True


@register
class Min(Broadcasting):
    op_type = "Min"
    fn = np.minimum
    variadic = True


@register
class Sum(Broadcasting):
    op_type = "Sum"
    fn = np.add
    variadic = True


@register
class Mean(Broadcasting):
    """Sum of the inputs, divided by their number."""

    op_type = "Mean"
    fn = np.add
    variadic = True

    def evaluate(self, call: Call) -> list[np.ndarray]:
        (total,) = super().evaluate(call)
        return [(total / len(call.values)).astype(total.dtype, copy=False)]

    def other_flops(self, call: Call, outs: list[TensorType]) -> int:
        """other_flops = (number of inputs - 1) * |Y| adds + |Y| divides"""
        return len(call.inputs) * outs[0].size


class Unary(OpDef):
    """Y = fn(X): X's shape and dtype, ``flops`` FLOPs per element."""

    fn: ClassVar[Callable]  # the numpy function; ops with attributes override compute instead
    flops: ClassVar[int] = 1
    in_place = (0,)

    def infer(self, call: Call) -> list[TensorType]:
        x = call.input(0)
        return [TensorType(x.shape, x.dtype)]

    def compute(self, call: Call, x: np.ndarray) -> np.ndarray:
        return type(self).fn(x)

    def evaluate(self, call: Call) -> list[np.ndarray]:
        x = call.values[0]
        return [np.asarray(self.compute(call, x)).astype(x.dtype, copy=False)]

    def other_flops(self, call: Call, outs: list[TensorType]) -> int:
        """other_flops = flops * |Y|"""
        return self.flops * outs[0].size


@register
class Sqrt(Unary):
    op_type = "Sqrt"
    fn = np.sqrt


@register
class Neg(Unary):
    op_type = "Neg"
    fn = np.negative


@register
class Abs(Unary):
    op_type = "Abs"
    fn = np.abs


@register
class Exp(Unary):
    op_type = "Exp"
    fn = np.exp


@register
class Log(Unary):
    op_type = "Log"
    fn = np.log


@register
class Reciprocal(Unary):
    op_type = "Reciprocal"
    fn = np.reciprocal
