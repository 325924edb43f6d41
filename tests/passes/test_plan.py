"""The memory plan and `cnngraph plan`: order, arena, training breakdown, budgets."""

import json

import pytest

import cnngraph
from cnngraph.cli import main
from cnngraph.passes.placement import check_placement
from cnngraph.passes.plan import plan_memory
from cnngraph.passes.training import training_memory


@pytest.mark.parametrize("name", ["lenet5", "googlenet", "densenet121", "xception"])
def test_plan_places_every_tensor_without_overlap(name):
    p = plan_memory(cnngraph.load(name))
    arena = check_placement(p.problem.sizes, p.starts, p.ends, p.placement.offsets, 64)
    assert arena == p.arena_bytes >= p.placement.lower_bound_bytes >= p.peak_activation_bytes
    assert p.lower_bound_bytes <= p.peak_activation_bytes
    own = plan_memory(cnngraph.load(name), schedule_kind="own")
    assert p.peak_activation_bytes <= own.peak_activation_bytes
    report = cnngraph.analyze(cnngraph.load(name)).memory
    assert own.peak_activation_bytes == report.peak_activation_bytes


def test_training_plan_total_is_the_training_breakdown():
    g = cnngraph.load("resnet18")
    p = plan_memory(g, mode="training", batch=4, optimizer="adam")
    assert p.peak_bytes == training_memory(g, batch=4, optimizer="adam").total_bytes


def test_cli_plan_json_and_budget(capsys, tmp_path):
    assert main(["plan", "googlenet", "--format", "json"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["schema"] == "cnngraph.plan/1"
    assert d["schedule"]["proven_optimal"] is True
    assert d["arena_bytes"] >= d["lower_bound_bytes"]
    assert len(d["live_bytes_per_step"]) == len(d["schedule"]["order"])
    assert max(d["live_bytes_per_step"]) == d["peak_activation_bytes"]
    assert d["peak_bytes"] == d["param_bytes"] + d["peak_activation_bytes"]
    assert all(t["start"] <= t["end"] for t in d["tensors"])

    assert main(["plan", "resnet50", "--mode", "training", "--optimizer", "adam",
                 "--budget", "8GiB"]) == 0
    assert "the largest batch that fits is" in capsys.readouterr().out
    assert main(["plan", "vgg16", "--budget", "100MiB"]) == 1  # exit 1: CI can gate on it
    assert "even batch 1 does not fit" in capsys.readouterr().out
    assert main(["plan", "vgg16", "--budget", "lots"]) == 2
    assert "lots" in capsys.readouterr().err
