#!/usr/bin/env python3
"""How fast cnngraph analyzes a model, beside its peer onnx-tool, and whether the counts agree.

    python benchmarks/bench_analysis.py           # full run: writes results/analysis.json
                                                  # and the analysis section of README.md
    python benchmarks/bench_analysis.py --quick   # smoke run: 3 repeats, no 100k graphs,
                                                  # prints only, writes nothing

Three measurements, each a median over repeats (the two tools alternate, so a noisy core
slows both alike):
1. in-process analysis of every light model the onnx package ships and of a ResNet-50 with
   real weights (~100 MB, built once into benchmarks/.data/), cnngraph vs onnx-tool, with
   both tools' params and MACs side by side;
2. the CLI end to end (`cnngraph report FILE --format json` as a subprocess) on that ResNet-50;
3. synthetic ONNX graphs of 1k / 10k / 100k nodes (a deep Conv/Relu chain and wide
   inception-like modules): load + analyze time per node, which should stay flat.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import gc
import io
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import time
import warnings
from collections import Counter
from functools import partial
from importlib import metadata
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper
from rich.console import Console
from rich.table import Table

import cnngraph
from cnngraph.frontends import LIGHT_MODELS, light_model_path

HERE = Path(__file__).resolve().parent
DATA = HERE / ".data"  # scratch models, gitignored
RESULTS = HERE / "results" / "analysis.json"
README = HERE / "README.md"
BEGIN, END = "<!-- analysis:begin -->", "<!-- analysis:end -->"
LINEAR_OPS = {"Conv", "ConvTranspose", "Gemm", "MatMul"}
CLI_TARGET_S, SYNTH_TARGET_S = 1.0, 10.0


# --- timing -------------------------------------------------------------------------------

def timed(fn):
    """(seconds, result) of one call, after a collection so no earlier garbage is billed."""
    gc.collect()
    start = time.perf_counter()
    result = fn()
    return time.perf_counter() - start, result


def alternate(fns: dict, repeats: int) -> dict[str, list[float]]:
    """Time each callable `repeats` times, interleaved and in turn-swapped order."""
    names, times = list(fns), {n: [] for n in fns}
    for r in range(repeats):
        for name in (names if r % 2 == 0 else names[::-1]):
            times[name].append(timed(fns[name])[0])
    return times


def med(values: list[float]) -> float:
    return statistics.median(values)


# --- the two tools ------------------------------------------------------------------------

def run_cnngraph(path: str):
    return cnngraph.analyze(cnngraph.load(path))


def run_onnx_tool(path: str):
    """What `onnx_tool.model_profile` does up to its printout: load, shapes, profile.

    constant_folding is on: the light models compute their weights with ConstantOfShape, and
    without folding onnx-tool sees no weight and reports 0 params.
    """
    import onnx_tool

    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")
        graph = onnx_tool.Model(path, {"constant_folding": True, "verbose": False}).graph
        graph.graph_reorder_nodes()
        graph.shape_infer()
        graph.profile(exclude_ops=onnx_tool.NoMacsOps)
    return graph


def cnngraph_counts(a) -> dict:
    by_op, linear = Counter(), 0
    for layer in a.layers:
        by_op[layer.op] += layer.macs
        if layer.op in LINEAR_OPS:  # onnx-tool counts a bias add as one MAC
            linear += layer.macs + layer.other_flops
    return {"params": a.totals.params, "macs": a.totals.macs, "flops": a.totals.flops,
            "linear_macs_with_bias": linear, "macs_by_op": dict(by_op)}


def onnx_tool_counts(g) -> dict:
    by_op = Counter()
    for node in g.nodemap.values():
        if hasattr(node, "macs"):
            by_op[node.op_type] += int(round(node.macs[0]))
    return {"params": int(g.params), "macs": int(round(g.macs[0])),
            "linear_macs_with_bias": sum(v for k, v in by_op.items() if k in LINEAR_OPS),
            "macs_by_op": dict(by_op)}


def short_error(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    return f"{type(e).__name__}: {text[0][:160] if text else ''}".rstrip(": ")


# --- 1. in-process analysis ---------------------------------------------------------------

def real_resnet50() -> Path:
    """light_resnet50 with every ConstantOfShape replaced by random float32 weights (built
    once into .data/)."""
    path = DATA / "resnet50_real_weights.onnx"
    if path.exists():
        return path
    model = onnx.load(light_model_path("resnet50"))
    g = model.graph
    inits = {t.name: t for t in g.initializer}
    rng = np.random.default_rng(0)
    nodes, weights, dropped = [], [], set()
    for node in g.node:
        if node.op_type != "ConstantOfShape":
            nodes.append(node)
            continue
        shape = tuple(int(d) for d in numpy_helper.to_array(inits[node.input[0]]))
        data = rng.standard_normal(shape, dtype=np.float32) * np.float32(0.05)
        weights.append(numpy_helper.from_array(data, node.output[0]))
        dropped.add(node.input[0])
    del g.node[:]
    g.node.extend(nodes)
    kept = [t for t in g.initializer if t.name not in dropped] + weights
    del g.initializer[:]
    g.initializer.extend(kept)
    # IR 3 lists every initializer among the graph inputs too.
    inputs = [vi for vi in g.input if vi.name not in dropped]
    inputs += [helper.make_tensor_value_info(w.name, TensorProto.FLOAT, list(w.dims))
               for w in weights]
    del g.input[:]
    g.input.extend(inputs)
    onnx.checker.check_model(model)
    save_atomically(model, path)
    return path


def mac_gap(cg: dict, ot: dict) -> dict[str, int]:
    """Per op, onnx-tool MACs minus cnngraph MACs (nonzero only, biggest first)."""
    ops = set(cg["macs_by_op"]) | set(ot["macs_by_op"])
    gap = {op: ot["macs_by_op"].get(op, 0) - cg["macs_by_op"].get(op, 0) for op in ops}
    return dict(sorted(((k, v) for k, v in gap.items() if v), key=lambda kv: -abs(kv[1])))


def bench_model(name: str, path: str, repeats: int) -> dict:
    row = {"model": name, "file_mb": round(os.path.getsize(path) / 1e6, 1)}
    a = run_cnngraph(path)  # warm-up, and the counts
    row["nodes"] = len(a.graph)
    row["cnngraph"] = cnngraph_counts(a)
    fns = {"cnngraph": lambda: run_cnngraph(path)}
    try:
        row["onnx_tool"] = onnx_tool_counts(run_onnx_tool(path))
        fns["onnx_tool"] = lambda: run_onnx_tool(path)
    except (Exception, SystemExit) as e:  # onnx-tool calls exit() on some bad files
        row["onnx_tool"] = {"error": short_error(e)}
    times = alternate(fns, repeats)
    for tool, ts in times.items():
        row[tool]["seconds"] = med(ts)
        row[tool]["runs"] = [round(t, 5) for t in ts]
    ot = row["onnx_tool"]
    if "error" not in ot:
        row["ratio"] = ot["seconds"] / row["cnngraph"]["seconds"]
        row["params_agree"] = ot["params"] == row["cnngraph"]["params"]
        row["linear_macs_agree"] = (ot["linear_macs_with_bias"]
                                    == row["cnngraph"]["linear_macs_with_bias"])
        row["mac_gap_by_op"] = mac_gap(row["cnngraph"], ot)
    return row


def bench_models(repeats: int, console: Console) -> list[dict]:
    models = [(n, light_model_path(n)) for n in LIGHT_MODELS]
    models.append(("resnet50 (real weights)", str(real_resnet50())))
    rows = []
    for name, path in models:
        console.log(f"analysis: {name}")
        rows.append(bench_model(name, path, repeats))
    return rows


# --- 2. the CLI end to end ----------------------------------------------------------------

def cli_command() -> list[str]:
    script = Path(sys.executable).with_name("cnngraph")
    found = str(script) if script.exists() else shutil.which("cnngraph")
    return [found] if found else [sys.executable, "-c", "import sys; from cnngraph.cli import "
                                                        "main; sys.exit(main())"]


def bench_cli(path: Path, repeats: int) -> dict:
    cmd = cli_command() + ["report", str(path), "--format", "json"]
    startup = [sys.executable, "-c", "import cnngraph.cli"]

    def report():
        out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
        return json.loads(out)

    report()  # warm the page cache
    times = alternate({"report": report,
                       "import": lambda: subprocess.run(startup, check=True)}, repeats)
    return {"command": "cnngraph report " + path.name + " --format json",
            "seconds": med(times["report"]), "runs": [round(t, 4) for t in times["report"]],
            "python_import_seconds": med(times["import"]), "target_seconds": CLI_TARGET_S,
            "meets_target": med(times["report"]) < CLI_TARGET_S}


# --- 3. synthetic graphs ------------------------------------------------------------------

def _conv(nodes, inits, rng, x, scope, cin, cout, k):
    """Conv kxk (own weights and bias) + Relu, named the way torch.onnx.export names them."""
    w, b, y = f"{scope.replace('/', '.')}.weight", f"{scope.replace('/', '.')}.bias", f"/{scope}/"
    inits.append(numpy_helper.from_array(
        rng.standard_normal((cout, cin, k, k), dtype=np.float32) * np.float32(0.1), w))
    inits.append(numpy_helper.from_array(np.zeros(cout, np.float32), b))
    nodes.append(helper.make_node("Conv", [x, w, b], [y + "Conv_output_0"], name=y + "Conv",
                                  kernel_shape=[k, k], pads=[k // 2] * 4))
    nodes.append(helper.make_node("Relu", [y + "Conv_output_0"], [y + "Relu_output_0"],
                                  name=y + "Relu"))
    return y + "Relu_output_0"


def _model(name, nodes, inits, channels, out, out_channels):
    graph = helper.make_graph(
        nodes, name, [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, channels, 8, 8])],
        [helper.make_tensor_value_info(out, TensorProto.FLOAT, [1, out_channels, 8, 8])], inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])


def build_chain(n_nodes: int) -> onnx.ModelProto:
    """Conv 3x3 16->16 + Relu, n_nodes/2 times, on 8x8; every conv has its own weights."""
    rng, nodes, inits, x = np.random.default_rng(0), [], [], "x"
    for i in range(n_nodes // 2):
        x = _conv(nodes, inits, rng, x, f"stage{i // 50}/layer{i}", 16, 16, 3)
    return _model("chain", nodes, inits, 16, x, 16)


def build_branching(n_nodes: int) -> onnx.ModelProto:
    """Inception-like modules of 16 nodes: 4 parallel branches, Concat, 1x1 conv back to 16."""
    rng, nodes, inits, x = np.random.default_rng(0), [], [], "x"
    for i in range(max(1, round(n_nodes / 16))):
        m = f"module{i}"
        b1 = _conv(nodes, inits, rng, x, f"{m}/b1", 16, 8, 1)
        b2 = _conv(nodes, inits, rng, _conv(nodes, inits, rng, x, f"{m}/b2a", 16, 8, 1),
                   f"{m}/b2b", 8, 8, 3)
        b3 = _conv(nodes, inits, rng, _conv(nodes, inits, rng, x, f"{m}/b3a", 16, 4, 1),
                   f"{m}/b3b", 4, 8, 5)
        pool, cat = f"/{m}/MaxPool", f"/{m}/Concat"
        nodes.append(helper.make_node("MaxPool", [x], [pool + "_output_0"], name=pool,
                                      kernel_shape=[3, 3], pads=[1, 1, 1, 1]))
        b4 = _conv(nodes, inits, rng, pool + "_output_0", f"{m}/b4", 16, 8, 1)
        nodes.append(helper.make_node("Concat", [b1, b2, b3, b4], [cat + "_output_0"], name=cat,
                                      axis=1))
        x = _conv(nodes, inits, rng, cat + "_output_0", f"{m}/proj", 32, 16, 1)
    return _model("branching", nodes, inits, 16, x, 16)


def synthetic_file(kind: str, n_nodes: int) -> Path:
    """The graph saved once under .data/ (delete the folder after changing a builder)."""
    path = DATA / f"synth_{kind}_{n_nodes}.onnx"
    if not path.exists():
        model = {"chain": build_chain, "branching": build_branching}[kind](n_nodes)
        if n_nodes <= 1000:
            onnx.checker.check_model(model)
        save_atomically(model, path)
    return path


def save_atomically(model: onnx.ModelProto, path: Path) -> None:
    """Write to a temporary name first, so an interrupted run leaves no half-written model."""
    DATA.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    onnx.save(model, str(tmp))
    tmp.replace(path)


def bench_synthetic(sizes: list[int], repeats: int, console: Console) -> list[dict]:
    rows = []
    cnngraph.analyze(cnngraph.load(str(synthetic_file("chain", sizes[0]))))  # warm-up
    for kind in ("chain", "branching"):
        for n in sizes:
            console.log(f"synthetic: {kind} {n:,} nodes")
            path = str(synthetic_file(kind, n))
            load_s, analyze_s = [], []
            for _ in range(repeats if n < 100_000 else min(repeats, 5)):
                t_load, graph = timed(partial(cnngraph.load, path))
                t_an, a = timed(partial(cnngraph.analyze, graph))
                load_s.append(t_load)
                analyze_s.append(t_an)
            total = med([x + y for x, y in zip(load_s, analyze_s)])
            rows.append({"kind": kind, "nodes": len(graph), "params": a.totals.params,
                         "file_mb": round(os.path.getsize(path) / 1e6, 1),
                         "load_seconds": med(load_s), "analyze_seconds": med(analyze_s),
                         "seconds": total, "us_per_node": total / len(graph) * 1e6})
            del graph, a
    for kind in ("chain", "branching"):
        ks = [r for r in rows if r["kind"] == kind]
        for r in ks:
            r["per_node_vs_smallest"] = r["us_per_node"] / ks[0]["us_per_node"]
    return rows


# Steps of load + analyze worth naming: (path suffix, function) -> label.
PHASES = {
    ("cnngraph/frontends/onnx_weights.py", "load_lean"):
        "load_lean (wire walk, protobuf parse without the weights)",
    ("cnngraph/frontends/onnx.py", "from_model"): "from_model (ModelProto -> Graph)",
    ("onnx/helper.py", "get_attribute_value"): "- of which onnx.helper.get_attribute_value",
    ("cnngraph/ir.py", "freeze"):
        "- of which Graph.freeze (producer and consumer indexes, order check)",
    ("cnngraph/passes/shapes.py", "infer_shapes"): "infer_shapes",
    ("cnngraph/passes/cost.py", "count_costs"): "count_costs",
    ("cnngraph/passes/analysis.py", "inference_memory"): "inference_memory",
    ("cnngraph/passes/shapes.py", "make_call"): "make_call (in both passes)",
    ("cnngraph/passes/shapes.py", "_value"): "shapes._value (decodes every small initializer)",
    ("onnx/numpy_helper.py", "to_array"): "numpy_helper.to_array (weight bytes)",
    ("fromnumeric.py", "prod"): "np.prod on shape tuples (all callers)",
    ("cnngraph/ir.py", "order"): "Graph.order (networkx lexicographic topo sort)",
}


def profile_hotspots(path: str, top: int = 10) -> dict:
    """Where one load + analyze spends its time, under cProfile (shares, not seconds, count:
    the profiler slows Python calls more than C calls)."""
    import cProfile
    import pstats

    prof = cProfile.Profile()
    prof.runcall(lambda: cnngraph.analyze(cnngraph.load(path)))
    stats = pstats.Stats(prof).stats  # (file, line, func) -> (cc, nc, tottime, cumtime, ...)
    total = sum(v[2] for v in stats.values())

    def short(key):
        file, line, func = key
        file = file.replace(os.sep, "/")
        for root in ("site-packages/", "/cnngraph/"):
            if root in file:
                file = ("cnngraph/" if root == "/cnngraph/" else "") + file.split(root, 1)[1]
        return f"{file}:{line}({func})"

    phases = []
    for (suffix, func), label in PHASES.items():
        hits = [v for k, v in stats.items() if k[2] == func and
                k[0].replace(os.sep, "/").endswith(suffix)]
        if hits:
            cum = sum(v[3] for v in hits)
            phases.append({"step": label, "calls": sum(v[1] for v in hits),
                           "share": round(cum / total, 3)})
    own = sorted(stats.items(), key=lambda kv: -kv[1][2])[:top]
    return {"file": os.path.basename(path), "profiled_seconds": round(total, 2), "steps": phases,
            "top_own_time": [{"function": short(k), "calls": v[1], "share": round(v[2] / total, 3)}
                             for k, v in own]}


# --- report -------------------------------------------------------------------------------

def machine_info() -> dict:
    cpu = platform.processor() or platform.machine()
    with contextlib.suppress(OSError):
        m = re.search(r"model name\s*:\s*(.+)", Path("/proc/cpuinfo").read_text())
        cpu = m.group(1).strip() if m else cpu

    def version(dist):
        try:
            return metadata.version(dist)
        except metadata.PackageNotFoundError:
            return None

    def git(*args):
        return subprocess.run(["git", *args], cwd=HERE, capture_output=True,
                              text=True).stdout.strip()

    commit = git("rev-parse", "--short", "HEAD") or None
    if commit and git("status", "--porcelain", "--", str(HERE.parent / "cnngraph")):
        commit += " + uncommitted changes to cnngraph/"
    return {"date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "cpu": cpu, "nproc": os.cpu_count(), "python": platform.python_version(),
            "platform": platform.platform(), "cnngraph": cnngraph.__version__,
            "cnngraph_commit": commit, "onnx": onnx.__version__,
            "onnx_tool": version("onnx-tool"), "numpy": np.__version__}


def si(n: float, digits: int = 2) -> str:
    for unit, scale in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(n) >= scale:
            return f"{n / scale:.{digits}f}{unit}"
    return f"{n:.0f}"


def gap_text(row: dict) -> str:
    gap = row.get("mac_gap_by_op", {})
    short = {"BatchNormalization": "BN", "GlobalAveragePool": "GAP", "AveragePool": "AvgPool"}
    parts = [f"{short.get(op, op)}{' bias' if op in LINEAR_OPS else ''} {si(v, 1)}"
             for op, v in list(gap.items())[:3]]
    return ", ".join(parts) + (", ..." if len(gap) > 3 else "") if parts else "none"


def analysis_rows(results: dict) -> list[list[str]]:
    rows = []
    for r in results["models"]:
        cg, ot = r["cnngraph"], r["onnx_tool"]
        if "error" in ot:
            rows.append([r["model"], str(r["nodes"]), f"{cg['seconds'] * 1e3:.1f}", "failed", "",
                         si(cg["params"]), "", si(cg["macs"]), "", "", ot["error"]])
            continue
        rows.append([r["model"], str(r["nodes"]), f"{cg['seconds'] * 1e3:.1f}",
                     f"{ot['seconds'] * 1e3:.1f}", f"{r['ratio']:.2f}x",
                     si(cg["params"]), si(ot["params"]) + ("" if r["params_agree"] else " (!)"),
                     si(cg["macs"]), si(ot["macs"]), "yes" if r["linear_macs_agree"] else "NO",
                     gap_text(r)])
    return rows


ANALYSIS_HEAD = ["model", "nodes", "cnngraph ms", "onnx-tool ms", "onnx-tool / cnngraph",
                 "params cnngraph", "params onnx-tool", "MACs cnngraph", "MACs onnx-tool",
                 "Conv/Gemm MACs agree", "onnx-tool extra MACs (by op)"]
SYNTH_HEAD = ["graph", "nodes", "file MB", "load s", "analyze s", "total s", "us/node",
              "us/node vs 1k"]


def synth_rows(results: dict) -> list[list[str]]:
    return [[r["kind"], f"{r['nodes']:,}", f"{r['file_mb']:.1f}", f"{r['load_seconds']:.3f}",
             f"{r['analyze_seconds']:.3f}", f"{r['seconds']:.3f}", f"{r['us_per_node']:.0f}",
             f"{r['per_node_vs_smallest']:.2f}x"] for r in results["synthetic"]]


def markdown(results: dict) -> str:
    def table(head, rows):
        lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        return "\n".join(lines + ["| " + " | ".join(c.replace("|", "/") for c in row) + " |"
                                  for row in rows])

    m, cli = results["machine"], results["cli"]
    big = [r for r in results["synthetic"] if r["nodes"] >= 100_000]
    lines = [
        BEGIN,
        "## Analysis speed: cnngraph vs onnx-tool",
        "",
        f"Run {m['date'][:10]} on {m['cpu']} ({m['nproc']} cores), Python {m['python']}, "
        f"cnngraph {m['cnngraph']} ({m['cnngraph_commit']}), onnx {m['onnx']}, "
        f"onnx-tool {m['onnx_tool']}; medians of {results['repeats']} alternating runs. "
        "Raw numbers: [results/analysis.json](results/analysis.json).",
        "",
        "### In-process analysis",
        "",
        table(ANALYSIS_HEAD, analysis_rows(results)),
        "",
        "### CLI end to end",
        "",
        f"`{cli['command']}` (a fresh process, JSON on stdout): **{cli['seconds']:.2f} s** "
        f"(target < {cli['target_seconds']:.0f} s: {'met' if cli['meets_target'] else 'MISSED'}"
        f"); of that, starting Python and importing cnngraph takes "
        f"{cli['python_import_seconds']:.2f} s.",
        "",
        "### Synthetic graphs (load from file + analyze, cnngraph only)",
        "",
        table(SYNTH_HEAD, synth_rows(results)),
        "",
    ]
    profiles = results.get("profiles", [])
    if profiles:
        steps = [st["step"] for st in profiles[0]["steps"]]
        share = [{st["step"]: st["share"] for st in p["steps"]} for p in profiles]
        lines += ["Where the time goes: cProfile of one load + analyze per graph (share of "
                  "profiled time; nested steps overlap):", "",
                  table(["step"] + [p["file"] for p in profiles],
                        [[s] + [f"{sh.get(s, 0):.0%}" for sh in share] for s in steps]), ""]
    if big:
        worst = max(big, key=lambda r: r["seconds"])
        growth = ", ".join(f"{r['kind']} {r['per_node_vs_smallest']:.2f}x" for r in big)
        lines.append(f"Slowest 100k-node graph: {worst['kind']}, {worst['seconds']:.1f} s "
                     f"(target < {SYNTH_TARGET_S:.0f} s: "
                     f"{'met' if worst['seconds'] < SYNTH_TARGET_S else 'MISSED'}). Time per "
                     f"node at 100k against 1k: {growth} (linear if within 2x).")
        lines.append("")
    lines.append(END)
    return "\n".join(lines)


INTRO = """# Benchmarks

Run them with `make bench` (installs into `.venv` first) or, in an environment where
cnngraph and onnx-tool are installed, `python benchmarks/bench_analysis.py`
(`--quick`: fewer repeats, no 100k-node graphs, prints only). Each script rewrites only its own
section below (between its `<!-- name:begin -->` / `<!-- name:end -->` markers) and its JSON
under `results/`. Scratch models are built on demand into `benchmarks/.data/` (gitignored).
"""


def publish(results: dict, path: Path, section: str, begin: str, end: str, console) -> None:
    """Write a run's raw results to ``path`` and its section of the README."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(results, indent=1) + "\n")
    update_section(section, begin, end)
    console.log(f"wrote {path.relative_to(HERE.parent)} and the {README.name} section")


def update_section(section: str, begin: str = BEGIN, end: str = END) -> None:
    """Replace the README's section between the begin/end markers (or append it); every
    bench script writes its own section through this."""
    text = README.read_text() if README.exists() else INTRO
    if begin in text and end in text:
        head, rest = text.split(begin, 1)
        text = head + section + rest.split(end, 1)[1]
    else:
        text = text.rstrip("\n") + "\n\n" + section + "\n"
    README.write_text(text)


def print_table(title: str, head: list, rows: list, console: Console) -> None:
    """One result table on the terminal (every bench script prints through this)."""
    t = Table(title=title)
    for h in head:
        t.add_column(h, overflow="fold")
    for row in rows:
        t.add_row(*row)
    console.print(t)


def print_tables(results: dict, console: Console) -> None:
    for title, head, rows in (("In-process analysis", ANALYSIS_HEAD, analysis_rows(results)),
                              ("Synthetic graphs", SYNTH_HEAD, synth_rows(results))):
        print_table(title, head, rows, console)
    profiles = results.get("profiles", [])
    if profiles:
        t = Table(title="Where load + analyze spend their time (cProfile shares)")
        t.add_column("step")
        for p in profiles:
            t.add_column(p["file"], justify="right")
        share = [{st["step"]: st["share"] for st in p["steps"]} for p in profiles]
        for st in profiles[0]["steps"]:
            t.add_row(st["step"], *[f"{sh.get(st['step'], 0):.0%}" for sh in share])
        console.print(t)
    cli = results["cli"]
    console.print(f"CLI: {cli['command']}: {cli['seconds']:.3f} s "
                  f"(python + import cnngraph: {cli['python_import_seconds']:.3f} s)")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true",
                   help="3 repeats, no 100k-node graphs; print only, write nothing")
    p.add_argument("--repeats", type=int, help="runs per measurement (default 7, quick 3)")
    args = p.parse_args(argv)
    repeats = args.repeats or (3 if args.quick else 7)
    sizes = [1_000, 10_000] if args.quick else [1_000, 10_000, 100_000]
    console = Console(stderr=True, width=None if sys.stderr.isatty() else 180)
    results = {"machine": machine_info(), "repeats": repeats, "quick": args.quick}
    results["models"] = bench_models(repeats, console)
    results["cli"] = bench_cli(real_resnet50(), repeats)
    results["synthetic"] = bench_synthetic(sizes, repeats, console)
    console.log("profiling the largest synthetic graphs")
    results["profiles"] = [profile_hotspots(str(synthetic_file(k, sizes[-1])))
                           for k in ("chain", "branching")]
    print_tables(results, console)
    if not args.quick:
        publish(results, RESULTS, markdown(results), BEGIN, END, console)
    return 0


if __name__ == "__main__":
    sys.exit(main())
