"""Reductions over axes: ReduceMean, ReduceSum, ReduceMax, ReduceMin."""

from __future__ import annotations

from typing import Callable, ClassVar, Optional

import numpy as np

from .base import Call, OpDef, TensorType, normalize_axis, register


class _Reduce(OpDef):
    """Reduce X over ``axes`` (all axes when none are given), keeping them as 1 with keepdims.

    axes is an attribute until the opset in ``axes_input_since``, then input 1. From that opset,
    noop_with_empty_axes=1 with no axes makes the op an identity.
    """

    attrs = {"keepdims": 1, "noop_with_empty_axes": 0}
    attribute_inputs = (1,)
    axes_input_since: ClassVar[int] = 18
    reduce: ClassVar[Callable]

    def axes(self, call: Call) -> Optional[tuple[int, ...]]:
        """The sorted axes to reduce, or None for the identity."""
        rank = call.input(0).rank
        axes = call.attr_or_input("axes", 1, since=self.axes_input_since)
        if not axes:
            return None if call.attr("noop_with_empty_axes") else tuple(range(rank))
        normalized = [normalize_axis(call, int(a), rank) for a in axes]
        if len(set(normalized)) != len(normalized):
            raise call.error(f"axes {[int(a) for a in axes]} name an axis twice")
        return tuple(sorted(normalized))

    def infer(self, call: Call) -> list[TensorType]:
        x = call.input(0)
        axes = self.axes(call)
        if axes is None:
            return [x]
        if call.attr("keepdims"):
            shape = tuple(1 if i in axes else d for i, d in enumerate(x.shape))
        else:
            shape = tuple(d for i, d in enumerate(x.shape) if i not in axes)
        return [TensorType(shape, x.dtype)]

    def other_flops(self, call: Call, outs: list[TensorType]) -> int:
        """|X|: one add or comparison per input element (0 for the identity)"""
        return 0 if self.axes(call) is None else call.input(0).size

    def evaluate(self, call: Call) -> list[np.ndarray]:
        x = call.values[0]
        axes = self.axes(call)
        if axes is None:
            return [x]
        y = self.reduce(x, axis=axes, keepdims=bool(call.attr("keepdims")))
        return [np.asarray(y).astype(x.dtype)]


@register
class ReduceMean(_Reduce):
    op_type = "ReduceMean"
    reduce = staticmethod(np.mean)


@register
class ReduceSum(_Reduce):
    op_type = "ReduceSum"
    axes_input_since = 13
    reduce = staticmethod(np.sum)


@register
class ReduceMax(_Reduce):
    op_type = "ReduceMax"
    reduce = staticmethod(np.max)


@register
class ReduceMin(_Reduce):
    op_type = "ReduceMin"
    reduce = staticmethod(np.min)
