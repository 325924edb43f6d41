"""The command line: argument parsing and printing only; the work is the public API's.

Any error in the user's input is one line on stderr and exit code 2.
"""

from __future__ import annotations

import argparse
import re
import sys
from typing import Optional, Sequence

from . import analyze, load
from .backends import render, report
from .backends.export_onnx import WEIGHT_MODES, export
from .backends.plan_report import render_plan
from .dtypes import COUNTING_DTYPES
from .errors import CnnGraphError
from .passes.plan import MODES, plan_memory
from .passes.schedule import KINDS
from .passes.training import OPTIMIZER_STATES as OPTIMIZERS
from .passes.training import max_batch_size, parse_bytes


class UsageError(CnnGraphError):
    """A malformed option value."""


def parse_input_shape(text: str) -> tuple[str, tuple[int, ...]]:
    """'data=1x3x224x224' -> ('data', (1, 3, 224, 224))."""
    m = re.fullmatch(r"(.+)=(\d+(?:[x,]\d+)*)", text.strip())
    if not m:
        raise UsageError(f"--input-shape '{text}' is not NAME=DxDx... (e.g. data=1x3x224x224)")
    return m.group(1), tuple(int(d) for d in re.split(r"[x,]", m.group(2)))


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} must be at least 1")
    return value


def _analysis_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("model", help="an ONNX file, or a built-in example name (light-resnet50, ...)")
    p.add_argument("--batch", type=positive_int, help="batch size (default: the model's, or 1)")
    p.add_argument("--input-shape", action="append", default=[], metavar="NAME=1x3x224x224",
                   help="the whole shape of one input; repeat for several inputs")
    p.add_argument("--dtype", choices=COUNTING_DTYPES, default="float32",
                   help="element type memory is counted in (default float32)")
    p.add_argument("--allow-unknown", action="store_true",
                   help="list nodes of unknown ops as uncounted instead of failing")
    p.add_argument("--no-inplace", dest="inplace", action="store_false",
                   help="memory without in-place reuse or Concat elimination: the plain "
                        "liveness numbers (views still alias their input)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="cnngraph",
        description="Exact shapes, parameters, FLOPs and memory for convolutional networks.")
    sub = parser.add_subparsers(dest="command", required=True)
    rp = sub.add_parser("report", help="per-layer shapes, parameters, MACs, FLOPs and memory")
    _analysis_options(rp)
    rp.add_argument("--format", choices=report.FORMATS, default="table")
    rp.add_argument("--depth", type=int, metavar="K",
                    help="one row per block, block paths cut to K levels")
    rp.add_argument("--sort", choices=report.SORT_KEYS, default="order",
                    help="row order (default: execution order)")
    rp.add_argument("--top", type=positive_int, metavar="N", help="only the first N rows")
    rp.set_defaults(func=cmd_report)
    xp = sub.add_parser("export", help="write the network as an ONNX model (onnxruntime runs it)")
    xp.add_argument("model", help="a zoo name, a .cnn file, an ONNX file or a built-in example")
    xp.add_argument("-o", "--output", required=True, metavar="FILE.onnx")
    xp.add_argument("--weights", choices=WEIGHT_MODES, default="auto",
                    help="auto: the model's own weights if it has them, else random; random: "
                         "He-normal, batch norm calibrated; zeros; keep")
    xp.add_argument("--seed", type=int, default=0, help="seed of random weights (default 0)")
    xp.add_argument("--opset", type=positive_int, help="re-target (default: the model's own)")
    xp.set_defaults(func=cmd_export)
    pp = sub.add_parser("plan", help="execution order, arena and training memory; budgets")
    _analysis_options(pp)
    pp.add_argument("--mode", choices=MODES, default="inference")
    pp.add_argument("--optimizer", choices=OPTIMIZERS, default="sgd",
                    help="training: the optimizer whose state is held (default sgd)")
    pp.add_argument("--mixed-precision", action="store_true",
                    help="training: 16-bit activations and gradients, 32-bit master weights")
    pp.add_argument("--checkpointing", action="store_true",
                    help="training: keep about sqrt(n) checkpoints instead of every activation")
    pp.add_argument("--schedule", choices=KINDS, default="optimal",
                    help="execution order (default: the proven optimum, or the best found)")
    pp.add_argument("--budget", metavar="BYTES",
                    help="e.g. 8GiB: the largest batch that fits; exit 1 if none does")
    pp.add_argument("--format", choices=("table", "json"), default="table")
    pp.add_argument("--plot", metavar="FILE.png",
                    help="write the memory timeline (chosen vs own order) to FILE.png and the "
                         "arena picture to FILE.arena.png (needs cnngraph[plot])")
    pp.set_defaults(func=cmd_plan)
    dp = sub.add_parser("render", help="draw the network as an annotated diagram "
                                       "(svg, png, pdf or dot; needs cnngraph[render])")
    _analysis_options(dp)
    dp.add_argument("-o", "--output", required=True, metavar="FILE.svg|png|pdf|dot",
                    help="the format follows the suffix; .dot needs no graphviz program")
    dp.add_argument("--annotate", default=",".join(render.DEFAULT_ANNOTATE), metavar="LIST",
                    help=f"what boxes show besides op and name: a comma list of "
                         f"{', '.join(render.ANNOTATIONS)}, or none (default %(default)s)")
    dp.add_argument("--color-by", choices=render.COLOR_BY, default="op",
                    help="fill colour scale, with a legend (default op)")
    dp.add_argument("--depth", metavar="K|all",
                    help="collapse blocks nested K deep into single boxes; all: every layer "
                         f"(default: every layer if that fits in {render.AUTO_BOXES} boxes and "
                         f"{render.AUTO_RANKS} ranks, else the deepest level that does)")
    dp.add_argument("--collapse", action="store_true", help="collapse every block (--depth 1)")
    dp.add_argument("--rankdir", choices=render.RANKDIRS, default="TB",
                    help="TB: top to bottom (default), LR: left to right")
    dp.add_argument("--highlight-peak", action="store_true",
                    help="mark the step where inference memory peaks and the tensors live there")
    dp.add_argument("--schedule", choices=KINDS, default="optimal",
                    help="execution order for --highlight-peak (default optimal)")
    dp.set_defaults(func=cmd_render)
    xr = sub.add_parser("run", help="run the network on an input in its planned arena; "
                                    "--check / --bench against onnxruntime")
    xr.add_argument("model", help="an ONNX file or a built-in example (a model with weights)")
    given = xr.add_mutually_exclusive_group()
    given.add_argument("--input", metavar="X.npy",
                       help="the input array (.npy; .npz by input name for several inputs)")
    given.add_argument("--random-input", action="store_true",
                       help="a standard normal input (the default when --input is not given)")
    xr.add_argument("--seed", type=int, default=0,
                    help="seed of --random-input and --weights random (default 0)")
    xr.add_argument("--weights", choices=("own", "random"), default="own",
                    help="own: the model's (a structure-only model has none); random: fresh "
                         "He-normal weights, batch norm calibrated, as `export` makes them")
    xr.add_argument("-o", "--output", metavar="OUT.npy",
                    help="write the output (.npy; .npz by output name for several outputs)")
    xr.add_argument("--batch", type=positive_int,
                    help="batch size (default: the input's, or the model's)")
    xr.add_argument("--threads", type=positive_int, help="threads (default: every core)")
    xr.add_argument("--check", action="store_true",
                    help="run onnxruntime on the same input: max abs/rel error, pass/fail "
                         "(rtol 1e-4, atol 1e-5); exit 1 on a failure")
    xr.add_argument("--bench", action="store_true",
                    help="median latency beside onnxruntime's, run alternately")
    xr.add_argument("--repeat", type=positive_int, default=20,
                    help="runs timed by --bench (default 20)")
    xr.set_defaults(func=cmd_run)
    ep = sub.add_parser("examples", help="list the built-in example models")
    ep.set_defaults(func=cmd_examples)
    zp = sub.add_parser("zoo", help="list the model zoo: every model with its parameters and MACs")
    zp.set_defaults(func=cmd_zoo)
    return parser


def _analyze(args):
    shapes = dict(parse_input_shape(s) for s in args.input_shape)
    graph = load(args.model)
    return analyze(graph, batch=args.batch, dtype=args.dtype, input_shapes=shapes,
                   allow_unknown=args.allow_unknown, inplace=args.inplace)


def cmd_report(args) -> int:
    if args.depth is not None and args.depth < 0:
        raise UsageError(f"--depth {args.depth} must be 0 or more")
    a = _analyze(args)
    text = report.render_report(a, args.format, depth=args.depth, sort=args.sort, top=args.top)
    if text is not None:
        sys.stdout.write(text)
    return 0


def cmd_export(args) -> int:
    model = export(load(args.model), args.output, weights=args.weights, seed=args.seed,
                   opset=args.opset)
    print(f"{args.output}: {len(model.graph.node)} nodes, opset "
          f"{model.opset_import[0].version}, {len(model.graph.initializer)} initializers")
    return 0


def cmd_plan(args) -> int:
    graph = load(args.model)
    options = dict(dtype=args.dtype, optimizer=args.optimizer,
                   mixed_precision=args.mixed_precision, checkpointing=args.checkpointing)
    shapes = dict(parse_input_shape(s) for s in args.input_shape)
    plan = plan_memory(graph, mode=args.mode, batch=args.batch, schedule_kind=args.schedule,
                       input_shapes=shapes, inplace=args.inplace, **options)
    fit = None
    if args.budget is not None:
        fit = max_batch_size(graph, parse_bytes(args.budget), mode=args.mode,
                             inplace=args.inplace, **options)
    if args.plot:
        _plot_plan(graph, plan, args, shapes, options)
    sys.stdout.write(render_plan(plan, args.format, fit))
    return 1 if fit is not None and not fit.fits else 0


def _plot_plan(graph, plan, args, shapes, options) -> None:
    """--plot FILE.png: the timeline to FILE.png, the arena to FILE.arena.png."""
    from pathlib import Path

    from .backends import plot

    plot.require_matplotlib()
    own = plan_memory(graph, mode=args.mode, batch=args.batch, schedule_kind="own",
                      input_shapes=shapes, inplace=args.inplace, **options)
    path = Path(args.plot)
    model = graph.name or Path(args.model).stem
    plot.plot_timeline(plan, own, path, model=model)
    plot.plot_arena(plan, path.with_name(path.stem + ".arena" + (path.suffix or ".png")),
                    model=model)


def cmd_render(args) -> int:
    depth = args.depth
    if depth is not None and depth != "all":
        try:
            depth = int(depth)
        except ValueError:
            raise UsageError(f"--depth '{depth}' is not a whole number or 'all'") from None
    shapes = dict(parse_input_shape(s) for s in args.input_shape)
    path = render.render(
        load(args.model), args.output, annotate=args.annotate, color_by=args.color_by,
        depth=depth, collapse=args.collapse, rankdir=args.rankdir,
        highlight_peak=args.highlight_peak, schedule=args.schedule, batch=args.batch,
        input_shapes=shapes, dtype=args.dtype, allow_unknown=args.allow_unknown,
        inplace=args.inplace)
    print(f"{path}: {path.stat().st_size:,} bytes")
    return 0


def _run_inputs(args, graph):
    """The arrays --input names (None: random), and the batch they imply."""
    import numpy as np

    if not args.input:
        return None, args.batch
    try:
        data = np.load(args.input, allow_pickle=False)
    except (OSError, ValueError) as e:
        raise UsageError(f"--input {args.input}: cannot read it as .npy/.npz ({e})") from None
    names = graph.input_names
    if isinstance(data, np.ndarray):
        if len(names) != 1:
            raise UsageError(f"--input {args.input} holds one array; the model has "
                             f"{len(names)} inputs ({', '.join(names)}): give an .npz")
        arrays = {names[0]: data}
    else:
        arrays = {k: data[k] for k in data.files}
    batch = args.batch
    first = graph.inputs[0] if graph.inputs else None
    if batch is None and first is not None and first.name in arrays and first.shape:
        a = arrays[first.name]
        if a.ndim == len(first.shape) and a.ndim:
            batch = int(a.shape[0])
    return arrays, batch


def cmd_run(args) -> int:
    import numpy as np

    from .execute import compare as cmp
    from .execute import compile, random_weights

    graph = load(args.model)
    if args.weights == "random":
        graph = random_weights(graph, seed=args.seed)
    inputs, batch = _run_inputs(args, graph)
    compiled = compile(graph, batch=batch, threads=args.threads)
    if inputs is None:
        inputs = cmp.random_inputs(compiled.input_types, args.seed)
    outputs = compiled.run(inputs)
    kinds = sorted(set(compiled.kernels.values()))
    print(f"{graph.name}: {len(compiled.steps)} steps, {compiled.threads} thread(s), kernels "
          f"{'/'.join(kinds)}; arena {compiled.arena_bytes / 2**20:.2f} MiB (planned "
          f"{compiled.plan.arena_bytes / 2**20:.2f} MiB), workspace "
          f"{compiled.workspace_bytes / 2**20:.2f} MiB (binary units)")
    for name, v in outputs.items():
        line = f"  {name}: {v.dtype} {'x'.join(map(str, v.shape))}"
        if v.ndim == 2 and v.shape[1] > 1:
            line += f", argmax {v.argmax(axis=1)[:8].tolist()}"
        print(line)
    if args.output:
        if len(outputs) == 1:
            np.save(args.output, next(iter(outputs.values())))
        else:
            np.savez(args.output, **outputs)
        print(f"wrote {args.output}")
    status = 0
    if args.check or args.bench:
        model = cmp.onnx_bytes(graph, None if args.weights == "random" else args.model)
        session = cmp.onnxruntime_session(model, compiled.threads)
    if args.check:
        reference = cmp.run_onnxruntime(session, inputs)
        noise = None  # how far onnxruntime moves by itself: optimised vs unoptimised graph
        for row in cmp.compare(outputs, reference):
            verdict = "PASS" if row.ok else "FAIL"
            if not row.ok:
                if noise is None:
                    plain = cmp.onnxruntime_session(model, compiled.threads, optimize=False)
                    noise = cmp.compare(cmp.run_onnxruntime(plain, inputs), reference)
                own = next(r.max_abs for r in noise if r.name == row.name)
                if row.max_abs <= 2 * own:
                    verdict = (f"PASS within onnxruntime's own rounding (its optimised and "
                               f"unoptimised graphs differ by {own:.3g})")
                else:
                    status = 1
            print(f"check {row.name}: max abs error {row.max_abs:.3g}, max rel error "
                  f"{row.max_rel:.3g} (to max |onnxruntime|), rtol {cmp.RTOL:g} atol "
                  f"{cmp.ATOL:g}: {verdict}")
    if args.bench:
        ours, theirs = cmp.bench_pair(compiled.execute,
                                      lambda: cmp.run_onnxruntime(session, inputs),
                                      repeat=args.repeat)
        print(f"bench: cnngraph {ours * 1e3:.2f} ms, onnxruntime {theirs * 1e3:.2f} ms "
              f"(medians of {args.repeat}, alternating, {compiled.threads} thread(s)): "
              f"{ours / theirs:.2f}x onnxruntime's latency")
    return status


def cmd_examples(args) -> int:
    from .frontends import examples

    for name, path in sorted(examples().items()):
        print(f"{name:24s} {path}")
    return 0


def cmd_zoo(args) -> int:
    """One row per zoo model: its input, parameters (as analysed) against the published count,
    and MACs at batch 1."""
    from rich.console import Console
    from rich.table import Table

    from .frontends import zoo

    table = Table(title="cnngraph model zoo: batch 1; MACs are multiply-accumulates of "
                        "conv/dense layers; published = the count cited in the model's file",
                  title_justify="left")
    for col in ("model", "input", "trainable params", "non-trainable", "MACs", "published"):
        table.add_column(col, justify="left" if col in ("model", "input") else "right",
                         no_wrap=True)
    for name in zoo.names():
        a = analyze(zoo.load(name), batch=1)
        t, pub = a.totals, zoo.published(name)
        ins = ", ".join("x".join(map(str, s.shape)) for _, s in a.io(a.graph.input_names) if s)
        same = t.trainable_params == pub.trainable and pub.non_trainable in (
            None, t.non_trainable_params)
        table.add_row(name, ins, f"{t.trainable_params:,}", f"{t.non_trainable_params:,}",
                      f"{t.macs:,}", f"{pub.trainable:,}" + (" (same)" if same else " (DIFFERS)"))
    Console(width=None if sys.stdout.isatty() else 160).print(table)
    return 0


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except CnnGraphError as e:
        print(e if e.located else f"cnngraph: error: {e}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # `cnngraph report ... | head`
        return 0


if __name__ == "__main__":
    sys.exit(main())
