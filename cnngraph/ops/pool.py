"""Pooling: MaxPool (with its Indices output), AveragePool, GlobalAveragePool, GlobalMaxPool."""

from __future__ import annotations

import math

import numpy as np

from .base import Call, OpDef, TensorType, register
from .window import Window, resolve


def _window(call: Call) -> Window:
    x = call.shape(0)
    if len(x) < 3:
        raise call.error(f"pooling needs an input of rank >= 3 (N, C, spatial...), "
                         f"got rank {len(x)}")
    kernel = tuple(int(k) for k in call.attr("kernel_shape"))
    if len(kernel) != len(x) - 2:
        raise call.error(f"kernel_shape {list(kernel)} needs {len(x) - 2} values, one per "
                         f"spatial axis")
    return resolve(call, x[2:], kernel, bool(call.attr("ceil_mode")), pooling=True)


def _taps(x: np.ndarray, win: Window, fill):
    """Pad x (explicit pads, then enough at the end for ceil_mode's last window) with ``fill``
    and yield, per kernel tap, the strided view of the input every output position reads."""
    rank = x.ndim - 2
    reach = [(win.out[i] - 1) * win.strides[i] + win.dilations[i] * (win.kernel[i] - 1) + 1
             for i in range(rank)]
    padding = [(0, 0), (0, 0)] + [
        (win.pads_begin[i], max(win.pads_end[i], reach[i] - x.shape[2 + i] - win.pads_begin[i]))
        for i in range(rank)]
    xp = np.pad(x, padding, constant_values=fill)
    for k in np.ndindex(*win.kernel):
        index = tuple(
            slice(k[i] * win.dilations[i],
                  k[i] * win.dilations[i] + win.strides[i] * (win.out[i] - 1) + 1, win.strides[i])
            for i in range(rank))
        yield xp[(slice(None), slice(None)) + index]


@register
class MaxPool(OpDef):
    """Y: the largest input in each window; the optional Indices output (int64) is each maximum's
    flat index into X, row-major (storage_order=0) or column-major over the spatial axes (1)."""

    op_type = "MaxPool"
    attrs = {"auto_pad": "NOTSET", "ceil_mode": 0, "storage_order": 0}

    def infer(self, call: Call) -> list[TensorType]:
        x = call.input(0)
        out = TensorType(x.shape[:2] + _window(call).out, x.dtype)
        return [out, TensorType(out.shape, "int64")][:max(1, len(call.node.outputs))]

    def other_flops(self, call: Call, outs: list[TensorType]) -> int:
        """|Y| * prod(kernel): one comparison per window element"""
        return outs[0].size * math.prod(call.attr("kernel_shape"))

    def evaluate(self, call: Call) -> list[np.ndarray]:
        x = call.values[0]
        win = _window(call)
        spatial = x.shape[2:]
        size = math.prod(spatial)
        # Flat index of every input element: (n*C + c) * prod(spatial) + its spatial offset.
        offset = (np.arange(size).reshape(spatial[::-1]).T if call.attr("storage_order")
                  else np.arange(size).reshape(spatial))
        flat = np.arange(x.shape[0] * x.shape[1]).reshape(x.shape[:2] + (1,) * len(spatial))
        flat = flat * size + offset
        # Padding never wins: track validity rather than trust a fill value that could tie.
        valid = np.ones(x.shape, dtype=bool)
        best = index = found = None
        for v, ok, at in zip(_taps(x, win, 0), _taps(valid, win, False), _taps(flat, win, -1)):
            if best is None:
                best, index, found = v.copy(), at.copy(), ok.copy()
                continue
            better = ok & (~found | (v > best))
            best = np.where(better, v, best)
            index = np.where(better, at, index)
            found |= ok
        return [best.astype(x.dtype), index.astype(np.int64)][:max(1, len(call.node.outputs))]


@register
class AveragePool(OpDef):
    """The mean of each window. count_include_pad=1 divides by the window's size inside the
    explicitly padded input; 0 by the number of real input elements it covers. Either way the
    part of a ceil_mode window beyond the padding does not count."""

    op_type = "AveragePool"
    attrs = {"auto_pad": "NOTSET", "ceil_mode": 0, "count_include_pad": 0}

    def infer(self, call: Call) -> list[TensorType]:
        x = call.input(0)
        return [TensorType(x.shape[:2] + _window(call).out, x.dtype)]

    def other_flops(self, call: Call, outs: list[TensorType]) -> int:
        """|Y| * (prod(kernel) + 1): one add per window element, one divide per output"""
        return outs[0].size * (math.prod(call.attr("kernel_shape")) + 1)

    def evaluate(self, call: Call) -> list[np.ndarray]:
        x = call.values[0]
        win = _window(call)
        rank = x.ndim - 2
        padding = [(0, 0), (0, 0)] + list(zip(win.pads_begin, win.pads_end))
        xp = np.pad(x.astype(np.float64), padding)
        counted = np.pad(np.ones(x.shape), padding,
                         constant_values=1 if call.attr("count_include_pad") else 0)
        # Slide over the padded arrays; _taps' extra end padding (ceil_mode) counts nothing.
        inner = Window(win.kernel, win.strides, win.dilations, (0,) * rank, (0,) * rank, win.out)
        total = sum(_taps(xp, inner, 0))
        count = sum(_taps(counted, inner, 0))
        return [(total / count).astype(x.dtype)]


class _GlobalPool(OpDef):
    """Pool each channel's whole spatial extent to one number: (N, C, ...) -> (N, C, 1, ...)."""

    reduce = staticmethod(np.mean)

    def infer(self, call: Call) -> list[TensorType]:
        x = call.input(0)
        if x.rank < 3:
            raise call.error(f"global pooling needs an input of rank >= 3 (N, C, spatial...), "
                             f"got rank {x.rank}")
        return [TensorType(x.shape[:2] + (1,) * (x.rank - 2), x.dtype)]

    def evaluate(self, call: Call) -> list[np.ndarray]:
        x = call.values[0]
        axes = tuple(range(2, x.ndim))
        return [self.reduce(x, axis=axes, keepdims=True).astype(x.dtype)]


@register
class GlobalAveragePool(_GlobalPool):
    op_type = "GlobalAveragePool"

    def other_flops(self, call: Call, outs: list[TensorType]) -> int:
        """N * C * (H*W + 1): every element added, one divide per channel"""
        return call.input(0).size + outs[0].size


@register
class GlobalMaxPool(_GlobalPool):
    op_type = "GlobalMaxPool"
    reduce = staticmethod(np.max)

    def other_flops(self, call: Call, outs: list[TensorType]) -> int:
        """N * C * H*W: one comparison per element"""
        return call.input(0).size
