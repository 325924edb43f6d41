"""Diagrams: what the SVG shows (labels, clusters with subtotals, legend, skip edges, the memory
peak), every zoo model and example as dot source, speed on large graphs, and the errors."""

import re
import shutil
import time
import xml.etree.ElementTree as ET

import numpy as np
import pytest
from onnx import TensorProto, helper

import cnngraph
from cnngraph.backends.report import human_count
from cnngraph.cli import main
from cnngraph.frontends import examples, zoo
from cnngraph.frontends.builder import Network, residual_bottleneck

pytest.importorskip("graphviz")

from cnngraph.backends import render as R  # noqa: E402

needs_dot = pytest.mark.skipif(shutil.which("dot") is None, reason="needs graphviz's dot")
SVG = "{http://www.w3.org/2000/svg}"
XLINK = "{http://www.w3.org/1999/xlink}"


# -- reading an SVG that dot wrote --------------------------------------------------------------
def lines(texts):
    """The lines of a label: dot writes each font run as its own <text>; runs on one line
    share a baseline."""
    rows = {}
    for t in texts:
        rows.setdefault(float(t.get("y")), []).append((float(t.get("x")), "".join(t.itertext())))
    return [" ".join(text.strip() for _, text in sorted(row)) for _, row in sorted(rows.items())]


class Box:
    """One <g class="node ..."> (or cluster): its classes, tooltip, texts and fill."""

    def __init__(self, g):
        self.classes = set(g.get("class").split())
        self.id = g.find(f"{SVG}title").text
        link = g.find(f".//{SVG}a")
        self.tooltip = link.get(f"{XLINK}title") if link is not None else None
        self.texts = lines(g.iter(f"{SVG}text"))
        shape = next((e for e in g.iter() if e.tag in (f"{SVG}path", f"{SVG}polygon")
                      and e.get("fill") not in (None, "none")), None)
        self.fill = shape.get("fill") if shape is not None else None
        self.fills = {e.get("fill") for e in g.iter() if e.get("fill")}

    @property
    def text(self):
        return " ".join(self.texts)


def parse_svg(path):
    root = ET.parse(path).getroot()
    groups = [g for g in root.iter(f"{SVG}g") if g.get("class")]
    of = lambda kind: [Box(g) for g in groups if kind in g.get("class").split()]  # noqa: E731
    return {"nodes": of("node"), "clusters": of("cluster"), "edges": of("edge"),
            "title": " ".join(lines(next(g for g in groups if g.get("class") == "graph")
                                     .find(f"{SVG}g").iter(f"{SVG}text")))}


def svg_of(graph, tmp_path, name="g.svg", **options):
    path = cnngraph.render(graph, tmp_path / name, **options)
    assert path.read_text().startswith("<?xml")
    return parse_svg(path)


def by_tooltip(svg, name):
    (box,) = [b for b in svg["nodes"] if b.tooltip == name]
    return box


def peak_of(graph, schedule="optimal"):
    plan = cnngraph.plan_memory(graph, schedule_kind=schedule).to_dict()
    step = int(np.argmax(plan["live_bytes_per_step"]))
    alive = {t["name"] for t in plan["tensors"] if t["start"] <= step <= t["end"]}
    return plan["schedule"]["order"][step], alive


def big_graph(units=25):
    """A 1,013-node network: a stem, 4 stages of 25 bottleneck units, a classifier."""
    net = Network("big1000")
    x = net.conv(net.input("x", (1, 3, 32, 32)), 16, 3, activation="relu", name="stem")
    for s in range(4):
        with net.block(f"stage{s + 1}"):
            for u in range(units):
                x = residual_bottleneck(net, x, 8 << s, stride=2 if u == 0 and s else 1,
                                        name=f"unit{u}")
    net.output(net.dense(net.flatten(net.global_avg_pool(x)), 10))
    return net.build()


def dot_boxes(source):
    """Layer ids and collapsed blocks' layer counts in dot source."""
    layers = re.findall(r"^\s*L\d+ \[", source, re.M)
    blocks = [int(n) for n in re.findall(r"^\s*B\d+ \[label=<<b>[^<]*</b><br/>(\d+) layers?",
                                         source, re.M)]
    return len(layers), blocks


# -- what a diagram shows --------------------------------------------------------------------------
@pytest.mark.dot
@needs_dot
def test_lenet5_svg(tmp_path):
    g = cnngraph.load("lenet5")
    a = cnngraph.analyze(g)
    svg = svg_of(g, tmp_path, color_by="params", highlight_peak=True,
                 annotate="shape,params,macs")
    layers = [b for b in svg["nodes"] if "layer" in b.classes]
    assert len(layers) == len(a.layers)
    c1 = by_tooltip(svg, "c1")
    assert c1.texts[:2] == ["Conv c1", "1x6x28x28"]
    assert "params 156" in c1.text and "MACs 117.60 K" in c1.text
    # Edges carry shapes; the input and output are boxes of their own.
    assert "1x1x32x32" in [t for e in svg["edges"] for t in e.texts]
    assert by_tooltip(svg, "image").texts == ["input image", "1x1x32x32"]
    # Clusters: s2, c3, s4 with their subtotals.
    clusters = {c.tooltip: c for c in svg["clusters"]}
    assert set(clusters) == {"s2", "c3", "s4"}
    for name, c in clusters.items():
        b = a.block(name)
        assert f"{b.layers} layers" in c.text and f"params {human_count(b.params)}" in c.text
    # The colour scale: the layer with most parameters is darkest, parameterless ones white.
    most = max(a.layers, key=lambda l: l.params)
    assert by_tooltip(svg, most.name).fill == R.SCALE[-1]
    assert by_tooltip(svg, "c1_tanh").fill == "#ffffff"
    (legend,) = [b for b in svg["nodes"] if "legend" in b.classes]
    assert "parameters per box" in legend.text and "memory peak" in legend.text
    assert "–" in legend.texts[1]  # a range per colour
    assert R.SCALE[-1] in legend.fills and R.PEAK in legend.fills
    # The peak: one box, the node the plan peaks at, and the live tensors' edges.
    node, alive = peak_of(g)
    (peak,) = [b for b in svg["nodes"] if "peak" in b.classes]
    assert peak.tooltip == node and "memory peak" in peak.text
    live = {e.tooltip for e in svg["edges"] if "live" in e.classes}
    assert live and live <= alive
    assert "memory peak" in svg["title"] and "lenet5" in svg["title"]


@pytest.mark.dot
@needs_dot
def test_googlenet_inception_clusters(tmp_path):
    g = cnngraph.load("googlenet")
    a = cnngraph.analyze(g)
    svg = svg_of(g, tmp_path, annotate="shape,macs")
    inception = [c for c in svg["clusters"] if c.tooltip.startswith("inception_")]
    assert len(inception) == 9
    for c in inception:
        assert f"MACs {human_count(a.block(c.tooltip).macs)}" in c.text
    (legend,) = [b for b in svg["nodes"] if "legend" in b.classes]
    assert "op type" in legend.text and "Conv (57)" in legend.text
    assert R.OP_COLOR["Conv"] in legend.fills
    # Four branches leave each module's input: the concat reads four tensors.
    concat = by_tooltip(svg, "inception_3a/output")
    assert "Concat output" in concat.text


@pytest.mark.dot
@needs_dot
def test_densenet121_collapses_and_is_fast(tmp_path):
    g = cnngraph.load("densenet121")
    start = time.perf_counter()
    svg = svg_of(g, tmp_path, highlight_peak=True, color_by="flops")
    assert time.perf_counter() - start < 10
    blocks = [b for b in svg["nodes"] if "block" in b.classes]
    assert len(blocks) == 6 + 12 + 24 + 16  # one box per dense layer
    assert all("7 layers" in b.text for b in blocks)
    assert "nested 3 deep drawn as single boxes (automatically)" in svg["title"]
    assert {"features/denseblock1", "features/transition1"} <= {c.tooltip for c in
                                                                 svg["clusters"]}
    node, _ = peak_of(g)
    (peak,) = [b for b in svg["nodes"] if "peak" in b.classes]
    assert node.startswith(peak.tooltip + "/")  # the block that holds the peak step


@pytest.mark.dot
@needs_dot
def test_1000_node_graph_is_fast(tmp_path):
    g = big_graph()
    assert len(g) > 1000
    for depth in (None, "all"):
        start = time.perf_counter()
        svg = svg_of(g, tmp_path, depth=depth, highlight_peak=True)
        assert time.perf_counter() - start < 10
    assert len([b for b in svg["nodes"] if "layer" in b.classes]) == len(g)
    assert len([e for e in svg["edges"] if "skip" in e.classes]) == 4 * 24  # identity units


def chain_graph(convs=500):
    """A network without blocks: 500 conv + ReLU pairs, every third with a residual Add
    (1,167 nodes), which nothing can collapse."""
    net = Network("chain")
    x = net.input("x", (1, 8, 16, 16))
    for i in range(convs):
        y = net.conv(x, 8, 3, padding=1, activation="relu")
        x = net.add(x, y) if i % 3 == 0 else y
    net.output(x)
    return net.build()


@pytest.mark.dot
@needs_dot
def test_1000_nodes_without_blocks_is_fast(tmp_path):
    g = chain_graph()
    start = time.perf_counter()
    svg = svg_of(g, tmp_path, highlight_peak=True)
    assert time.perf_counter() - start < 10
    assert len([b for b in svg["nodes"] if "layer" in b.classes]) == len(g) > 1000
    assert len([e for e in svg["edges"] if "skip" in e.classes]) == 167


def test_edge_labels_go_on_huge_drawings(monkeypatch):
    monkeypatch.setattr(R, "EDGE_LABEL_LIMIT", 20)
    source = cnngraph.to_dot(cnngraph.load("lenet5")).source
    assert "edges without shape labels" in source
    assert not re.search(r"-> \w+ \[label=", source)


def test_skip_connections_are_marked():
    source = cnngraph.to_dot(cnngraph.load("resnet18"), depth="all").source
    # 8 units, 3 with a downsampling shortcut: 5 identity shortcuts.
    assert len(re.findall(r"class=skip", source)) == 5
    assert len(re.findall(r"class=skip", cnngraph.to_dot(cnngraph.load("vgg16")).source)) == 0


# -- depth ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("name, depth", [("lenet5", None), ("googlenet", None),
                                         ("resnet50", 2), ("se_resnet50", 2),
                                         ("densenet121", 3), ("light-densenet121", None)])
def test_auto_depth(name, depth):
    assert R.auto_depth(cnngraph.analyze(cnngraph.load(name))) == depth


def test_auto_depth_of_a_1000_node_graph():
    a = cnngraph.analyze(big_graph())
    assert R.auto_depth(a) == 1
    assert R.auto_depth(a, max_ranks=200) == 2


def test_depth_and_collapse():
    g = cnngraph.load("resnet50")
    n = len(cnngraph.analyze(g).layers)
    layers, blocks = dot_boxes(cnngraph.to_dot(g, depth=2).source)
    assert len(blocks) == 16 and layers + sum(blocks) == n
    layers, blocks = dot_boxes(cnngraph.to_dot(g, collapse=True).source)
    assert len(blocks) == 4 and layers + sum(blocks) == n
    assert dot_boxes(cnngraph.to_dot(g, depth="all").source) == (n, [])
    assert dot_boxes(cnngraph.to_dot(g, depth=9).source) == (n, [])
    assert "rankdir=LR" in cnngraph.to_dot(g, rankdir="LR", depth=1).source


def test_annotations():
    g = cnngraph.load("alexnet")
    plain = cnngraph.to_dot(g, annotate="none", color_by="none").source
    boxes = "\n".join(re.findall(r"^\s*L\d+ .*", plain, re.M))
    assert "params" not in boxes and "1x96x55x55" not in plain and "legend" not in plain
    full = cnngraph.to_dot(g, annotate=R.ANNOTATIONS).source
    assert "params 34.94 K" in full and "FLOPs" in full and "out 1.11 MiB" in full
    assert "L0 -> L1 [label=\"1x96x55x55\"" in full  # the edge


@pytest.mark.parametrize("schedule", ["own", "optimal"])
def test_peak_follows_the_schedule(schedule):
    g = cnngraph.load("googlenet")
    node, alive = peak_of(g, schedule)
    source = cnngraph.to_dot(g, highlight_peak=True, schedule=schedule).source
    (line,) = [s for s in source.splitlines() if '"layer peak' in s or '"layer live peak' in s]
    assert re.search(rf'tooltip="?{re.escape(node)}"?[] ]', line)
    assert f"{schedule} order" in source


# -- every model ---------------------------------------------------------------------------------
@pytest.mark.parametrize("name", zoo.names() + sorted(examples()))
def test_every_model_as_dot(name, tmp_path):
    g = cnngraph.load(name)
    n = len(cnngraph.analyze(g).layers)
    path = cnngraph.render(g, tmp_path / f"{name}.dot", highlight_peak=True)
    layers, blocks = dot_boxes(path.read_text())
    assert layers + sum(blocks) == n  # every layer drawn once, alone or in its block


@pytest.mark.dot
@needs_dot
@pytest.mark.parametrize("name", ["light-inception_v1", "light-resnet50", "xception"])
def test_real_svg(name, tmp_path):
    g = cnngraph.load(name)
    svg = svg_of(g, tmp_path, color_by="memory", highlight_peak=True)
    assert [b for b in svg["nodes"] if "peak" in b.classes]
    assert "activation bytes" in [b for b in svg["nodes"] if "legend" in b.classes][0].text


@pytest.mark.dot
@needs_dot
@pytest.mark.parametrize("suffix, magic", [(".png", b"\x89PNG"), (".pdf", b"%PDF")])
def test_png_and_pdf(suffix, magic, tmp_path):
    path = cnngraph.render(cnngraph.load("lenet5"), tmp_path / f"l{suffix}")
    assert path.read_bytes()[:4] == magic


def test_unknown_ops_are_drawn(tmp_path):
    nodes = [helper.make_node("Relu", ["x"], ["a"], name="r"),
             helper.make_node("FancyOp", ["a"], ["y"], name="fancy", domain="acme")]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info(
        "x", TensorProto.FLOAT, (1, 4))], [helper.make_tensor_value_info(
            "y", TensorProto.FLOAT, None)])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13),
                                                    helper.make_opsetid("acme", 1)])
    source = cnngraph.to_dot(cnngraph.frontends.from_model(model), allow_unknown=True).source
    assert "FancyOp" in source and "not counted" in source and "dashed" in source


# -- errors and the command line -----------------------------------------------------------------
def test_dot_output_needs_no_dot_program(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))  # no `dot` on it
    g = cnngraph.load("lenet5")
    assert cnngraph.render(g, tmp_path / "l.dot").read_text().startswith("digraph")
    with pytest.raises(R.RenderError, match="apt-get install graphviz"):
        cnngraph.render(g, tmp_path / "l.svg")
    assert not (tmp_path / "l.svg").exists()


def run(args, capsys):
    code = main(args)
    out, err = capsys.readouterr()
    return code, out, err


def test_cli_render(tmp_path, capsys):
    out = tmp_path / "r.dot"
    code, text, err = run(["render", "resnet18", "-o", str(out), "--annotate", "shape,flops",
                           "--color-by", "flops", "--depth", "2", "--rankdir", "LR",
                           "--highlight-peak", "--schedule", "own", "--batch", "4"], capsys)
    assert code == 0 and str(out) in text and not err
    source = out.read_text()
    assert "rankdir=LR" in source and "batch 4" in source and "own order" in source
    assert "1x3x224x224" not in source and "4x3x224x224" in source
    code, _, _ = run(["render", "googlenet", "-o", str(out), "--highlight-peak",
                      "--no-inplace"], capsys)
    assert code == 0 and "memory peak" in out.read_text()
    code, _, _ = run(["render", "lenet5", "-o", str(tmp_path / "c.dot"), "--collapse",
                      "--input-shape", "image=2x1x32x32"], capsys)
    assert code == 0 and "2x1x32x32" in (tmp_path / "c.dot").read_text()


@pytest.mark.parametrize("args, fragment", [
    (["-o", "x.jpg"], "use .svg, .png, .pdf or .dot"),
    (["-o", "x.dot", "--depth", "two"], "--depth 'two'"),
    (["-o", "x.dot", "--depth", "0"], "--depth 0"),
    (["-o", "x.dot", "--annotate", "shape,cost"], "annotation 'cost'"),
])
def test_cli_errors(args, fragment, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code, _, err = run(["render", "lenet5", *args], capsys)
    assert code == 2 and len(err.strip().splitlines()) == 1 and fragment in err


def test_cli_missing_dot(capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))
    code, _, err = run(["render", "lenet5", "-o", str(tmp_path / "l.png")], capsys)
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert "sudo apt-get install graphviz" in err


def test_readme_pictures(tmp_path, capsys):
    """The README's pictures exist and its render commands run (as .dot, to need no `dot`)."""
    readme = (R.Path(__file__).parents[2] / "README.md").read_text(encoding="utf-8")
    pictures = re.findall(r"!\[[^]]*\]\((docs/images/[^)]+\.png)\)", readme)
    assert len(pictures) == 2
    for picture in pictures:
        data = (R.Path(__file__).parents[2] / picture).read_bytes()
        assert data[:4] == b"\x89PNG" and 20_000 < len(data) < 2_000_000
    commands = re.findall(r"^ {4}cnngraph (render \S+ -o \S+\.png.*)$", readme, re.M)
    assert len(commands) == 2
    for command in commands:
        args = command.split()
        args[args.index("-o") + 1] = str(tmp_path / "out.dot")
        assert run(args, capsys)[0] == 0


def test_missing_graphviz_package(monkeypatch):
    monkeypatch.setitem(__import__("sys").modules, "graphviz", None)  # import graphviz fails
    with pytest.raises(R.RenderError, match=r"pip install 'cnngraph\[render\]'"):
        cnngraph.to_dot(cnngraph.load("lenet5"))


@pytest.mark.dot
@needs_dot
def test_odd_names(tmp_path):
    """Quotes, markup, colons and backslashes in names reach the SVG intact (a backslash as a
    look-alike: dot would read '\\N' as an escape)."""
    odd = 'r"<&>:1\\N'
    nodes = [helper.make_node("Relu", ["x"], ['t"<&>\\'], name=odd),
             helper.make_node("Relu", ['t"<&>\\'], ["y"], name="blk/b:2")]
    graph = helper.make_graph(nodes, 'g"<>', [helper.make_tensor_value_info(
        "x", TensorProto.FLOAT, (1, 4))], [helper.make_tensor_value_info(
            "y", TensorProto.FLOAT, None)])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    svg = svg_of(cnngraph.frontends.from_model(model), tmp_path, highlight_peak=True)
    shown = odd.replace("\\", "\u29f5")
    assert by_tooltip(svg, shown).texts[0] == f"Relu {shown}"
    assert {c.tooltip for c in svg["clusters"]} == {"blk"}
    assert "1 layer" in svg["clusters"][0].text
