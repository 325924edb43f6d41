"""Gemm and MatMul: shapes vs onnx.shape_inference, values vs onnx's reference evaluator, MACs
and FLOPs from the formulas, and the errors."""

import numpy as np
import pytest

from cnngraph.errors import ShapeError
from cnngraph.ops import TensorType
from tests.util import cost, evaluate, infer, onnx_infer, onnx_run

M, K, N = 3, 5, 7  # odd and distinct, so a swapped dim shows


def f32(shape):
    return TensorType(shape, "float32")


def rand(shape, seed=0, dtype=np.float32):
    return np.random.default_rng(seed).uniform(-1, 1, shape).astype(dtype)


def gemm_operands(trans_a, trans_b):
    a = (K, M) if trans_a else (M, K)
    b = (N, K) if trans_b else (K, N)
    return a, b


# -- Gemm -------------------------------------------------------------------------------------
@pytest.mark.parametrize("opset", [7, 9, 11, 13, 18])
@pytest.mark.parametrize("trans_a", [0, 1])
@pytest.mark.parametrize("trans_b", [0, 1])
@pytest.mark.parametrize("c", [(N,), (1, N), (M, 1), (M, N), (), (1,)])
def test_gemm_shapes_match_onnx(trans_a, trans_b, c, opset):
    a, b = gemm_operands(trans_a, trans_b)
    attrs = {"transA": trans_a, "transB": trans_b}
    inputs = [f32(a), f32(b), f32(c)]
    assert infer("Gemm", inputs, attrs, opset) == [(M, N)]
    assert onnx_infer("Gemm", inputs, attrs, opset) == [(M, N)]


@pytest.mark.parametrize("trans_a", [0, 1])
@pytest.mark.parametrize("trans_b", [0, 1])
@pytest.mark.parametrize("alpha, beta", [(1.0, 1.0), (0.5, 2.0), (2.0, 0.0)])
@pytest.mark.parametrize("c", [(N,), (M, 1), (M, N), None])
def test_gemm_values_match_onnx(trans_a, trans_b, alpha, beta, c):
    a, b = gemm_operands(trans_a, trans_b)
    inputs = [rand(a, 1), rand(b, 2)] + ([] if c is None else [rand(c, 3)])
    attrs = {"transA": trans_a, "transB": trans_b, "alpha": alpha, "beta": beta}
    (ours,) = evaluate("Gemm", inputs, attrs)
    assert ours.shape == (M, N) and ours.dtype == np.float32
    np.testing.assert_allclose(ours, onnx_run("Gemm", inputs, attrs)[0], rtol=1e-5, atol=1e-6)


def test_gemm_hand_computed():
    a = np.float32([[1, 2], [3, 4]])  # (2, 2)
    b = np.float32([[1, 0, 1], [0, 1, 1]])  # (2, 3)
    c = np.float32([10, 20, 30])  # (3,)
    np.testing.assert_array_equal(evaluate("Gemm", [a, b, c])[0], [[11, 22, 33], [13, 24, 37]])
    # transA: A.T = [[1, 3], [2, 4]]; alpha 2, beta 0.5
    np.testing.assert_array_equal(
        evaluate("Gemm", [a, b, c], {"transA": 1, "alpha": 2.0, "beta": 0.5})[0],
        [[7, 16, 23], [9, 18, 27]])
    ints = evaluate("Gemm", [a.astype(np.int32), b.astype(np.int32), c.astype(np.int32)])[0]
    assert ints.dtype == np.int32
    np.testing.assert_array_equal(ints, [[11, 22, 33], [13, 24, 37]])


@pytest.mark.parametrize("trans_a", [0, 1])
@pytest.mark.parametrize("trans_b", [0, 1])
def test_gemm_costs(trans_a, trans_b):
    a, b = gemm_operands(trans_a, trans_b)
    t = {"transA": trans_a, "transB": trans_b}
    macs = M * K * N
    assert cost("Gemm", [f32(a), f32(b), f32((N,))], t) == (macs, M * N)  # bias adds
    assert cost("Gemm", [f32(a), f32(b)], t, opset=11) == (macs, 0)
    assert cost("Gemm", [f32(a), f32(b)], {**t, "alpha": 0.5}, opset=11) == (macs, M * N)
    # beta scales C (N values) before it broadcasts; alpha scales every product
    assert cost("Gemm", [f32(a), f32(b), f32((N,))], {**t, "alpha": 2.0, "beta": 0.5}) == (
        macs, M * N + M * N + N)
    assert cost("Gemm", [f32(a), f32(b), f32((M, N))], {**t, "beta": 3.0}) == (
        macs, M * N + M * N)


def test_alexnet_fc_layers():
    """FC6 9216 -> 4096 and FC8 4096 -> 1000, as exported (B is (out, in), transB=1)."""
    for n_in, n_out in [(9216, 4096), (4096, 4096), (4096, 1000)]:
        a, b, c = f32((1, n_in)), f32((n_out, n_in)), f32((n_out,))
        assert infer("Gemm", [a, b, c], {"transB": 1}) == [(1, n_out)]
        assert cost("Gemm", [a, b, c], {"transB": 1}) == (n_in * n_out, n_out)
        assert cost("MatMul", [a, f32((n_in, n_out))]) == (n_in * n_out, 0)
    assert cost("Gemm", [f32((1, 9216)), f32((4096, 9216)), f32((4096,))], {"transB": 1})[0] \
        == 37_748_736
    # a batch of 8 costs 8 times the MACs
    assert cost("Gemm", [f32((8, 9216)), f32((4096, 9216)), f32((4096,))], {"transB": 1}) == (
        8 * 37_748_736, 8 * 4096)


def test_gemm_c_is_optional_from_opset_11():
    a, b = f32((M, K)), f32((K, N))
    assert infer("Gemm", [a, b], opset=11) == [(M, N)] == onnx_infer("Gemm", [a, b], opset=11)
    with pytest.raises(ShapeError, match="C is required before opset 11"):
        infer("Gemm", [a, b], opset=9)


@pytest.mark.parametrize("trans_a, trans_b, a, b, k_a, k_b", [
    (0, 0, (3, 5), (4, 7), 5, 4),
    (1, 0, (3, 5), (5, 7), 3, 5),  # transA makes A (5, 3): K = 3
    (0, 1, (3, 5), (7, 4), 5, 4),
    (1, 1, (5, 3), (7, 4), 5, 4),
])
def test_gemm_inner_mismatch_names_shapes_and_dims(trans_a, trans_b, a, b, k_a, k_b):
    sa, sb = (r"\(" + ", ".join(map(str, s)) + r"\)" for s in (a, b))
    pattern = (rf"inner dimensions differ: A {sa} \(transA={trans_a}\) gives K={k_a}, "
               rf"B {sb} \(transB={trans_b}\) gives K={k_b}")
    with pytest.raises(ShapeError, match=pattern):
        infer("Gemm", [f32(a), f32(b)], {"transA": trans_a, "transB": trans_b})


def test_gemm_bad_c_and_ranks():
    a, b = f32((M, K)), f32((K, N))
    with pytest.raises(ShapeError, match=r"C \(3\) does not broadcast to \(3, 7\)"):
        infer("Gemm", [a, b, f32((3,))])
    with pytest.raises(ShapeError, match=r"C \(2, 3, 7\) does not broadcast to \(3, 7\)"):
        infer("Gemm", [a, b, f32((2, 3, 7))])
    with pytest.raises(ShapeError, match=r"A \(1, 3, 5\) and B \(5, 7\) must both be 2-D"):
        infer("Gemm", [f32((1, 3, 5)), b])
    with pytest.raises(ShapeError, match="input 0 is float32 but input 2 is float16"):
        infer("Gemm", [a, b, TensorType((N,), "float16")])


# -- MatMul -----------------------------------------------------------------------------------
# (A, B, Y, MACs = prod(batch) * M * K * N), each worked out by hand
MATMUL = [
    ((3, 5), (5, 7), (3, 7), 3 * 5 * 7),
    ((5,), (5,), (), 5),  # dot product: M = N = 1
    ((5,), (5, 7), (7,), 5 * 7),  # 1-D A is a row, its axis dropped
    ((3, 5), (5,), (3,), 3 * 5),  # 1-D B is a column, its axis dropped
    ((5,), (2, 5, 7), (2, 7), 2 * 5 * 7),
    ((2, 3, 5), (5,), (2, 3), 2 * 3 * 5),
    ((2, 3, 5), (2, 5, 7), (2, 3, 7), 2 * 3 * 5 * 7),  # batched
    ((3, 5), (4, 5, 7), (4, 3, 7), 4 * 3 * 5 * 7),  # A broadcast over B's batch
    ((2, 1, 3, 5), (4, 5, 7), (2, 4, 3, 7), 2 * 4 * 3 * 5 * 7),  # batch dims broadcast
    ((1, 12, 9, 16), (1, 12, 16, 9), (1, 12, 9, 9), 12 * 9 * 16 * 9),  # attention scores
]


@pytest.mark.parametrize("opset", [7, 9, 13, 18])
@pytest.mark.parametrize("a, b, y, macs", MATMUL)
def test_matmul_shapes_match_onnx(a, b, y, macs, opset):
    assert infer("MatMul", [f32(a), f32(b)], opset=opset) == [y]
    assert onnx_infer("MatMul", [f32(a), f32(b)], opset=opset) == [y]


@pytest.mark.parametrize("a, b, y, macs", MATMUL)
def test_matmul_values_and_costs(a, b, y, macs):
    x, w = rand(a, 1), rand(b, 2)
    (ours,) = evaluate("MatMul", [x, w])
    assert ours.shape == y and ours.dtype == np.float32
    np.testing.assert_allclose(ours, onnx_run("MatMul", [x, w])[0], rtol=1e-5, atol=1e-6)
    assert cost("MatMul", [x, w]) == (macs, 0)


def test_matmul_hand_computed():
    a = np.float32([[1, 2], [3, 4]])  # (2, 2)
    np.testing.assert_array_equal(evaluate("MatMul", [a, np.float32([1, 1])])[0], [3, 7])  # (2,)
    np.testing.assert_array_equal(evaluate("MatMul", [np.float32([1, 1]), a])[0], [4, 6])  # (2,)
    batch = np.stack([np.eye(2, dtype=np.float32), 2 * np.eye(2, dtype=np.float32)])  # (2, 2, 2)
    np.testing.assert_array_equal(evaluate("MatMul", [batch, a])[0], [a, 2 * a])  # (2, 2, 2)
    ints = evaluate("MatMul", [a.astype(np.int64), a.astype(np.int64)])[0]
    assert ints.dtype == np.int64
    np.testing.assert_array_equal(ints, [[7, 10], [15, 22]])


@pytest.mark.parametrize("a, b, ka, kb, axis", [
    ((2, 3), (4, 5), 3, 4, "second-to-last"),
    ((3,), (4, 5), 3, 4, "second-to-last"),
    ((2, 3), (4,), 3, 4, "only"),
    ((6, 2, 3), (6, 2, 3), 3, 2, "second-to-last"),
])
def test_matmul_inner_mismatch_names_shapes_and_dims(a, b, ka, kb, axis):
    sa, sb = (r"\(" + ", ".join(map(str, s)) + r"\)" for s in (a, b))
    pattern = (rf"inner dimensions differ: A {sa} has {ka} on its last axis, "
               rf"B {sb} has {kb} on its {axis} axis")
    with pytest.raises(ShapeError, match=pattern):
        infer("MatMul", [f32(a), f32(b)])
    with pytest.raises(Exception, match="[Ii]ncompatible dimensions"):
        onnx_infer("MatMul", [f32(a), f32(b)])


def test_matmul_batch_and_rank_errors():
    with pytest.raises(ShapeError, match=r"cannot broadcast \(2\) with \(3\)"):
        infer("MatMul", [f32((2, 3, 4)), f32((3, 4, 5))])
    with pytest.raises(ShapeError, match="rank >= 1, not scalars"):
        infer("MatMul", [f32(()), f32((3,))])
    with pytest.raises(ShapeError, match="input 0 is float32 but input 1 is float64"):
        infer("MatMul", [f32((2, 3)), TensorType((3, 4), "float64")])
