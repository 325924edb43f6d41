"""The analysis pipeline: shapes -> costs -> inference memory, as one result object."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping, Optional

from .. import dtypes
from ..ir import Graph, gc_paused
from ..ops import TensorType
from .cost import Costs, count_costs
from .shapes import Shapes, infer_shapes


@dataclass
class Memory:
    """Inference memory for the chosen execution order. Bytes are ints."""

    param_bytes: int
    peak_activation_bytes: int
    schedule: str  # how the order was chosen: optimal, heuristic (list), own...
    proven_optimal: bool
    inplace: bool  # in-place reuse and Concat elimination on
    order: tuple  # running node names
    live_bytes: tuple  # per step of the order

    @property
    def peak_bytes(self) -> int:
        """Parameters are resident for the whole run; activations peak at one step."""
        return self.param_bytes + self.peak_activation_bytes

    @property
    def peak_node(self) -> Optional[str]:
        if not self.live_bytes:
            return None
        return self.order[max(range(len(self.live_bytes)), key=self.live_bytes.__getitem__)]


@dataclass
class Analysis:
    """Everything cnngraph knows about one graph at one batch size and dtype."""

    graph: Graph
    shapes: Shapes
    costs: Costs
    memory: Memory
    dtype: str
    batch: int

    @property
    def layers(self):
        return self.costs.layers

    @property
    def blocks(self):
        return self.costs.blocks

    @property
    def totals(self):
        return self.costs.totals

    @property
    def uncounted(self) -> list[str]:
        """Nodes of unknown ops (and what depends on them), with --allow-unknown."""
        return self.shapes.unknown

    def layer(self, name: str):
        """The cost row of one running node, by name."""
        for layer in self.costs.layers:
            if layer.name == name:
                return layer
        raise KeyError(f"no running layer named '{name}'")

    def block(self, name: str):
        """The subtotal of one block path ('inception_3a', 'layer1/layer1.0')."""
        for block in self.costs.blocks:
            if block.name == name:
                return block
        raise KeyError(f"no block named '{name}'")

    def io(self, names) -> list[tuple[str, Optional[TensorType]]]:
        return [(n, self.shapes.types.get(n)) for n in names]


def analyze(graph: Graph, batch: Optional[int] = None, dtype: str = "float32",
            input_shapes: Optional[Mapping[str, tuple]] = None,
            allow_unknown: bool = False, schedule: str = "optimal",
            inplace: bool = True) -> Analysis:
    """Shapes, parameters, MACs, FLOPs and inference memory of a graph.

    ``batch`` sets the leading dim of the inputs (default: the model's, or 1 where symbolic);
    ``dtype`` is what float tensors are counted in; ``allow_unknown`` lists nodes of unknown
    ops as uncounted instead of failing; ``schedule`` and ``inplace`` choose the execution
    order and the storage sharing the memory peak is for (cnngraph.passes.schedule).

    >>> import cnngraph
    >>> a = cnngraph.analyze(cnngraph.load("lenet5-onnx"))  # doctest: +SKIP
    """
    dtypes.check_counting_dtype(dtype)
    with gc_paused():
        shapes = infer_shapes(graph, batch=batch, input_shapes=input_shapes,
                              allow_unknown=allow_unknown)
        costs = count_costs(graph, shapes, dtype)
        memory = inference_memory(graph, shapes, costs, dtype, schedule, inplace)
    return Analysis(graph, shapes, costs, memory, dtype, shapes.batch)


# Above this many running nodes the report's order is the best heuristic one, not the
# proven optimum: the exact search is for `cnngraph plan`, the report stays fast.
OPTIMAL_LIMIT = 5_000


def inference_memory(graph: Graph, shapes: Shapes, costs: Costs, dtype: str,
                     schedule: str = "optimal", inplace: bool = True) -> Memory:
    """Peak live activation bytes for the ``schedule`` order of the running nodes.

    The tensors that exist at run time are the graph inputs and the outputs of running
    nodes, sharing storage as cnngraph.passes.aliasing says; weights and folded constants
    belong to parameter memory.
    """
    from .schedule import memory_problem
    from .schedule import schedule as choose

    problem = memory_problem(graph, shapes, dtype, inplace=inplace)
    if schedule == "optimal" and problem.n > OPTIMAL_LIMIT:
        schedule = "heuristic"
    s = choose(problem, schedule)
    kind = f"{s.kind} ({s.chosen})" if s.kind == "heuristic" else s.kind
    param_bytes = costs.totals.params * dtypes.itemsize(dtype)
    return Memory(param_bytes, int(s.peak_bytes), kind, s.proven_optimal, inplace, s.names,
                  s.live_bytes)
