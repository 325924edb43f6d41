"""`cnngraph report`: formats, options, and one clear line with exit code 2 for bad input."""

import json
import subprocess
import sys

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from cnngraph.cli import main
from cnngraph.frontends import light_model_path


def save(tmp_path, nodes, inputs, outputs, inits=(), name="m.onnx", opset=13):
    graph = helper.make_graph(nodes, "g", inputs, outputs, list(inits))
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    path = tmp_path / name
    onnx.save(model, str(path))
    return str(path)


def vi(name, shape, dtype=TensorProto.FLOAT):
    return helper.make_tensor_value_info(name, dtype, shape)


def conv_model(tmp_path, x_shape=(1, 3, 8, 8), w_shape=(4, 3, 3, 3), **attrs):
    w = numpy_helper.from_array(np.ones(w_shape, np.float32), "w")
    node = helper.make_node("Conv", ["x", "w"], ["y"], name="conv1", **attrs)
    return save(tmp_path, [node], [vi("x", x_shape)], [vi("y", None)], [w])


def run_cli(args, capsys):
    code = main(args)
    out, err = capsys.readouterr()
    return code, out, err


def assert_one_line_error(capsys, args, *fragments):
    code, out, err = run_cli(args, capsys)
    assert code == 2, (out, err)
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert "Traceback" not in err
    for f in fragments:
        assert f in lines[0], (f, lines[0])
    return lines[0]


# -- bad input ----------------------------------------------------------------------------------
def test_not_a_file(capsys, tmp_path):
    assert_one_line_error(capsys, ["report", str(tmp_path / "nope.onnx")], "nope.onnx",
                          "no such file")


def test_not_onnx(capsys, tmp_path):
    p = tmp_path / "notes.onnx"
    p.write_text("this is not a model\n" * 20)
    assert_one_line_error(capsys, ["report", str(p)], "notes.onnx", "not")


def test_truncated_protobuf(capsys, tmp_path):
    data = open(light_model_path("squeezenet"), "rb").read()
    p = tmp_path / "cut.onnx"
    p.write_bytes(data[: len(data) // 2])
    assert_one_line_error(capsys, ["report", str(p)], "cut.onnx", "not a readable ONNX model")


def test_cycle(capsys, tmp_path):
    nodes = [helper.make_node("Relu", ["b"], ["a"], name="first"),
             helper.make_node("Add", ["x", "a"], ["b"], name="second")]
    path = save(tmp_path, nodes, [vi("x", (1, 4))], [vi("b", None)])
    assert_one_line_error(capsys, ["report", path], "m.onnx", "cycle", "'first'", "'second'")


def test_undefined_tensor(capsys, tmp_path):
    nodes = [helper.make_node("Add", ["x", "ghost"], ["y"], name="adder")]
    path = save(tmp_path, nodes, [vi("x", (1, 4))], [vi("y", None)])
    assert_one_line_error(capsys, ["report", path], "m.onnx", "'adder'", "(Add)", "'ghost'")


def test_unknown_op_is_an_error_and_allow_unknown_lists_it(capsys, tmp_path):
    nodes = [helper.make_node("Relu", ["x"], ["a"], name="relu"),
             helper.make_node("FancyOp", ["a"], ["b"], name="fancy", domain="my.domain"),
             helper.make_node("Relu", ["b"], ["y"], name="after")]
    graph = helper.make_graph(nodes, "g", [vi("x", (1, 4))], [vi("y", None)])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13),
                                                    helper.make_opsetid("my.domain", 1)])
    path = str(tmp_path / "u.onnx")
    onnx.save(model, path)
    assert_one_line_error(capsys, ["report", path], "u.onnx", "'fancy'", "FancyOp",
                          "not supported")
    code, out, err = run_cli(["report", path, "--allow-unknown", "--format", "json"], capsys)
    assert code == 0, err
    data = json.loads(out)
    assert data["uncounted"] == ["fancy", "after"]
    assert [l["name"] for l in data["layers"]] == ["relu"]


def test_kernel_larger_than_padded_input(capsys, tmp_path):
    path = conv_model(tmp_path, x_shape=(1, 3, 4, 4), w_shape=(4, 3, 7, 7), pads=[1, 1, 1, 1])
    line = assert_one_line_error(capsys, ["report", path], "m.onnx", "'conv1'", "(Conv)",
                                 "kernel 7", "stride 1", "padding (1, 1)", "(1, 3, 4, 4)")
    assert "larger than the padded input" in line


def test_add_shape_mismatch(capsys, tmp_path):
    nodes = [helper.make_node("Add", ["x", "z"], ["y"], name="merge")]
    path = save(tmp_path, nodes, [vi("x", (1, 4, 8, 8)), vi("z", (1, 5, 8, 8))], [vi("y", None)])
    assert_one_line_error(capsys, ["report", path], "'merge'", "(Add)", "(1, 4, 8, 8)",
                          "(1, 5, 8, 8)")


def test_concat_mismatch(capsys, tmp_path):
    nodes = [helper.make_node("Concat", ["x", "z"], ["y"], name="cat", axis=1)]
    path = save(tmp_path, nodes, [vi("x", (1, 4, 8, 8)), vi("z", (1, 5, 7, 8))], [vi("y", None)])
    assert_one_line_error(capsys, ["report", path], "'cat'", "(Concat)", "(1, 5, 7, 8)")


def test_gemm_mismatch(capsys, tmp_path):
    w = numpy_helper.from_array(np.ones((10, 7), np.float32), "w")
    nodes = [helper.make_node("Gemm", ["x", "w"], ["y"], name="fc", transB=1)]
    path = save(tmp_path, nodes, [vi("x", (1, 8))], [vi("y", None)], [w])
    assert_one_line_error(capsys, ["report", path], "'fc'", "(Gemm)", "(1, 8)", "(10, 7)")


def test_missing_input_shape(capsys, tmp_path):
    nodes = [helper.make_node("Relu", ["x"], ["y"], name="r")]
    path = save(tmp_path, nodes, [vi("x", ("N", 3, "H", "W"))], [vi("y", None)])
    assert_one_line_error(capsys, ["report", path], "m.onnx", "input 'x'", "dimension 2",
                          "--input-shape")
    code, out, err = run_cli(["report", path, "--input-shape", "x=2x3x5x5", "--format", "json"],
                             capsys)
    assert code == 0, err
    assert json.loads(out)["layers"][0]["output_shapes"] == [[2, 3, 5, 5]]


def test_bad_input_shape_option(capsys, tmp_path):
    path = conv_model(tmp_path)
    assert_one_line_error(capsys, ["report", path, "--input-shape", "x=1by3"], "--input-shape")
    assert_one_line_error(capsys, ["report", path, "--input-shape", "y=1x3x8x8"], "'y'", "'x'")


def test_exit_code_and_no_traceback_from_a_real_process(tmp_path):
    p = tmp_path / "bad.onnx"
    p.write_bytes(b"\x08\x07garbage")
    proc = subprocess.run([sys.executable, "-m", "cnngraph.cli", "report", str(p)],
                          capture_output=True, text=True)
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1


# -- formats and options -----------------------------------------------------------------------
def test_json_schema_and_arithmetic(capsys):
    code, out, _ = run_cli(["report", "light-resnet50", "--format", "json"], capsys)
    assert code == 0
    d = json.loads(out)
    assert d["schema"] == "cnngraph.report/1"
    for key in ("model", "dtype", "batch", "inputs", "outputs", "layers", "blocks", "totals",
                "memory"):
        assert key in d
    t = d["totals"]
    assert t["flops"] == 2 * t["macs"] + t["other_flops"]
    assert t["params"] == sum(l["params"] for l in d["layers"])
    assert t["macs"] == sum(l["macs"] for l in d["layers"])
    assert t["param_bytes"] == 4 * t["params"]
    assert t["non_trainable_params"] == t["params"] - t["trainable_params"]
    m = d["memory"]
    assert m["inference_peak_bytes"] == m["param_bytes"] + m["inference_peak_activation_bytes"]
    for l in d["layers"]:
        assert l["flops"] == 2 * l["macs"] + l["other_flops"]
        assert l["activation_bytes"] == 4 * sum(int(np.prod(s)) for s in l["output_shapes"])
    assert d["inputs"][0]["shape"] == [1, 3, 224, 224]


def test_batch_and_dtype_scale_the_numbers(capsys):
    _, out1, _ = run_cli(["report", "light-squeezenet", "--format", "json"], capsys)
    _, out8, _ = run_cli(["report", "light-squeezenet", "--format", "json", "--batch", "8",
                          "--dtype", "float16"], capsys)
    a, b = json.loads(out1), json.loads(out8)
    assert b["batch"] == 8 and b["dtype"] == "float16"
    assert b["totals"]["macs"] == 8 * a["totals"]["macs"]
    assert b["totals"]["params"] == a["totals"]["params"]
    assert b["totals"]["param_bytes"] == a["totals"]["param_bytes"] // 2
    assert b["totals"]["activation_bytes"] == 8 * a["totals"]["activation_bytes"] // 2


def test_csv_markdown_sort_top(capsys):
    code, out, _ = run_cli(["report", "light-vgg19", "--format", "csv", "--sort", "params",
                            "--top", "3"], capsys)
    assert code == 0
    lines = out.strip().splitlines()
    assert lines[0].startswith("layer,op,output_shape,params")
    assert len(lines) == 4
    params = [int(l.split(",")[3]) for l in lines[1:]]
    assert params == sorted(params, reverse=True)
    assert params[0] == 25088 * 4096 + 4096  # fc6 holds the most parameters
    code, out, _ = run_cli(["report", "light-vgg19", "--format", "markdown"], capsys)
    assert code == 0 and "| layer | op |" in out and "inference peak" in out


def test_table_prints(capsys):
    code, out, _ = run_cli(["report", "light-bvlc_alexnet"], capsys)
    assert code == 0
    assert "60,965,224" in out and "MiB" in out and "inference peak" in out


def test_depth_groups_rows_by_block(capsys):
    import os

    path = os.path.join(os.path.dirname(__file__), "data", "resnet18_op13.onnx")
    code, out, _ = run_cli(["report", path, "--format", "json"], capsys)
    layers = json.loads(out)["layers"]
    code, out, _ = run_cli(["report", path, "--format", "csv", "--depth", "1"], capsys)
    assert code == 0
    rows = {r.split(",")[0]: r.split(",") for r in out.strip().splitlines()[1:]}
    for block in ("layer1", "layer2", "layer3", "layer4"):
        inside = [l for l in layers if l["block"] == block or l["block"].startswith(block + "/")]
        assert rows[block][1] == "block"
        assert int(rows[block][3]) == sum(l["params"] for l in inside)
        assert int(rows[block][4]) == sum(l["macs"] for l in inside)
    top_level = [l for l in layers if not l["block"]]
    assert len(rows) == 4 + len(top_level)  # the stem and head stay one row per layer
    assert sum(int(r[3]) for r in rows.values()) == sum(l["params"] for l in layers)


@pytest.mark.onnxruntime
def test_export_a_zoo_model_runs_in_onnxruntime_and_round_trips(capsys, tmp_path):
    import onnxruntime

    out = tmp_path / "lenet.onnx"
    code, printed, err = run_cli(["export", "lenet5", "-o", str(out), "--seed", "3"], capsys)
    assert code == 0, err
    assert "lenet.onnx" in printed
    onnx.checker.check_model(onnx.load(str(out)), full_check=True)
    session = onnxruntime.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    x = np.random.default_rng(0).standard_normal((2, 1, 32, 32)).astype(np.float32)
    (y,) = session.run(None, {session.get_inputs()[0].name: x})
    assert y.shape == (2, 10) and np.isfinite(y).all()
    _, a, _ = run_cli(["report", "lenet5", "--format", "json"], capsys)
    _, b, _ = run_cli(["report", str(out), "--format", "json"], capsys)
    a, b = json.loads(a), json.loads(b)
    assert b["totals"]["trainable_params"] == a["totals"]["trainable_params"] == 60_850
    assert b["totals"]["macs"] == a["totals"]["macs"]
    assert [l["block"] for l in b["layers"]] == [l["block"] for l in a["layers"]]


def test_export_errors_are_one_line(capsys, tmp_path):
    assert_one_line_error(capsys, ["export", "lenet5", "-o", str(tmp_path / "x.onnx"),
                                   "--weights", "keep"], "no value")
