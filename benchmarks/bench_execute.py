#!/usr/bin/env python3
"""Forward-pass speed and memory: cnngraph's executor beside onnxruntime, in one run.

    python benchmarks/bench_execute.py            # full run: writes results/execute.json and
                                                  # the execute section of README.md
    python benchmarks/bench_execute.py --quick    # ResNet-50 at batch 1 only; prints only

Models: the zoo's ResNet-50, GoogLeNet, MobileNetV2, VGG-16 and SqueezeNet 1.0, exported once
with random weights (He-normal, batch norm calibrated: `cnngraph export --weights random`);
both engines read the same ONNX file. For each model, batch 1 and 8, 1 and 2 threads:
onnxruntime (CPU provider, graph optimisations on, intra-op threads = N) and
`cnngraph.compile(graph, batch, threads=N)` run alternately, `--repeats` times after two
warm-up runs each; medians, and the ratio cnngraph / onnxruntime (below 1: cnngraph faster).
Both outputs are compared (max abs error, and relative to the largest output). Peak memory:
each engine in a fresh subprocess loads the model, runs it three times at batch 1, one thread,
and reports its peak resident set (VmHWM); cnngraph's arena is reported beside it.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from rich.console import Console

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import bench_analysis as ba  # noqa: E402  (machine_info, README sections)

import cnngraph  # noqa: E402
from cnngraph.execute.compare import onnxruntime_session, run_onnxruntime  # noqa: E402

MODELS = ["resnet50", "googlenet", "mobilenet_v2", "vgg16", "squeezenet1_0"]
RESULTS = HERE / "results" / "execute.json"
BEGIN, END = "<!-- execute:begin -->", "<!-- execute:end -->"
TARGET = 1.10  # ResNet-50, batch 1, one thread: within 1.10x of onnxruntime's latency


def model_file(name: str) -> Path:
    """The zoo model exported once with random weights (delete .data/ to re-export)."""
    path = ba.DATA / f"exec_{name}.onnx"
    if not path.exists():
        ba.DATA.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        cnngraph.export(cnngraph.load(name), str(tmp), weights="random", seed=0)
        tmp.replace(path)
    return path


def errors(a: np.ndarray, b: np.ndarray) -> tuple[float, float]:
    """Max absolute error, and that relative to the largest |onnxruntime output|."""
    diff = float(np.abs(a.astype(np.float64) - b).max())
    return diff, diff / max(float(np.abs(b).max()), 1e-30)


def bench_speed(name: str, batch: int, threads: int, repeats: int) -> dict:
    path = model_file(name)
    graph = cnngraph.load(str(path))
    compiled = cnngraph.compile(graph, batch=batch, threads=threads)
    session = onnxruntime_session(path.read_bytes(), threads)
    x = {n: np.random.default_rng(0).standard_normal(t.shape).astype(np.float32)
         for n, t in compiled.input_types.items()}
    ours, ref = compiled.run(x), run_onnxruntime(session, x)
    out = next(iter(ref))
    abs_err, rel_err = errors(ours[out], ref[out])
    times = {"cnngraph": [], "onnxruntime": []}
    for _ in range(2):
        compiled.run(x)
        run_onnxruntime(session, x)
    for _ in range(repeats):  # alternate, so both see the same machine
        for engine, fn in (("onnxruntime", lambda: run_onnxruntime(session, x)),
                           ("cnngraph", lambda: compiled.run(x))):
            t = time.perf_counter()
            fn()
            times[engine].append(time.perf_counter() - t)
    cg, ort = statistics.median(times["cnngraph"]), statistics.median(times["onnxruntime"])
    kernels = {}
    for kind in compiled.kernels.values():
        kernels[kind] = kernels.get(kind, 0) + 1
    return {"model": name, "batch": batch, "threads": threads, "cnngraph_ms": cg * 1e3,
            "onnxruntime_ms": ort * 1e3, "ratio": cg / ort, "max_abs_error": abs_err,
            "max_rel_error": rel_err, "arena_bytes": compiled.arena_bytes,
            "workspace_bytes": compiled.workspace_bytes, "kernels": kernels,
            "repeats": repeats}


_MEMORY_PROBE = r"""
import sys, numpy as np
engine, path = sys.argv[1], sys.argv[2]
x = None
if engine == "onnxruntime":
    import onnxruntime as ort
    o = ort.SessionOptions(); o.intra_op_num_threads = 1; o.inter_op_num_threads = 1
    s = ort.InferenceSession(path, o, providers=["CPUExecutionProvider"])
    i = s.get_inputs()[0]
    x = np.random.default_rng(0).standard_normal([d if isinstance(d, int) else 1
                                                  for d in i.shape]).astype(np.float32)
    for _ in range(3):
        s.run(None, {i.name: x})
    extra = 0
else:
    import cnngraph
    c = cnngraph.compile(cnngraph.load(path), batch=1, threads=1)
    (name, t), = c.input_types.items()
    x = np.random.default_rng(0).standard_normal(t.shape).astype(np.float32)
    for _ in range(3):
        c.run({name: x})
    extra = c.arena_bytes
# VmHWM: this process image's peak resident set (ru_maxrss would include the parent's from
# before the exec)
hwm = next(l for l in open("/proc/self/status") if l.startswith("VmHWM:")).split()[1]
print(int(hwm) * 1024, extra)
"""


def bench_memory(name: str) -> dict:
    path = str(model_file(name))
    row = {"model": name}
    for engine in ("onnxruntime", "cnngraph"):
        out = subprocess.run([sys.executable, "-c", _MEMORY_PROBE, engine, path],
                             capture_output=True, text=True, check=True).stdout.split()
        row[f"{engine}_peak_rss_bytes"] = int(out[0])
        if engine == "cnngraph":
            row["cnngraph_arena_bytes"] = int(out[1])
    row["rss_ratio"] = row["cnngraph_peak_rss_bytes"] / row["onnxruntime_peak_rss_bytes"]
    return row


def mib(b: float) -> str:
    return f"{b / 2**20:.1f}"


SPEED_HEAD = ["model", "batch", "threads", "onnxruntime ms", "cnngraph ms", "cnngraph / ort",
              "max abs err", "err / max |out|", "arena MiB"]
MEM_HEAD = ["model", "onnxruntime peak RSS MiB", "cnngraph peak RSS MiB", "ratio",
            "cnngraph arena MiB"]


def speed_rows(rows):
    return [[r["model"], str(r["batch"]), str(r["threads"]), f"{r['onnxruntime_ms']:.1f}",
             f"{r['cnngraph_ms']:.1f}", f"{r['ratio']:.2f}", f"{r['max_abs_error']:.1e}",
             f"{r['max_rel_error']:.1e}", mib(r["arena_bytes"])] for r in rows]


def mem_rows(rows):
    return [[r["model"], mib(r["onnxruntime_peak_rss_bytes"]), mib(r["cnngraph_peak_rss_bytes"]),
             f"{r['rss_ratio']:.2f}", mib(r["cnngraph_arena_bytes"])] for r in rows]


def table_md(head, rows) -> str:
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    return "\n".join(lines + ["| " + " | ".join(row) + " |" for row in rows])


def markdown(res: dict) -> str:
    m = res["machine"]
    r50 = next((r for r in res["speed"] if r["model"] == "resnet50" and r["batch"] == 1
                and r["threads"] == 1), None)
    verdict = ""
    if r50:
        verdict = (f"ResNet-50, batch 1, one thread: cnngraph {r50['cnngraph_ms']:.1f} ms, "
                   f"onnxruntime {r50['onnxruntime_ms']:.1f} ms, ratio {r50['ratio']:.2f} "
                   f"(target <= {TARGET}: {'met' if r50['ratio'] <= TARGET else 'MISSED'}).")
    return "\n".join([
        BEGIN,
        "## Execution: cnngraph's executor beside onnxruntime",
        "",
        f"Run {m['date'][:10]} on {m['cpu']} ({m['nproc']} cores), Python {m['python']}, "
        f"cnngraph {m['cnngraph']} ({m['cnngraph_commit']}), onnxruntime {res['onnxruntime']}. "
        "Script: `benchmarks/bench_execute.py` (method in its docstring); raw numbers: "
        "[results/execute.json](results/execute.json). Latencies are medians of "
        f"{res['repeats']} alternating runs; the per-conv-layer GFLOPS table is "
        "`benchmarks/bench_conv.py`'s.",
        "",
        verdict,
        "",
        table_md(SPEED_HEAD, speed_rows(res["speed"])),
        "",
        "Peak process memory (a fresh process per engine: load, three runs at batch 1, one "
        "thread; VmHWM):",
        "",
        table_md(MEM_HEAD, mem_rows(res["memory"])),
        "",
        END,
    ])


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true", help="ResNet-50, batch 1, print only")
    p.add_argument("--repeats", type=int, default=None, help="timed runs per engine")
    p.add_argument("--models", nargs="*", default=None, help=f"subset of {MODELS}")
    args = p.parse_args(argv)
    console = Console()
    import onnxruntime

    models = args.models or (["resnet50"] if args.quick else MODELS)
    repeats = args.repeats or (5 if args.quick else 15)
    configs = [(1, 1)] if args.quick else [(1, 1), (1, 2), (8, 1), (8, 2)]
    speed = []
    for name in models:
        for batch, threads in configs:
            r = bench_speed(name, batch, threads, repeats)
            speed.append(r)
            console.log(f"{name} batch {batch} threads {threads}: cnngraph "
                        f"{r['cnngraph_ms']:.1f} ms, onnxruntime {r['onnxruntime_ms']:.1f} ms "
                        f"({r['ratio']:.2f}x), max abs err {r['max_abs_error']:.1e}")
    memory = [bench_memory(name) for name in models]
    res = {"machine": ba.machine_info(), "onnxruntime": onnxruntime.__version__,
           "repeats": repeats, "speed": speed, "memory": memory}
    ba.print_table("Latency", SPEED_HEAD, speed_rows(speed), console)
    ba.print_table("Peak memory", MEM_HEAD, mem_rows(memory), console)
    if not args.quick:
        ba.publish(res, RESULTS, markdown(res), BEGIN, END, console)
    return 0


if __name__ == "__main__":
    sys.exit(main())
