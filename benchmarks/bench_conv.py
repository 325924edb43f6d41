#!/usr/bin/env python3
"""Per-layer conv speed: cnngraph's native kernel (cnngraph._native.conv) against onnxruntime.

    python benchmarks/bench_conv.py              # 1 and 2 threads; writes results/conv.json
    python benchmarks/bench_conv.py --quick      # 1 thread, fewer repeats; prints only
    python benchmarks/bench_conv.py --threads 1 --layers res3 fc

Measured in one run, batch 1, float32:
- the machine's peak: a tight loop of independent AVX2 FMAs (12 chains) per thread count;
- every distinct conv shape of ResNet-50 (torchvision v1.5: stride on the 3x3), three depthwise
  layers of MobileNetV2 and the final dense layer (2048 -> 1000), each with its bias.
  cnngraph: a PackedConv / PackedDense run into a preallocated output. onnxruntime: a model
  holding that single Conv (or Gemm, transB=1), graph optimisations on (ORT_ENABLE_ALL, which on
  AVX2 machines runs convs in its NCHWc layout and adds the reorders a one-node model needs),
  intra_op_num_threads = the same thread count, idle workers not spinning (a spinning session
  holds a core even between its runs, starving cnngraph's threads in the same process), IO
  binding onto preallocated numpy arrays.
  The two alternate, sample by sample (20 ms apart, so that neither side's idle-spinning
  threads steal a core from the other); each sample times a loop of calls; medians reported.
- GFLOPS = 2 * MACs / median seconds; "ratio" = cnngraph time / onnxruntime time (below 1 is
  faster); "weighted" sums the layers by how often each occurs in ResNet-50. For one thread the
  CPU time of the calling thread is reported too (the same ratio without the time a shared
  machine's other processes took the core away).
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from cnngraph._native import native  # noqa: E402

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results" / "conv.json"

# name, (C, H, W), (M, KH, KW), stride, pad, group, count in ResNet-50
LAYERS = [
    ("conv1 7x7/2", (3, 224, 224), (64, 7, 7), 2, 3, 1, 1),
    ("res2 1x1 64->64", (64, 56, 56), (64, 1, 1), 1, 0, 1, 1),
    ("res2 3x3 64", (64, 56, 56), (64, 3, 3), 1, 1, 1, 3),
    ("res2 1x1 64->256", (64, 56, 56), (256, 1, 1), 1, 0, 1, 4),
    ("res2 1x1 256->64", (256, 56, 56), (64, 1, 1), 1, 0, 1, 2),
    ("res3 1x1 256->128", (256, 56, 56), (128, 1, 1), 1, 0, 1, 1),
    ("res3 3x3/2 128", (128, 56, 56), (128, 3, 3), 2, 1, 1, 1),
    ("res3 3x3 128", (128, 28, 28), (128, 3, 3), 1, 1, 1, 3),
    ("res3 1x1 128->512", (128, 28, 28), (512, 1, 1), 1, 0, 1, 4),
    ("res3 1x1 512->128", (512, 28, 28), (128, 1, 1), 1, 0, 1, 3),
    ("res3 ds 1x1/2 256->512", (256, 56, 56), (512, 1, 1), 2, 0, 1, 1),
    ("res4 1x1 512->256", (512, 28, 28), (256, 1, 1), 1, 0, 1, 1),
    ("res4 3x3/2 256", (256, 28, 28), (256, 3, 3), 2, 1, 1, 1),
    ("res4 3x3 256", (256, 14, 14), (256, 3, 3), 1, 1, 1, 5),
    ("res4 1x1 256->1024", (256, 14, 14), (1024, 1, 1), 1, 0, 1, 6),
    ("res4 1x1 1024->256", (1024, 14, 14), (256, 1, 1), 1, 0, 1, 5),
    ("res4 ds 1x1/2 512->1024", (512, 28, 28), (1024, 1, 1), 2, 0, 1, 1),
    ("res5 1x1 1024->512", (1024, 14, 14), (512, 1, 1), 1, 0, 1, 1),
    ("res5 3x3/2 512", (512, 14, 14), (512, 3, 3), 2, 1, 1, 1),
    ("res5 3x3 512", (512, 7, 7), (512, 3, 3), 1, 1, 1, 2),
    ("res5 1x1 512->2048", (512, 7, 7), (2048, 1, 1), 1, 0, 1, 3),
    ("res5 1x1 2048->512", (2048, 7, 7), (512, 1, 1), 1, 0, 1, 2),
    ("res5 ds 1x1/2 1024->2048", (1024, 14, 14), (2048, 1, 1), 2, 0, 1, 1),
    ("fc 2048->1000", (2048, 1, 1), (1000, 1, 1), 1, 0, 0, 1),  # group 0: dense (Gemm)
    ("mbv2 dw 3x3 32 @112", (32, 112, 112), (32, 3, 3), 1, 1, 32, 0),
    ("mbv2 dw 3x3/2 144 @56", (144, 56, 56), (144, 3, 3), 2, 1, 144, 0),
    ("mbv2 dw 3x3 576 @14", (576, 14, 14), (576, 3, 3), 1, 1, 576, 0),
]


def macs(layer):
    _, (c, h, w), (m, kh, kw), s, p, g, _ = layer
    oh, ow = (h + 2 * p - kh) // s + 1, (w + 2 * p - kw) // s + 1
    return m * oh * ow * (c // max(g, 1)) * kh * kw


def ort_model(layer, w, b):
    from onnx import TensorProto, helper, numpy_helper

    _, (c, h, wd), (m, kh, kw), s, p, g, _ = layer
    if g == 0:
        node = helper.make_node("Gemm", ["x", "w", "b"], ["y"], transB=1)
        x_shape, y_shape = [1, c], [1, m]
    else:
        node = helper.make_node("Conv", ["x", "w", "b"], ["y"], kernel_shape=[kh, kw],
                                strides=[s, s], pads=[p, p, p, p], group=g)
        oh, ow = (h + 2 * p - kh) // s + 1, (wd + 2 * p - kw) // s + 1
        x_shape, y_shape = [1, c, h, wd], [1, m, oh, ow]
    graph = helper.make_graph(
        [node], "one", [helper.make_tensor_value_info("x", TensorProto.FLOAT, x_shape)],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, y_shape)],
        [numpy_helper.from_array(w, "w"), numpy_helper.from_array(b, "b")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    return model.SerializeToString()


def ort_runner(model_bytes, x, y, threads):
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    # onnxruntime's idle workers otherwise spin for as long as the session lives, holding a core
    # that cnngraph's threads (run alternately in this process) then cannot use
    so.add_session_config_entry("session.intra_op.allow_spinning", "0")
    sess = ort.InferenceSession(model_bytes, so, providers=["CPUExecutionProvider"])
    binding = sess.io_binding()
    binding.bind_cpu_input("x", x)
    binding.bind_output("y", "cpu", 0, np.float32, list(y.shape), y.ctypes.data)
    return lambda: sess.run_with_iobinding(binding)


def peak_gflops(conv, threads, seconds=0.3):
    iters = 1_000_000
    conv.fma_flops(iters, threads)  # warm up (and start the pool's threads)
    best = 0.0
    for _ in range(5):
        t = time.perf_counter()
        f = conv.fma_flops(iters, threads)
        dt = time.perf_counter() - t
        best = max(best, f / dt / 1e9)
        iters = max(iters, int(iters * seconds / 5 / dt))
    return best


def time_pair(fa, fb, repeats, target_s=0.05):
    """Median seconds per call of fa and fb, sampled alternately; also the medians of the CPU
    time of the calling thread (meaningful for one thread: it leaves out the time the OS gave
    the core to other processes, which a shared machine has plenty of)."""
    fa(), fb()
    t = time.perf_counter()
    fa()
    dt = max(time.perf_counter() - t, 1e-6)
    n = max(2, int(target_s / dt))
    wall = ([], [])
    cpu = ([], [])
    for _ in range(repeats):
        for i, f in enumerate((fa, fb)):
            # let the other side's threads go idle first: onnxruntime's workers spin for a
            # while after a run, and would otherwise take a core from whoever runs next
            time.sleep(0.02)
            t, c = time.perf_counter(), time.thread_time()
            for _ in range(n):
                f()
            cpu[i].append((time.thread_time() - c) / n)
            wall[i].append((time.perf_counter() - t) / n)
    med = statistics.median
    return med(wall[0]), med(wall[1]), med(cpu[0]), med(cpu[1])


def bench_layer(conv, layer, threads, repeats, rng):
    name, (c, h, wd), (m, kh, kw), s, p, g, _ = layer
    b = rng.standard_normal(m).astype(np.float32)
    if g == 0:
        w = (rng.standard_normal((m, c)) / np.sqrt(c)).astype(np.float32)
        x = rng.standard_normal((1, c)).astype(np.float32)
        op = conv.PackedDense(w, b)
        y = np.empty((1, m), np.float32)
    else:
        w = (rng.standard_normal((m, c // g, kh, kw)) / np.sqrt(c // g * kh * kw)).astype(
            np.float32)
        x = rng.standard_normal((1, c, h, wd)).astype(np.float32)
        op = conv.PackedConv(w, b, (s, s), (p, p, p, p), (1, 1), g)
        y = np.empty(op.output_shape(x.shape), np.float32)
    y_ort = np.empty_like(y)
    run_ort = ort_runner(ort_model(layer, w, b), x, y_ort, threads)
    scratch = np.empty(op.scratch_bytes(x.shape if g else 1, threads), np.uint8)

    def run_ours():
        op.run(x, y, threads=threads, scratch=scratch)

    run_ours(), run_ort()
    err = float(np.abs(y - y_ort).max() / (np.abs(y_ort).max() + 1e-12))
    t_ours, t_ort, c_ours, c_ort = time_pair(run_ours, run_ort, repeats)
    flops = 2 * macs(layer)
    row = {"layer": name, "threads": threads, "macs": macs(layer), "count": layer[6],
           "ours_ms": t_ours * 1e3, "ort_ms": t_ort * 1e3,
           "ours_gflops": flops / t_ours / 1e9, "ort_gflops": flops / t_ort / 1e9,
           "ratio": t_ours / t_ort, "max_rel_err": err}
    if threads == 1:
        row.update(ours_cpu_ms=c_ours * 1e3, ort_cpu_ms=c_ort * 1e3, cpu_ratio=c_ours / c_ort)
    return row


def table(rows, peaks):
    lines = ["| layer | threads | MMACs | cnngraph ms | onnxruntime ms | cnngraph GFLOPS "
             "(% peak) | onnxruntime GFLOPS (% peak) | ratio | CPU-time ratio |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        pk = peaks[str(r["threads"])]
        cpu = f"{r['cpu_ratio']:.2f}" if "cpu_ratio" in r else "-"
        lines.append(
            f"| {r['layer']} | {r['threads']} | {r['macs'] / 1e6:.1f} | {r['ours_ms']:.3f} | "
            f"{r['ort_ms']:.3f} | {r['ours_gflops']:.1f} ({100 * r['ours_gflops'] / pk:.0f}%) | "
            f"{r['ort_gflops']:.1f} ({100 * r['ort_gflops'] / pk:.0f}%) | {r['ratio']:.2f} | "
            f"{cpu} |")
    return "\n".join(lines)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="1 thread, 3 repeats, print only")
    ap.add_argument("--threads", type=int, nargs="*", help="thread counts (default 1 2)")
    ap.add_argument("--repeats", type=int, default=11)
    ap.add_argument("--layers", nargs="*", help="substrings of layer names to run")
    ap.add_argument("--winograd", choices=["auto", "off", "on"], default="auto",
                    help="Winograd F(2x2,3x3) for the 3x3 stride-1 convs (default auto: where "
                         "faster)")
    args = ap.parse_args(argv)
    conv = native("conv")
    conv.set_winograd(args.winograd)
    threads = args.threads or ([1] if args.quick else [1, 2])
    repeats = 3 if args.quick else args.repeats
    layers = [ly for ly in LAYERS
              if not args.layers or any(s in ly[0] for s in args.layers)]
    rng = np.random.default_rng(0)
    peaks = {str(t): peak_gflops(conv, t) for t in threads}
    rows = []
    for t in threads:
        for layer in layers:
            r = bench_layer(conv, layer, t, repeats, rng)
            rows.append(r)
            print(f"  {r['layer']:<26} t={t} ours {r['ours_ms']:8.3f} ms  ort {r['ort_ms']:8.3f} ms"
                  f"  ratio {r['ratio']:.2f}  err {r['max_rel_err']:.1e}", flush=True)
    summary = {}
    for t in threads:
        rs = [r for r in rows if r["threads"] == t and r["count"]]
        if rs:
            ours = sum(r["ours_ms"] * r["count"] for r in rs)
            ort = sum(r["ort_ms"] * r["count"] for r in rs)
            summary[str(t)] = {"resnet50_conv_fc_ms_ours": ours, "resnet50_conv_fc_ms_ort": ort,
                               "ratio": ours / ort}
            if t == 1:
                cpu_ours = sum(r["ours_cpu_ms"] * r["count"] for r in rs)
                cpu_ort = sum(r["ort_cpu_ms"] * r["count"] for r in rs)
                summary[str(t)].update(cpu_ms_ours=cpu_ours, cpu_ms_ort=cpu_ort,
                                       cpu_ratio=cpu_ours / cpu_ort)
    md = table(rows, peaks)
    print()
    print("Peak (FMA loop): " + ", ".join(f"{t} thread(s) {p:.1f} GFLOPS"
                                          for t, p in peaks.items()))
    print()
    print(md)
    for t, s in summary.items():
        print(f"\nResNet-50 convs + fc, weighted by occurrence, {t} thread(s): cnngraph "
              f"{s['resnet50_conv_fc_ms_ours']:.2f} ms, onnxruntime "
              f"{s['resnet50_conv_fc_ms_ort']:.2f} ms, ratio {s['ratio']:.3f}"
              + (f" (CPU time: {s['cpu_ms_ours']:.2f} vs {s['cpu_ms_ort']:.2f} ms, ratio "
                 f"{s['cpu_ratio']:.3f})" if "cpu_ratio" in s else ""))
    if not args.quick:
        import onnxruntime

        res = {"machine": {"platform": platform.platform(), "processor": platform.processor(),
                           "cores": conv.default_threads(), "isa": conv.isa()},
               "winograd": args.winograd, "onnxruntime": onnxruntime.__version__,
               "peak_gflops": peaks, "layers": rows, "resnet50_weighted": summary,
               "markdown": md}
        RESULTS.parent.mkdir(parents=True, exist_ok=True)
        RESULTS.write_text(json.dumps(res, indent=1) + "\n")
        readme_section(res)
        print(f"\nwrote {RESULTS} and the conv section of benchmarks/README.md")


BEGIN, END = "<!-- conv:begin -->", "<!-- conv:end -->"


def readme_section(res: dict) -> None:
    """The per-layer table of a run (``res``: what results/conv.json holds) in the README."""
    import bench_analysis as ba

    w = res["resnet50_weighted"]
    lines = [BEGIN, "## Convolution kernels, layer by layer", "",
             f"`benchmarks/bench_conv.py`: each of ResNet-50's distinct convolutions (and three "
             f"MobileNetV2 depthwise ones) at batch 1, cnngraph's kernel beside onnxruntime "
             f"{res['onnxruntime']} running a one-node model (graph optimisations on, the same "
             f"thread count, idle workers not spinning), alternating, medians; Winograd "
             f"{res['winograd']}; ISA {res['machine']['isa']}. Peak from an FMA loop: "
             + ", ".join(f"{t} thread(s) {p:.1f} GFLOPS" for t, p in res["peak_gflops"].items())
             + ". Raw numbers: [results/conv.json](results/conv.json).", ""]
    lines += [f"- ResNet-50's convs + fc weighted by occurrence, {t} thread(s): cnngraph "
              f"{s['resnet50_conv_fc_ms_ours']:.1f} ms, onnxruntime "
              f"{s['resnet50_conv_fc_ms_ort']:.1f} ms, ratio {s['ratio']:.2f}"
              for t, s in w.items()]
    lines += ["", res["markdown"], "", END]
    ba.update_section("\n".join(lines), BEGIN, END)


if __name__ == "__main__":
    main()
