"""Activations, softmax, and the inference identities (Dropout, Identity).

FLOPs per element, one convention for the whole family: every add, subtract, multiply, divide,
compare (max, min, select), negate, and every math-library function (exp, log, tanh, erf)
counts 1. Each class docstring says what its constant is made of.
"""

from __future__ import annotations

import math
from typing import Callable, ClassVar

import numpy as np

from ..dtypes import numpy_dtype
from ..errors import UnsupportedOpError
from .base import Call, OpDef, TensorType, normalize_axis, register, shape_str
from .elementwise import Unary, same_dtype, unidirectional

_FLT_MAX = float(np.finfo(np.float32).max)
_erf = np.vectorize(math.erf, otypes=[np.float64])


@register
class Relu(Unary):
    """Y = max(X, 0). 1 FLOP: a max."""

    op_type = "Relu"
    grad_from_output = True

    def compute(self, call: Call, x: np.ndarray) -> np.ndarray:
        return np.maximum(x, 0)


@register
class LeakyRelu(Unary):
    """Y = X if X >= 0 else alpha * X. 2 FLOPs: compare, multiply."""

    op_type = "LeakyRelu"
    grad_from_output = True
    attrs = {"alpha": 0.01}
    flops = 2

    def compute(self, call: Call, x: np.ndarray) -> np.ndarray:
        return np.where(x < 0, call.attr("alpha") * x, x)


@register
class PRelu(Unary):
    """Y = X if X >= 0 else slope * X; slope (a parameter) broadcasts unidirectionally to X.
    2 FLOPs: compare, multiply."""

    op_type = "PRelu"
    weight_inputs = (1,)
    flops = 2

    def infer(self, call: Call) -> list[TensorType]:
        unidirectional(call, call.shape(1), call.shape(0), "slope")
        same_dtype(call)
        return super().infer(call)

    def compute(self, call: Call, x: np.ndarray) -> np.ndarray:
        return np.where(x < 0, call.values[1] * x, x)


@register
class Sigmoid(Unary):
    """Y = 1 / (1 + exp(-X)). 4 FLOPs: negate, exp, add, divide."""

    op_type = "Sigmoid"
    grad_from_output = True
    flops = 4

    def compute(self, call: Call, x: np.ndarray) -> np.ndarray:
        return 1 / (1 + np.exp(-x))


@register
class Tanh(Unary):
    """Y = tanh(X). 1 FLOP: a tanh."""

    op_type = "Tanh"
    grad_from_output = True
    fn = np.tanh


@register
class HardSigmoid(Unary):
    """Y = max(0, min(1, alpha * X + beta)). 4 FLOPs: multiply, add, min, max."""

    op_type = "HardSigmoid"
    attrs = {"alpha": 0.2, "beta": 0.5}
    flops = 4

    def compute(self, call: Call, x: np.ndarray) -> np.ndarray:
        return np.maximum(0, np.minimum(1, call.attr("alpha") * x + call.attr("beta")))


@register
class HardSwish(Unary):
    """Y = X * HardSigmoid(X) with alpha = 1/6, beta = 0.5. 5 FLOPs: HardSigmoid's 4, multiply."""

    op_type = "HardSwish"
    flops = 5

    def compute(self, call: Call, x: np.ndarray) -> np.ndarray:
        return x * np.maximum(0, np.minimum(1, x / 6 + 0.5))


@register
class Clip(Unary):
    """Y = min(max(X, min), max); where min > max every element becomes max.
    2 FLOPs: one compare per bound (before opset 11 an unset bound is +-FLT_MAX, still compared)."""

    op_type = "Clip"
    grad_from_output = True
    attrs = {"min": -_FLT_MAX, "max": _FLT_MAX}  # attributes before opset 11, optional inputs after
    attribute_inputs = (1, 2)
    flops = 2

    def infer(self, call: Call) -> list[TensorType]:
        for i, name in ((1, "min"), (2, "max")):
            if call.has_input(i) and call.input(i).size != 1:
                raise call.error(f"{name} must be a scalar, got shape {shape_str(call.shape(i))}")
        same_dtype(call)
        return super().infer(call)

    def compute(self, call: Call, x: np.ndarray) -> np.ndarray:
        if call.opset < 11:
            lo, hi = call.attr("min"), call.attr("max")
        else:  # an omitted input clips nothing on its side
            lo, hi = (call.values[i].reshape(()) if call.has_input(i) else None for i in (1, 2))
        if lo is not None:
            x = np.maximum(x, lo)
        if hi is not None:
            x = np.minimum(x, hi)
        return x


@register
class Erf(Unary):
    """Y = erf(X). 1 FLOP: an erf."""

    op_type = "Erf"

    def compute(self, call: Call, x: np.ndarray) -> np.ndarray:
        return _erf(x)


@register
class Gelu(Unary):
    """approximate='none': Y = X/2 * (1 + erf(X / sqrt 2)), 5 FLOPs: multiply, erf, add, 2
    multiplies. 'tanh': Y = X/2 * (1 + tanh(sqrt(2/pi) * (X + 0.044715 X^3))), 9 FLOPs: 2
    multiplies for X^3, multiply, add, multiply, tanh, add, 2 multiplies."""

    op_type = "Gelu"
    attrs = {"approximate": "none"}
    FLOPS = {"none": 5, "tanh": 9}

    def approximate(self, call: Call) -> str:
        mode = call.attr("approximate")
        mode = mode.decode() if isinstance(mode, bytes) else mode
        if mode not in self.FLOPS:
            raise call.error(f"approximate='{mode}' is not one of 'none', 'tanh'")
        return mode

    def infer(self, call: Call) -> list[TensorType]:
        self.approximate(call)
        return super().infer(call)

    def compute(self, call: Call, x: np.ndarray) -> np.ndarray:
        if self.approximate(call) == "tanh":
            return x / 2 * (1 + np.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x**3)))
        return x / 2 * (1 + _erf(x / math.sqrt(2)))

    def other_flops(self, call: Call, outs: list[TensorType]) -> int:
        """other_flops = (5 or 9) * |Y|"""
        return self.FLOPS[self.approximate(call)] * outs[0].size


class _Softmax(Unary):
    """Normalization along one axis. Before opset 13 the input is coerced to 2-D
    (prod(shape[:axis]), prod(shape[axis:])) and normalized along the second axis, with axis
    1 by default; from 13 along ``axis`` alone, -1 by default."""

    in_place = ()  # each output reads its whole row: not an element-wise op

    attrs = {"axis": -1}
    flops = 5
    normalize: ClassVar[Callable[[np.ndarray, int], np.ndarray]]  # (x, axis) -> Y

    def axis(self, call: Call) -> int:
        axis = call.attr("axis") if call.has_attr("axis") or call.opset >= 13 else 1
        return normalize_axis(call, axis, call.input(0).rank)

    def span(self, call: Call) -> int:
        """How many elements one normalization covers."""
        shape, axis = call.shape(0), self.axis(call)
        return math.prod(shape[axis:]) if call.opset < 13 else shape[axis]

    def infer(self, call: Call) -> list[TensorType]:
        self.axis(call)
        return super().infer(call)

    def compute(self, call: Call, x: np.ndarray) -> np.ndarray:
        if call.opset < 13:
            return self.normalize(x.reshape(-1, self.span(call)), 1).reshape(x.shape)
        return self.normalize(x, self.axis(call))


@register
class Softmax(_Softmax):
    """Y = exp(X - max) / sum(exp(X - max)). 5 FLOPs: compare (max), subtract, exp, add (sum),
    divide."""

    op_type = "Softmax"

    @staticmethod
    def normalize(x: np.ndarray, axis: int) -> np.ndarray:
        e = np.exp(x - x.max(axis, keepdims=True))
        return e / e.sum(axis, keepdims=True)


@register
class LogSoftmax(_Softmax):
    """Y = (X - max) - log(sum(exp(X - max))). 5 FLOPs per element: compare (max), subtract,
    exp, add (sum), subtract; and one log per normalized row."""

    op_type = "LogSoftmax"

    @staticmethod
    def normalize(x: np.ndarray, axis: int) -> np.ndarray:
        shifted = x - x.max(axis, keepdims=True)
        return shifted - np.log(np.exp(shifted).sum(axis, keepdims=True))

    def other_flops(self, call: Call, outs: list[TensorType]) -> int:
        """other_flops = 5 * |Y| + |Y| / span (one log per row)"""
        return 5 * outs[0].size + outs[0].size // self.span(call)


@register
class Dropout(OpDef):
    """Inference: Y = X, and the optional mask keeps everything (all true, as opset 12 defines
    it; earlier opsets leave its contents open). 0 FLOPs (data movement)."""

    op_type = "Dropout"
    attrs = {"ratio": 0.5}  # from opset 12 an optional input, with the same default
    attribute_inputs = (1, 2)  # ratio, training_mode
    is_view = True

    def infer(self, call: Call) -> list[TensorType]:
        x = call.input(0)
        outs = [TensorType(x.shape, x.dtype)]
        if len(call.node.outputs) > 1:  # the mask: bool from opset 10, X's type before
            outs.append(TensorType(x.shape, "bool" if call.opset >= 10 else x.dtype))
        return outs

    def evaluate(self, call: Call) -> list[np.ndarray]:
        if call.opset >= 12 and call.has_input(2) and bool(call.values[2]):
            ratio = float(call.values[1]) if call.has_input(1) else self.attrs["ratio"]
            if ratio:
                raise UnsupportedOpError(call.node, f"training_mode drops at random (ratio "
                                                    f"{ratio}); it cannot be folded")
        x = call.values[0]
        return [x] + [np.ones(t.shape, numpy_dtype(t.dtype)) for t in self.infer(call)[1:]]


@register
class Identity(Unary):
    """Y = X. 0 FLOPs (data movement)."""

    op_type = "Identity"
    fn = np.asarray
    flops = 0
    is_view = True
