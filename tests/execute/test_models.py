"""Whole models: the compiled executor gives onnxruntime's outputs (rtol 1e-4, atol 1e-5) on
the zoo's exports (random weights), the real models the onnx package ships (their light
versions with random weights) and the torch exports in tests/data.

The big ones run with CNNGRAPH_SLOW=1."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

import cnngraph
from cnngraph.execute.compare import ATOL, RTOL
from cnngraph.execute.kernels import NUMPY_ONLY_ENV
from cnngraph.frontends.onnx import from_model

ort = pytest.importorskip("onnxruntime")
pytestmark = pytest.mark.onnxruntime

DATA = Path(__file__).resolve().parents[1] / "data"
slow = [pytest.mark.slow, pytest.mark.skipif(not os.environ.get("CNNGRAPH_SLOW"),
                                             reason="set CNNGRAPH_SLOW=1")]


def check_against_onnxruntime(model_bytes: bytes, graph, batch=None, seed=0):
    """Both kernel paths (native where built, numpy only) against onnxruntime: rtol 1e-4 and
    atol 1e-5, or, for deep networks whose float32 rounding alone moves the outputs by more,
    twice what onnxruntime itself moves between its optimised and unoptimised graphs."""
    session, plain = (_session(model_bytes, level) for level in (
        ort.GraphOptimizationLevel.ORT_ENABLE_ALL, ort.GraphOptimizationLevel.ORT_DISABLE_ALL))
    compiled = None
    for numpy_only in ("0", "1"):
        os.environ[NUMPY_ONLY_ENV] = numpy_only
        try:
            compiled = cnngraph.compile(graph, batch=batch, threads=1)
        finally:
            del os.environ[NUMPY_ONLY_ENV]
        rng = np.random.default_rng(seed)
        inputs = {n: rng.standard_normal(t.shape).astype(np.float32)
                  for n, t in compiled.input_types.items()}
        names = [o.name for o in session.get_outputs()]
        want = dict(zip(names, session.run(names, inputs)))
        itself = dict(zip(names, plain.run(names, inputs)))
        got = compiled.run(inputs)
        assert got.keys() == want.keys()
        for k in want:
            assert got[k].shape == want[k].shape
            atol = max(ATOL, 2 * float(np.abs(want[k] - itself[k]).max()))
            np.testing.assert_allclose(got[k], want[k], rtol=RTOL, atol=atol,
                                       err_msg=f"{k} (numpy only: {numpy_only})")
            assert np.abs(want[k]).max() > 1e-3  # the outputs say something
        slow_path = {graph.nodes[n].op_type for n, k in compiled.kernels.items()
                     if k == "reference"}
        assert slow_path <= NO_KERNEL_YET, slow_path
    return compiled


def _session(model_bytes: bytes, level):
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.graph_optimization_level = level
    return ort.InferenceSession(model_bytes, options, providers=["CPUExecutionProvider"])


# ops that may run their numpy reference (no dedicated kernel yet): none of these models'
NO_KERNEL_YET: set[str] = set()


def exported(name: str):
    model = cnngraph.to_onnx(cnngraph.load(name), weights="random", seed=1)
    return model.SerializeToString(), from_model(model)


@pytest.mark.parametrize("name,batch", [
    ("lenet5", 3), ("googlenet", 1), ("squeezenet1_0", 1), ("resnet18", 1),
    ("mobilenet_v2", 1), ("densenet121", 2),
    pytest.param("resnet50", 1, marks=slow), pytest.param("se_resnet50", 1, marks=slow),
    pytest.param("xception", 1, marks=slow), pytest.param("alexnet", 2, marks=slow),
    pytest.param("mobilenet_v1", 2, marks=slow), pytest.param("vgg16", 1, marks=slow),
    pytest.param("resnet34", 1, marks=slow), pytest.param("resnet101", 1, marks=slow),
    pytest.param("resnet152", 1, marks=slow),
])
def test_zoo_export(name, batch):
    check_against_onnxruntime(*exported(name), batch=batch)


@pytest.mark.parametrize("name", [
    "light-squeezenet", "light-inception_v1", "light-shufflenet", "light-inception_v2",
    pytest.param("light-densenet121", marks=slow), pytest.param("light-resnet50", marks=slow),
    pytest.param("light-bvlc_alexnet", marks=slow),
    pytest.param("light-zfnet512", marks=slow), pytest.param("light-vgg19", marks=slow),
])
def test_onnx_light_model(name):
    """The onnx package's real models; their weights are ConstantOfShape fills, replaced by
    random ones (the export's 'auto') so the outputs are worth comparing."""
    check_against_onnxruntime(*exported(name))


@pytest.mark.parametrize("file", ["resnet18_op13.onnx", "mobilenetv2_op13.onnx",
                                  "inception_op13.onnx", "se_resnet_op13.onnx",
                                  "tiny_unet_op17.onnx", "resnet18_dynamo_op18.onnx"])
def test_torch_exports(file):
    path = DATA / file
    compiled = check_against_onnxruntime(path.read_bytes(), cnngraph.load(str(path)))
    assert compiled.arena.nbytes == compiled.plan.arena_bytes
