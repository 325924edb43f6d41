"""Memory plots: files written, PNGs, and the drawn data equal the plan's."""

import sys

import numpy as np
import pytest

import cnngraph
from cnngraph import cli
from cnngraph.passes.plan import plan_memory

pytest.importorskip("matplotlib")

from cnngraph.backends import plot  # noqa: E402

MIB = float(1 << 20)
PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def googlenet():
    return cnngraph.load("googlenet")


def _by_gid(ax, gid):
    found = [a for a in ax.get_children() if a.get_gid() == gid]
    assert len(found) == 1, gid
    return found[0]


def _is_png(path, at_least=10_000):
    data = path.read_bytes()
    return data[:8] == PNG and at_least < len(data) < 5_000_000


def test_timeline_series_and_peak(googlenet, tmp_path):
    chosen = plan_memory(googlenet, schedule_kind="list")
    own = plan_memory(googlenet, schedule_kind="dfs")  # a different order, to draw both
    assert chosen.schedule.order != own.schedule.order
    out = tmp_path / "t.png"
    fig = plot.plot_timeline(chosen, own, out, model="googlenet")
    assert _is_png(out)
    ax = fig.axes[0]
    for gid, p in (("chosen", chosen), ("own", own)):
        x, y = _by_gid(ax, gid).get_data()
        assert list(x) == list(range(len(p.schedule.live_bytes)))
        np.testing.assert_allclose(y, np.array(p.schedule.live_bytes) / MIB)
    s = chosen.schedule
    k = int(np.argmax(s.live_bytes))
    px, py = _by_gid(ax, "peak").get_data()
    assert (list(px), list(py)) == ([k], [s.peak_bytes / MIB])
    assert s.live_bytes[k] == s.peak_bytes
    labels = ax.get_legend_handles_labels()[1]
    assert any(s.names[k] in t and cnngraph.backends.report.human_bytes(s.peak_bytes) in t
               for t in labels)
    lb = _by_gid(ax, "lower_bound").get_ydata()
    assert list(lb) == [s.lower_bound_bytes / MIB] * 2
    assert ax.get_xlabel() == "step" and "MiB" in ax.get_ylabel()
    assert "googlenet" in ax.get_title() and "inference" in ax.get_title()
    assert "batch 1" in ax.get_title()


def test_timeline_same_order_draws_one_curve(googlenet):
    p = plan_memory(googlenet, schedule_kind="own")
    ax = plot.plot_timeline(p, p).axes[0]
    assert not [a for a in ax.get_children() if a.get_gid() == "own"]
    assert any("own order" in t for t in ax.get_legend_handles_labels()[1])


def test_arena_rectangles(googlenet, tmp_path):
    p = plan_memory(googlenet)
    out = tmp_path / "a.png"
    fig = plot.plot_arena(p, out, model="googlenet")
    assert _is_png(out)
    ax = fig.axes[0]
    rects = _by_gid(ax, "tensors").get_paths()
    want = [(a, o / MIB, e + 1, (o + b) / MIB)
            for b, a, e, o in zip(p.problem.sizes, p.starts, p.ends, p.placement.offsets) if b]
    assert len(rects) == len(want)
    for path, (x0, y0, x1, y1) in zip(rects, want):
        (bx0, by0), (bx1, by1) = path.get_extents().get_points()
        np.testing.assert_allclose([bx0, by0, bx1, by1], [x0, y0, x1, y1], atol=1e-9)
    assert _by_gid(ax, "arena").get_ydata()[0] == p.arena_bytes / MIB
    assert _by_gid(ax, "lower_bound").get_ydata()[0] == p.placement.lower_bound_bytes / MIB
    assert ax.get_xlabel() == "step" and "MiB" in ax.get_ylabel()


def test_cli_writes_both(tmp_path, capsys):
    out = tmp_path / "lenet.png"
    assert cli.main(["plan", "lenet5", "--plot", str(out)]) == 0
    assert _is_png(out, 5_000) and _is_png(tmp_path / "lenet.arena.png", 5_000)
    assert "arena" in capsys.readouterr().out


def test_cli_without_matplotlib(tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    out = tmp_path / "x.png"
    assert cli.main(["plan", "lenet5", "--plot", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "pip install cnngraph[plot]" in err[0]
    assert not out.exists()
