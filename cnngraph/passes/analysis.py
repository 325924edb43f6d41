"""The analysis pipeline: shapes -> costs -> inference memory, as one result object."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping, Optional

from .. import dtypes
from ..ir import Graph, gc_paused
from ..ops import TensorType
from .cost import Costs, count_costs, tensor_bytes
from .liveness import Liveness, order_liveness
from .shapes import Shapes, infer_shapes


@dataclass
class Memory:
    """Inference memory for one execution order. Bytes are ints."""

    param_bytes: int
    peak_activation_bytes: int
    schedule: str  # which order the peak is for
    liveness: Liveness

    @property
    def peak_bytes(self) -> int:
        """Parameters are resident for the whole run; activations peak at one step."""
        return self.param_bytes + self.peak_activation_bytes


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
            allow_unknown: bool = False) -> Analysis:
    """Shapes, parameters, MACs, FLOPs and inference memory of a graph.

    ``batch`` sets the leading dim of the inputs (default: the model's, or 1 where symbolic);
    ``dtype`` is what float tensors are counted in; ``allow_unknown`` lists nodes of unknown
    ops as uncounted instead of failing.

    >>> import cnngraph
    >>> a = cnngraph.analyze(cnngraph.load("lenet5-onnx"))  # doctest: +SKIP
    """
    dtypes.check_counting_dtype(dtype)
    with gc_paused():
        shapes = infer_shapes(graph, batch=batch, input_shapes=input_shapes,
                              allow_unknown=allow_unknown)
        costs = count_costs(graph, shapes, dtype)
        memory = inference_memory(graph, shapes, costs, dtype)
    return Analysis(graph, shapes, costs, memory, dtype, shapes.batch)


def inference_memory(graph: Graph, shapes: Shapes, costs: Costs, dtype: str,
                     order: Optional[list[str]] = None, schedule: str = "own") -> Memory:
    """Peak live activation bytes for an execution order (default: the model's own).

    The tensors that exist at run time are the graph inputs and the outputs of running
    nodes; weights and folded constants belong to parameter memory.
    """
    if order is None:
        order = [n for n in graph.order() if shapes.is_compute(n)]
    sizes = {t: tensor_bytes(shapes, t, dtype) for t in graph.input_names}
    sizes.update(costs.output_bytes)
    nodes = graph.nodes
    live = order_liveness(
        order,
        {n: nodes[n].inputs for n in order},  # constants among them are not in sizes
        {n: nodes[n].outputs for n in order},
        sizes,
        graph.input_names,
        [t for t in graph.outputs if t in sizes],
    )
    param_bytes = costs.totals.params * dtypes.itemsize(dtype)
    return Memory(param_bytes, int(live.peak_bytes), schedule, live)
