#!/usr/bin/env python3
"""Memory planning quality and speed: cnngraph's orders and arena beside the obvious peers.

    python benchmarks/bench_memory.py            # full run: writes results/memory.json and
                                                 # the memory section of README.md
    python benchmarks/bench_memory.py --quick    # 3 seeds, 1 repeat, no 100k graphs; prints only

Measured in one run (times are medians over repeats):
1. RandWire graphs (Xie et al. 2019): networkx.watts_strogatz_graph(32, 4, 0.75, seed), edges
   from lower to higher index, one input node feeding every source and one output node fed by
   every sink; a node sums its inputs (Add/Sum), then Relu, separable conv 3x3, BatchNorm.
   Three stages (78 channels at 56x56, 156 at 28x28, 312 at 14x14, batch 1; each stage's input
   node a stride-2 separable conv), each as its own graph and chained as one model. Peaks of
   the model's own order, networkx's topological order of the RandWire DAG (each RandWire node
   expanded into its ops), the heuristic and the optimum; the arena of the optimal order.
2. The zoo and the light models the onnx package ships: own / networkx-topological / optimal
   peaks, proof, seconds, arena against its lower bound; and onnx-tool's memory plan
   (`Graph.compress_memory`, in its own node order) on the light models.
3. Scale: the 100k-node synthetic graphs of bench_analysis.py planned with the heuristic order
   and an arena (`plan_memory(..., schedule_kind="heuristic")`), with a cProfile breakdown.
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import gc
import io
import math
import pstats
import statistics
import sys
import time
import warnings
from pathlib import Path

import networkx as nx
from rich.console import Console

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_analysis as ba  # noqa: E402  (machine_info, synthetic files)

import cnngraph  # noqa: E402
from cnngraph.frontends import LIGHT_MODELS, light_model_path, zoo  # noqa: E402
from cnngraph.frontends.builder import Network  # noqa: E402
from cnngraph.passes.plan import place_order, plan_memory  # noqa: E402
from cnngraph.passes.schedule import memory_problem, order_peak, schedule  # noqa: E402
from cnngraph.passes.shapes import infer_shapes  # noqa: E402

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results" / "memory.json"
BEGIN, END = "<!-- memory:begin -->", "<!-- memory:end -->"
STAGES = ((78, 56), (156, 28), (312, 14))  # (channels, spatial) of RandWire stages 1..3
ZOO_ARENA_TARGET, RANDWIRE_ARENA_TARGET, PROOF_TARGET_S, SCALE_TARGET_S = 1.01, 1.05, 1.0, 10.0


def timed(fn):
    gc.collect()
    t = time.perf_counter()
    r = fn()
    return time.perf_counter() - t, r


def geomean(xs):
    return math.exp(sum(math.log(x) for x in xs) / len(xs)) if xs else float("nan")


# --- RandWire -----------------------------------------------------------------------------

def randwire_dag(seed: int, n: int = 32, k: int = 4, p: float = 0.75) -> nx.DiGraph:
    """WS graph oriented low -> high, plus 'in' feeding every source and 'out' fed by every sink."""
    ws = nx.watts_strogatz_graph(n, k, p, seed=seed)
    dag = nx.DiGraph()
    dag.add_nodes_from(range(n))
    dag.add_edges_from((min(u, v), max(u, v)) for u, v in ws.edges())
    sources = [v for v in range(n) if dag.in_degree(v) == 0]
    sinks = [v for v in range(n) if dag.out_degree(v) == 0]
    dag.add_node("in")
    dag.add_node("out")
    dag.add_edges_from(("in", v) for v in sources)
    dag.add_edges_from((v, "out") for v in sinks)
    return dag


def add_stage(net: Network, x, dag: nx.DiGraph, channels: int, tag: str, groups: dict):
    """Build one RandWire stage on x; groups[(tag, dag node)] = the graph node names it made."""
    def made(key, fn):
        before = set(net.nodes)
        y = fn()
        groups[(tag, key)] = [n for n in net.nodes if n not in before]
        return y

    def unit(inputs, name, stride=1):
        h = inputs[0] if len(inputs) == 1 else net.add(*inputs, name=f"{name}_sum")
        h = net.relu(h, name=f"{name}_relu")
        h = net.separable_conv(h, channels, 3, stride=stride, padding="same", name=f"{name}_sep")
        return net.batchnorm(h, name=f"{name}_bn")

    out = {"in": made("in", lambda: unit([x], f"{tag}_in", stride=2))}
    for v in range(dag.number_of_nodes() - 2):  # index order: the model's own order
        out[v] = made(v, lambda v=v: unit([out[u] for u in sorted(dag.predecessors(v), key=str)],
                                          f"{tag}_n{v}"))
    sinks = [out[u] for u in sorted(dag.predecessors("out"))]
    out["out"] = made("out", lambda: sinks[0] if len(sinks) == 1
                      else net.add(*sinks, name=f"{tag}_out"))
    return out["out"]


def randwire_model(seed: int, stages) -> tuple:
    """(graph, groups, [(tag, dag)]) for the given stage indices, chained."""
    c0, s0 = STAGES[stages[0]]
    net = Network(f"randwire_s{seed}_" + "".join(str(i + 1) for i in stages))
    x = net.input("x", (1, c0 // 2, s0 * 2, s0 * 2))
    groups, dags = {}, []
    for i in stages:
        dag = randwire_dag(seed * 10 + i)  # a different wiring per stage, as in the paper
        tag = f"stage{i + 1}"
        x = add_stage(net, x, dag, STAGES[i][0], tag, groups)
        dags.append((tag, dag))
    net.output(x)
    return net.build(), groups, dags


def nx_topo_order(problem, dags=None, groups=None) -> list:
    """networkx's topological order: of the RandWire DAG (each node expanded to its ops, in the
    order they were built) when given, else of the problem's own node graph."""
    index = {name: i for i, name in enumerate(problem.node_names)}
    if dags is None:
        g = nx.DiGraph()
        g.add_nodes_from(range(problem.n))
        g.add_edges_from((u, v) for v in range(problem.n) for u in problem.preds[v])
        return list(nx.topological_sort(g))
    order = []
    for tag, dag in dags:
        for v in nx.topological_sort(dag):
            order += [index[n] for n in groups[(tag, v)] if n in index]
    assert sorted(order) == list(range(problem.n)), "RandWire groups do not cover the graph"
    return order


def measure(graph, repeats: int, dags=None, groups=None) -> dict:
    shapes = infer_shapes(graph)
    problem = memory_problem(graph, shapes)
    own = schedule(problem, "own")
    topo = nx_topo_order(problem, dags, groups)
    heur = schedule(problem, "heuristic")
    times, opt = [], None
    for _ in range(repeats):
        t, opt = timed(lambda: schedule(problem, "optimal"))
        times.append(t)
    _, _, pl = place_order(problem, opt.order)
    topo_peak = order_peak(problem, topo)
    plain = memory_problem(graph, shapes, inplace=False)  # no in-place reuse, no Concat slices
    plain_opt = schedule(plain, "optimal")
    return {"nodes": problem.n, "tensors": len(problem.sizes),
            "own_peak": own.peak_bytes, "nx_topo_peak": topo_peak,
            "heuristic_peak": heur.peak_bytes, "heuristic_chosen": heur.chosen,
            "optimal_peak": opt.peak_bytes, "lower_bound": opt.lower_bound_bytes,
            "plain_own_peak": schedule(plain, "own").peak_bytes,
            "plain_optimal_peak": plain_opt.peak_bytes, "plain_proven": plain_opt.proven_optimal,
            "proven": opt.proven_optimal, "chosen": opt.chosen, "states": opt.states_explored,
            "optimal_seconds": statistics.median(times),
            "opt_vs_nx_topo": opt.peak_bytes / topo_peak,
            "opt_vs_own": opt.peak_bytes / own.peak_bytes,
            "arena": pl.arena_bytes, "arena_lower_bound": pl.lower_bound_bytes,
            "arena_ratio": pl.ratio, "arena_strategy": pl.strategy}


def bench_randwire(seeds, repeats, console) -> dict:
    stages, chained = [], []
    for s in seeds:
        for i in range(len(STAGES)):
            g, groups, dags = randwire_model(s, [i])
            r = measure(g, repeats, dags, groups)
            stages.append({"seed": s, "stage": i + 1, **r})
        g, groups, dags = randwire_model(s, list(range(len(STAGES))))
        r = measure(g, repeats, dags, groups)
        chained.append({"seed": s, **r})
        console.log(f"randwire seed {s}: chained opt/nx-topo {r['opt_vs_nx_topo']:.3f}, "
                    f"proven {r['proven']}, {r['optimal_seconds']:.3f} s")
    summary = {
        "geomean_opt_vs_nx_topo_chained": geomean([r["opt_vs_nx_topo"] for r in chained]),
        "geomean_opt_vs_nx_topo_stages": geomean([r["opt_vs_nx_topo"] for r in stages]),
        "geomean_opt_vs_own_chained": geomean([r["opt_vs_own"] for r in chained]),
        "all_stages_proven_under_1s": all(r["proven"] and r["optimal_seconds"] < PROOF_TARGET_S
                                          for r in stages),
        "stages_proven": sum(r["proven"] for r in stages), "stages": len(stages),
        "max_stage_seconds": max(r["optimal_seconds"] for r in stages),
        "max_arena_ratio": max(r["arena_ratio"] for r in stages + chained),
    }
    for st in range(1, len(STAGES) + 1):
        summary[f"geomean_opt_vs_nx_topo_stage{st}"] = geomean(
            [r["opt_vs_nx_topo"] for r in stages if r["stage"] == st])
    return {"seeds": list(seeds), "stages": stages, "chained": chained, "summary": summary}


# --- zoo and light models -----------------------------------------------------------------

def onnx_tool_plan(path: str) -> dict:
    """onnx-tool's memory plan: Graph.compress_memory (first-fit blocks, 64-byte padding, in its
    node order after graph_reorder_nodes), on the folded graph."""
    import onnx_tool

    try:
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
            warnings.simplefilter("ignore")
            t0 = time.perf_counter()
            g = onnx_tool.Model(path, {"constant_folding": True, "verbose": False}).graph
            g.graph_reorder_nodes()
            g.shape_infer()
            t1 = time.perf_counter()
            _, size = g.compress_memory()
            t2 = time.perf_counter()
        return {"arena": int(size), "plan_seconds": t2 - t1, "load_seconds": t1 - t0}
    except Exception as e:  # noqa: BLE001 - a peer failing is a result
        return {"error": ba.short_error(e)}


def bench_models(repeats, console) -> list:
    rows = []
    for name in zoo.names():
        r = measure(cnngraph.load(name), repeats)
        rows.append({"set": "zoo", "model": name, **r})
        console.log(f"zoo {name}: proven {r['proven']} in {r['optimal_seconds']:.3f} s, "
                    f"arena {r['arena_ratio']:.4f}")
    for name in LIGHT_MODELS:
        path = light_model_path(name)
        r = measure(cnngraph.load(path), repeats)
        r["onnx_tool"] = onnx_tool_plan(path)
        rows.append({"set": "light", "model": name, **r})
        console.log(f"light {name}: proven {r['proven']} in {r['optimal_seconds']:.3f} s, "
                    f"arena {r['arena_ratio']:.4f}")
    return rows


# --- scale --------------------------------------------------------------------------------

def profile_plan(graph, top: int = 8) -> list:
    prof = cProfile.Profile()
    prof.enable()
    plan_memory(graph, schedule_kind="heuristic")
    prof.disable()
    st = pstats.Stats(prof)
    total = max(st.total_tt, 1e-9)
    rows = sorted(((v[3], f"{Path(k[0]).name}:{k[2]}") for k, v in st.stats.items()),
                  reverse=True)[:top]
    return [{"function": f, "cumulative_seconds": c, "share": c / total} for c, f in rows]


def bench_scale(sizes, repeats, console) -> list:
    rows = []
    for kind in ("chain", "branching"):
        for n in sizes:
            path = ba.synthetic_file(kind, n)
            load_s, graph = timed(lambda path=path: cnngraph.load(str(path)))
            steps = {}
            for _ in range(repeats):
                t0 = time.perf_counter()
                shapes = infer_shapes(graph)
                t1 = time.perf_counter()
                problem = memory_problem(graph, shapes)
                t2 = time.perf_counter()
                sch = schedule(problem, "heuristic")
                t3 = time.perf_counter()
                _, _, pl = place_order(problem, sch.order)
                t4 = time.perf_counter()
                for k, v in (("infer_shapes", t1 - t0), ("memory_problem", t2 - t1),
                             ("schedule_heuristic", t3 - t2), ("intervals_place", t4 - t3)):
                    steps.setdefault(k, []).append(v)
            plan_times = [timed(lambda g=graph: plan_memory(g, schedule_kind="heuristic"))[0]
                          for _ in range(repeats)]
            row = {"kind": kind, "nodes": len(graph.nodes), "problem_nodes": problem.n,
                   "load_seconds": load_s, "plan_seconds": statistics.median(plan_times),
                   "steps": {k: statistics.median(v) for k, v in steps.items()},
                   "peak": sch.peak_bytes, "chosen": sch.chosen, "arena": pl.arena_bytes,
                   "arena_ratio": pl.ratio}
            row["us_per_node"] = row["plan_seconds"] / row["nodes"] * 1e6
            base = next((b for b in rows if b["kind"] == kind), row)
            if n >= 100_000 or row["us_per_node"] > 2 * base["us_per_node"]:
                row["profile"] = profile_plan(graph)  # where a superlinear step shows
            rows.append(row)
            console.log(f"scale {kind} {n}: plan {row['plan_seconds']:.2f} s "
                        f"(load {load_s:.2f} s)")
    for r in rows:
        r["us_per_node"] = r["plan_seconds"] / r["nodes"] * 1e6
    for r in rows:
        base = next(b for b in rows if b["kind"] == r["kind"])
        r["per_node_vs_smallest"] = r["us_per_node"] / base["us_per_node"]
    return rows


# --- report -------------------------------------------------------------------------------

def mb(b):
    return f"{b / 2**20:.2f}"


def table_md(head, rows):
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    return "\n".join(lines + ["| " + " | ".join(c.replace("|", "/") for c in row) + " |"
                              for row in rows])


MODEL_HEAD = ["model", "nodes", "plain own MB", "plain optimal MB", "own MB", "nx-topo MB",
              "heuristic MB", "optimal MB", "opt / nx-topo", "proven", "optimal s", "arena MB",
              "arena / LB", "onnx-tool arena MB"]


def model_rows(rows):
    out = []
    for r in rows:
        ot = r.get("onnx_tool")
        ot_txt = "" if ot is None else (ot.get("error", "failed")[:40] if "arena" not in ot
                                        else mb(ot["arena"]))
        out.append([f"{r['set']}/{r['model']}", str(r["nodes"]), mb(r["plain_own_peak"]),
                    mb(r["plain_optimal_peak"]), mb(r["own_peak"]),
                    mb(r["nx_topo_peak"]), mb(r["heuristic_peak"]), mb(r["optimal_peak"]),
                    f"{r['opt_vs_nx_topo']:.3f}", "yes" if r["proven"] else "NO",
                    f"{r['optimal_seconds']:.3f}", mb(r["arena"]), f"{r['arena_ratio']:.4f}",
                    ot_txt])
    return out


RW_HEAD = ["seed", "graph", "nodes", "own MB", "nx-topo MB", "heuristic MB", "optimal MB",
           "opt / nx-topo", "proven", "optimal s", "arena / LB"]


def rw_rows(rw):
    out = []
    for r in rw["chained"]:
        for s in [x for x in rw["stages"] if x["seed"] == r["seed"]] + [dict(r, stage=None)]:
            out.append([str(s["seed"]), f"stage {s['stage']}" if s["stage"] else "3 stages",
                        str(s["nodes"]), mb(s["own_peak"]), mb(s["nx_topo_peak"]),
                        mb(s["heuristic_peak"]), mb(s["optimal_peak"]),
                        f"{s['opt_vs_nx_topo']:.3f}", "yes" if s["proven"] else "NO",
                        f"{s['optimal_seconds']:.3f}", f"{s['arena_ratio']:.4f}"])
    return out


SCALE_HEAD = ["graph", "nodes", "plan s", "infer_shapes s", "memory_problem s",
              "heuristic s", "intervals+place s", "us/node", "us/node vs 1k", "arena / LB"]


def scale_rows(rows):
    return [[r["kind"], f"{r['nodes']:,}", f"{r['plan_seconds']:.2f}",
             f"{r['steps']['infer_shapes']:.2f}", f"{r['steps']['memory_problem']:.2f}",
             f"{r['steps']['schedule_heuristic']:.2f}", f"{r['steps']['intervals_place']:.2f}",
             f"{r['us_per_node']:.0f}", f"{r['per_node_vs_smallest']:.2f}x",
             f"{r['arena_ratio']:.4f}"] for r in rows]


def markdown(res) -> str:
    m, rw, models = res["machine"], res["randwire"], res["models"]
    s = rw["summary"]
    zoo_rows = [r for r in models if r["set"] == "zoo"]
    light = [r for r in models if r["set"] == "light"]
    zoo_ratio = max(r["arena_ratio"] for r in zoo_rows)
    zoo_proven = [r for r in zoo_rows if r["proven"] and r["optimal_seconds"] < PROOF_TARGET_S]
    lines = [
        BEGIN,
        "## Memory planning: orders and arena",
        "",
        f"Run {m['date'][:10]} on {m['cpu']} ({m['nproc']} cores), Python {m['python']}, "
        f"cnngraph {m['cnngraph']} ({m['cnngraph_commit']}), networkx {nx.__version__}, "
        f"onnx-tool {m['onnx_tool']}; optimal-schedule times are medians of {res['repeats']} "
        f"runs. Script: `benchmarks/bench_memory.py`. Raw numbers: "
        "[results/memory.json](results/memory.json).",
        "",
        "Columns: **own** is the model's order; **nx-topo** is `networkx.topological_sort` "
        "(for RandWire, of the RandWire DAG, each RandWire node expanded into its ops; "
        "otherwise of the node graph); **heuristic** is the best of own, list and dfs; "
        "**optimal** is `schedule(problem, 'optimal')` (DP between single-node cuts), "
        "**proven** its proof flag and **optimal s** its time; peaks are activation bytes "
        "(float32, batch 1) with in-place reuse and Concat elimination on (the default); "
        "**plain** columns are the same without them (`--no-inplace`: every tensor its own "
        "bytes, views aside). **arena / LB** is the plan's arena for the optimal order "
        "against the peak of live aligned bytes (no arena can be smaller).",
        "",
        "### RandWire (Xie et al. 2019)",
        "",
        "`watts_strogatz_graph(32, 4, 0.75)`, edges low to high index, an input node (stride-2 "
        "separable conv) feeding every source, an output node (sum) fed by every sink; each "
        "node: sum of inputs, Relu, separable conv 3x3, BatchNorm. Stages: 78 ch at 56x56, "
        "156 at 28x28, 312 at 14x14; each stage alone, and the three chained. "
        f"Seeds {rw['seeds'][0]}..{rw['seeds'][-1]}.",
        "",
        f"- geometric mean of optimal / nx-topo peak: **{s['geomean_opt_vs_nx_topo_chained']:.3f}"
        f"** on the 3-stage models, {s['geomean_opt_vs_nx_topo_stages']:.3f} over single "
        "stages (" + ", ".join(f"stage {i} {s[f'geomean_opt_vs_nx_topo_stage{i}']:.3f}"
                               for i in range(1, len(STAGES) + 1)) + "); optimal / own "
        f"(index order) {s['geomean_opt_vs_own_chained']:.3f} on the 3-stage models "
        "(published work: near 0.8 of the topological order);",
        f"- 32-node stages proven optimal: {s['stages_proven']} / {s['stages']}, slowest "
        f"{s['max_stage_seconds']:.3f} s (target: all, each < 1 s: "
        f"{'met' if s['all_stages_proven_under_1s'] else 'MISSED'});",
        f"- worst arena / lower bound: {s['max_arena_ratio']:.4f} (target <= "
        f"{RANDWIRE_ARENA_TARGET}: "
        f"{'met' if s['max_arena_ratio'] <= RANDWIRE_ARENA_TARGET else 'MISSED'}).",
        "",
        table_md(RW_HEAD, rw_rows(rw)),
        "",
        "### Zoo and light models",
        "",
        f"Zoo: optimum proven in < 1 s on {len(zoo_proven)} / {len(zoo_rows)} models; worst "
        f"arena / lower bound {zoo_ratio:.4f} (target <= {ZOO_ARENA_TARGET}: "
        f"{'met' if zoo_ratio <= ZOO_ARENA_TARGET else 'MISSED'}). Light models: proven on "
        f"{sum(r['proven'] for r in light)} / {len(light)}, worst arena / lower bound "
        f"{max(r['arena_ratio'] for r in light):.4f}.",
        "",
        "**onnx-tool arena** is onnx-tool's own memory plan, `Graph.compress_memory()` "
        "(first-fit blocks with 64-byte padding over its node order after "
        "`graph_reorder_nodes()`, on the constant-folded graph). It has no scheduler (no "
        "reordering for memory), so it compares with cnngraph's arena, not with the "
        "orders; its tensor set (graph inputs kept live to the end, its own idea of which "
        "tensors are dynamic) is not exactly cnngraph's.",
        "",
        table_md(MODEL_HEAD, model_rows(models)),
        "",
    ]
    if res.get("scale"):
        big = [r for r in res["scale"] if r["nodes"] >= 100_000]
        lines += ["### Scale: heuristic order + arena",
                  "",
                  "The synthetic graphs of bench_analysis.py (loaded once; load time not "
                  "included). **plan s** is `plan_memory(graph, schedule_kind='heuristic')` "
                  "(shapes, costs, problem, heuristic order, arena); the step columns time "
                  "the parts separately.",
                  "",
                  table_md(SCALE_HEAD, scale_rows(res["scale"])),
                  ""]
        if big:
            worst = max(big, key=lambda r: r["plan_seconds"])
            lines += [f"Slowest 100k-node plan: {worst['kind']}, {worst['plan_seconds']:.1f} s "
                      f"(target < {SCALE_TARGET_S:.0f} s: "
                      f"{'met' if worst['plan_seconds'] < SCALE_TARGET_S else 'MISSED'}).", ""]
        for r in res["scale"]:
            if "profile" in r:
                prof = ", ".join(f"`{p['function']}` {p['cumulative_seconds']:.1f} s"
                                 for p in r["profile"][:8])
                lines += [f"cProfile of one plan, {r['kind']} {r['nodes']:,} nodes "
                          f"({r['per_node_vs_smallest']:.1f}x the 1k graph's time per node; "
                          f"cumulative, profiled): {prof}.", ""]
    lines.append(END)
    return "\n".join(lines)


def print_tables(res, console) -> None:
    groups = [("RandWire", RW_HEAD, rw_rows(res["randwire"])),
              ("Zoo and light models", MODEL_HEAD, model_rows(res["models"]))]
    if res.get("scale"):
        groups.append(("Scale (heuristic + arena)", SCALE_HEAD, scale_rows(res["scale"])))
    for title, head, rows in groups:
        ba.print_table(title, head, rows, console)
    console.print(res["randwire"]["summary"])


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="3 seeds, 1 repeat, no scale; print only")
    p.add_argument("--seeds", type=int, help="RandWire seeds (default 10)")
    p.add_argument("--repeats", type=int, help="runs of each optimal schedule (default 3)")
    p.add_argument("--no-scale", action="store_true", help="skip the 10k/100k graphs")
    args = p.parse_args(argv)
    seeds = range(args.seeds or (3 if args.quick else 10))
    repeats = args.repeats or (1 if args.quick else 3)
    console = Console(stderr=True, width=None if sys.stderr.isatty() else 200)
    res = {"machine": ba.machine_info(), "repeats": repeats, "quick": args.quick}
    res["machine"]["networkx"] = nx.__version__
    res["randwire"] = bench_randwire(seeds, repeats, console)
    res["models"] = bench_models(repeats, console)
    res["scale"] = [] if (args.quick or args.no_scale) else \
        bench_scale([1_000, 10_000, 100_000], 1, console)
    print_tables(res, console)
    if not args.quick:
        ba.publish(res, RESULTS, markdown(res), BEGIN, END, console)
    return 0


if __name__ == "__main__":
    sys.exit(main())
