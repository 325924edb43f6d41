"""Tensor liveness over an execution order: bytes live at each step, and their peak.

A tensor is live from the step that produces it (step 0 for a graph input) to the last
step that reads it (graph outputs are read by the last step). The bytes live at a step
are the running node's inputs and outputs plus everything computed earlier that a later
step still needs; their maximum over the order is the peak activation memory.

`liveness` runs the compiled core (csrc/liveness.pyx); `liveness_py` is its plain-Python
twin and test oracle; `order_liveness` builds the arrays from a node order.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Hashable, Mapping, Sequence

import numpy as np

from .._native import native

__all__ = ["Liveness", "liveness", "liveness_py", "order_liveness"]


def _check(sizes, producer_step, consumer_ptr, consumer_step, num_steps) -> None:
    """The native wrapper's value checks, with the same messages."""
    T = len(sizes)
    if num_steps < 0:
        raise ValueError(f"num_steps must be >= 0, got {num_steps}")
    if len(producer_step) != T:
        raise ValueError(
            f"producer_step has length {len(producer_step)}, expected {T} (one per tensor)")
    if len(consumer_ptr) != T + 1:
        raise ValueError(
            f"consumer_ptr has length {len(consumer_ptr)}, expected {T + 1} (tensors + 1)")
    if consumer_ptr[0] != 0 or consumer_ptr[T] != len(consumer_step):
        raise ValueError(
            f"consumer_ptr must run from 0 to len(consumer_step)={len(consumer_step)}, "
            f"got {consumer_ptr[0]}..{consumer_ptr[T]}")
    for t in range(T):
        if consumer_ptr[t + 1] < consumer_ptr[t]:
            raise ValueError(f"consumer_ptr decreases at tensor {t}: "
                             f"{consumer_ptr[t]} then {consumer_ptr[t + 1]}")
    for t in range(T):
        p = producer_step[t]
        if sizes[t] < 0:
            raise ValueError(f"tensor {t}: size {sizes[t]} bytes is negative")
        if p < -1 or p >= num_steps:
            raise ValueError(f"tensor {t}: producer step {p} is outside [-1, {num_steps})")
        for s in consumer_step[consumer_ptr[t]:consumer_ptr[t + 1]]:
            if s < 0 or s >= num_steps:
                raise ValueError(f"tensor {t}: consumer step {s} is outside [0, {num_steps})")
            if s < max(p, 0):
                raise ValueError(f"tensor {t}: read at step {s}, before it is produced at step {p}")


def liveness_py(sizes, producer_step, consumer_ptr, consumer_step, num_steps):
    """Pure-Python twin of `liveness`: the same result by the definition, in O(T * steps).

    >>> live, peak, step = liveness_py([4, 8], [-1, 0], [0, 1, 2], [0, 1], 2)
    >>> live.tolist(), peak, step
    ([12, 8], 12, 0)
    """
    sizes, producer_step, consumer_ptr, consumer_step = (
        [int(v) for v in a] for a in (sizes, producer_step, consumer_ptr, consumer_step))
    _check(sizes, producer_step, consumer_ptr, consumer_step, num_steps)
    live = [0] * num_steps
    for t, size in enumerate(sizes):
        first = max(producer_step[t], 0)
        last = max([first, *consumer_step[consumer_ptr[t]:consumer_ptr[t + 1]]])
        for s in range(first, min(last, num_steps - 1) + 1):  # nothing is live with 0 steps
            live[s] += size
    peak = max(live, default=0)
    return np.array(live, dtype=np.int64), peak, (live.index(peak) if live else -1)


def _native():
    return native("liveness")


def liveness(sizes, producer_step, consumer_ptr, consumer_step, num_steps):
    """Bytes live at each step, with the peak and the first step reaching it (native).

    Arguments as in `cnngraph._native.liveness.liveness` (any int sequences; they are
    converted to int64). Returns ``(live, peak_bytes, peak_step)``, ``live`` an int64
    array of length num_steps; num_steps == 0 gives peak_step -1.

    A 3-node chain x -> A -> a -> B -> b -> C -> c (sizes x=100, a=200, b=50, c=300),
    c a graph output: step 0 holds x+a, step 1 a+b, step 2 b+c.

    >>> live, peak, step = liveness([100, 200, 50, 300], [-1, 0, 1, 2],
    ...                             [0, 1, 2, 3, 4], [0, 1, 2, 2], 3)
    >>> live.tolist(), peak, step
    ([300, 250, 350], 350, 2)
    """
    arrays = [np.ascontiguousarray(a, dtype=np.int64)
              for a in (sizes, producer_step, consumer_ptr, consumer_step)]
    live = np.empty(max(num_steps, 0), dtype=np.int64)  # a bad num_steps: the core says why
    peak, peak_step = _native().liveness(*arrays, num_steps, live)
    return live, peak, peak_step


@dataclass(frozen=True)
class Liveness:
    """Live bytes per step of an execution order (graph inputs and activations only)."""

    order: tuple
    live_bytes: tuple  # ints, one per step of `order`
    peak_bytes: int
    peak_step: int  # first step reaching peak_bytes; -1 for an empty order


def order_liveness(
    order: Sequence[Hashable],
    node_inputs: Mapping[Hashable, Sequence[str]],
    node_outputs: Mapping[Hashable, Sequence[str]],
    tensor_bytes: Mapping[str, int],
    graph_inputs: Sequence[str],
    graph_outputs: Sequence[str],
) -> Liveness:
    """Liveness of running the nodes in `order`; only tensors in `tensor_bytes` count.

    Leave weights and constants out of `tensor_bytes`: they are held for the whole run and
    belong to parameter memory. Graph outputs stay live to the last step. A counted tensor
    that is read (or is a graph output) but neither a graph input nor produced by a node in
    `order` is a ValueError, as is one produced twice.

    A chain x -> A -> a -> B -> b -> C -> c: the peak is the largest pair of consecutive
    activations (b + c = 350 bytes at step 2), never their total.

    >>> lv = order_liveness(["A", "B", "C"],
    ...                     {"A": ["x"], "B": ["a"], "C": ["b"]},
    ...                     {"A": ["a"], "B": ["b"], "C": ["c"]},
    ...                     {"x": 100, "a": 200, "b": 50, "c": 300}, ["x"], ["c"])
    >>> lv.live_bytes, lv.peak_bytes, lv.peak_step
    ((300, 250, 350), 350, 2)
    """
    order = tuple(order)
    producer: dict[str, int] = {}  # insertion order = tensor index: deterministic
    for name in graph_inputs:
        if name in tensor_bytes:
            producer[name] = -1
    for step, node in enumerate(order):
        for name in node_outputs[node]:
            if name not in tensor_bytes:
                continue
            if name in producer:
                prev = producer[name]
                was = "a graph input" if prev < 0 else f"produced by node {order[prev]!r}"
                raise ValueError(f"tensor {name!r} is produced by node {node!r} but is "
                                 f"already {was}")
            producer[name] = step
    reads: dict[str, list[int]] = {name: [] for name in producer}
    last = len(order) - 1
    node_reads = [(step, name, f"read by node {node!r}")
                  for step, node in enumerate(order) for name in node_inputs[node]]
    pins = [(last, name, "a graph output") for name in graph_outputs]
    for step, name, who in node_reads + pins:
        if name not in tensor_bytes:
            continue
        if name not in reads:
            raise ValueError(f"tensor {name!r} ({who}) is neither a graph input nor "
                             f"produced by any node in the order")
        reads[name].append(step)
    if last < 0:  # empty order: nothing runs, nothing is live
        return Liveness(order, (), 0, -1)
    names = list(producer)
    ptr = np.cumsum([0] + [len(reads[n]) for n in names])
    live, peak, peak_step = liveness(
        [tensor_bytes[n] for n in names], [producer[n] for n in names], ptr,
        [s for n in names for s in reads[n]], len(order))
    return Liveness(order, tuple(int(v) for v in live), int(peak), int(peak_step))
