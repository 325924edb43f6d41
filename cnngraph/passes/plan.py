"""The memory plan: an execution order, every activation's place in one arena, and (for
training) the breakdown of what training holds. This is the data the executor will run in.

>>> import cnngraph
>>> p = plan_memory(cnngraph.load("lenet5"))
>>> p.arena_bytes >= p.lower_bound_bytes, p.schedule.proven_optimal
(True, True)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping, Optional

from .. import dtypes
from ..errors import CnnGraphError
from ..ir import Graph
from .cost import count_params
from .placement import Placement, place, place_groups
from .schedule import KINDS, MemoryProblem, Schedule, memory_problem, schedule
from .shapes import infer_shapes
from .training import TrainingMemory, training_memory

MODES = ("inference", "training")
SCHEMA = "cnngraph.plan/1"


@dataclass(frozen=True)
class MemoryPlan:
    """Bytes are ints. ``peak_bytes`` is what the run needs at its peak: parameters plus the
    activation peak for inference, the training breakdown's total for training."""

    mode: str
    batch: int
    dtype: str
    problem: MemoryProblem
    schedule: Schedule
    placement: Placement
    starts: tuple  # per tensor of the problem: first and last step it is live
    ends: tuple
    param_bytes: int
    training: Optional[TrainingMemory] = None

    @property
    def peak_activation_bytes(self) -> int:
        return self.schedule.peak_bytes

    @property
    def lower_bound_bytes(self) -> int:
        return self.schedule.lower_bound_bytes

    @property
    def arena_bytes(self) -> int:
        return self.placement.arena_bytes

    @property
    def peak_bytes(self) -> int:
        if self.training is not None:
            return self.training.total_bytes
        return self.param_bytes + self.schedule.peak_bytes

    def locations(self) -> dict:
        """Where every activation tensor lives: name -> (byte offset in the arena, bytes).
        Tensors that share storage (views, in-place outputs, Concat slices) share offsets."""
        p, offsets = self.problem, self.placement.offsets
        return {t: (int(offsets[k]), int(b)) for t, k, b in p.homes}

    def to_dict(self) -> dict:
        """The plan as plain data: ``--format json`` (schema cnngraph.plan/1)."""
        s, p = self.schedule, self.problem
        names = p.tensor_names or tuple(f"t{i}" for i in range(len(p.sizes)))
        return {
            "schema": SCHEMA, "mode": self.mode, "batch": self.batch, "dtype": self.dtype,
            "schedule": {"kind": s.kind, "chosen": s.chosen,
                         "proven_optimal": s.proven_optimal, "order": list(s.names)},
            "peak_bytes": self.peak_bytes,
            "peak_activation_bytes": self.peak_activation_bytes,
            "param_bytes": self.param_bytes,
            "lower_bound_bytes": self.lower_bound_bytes,
            "arena_bytes": self.arena_bytes,
            "arena_lower_bound_bytes": self.placement.lower_bound_bytes,
            "live_bytes_per_step": list(s.live_bytes),
            "tensors": [{"name": n, "bytes": b, "start": a, "end": e, "offset": o}
                        for n, b, a, e, o in zip(names, p.sizes, self.starts, self.ends,
                                                 self.placement.offsets)],
            "training": self.training.as_dict() if self.training is not None else None,
        }


def plan_memory(graph: Graph, mode: str = "inference", batch: Optional[int] = None,
                dtype: str = "float32", optimizer: str = "sgd", schedule_kind: str = "optimal",
                input_shapes: Optional[Mapping[str, tuple]] = None,
                mixed_precision: bool = False, checkpointing: bool = False,
                alignment: int = 64, inplace: bool = True) -> MemoryPlan:
    """Order the running nodes (``schedule_kind``: own, list, dfs, heuristic or optimal),
    place every activation in one arena, and for ``mode='training'`` add the training
    breakdown (``optimizer``: sgd, momentum, adam, adamw). ``inplace=False`` turns off
    in-place reuse and Concat elimination (views still alias their input)."""
    if mode not in MODES:
        raise CnnGraphError(f"mode '{mode}' is not one of {', '.join(MODES)}")
    if schedule_kind not in KINDS:
        raise CnnGraphError(f"schedule '{schedule_kind}' is not one of {', '.join(KINDS)}")
    dtypes.check_counting_dtype(dtype)
    shapes = infer_shapes(graph, batch=batch, input_shapes=input_shapes)
    params = count_params(graph, shapes)[0]
    problem = memory_problem(graph, shapes, dtype, inplace=inplace)
    order = schedule(problem, schedule_kind)
    starts, ends, placement = place_order(problem, order.order, alignment)
    training = None
    if mode == "training":
        training = training_memory(graph, batch=shapes.batch, dtype=dtype, optimizer=optimizer,
                                   mixed_precision=mixed_precision, checkpointing=checkpointing)
    return MemoryPlan(mode, shapes.batch, dtype, problem, order, placement, starts, ends,
                      params * dtypes.itemsize(dtype), training)


def place_order(problem: MemoryProblem, order, alignment: int = 64):
    """(starts, ends, Placement) of the problem's tensors when its nodes run in ``order``;
    an eliminated Concat's slices are placed together (placement.place_groups)."""
    starts, ends = intervals(problem, order)
    if problem.groups:
        return starts, ends, place_groups(problem.sizes, starts, ends, problem.groups,
                                          alignment)
    return starts, ends, place(problem.sizes, starts, ends, alignment=alignment)


def intervals(problem: MemoryProblem, order) -> tuple[tuple, tuple]:
    """First and last step each tensor is live when the nodes run in ``order``: from its
    producer's step (graph inputs from 0) to its last reader's (graph outputs to the end)."""
    step = {node: i for i, node in enumerate(order)}
    last = len(order) - 1
    starts, ends = [], []
    for t in range(len(problem.sizes)):
        start = step[problem.producer[t]] if problem.producer[t] >= 0 else 0
        end = max([start] + [step[c] for c in problem.consumers[t]])
        starts.append(start)
        ends.append(max(last, 0) if problem.pinned[t] else end)
    return tuple(starts), tuple(ends)
