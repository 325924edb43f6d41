"""Real PyTorch-exported ONNX files (tests/data/*.onnx) against numbers torch gave at export.

tests/data/make_models.py (needs torch; not run here) built the files and expected.json: torch's
parameter counts, output shapes at batch 1 and 4, and conv/linear MACs from forward hooks, per
file and per block (module). Those numbers never looked at the ONNX graph, so they are an
independent oracle for the frontend, the shape pass and the cost pass on another producer's
graphs: scoped node names, BatchNormalization with running statistics, Clip for ReLU6,
depthwise groups, Shape -> Gather -> Unsqueeze -> Concat -> Reshape with a dynamic batch,
transposed MatMul weights, decomposed LayerNorm and GELU, Resize, ConvTranspose, and one file
from the dynamo exporter (BN folded into the convs, module scopes only in node metadata).
"""

from __future__ import annotations

import functools
import json
import os

import numpy as np
import onnx
import pytest

import cnngraph

DATA = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "data")
with open(os.path.join(DATA, "expected.json")) as _f:
    EXPECTED = json.load(_f)["files"]
FILES = sorted(EXPECTED)
SCOPED = [f for f in FILES if EXPECTED[f]["blocks"] is not None]  # TorchScript exporter
BATCHES = (1, 4)
MATMUL_OPS = ("Conv", "Gemm", "MatMul")


def path_of(name: str) -> str:
    return os.path.join(DATA, name)


@functools.lru_cache(maxsize=None)
def analysis(name: str, batch: int) -> cnngraph.Analysis:
    return cnngraph.analyze(cnngraph.load(path_of(name)), batch=batch)


def test_the_data_is_there():
    """The files and their numbers are committed together, and stay small."""
    on_disk = sorted(f for f in os.listdir(DATA) if f.endswith(".onnx"))
    assert on_disk == FILES
    assert len(FILES) >= 8
    for name in FILES:
        size = os.path.getsize(path_of(name))
        assert size < 2_000_000, name
        model = onnx.load(path_of(name), load_external_data=False)
        assert all(i.data_location != onnx.TensorProto.EXTERNAL for i in model.graph.initializer)
        assert model.producer_name == "pytorch"


@pytest.mark.parametrize("batch", BATCHES)
@pytest.mark.parametrize("name", FILES)
def test_output_shape_equals_torch(name, batch):
    a = analysis(name, batch)
    assert a.batch == batch
    (out,) = a.graph.outputs
    assert list(a.shapes.types[out].shape) == EXPECTED[name]["outputs"][str(batch)]


@pytest.mark.parametrize("batch", BATCHES)
@pytest.mark.parametrize("name", FILES)
def test_params_equal_torch(name, batch):
    """trainable = sum(p.numel() for p in model.parameters()); non-trainable = BN running mean
    and var. For the dynamo file, what the file holds after BN folding (see make_models.py)."""
    e = EXPECTED[name]
    t = analysis(name, batch).totals
    assert (t.trainable_params, t.non_trainable_params) == (e["trainable"], e["non_trainable"])
    assert t.params == e["trainable"] + e["non_trainable"]
    if not e["bn_folded"]:
        assert (e["trainable"], e["non_trainable"]) == (e["torch_trainable"],
                                                        e["torch_non_trainable"])


@pytest.mark.parametrize("batch", BATCHES)
@pytest.mark.parametrize("name", FILES)
def test_conv_and_linear_macs_equal_torch_hooks(name, batch):
    layers = analysis(name, batch).layers
    macs = sum(layer.macs for layer in layers if layer.op in MATMUL_OPS)
    assert macs == EXPECTED[name]["conv_linear_macs"][str(batch)]
    transposed = sum(layer.macs for layer in layers if layer.op == "ConvTranspose")
    assert transposed == EXPECTED[name]["conv_transpose_macs"][str(batch)]


def onnx_inferred_shapes(name: str, batch: int) -> dict[str, tuple]:
    """onnx's own shape inference (with data propagation) with the batch dim set, from scratch:
    the producer's value_info is dropped. Only tensors onnx infers fully."""
    model = onnx.load(path_of(name))
    del model.graph.value_info[:]
    model.graph.input[0].type.tensor_type.shape.dim[0].dim_value = batch
    model = onnx.shape_inference.infer_shapes(model, data_prop=True, strict_mode=True)
    out = {}
    for vi in list(model.graph.value_info) + list(model.graph.output):
        tt = vi.type.tensor_type
        if tt.HasField("shape") and all(d.HasField("dim_value") for d in tt.shape.dim):
            out[vi.name] = tuple(d.dim_value for d in tt.shape.dim)
    return out


@pytest.mark.parametrize("name", FILES)
def test_shapes_equal_onnx_shape_inference_at_batch_4(name):
    a = analysis(name, 4)
    expected = onnx_inferred_shapes(name, 4)
    # onnx loses the batch dim after SE's Reshape(x, Concat(Unsqueeze(Gather(Shape(x)))...))
    # in se_resnet (its data propagation stops there), so it infers only about half that file.
    assert len(expected) >= 0.5 * len(a.graph), "onnx inferred too little to mean anything"
    wrong = {t: (a.shapes.types[t].shape, s) for t, s in expected.items()
             if a.shapes.types[t].shape != s}
    assert not wrong, f"ours vs onnx: {wrong}"
    for layer in a.layers:  # and every running node has a full static shape
        assert all(all(isinstance(d, int) and d > 0 for d in s) for s in layer.output_shapes)


# -- blocks --------------------------------------------------------------------------------
def test_torch_scoped_names_give_blocks():
    a = analysis("resnet18_op13.onnx", 1)
    by_name = {layer.name: layer for layer in a.layers}
    assert by_name["/layer1/layer1.0/conv1/Conv"].block == "layer1/layer1.0"
    assert by_name["/layer2/layer2.0/downsample/downsample.0/Conv"].block == \
        "layer2/layer2.0/downsample"
    assert by_name["/conv1/Conv"].block == ""
    blocks = {b.name: b for b in a.blocks}
    assert {"layer1", "layer1/layer1.0", "layer1/layer1.1"} <= set(blocks)
    for name, block in blocks.items():
        inside = [layer for layer in a.layers
                  if layer.block == name or layer.block.startswith(name + "/")]
        assert block.params == sum(layer.params for layer in inside), name
        assert block.layers == len(inside), name
    children = [blocks["layer1/layer1.0"], blocks["layer1/layer1.1"]]
    assert blocks["layer1"].params == sum(b.params for b in children)


@pytest.mark.parametrize("name", SCOPED)
def test_block_subtotals_equal_torch_modules(name):
    """Every module with children is a block whose subtotal holds exactly its own parameters
    (torch: module.parameters() and its BN statistics) and its convs' and linears' MACs."""
    a = analysis(name, 1)
    blocks = {b.name: b for b in a.blocks}
    for path, want in EXPECTED[name]["blocks"].items():
        assert path in blocks, f"no block {path} (module {want['module']})"
        b = blocks[path]
        inside = [layer for layer in a.layers
                  if layer.block == path or layer.block.startswith(path + "/")]
        macs = sum(layer.macs for layer in inside if layer.op in MATMUL_OPS)
        got = (b.trainable_params, b.non_trainable_params, macs)
        assert got == (want["trainable"], want["non_trainable"], want["conv_linear_macs"]), path


def _own_scope(node_name: str) -> str:
    """'/layer1/layer1.0/Add' -> 'layer1/layer1.0': the module the node's name puts it in."""
    return "/".join(p for p in node_name.split("/")[:-1] if p)


@pytest.mark.parametrize("name", SCOPED)
def test_ops_a_block_runs_itself_belong_to_it(name):
    """'/layer1/layer1.0/Add' (the residual add a BasicBlock runs in its own forward) is in
    'layer1/layer1.0', while the leaf '/layer1/layer1.0/conv1/Conv' is not a block itself."""
    a = analysis(name, 1)
    blocks = set(EXPECTED[name]["blocks"])
    misplaced = {layer.name: layer.block for layer in a.layers
                 if _own_scope(layer.name) in blocks and layer.block != _own_scope(layer.name)}
    assert not misplaced, misplaced


def test_dynamo_blocks_come_from_its_scope_metadata():
    """The dynamo exporter names nodes node_Conv_292 and keeps the module scope in metadata;
    its blocks and their conv MACs equal those of the TorchScript export of the same net."""
    dynamo = [f for f in FILES if EXPECTED[f]["exporter"] == "dynamo"]
    assert dynamo, "no dynamo-exported file"
    a = analysis(dynamo[0], 1)
    b = analysis("resnet18_op13.onnx", 1)
    assert not any(layer.op == "BatchNormalization" for layer in a.layers)

    def conv_macs(x):
        return {blk.name: sum(l.macs for l in x.layers if l.op in MATMUL_OPS and
                              (l.block == blk.name or l.block.startswith(blk.name + "/")))
                for blk in x.blocks}

    assert conv_macs(a) == conv_macs(b)
    assert set(EXPECTED["resnet18_op13.onnx"]["blocks"]) <= set(conv_macs(a))


# -- the files are valid: onnxruntime runs each -----------------------------------------------
def _probe_input(shape) -> np.ndarray:
    n = int(np.prod(shape))
    return np.linspace(-1.0, 1.0, n, dtype=np.float32).reshape(shape)


@pytest.mark.onnxruntime
@pytest.mark.parametrize("name", FILES)
def test_onnxruntime_runs_the_file(name):
    ort = pytest.importorskip("onnxruntime")
    session = ort.InferenceSession(path_of(name), providers=["CPUExecutionProvider"])
    (inp,) = session.get_inputs()
    assert inp.shape[0] == "N"
    c, h, w = EXPECTED[name]["input"][1:]
    (y,) = session.run(None, {inp.name: _probe_input((4, c, h, w))})
    assert list(y.shape) == EXPECTED[name]["outputs"]["4"]
    assert np.isfinite(y).all()
    probe = EXPECTED[name].get("probe")
    if probe is not None:  # torch's output on the same input, batch 1
        (y1,) = session.run(None, {inp.name: _probe_input((1, c, h, w))})
        np.testing.assert_allclose(y1.reshape(-1)[:len(probe["first"])], probe["first"],
                                   rtol=1e-3, atol=1e-4)
        np.testing.assert_allclose(float(np.abs(y1).sum()), probe["abs_sum"], rtol=1e-3)
