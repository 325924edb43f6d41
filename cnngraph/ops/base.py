"""OpDef, the registry, and what an op sees of one node (``Call``).

One op type is one subclass of OpDef, registered with ``@register``. It declares its attribute
defaults once and implements:

- ``infer(call) -> list[TensorType]``   the shape rule (one TensorType per output)
- ``evaluate(call) -> list[ndarray]``   a plain numpy reference (constant folding, tests)
- ``macs(call, outs) -> int``           multiply-accumulates (conv, dense, matmul only)
- ``other_flops(call, outs) -> int``    every other arithmetic op (bias, activation, pooling...)

Ops are stateless: every method gets a ``Call`` holding the node, its input types, the
input values known at compile time and the opset.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from typing import Any, ClassVar, NamedTuple, Optional, Sequence

import numpy as np

from ..errors import ShapeError, UnsupportedOpError
from ..ir import Node

REGISTRY: dict[str, type["OpDef"]] = {}

_REQUIRED = object()  # attribute default meaning "the node must set it"


class TensorType(NamedTuple):
    """A static shape and element type. (A NamedTuple: immutable, and cheap to make one per
    tensor of a 100k-node graph.)"""

    shape: tuple[int, ...]
    dtype: str

    @property
    def size(self) -> int:
        return math.prod(self.shape)

    @property
    def rank(self) -> int:
        return len(self.shape)

    def __str__(self) -> str:
        return "x".join(map(str, self.shape)) if self.shape else "scalar"


def shape_str(shape: Sequence[int]) -> str:
    return "(" + ", ".join(map(str, shape)) + ")"


class LazyValues(Sequence):
    """Input values resolved on first access, so a weight's bytes are decoded only when an op
    actually reads them (shape rules of Conv, Gemm... never do)."""

    __slots__ = ("_names", "_resolve")

    def __init__(self, names: Sequence[str], resolve):
        self._names = names
        self._resolve = resolve

    def __getitem__(self, i):
        name = self._names[i]
        return self._resolve(name) if name else None

    def __len__(self) -> int:
        return len(self._names)


@dataclass
class Call:
    """One node as an op sees it. ``inputs[i]`` is None for an omitted optional input;
    ``values[i]`` is the input's value when known at compile time (constants, shape chains)."""

    node: Node
    op: "OpDef"
    inputs: list[Optional[TensorType]]
    values: Sequence[Optional[np.ndarray]]
    opset: int

    # -- attributes ---------------------------------------------------------------------------
    def attr(self, name: str) -> Any:
        if name in self.node.attrs:
            return self.node.attrs[name]
        default = self.op.attrs.get(name, _REQUIRED)
        if default is _REQUIRED:
            raise self.error(f"attribute '{name}' is required")
        return default

    def has_attr(self, name: str) -> bool:
        return name in self.node.attrs

    # -- inputs ---------------------------------------------------------------------------------
    def has_input(self, i: int) -> bool:
        return i < len(self.inputs) and self.inputs[i] is not None

    def input(self, i: int) -> TensorType:
        t = self.inputs[i] if i < len(self.inputs) else None
        if t is None:
            raise self.error(f"input {i} is required")
        return t

    def shape(self, i: int) -> tuple[int, ...]:
        t = self.inputs[i] if i < len(self.inputs) else None  # input(i), inlined: a hot path
        if t is None:
            raise self.error(f"input {i} is required")
        return t.shape

    def value(self, i: int, what: str = "") -> np.ndarray:
        """The compile-time value of input i; an error if it is only known at run time."""
        self.input(i)
        v = self.values[i] if i < len(self.values) else None
        if v is None:
            what = what or f"input {i}"
            raise self.error(
                f"{what} ('{self.node.inputs[i]}') must be a compile-time constant for a "
                f"static shape")
        return v

    def attr_or_input(self, name: str, index: int, since: int) -> Optional[list]:
        """Attributes that later opsets moved to inputs (axes, pads, split, scales...).

        Returns a list of ints/floats, or None when neither is given.
        """
        if self.opset >= since or not self.has_attr(name):
            if self.has_input(index):
                return self.value(index, name).tolist()
            if self.has_attr(name):  # some producers keep the attribute anyway
                return list(self.node.attrs[name])
            return None
        return list(self.node.attrs[name])

    @property
    def in_shapes(self) -> list:
        return [t.shape if t is not None else None for t in self.inputs]

    def error(self, message: str) -> ShapeError:
        shapes = ", ".join(shape_str(s) if s is not None else "-" for s in self.in_shapes)
        return ShapeError(self.node, f"{message}; input shapes [{shapes}]")


class OpDef:
    """Base of every op. Subclasses set ``op_type`` and override what they need."""

    op_type: ClassVar[str] = ""
    attrs: ClassVar[dict] = {}
    # Inputs whose constants are parameters that training does not update (BN running stats).
    non_trainable_inputs: ClassVar[tuple[int, ...]] = ()
    # Inputs that act as operator settings (shapes, axes, scales, pads, clip bounds): never
    # parameters, even when they are float constants.
    attribute_inputs: ClassVar[tuple[int, ...]] = ()
    # Inputs that hold weights (Conv's W and B, Gemm's B and C...): a constant there is a
    # parameter whatever its size, so a one-unit dense layer's bias counts. Elsewhere a
    # single-element constant (x / 255) is an operator constant, not a parameter.
    weight_inputs: ClassVar[tuple[int, ...]] = ()
    # Output is only a function of input *shapes* (Shape, Size): constant even on activations.
    shape_only: ClassVar[bool] = False
    # Output may not be folded even when all inputs are constant (random ops).
    never_fold: ClassVar[bool] = False
    # Output is a view of input 0 (same bytes, different shape): Reshape, Flatten, Squeeze...
    is_view: ClassVar[bool] = False
    # Output holds exactly input 0's elements, reordered or converted (Transpose, Cast): a
    # weight seen through it, like one seen through a view, is the same parameter.
    reorders_only: ClassVar[bool] = False
    # Inputs the output may be written over (element-wise ops): the planner reuses such an
    # input's bytes when the sizes match and the input dies at this node.
    in_place: ClassVar[tuple[int, ...]] = ()
    # The gradient needs none of the inputs' values, only the output's (ReLU, sigmoid, tanh,
    # clip) or nothing (Add, Sub): training may then write the output over an input.
    grad_from_output: ClassVar[bool] = False

    def infer(self, call: Call) -> list[TensorType]:
        raise NotImplementedError

    def evaluate(self, call: Call) -> list[np.ndarray]:
        raise UnsupportedOpError(call.node, "has no numpy reference to fold constants with")

    def macs(self, call: Call, outs: list[TensorType]) -> int:
        return 0

    def other_flops(self, call: Call, outs: list[TensorType]) -> int:
        return 0


def register(cls: type[OpDef]) -> type[OpDef]:
    """Class decorator: put one op type in the registry."""
    if not cls.op_type:
        raise TypeError(f"{cls.__name__} has no op_type")
    if cls.op_type in REGISTRY:
        raise TypeError(f"op type {cls.op_type} registered twice")
    REGISTRY[cls.op_type] = cls
    return cls


_INSTANCES: dict[str, OpDef] = {}


def lookup(node: Node) -> OpDef:
    """The op for a node, or UnsupportedOpError naming it."""
    if node.domain not in ("", "ai.onnx"):
        raise UnsupportedOpError(
            node, f"op type '{node.op_type}' in domain '{node.domain}' is not supported "
            f"(use --allow-unknown to list it as uncounted)")
    op = _INSTANCES.get(node.op_type)
    if op is None:
        cls = REGISTRY.get(node.op_type)
        if cls is None:
            raise UnsupportedOpError(
                node, f"op type '{node.op_type}' is not supported "
                f"(use --allow-unknown to list it as uncounted)")
        op = _INSTANCES[node.op_type] = cls()
    return op


@functools.lru_cache(maxsize=None)
def exists_in(op_type: str, opset: int) -> bool:
    """Whether onnx's own schemas define an op type at an opset (ops onnx does not know pass)."""
    import onnx.defs

    try:
        onnx.defs.get_schema(op_type, opset, "")
        return True
    except onnx.defs.SchemaError:
        return not onnx.defs.has(op_type, "")


def check_opset(node: Node, opset: int) -> None:
    """An op used in an opset older than the op itself is an error, not a silent guess."""
    if not exists_in(node.op_type, opset):
        raise UnsupportedOpError(
            node, f"op type '{node.op_type}' does not exist in opset {opset}")


def broadcast(call: Call, shapes: Sequence[tuple[int, ...]]) -> tuple[int, ...]:
    """Numpy (multidirectional) broadcasting, or an error naming the shapes."""
    rank = max((len(s) for s in shapes), default=0)
    out = []
    for axis in range(rank):
        dims = {s[axis - rank + len(s)] for s in shapes if axis - rank + len(s) >= 0}
        dims.discard(1)
        if len(dims) > 1:
            raise call.error(
                "cannot broadcast " + " with ".join(shape_str(s) for s in shapes))
        out.append(dims.pop() if dims else 1)
    return tuple(out)


def normalize_axis(call: Call, axis: int, rank: int) -> int:
    if not -rank <= axis < rank:
        raise call.error(f"axis {axis} is out of range for rank {rank}")
    return axis % rank
