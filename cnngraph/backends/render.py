"""Render: a graph as an annotated graphviz diagram (svg, png, pdf, or the dot source).

Every running layer is a box (op, name, output shape, the chosen annotations); edges carry
tensor shapes; skip connections are drawn in blue; blocks are clusters labelled with their
subtotals, or single boxes when collapsed (large graphs collapse by default). ``color_by``
fills boxes on a colour scale with a legend; ``highlight_peak`` marks the step of the memory
peak and the tensors alive there.

>>> import cnngraph
>>> dot = cnngraph.to_dot(cnngraph.load("lenet5"), color_by="flops")
>>> "cluster_" in dot.source and "legend" in dot.source
True
"""

from __future__ import annotations

import bisect
import html
import itertools
import math
import os
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Mapping, Optional, Sequence, Union

from ..errors import CnnGraphError
from ..ir import Graph
from ..passes.analysis import Analysis, analyze
from .report import human_bytes, human_count

if TYPE_CHECKING:
    import graphviz

ANNOTATIONS = ("shape", "params", "macs", "flops", "memory")
DEFAULT_ANNOTATE = ("shape", "params", "macs")
COLOR_BY = ("op", "flops", "macs", "params", "memory", "none")
RANKDIRS = ("TB", "LR", "BT", "RL")
FORMATS = ("svg", "png", "pdf", "dot")
# Past this many boxes, or boxes along the longest path (a diagram's height), a diagram stops
# being readable and dot slows down: blocks collapse, the deepest level that fits first.
# GoogLeNet (145 boxes, 63 deep) stays whole; ResNet-50 (168 deep) and ResNet-152 show one box
# per residual unit, DenseNet-121 one per dense layer.
AUTO_BOXES = 200
AUTO_RANKS = 100
# Edge labels are what slows dot most (a 3,500-box graph: 8 s without, over a minute with);
# past this many boxes, which only a graph without blocks reaches by default, edges go bare.
EDGE_LABEL_LIMIT = 1500

# Seven steps of ColorBrewer's YlOrRd: light = cheap, dark red = expensive.
SCALE = ("#ffffcc", "#ffeda0", "#fed976", "#feb24c", "#fd8d3c", "#f03b20", "#bd0026")
DARK = {"#f03b20", "#bd0026"}  # fills that need white text
# Op families share a pastel colour, so the same kind of layer looks the same in every diagram.
FAMILIES = (
    ("#a6cee3", ("Conv", "ConvTranspose", "SparseConv")),
    ("#fdbf6f", ("MaxPool", "AveragePool", "GlobalAveragePool", "GlobalMaxPool", "LpPool",
                 "Subsample", "MaxRoiPool")),
    ("#fb9a99", ("Gemm", "MatMul")),
    ("#ffff99", ("BatchNormalization", "LRN", "InstanceNormalization", "LayerNormalization",
                 "GroupNormalization")),
    ("#b2df8a", ("Relu", "Sigmoid", "Tanh", "Clip", "LeakyRelu", "PRelu", "Elu", "Selu",
                 "HardSigmoid", "HardSwish", "Softmax", "LogSoftmax", "Softplus", "Mish")),
    ("#cab2d6", ("Add", "Concat", "Mul", "Sum", "Sub", "Div", "Max", "Min", "Mean")),
)
OP_COLOR = {op: color for color, ops in FAMILIES for op in ops}
OTHER_OP = "#e0e0e0"  # reshapes, dropout and anything else
BLOCK_FILL = "#f2f2f2"
IO_FILL = "#ffffff"
SKIP = "#1f5fbf"
PEAK = "#8e24aa"  # violet: apart from the red end of the scale and the blue skip edges
FONT = "Helvetica"


class RenderError(CnnGraphError):
    """The diagram cannot be drawn as asked: a bad option, an unknown file type, no `dot`."""


# -- what is drawn -------------------------------------------------------------------------------
@dataclass
class Item:
    """One box: a layer, a collapsed block, a graph input or output."""

    id: str
    kind: str  # layer, block, input, output, unknown
    name: str  # layer name or block path
    op: str = ""
    cluster: str = ""  # block path of the cluster it sits in ('' = top level)
    shape: str = ""
    layers: int = 1
    metrics: dict = field(default_factory=dict)  # params, macs, flops, memory


def _shape(shape) -> str:
    return "x".join(map(str, shape)) if shape else "scalar"


def _parts(block: str) -> list[str]:
    return block.split("/") if block else []


def auto_depth(a: Analysis, max_boxes: int = AUTO_BOXES,
               max_ranks: int = AUTO_RANKS) -> Optional[int]:
    """None (draw every layer) if that fits in ``max_boxes`` boxes and ``max_ranks`` boxes
    along the longest path, else the deepest block level whose collapsed drawing fits (1 if
    none does; None if the graph has no blocks)."""
    deepest = max((len(_parts(l.block)) for l in a.layers), default=0)
    for depth in [None, *range(deepest, 0, -1)]:
        items, box_of, producer = _items(a, depth)
        if len(items) > max_boxes:
            continue
        if max(_levels(_edges(a, items, box_of, producer)).values(), default=0) < max_ranks:
            return depth
    return 1 if deepest else None


def _metrics(params, macs, flops, memory) -> dict:
    return {"params": params, "macs": macs, "flops": flops, "memory": memory}


def _items(a: Analysis, depth: Optional[int]):
    """The boxes, which box each layer is drawn in, and each graph tensor's producing box."""
    graph, shapes = a.graph, a.shapes
    items: dict[str, Item] = {}  # id -> item
    box_of: dict[str, str] = {}  # node name -> item id
    blocks = {b.name: b for b in a.blocks}
    for i, t in enumerate(graph.inputs):
        tt = shapes.types.get(t.name)
        items[f"I{i}"] = Item(f"I{i}", "input", t.name, shape=_shape(tt.shape) if tt else "?")
    block_ids: dict[str, str] = {}
    for i, l in enumerate(a.layers):
        parts = _parts(l.block)
        if depth is not None and len(parts) >= depth:
            path = "/".join(parts[:depth])
            bid = block_ids.get(path)
            if bid is None:
                b = blocks[path]
                bid = block_ids[path] = f"B{len(block_ids)}"
                items[bid] = Item(bid, "block", path, "block", "/".join(parts[:depth - 1]),
                                  layers=b.layers, metrics=_metrics(
                                      b.params, b.macs, b.flops, b.activation_bytes))
            # The block's output shape: that of its last layer, in execution order.
            items[bid].shape = ", ".join(_shape(s) for s in l.output_shapes)
            box_of[l.name] = bid
            continue
        items[f"L{i}"] = Item(f"L{i}", "layer", l.name, l.op, l.block,
                              ", ".join(_shape(s) for s in l.output_shapes),
                              metrics=_metrics(l.params, l.macs, l.flops, l.activation_bytes))
        box_of[l.name] = f"L{i}"
    for i, name in enumerate(a.uncounted):  # --allow-unknown: drawn, but counted in nothing
        node = graph.nodes[name]
        items[f"U{i}"] = Item(f"U{i}", "unknown", name, node.op_type, node.block, "?")
        box_of[name] = f"U{i}"
    producer = {t.name: f"I{i}" for i, t in enumerate(graph.inputs)}
    for t, node in graph.producer.items():
        if node in box_of:
            producer[t] = box_of[node]
    for i, t in enumerate(graph.outputs):
        tt = shapes.types.get(t)
        items[f"O{i}"] = Item(f"O{i}", "output", t, shape=_shape(tt.shape) if tt else "?")
    return items, box_of, producer


def _edges(a: Analysis, items, box_of, producer) -> list[tuple[str, str, str]]:
    """(source item, target item, tensor), once each, in execution order; none inside a box."""
    graph, constant = a.graph, a.shapes.constant
    seen: set = set()
    edges = []

    def add(src, dst, tensor):
        if src is not None and src != dst and (src, dst, tensor) not in seen:
            seen.add((src, dst, tensor))
            edges.append((src, dst, tensor))

    for name in graph.order():
        dst = box_of.get(name)
        if dst is None:
            continue  # folded at load time
        for t in graph.nodes[name].inputs:
            if t and t not in constant:
                add(producer.get(t), dst, t)
    for i, t in enumerate(graph.outputs):
        add(producer.get(t), f"O{i}", t)
    return edges


def _levels(edges) -> dict:
    """Each box's rank: the most boxes on a path to it (dot's layers, near enough)."""
    import networkx as nx

    dag = nx.DiGraph((u, v) for u, v, _ in edges)
    level: dict = {}
    for v in nx.topological_sort(dag):
        level[v] = max((level[u] + 1 for u in dag.predecessors(v)), default=0)
    return level


def _skip_edges(edges) -> set:
    """Edges u -> v where u also reaches v another way (residual shortcuts, dense
    connections), which dot otherwise draws like any other edge. Only merges can have one,
    and the search from u stops at v's rank, so this stays near linear where a transitive
    reduction is quadratic (5 s on a 1,000-node graph)."""
    succ: dict = {}
    preds: dict = {}
    for u, v, _ in edges:
        succ.setdefault(u, set()).add(v)
        preds.setdefault(v, set()).add(u)
    level = _levels(edges)
    skips = set()
    for v, sources in preds.items():
        if len(sources) < 2:
            continue
        for u in sources:
            others, seen, todo = sources - {u}, set(), [w for w in succ[u] if w != v]
            while todo:
                w = todo.pop()
                if w in others:
                    skips.add((u, v))
                    break
                if w not in seen and level[w] < level[v]:
                    seen.add(w)
                    todo.extend(succ.get(w, ()))
    return skips


# -- colour ----------------------------------------------------------------------------------------
def _scale(values: Sequence[int]) -> list[float]:
    """Bin edges spaced evenly on a log scale from the smallest positive value to the
    largest: costs span orders of magnitude, and on a linear scale every box but the few
    largest would look alike. (Quantile bins spread the colours more evenly but paint a 0.1%
    difference between two residual units as two colours.)

    >>> [round(e) for e in _scale([0, 1, 10_000_000])]
    [1, 10, 100, 1000, 10000, 100000, 1000000, 10000000]
    """
    positive = [v for v in values if v > 0]
    if not positive:
        return []
    lo, hi = math.log(min(positive)), math.log(max(positive))
    return [math.exp(lo + k * (hi - lo) / len(SCALE)) for k in range(len(SCALE) + 1)]


def _bin(value: int, edges: list[float]) -> Optional[int]:
    """The colour of a value (None for zero): edges[k] <= value < edges[k + 1], the top bin
    closed; a hair of slack so that exp(log(x)) lands where x belongs."""
    if value <= 0 or not edges:
        return None
    return max(0, min(bisect.bisect_right(edges, value * (1 + 1e-9)) - 1, len(SCALE) - 1))


def _fmt(metric: str, value: float) -> str:
    return human_bytes(int(value)) if metric == "memory" else human_count(int(round(value)))


# -- labels ----------------------------------------------------------------------------------------
LABELS = {"params": "params", "macs": "MACs", "flops": "FLOPs", "memory": "out"}


def _literal(text: str) -> str:
    """A name for a dot attribute: dot reads backslashes as escapes (a '\\N' becomes the node
    id, a final backslash swallows the closing quote), and no escaping survives every version,
    so a backslash becomes the look-alike reverse solidus operator."""
    return text.replace("\\", "\u29f5")


def _layers(n: int) -> str:
    return f"{n} layer" if n == 1 else f"{n} layers"


def _html(text: str) -> str:
    """Text for an HTML-like label (dot expands '\\N' there too, even written as an entity)."""
    return html.escape(_literal(text))


def _short(name: str, cluster: str, limit: int = 34) -> str:
    """The name inside its cluster (the cluster label says the rest), cut in the middle if
    long: both ends of a generated name tend to matter."""
    if cluster and name.startswith(cluster + "/"):
        name = name[len(cluster) + 1:]
    if len(name) > limit:
        name = name[:limit // 2 - 1] + "…" + name[-(limit // 2 - 1):]
    return name


def _metric_line(metrics: dict, annotate: Sequence[str], block: bool = False) -> str:
    parts = []
    for key in annotate:
        if key == "shape" or not metrics.get(key):
            continue  # zero params on a ReLU is noise
        label = "activations" if key == "memory" and block else LABELS[key]
        parts.append(f"{label} {_fmt(key, metrics[key])}")
    return " · ".join(parts)


def _label(item: Item, annotate: Sequence[str], extra: str = "", dark: bool = False) -> str:
    e = _html
    if item.kind in ("input", "output"):
        lines = [f"<b>{item.kind}</b> {e(item.name)}", e(item.shape)]
    elif item.kind == "block":
        title = _short(item.name, item.cluster)
        lines = [f"<b>{e(title)}</b>", _layers(item.layers)]
        if "shape" in annotate:
            lines.append(e(item.shape))
    else:
        lines = [f"<b>{e(item.op)}</b> {e(_short(item.name, item.cluster))}"]
        if item.kind == "unknown":
            lines.append("unknown op: not counted")
        elif "shape" in annotate:
            lines.append(e(item.shape))
    metric = _metric_line(item.metrics, annotate, item.kind == "block")
    if metric:
        lines.append(f'<font point-size="8">{e(metric)}</font>')
    if extra:
        lines.append(f'<font color="{"white" if dark else PEAK}"><b>{e(extra)}</b></font>')
    return "<" + "<br/>".join(lines) + ">"


def _cluster_label(block, annotate: Sequence[str], parent: str) -> str:
    e = _html
    metric = _metric_line({"params": block.params, "macs": block.macs, "flops": block.flops,
                           "memory": block.activation_bytes},
                          [k for k in annotate if k != "shape"] or ("params", "macs"), True)
    text = f"<b>{e(_short(block.name, parent, 48))}</b> · {_layers(block.layers)}"
    return f"<{text}<br/><font point-size=\"8\">{e(metric)}</font>>" if metric else f"<{text}>"


def _graph_label(name: str, notes: list[str]) -> str:
    rows = [f'<tr><td align="left"><font point-size="16"><b>{_html(name)}</b></font>'
            f'</td></tr>']
    rows += [f'<tr><td align="left">{note}</td></tr>' for note in notes]
    return f'<<table border="0" cellborder="0" cellspacing="2">{"".join(rows)}</table>>'


def _legend(heading: str, scale: list[tuple[str, str]], marks: list[tuple[str, str]],
            columns: int = 4) -> str:
    """The legend node: the colour scale in rows of ``columns``, then one row per mark."""
    def swatch(color):
        return (f'<td bgcolor="{color}" border="1" color="#9e9e9e" width="14" height="10" '
                f'fixedsize="true"></td>')

    span = 2 * columns
    rows = [f'<tr><td colspan="{span}" align="left"><b>{_html(heading)}</b></td></tr>'
            ] if heading and scale else []
    for i in range(0, len(scale), columns):
        rows.append("<tr>" + "".join(f'{swatch(c)}<td align="left">{_html(t)}</td>'
                                     for c, t in scale[i:i + columns]) + "</tr>")
    rows += [f'<tr>{swatch(c)}<td colspan="{span - 1}" align="left">{_html(t)}</td></tr>'
             for c, t in marks]
    return f'<<table border="0" cellborder="0" cellspacing="3">{"".join(rows)}</table>>'


# -- the diagram -----------------------------------------------------------------------------------
def _check(annotate, color_by, rankdir, depth) -> tuple[str, ...]:
    if isinstance(annotate, str):
        annotate = [a.strip() for a in annotate.split(",") if a.strip()]
    annotate = tuple(annotate)
    for a in annotate:
        if a not in ANNOTATIONS and a != "none":
            raise RenderError(f"annotation '{a}' is not one of {', '.join(ANNOTATIONS)} "
                              f"(or none)")
    if color_by not in COLOR_BY:
        raise RenderError(f"--color-by '{color_by}' is not one of {', '.join(COLOR_BY)}")
    if rankdir not in RANKDIRS:
        raise RenderError(f"--rankdir '{rankdir}' is not one of {', '.join(RANKDIRS)}")
    if depth is not None and depth != "all" and (not isinstance(depth, int) or depth < 1):
        raise RenderError(f"--depth {depth} must be a whole number of 1 or more, or 'all'")
    return tuple(a for a in annotate if a != "none")


def _require_graphviz():
    try:
        import graphviz
    except ImportError:
        raise RenderError("rendering needs the graphviz Python package: "
                          "pip install 'cnngraph[render]'") from None
    return graphviz


def _peak(graph: Graph, batch, input_shapes, dtype, schedule, inplace):
    """The step where live bytes peak under ``schedule``: (node, step, steps, bytes, tensors
    alive there)."""
    from ..passes.plan import plan_memory

    # inplace=False only when asked: the default path needs nothing but the plan's basics.
    options = {} if inplace else {"inplace": False}
    plan = plan_memory(graph, batch=batch, dtype=dtype, input_shapes=input_shapes,
                       schedule_kind=schedule, **options).to_dict()
    live = plan["live_bytes_per_step"]
    if not live:
        return None
    step = max(range(len(live)), key=live.__getitem__)  # the first step at the maximum
    alive = {t["name"] for t in plan["tensors"] if t["start"] <= step <= t["end"]}
    return plan["schedule"]["order"][step], step, len(live), live[step], alive


def to_dot(graph: Graph, *, annotate: Union[str, Sequence[str]] = DEFAULT_ANNOTATE,
           color_by: str = "op", depth: Union[int, str, None] = None, collapse: bool = False,
           rankdir: str = "TB", highlight_peak: bool = False, schedule: str = "optimal",
           batch: Optional[int] = None, input_shapes: Optional[Mapping[str, tuple]] = None,
           dtype: str = "float32", allow_unknown: bool = False, inplace: bool = True,
           analysis: Optional[Analysis] = None) -> "graphviz.Digraph":
    """The diagram of a graph as a ``graphviz.Digraph`` (``.source`` is the dot text).

    ``annotate``: what boxes show besides op and name (shape, params, macs, flops, memory, or
    'none'). ``color_by``: op, flops, macs, params, memory or none. ``depth``: collapse blocks
    nested ``depth`` deep into single boxes ('all' draws every layer; default: every layer
    if that fits in 200 boxes and 100 ranks, else the deepest level that does); ``collapse`` is
    ``depth=1``. ``highlight_peak`` marks the memory peak under ``schedule`` (an order
    cnngraph plan knows: own, list, dfs, heuristic, optimal; ``inplace=False``: without
    in-place reuse, as ``plan_memory``).

    >>> import cnngraph
    >>> dot = cnngraph.to_dot(cnngraph.load("resnet50"), depth=2, highlight_peak=True)
    >>> "layer1.0" in dot.source, "memory peak" in dot.source
    (True, True)
    """
    annotate = _check(annotate, color_by, rankdir, depth)
    graphviz = _require_graphviz()
    a = analysis or analyze(graph, batch=batch, dtype=dtype, input_shapes=input_shapes,
                            allow_unknown=allow_unknown)
    if collapse:
        depth = 1
    chosen = depth
    if depth is None:
        depth = auto_depth(a)
    elif depth == "all":
        depth = None
    items, box_of, producer = _items(a, depth)
    edges = _edges(a, items, box_of, producer)
    skips = _skip_edges(edges)

    peak = None
    if highlight_peak:
        peak = _peak(graph, batch, input_shapes, dtype, schedule, inplace)

    # Fill colours and the legend rows that explain them.
    fills: dict[str, str] = {}
    legend: list[tuple[str, str]] = []  # (colour, text) of the scale
    marks: list[tuple[str, str]] = []  # (colour, text) of the peak and skip marks
    if color_by == "op":
        ops = Counter(it.op for it in items.values() if it.kind == "layer")
        for op, _ in sorted(ops.items(), key=lambda kv: (-kv[1], kv[0])):
            legend.append((OP_COLOR.get(op, OTHER_OP), f"{op} ({ops[op]})"))
        for it in items.values():
            if it.kind == "layer":
                fills[it.id] = OP_COLOR.get(it.op, OTHER_OP)
        if any(it.kind == "block" for it in items.values()):
            legend.append((BLOCK_FILL, "collapsed block"))
    elif color_by != "none":
        drawn = [it for it in items.values() if it.kind in ("layer", "block")]
        edges_ = _scale([it.metrics[color_by] for it in drawn])
        for it in drawn:
            k = _bin(it.metrics[color_by], edges_)
            fills[it.id] = SCALE[k] if k is not None else "#ffffff"
        used = {_bin(it.metrics[color_by], edges_) for it in drawn}
        for k in range(len(SCALE)):
            if k in used:
                lo, hi = edges_[k], edges_[k + 1]
                legend.append((SCALE[k], f"{_fmt(color_by, lo)} – {_fmt(color_by, hi)}"))
        if None in used:
            legend.append(("#ffffff", "0"))

    t, m = a.totals, a.memory
    notes = [f"batch {a.batch} · {a.dtype} · {human_count(t.params)} params "
             f"({human_bytes(m.param_bytes)}) · {human_count(t.macs)} MACs · "
             f"{human_count(t.flops)} FLOPs · binary units (KiB = 1024 B)"]
    if "shape" in annotate and len(items) > EDGE_LABEL_LIMIT:
        notes.append(f"{len(items)} boxes: edges without shape labels (the boxes show them)")
    if depth is not None:
        how = "--collapse" if collapse else "automatically" if chosen is None else "--depth"
        notes.append(f"blocks nested {depth} deep drawn as single boxes ({how}); "
                     f"--depth all draws every layer")

    dot = graphviz.Digraph(_literal(graph.name or "model"))
    dot.attr("graph", rankdir=rankdir, fontname=FONT, fontsize="11", nodesep="0.22",
             ranksep="0.32", labelloc="t", labeljust="l", tooltip=_literal(graph.name or "model"),
             newrank="true", outputorder="edgesfirst")
    if len(items) > 120:
        # Crossing minimisation is dot's slow part; a bound keeps big graphs within seconds.
        dot.attr("graph", mclimit="0.3", nslimit="2", nslimit1="2", searchsize="10")
    dot.attr("node", shape="box", style="rounded,filled", fontname=FONT, fontsize="10",
             margin="0.08,0.03", height="0.3", penwidth="0.8", fillcolor=OTHER_OP)
    dot.attr("edge", fontname=FONT, fontsize="8", fontcolor="#555555", color="#777777",
             arrowsize="0.6", penwidth="0.8")

    peak_box, live_boxes, alive = None, set(), set()
    peak_text = ""
    if peak is not None:
        node, step, steps, live_bytes, alive = peak
        peak_box = box_of.get(node)
        live_boxes = {producer[t] for t in alive if t in producer}
        peak_text = f"memory peak: {human_bytes(live_bytes)} live"
        marks.append((PEAK, "memory peak (thick border) and the tensors live there (edges)"))
        notes.append(f'<font color="{PEAK}">memory peak: {human_bytes(live_bytes)} of '
                     f"activations live at step {step + 1}/{steps} ({_html(node)}, "
                     f"{schedule} order) in {len(alive)} tensors</font>")
    if skips:
        marks.append((SKIP, "skip connection (blue edge)"))

    # Clusters: every block path that holds a drawn box, nested in its parents.
    blocks = {b.name: b for b in a.blocks}
    children: dict[str, list[str]] = {}  # block path -> the clusters directly inside it
    members: dict[str, list[Item]] = {}
    seen_clusters: set[str] = set()
    for it in items.values():
        members.setdefault(it.cluster, []).append(it)
        parts = _parts(it.cluster)
        for k in range(1, len(parts) + 1):
            path = "/".join(parts[:k])
            if path not in seen_clusters:
                seen_clusters.add(path)
                children.setdefault("/".join(parts[:k - 1]), []).append(path)
    numbers = itertools.count(1)

    def box(g, it: Item):
        attrs = {"tooltip": _literal(it.name), "class": it.kind}
        extra = ""
        if it.kind in ("input", "output"):
            attrs.update(shape="box", style="rounded", fillcolor=IO_FILL, penwidth="1.2")
        elif it.kind == "block":
            attrs.update(peripheries="2", fillcolor=fills.get(it.id, BLOCK_FILL))
        elif it.kind == "unknown":
            attrs.update(style="rounded,dashed")
        else:
            attrs["fillcolor"] = fills.get(it.id, OTHER_OP)
        if attrs.get("fillcolor") in DARK:
            attrs["fontcolor"] = "white"
        if it.id in live_boxes:
            attrs.update(color=PEAK, penwidth="2", **{"class": attrs["class"] + " live"})
        if it.id == peak_box:
            attrs.update(color=PEAK, penwidth="3.5", **{"class": attrs["class"] + " peak"})
            extra = peak_text
        g.node(it.id, _label(it, annotate, extra, attrs.get("fillcolor") in DARK), **attrs)

    def cluster(g, path: str):
        with g.subgraph(name=f"cluster_{next(numbers)}") as c:
            parent = path.rpartition("/")[0]
            block = blocks.get(path)  # None: only unknown ops inside (--allow-unknown)
            label = _cluster_label(block, annotate, parent) if block else \
                f"<<b>{_html(_short(path, parent, 48))}</b>>"
            c.attr(label=label, style="rounded",
                   color="#9e9e9e", fontsize="10", tooltip=_literal(path), labeljust="l",
                   **{"class": "block"})
            fill(c, path)

    def fill(g, path: str):
        for it in members.get(path, ()):
            box(g, it)
        for child in children.get(path, ()):
            cluster(g, child)

    fill(dot, "")

    show_shapes = "shape" in annotate and len(items) <= EDGE_LABEL_LIMIT
    types = a.shapes.types
    for src, dst, tensor in edges:
        tt = types.get(tensor)
        attrs = {}
        if show_shapes:
            attrs["label"] = _shape(tt.shape) if tt else "?"
        cls = []  # SVG classes (graphviz adds 'edge' itself)
        if (src, dst) in skips:
            attrs.update(color=SKIP, penwidth="1.4")
            cls.append("skip")
        if tensor in alive:
            attrs.update(color=PEAK, penwidth="2.2")
            cls.append("live")
        if cls:
            attrs["class"] = " ".join(cls)
        attrs["tooltip"] = _literal(tensor)
        dot.edge(src, dst, **attrs)

    heading = {"op": "op type (layers):", "params": "parameters per box:",
               "macs": "MACs per box:", "flops": "FLOPs per box:",
               "memory": "activation bytes per box:"}.get(color_by, "")
    dot.attr("graph", label=_graph_label(graph.name or "model", notes))
    if legend or marks:
        # Its own rank above the inputs: beside them it would widen the diagram by its width.
        dot.node("legend", _legend(heading, legend, marks), shape="box", style="rounded",
                 color="#bdbdbd", fillcolor="white", fontsize="9", **{"class": "legend"})
        for it in items.values():
            if it.kind == "input":
                dot.edge("legend", it.id, style="invis")
    return dot


def render(graph: Graph, path: Union[str, os.PathLike], *, format: Optional[str] = None,
           **options) -> Path:
    """Write the diagram to ``path``: .svg, .png or .pdf (needs graphviz's ``dot`` program)
    or .dot (the source; needs nothing). ``options`` are ``to_dot``'s. Returns the path.

    >>> import cnngraph, tempfile, os
    >>> out = os.path.join(tempfile.mkdtemp(), "lenet5.dot")
    >>> cnngraph.render(cnngraph.load("lenet5"), out).suffix
    '.dot'
    """
    path = Path(path)
    fmt = (format or path.suffix.lstrip(".")).lower()
    if fmt == "gv":
        fmt = "dot"
    if fmt not in FORMATS:
        raise RenderError(f"{path}: cannot tell the format from the name; use .svg, .png, "
                          f".pdf or .dot")
    dot = to_dot(graph, **options)
    if fmt == "dot":
        path.write_text(dot.source, encoding="utf-8")
        return path
    graphviz = _require_graphviz()
    try:
        data = dot.pipe(format=fmt, quiet=True)
    except graphviz.ExecutableNotFound:
        raise RenderError(f"{path}: writing .{fmt} needs graphviz's `dot` program, which is not "
                          f"installed (Debian/Ubuntu: sudo apt-get install graphviz; .dot "
                          f"output works without it)") from None
    except graphviz.CalledProcessError as e:
        message = (e.stderr or b"").decode(errors="replace").strip().splitlines()
        raise RenderError(f"{path}: dot failed: {message[0] if message else e}") from None
    path.write_bytes(data)
    return path
