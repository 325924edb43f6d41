"""Export to ONNX: onnx's full check passes, onnxruntime runs the export, random weights keep
activations of order 1, and importing the export gives back the same layers (names, block
paths, output shapes, parameters, MACs), at the graph's own opset and re-targeted.

The models: the onnx package's light model zoo (structure only: ConstantOfShape weights) and
the torch exports in tests/data (real weights). VGG-19 and ZFNet-512 are skipped unless
CNNGRAPH_SLOW=1: with random weights they are 550 MB and 330 MB files, about 15 s and 5 s each.
"""

from __future__ import annotations

import dataclasses
import functools
import glob
import os

import numpy as np
import onnx
import pytest

import cnngraph
from cnngraph.backends.export_onnx import export, to_onnx
from cnngraph.backends.reference import run_reference
from cnngraph.errors import ExportError
from cnngraph.frontends import LIGHT_MODELS, from_model, light_model_path
from cnngraph.ir import BLOCK_KEY, Constant, Graph, Node, TensorInfo

DATA = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "data")
TORCH_FILES = sorted(os.path.basename(p) for p in glob.glob(os.path.join(DATA, "*.onnx")))
DYNAMO = "resnet18_dynamo_op18.onnx"  # blocks come from node metadata, not from names
BIG = ("vgg19", "zfnet512")
slow = [pytest.mark.slow, pytest.mark.skipif(not os.environ.get("CNNGRAPH_SLOW"),
                                             reason="hundreds of MB of random weights; "
                                                    "set CNNGRAPH_SLOW=1")]
LIGHT = [pytest.param(n, marks=slow) if n in BIG else n for n in LIGHT_MODELS]


def load(name: str) -> Graph:
    return cnngraph.load(os.path.join(DATA, name) if name.endswith(".onnx")
                         else light_model_path(name))


def rows(graph: Graph, with_blocks: bool = True) -> list[tuple]:
    """What must survive the round trip, per layer."""
    return [(layer.name, layer.op, layer.block if with_blocks else None, layer.output_shapes,
             layer.params, layer.trainable_params, layer.macs, layer.other_flops)
            for layer in cnngraph.analyze(graph).layers]


def session(model: onnx.ModelProto):
    ort = pytest.importorskip("onnxruntime")
    return ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])


def random_input(model: onnx.ModelProto, batch: int = 1, seed: int = 0) -> dict:
    (inp,) = model.graph.input
    dims = [d.dim_value if d.HasField("dim_value") else batch
            for d in inp.type.tensor_type.shape.dim]
    return {inp.name: np.random.default_rng(seed).standard_normal(dims).astype(np.float32)}


def with_outputs(model: onnx.ModelProto, tensors) -> onnx.ModelProto:
    """A copy that also returns the given intermediate tensors."""
    copy = onnx.ModelProto()
    copy.CopyFrom(model)
    copy.graph.output.extend(onnx.helper.make_tensor_value_info(t, onnx.TensorProto.FLOAT, None)
                             for t in tensors)
    return copy


def param_initializers(model: onnx.ModelProto) -> dict[str, np.ndarray]:
    inits = {t.name: onnx.numpy_helper.to_array(t) for t in model.graph.initializer}
    return {k: v for k, v in inits.items() if v.dtype.kind == "f" and v.size > 1}


def assert_well_formed(model: onnx.ModelProto, graph: Graph) -> None:
    onnx.checker.check_model(model, full_check=True)
    assert model.ir_version >= 4 and model.producer_name == "cnngraph"
    inputs = {i.name for i in model.graph.input}
    assert inputs == set(graph.input_names)
    assert not inputs & {t.name for t in model.graph.initializer}
    assert [o.name for o in model.graph.output] == graph.outputs
    # nodes keep their names and order (random weights drop the folded nodes that made them)
    names = [n.name for n in model.graph.node]
    assert names == [n for n in graph.order() if n in set(names)]


# -- the light model zoo: structure only, so random weights -------------------------------------
@pytest.mark.onnxruntime
@pytest.mark.parametrize("name", LIGHT)
def test_light_model_exports_runs_and_round_trips(name):
    graph = load(name)
    model = to_onnx(graph)  # structure only: "auto" means random
    assert_well_formed(model, graph)
    assert not any(n.op_type == "ConstantOfShape" for n in model.graph.node)
    assert rows(from_model(model)) == rows(graph)
    # onnxruntime: two inputs give finite, different outputs; the logits (before the softmax)
    # are of order 1, and every BatchNormalization, calibrated on another input, outputs
    # about N(0, 1)
    softmax = [n for n in model.graph.node if n.op_type == "Softmax"]
    logits = softmax[0].input[0] if softmax else model.graph.output[0].name
    bns = [n.output[0] for n in model.graph.node if n.op_type == "BatchNormalization"]
    run = session(with_outputs(model, [logits] + bns))
    (out_a, logits_a, *bn_outs), (out_b, *_) = (run.run(None, random_input(model, seed=s))
                                                for s in (1, 2))
    assert np.isfinite(out_a).all() and np.isfinite(out_b).all()
    assert np.abs(out_a - out_b).max() > 1e-3 * np.abs(out_a).max()
    assert 0.1 < logits_a.std() < 100, logits_a.std()
    stds, means = [o.std() for o in bn_outs], [abs(o.mean()) for o in bn_outs]
    assert len(bns) == {"resnet50": 53, "densenet121": 121, "inception_v2": 69,
                        "shufflenet": 49}.get(name, 0)
    if bns:
        assert 0.7 < min(stds) and max(stds) < 2.5 and max(means) < 0.5, \
            (min(stds), max(stds), max(means))


# -- the model zoo (DSL files through the builder: opset 18, structure only) --------------------
@pytest.mark.onnxruntime
@pytest.mark.parametrize("name", ["lenet5", "googlenet", "squeezenet1_0", "mobilenet_v2"])
def test_zoo_model_exports_runs_and_round_trips(name):
    """LeNet-5's connection table, GoogLeNet's inception blocks, MobileNetV2's ReLU6 and BN:
    the export re-imports to the same layers and blocks, and runs at batch 2."""
    graph = cnngraph.load(name)
    model = to_onnx(graph)
    assert_well_formed(model, graph)
    assert rows(from_model(model)) == rows(graph)
    # (without BN, the logits of a random ReLU net are mostly the same for every input: the
    # part that depends on it is a few percent, so that is what is asked)
    softmax = [n for n in model.graph.node if n.op_type == "Softmax"]
    logits = softmax[0].input[0] if softmax else model.graph.output[0].name
    run = session(with_outputs(model, [logits]))
    (out, a), (_, b) = (run.run(None, random_input(model, batch=2, seed=s)) for s in (1, 2))
    assert np.isfinite(out).all() and out.shape[0] == 2
    assert 0.1 < a.std() < 100 and (a - b).std() > 0.01 * a.std()


@pytest.mark.onnxruntime
@pytest.mark.parametrize("name", ["lenet5", "googlenet"])
def test_zoo_model_goes_down_to_opset_13(name):
    graph = cnngraph.load(name)
    model = to_onnx(graph, opset=13)
    onnx.checker.check_model(model, full_check=True)
    assert rows(from_model(model)) == rows(graph)
    feeds = random_input(model, batch=2)
    np.testing.assert_array_equal(session(model).run(None, feeds)[0],
                                  session(to_onnx(graph)).run(None, feeds)[0])


# -- the torch exports: real weights, kept or replaced ------------------------------------------
@pytest.mark.onnxruntime
@pytest.mark.parametrize("weights", ["keep", "random"])
@pytest.mark.parametrize("name", TORCH_FILES)
def test_torch_file_exports_runs_and_round_trips(name, weights):
    graph = load(name)
    model = to_onnx(graph, weights=weights, seed=1)
    assert_well_formed(model, graph)
    again = from_model(model)
    assert rows(again, with_blocks=name != DYNAMO) == rows(graph, with_blocks=name != DYNAMO)
    # the symbolic batch survives: inputs as declared, outputs inferred with the batch's name
    assert model.graph.input[0].type.tensor_type.shape.dim[0].dim_param == "N"
    assert model.graph.output[0].type.tensor_type.shape.dim[0].dim_param == "N"
    feeds = [random_input(model, batch=3, seed=s) for s in (1, 2)]
    run = session(model)
    (a,), (b,) = (run.run(None, f) for f in feeds)
    assert np.isfinite(a).all() and a.shape[0] == 3
    if weights == "keep":  # the file's own weights: what the original computes
        (want,) = session(onnx.load(os.path.join(DATA, name))).run(None, feeds[0])
        np.testing.assert_allclose(a, want, rtol=1e-5, atol=1e-6)
    else:  # (torch's untrained BN statistics make some files' outputs nearly constant)
        assert np.abs(a - b).max() > 1e-2 * np.abs(a).max()  # the output depends on the input
        assert 0.1 < a.std() < 100
    # the numpy interpreter agrees with onnxruntime on the export
    got = run_reference(again, feeds[0])
    np.testing.assert_allclose(got["output"], a, rtol=1e-4, atol=1e-5)


@pytest.mark.onnxruntime
@pytest.mark.parametrize("name", ["resnet18_op13.onnx", "mobilenetv2_op13.onnx",
                                  "inception_op13.onnx"])
def test_torch_batchnorm_outputs_are_calibrated(name):
    """Down to 2x2 maps at batch 1 (4 samples per channel), BN outputs stay of order 1 on an
    input the calibration never saw."""
    model = to_onnx(load(name), weights="random")
    bns = [n.output[0] for n in model.graph.node if n.op_type == "BatchNormalization"]
    outs = session(with_outputs(model, bns)).run(None, random_input(model, seed=7))[1:]
    stds = [o.std() for o in outs]
    assert 0.5 < min(stds) and max(stds) < 4, (min(stds), max(stds))


def scoped_graph() -> Graph:
    """Builder-style names: 'conv1', then an inception-like block of two paths."""
    g = Graph("scoped", opset=13)
    g.add_input(TensorInfo("x", "float32", ("N", 3, 8, 8)))
    for name, shape in (("conv1/W", (4, 3, 3, 3)), ("inception_3a/1x1/W", (2, 4, 1, 1)),
                        ("inception_3a/3x3/W", (2, 4, 3, 3))):
        g.add_constant(Constant(name, "float32", shape, None))
    g.add_node(Node("conv1", "Conv", ("x", "conv1/W"), ("c1",), {"pads": [1, 1, 1, 1]}))
    g.add_node(Node("inception_3a/1x1", "Conv", ("c1", "inception_3a/1x1/W"), ("a",)))
    g.add_node(Node("inception_3a/3x3", "Conv", ("c1", "inception_3a/3x3/W"), ("b",),
                    {"pads": [1, 1, 1, 1]}))
    g.add_node(Node("inception_3a/output", "Concat", ("a", "b"), ("y",), {"axis": 1}))
    g.outputs.append("y")
    for name, node in g.nodes.items():  # as the builder and the onnx frontend set them
        g.nodes[name] = dataclasses.replace(node, block=name.rpartition("/")[0])
    return g.freeze()


def test_names_and_block_paths_survive():
    for graph, example, block in ((scoped_graph(), "inception_3a/1x1", "inception_3a"),
                                  (load("resnet18_op13.onnx"), "/layer1/layer1.0/conv1/Conv",
                                   "layer1/layer1.0")):
        model = to_onnx(graph, weights="random")
        again = from_model(model)
        assert again.nodes[example].op_type == "Conv"
        assert graph.nodes[example].block == again.nodes[example].block == block
        assert {n: again.nodes[n].block for n in again.nodes} == \
            {n: graph.nodes[n].block for n in graph.nodes}
        assert not any(n.metadata_props for n in model.graph.node)  # the names say it all


def test_blocks_that_names_do_not_carry_are_written_as_metadata():
    """The dynamo exporter's flat names ('node_Conv_292') have their module scopes only in
    torch's metadata; the export writes the block path under BLOCK_KEY."""
    graph = load(DYNAMO)
    model = to_onnx(graph)
    written = {n.name: {p.key: p.value for p in n.metadata_props} for n in model.graph.node}
    for name, node in graph.nodes.items():
        assert written[name].get(BLOCK_KEY, "") == node.block
    assert sum(BLOCK_KEY in w for w in written.values()) > 40


def test_blocks_from_metadata_survive_the_round_trip():
    graph = load(DYNAMO)
    again = from_model(to_onnx(graph))
    assert [n.block for n in again.nodes.values()] == [n.block for n in graph.nodes.values()]


# -- re-targeting the opset ---------------------------------------------------------------------
RETARGET = [("squeezenet", 13), ("squeezenet", 18), ("inception_v1", 13), ("inception_v1", 18),
            ("resnet18_op9.onnx", 13), ("resnet18_op9.onnx", 18), ("se_resnet_op13.onnx", 18),
            ("tiny_unet_op13.onnx", 18), ("mobilenetv2_op13.onnx", 18),
            ("resnet18_op13.onnx", 13),
            # down: cnngraph's own rules (onnx's converter has no Relu 14 -> 13, BN 15 -> 14...)
            ("resnet18_op17.onnx", 13), (DYNAMO, 13), (DYNAMO, 15)]


@pytest.mark.onnxruntime
@pytest.mark.parametrize("name, opset", RETARGET)
def test_retargeted_opset_round_trips(name, opset):
    """The converter may rewrite nodes (a Softmax over axis 1 of a 4-D tensor becomes a
    Flatten, Softmax, Reshape at 13): the layers with parameters or MACs keep their names and
    numbers, the totals are equal, and the output equals the untouched export's (same seed,
    same weights)."""
    graph = load(name)
    model = to_onnx(graph, opset=opset)
    assert [o.version for o in model.opset_import if o.domain == ""] == [opset]
    onnx.checker.check_model(model, full_check=True)
    again = from_model(model)
    before, after = cnngraph.analyze(graph), cnngraph.analyze(again)
    def costly(g):
        return [r for r in rows(g, with_blocks=name != DYNAMO) if r[4] or r[6]]

    assert costly(again) == costly(graph)
    assert (after.totals.params, after.totals.trainable_params, after.totals.macs) == \
        (before.totals.params, before.totals.trainable_params, before.totals.macs)
    feeds = random_input(model)
    (want,) = session(to_onnx(graph)).run(None, feeds)
    (got,) = session(model).run(None, feeds)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


def opset18_graph() -> Graph:
    """Ops whose opset-18 form differs from opset 13's: Split with num_outputs, ReduceMean with
    an axes input, Pad with three inputs, Resize with its new attributes at their defaults,
    Reshape with allowzero=1 and no 0 in the shape, Relu and Mul of version 14."""
    g = Graph("new", opset=18)
    g.add_input(TensorInfo("x", "float32", ("N", 4, 4, 4)))
    settings = {"axes": np.array([2, 3]), "pads": np.array([0, 0, 1, 1, 0, 0, 1, 1]),
                "roi": np.zeros(0, np.float32), "scales": np.array([1, 1, 2, 2], np.float32),
                "shape": np.array([-1, 16]), "k": np.full((1, 2, 1, 1), 2, np.float32)}
    for name, value in settings.items():
        g.add_constant(Constant(name, value.dtype.name, value.shape,
                                functools.partial(np.array, value)))
    for node in (Node("split", "Split", ("x",), ("a", "b"), {"axis": 1, "num_outputs": 2}),
                 Node("relu", "Relu", ("a",), ("r",)),
                 Node("mul", "Mul", ("b", "k"), ("m",)),
                 Node("mean", "ReduceMean", ("r", "axes"), ("rm",), {"keepdims": 1}),
                 Node("add", "Add", ("m", "rm"), ("s",)),
                 Node("pad", "Pad", ("s", "pads"), ("p",)),
                 Node("up", "Resize", ("p", "roi", "scales"), ("u",),
                      {"mode": "nearest", "antialias": 0}),
                 Node("flat", "Reshape", ("u", "shape"), ("y",), {"allowzero": 1})):
        g.add_node(node)
    g.outputs.append("y")
    return g.freeze()


@pytest.mark.onnxruntime
@pytest.mark.parametrize("opset", [17, 15, 13])
def test_going_down_to_an_older_opset(opset):
    graph = opset18_graph()
    model = to_onnx(graph, opset=opset)
    assert [o.version for o in model.opset_import] == [opset]
    onnx.checker.check_model(model, full_check=True)
    assert rows(from_model(model)) == rows(graph)
    nodes = {n.name: n for n in model.graph.node}
    if opset == 13:
        assert [a.name for a in nodes["split"].attribute] == ["axis"]
        assert list(nodes["mean"].input) == ["r"]
        assert {a.name: list(a.ints) for a in nodes["mean"].attribute}["axes"] == [2, 3]
    feeds = random_input(model, batch=2)
    (want,) = session(to_onnx(graph)).run(None, feeds)
    (got,) = session(model).run(None, feeds)
    np.testing.assert_array_equal(got, want)


def test_what_an_older_opset_cannot_say_is_an_error():
    with pytest.raises(ExportError, match=r"tiny_unet_op17.onnx: cannot re-target to opset 13: "
                                          r"node '/block/norm/LayerNormalization' "
                                          r"\(LayerNormalization\): the op does not exist before "
                                          r"opset 17"):
        to_onnx(load("tiny_unet_op17.onnx"), opset=13)
    graph = opset18_graph()
    graph.nodes["up"] = dataclasses.replace(graph.nodes["up"], attrs={"mode": "nearest",
                                                                      "antialias": 1})
    with pytest.raises(ExportError, match=r"node 'up' \(Resize\): it sets antialias=1, which "
                                          r"Resize before opset 18 cannot express"):
        to_onnx(graph, opset=13)
    # below 13 onnx's converter takes over; it has no down-adapter for Relu
    with pytest.raises(ExportError, match=r"onnx's converter cannot take the model from opset 13 "
                                          r"to 12: No Adapter To Version \$12 for Relu"):
        to_onnx(load("resnet18_op17.onnx"), opset=12)


def test_the_versions_taken_down_as_they_are_only_add_element_types():
    """Guard on the table: in each of these versions the op has the same attributes, inputs
    and outputs as in the version before."""
    from cnngraph.backends.export_onnx import _SAME_BELOW

    def signature(schema):
        return (sorted(schema.attributes), [(i.name, i.option) for i in schema.inputs],
                [(o.name, o.option) for o in schema.outputs])

    for op_type, version in sorted(_SAME_BELOW):
        new = onnx.defs.get_schema(op_type, version, "")
        if new.since_version != version:
            continue  # this onnx does not have that version yet
        old = onnx.defs.get_schema(op_type, version - 1, "")
        assert signature(new) == signature(old), (op_type, version)


# -- weights ------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["inception_v1", "resnet18_op13.onnx"])
def test_zeros_gives_zero_weights(name):
    graph = load(name)
    model = to_onnx(graph, weights="zeros")
    onnx.checker.check_model(model, full_check=True)
    params = param_initializers(model)
    assert sum(v.size for v in params.values()) == cnngraph.analyze(graph).totals.params
    assert all(not v.any() for v in params.values())


def test_auto_keeps_real_weights_and_randomises_structure():
    path = os.path.join(DATA, "resnet18_op13.onnx")
    original = {t.name: onnx.numpy_helper.to_array(t) for t in onnx.load(path).graph.initializer}
    kept = param_initializers(to_onnx(load("resnet18_op13.onnx")))
    assert kept.keys() <= original.keys()
    assert all(np.array_equal(v, original[k]) for k, v in kept.items())
    fresh = param_initializers(to_onnx(load("resnet18_op13.onnx"), weights="random"))
    assert not any(np.array_equal(v, original[k]) for k, v in fresh.items() if v.std() > 0)
    light = param_initializers(to_onnx(load("squeezenet")))  # ConstantOfShape weights
    assert sum(v.size for v in light.values()) == 1_235_496
    convs = [v for k, v in light.items() if v.ndim == 4]
    assert all(v.std() > 0 for v in convs)


def test_he_initialisation_follows_fan_in():
    model = to_onnx(load("inception_v1"), weights="random", seed=5)
    weights = param_initializers(model)
    for w in (weights["conv1/7x7_s2_w_0"], weights["inception_3a/1x1_w_0"],
              weights["inception_5b/5x5_w_0"]):  # (K, C, kh, kw)
        fan_in = np.prod(w.shape[1:])
        assert w.std() == pytest.approx(np.sqrt(2 / fan_in), rel=0.05)
    assert abs(weights["inception_3a/1x1_b_0"]).max() < 0.1  # biases: small


def test_each_parameter_gets_the_initialisation_of_its_role():
    """fan_in follows the op: Gemm's K whatever transB says, ConvTranspose's Cin/group * k / s;
    PRelu 0.25, per-channel Mul ~1 and Add ~0, InstanceNormalization scale 1 and shift 0."""
    g = Graph("roles", opset=18)
    g.add_input(TensorInfo("x", "float32", ("N", 8)))
    shapes = {"B": (400, 8), "C": (400,), "slope": (400,), "scale": (400,), "shift": (400,),
              "W": (400, 2, 4, 4), "s": (2,), "b": (2,)}
    for name, shape in shapes.items():
        g.add_constant(Constant(name, "float32", shape, None))
    g.add_constant(Constant("shape", "int64", (4,), functools.partial(
        np.array, [-1, 400, 1, 1])))
    for node in (Node("fc", "Gemm", ("x", "B", "C"), ("h",), {"transB": 1}),
                 Node("act", "PRelu", ("h", "slope"), ("a",)),
                 Node("mul", "Mul", ("a", "scale"), ("m",)),
                 Node("add", "Add", ("m", "shift"), ("d",)),
                 Node("to4d", "Reshape", ("d", "shape"), ("d4",)),
                 Node("up", "ConvTranspose", ("d4", "W"), ("u",), {"strides": [2, 2]}),
                 Node("norm", "InstanceNormalization", ("u", "s", "b"), ("y",))):
        g.add_node(node)
    g.outputs.append("y")
    w = param_initializers(to_onnx(g.freeze(), seed=9))
    assert w["B"].std() == pytest.approx(np.sqrt(2 / 8), rel=0.05)  # K = 8, not 400
    assert abs(w["C"]).max() < 0.05 and w["C"].std() > 0
    # each output of a stride-2 4x4 transposed conv sums 400 * 16 / 4 terms
    assert w["W"].std() == pytest.approx(np.sqrt(2 / (400 * 16 / 4)), rel=0.05)
    assert (w["slope"] == 0.25).all()
    assert abs(w["scale"].mean() - 1) < 0.05 and 0.05 < w["scale"].std() < 0.2
    assert abs(w["shift"]).max() < 0.05
    assert (w["s"] == 1).all() and (w["b"] == 0).all()


@pytest.mark.parametrize("name", ["resnet18_op13.onnx", "squeezenet"])
def test_the_same_seed_gives_the_same_bytes(tmp_path, name):
    graph = load(name)
    paths = [str(tmp_path / f"{i}.onnx") for i in range(3)]
    for path, seed in zip(paths, (4, 4, 5)):
        export(graph, path, weights="random", seed=seed)
    data = [open(p, "rb").read() for p in paths]
    assert data[0] == data[1] and data[0] != data[2]
    first = onnx.load(paths[0]).graph.node[0].name
    assert first in graph.nodes


def structure_only(weight_value=False, setting_value=True) -> Graph:
    """x (N, 2) -> MatMul W (2, 3) -> Clip(lo, hi) -> y."""
    g = Graph("tiny", opset=13)
    g.add_input(TensorInfo("x", "float32", ("N", 2)))
    value = functools.partial(np.ones, (2, 3), np.float32)
    g.add_constant(Constant("W", "float32", (2, 3), value if weight_value else None))
    g.add_constant(Constant("lo", "float32", (), functools.partial(np.float32, 0)
                            if setting_value else None))
    g.add_constant(Constant("hi", "float32", (), functools.partial(np.float32, 6)))
    g.add_node(Node("fc", "MatMul", ("x", "W"), ("h",)))
    g.add_node(Node("clip", "Clip", ("h", "lo", "hi"), ("y",)))
    g.outputs.append("y")
    return g.freeze()


def test_weight_errors():
    with pytest.raises(ExportError, match=r"tiny: constant 'W' \[2, 3\] has no value .*export "
                                          r"with weights='random' or 'zeros'"):
        to_onnx(structure_only(), weights="keep")
    with pytest.raises(ExportError, match=r"tiny: constant 'lo' \[\] \(float32\), input 1 of node "
                                          r"'clip' \(Clip\), is an operator setting and keeps its "
                                          r"value, but it has none"):
        to_onnx(structure_only(setting_value=False), weights="random")
    with pytest.raises(ExportError, match="weights 'ones' is not one of auto, random, zeros, "
                                          "keep"):
        to_onnx(structure_only(), weights="ones")
    with pytest.raises(ExportError, match="seed -1 must be a whole number >= 0"):
        to_onnx(structure_only(), seed=-1)
    model = to_onnx(structure_only(weight_value=True))  # it has its weights: auto keeps them
    assert param_initializers(model)["W"].tolist() == [[1, 1, 1]] * 2
    inits = {t.name: onnx.numpy_helper.to_array(t) for t in to_onnx(structure_only()).graph
             .initializer}
    assert inits["lo"] == 0 and inits["hi"] == 6  # settings keep their values
    assert inits["W"].std() > 0


def test_export_write_errors(tmp_path):
    with pytest.raises(ExportError, match="cannot write"):
        export(structure_only(), str(tmp_path / "missing" / "m.onnx"))
    with pytest.raises(ExportError, match="opset 0 must be a whole number >= 1"):
        to_onnx(structure_only(), opset=0)


def test_large_weights_go_to_a_side_file(tmp_path, monkeypatch):
    from cnngraph.backends import export_onnx

    monkeypatch.setattr(export_onnx, "_EXTERNAL_BYTES", 1000)  # instead of 1 GiB
    g = Graph("big", opset=13)
    g.add_input(TensorInfo("x", "float32", ("N", 64)))
    g.add_constant(Constant("W", "float32", (64, 64), None))  # 16 KiB
    g.add_node(Node("fc", "MatMul", ("x", "W"), ("y",)))
    g.outputs.append("y")
    path = str(tmp_path / "m.onnx")
    export(g.freeze(), path, seed=2)
    assert os.path.getsize(path + ".data") == 64 * 64 * 4
    onnx.checker.check_model(path, full_check=True)
    np.testing.assert_array_equal(param_initializers(onnx.load(path))["W"],
                                  param_initializers(to_onnx(g, seed=2))["W"])


def test_a_fixed_batch_stays_and_calibrates_at_that_batch():
    """A model declared for batch 4 is exported for batch 4 (not re-bound to 1), and its BN is
    calibrated on 4 samples: statistics over 4 x 1 x 1 values, not one."""
    g = Graph("fixed", opset=13)
    g.add_input(TensorInfo("x", "float32", (4, 3)))
    for name, shape in (("W", (3, 5)), ("s", (5,)), ("b", (5,)), ("m", (5,)), ("v", (5,))):
        g.add_constant(Constant(name, "float32", shape, None))
    g.add_node(Node("fc", "MatMul", ("x", "W"), ("h",)))
    g.add_node(Node("bn", "BatchNormalization", ("h", "s", "b", "m", "v"), ("y",)))
    g.outputs.append("y")
    model = to_onnx(g.freeze())
    onnx.checker.check_model(model, full_check=True)
    assert [d.dim_value for d in model.graph.output[0].type.tensor_type.shape.dim] == [4, 5]
    inits = param_initializers(model)
    assert inits["v"].min() > 0 and len(set(inits["v"].tolist())) == 5  # per channel


@pytest.mark.onnxruntime
def test_attributes_go_back_to_their_onnx_types():
    """Attributes as frontends and builders hold them (a float given as int, tuples, numpy
    arrays, a scalar tensor, strings) come back in the types the op schemas declare."""
    g = Graph("attrs", opset=18)
    g.add_input(TensorInfo("x", "float32", ("N", 2, 4, 4)))
    g.add_constant(Constant("roi", "float32", (0,), functools.partial(np.zeros, 0, np.float32)))
    g.add_constant(Constant("scales", "float32", (4,),
                            functools.partial(np.array, [1, 1, 2, 2], np.float32)))
    g.add_node(Node("leaky", "LeakyRelu", ("x",), ("a",), {"alpha": 1}))
    g.add_node(Node("pool", "MaxPool", ("a",), ("p",),
                    {"kernel_shape": (3, 3), "pads": np.array([1, 1, 1, 1]),
                     "auto_pad": "NOTSET", "strides": [np.int64(1), 1]}))
    g.add_node(Node("k", "Constant", (), ("kv",), {"value": np.array(0.5, np.float32)}))
    g.add_node(Node("mul", "Mul", ("p", "kv"), ("m",)))
    g.add_node(Node("up", "Resize", ("m", "roi", "scales"), ("y",), {"mode": "nearest"}))
    g.outputs.append("y")
    graph = g.freeze()
    model = to_onnx(graph)
    onnx.checker.check_model(model, full_check=True)
    attrs = {n.name: {a.name: a for a in n.attribute} for n in model.graph.node}
    assert attrs["leaky"]["alpha"].type == onnx.AttributeProto.FLOAT
    assert attrs["pool"]["pads"].type == onnx.AttributeProto.INTS
    assert onnx.numpy_helper.to_array(attrs["k"]["value"].t).shape == ()  # still a scalar
    assert attrs["up"]["mode"].s == b"nearest"
    again = from_model(model)
    assert dict(again.nodes["pool"].attrs) == {"kernel_shape": [3, 3], "pads": [1, 1, 1, 1],
                                               "auto_pad": "NOTSET", "strides": [1, 1]}
    feeds = random_input(model, batch=2)
    (y,) = session(model).run(None, feeds)
    assert y.shape == (2, 2, 8, 8)
    np.testing.assert_allclose(run_reference(graph, feeds)["y"], y, rtol=1e-6)
