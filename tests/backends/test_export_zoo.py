"""Every zoo model exports to an ONNX file that onnx's full checker accepts, onnxruntime runs,
and cnngraph reads back to the same numbers."""

import numpy as np
import onnx
import pytest

import cnngraph
from cnngraph.frontends import zoo


@pytest.mark.onnxruntime
@pytest.mark.parametrize("name", zoo.names())
def test_zoo_export_runs_in_onnxruntime_and_round_trips(name, tmp_path):
    import onnxruntime

    graph = cnngraph.load(name)
    path = tmp_path / f"{name}.onnx"
    cnngraph.export(graph, str(path), seed=1)
    onnx.checker.check_model(str(path), full_check=True)

    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    x = session.get_inputs()[0]
    shape = [2 if isinstance(d, str) else d for d in x.shape]
    rng = np.random.default_rng(0)
    a, b = (rng.standard_normal(shape).astype(np.float32) for _ in range(2))
    (ya,), (yb,) = session.run(None, {x.name: a}), session.run(None, {x.name: b})
    classes = 10 if name == "lenet5" else 1000
    assert ya.shape == (2, classes) and np.isfinite(ya).all()
    assert not np.allclose(ya, yb), "the output does not depend on the input"

    want, got = cnngraph.analyze(graph), cnngraph.analyze(cnngraph.load(str(path)))
    assert (got.totals.trainable_params, got.totals.non_trainable_params, got.totals.macs) == \
        (want.totals.trainable_params, want.totals.non_trainable_params, want.totals.macs)
    assert {b.name for b in got.blocks} == {b.name for b in want.blocks}
