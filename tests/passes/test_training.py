"""Training memory, budgets and the largest batch, on hand-built graphs and the zoo.

Every expected number is computed here from the domain rules (../shared/DOMAIN.md, "Memory"):
activations are summed, not maxed, and multiplied by the batch; parameters + one gradient per
trainable parameter + optimizer state."""

import math

import numpy as np
import pytest
from onnx import TensorProto, helper, numpy_helper

import cnngraph
from cnngraph.errors import CnnGraphError
from cnngraph.frontends import from_model
from cnngraph.passes.training import max_batch_size, parse_bytes, training_memory


def model(nodes, inputs, outputs, inits=(), opset=13):
    graph = helper.make_graph(nodes, "g", inputs, outputs, list(inits))
    m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    return from_model(m, source="test.onnx")


def vi(name, shape, dtype=TensorProto.FLOAT):
    return helper.make_tensor_value_info(name, dtype, shape)


def init(name, *shape):
    return numpy_helper.from_array(np.ones(shape, np.float32), name)


# x (N,3,8,8) -> conv 4x3x3x3 pad 1 -> relu -> flatten (a view) -> dense 256 -> 10
C_IN, C, HW, UNITS = 3, 4, 8, 10
FEATURES = C * HW * HW  # 256
PARAMS = C * C_IN * 9 + C + UNITS * FEATURES + UNITS  # 112 + 2570 = 2682
# elements per sample kept for the backward pass: input, conv out (relu writes over it in place:
# the conv's gradient needs its input, not its output; flatten aliases it), dense out
ACT_ELEMS = C_IN * HW * HW + FEATURES + UNITS  # 192 + 256 + 10 = 458


def chain():
    nodes = [
        helper.make_node("Conv", ["x", "w", "b"], ["c"], name="conv", pads=[1] * 4),
        helper.make_node("Relu", ["c"], ["r"], name="relu"),
        helper.make_node("Flatten", ["r"], ["f"], name="flatten"),
        helper.make_node("Gemm", ["f", "fw", "fb"], ["y"], name="fc", transB=1),
    ]
    return model(nodes, [vi("x", ("N", C_IN, HW, HW))], [vi("y", None)],
                 [init("w", C, C_IN, 3, 3), init("b", C), init("fw", UNITS, FEATURES),
                  init("fb", UNITS)])


def transient_elems():
    # backward step: gradients of a node's outputs + of its activation inputs; the largest is
    # relu or flatten (256 + 256) ... conv: 256 + 192, fc: 10 + 256
    return max(FEATURES + C_IN * HW * HW, FEATURES + FEATURES, UNITS + FEATURES)


@pytest.mark.parametrize("batch", [1, 3])
def test_chain_breakdown_by_hand(batch):
    m = training_memory(chain(), batch=batch, optimizer="sgd")
    assert m.params == m.trainable_params == PARAMS
    assert m.parameter_bytes == PARAMS * 4
    assert m.gradient_bytes == PARAMS * 4
    assert m.optimizer_bytes == 0
    assert m.activation_bytes == ACT_ELEMS * 4 * batch  # summed over layers, times the batch
    assert m.transient_bytes == transient_elems() * 4 * batch
    assert m.total_bytes == (PARAMS * 4 * 2 + ACT_ELEMS * 4 * batch
                             + transient_elems() * 4 * batch)
    assert m.as_dict()["total_bytes"] == m.total_bytes


def test_parameters_are_not_multiplied_by_the_batch():
    a, b = training_memory(chain(), batch=1), training_memory(chain(), batch=7)
    assert (a.parameter_bytes, a.gradient_bytes) == (b.parameter_bytes, b.gradient_bytes)
    assert b.activation_bytes == 7 * a.activation_bytes


def test_view_output_is_counted_once():
    # x -> relu -> reshape -> flatten -> identity -> relu : the three views alias relu's output
    shape = np.array([1, -1], np.int64)
    nodes = [helper.make_node("Relu", ["x"], ["a"], name="r1"),
             helper.make_node("Reshape", ["a", "s"], ["b"], name="reshape"),
             helper.make_node("Flatten", ["b"], ["c"], name="flatten"),
             helper.make_node("Identity", ["c"], ["d"], name="identity"),
             helper.make_node("Relu", ["d"], ["y"], name="r2")]
    g = model(nodes, [vi("x", (1, 2, 5, 5))], [vi("y", None)],
              [numpy_helper.from_array(shape, "s")])
    m = training_memory(g)
    assert m.activation_bytes == 2 * 50 * 4  # x, a (= b = c = d = y: r2 writes in place)


def test_inplace_outputs_share_storage_only_where_autograd_allows():
    # relu(x) -> add(a, x): the add writes over a (its gradient needs no input), the relu not
    # over x (the caller's input)
    nodes = [helper.make_node("Relu", ["x"], ["a"], name="relu"),
             helper.make_node("Add", ["a", "x"], ["y"], name="add")]
    m = training_memory(model(nodes, [vi("x", ("N", 8))], [vi("y", None)]), batch=2)
    assert m.activation_bytes == 2 * 16 * 4
    assert m.transient_bytes == 3 * 16 * 4  # add: grad of y + grads of a and x
    # x -> bn -> relu: the relu writes over bn's output; bn never over x (its gradient needs x)
    c = 4
    nodes = [helper.make_node("Exp", ["x"], ["e"], name="exp"),
             helper.make_node("BatchNormalization", ["e", "s", "b", "m", "v"], ["n"], name="bn"),
             helper.make_node("Relu", ["n"], ["y"], name="relu"),
             helper.make_node("Mul", ["y", "y"], ["z"], name="square")]
    g = model(nodes, [vi("x", (1, c, 2, 2))], [vi("z", None)],
              [init("s", c), init("b", c), init("m", c), init("v", c)])
    t = c * 4 * 4
    # x, e (exp's gradient needs e: no in-place), n (= y), z (the mul's gradient needs y)
    assert training_memory(g).activation_bytes == 4 * t


def test_adam_minus_sgd_is_two_copies_of_the_trainable_parameters():
    g = chain()
    sgd, mom = training_memory(g, optimizer="sgd"), training_memory(g, optimizer="momentum")
    adam, adamw = training_memory(g, optimizer="adam"), training_memory(g, optimizer="adamw")
    assert adam.total_bytes - sgd.total_bytes == 2 * PARAMS * 4
    assert mom.total_bytes - sgd.total_bytes == PARAMS * 4
    assert adamw.total_bytes == adam.total_bytes


def test_batchnorm_stats_get_no_gradient_or_optimizer_state():
    c = 8
    nodes = [helper.make_node("BatchNormalization", ["x", "s", "b", "m", "v"], ["y"], name="bn")]
    g = model(nodes, [vi("x", (1, c, 4, 4))], [vi("y", None)],
              [init("s", c), init("b", c), init("m", c), init("v", c)])
    m = training_memory(g, optimizer="adam")
    assert (m.params, m.trainable_params) == (4 * c, 2 * c)
    assert m.parameter_bytes == 4 * c * 4
    assert m.gradient_bytes == 2 * c * 4
    assert m.optimizer_bytes == 2 * (2 * c) * 4


def test_mixed_precision_halves_activations_and_gradients_keeps_master_weights():
    g = chain()
    full = training_memory(g, batch=4, optimizer="adam")
    mixed = training_memory(g, batch=4, optimizer="adam", mixed_precision=True)
    assert mixed.activation_bytes * 2 == full.activation_bytes
    assert mixed.transient_bytes * 2 == full.transient_bytes
    assert mixed.gradient_bytes * 2 == full.gradient_bytes
    assert mixed.parameter_bytes == PARAMS * (4 + 2)  # 32-bit master + 16-bit working copy
    assert mixed.optimizer_bytes == full.optimizer_bytes == 2 * PARAMS * 4  # 32-bit state


def test_float16_counts_everything_in_two_bytes():
    m = training_memory(chain(), dtype="float16", optimizer="momentum")
    assert m.parameter_bytes == m.gradient_bytes == m.optimizer_bytes == PARAMS * 2
    assert m.activation_bytes == ACT_ELEMS * 2


def long_chain(n=16, width=64):
    # Abs: its gradient needs its input, so no output is written in place
    nodes = [helper.make_node("Abs", [f"t{i}"], [f"t{i + 1}"], name=f"a{i}") for i in range(n)]
    return model(nodes, [vi("t0", ("N", width))], [vi(f"t{n}", None)])


def test_checkpointing_stores_sqrt_n_checkpoints_plus_one_segment():
    n, width, batch = 16, 64, 2
    g = long_chain(n, width)
    plain = training_memory(g, batch=batch)
    ck = training_memory(g, batch=batch, checkpointing=True)
    t = width * 4 * batch  # bytes of one tensor
    assert plain.activation_bytes == (n + 1) * t
    k = round(math.sqrt(n))  # 4 segments of 4 relus
    assert ck.segments == k
    # checkpoints: the input and the output of each segment but the last (read by the next)
    assert ck.checkpoint_bytes == k * t
    # one segment's own outputs: the last one's 4 (segments that end in a checkpoint have 3)
    assert ck.segment_bytes == (n // k) * t
    assert ck.activation_bytes == ck.checkpoint_bytes + ck.segment_bytes < plain.activation_bytes
    assert ck.full_activation_bytes == plain.activation_bytes
    assert ck.total_bytes < plain.total_bytes


def test_checkpointing_on_the_chain_and_a_residual_graph_never_adds():
    for g in (chain(), cnngraph.load("resnet18")):
        plain = training_memory(g, batch=2)
        ck = training_memory(g, batch=2, checkpointing=True)
        assert ck.activation_bytes <= plain.activation_bytes


@pytest.mark.parametrize("text,expected", [
    ("8GiB", 8 * 2**30), ("512MiB", 512 * 2**20), ("1.5GB", 1_500_000_000),
    ("1.5GiB", 3 * 2**29), ("4096", 4096), ("4096B", 4096), ("10 kb", 10_000),
    ("2TiB", 2 * 2**40), ("  3 gib ", 3 * 2**30), ("1e9", 10**9), (".5KiB", 512), (1234, 1234),
])
def test_parse_bytes(text, expected):
    assert parse_bytes(text) == expected


@pytest.mark.parametrize("text", ["", "GiB", "8 GiBs", "8G", "-1GiB", "0", "0MiB", "eight",
                                  "1.2.3GB", "8 Gib extra", True])
def test_parse_bytes_rejects_bad_input(text):
    with pytest.raises(CnnGraphError, match="memory size"):
        parse_bytes(text)


def test_bad_options_are_errors():
    with pytest.raises(CnnGraphError, match="optimizer 'lion'"):
        training_memory(chain(), optimizer="lion")
    with pytest.raises(CnnGraphError, match="batch"):
        training_memory(chain(), batch=0)
    with pytest.raises(CnnGraphError, match="mode"):
        max_batch_size(chain(), "1GiB", mode="serving")


def test_max_batch_size_is_exact_at_the_boundary():
    g = chain()
    for b in (1, 5, 37):
        total = training_memory(g, batch=b, optimizer="adam").total_bytes
        fit = max_batch_size(g, total, optimizer="adam")
        assert fit.batch == b and fit.total_bytes == total and fit.over_bytes == 0
        below = max_batch_size(g, total - 1, optimizer="adam")
        assert below.batch == (b - 1 if b > 1 else None)


def test_max_batch_size_is_monotonic_in_the_budget():
    g = chain()
    batches = [max_batch_size(g, budget, optimizer="adam", mixed_precision=True).batch or 0
               for budget in range(40_000, 400_000, 7_919)]
    assert batches == sorted(batches) and batches[-1] > batches[0]


def test_nothing_fits_says_by_how_much():
    g = chain()
    batch1 = training_memory(g, optimizer="adam").total_bytes
    fit = max_batch_size(g, batch1 - 100, optimizer="adam")
    assert fit.batch is None and not fit.fits
    assert fit.over_bytes == 100 and fit.batch1_bytes == batch1


def test_max_batch_size_inference_is_parameters_plus_the_plans_arena():
    g = cnngraph.load("googlenet")  # Concat slices at batch 1 only: the arena is not linear
    plans = {b: cnngraph.plan_memory(g, batch=b) for b in (1, 9, 10)}
    peak = {b: p.param_bytes + p.arena_bytes for b, p in plans.items()}
    fit = max_batch_size(g, peak[9], mode="inference")
    assert fit.batch == 9 and fit.total_bytes == peak[9]
    assert fit.arena_bytes == plans[9].arena_bytes
    assert max_batch_size(g, peak[10] - 1, mode="inference").batch == 9
    g = chain()
    peak = {b: cnngraph.plan_memory(g, batch=b) for b in (9,)}
    peak = {b: p.param_bytes + p.arena_bytes for b, p in peak.items()}
    training = max_batch_size(g, peak[9], mode="training")
    assert training.batch < 9  # training needs more than inference


def test_resnet50_adam_batch32():
    g = cnngraph.load("resnet50")
    m = training_memory(g, batch=32, optimizer="adam")
    assert m.params == 25_610_152
    fixed = m.parameter_bytes + m.gradient_bytes + m.optimizer_bytes
    # ~ 4 copies x 25.6M x 4 bytes; BN running stats (53,120) get no gradient or state
    assert fixed == 4 * m.params * 4 - 3 * (m.params - m.trainable_params) * 4
    assert fixed == pytest.approx(409e6, rel=0.01)
    assert m.activation_bytes > 5 * fixed  # activations dominate at batch 32
    # in place: each unit's ReLUs over its BNs' outputs, the residual Add over bn3's
    assert m.activation_bytes == pytest.approx(2.89e9, rel=0.01)
    per_sample = training_memory(g, batch=1).activation_bytes
    assert m.activation_bytes == 32 * per_sample
    ck = training_memory(g, batch=32, optimizer="adam", checkpointing=True)
    assert ck.activation_bytes < m.activation_bytes / 2
    mixed = training_memory(g, batch=32, optimizer="adam", mixed_precision=True)
    assert mixed.total_bytes < m.total_bytes
    fit = max_batch_size(g, "16GiB", optimizer="adam")
    assert training_memory(g, batch=fit.batch, optimizer="adam").total_bytes <= 16 * 2**30
    assert training_memory(g, batch=fit.batch + 1, optimizer="adam").total_bytes > 16 * 2**30
