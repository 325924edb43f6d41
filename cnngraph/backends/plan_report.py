"""What `cnngraph plan` prints: the schedule, the arena against its lower bound, the training
breakdown, and the answer to a budget question."""

from __future__ import annotations

import json
from typing import Optional

from ..passes.plan import MemoryPlan
from ..passes.training import BatchFit
from .report import human_bytes


def plan_dict(plan: MemoryPlan, fit: Optional[BatchFit] = None) -> dict:
    """The JSON of `cnngraph plan --format json` (schema cnngraph.plan/1)."""
    d = plan.to_dict()
    d["max_batch"] = None if fit is None else {
        "budget_bytes": fit.budget_bytes, "batch": fit.batch, "total_bytes": fit.total_bytes,
        "batch1_bytes": fit.batch1_bytes, "over_bytes": fit.over_bytes,
        "arena_bytes": fit.arena_bytes}
    return d


def plan_lines(plan: MemoryPlan, fit: Optional[BatchFit] = None) -> list[tuple[str, str]]:
    """(label, text) pairs; bytes in binary units."""
    s = plan.schedule
    proven = "proven optimal" if s.proven_optimal else "best found, not proven optimal"
    lines = [
        ("mode", f"{plan.mode}, batch {plan.batch}, {plan.dtype}; bytes in binary units "
                 f"(KiB = 1024 B)"),
        ("schedule", f"{s.kind} ({s.chosen or s.kind}; {proven}), {len(s.order)} steps"),
        ("activation peak", f"{human_bytes(s.peak_bytes)} (lower bound "
                            f"{human_bytes(s.lower_bound_bytes)})"),
        ("arena", f"{human_bytes(plan.arena_bytes)} = {plan.placement.ratio:.3f} x its lower "
                  f"bound {human_bytes(plan.placement.lower_bound_bytes)} "
                  f"({plan.placement.strategy}; {len(plan.problem.sizes)} buffers hold "
                  f"{len(plan.problem.homes)} tensors)"),
        ("parameters", human_bytes(plan.param_bytes)),
    ]
    t = plan.training
    if t is not None:
        lines += [
            ("training", f"{t.optimizer}{', mixed precision' if t.mixed_precision else ''}"
                         f"{', checkpointing' if t.checkpointing else ''}"),
            ("  parameters", human_bytes(t.parameter_bytes)),
            ("  gradients", human_bytes(t.gradient_bytes)),
            ("  optimizer state", human_bytes(t.optimizer_bytes)),
            ("  saved activations", human_bytes(t.activation_bytes)),
            ("  largest transient", f"{human_bytes(t.transient_bytes)} at '{t.transient_node}'"),
        ]
    lines.append(("total", human_bytes(plan.peak_bytes)))
    if fit is not None:
        arena = "" if fit.arena_bytes is None else (
            f": parameters {human_bytes(fit.total_bytes - fit.arena_bytes)} + arena "
            f"{human_bytes(fit.arena_bytes)}")
        if fit.fits:
            lines.append(("budget", f"{human_bytes(fit.budget_bytes)}: the largest batch that "
                                    f"fits is {fit.batch} ({human_bytes(fit.total_bytes)}"
                                    f"{arena})"))
        else:
            lines.append(("budget", f"{human_bytes(fit.budget_bytes)}: even batch 1 does not "
                                    f"fit; it needs {human_bytes(fit.batch1_bytes)}{arena}, "
                                    f"{human_bytes(fit.over_bytes)} over"))
    return lines


def render_plan(plan: MemoryPlan, fmt: str = "table", fit: Optional[BatchFit] = None) -> str:
    if fmt == "json":
        return json.dumps(plan_dict(plan, fit), indent=1) + "\n"
    width = max(len(k) for k, _ in plan_lines(plan, fit))
    return "".join(f"{k:<{width}}  {v}\n" for k, v in plan_lines(plan, fit))
