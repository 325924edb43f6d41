"""Training memory, the largest batch that fits a budget, and budget strings.

The rules (../shared/DOMAIN.md, "Memory"; issue 4, "Training memory"). All numbers are ints, in
bytes. ``b`` is the batch; "float" tensors are counted in the activation dtype (``dtype``, or
16-bit with mixed precision); integer tensors keep their own size.

- parameters:  every parameter (trainable or not) x dtype. Mixed precision: a 32-bit master copy
  plus a 16-bit working copy of every parameter (6 bytes each).
- gradients:   one per *trainable* parameter, in dtype (16-bit with mixed precision). BN running
  statistics are parameters but get no gradient and no optimizer state.
- optimizer:   copies of the trainable parameters: sgd 0, momentum 1, adam and adamw 2 (adamw's
  decoupled weight decay needs no extra state). In dtype, or 32-bit with mixed precision.
- activations: what the forward pass keeps for the backward pass: every tensor that exists at run
  time, summed (not maxed): the graph inputs and the outputs of every running node, each at batch
  ``b``. A view op's output (``op.is_view``: Reshape, Flatten, Squeeze, Identity, Dropout...)
  aliases its input's bytes and is counted once, with its input. So is an in-place output that
  autograd allows (cnngraph.passes.aliasing with ``training``): ReLU over BN's output, the
  residual Add over the last BN's output, as torchvision's ``ReLU(inplace=True)`` and
  ``out += identity`` do; never over a tensor some op needs for its gradient (a conv's or BN's
  input). Any other op's output is a separate saved tensor.
- transient:   the largest working set of one backward step that the stored activations do not
  cover: for each running node, the gradient with respect to its outputs plus the gradients with
  respect to its activation inputs, i.e. bytes(outputs) + bytes(distinct activation inputs) at
  batch ``b`` (weights excluded: their gradients are the "gradients" term). The max over nodes.
- total = parameters + gradients + optimizer + activations + transient.

Activation checkpointing: the running nodes, in the model's own order, are cut into
``k = max(1, round(sqrt(n)))`` contiguous segments of nearly equal node counts. Kept for the whole
backward pass are the checkpoints: the graph inputs and every tensor that a segment reads but an
earlier segment (or the input) produced. During the backward pass one segment at a time is
recomputed, so on top of the checkpoints one segment's own outputs are live: the largest such
segment (its outputs not already counted as checkpoints). activations = checkpoints + largest
segment, never more than without checkpointing.

``batch`` replaces the leading dim of every graph input, as in ``analyze``. With mixed precision
``dtype`` does not matter: 32-bit master weights and optimizer state, 16-bit (float16 or
bfloat16, both 2 bytes) working weights, gradients and activations.
"""

from __future__ import annotations

import math
import re
from dataclasses import asdict, dataclass
from fractions import Fraction
from typing import Callable, Optional, Union

from .. import dtypes
from ..errors import CnnGraphError
from ..ir import Graph, gc_paused
from .cost import count_costs
from .shapes import Shapes, infer_shapes

OPTIMIZER_STATES = {"sgd": 0, "momentum": 1, "adam": 2, "adamw": 2}
HALF = "float16"  # the 16-bit type of mixed precision (bfloat16 has the same size)
MASTER = "float32"  # mixed precision's master weights and optimizer state
MAX_BATCH = 1 << 31  # max_batch_size never searches beyond this


@dataclass
class TrainingMemory:
    """Memory of one training step, term by term (bytes, ints)."""

    batch: int
    dtype: str
    optimizer: str
    mixed_precision: bool
    checkpointing: bool
    params: int  # counts of parameters (elements), not bytes
    trainable_params: int
    parameter_bytes: int
    gradient_bytes: int
    optimizer_bytes: int
    activation_bytes: int
    transient_bytes: int
    transient_node: str = ""  # the node whose backward step is the largest transient
    segments: int = 0  # checkpointing: how many segments (0 without)
    checkpoint_bytes: int = 0  # checkpointing: the stored segment inputs
    segment_bytes: int = 0  # checkpointing: the largest segment's own activations
    full_activation_bytes: int = 0  # activations without checkpointing (for comparison)

    @property
    def total_bytes(self) -> int:
        return (self.parameter_bytes + self.gradient_bytes + self.optimizer_bytes
                + self.activation_bytes + self.transient_bytes)

    def as_dict(self) -> dict:
        d = asdict(self)
        d["total_bytes"] = self.total_bytes
        return d


def _check_options(dtype: str, optimizer: str) -> None:
    dtypes.check_counting_dtype(dtype)
    if optimizer not in OPTIMIZER_STATES:
        raise CnnGraphError(f"optimizer '{optimizer}' is not one of "
                            f"{', '.join(OPTIMIZER_STATES)}")


def _check_batch(batch) -> int:
    if isinstance(batch, bool) or not isinstance(batch, int) or batch < 1:
        raise CnnGraphError(f"batch must be a positive integer, not {batch!r}")
    return batch


def training_memory(graph: Graph, batch: int = 1, dtype: str = "float32",
                    optimizer: str = "sgd", mixed_precision: bool = False,
                    checkpointing: bool = False) -> TrainingMemory:
    """Parameters + gradients + optimizer state + saved activations + the largest transient of
    one training step at ``batch`` (the rules are in this module's docstring).

    >>> import cnngraph
    >>> m = training_memory(cnngraph.load("resnet50"), batch=32, optimizer="adam")  # doctest: +SKIP
    """
    _check_options(dtype, optimizer)
    batch = _check_batch(batch)
    with gc_paused():
        shapes = infer_shapes(graph, batch=batch)
        costs = count_costs(graph, shapes, dtype)
    act_dtype = HALF if mixed_precision else dtype
    params, trainable = costs.totals.params, costs.totals.trainable_params
    if mixed_precision:
        parameter_bytes = params * (dtypes.itemsize(MASTER) + dtypes.itemsize(HALF))
        gradient_bytes = trainable * dtypes.itemsize(HALF)
        state_size = dtypes.itemsize(MASTER)
    else:
        parameter_bytes = params * dtypes.itemsize(dtype)
        gradient_bytes = trainable * dtypes.itemsize(dtype)
        state_size = dtypes.itemsize(dtype)
    optimizer_bytes = OPTIMIZER_STATES[optimizer] * trainable * state_size

    order = [n for n in graph.order() if shapes.is_compute(n)]
    saved = _SavedTensors(graph, shapes, order, act_dtype)
    full = saved.bytes_of(saved.roots)
    transient_node, transient = saved.largest_transient()
    result = TrainingMemory(
        batch=shapes.batch, dtype=dtype, optimizer=optimizer,
        mixed_precision=bool(mixed_precision), checkpointing=bool(checkpointing),
        params=params, trainable_params=trainable, parameter_bytes=parameter_bytes,
        gradient_bytes=gradient_bytes, optimizer_bytes=optimizer_bytes, activation_bytes=full,
        transient_bytes=transient, transient_node=transient_node, full_activation_bytes=full)
    if checkpointing:
        segments, checkpoint, segment = saved.checkpointed()
        result.segments = segments
        result.checkpoint_bytes = checkpoint
        result.segment_bytes = segment
        result.activation_bytes = checkpoint + segment
    return result


class _SavedTensors:
    """The run-time tensors of one forward pass, each mapped to the storage holding its bytes:
    views and in-place outputs share their input's (cnngraph.passes.aliasing, training)."""

    def __init__(self, graph: Graph, shapes: Shapes, order: list[str], dtype: str):
        from .aliasing import alias

        self.graph, self.order = graph, order
        al = alias(graph, shapes, order, dtype, inplace=True, training=True)
        self.root: dict[str, str] = al.leaf  # tensor -> the storage its bytes are in
        self.size: dict[str, int] = {s: al.nbytes[s] for s in al.leaves}  # storage -> bytes
        self.roots = set(self.size)

    def bytes_of(self, roots) -> int:
        return sum(self.size[r] for r in roots)

    def largest_transient(self) -> tuple[str, int]:
        best_name, best = "", 0
        for name in self.order:
            node = self.graph.nodes[name]
            outs = sum(self.size.get(o, 0) for o in node.outputs if o and self.root.get(o) == o)
            # a view's output is its input's bytes: its gradient is still a tensor of that size
            outs += sum(self.size[self.root[o]] for o in node.outputs
                        if o and o in self.root and self.root[o] != o)
            ins = sum(self.size[self.root[t]] for t in dict.fromkeys(node.inputs)
                      if t and t in self.root)
            if outs + ins > best:
                best_name, best = name, outs + ins
        return best_name, best

    def checkpointed(self) -> tuple[int, int, int]:
        """(segments, checkpoint bytes, largest segment bytes)."""
        n = len(self.order)
        k = max(1, min(n, round(math.sqrt(n)))) if n else 1
        bounds = [round(i * n / k) for i in range(k + 1)]
        nodes = self.graph.nodes
        produced_in: dict[str, int] = {r: -1 for r in self.graph.input_names}
        segment_roots: list[list[str]] = []
        for s in range(k):
            own = []
            for name in self.order[bounds[s]:bounds[s + 1]]:
                for o in nodes[name].outputs:
                    if o and self.root.get(o) == o:
                        produced_in[o] = s
                        own.append(o)
            segment_roots.append(own)
        checkpoints = {r for r in self.graph.input_names if r in self.size}
        for s in range(k):
            for name in self.order[bounds[s]:bounds[s + 1]]:
                for t in nodes[name].inputs:
                    r = self.root.get(t) if t else None
                    if r is not None and produced_in.get(r, s) < s:
                        checkpoints.add(r)
        segment = max((self.bytes_of(r for r in own if r not in checkpoints)
                       for own in segment_roots), default=0)
        return k, self.bytes_of(checkpoints), segment


# -- budgets ------------------------------------------------------------------------------------
_UNITS = {
    "": 1, "b": 1,
    "kb": 10**3, "mb": 10**6, "gb": 10**9, "tb": 10**12,
    "kib": 2**10, "mib": 2**20, "gib": 2**30, "tib": 2**40,
}
_BUDGET = re.compile(r"^\s*(\d+(?:\.\d*)?|\.\d+)(?:[eE]([+-]?\d+))?\s*([A-Za-z]*)\s*$")


def parse_bytes(text: Union[str, int]) -> int:
    """A memory size: '8GiB' (2^30), '512MiB', '1.5GB' (decimal, 10^9), '4096' or '4096B'
    (bytes). Units are case-insensitive; fractions of a byte are dropped.

    >>> parse_bytes("8GiB"), parse_bytes("1.5GB"), parse_bytes("512 MiB")
    (8589934592, 1500000000, 536870912)
    """
    if isinstance(text, bool):
        raise CnnGraphError(f"memory size must be a number of bytes or a string, not {text!r}")
    if isinstance(text, int):
        value = text
    else:
        m = _BUDGET.match(str(text))
        unit = m.group(3).lower() if m else None
        if m is None or unit not in _UNITS:
            raise CnnGraphError(
                f"cannot read memory size '{text}': expected a number with an optional unit "
                f"B, KB, MB, GB, TB (powers of 1000) or KiB, MiB, GiB, TiB (powers of 1024), "
                f"e.g. '8GiB' or '1.5GB'")
        number = Fraction(m.group(1)) * Fraction(10) ** int(m.group(2) or 0)
        value = int(number * _UNITS[unit])
    if value <= 0:
        raise CnnGraphError(f"memory size '{text}' must be more than 0 bytes")
    return value


# -- the largest batch --------------------------------------------------------------------------
@dataclass
class BatchFit:
    """The answer of max_batch_size. ``batch`` is None when even batch 1 does not fit; then
    ``over_bytes`` says by how much."""

    mode: str
    budget_bytes: int
    batch: Optional[int]  # the largest batch that fits, or None
    total_bytes: int  # the total at ``batch`` (at batch 1 when nothing fits)
    batch1_bytes: int  # the total at batch 1
    capped: bool = False  # the search stopped at MAX_BATCH with room to spare
    arena_bytes: Optional[int] = None  # inference: the arena at ``batch`` (total - parameters)

    @property
    def fits(self) -> bool:
        return self.batch is not None

    @property
    def over_bytes(self) -> int:
        """How much batch 1 is over the budget (0 when something fits)."""
        return max(0, self.batch1_bytes - self.budget_bytes)

    @property
    def headroom_bytes(self) -> int:
        return max(0, self.budget_bytes - self.total_bytes) if self.fits else 0


def max_batch_size(graph: Graph, budget_bytes: Union[int, str], mode: str = "training",
                   dtype: str = "float32", optimizer: str = "sgd",
                   mixed_precision: bool = False, checkpointing: bool = False,
                   inplace: bool = True) -> BatchFit:
    """The largest batch whose total memory fits ``budget_bytes`` (an int or '8GiB').

    training: ``training_memory(...).total_bytes``; inference: parameters + the arena of
    ``plan_memory(graph, batch=b, dtype=dtype, inplace=inplace)`` (what an engine running
    the plan allocates). Both grow with the batch; the answer is exact: total(batch) <=
    budget < total(batch + 1).
    """
    budget = parse_bytes(budget_bytes)
    if mode == "training":
        _check_options(dtype, optimizer)

        def total(b: int) -> int:
            return training_memory(graph, b, dtype, optimizer, mixed_precision,
                                   checkpointing).total_bytes
    elif mode == "inference":
        from .plan import plan_memory
        dtypes.check_counting_dtype(dtype)

        params: list = []

        def total(b: int) -> int:
            p = plan_memory(graph, batch=b, dtype=dtype, inplace=inplace)
            params[:] = [p.param_bytes]
            return p.param_bytes + p.arena_bytes
    else:
        raise CnnGraphError(f"mode '{mode}' is not one of training, inference")
    batch, at, batch1, capped = _largest_fitting(total, budget)
    at = at if batch else batch1
    arena = at - params[0] if mode == "inference" else None
    return BatchFit(mode, budget, batch, at, batch1, capped, arena)


def _largest_fitting(total: Callable[[int], int], budget: int):
    """(largest b with total(b) <= budget or None, total there, total(1), capped), for a total
    that does not decrease with b. A linear guess from b = 1, 2 is checked exactly; a binary
    search covers totals that are not quite linear."""
    cache: dict[int, int] = {}

    def f(b: int) -> int:
        if b not in cache:
            cache[b] = total(b)
        return cache[b]

    t1 = f(1)
    if t1 > budget:
        return None, t1, t1, False
    slope = f(2) - t1
    lo, hi = 1, None  # f(lo) fits; f(hi) does not
    if f(2) <= budget:
        lo = 2
    else:
        hi = 2
    if hi is None and slope > 0:
        guess = min(MAX_BATCH, 1 + (budget - t1) // slope)
        if guess > lo:
            if f(guess) <= budget:
                lo = guess
            else:
                hi = guess
        if hi is None and lo < MAX_BATCH:
            if f(lo + 1) <= budget:
                lo = lo + 1
            else:
                hi = lo + 1
    while hi is None:  # grow until something does not fit
        if lo >= MAX_BATCH:
            return MAX_BATCH, f(MAX_BATCH), t1, True
        nxt = min(MAX_BATCH, lo * 2)
        if f(nxt) <= budget:
            lo = nxt
        else:
            hi = nxt
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if f(mid) <= budget:
            lo = mid
        else:
            hi = mid
    return lo, f(lo), t1, False
