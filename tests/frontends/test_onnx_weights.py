"""Lean ONNX reading (frontends/onnx_weights.py, csrc/onnx_wire.pyx) against onnx.load: the
same graph, and every constant's values equal to what onnx's numpy_helper reads."""

from __future__ import annotations

import os
import tracemalloc

import numpy as np
import onnx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from onnx import TensorProto, helper, numpy_helper

import cnngraph
from cnngraph.errors import LoadError
from cnngraph.frontends import LIGHT_MODELS, light_model_path, onnx_weights
from cnngraph.frontends.onnx import load_onnx

DATA = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "data")
TORCH_FILES = sorted(f for f in os.listdir(DATA) if f.endswith(".onnx"))


def assert_same_graph(path: str) -> None:
    plain, lean = load_onnx(path, lean=False), load_onnx(path, lean=True)
    assert [(n.name, n.op_type, n.inputs, n.outputs) for n in plain.nodes.values()] == \
        [(n.name, n.op_type, n.inputs, n.outputs) for n in lean.nodes.values()]
    assert plain.constants.keys() == lean.constants.keys()
    model = onnx.load(path, load_external_data=False)
    for init in model.graph.initializer:
        want = numpy_helper.to_array(init)
        got = lean.constants[init.name].value()
        assert got.dtype == want.dtype and got.shape == want.shape, init.name
        np.testing.assert_array_equal(got, want, err_msg=init.name)


@pytest.mark.parametrize("name", TORCH_FILES)
def test_torch_exports_read_lean_equal_onnx(name):
    assert_same_graph(os.path.join(DATA, name))


@pytest.mark.parametrize("name", LIGHT_MODELS)
def test_light_models_read_lean_equal_onnx(name):
    assert_same_graph(light_model_path(name))


def test_a_zoo_export_with_weights(tmp_path):
    path = str(tmp_path / "resnet18.onnx")
    cnngraph.export(cnngraph.load("resnet18"), path, weights="random", seed=1)
    assert_same_graph(path)
    _, payloads = onnx_weights.load_lean(path)
    assert len(payloads) > 20  # the convs' weights were cut out, not parsed


# Initializers in every layout a file may hold: raw_data of each numeric type, the typed
# fields (packed float_data / double_data are cut; int64_data is varint-coded and stays), a
# segment, and sizes around INLINE_BYTES.
LAYOUTS = [("raw", np.float32), ("raw", np.float64), ("raw", np.int64), ("raw", np.int32),
           ("raw", np.float16), ("raw", np.uint8), ("field", np.float32),
           ("field", np.float64), ("field", np.int64), ("field", np.int32)]


def make_tensor(name: str, kind: str, dtype, n: int, seed: int) -> TensorProto:
    rng = np.random.default_rng(seed)
    a = (rng.standard_normal(n) * 100).astype(dtype)
    if kind == "raw":
        return numpy_helper.from_array(a, name)
    t = helper.make_tensor(name, helper.np_dtype_to_tensor_dtype(a.dtype), [n], a.tolist())
    assert not t.raw_data
    return t


@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.tuples(st.sampled_from(LAYOUTS), st.integers(0, 3000)), min_size=1,
                max_size=6),
       st.integers(0, 2**16))
def test_random_initializers_read_lean_equal_onnx(tmp_path_factory, monkeypatch_inline, inits,
                                                  seed):
    tensors = [make_tensor(f"w{i}", kind, dtype, n, seed + i)
               for i, ((kind, dtype), n) in enumerate(inits)]
    if len(tensors) > 1:  # a segmented tensor keeps its own layout
        tensors[0].segment.begin, tensors[0].segment.end = 0, tensors[0].dims[0]
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])
    graph = helper.make_graph([helper.make_node("Identity", ["x"], ["y"])], "g", [x],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])],
                              initializer=tensors)
    path = str(tmp_path_factory.mktemp("m") / "m.onnx")
    onnx.save(helper.make_model(graph), path)
    model, payloads = onnx_weights.load_lean(path)
    for t, parsed in zip(tensors, model.graph.initializer):
        if t.HasField("segment"):  # kept whole (numpy_helper cannot read segments either)
            assert t.name not in payloads and parsed == t
            continue
        if t.name in payloads:
            got = payloads[t.name].read(tuple(t.dims))
            assert t.HasField("raw_data") or t.float_data or t.double_data
        else:
            got = numpy_helper.to_array(parsed)
        want = numpy_helper.to_array(t)
        assert got.dtype == want.dtype
        np.testing.assert_array_equal(got, want)


@pytest.fixture
def monkeypatch_inline(monkeypatch):
    """A small inline limit, so both sides of it occur in a few thousand bytes."""
    monkeypatch.setattr(onnx_weights, "INLINE_BYTES", 64)


def big_model(path: str, n: int = 8 << 20) -> None:
    w = numpy_helper.from_array(np.arange(n, dtype=np.float32).reshape(n // 1024, 1024), "w")
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 1024])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, n // 1024])
    graph = helper.make_graph([helper.make_node("Gemm", ["x", "w"], ["y"], transB=1)], "big",
                              [x], [y], initializer=[w])
    onnx.save(helper.make_model(graph), path)


def test_loading_a_large_file_does_not_read_its_weights(tmp_path):
    path = str(tmp_path / "big.onnx")
    big_model(path)  # a 32 MiB weight (files are read lean by default)
    tracemalloc.start()
    try:
        g = load_onnx(path)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 1 << 20
    w = g.constants["w"].value()
    assert w.shape == (8192, 1024) and w[3, 5] == 3 * 1024 + 5


def test_a_file_changed_after_loading_is_refused(tmp_path):
    path = str(tmp_path / "big.onnx")
    big_model(path, n=1 << 16)
    g = load_onnx(path, lean=True)
    with open(path, "ab") as f:
        f.write(b"\0")
    with pytest.raises(LoadError, match="changed after it was loaded"):
        g.constants["w"].value()
    os.remove(path)
    with pytest.raises(LoadError, match="cannot read the weights"):
        g.constants["w"].value()


@pytest.mark.parametrize("cut", [1, 100, 5000])
def test_a_truncated_file_is_one_clear_error(tmp_path, cut):
    path = str(tmp_path / "big.onnx")
    big_model(path, n=1 << 16)
    data = open(path, "rb").read()
    with open(path, "wb") as f:
        f.write(data[:-cut])
    with pytest.raises(LoadError, match="not a readable ONNX model"):
        load_onnx(path, lean=True)


# -- external data: read from the model's folder when the values are asked for --------------
def external_copy(src: str, dst: str, location: str = "weights.bin") -> None:
    model = onnx.load(src)
    onnx.save_model(model, dst, save_as_external_data=True, all_tensors_to_one_file=True,
                    location=location, size_threshold=1024)


def test_external_data_runs_and_equals_onnxruntime(tmp_path):
    import onnxruntime as ort

    src, path = str(tmp_path / "src.onnx"), str(tmp_path / "ext.onnx")
    cnngraph.export(cnngraph.load("resnet18"), src, weights="random", seed=3)
    external_copy(src, path)
    assert os.path.getsize(tmp_path / "weights.bin") > 40 << 20  # the weights moved out
    graph = load_onnx(path)
    full = onnx.load(path)  # onnx follows the location itself
    for init in full.graph.initializer:
        np.testing.assert_array_equal(graph.constants[init.name].value(),
                                      numpy_helper.to_array(init))
    x = np.random.default_rng(0).standard_normal((1, 3, 224, 224)).astype(np.float32)
    (name, t), = cnngraph.compile(graph, threads=1).input_types.items()
    ours = next(iter(cnngraph.run(graph, {name: x}, threads=1).values()))
    theirs = ort.InferenceSession(path, providers=["CPUExecutionProvider"]).run(
        None, {name: x})[0]
    np.testing.assert_allclose(ours, theirs, rtol=1e-4, atol=1e-4 * np.abs(theirs).max())


def test_large_exports_with_a_side_file_run(tmp_path, monkeypatch):
    """cnngraph's own export moves weights over 1 GiB to path + '.data'; it runs as it is."""
    from cnngraph.backends import export_onnx

    inline, side = str(tmp_path / "inline.onnx"), str(tmp_path / "side.onnx")
    cnngraph.export(cnngraph.load("lenet5"), inline, weights="random", seed=1)
    monkeypatch.setattr(export_onnx, "_EXTERNAL_BYTES", 1000)
    cnngraph.export(cnngraph.load("lenet5"), side, weights="random", seed=1)
    assert os.path.exists(side + ".data") and not os.path.exists(inline + ".data")
    x = np.random.default_rng(1).standard_normal((1, 1, 32, 32)).astype(np.float32)
    out = cnngraph.run(load_onnx(side), {"image": x}, threads=1)["output"]
    want = cnngraph.run(load_onnx(inline), {"image": x}, threads=1)["output"]
    np.testing.assert_array_equal(out, want)


@pytest.mark.parametrize("location, offset, message", [
    ("../outside.bin", "0", "not a file in the model's folder"),
    ("/etc/passwd", "0", "not a file in the model's folder"),
    ("missing.bin", "0", "cannot read the weights"),
    ("weights.bin", "-8", "at offset -8 runs past"),
    ("weights.bin", "8", "at offset 8 runs past the file's end"),
])
def test_bad_external_data_analyses_but_does_not_run(tmp_path, location, offset, message):
    (tmp_path / "weights.bin").write_bytes(bytes(8 * 27 * 4))  # exactly the weight, no more
    w = numpy_helper.from_array(np.ones((8, 3, 3, 3), np.float32), "w")
    w.ClearField("raw_data")
    w.data_location = TensorProto.EXTERNAL
    for key, value in (("location", location), ("offset", offset)):
        entry = w.external_data.add()
        entry.key, entry.value = key, value
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 8, 8])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, None)
    graph = helper.make_graph([helper.make_node("Conv", ["x", "w"], ["y"], name="c")], "g",
                              [x], [y], [w])
    path = str(tmp_path / "ext.onnx")
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]), path)
    g = load_onnx(path)
    assert cnngraph.analyze(g).totals.params == 8 * 27  # analysis reads no weights
    with pytest.raises(LoadError, match=message):
        cnngraph.compile(g)
