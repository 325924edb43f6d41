"""Dense layers: Gemm (fully connected, with bias) and MatMul (numpy matmul semantics)."""

from __future__ import annotations

import numpy as np

from .base import Call, OpDef, TensorType, broadcast, register, shape_str
from .elementwise import same_dtype, unidirectional


@register
class Gemm(OpDef):
    """Y = alpha * A' @ B' + beta * C, A' = A.T if transA, B' = B.T if transB; A' is (M, K),
    B' is (K, N), C broadcasts unidirectionally to (M, N) and is optional from opset 11."""

    op_type = "Gemm"
    weight_inputs = (0, 1, 2)
    attrs = {"alpha": 1.0, "beta": 1.0, "transA": 0, "transB": 0}

    def dims(self, call: Call) -> tuple[int, int, int]:
        """(M, K, N)"""
        a, b = call.shape(0), call.shape(1)
        if len(a) != 2 or len(b) != 2:
            raise call.error(f"A {shape_str(a)} and B {shape_str(b)} must both be 2-D")
        ta, tb = int(call.attr("transA")), int(call.attr("transB"))
        m, k = a[::-1] if ta else a
        kb, n = b[::-1] if tb else b
        if k != kb:
            raise call.error(
                f"inner dimensions differ: A {shape_str(a)} (transA={ta}) gives K={k}, "
                f"B {shape_str(b)} (transB={tb}) gives K={kb}")
        return m, k, n

    def infer(self, call: Call) -> list[TensorType]:
        m, _, n = self.dims(call)
        if call.has_input(2):
            unidirectional(call, call.shape(2), (m, n), "C")
        elif call.opset < 11:
            raise call.error("C is required before opset 11")
        return [TensorType((m, n), same_dtype(call))]

    def macs(self, call: Call, outs: list[TensorType]) -> int:
        """macs = M * K * N"""
        m, k, n = self.dims(call)
        return m * k * n

    def other_flops(self, call: Call, outs: list[TensorType]) -> int:
        """other_flops = M*N bias adds (with C) + M*N if alpha != 1 + |C| if beta != 1 (with C)"""
        # Scaling by 1 is never done, so it is not counted; beta scales C before it broadcasts.
        flops = outs[0].size if call.attr("alpha") != 1 else 0
        if call.has_input(2):
            flops += outs[0].size + (call.input(2).size if call.attr("beta") != 1 else 0)
        return flops

    def evaluate(self, call: Call) -> list[np.ndarray]:
        a, b = call.values[0], call.values[1]
        a = a.T if call.attr("transA") else a
        b = b.T if call.attr("transB") else b
        y = call.attr("alpha") * (a @ b)
        if call.has_input(2):
            y = y + call.attr("beta") * call.values[2]
        return [y.astype(a.dtype, copy=False)]


@register
class MatMul(OpDef):
    """Y = A @ B as numpy.matmul: a 1-D A is a row (its axis dropped from Y), a 1-D B a column;
    dims before the last two are batch dims and broadcast."""

    op_type = "MatMul"
    weight_inputs = (0, 1)

    def dims(self, call: Call) -> tuple[tuple[int, ...], int, tuple[int, ...]]:
        """(Y's shape, K)"""
        a, b = call.shape(0), call.shape(1)
        if not a or not b:
            raise call.error("MatMul operands must have rank >= 1, not scalars")
        a2 = (1,) + a if len(a) == 1 else a
        b2 = b + (1,) if len(b) == 1 else b
        if a2[-1] != b2[-2]:
            raise call.error(
                f"inner dimensions differ: A {shape_str(a)} has {a2[-1]} on its last axis, "
                f"B {shape_str(b)} has {b2[-2]} on its "
                f"{'only' if len(b) == 1 else 'second-to-last'} axis")
        batch = broadcast(call, [a2[:-2], b2[:-2]])
        m = a[-2:-1]  # () when A is 1-D
        n = b[-1:] if len(b) > 1 else ()
        return batch + m + n, a2[-1]

    def infer(self, call: Call) -> list[TensorType]:
        return [TensorType(self.dims(call)[0], same_dtype(call))]

    def macs(self, call: Call, outs: list[TensorType]) -> int:
        """macs = prod(batch dims) * M * K * N (= |Y| * K)"""
        return outs[0].size * self.dims(call)[1]

    def evaluate(self, call: Call) -> list[np.ndarray]:
        a, b = call.values[0], call.values[1]
        return [np.asarray(np.matmul(a, b)).astype(a.dtype, copy=False)]
