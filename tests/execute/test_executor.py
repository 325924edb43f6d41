"""The executor: the arena is the only activation storage, a run allocates (almost) nothing,
runs repeat, thread counts agree, and bad input is one clear error."""

from __future__ import annotations

import numpy as np
import pytest

import cnngraph
from cnngraph.errors import CnnGraphError, InputShapeError, NodeError, UnsupportedOpError
from cnngraph.ir import Graph, Node, TensorInfo

from .nets import allocated_by_run, mixed_weighted

X = np.random.default_rng(5).standard_normal((2, 3, 20, 20)).astype(np.float32)


@pytest.fixture(scope="module")
def compiled():
    return cnngraph.compile(mixed_weighted(), batch=2)


def test_matches_the_reference_interpreter(compiled):
    got = compiled.run({"x": X})
    want = cnngraph.run_reference(mixed_weighted(), {"x": X})
    assert got.keys() == want.keys()
    for k in want:
        np.testing.assert_allclose(got[k], want[k], rtol=1e-4, atol=1e-5)


def test_every_activation_is_a_view_of_the_one_arena(compiled):
    plan = compiled.plan
    assert compiled.arena.nbytes == plan.arena_bytes == compiled.arena_bytes
    locations = plan.locations()
    assert set(compiled.tensors) == set(locations)
    base = compiled.arena.ctypes.data
    for name, view in compiled.tensors.items():
        assert view.base is compiled.arena, name
        offset, nbytes = locations[name]
        assert view.ctypes.data - base == offset and view.nbytes == nbytes, name
        assert offset + nbytes <= compiled.arena_bytes
    # the outputs a run returns are copies, not the arena's bytes
    out = compiled.run({"x": X})
    for v in out.values():
        assert not np.may_share_memory(v, compiled.arena)


def test_a_run_allocates_no_activation_memory(compiled):
    """What a run allocates besides the arena (measured): numpy's small iterator buffers and
    Python objects, far below any activation, and nothing left behind."""
    compiled.bind({"x": X})
    current, peak = allocated_by_run(compiled)
    smallest_big = max(v.nbytes for v in compiled.tensors.values())
    assert peak < 64 * 1024 < smallest_big * 4
    assert current < 4 * 1024


def test_runs_repeat_and_depend_on_the_input(compiled):
    a = compiled.run({"x": X})
    b = compiled.run({"x": X[::-1].copy()})
    c = compiled.run({"x": X})
    for k in a:
        np.testing.assert_array_equal(a[k], c[k])
        assert not np.array_equal(a[k], b[k])


def test_thread_counts_agree():
    g = mixed_weighted()
    one = cnngraph.compile(g, batch=2, threads=1).run({"x": X})
    two = cnngraph.compile(g, batch=2, threads=2).run({"x": X})
    for k in one:
        np.testing.assert_allclose(one[k], two[k], rtol=1e-5, atol=1e-6)


def test_run_compiles_for_the_inputs_batch():
    out = cnngraph.run(mixed_weighted(), {"x": X[:1]})
    assert next(iter(out.values())).shape == (1, 5)
    out = cnngraph.run(mixed_weighted(), {"x": np.concatenate([X, X])})
    assert next(iter(out.values())).shape == (4, 5)


def test_compiled_graph_is_planned_as_run(compiled):
    assert list(compiled.plan.schedule.names) == [
        n for n in compiled.plan.schedule.names if n in compiled.graph.nodes]
    assert {n.op_type for n in compiled.graph.nodes.values()} >= {"FusedConv"}
    assert set(compiled.kernels.values()) <= {"numpy", "native"}


def test_convs_run_native_when_it_is_built(compiled):
    """The native kernels are found whenever the extension is built (a failed import would
    otherwise pass every test on the numpy path, only slower)."""
    from cnngraph._native import native

    try:
        native("conv")
    except ImportError:
        pytest.skip("the native extension is not built")
    convs = [n for n, node in compiled.graph.nodes.items() if node.op_type == "FusedConv"]
    assert convs and all(compiled.kernels[n] == "native" for n in convs)


# -- bad input --------------------------------------------------------------------------------
@pytest.mark.parametrize("inputs,match", [
    ({"x": X[:, :, :10]}, r"input 'x' has shape \(2, 3, 10, 20\); the model was compiled "
                          r"for \(2, 3, 20, 20\)"),
    ({"x": X.astype(np.int64)}, "input 'x' is int64; the model takes float32"),
    ({}, "input 'x' .* is not given"),
    ({"x": X, "y": X}, "inputs name 'y', which the model does not have"),
])
def test_bad_inputs(compiled, inputs, match):
    with pytest.raises(InputShapeError, match=match):
        compiled.run(inputs)


def test_float64_input_is_accepted(compiled):
    out = compiled.run({"x": X.astype(np.float64)})
    ref = compiled.run({"x": X})
    for k in out:
        np.testing.assert_array_equal(out[k], ref[k])


def test_structure_only_model_says_so():
    with pytest.raises(NodeError, match="has no value: the model is structure only .* "
                                        "cnngraph export MODEL --weights random"):
        cnngraph.compile(cnngraph.load("lenet5"))


def test_unknown_op_is_an_error():
    g = Graph("t")
    g.add_input(TensorInfo("x", "float32", (1, 2)))
    g.add_node(Node("n", "Mystery", ("x",), ("y",)))
    g.outputs.append("y")
    with pytest.raises(UnsupportedOpError, match="node 'n' \\(Mystery\\)"):
        cnngraph.compile(g.freeze())


def test_float16_models_are_refused():
    g = Graph("t")
    g.add_input(TensorInfo("x", "float16", (1, 2)))
    g.add_node(Node("n", "Relu", ("x",), ("y",)))
    g.outputs.append("y")
    with pytest.raises(CnnGraphError, match="float16; the executor runs float32"):
        cnngraph.compile(g.freeze())
