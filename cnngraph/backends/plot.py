"""Memory plots (matplotlib, the optional extra ``cnngraph[plot]``): the live-bytes timeline
of a schedule and the arena picture of a placement. Both draw with the Agg backend (no
display) and return the matplotlib Figure; given a path they also write it (PNG by the
path's suffix).

>>> import cnngraph
>>> from cnngraph.passes.plan import plan_memory
>>> fig = plot_timeline(plan_memory(cnngraph.load("lenet5")), model="lenet5")
>>> fig.axes[0].get_xlabel()
'step'
"""

from __future__ import annotations

from typing import Optional

from ..errors import CnnGraphError
from .report import human_bytes

__all__ = ["plot_timeline", "plot_arena", "require_matplotlib", "INSTALL_HINT"]

MIB = float(1 << 20)
INSTALL_HINT = "plotting needs matplotlib: pip install cnngraph[plot]"


def require_matplotlib():
    """matplotlib.pyplot on the Agg backend, or a CnnGraphError saying what to install."""
    try:
        import matplotlib
    except ImportError:
        raise CnnGraphError(INSTALL_HINT) from None
    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def _title(plan, model: Optional[str], what: str) -> str:
    head = f"{model}: " if model else ""
    return f"{head}{what} ({plan.mode}, batch {plan.batch}, {plan.dtype})"


def _save(fig, path) -> None:
    if path is not None:
        fig.savefig(path, dpi=110)


def _short(name: str, width: int = 40) -> str:
    return name if len(name) <= width else name[:width - 1] + "\u2026"


def peak_step(live_bytes) -> int:
    """The first step at the peak."""
    live = list(live_bytes)
    return live.index(max(live)) if live else 0


def plot_timeline(plan, own_plan=None, path=None, *, model: Optional[str] = None):
    """Live activation bytes per step for ``plan``'s schedule and, when given, the model's
    own order (``own_plan``); the chosen schedule's peak marked with its node and bytes, the
    schedule lower bound dashed. Returns the Figure; writes it to ``path`` when given."""
    plt = require_matplotlib()
    fig, ax = plt.subplots(figsize=(10, 4.8), layout="constrained")
    s = plan.schedule
    steps = range(len(s.live_bytes))
    label = s.kind + (", proven optimal" if s.proven_optimal else "")
    if own_plan is not None and tuple(own_plan.schedule.order) == tuple(s.order):
        label = f"chosen order ({label}) = the model's own order"
    else:
        label = f"chosen order ({label}{'' if s.chosen in ('', s.kind) else ': ' + s.chosen})"
    if own_plan is not None:
        o = own_plan.schedule
        if tuple(o.order) != tuple(s.order):
            ax.step(range(len(o.live_bytes)), [b / MIB for b in o.live_bytes], where="mid",
                    color="tab:orange", lw=1.2, alpha=0.85, gid="own",
                    label=f"the model's own order, peak {human_bytes(o.peak_bytes)}")
    ax.step(steps, [b / MIB for b in s.live_bytes], where="mid", color="tab:blue", lw=1.8,
            gid="chosen", label=f"{label}, peak {human_bytes(s.peak_bytes)}")
    ax.axhline(s.lower_bound_bytes / MIB, color="tab:green", ls="--", lw=1.2, gid="lower_bound",
               label=f"lower bound {human_bytes(s.lower_bound_bytes)}")
    if s.live_bytes:
        k = peak_step(s.live_bytes)
        ax.plot([k], [s.live_bytes[k] / MIB], "o", color="tab:red", ms=7, zorder=5, gid="peak",
                label=f"peak at step {k}: {_short(s.names[k], 60)}, "
                      f"{human_bytes(s.live_bytes[k])}")
    ax.set_xlabel("step")
    ax.set_ylabel("live activations (MiB)")
    ax.set_xlim(-0.5, max(len(s.live_bytes), 1) - 0.5)
    top = max([s.lower_bound_bytes, *s.live_bytes,
               *(own_plan.schedule.live_bytes if own_plan is not None else ())]) / MIB
    ax.set_ylim(0, top * 1.08 or 1)
    ax.grid(True, alpha=0.3)
    ax.legend(loc="upper left", bbox_to_anchor=(0, -0.14), ncol=1, fontsize=9, frameon=False)
    ax.set_title(_title(plan, model, "activation memory per step"))
    _save(fig, path)
    return fig


def plot_arena(plan, path=None, *, model: Optional[str] = None):
    """Every activation as a rectangle: x from its first step to one past its last, y from
    its arena offset to offset + bytes (MiB), coloured by size; the arena size and its lower
    bound as horizontal lines. Returns the Figure; writes it to ``path`` when given."""
    plt = require_matplotlib()
    from matplotlib.collections import PatchCollection
    from matplotlib.colors import LogNorm, Normalize
    from matplotlib.patches import Rectangle

    p, pl = plan.problem, plan.placement
    fig, ax = plt.subplots(figsize=(10, 5.2), layout="constrained")
    rects, sizes = [], []
    for size, a, e, off in zip(p.sizes, plan.starts, plan.ends, pl.offsets):
        if size <= 0:
            continue
        rects.append(Rectangle((a, off / MIB), e + 1 - a, size / MIB))
        sizes.append(size / MIB)
    if sizes:
        lo, hi = min(sizes), max(sizes)
        norm = LogNorm(lo, hi) if hi > lo > 0 else Normalize(0, hi or 1)
        coll = PatchCollection(rects, cmap="viridis", norm=norm, edgecolor="white",
                               linewidth=0.4, gid="tensors")
        coll.set_array(sizes)
        ax.add_collection(coll)
        fig.colorbar(coll, ax=ax, label="tensor size (MiB)", pad=0.01)
    arena = pl.arena_bytes / MIB
    ax.axhline(arena, color="tab:red", lw=3, alpha=0.7, gid="arena",
               label=f"arena {human_bytes(pl.arena_bytes)}")
    ax.axhline(pl.lower_bound_bytes / MIB, color="black", ls="--", lw=1.2, gid="lower_bound",
               label=f"lower bound {human_bytes(pl.lower_bound_bytes)}")
    n = max(len(plan.schedule.live_bytes), max(plan.ends, default=0) + 1, 1)
    ax.set_xlim(0, n)
    ax.set_ylim(0, max(arena, pl.lower_bound_bytes / MIB, 1e-9) * 1.12)
    ax.set_xlabel("step")
    ax.set_ylabel("arena offset (MiB)")
    ax.legend(loc="upper right", fontsize=9, framealpha=0.9)
    ax.set_title(_title(plan, model, f"arena: {len(rects)} buffers"))
    _save(fig, path)
    return fig
