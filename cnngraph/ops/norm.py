"""Normalizations: LRN, BatchNormalization, InstanceNormalization, LayerNormalization."""

from __future__ import annotations

import numpy as np

from ..dtypes import from_onnx, numpy_dtype
from ..errors import UnsupportedOpError
from .base import Call, OpDef, TensorType, normalize_axis, register, shape_str


def _check_channels(call: Call, what: str) -> int:
    x = call.shape(0)
    if len(x) < 2:
        raise call.error(f"{what} needs an input of rank >= 2 (N, C, ...), got rank {len(x)}")
    return x[1]


def _check_params(call: Call, names: dict[int, str], shape: tuple) -> None:
    for i, name in names.items():
        if call.has_input(i) and call.shape(i) != shape:
            raise call.error(f"{name} (input {i}) has shape {shape_str(call.shape(i))}; "
                             f"it must be {shape_str(shape)}")


def _per_channel(v: np.ndarray, rank: int) -> np.ndarray:
    """A (C, ...) parameter broadcast against (N, C, spatial...)."""
    return v.reshape(v.shape + (1,) * (rank - 1 - v.ndim))


@register
class LRN(OpDef):
    """Y = X / (bias + alpha/size * sum of X^2 over `size` neighbouring channels)^beta; the
    window spans floor((size-1)/2) channels below and ceil((size-1)/2) above, cut at the edges."""

    op_type = "LRN"
    attrs = {"alpha": 0.0001, "beta": 0.75, "bias": 1.0}

    def infer(self, call: Call) -> list[TensorType]:
        _check_channels(call, "LRN")
        if int(call.attr("size")) < 1:
            raise call.error(f"size={call.attr('size')} must be positive")
        return [call.input(0)]

    def other_flops(self, call: Call, outs: list[TensorType]) -> int:
        """|X| * (2*size + 4)"""
        # Per element: size squares and size adds for the window sum, then a multiply by
        # alpha/size, an add of bias, a pow and a divide.
        return outs[0].size * (2 * int(call.attr("size")) + 4)

    def evaluate(self, call: Call) -> list[np.ndarray]:
        x = call.values[0]
        size = int(call.attr("size"))
        below, above = (size - 1) // 2, size // 2  # size // 2 == ceil((size - 1) / 2)
        squares = x.astype(np.float64) ** 2
        window = np.zeros_like(squares)
        for c in range(x.shape[1]):
            window[:, c] = squares[:, max(0, c - below):c + above + 1].sum(axis=1)
        alpha, beta, bias = (float(call.attr(a)) for a in ("alpha", "beta", "bias"))
        return [(x / (bias + alpha / size * window) ** beta).astype(x.dtype)]


@register
class BatchNormalization(OpDef):
    """Inference form: Y = (X - mean) / sqrt(var + epsilon) * scale + B per channel.

    Inputs: X, scale, B, mean, var. Parameters are (C) per channel, or (C, spatial...) per
    activation for opset 7's spatial=0. Training form (opset 14+ training_mode=1): Y uses the
    batch statistics and the outputs running_mean/running_var are the momentum updates. Before
    opset 14 the training form has outputs Y, mean, var, saved_mean, saved_var.
    """

    op_type = "BatchNormalization"
    weight_inputs = (1, 2, 3, 4)
    attrs = {"epsilon": 1e-5, "momentum": 0.9, "spatial": 1, "training_mode": 0}
    non_trainable_inputs = (3, 4)
    in_place = (0,)  # per element at inference: Y may overwrite X

    def _param_shape(self, call: Call) -> tuple:
        x = call.shape(0)
        # 'spatial' exists up to opset 8; spatial=0 keeps one statistic per activation.
        if call.opset < 9 and not call.attr("spatial"):
            return x[1:]
        return (x[1],)

    def _training(self, call: Call) -> bool:
        extra = any(call.node.outputs[1:])  # an omitted optional output is named ''
        if call.opset >= 14:
            if not call.attr("training_mode") and extra:
                raise call.error(f"training_mode=0 has only the output Y, but the node has "
                                 f"{len(call.node.outputs)} outputs")
            return bool(call.attr("training_mode"))
        return extra

    def infer(self, call: Call) -> list[TensorType]:
        _check_channels(call, "BatchNormalization")
        shape = self._param_shape(call)
        _check_params(call, {1: "scale", 2: "B", 3: "mean", 4: "var"}, shape)
        outs = [call.input(0)]
        if self._training(call):
            extra = 2 if call.opset >= 14 else 4  # running mean/var (+ saved mean/var before 14)
            outs += [TensorType(shape, call.input(3 + i % 2).dtype) for i in range(extra)]
        return outs[:max(1, len(call.node.outputs))]

    def other_flops(self, call: Call, outs: list[TensorType]) -> int:
        """2 * |X|: the per-channel multiply and add once scale/sqrt(var) are folded"""
        return 2 * outs[0].size

    def evaluate(self, call: Call) -> list[np.ndarray]:
        x, scale, b, mean, var = (call.values[i] for i in range(5))
        eps = float(call.attr("epsilon"))
        rank = x.ndim
        if not self._training(call):
            y = ((x - _per_channel(mean, rank)) / np.sqrt(_per_channel(var, rank) + eps)
                 * _per_channel(scale, rank) + _per_channel(b, rank))
            return [y.astype(x.dtype)]
        if call.opset < 14:
            raise UnsupportedOpError(call.node, "the training form of BatchNormalization before "
                                                "opset 14 has no numpy reference")
        axes = (0,) + tuple(range(2, rank))
        batch_mean, batch_var = x.mean(axis=axes), x.var(axis=axes)
        y = ((x - _per_channel(batch_mean, rank)) / np.sqrt(_per_channel(batch_var, rank) + eps)
             * _per_channel(scale, rank) + _per_channel(b, rank))
        momentum = float(call.attr("momentum"))
        running_mean = mean * momentum + batch_mean * (1 - momentum)
        running_var = var * momentum + batch_var * (1 - momentum)
        return [y.astype(x.dtype), running_mean.astype(mean.dtype),
                running_var.astype(var.dtype)][:len(call.node.outputs)]


@register
class InstanceNormalization(OpDef):
    """Y = (X - mean) / sqrt(var + epsilon) * scale + B, statistics per sample and channel over
    the spatial axes; scale and B are (C)."""

    op_type = "InstanceNormalization"
    weight_inputs = (1, 2)
    attrs = {"epsilon": 1e-5}

    def infer(self, call: Call) -> list[TensorType]:
        c = _check_channels(call, "InstanceNormalization")
        _check_params(call, {1: "scale", 2: "B"}, (c,))
        return [call.input(0)]

    def other_flops(self, call: Call, outs: list[TensorType]) -> int:
        """6 * |X|"""
        # Per element: 1 add for the mean, subtract + square + add for the variance, then one
        # multiply and one add of the per-(sample, channel) affine scale/std, B - mean*scale/std.
        return 6 * outs[0].size

    def evaluate(self, call: Call) -> list[np.ndarray]:
        x, scale, b = call.values[0], call.values[1], call.values[2]
        axes = tuple(range(2, x.ndim))
        mean = x.mean(axis=axes, keepdims=True)
        var = x.var(axis=axes, keepdims=True)
        y = ((x - mean) / np.sqrt(var + float(call.attr("epsilon")))
             * _per_channel(scale, x.ndim) + _per_channel(b, x.ndim))
        return [y.astype(x.dtype)]


@register
class LayerNormalization(OpDef):
    """Y = (X - mean) / sqrt(var + epsilon) * Scale + B, statistics over the axes from ``axis``
    on. Optional outputs Mean and InvStdDev keep the reduced axes as 1, in the stash_type."""

    op_type = "LayerNormalization"
    weight_inputs = (1, 2)
    attrs = {"axis": -1, "epsilon": 1e-5, "stash_type": 1}

    def _axis(self, call: Call) -> int:
        x = call.shape(0)
        return normalize_axis(call, int(call.attr("axis")), len(x))

    def infer(self, call: Call) -> list[TensorType]:
        x = call.input(0)
        axis = self._axis(call)
        normalized = x.shape[axis:]
        for i, name in ((1, "Scale"), (2, "B")):
            if not call.has_input(i):
                continue
            p = call.shape(i)
            tail = normalized[len(normalized) - len(p):] if len(p) <= len(normalized) else None
            if tail is None or any(d not in (1, n) for d, n in zip(p, tail)):
                raise call.error(f"{name} (input {i}) of shape {shape_str(p)} does not "
                                 f"broadcast to the normalized shape {shape_str(normalized)} "
                                 f"(axis={axis})")
        stats = TensorType(x.shape[:axis] + (1,) * len(normalized),
                           from_onnx(int(call.attr("stash_type"))))
        return [x, stats, stats][:max(1, len(call.node.outputs))]

    def other_flops(self, call: Call, outs: list[TensorType]) -> int:
        """|X| * 7, or |X| * 6 without B"""
        # Per element: 1 add for the mean, subtract + square + add for the variance, a multiply
        # by the inverse std dev and one by Scale (Scale varies along the normalized axes, so it
        # cannot fold into a per-row factor), and the add of B when given.
        return outs[0].size * (7 if call.has_input(2) else 6)

    def evaluate(self, call: Call) -> list[np.ndarray]:
        x = call.values[0]
        axes = tuple(range(self._axis(call), x.ndim))
        stash = numpy_dtype(from_onnx(int(call.attr("stash_type"))))
        xs = x.astype(stash)
        mean = xs.mean(axis=axes, keepdims=True)
        inv_std = 1 / np.sqrt(xs.var(axis=axes, keepdims=True) + float(call.attr("epsilon")))
        y = (xs - mean) * inv_std * call.values[1]
        if call.has_input(2):
            y = y + call.values[2]
        return [y.astype(x.dtype), mean.astype(stash), inv_std.astype(stash)][
            :max(1, len(call.node.outputs))]
