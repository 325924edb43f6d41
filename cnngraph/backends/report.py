"""The report: one Analysis as a table, JSON (schema cnngraph.report/1), CSV or markdown."""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass
from typing import Optional

from ..passes.analysis import Analysis

SCHEMA = "cnngraph.report/1"
SORT_KEYS = ("order", "name", "params", "macs", "flops", "memory")
FORMATS = ("table", "json", "csv", "markdown")


def human_bytes(n: int) -> str:
    """Binary units, as the domain brief asks: 1536 -> '1.50 KiB'."""
    value = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(value) < 1024 or unit == "TiB":
            return f"{int(value)} B" if unit == "B" else f"{value:.2f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")


def human_count(n: int) -> str:
    """Short count for narrow columns: 4_089_184_256 -> '4.09 G'."""
    for unit, scale in (("G", 1e9), ("M", 1e6), ("K", 1e3)):
        if abs(n) >= scale:
            return f"{n / scale:.2f} {unit}"
    return str(n)


def _shape(shape) -> str:
    return "x".join(map(str, shape)) if shape else "scalar"


# -- the stable JSON schema ----------------------------------------------------------------------
def to_dict(a: Analysis) -> dict:
    """The report as plain data; ``json.dumps`` of it is ``--format json``."""
    t = a.totals
    graph = a.graph
    return {
        "schema": SCHEMA,
        "model": {"name": graph.name, "source": graph.source},
        "dtype": a.dtype,
        "batch": a.batch,
        "inputs": [_io(n, tt) for n, tt in a.io(graph.input_names)],
        "outputs": [_io(n, tt) for n, tt in a.io(graph.outputs)],
        "layers": [{
            "name": l.name, "op": l.op, "block": l.block, "inputs": [i for i in l.inputs if i],
            "outputs": [o for o in l.outputs if o],
            "output_shapes": [list(s) for s in l.output_shapes],
            "params": l.params, "trainable_params": l.trainable_params, "macs": l.macs,
            "other_flops": l.other_flops, "flops": l.flops, "activation_bytes": l.activation_bytes,
        } for l in a.layers],
        "blocks": [{"name": b.name, "layers": b.layers, "params": b.params,
                    "trainable_params": b.trainable_params, "macs": b.macs, "flops": b.flops}
                   for b in a.blocks],
        "totals": {
            "params": t.params, "trainable_params": t.trainable_params,
            "non_trainable_params": t.non_trainable_params, "param_bytes": a.memory.param_bytes,
            "macs": t.macs, "other_flops": t.other_flops, "flops": t.flops,
            "activation_bytes": t.activation_bytes,
        },
        "memory": {
            "param_bytes": a.memory.param_bytes,
            "inference_peak_activation_bytes": a.memory.peak_activation_bytes,
            "inference_peak_bytes": a.memory.peak_bytes,
            "schedule": a.memory.schedule,
            "proven_optimal": a.memory.proven_optimal,
            "inplace": a.memory.inplace,
            "peak_step": a.memory.peak_node,
        },
        "uncounted": list(a.uncounted),
        "folded_nodes": len(a.shapes.folded),
    }


def _io(name, t) -> dict:
    return {"name": name, "shape": list(t.shape) if t else None, "dtype": t.dtype if t else None}


# -- rows: layers, or blocks cut at a depth ------------------------------------------------------
@dataclass
class Row:
    name: str
    op: str
    shape: str
    params: int
    macs: int
    flops: int
    activation_bytes: int


def rows(a: Analysis, depth: Optional[int] = None, sort: str = "order",
         top: Optional[int] = None) -> list[Row]:
    """Table rows: one per layer, or with ``depth`` one per block path cut to that depth."""
    out: list[Row] = []
    index: dict[str, Row] = {}
    for l in a.layers:
        parts = l.block.split("/") if l.block else []
        if depth is not None and len(parts) >= depth:
            key = "/".join(parts[:depth]) if depth > 0 else a.graph.name
            row = index.get(key)
            if row is None:
                row = index[key] = Row(key, "block", "", 0, 0, 0, 0)
                out.append(row)
            row.params += l.params
            row.macs += l.macs
            row.flops += l.flops
            row.activation_bytes += l.activation_bytes
            row.shape = _shape(l.output_shapes[0]) if l.output_shapes else ""
            continue
        out.append(Row(l.name, l.op, ", ".join(_shape(s) for s in l.output_shapes), l.params,
                       l.macs, l.flops, l.activation_bytes))
    if sort != "order":
        key = {"name": lambda r: r.name, "params": lambda r: -r.params,
               "macs": lambda r: -r.macs, "flops": lambda r: -r.flops,
               "memory": lambda r: -r.activation_bytes}[sort]
        out.sort(key=key)
    return out[:top] if top is not None else out


# -- formats ----------------------------------------------------------------------------------
COLUMNS = ("layer", "op", "output shape", "params", "MACs", "FLOPs", "activations")


def _cells(r: Row) -> list[str]:
    return [r.name, r.op, r.shape, f"{r.params:,}", f"{r.macs:,}", f"{r.flops:,}",
            human_bytes(r.activation_bytes)]


def to_csv(a: Analysis, **opts) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["layer", "op", "output_shape", "params", "macs", "flops", "activation_bytes"])
    for r in rows(a, **opts):
        w.writerow([r.name, r.op, r.shape, r.params, r.macs, r.flops, r.activation_bytes])
    return buf.getvalue()


def summary_lines(a: Analysis) -> list[tuple[str, str]]:
    t, m = a.totals, a.memory
    lines = [
        ("params", f"{t.params:,} ({t.trainable_params:,} trainable, "
                   f"{t.non_trainable_params:,} non-trainable)"),
        ("MACs", f"{t.macs:,} ({human_count(t.macs)}; multiply-accumulates of conv/dense/matmul)"),
        ("FLOPs", f"{t.flops:,} (= 2 x MACs + {t.other_flops:,} other FLOPs: bias, activation, "
                  f"pooling, norm)"),
        ("parameter memory", human_bytes(m.param_bytes)),
        ("sum of activations", human_bytes(t.activation_bytes)),
        ("inference peak", f"{human_bytes(m.peak_bytes)} = parameters "
                           f"{human_bytes(m.param_bytes)} + activations "
                           f"{human_bytes(m.peak_activation_bytes)} at '{m.peak_node}' "
                           f"({m.schedule} order{', proven' if m.proven_optimal else ''}, "
                           f"in-place {'on' if m.inplace else 'off'})"),
    ]
    if a.shapes.folded:
        lines.append(("folded", f"{len(a.shapes.folded)} constant nodes computed at load time"))
    if a.uncounted:
        lines.append(("UNCOUNTED", f"{len(a.uncounted)} nodes of unknown ops, not in any total: "
                                   + ", ".join(a.uncounted)))
    return lines


def _header(a: Analysis) -> str:
    ins = ", ".join(f"{n} {_shape(t.shape) if t else '?'}" for n, t in a.io(a.graph.input_names))
    return (f"{a.graph.name}  ({a.graph.source or 'in memory'})  batch {a.batch}, "
            f"{a.dtype}, bytes in binary units (KiB = 1024 B)\ninputs: {ins}")


def to_markdown(a: Analysis, **opts) -> str:
    lines = [_header(a).replace("\n", "  \n"), "", "| " + " | ".join(COLUMNS) + " |",
             "|" + "---|" * 2 + "---|" + "---:|" * 4]
    lines += ["| " + " | ".join(_cells(r)) + " |" for r in rows(a, **opts)]
    lines.append("")
    lines += [f"- **{k}**: {v}" for k, v in summary_lines(a)]
    return "\n".join(lines) + "\n"


def print_table(a: Analysis, console=None, **opts) -> None:
    """The terminal table (rich), then totals and the memory section."""
    import sys

    from rich.console import Console
    from rich.table import Table

    # Piped output is not cut to 80 columns: a file or a pager can hold the whole table.
    console = console or Console(width=None if sys.stdout.isatty() else 160)
    table = Table(title=_header(a), title_justify="left", show_lines=False)
    for i, col in enumerate(COLUMNS):
        table.add_column(col, justify="right" if i >= 3 else "left", no_wrap=i != 0,
                         min_width=12 if i == 0 else None, overflow="fold")
    for r in rows(a, **opts):
        table.add_row(*_cells(r))
    console.print(table)
    for k, v in summary_lines(a):
        console.print(f"[bold]{k}[/bold]: {v}", highlight=False)


def render_report(a: Analysis, fmt: str = "table", **opts) -> Optional[str]:
    """Text of the report in a format; 'table' prints to the terminal and returns None."""
    if fmt == "json":
        return json.dumps(to_dict(a), indent=1) + "\n"
    if fmt == "csv":
        return to_csv(a, **opts)
    if fmt == "markdown":
        return to_markdown(a, **opts)
    print_table(a, **opts)
    return None
