"""Input binding, folding, inference memory, and weights that are never read."""

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

import cnngraph
from cnngraph.errors import InputShapeError, ShapeError
from cnngraph.frontends import from_model
from cnngraph.passes.shapes import infer_shapes


def vi(name, shape):
    return helper.make_tensor_value_info(name, TensorProto.FLOAT, shape)


def relu_model(shape):
    nodes = [helper.make_node("Relu", ["x"], ["y"], name="r")]
    g = helper.make_graph(nodes, "g", [vi("x", shape)], [vi("y", None)])
    return from_model(helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)]))


def test_symbolic_batch_defaults_to_one_and_follows_batch():
    g = relu_model(("N", 3, 8, 8))
    assert infer_shapes(g).types["y"].shape == (1, 3, 8, 8)
    assert infer_shapes(g, batch=5).types["y"].shape == (5, 3, 8, 8)


def test_batch_replaces_a_fixed_leading_dim():
    assert infer_shapes(relu_model((1, 3, 8, 8)), batch=4).types["y"].shape == (4, 3, 8, 8)


def test_input_shapes_and_their_errors():
    g = relu_model(("N", 3, "H", "W"))
    with pytest.raises(InputShapeError, match=r"input 'x' has unknown dimension 2 \('H'\)"):
        infer_shapes(g)
    assert infer_shapes(g, input_shapes={"x": (2, 3, 7, 9)}).types["y"].shape == (2, 3, 7, 9)
    with pytest.raises(InputShapeError, match="rank 3"):
        infer_shapes(g, input_shapes={"x": (3, 7, 9)})


def chain_model(channels, size=8):
    """x -> conv(c1) -> conv(c2) -> ... with 3x3 'same' convs: activations are c * size^2 * 4."""
    nodes, inits, prev, cin = [], [], "x", channels[0]
    for i, c in enumerate(channels[1:]):
        inits.append(numpy_helper.from_array(np.ones((c, cin, 3, 3), np.float32), f"w{i}"))
        nodes.append(helper.make_node("Conv", [prev, f"w{i}"], [f"a{i}"], name=f"c{i}",
                                      pads=[1, 1, 1, 1]))
        prev, cin = f"a{i}", c
    g = helper.make_graph(nodes, "g", [vi("x", (1, channels[0], size, size))],
                          [vi(prev, None)], inits)
    return from_model(helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)]))


def test_chain_peak_is_the_largest_adjacent_pair():
    channels = [3, 16, 64, 8, 32, 4]
    a = cnngraph.analyze(chain_model(channels), inplace=False)
    sizes = [c * 8 * 8 * 4 for c in channels]
    pairs = [sizes[i] + sizes[i + 1] for i in range(len(sizes) - 1)]
    assert a.memory.live_bytes == tuple(pairs)
    assert a.memory.peak_activation_bytes == max(pairs) < sum(sizes)
    params = sum(c * cin * 9 for cin, c in zip(channels, channels[1:]))
    assert a.memory.param_bytes == 4 * params
    assert a.memory.peak_bytes == 4 * params + max(pairs)


def test_skip_connection_keeps_its_input_alive():
    # x -> r1 -> r2 -> add(r2, x): x stays live across r1 and r2
    nodes = [helper.make_node("Relu", ["x"], ["a"], name="r1"),
             helper.make_node("Relu", ["a"], ["b"], name="r2"),
             helper.make_node("Add", ["b", "x"], ["y"], name="add")]
    g = helper.make_graph(nodes, "g", [vi("x", (1, 4, 4, 4))], [vi("y", None)])
    graph = from_model(helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)]))
    t = 4 * 4 * 4 * 4
    assert cnngraph.analyze(graph, inplace=False).memory.live_bytes == (2 * t, 3 * t, 3 * t)
    # in place: r2 writes over a, the add over b (x is the caller's input: never)
    assert cnngraph.analyze(graph).memory.live_bytes == (2 * t, 2 * t, 2 * t)


def test_zero_size_output_is_an_error_not_a_clamp():
    nodes = [helper.make_node("MaxPool", ["x"], ["y"], name="pool", kernel_shape=[3, 3],
                              strides=[2, 2])]
    g = helper.make_graph(nodes, "g", [vi("x", (1, 4, 2, 2))], [vi("y", None)])
    graph = from_model(helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)]),
                       source="small.onnx")
    with pytest.raises(ShapeError, match=r"small.onnx: node 'pool' \(MaxPool\).*kernel 3"):
        infer_shapes(graph)


def test_external_data_is_never_read(tmp_path):
    """A model whose weights live in a file that does not exist still analyses: weight bytes
    are never read and external-data paths never followed."""
    w = numpy_helper.from_array(np.ones((8, 3, 3, 3), np.float32), "w")
    w.ClearField("raw_data")
    w.data_location = TensorProto.EXTERNAL
    for k, v in (("location", "../../../etc/weights.bin"), ("offset", "0"), ("length", "864")):
        entry = w.external_data.add()
        entry.key, entry.value = k, v
    nodes = [helper.make_node("Conv", ["x", "w"], ["y"], name="c")]
    g = helper.make_graph(nodes, "g", [vi("x", (1, 3, 8, 8))], [vi("y", None)], [w])
    path = tmp_path / "ext.onnx"
    onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)]), str(path))
    a = cnngraph.analyze(cnngraph.load(str(path)))
    assert a.totals.params == 8 * 3 * 3 * 3
    assert a.layers[0].output_shapes == ((1, 8, 6, 6),)


def test_an_op_newer_than_the_models_opset_is_an_error():
    nodes = [helper.make_node("Gelu", ["x"], ["y"], name="gelu")]
    g = helper.make_graph(nodes, "g", [vi("x", (1, 4))], [vi("y", None)])
    graph = from_model(helper.make_model(g, opset_imports=[helper.make_opsetid("", 18)]))
    with pytest.raises(cnngraph.errors.UnsupportedOpError,
                       match="'Gelu' does not exist in opset 18"):
        infer_shapes(graph)


def test_nodes_listed_out_of_order_run_in_a_valid_order():
    """ONNX asks for topological order, but not every producer keeps it: the order is then
    sorted (deterministically), keeping the file's order where it is valid."""
    nodes = [helper.make_node("Relu", ["b"], ["y"], name="last"),
             helper.make_node("Relu", ["x"], ["a"], name="first"),
             helper.make_node("Relu", ["a"], ["b"], name="middle")]
    g = helper.make_graph(nodes, "g", [vi("x", (1, 2))], [vi("y", None)])
    graph = from_model(helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)]))
    assert graph.order() == ["first", "middle", "last"]
    assert sorted(graph.dag.edges) == [("first", "middle"), ("middle", "last")]
    a = cnngraph.analyze(graph)
    assert [layer.name for layer in a.layers] == ["first", "middle", "last"]
    assert cnngraph.analyze(graph, inplace=False).memory.live_bytes == (16, 16, 16)
