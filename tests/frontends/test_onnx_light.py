"""The real model-zoo graphs the onnx package ships: every one imports, and our shapes equal
onnx.shape_inference on every tensor onnx can infer."""


import numpy as np
import onnx
import pytest

import cnngraph
from cnngraph.frontends import LIGHT_MODELS, light_model_path


def onnx_shapes(path: str) -> dict[str, tuple]:
    model = onnx.shape_inference.infer_shapes(onnx.load(path), data_prop=True)
    out = {}
    for vi in list(model.graph.value_info) + list(model.graph.output):
        dims = vi.type.tensor_type.shape.dim
        if vi.type.tensor_type.HasField("shape") and all(d.HasField("dim_value") for d in dims):
            out[vi.name] = tuple(d.dim_value for d in dims)
    return out


@pytest.mark.parametrize("name", LIGHT_MODELS)
def test_shapes_equal_onnx_shape_inference(name):
    path = light_model_path(name)
    a = cnngraph.analyze(cnngraph.load(path))
    expected = onnx_shapes(path)
    assert len(expected) > 10, "onnx inferred too little for the test to mean anything"
    compared = 0
    for tensor, shape in expected.items():
        assert a.shapes.types[tensor].shape == shape, tensor
        compared += 1
    # every running node's outputs have a shape
    for layer in a.layers:
        assert all(all(d > 0 for d in s) for s in layer.output_shapes)
    assert compared == len(expected)


def _weight_elements(path: str) -> int:
    """Independent count: elements of every float weight the file defines, read straight from
    the protobuf (initializers that are float, and ConstantOfShape outputs whose shape is an
    initializer), skipping scalars."""
    model = onnx.load(path)
    inits = {i.name: onnx.numpy_helper.to_array(i) for i in model.graph.initializer}
    total = 0
    for arr in inits.values():
        if arr.dtype.kind == "f" and arr.size > 1:
            total += arr.size
    for node in model.graph.node:
        if node.op_type == "ConstantOfShape":
            total += int(np.prod(inits[node.input[0]]))
    return total


@pytest.mark.parametrize("name", LIGHT_MODELS)
def test_params_equal_the_weights_the_file_defines(name):
    path = light_model_path(name)
    a = cnngraph.analyze(cnngraph.load(path))
    assert a.totals.params == _weight_elements(path)


# Published counts: AlexNet (BVLC caffe model) 60,965,224; VGG-19 143,667,240; ResNet-50
# 25,557,032 trainable + 53,120 BN running statistics; SqueezeNet 1.1 (what the file holds)
# 1,235,496; GoogLeNet (BVLC, the paper's Table 1 without auxiliary heads) 6,998,552.
PUBLISHED = {
    "bvlc_alexnet": (60_965_224, 0),
    "vgg19": (143_667_240, 0),
    "resnet50": (25_557_032, 53_120),
    "squeezenet": (1_235_496, 0),
    "inception_v1": (6_998_552, 0),
}


@pytest.mark.parametrize("name", sorted(PUBLISHED))
def test_published_parameter_counts(name):
    trainable, non_trainable = PUBLISHED[name]
    t = cnngraph.analyze(cnngraph.load(light_model_path(name))).totals
    assert (t.trainable_params, t.non_trainable_params) == (trainable, non_trainable)


def test_alexnet_first_layer_is_the_domain_example():
    a = cnngraph.analyze(cnngraph.load(light_model_path("bvlc_alexnet")))
    conv1 = a.layers[0]
    assert conv1.op == "Conv"
    assert conv1.params == 96 * (11 * 11 * 3) + 96 == 34_944
    assert conv1.output_shapes == ((1, 96, 54, 54),)  # 224 input: floor((224-11)/4)+1 = 54
    assert conv1.macs == 96 * 11 * 11 * 3 * 54 * 54


@pytest.mark.parametrize("array", [
    np.arange(6, dtype=np.float32).reshape(2, 3), np.array([3, -1], np.int64),
    np.array(2.5, np.float64), np.arange(4, dtype=np.int32), np.array([1, 2], np.float16),
    np.array([True, False]), np.zeros((0, 3), np.float32)])
@pytest.mark.parametrize("raw", [True, False])
def test_tensor_to_array_equals_onnx(array, raw):
    from cnngraph.frontends.onnx import tensor_to_array

    t = onnx.numpy_helper.from_array(array)
    if not raw and t.raw_data:  # the typed-field layout some producers write
        t = onnx.helper.make_tensor("t", t.data_type, array.shape, array.ravel().tolist())
    got, want = tensor_to_array(t), onnx.numpy_helper.to_array(t)
    assert got.dtype == want.dtype and got.shape == want.shape
    np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("name", LIGHT_MODELS)
def test_the_same_model_in_newer_opsets_gives_the_same_numbers(name):
    """onnx's version converter rewrites the opset-9 graphs for opsets 13 (Unsqueeze axes,
    Split, Dropout and ReduceMean inputs) and the newest onnx knows: the numbers hold."""
    from onnx import version_converter

    from cnngraph.frontends import from_model

    model = onnx.load(light_model_path(name))
    base = cnngraph.analyze(from_model(model))
    for opset in (13, onnx.defs.onnx_opset_version()):
        a = cnngraph.analyze(from_model(version_converter.convert_version(model, opset)))
        assert a.graph.opset == opset
        assert (a.totals.params, a.totals.trainable_params, a.totals.macs) == \
            (base.totals.params, base.totals.trainable_params, base.totals.macs)
        # the converter may add nodes (Softmax's axis change): compare the tensors both have
        common = set(a.shapes.types) & set(base.shapes.types)
        assert len(common) > len(base.layers)
        assert all(a.shapes.types[t].shape == base.shapes.types[t].shape for t in common)
