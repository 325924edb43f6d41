"""The op registry: one module per family, one class per op type.

Importing this package registers every op. ``lookup(node)`` finds the class for a node.
"""

from . import activation, conv, elementwise, linear, norm, pool, reduce, shape  # noqa: F401
from .base import REGISTRY, Call, OpDef, TensorType, lookup, register

__all__ = ["REGISTRY", "Call", "OpDef", "TensorType", "lookup", "register"]
