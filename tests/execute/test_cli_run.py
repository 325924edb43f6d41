"""`cnngraph run`: inputs from .npy or random, outputs to .npy, --check and --bench against
onnxruntime, and one clear line with exit code 2 for bad input."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

import cnngraph
from cnngraph.cli import main

DATA = Path(__file__).resolve().parents[1] / "data"
RESNET = str(DATA / "resnet18_op13.onnx")  # torch export with weights, input N x 3 x 64 x 64


def run_cli(args, capsys):
    code = main(args)
    out, err = capsys.readouterr()
    return code, out, err


def one_line_error(capsys, args, *fragments):
    code, out, err = run_cli(args, capsys)
    assert code == 2, (out, err)
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err
    for f in fragments:
        assert f in lines[0], (f, lines[0])


def test_run_input_output_and_check(capsys, tmp_path):
    x = np.random.default_rng(0).standard_normal((2, 3, 64, 64)).astype(np.float32)
    np.save(tmp_path / "x.npy", x)
    out = tmp_path / "y.npy"
    code, text, err = run_cli(["run", RESNET, "--input", str(tmp_path / "x.npy"), "-o", str(out),
                               "--threads", "1", "--check"], capsys)
    assert code == 0, err
    assert "output: float32 2x10," in text
    assert "check output: max abs error" in text and "PASS" in text
    y = np.load(out)
    want = cnngraph.run_reference(cnngraph.load(RESNET), {"input": x})["output"]
    np.testing.assert_allclose(y, want, rtol=1e-4, atol=1e-5)


@pytest.mark.onnxruntime
def test_run_random_input_and_bench(capsys):
    code, text, err = run_cli(["run", RESNET, "--random-input", "--seed", "3", "--bench",
                               "--repeat", "3", "--threads", "1"], capsys)
    assert code == 0, err
    assert "bench: cnngraph" in text and "onnxruntime's latency" in text


def test_run_a_built_in_example(capsys):
    """The light models' weights are constant fills: they run, but their logits reach 1e9 and
    the softmax is too ill-conditioned to --check (test_models gives them random weights)."""
    code, text, err = run_cli(["run", "light-squeezenet", "--threads", "1"], capsys)
    assert code == 0, err
    assert "softmaxout_1: float32 1x1000x1x1" in text


def test_run_structure_only_model(capsys):
    one_line_error(capsys, ["run", "lenet5"], "structure only",
                   "cnngraph export MODEL --weights random")


def test_run_wrong_input_shape_and_dtype(capsys, tmp_path):
    np.save(tmp_path / "x.npy", np.zeros((1, 3, 32, 32), np.float32))
    one_line_error(capsys, ["run", RESNET, "--input", str(tmp_path / "x.npy")],
                   "input 'input' has shape (1, 3, 32, 32)", "(1, 3, 64, 64)")
    np.save(tmp_path / "i.npy", np.zeros((1, 3, 64, 64), np.int32))
    one_line_error(capsys, ["run", RESNET, "--input", str(tmp_path / "i.npy")],
                   "input 'input' is int32; the model takes float32")
    (tmp_path / "bad.npy").write_text("not numpy")
    one_line_error(capsys, ["run", RESNET, "--input", str(tmp_path / "bad.npy")],
                   "cannot read it as .npy")


def test_run_op_without_kernel(capsys, tmp_path):
    node = helper.make_node("Mystery", ["x"], ["y"], name="odd", domain="example.org")
    graph = helper.make_graph([node], "g", [helper.make_tensor_value_info(
        "x", TensorProto.FLOAT, [1, 2])], [helper.make_tensor_value_info("y", TensorProto.FLOAT,
                                                                         [1, 2])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13),
                                                    helper.make_opsetid("example.org", 1)])
    path = tmp_path / "odd.onnx"
    onnx.save(model, str(path))
    one_line_error(capsys, ["run", str(path)], "node 'odd' (Mystery)", "not supported")


def test_run_a_zoo_model_with_random_weights(capsys, tmp_path):
    code, text, err = run_cli(["run", "lenet5", "--weights", "random", "--seed", "2", "--check",
                               "--threads", "1", "-o", str(tmp_path / "y.npy")], capsys)
    assert code == 0, err
    assert "check output:" in text and ": PASS" in text
    assert np.load(tmp_path / "y.npy").shape == (1, 10)
