"""Cost analysis: parameters, MACs, FLOPs and activation bytes per layer and per block.

Parameters are float constants a running node reads, directly or through folded view ops
(Reshape, Transpose, Cast... of a weight): at a weight input (Conv's W and B, Gemm's B and C...)
whatever their size, elsewhere when they hold more than one element. Each is counted once, at the
first node that reads it, however many nodes share it. Integer tensors (shapes, indices) and
operator settings (Resize scales, Clip bounds) are never parameters.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import NamedTuple, Optional

from .. import dtypes
from ..ir import Graph
from ..ops import lookup
from .shapes import Shapes


class LayerCost(NamedTuple):
    """One running node. MACs are multiply-accumulates; flops = 2*macs + other_flops.
    (A NamedTuple: immutable, and cheap to make a hundred thousand of.)"""

    name: str
    op: str
    block: str
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    output_shapes: tuple[tuple[int, ...], ...]
    params: int
    trainable_params: int
    macs: int
    other_flops: int
    activation_bytes: int

    @property
    def non_trainable_params(self) -> int:
        return self.params - self.trainable_params

    @property
    def flops(self) -> int:
        return 2 * self.macs + self.other_flops


@dataclass
class Totals:
    params: int = 0
    trainable_params: int = 0
    macs: int = 0
    other_flops: int = 0
    activation_bytes: int = 0

    @property
    def non_trainable_params(self) -> int:
        return self.params - self.trainable_params

    @property
    def flops(self) -> int:
        return 2 * self.macs + self.other_flops

    def add(self, layer: LayerCost) -> None:
        self.params += layer.params
        self.trainable_params += layer.trainable_params
        self.macs += layer.macs
        self.other_flops += layer.other_flops
        self.activation_bytes += layer.activation_bytes


@dataclass
class BlockCost(Totals):
    name: str = ""
    layers: int = 0


@dataclass
class Costs:
    layers: list[LayerCost] = field(default_factory=list)
    blocks: list[BlockCost] = field(default_factory=list)
    totals: Totals = field(default_factory=Totals)
    shared_params: dict[str, list[str]] = field(default_factory=dict)  # tensor -> readers
    output_bytes: dict[str, int] = field(default_factory=dict)  # running nodes' outputs


def tensor_bytes(shapes: Shapes, name: str, dtype: str) -> int:
    """Bytes of a tensor when float tensors are counted in ``dtype``."""
    t = shapes.types[name]
    return t.size * dtypes.ITEMSIZE[dtype if t.dtype in dtypes.FLOAT_TYPES else t.dtype]


def count_costs(graph: Graph, shapes: Shapes, dtype: str = "float32") -> Costs:
    costs = Costs()
    owner: dict[str, str] = {}  # parameter source -> the layer it is counted at
    for name in graph.order():
        if not shapes.is_compute(name):
            continue
        node = graph.nodes[name]
        call = shapes.calls[name]
        op = call.op
        outs = [shapes.types[o] for o in node.outputs if o]
        params, trainable = _new_params(graph, shapes, node, op, owner, costs.shared_params)
        out_bytes = 0
        for o in node.outputs:
            if o:
                out_bytes += costs.output_bytes.setdefault(o, tensor_bytes(shapes, o, dtype))
        layer = LayerCost(  # positional: this runs once per node of graphs of 100k nodes
            name, node.op_type, node.block, node.inputs, node.outputs,
            tuple([t.shape for t in outs]), params, trainable,
            int(op.macs(call, outs)), int(op.other_flops(call, outs)), out_bytes)
        costs.layers.append(layer)
        costs.totals.add(layer)
    costs.blocks = block_totals(costs.layers)
    return costs


def count_params(graph: Graph, shapes: Shapes) -> tuple[int, int]:
    """(parameters, trainable parameters): count_costs' totals without the rest of the costs."""
    owner: dict[str, str] = {}
    params = trainable = 0
    for name in graph.order():
        if shapes.is_compute(name):
            p, t = _new_params(graph, shapes, graph.nodes[name], shapes.calls[name].op, owner,
                               {})
            params += p
            trainable += t
    return params, trainable


def _new_params(graph, shapes, node, op, owner: dict, shared: dict) -> tuple[int, int]:
    """(params, trainable) a layer reads that no earlier layer counted; ``owner`` maps each
    parameter source to the layer it is counted at, ``shared`` the sources read again."""
    params = trainable = 0
    for i, t in enumerate(node.inputs):
        if t not in shapes.constant or i in op.attribute_inputs or \
                not _is_param(shapes, t, i in op.weight_inputs):
            continue
        source = param_source(graph, shapes, t)
        if source in owner:
            shared.setdefault(source, [owner[source]]).append(node.name)
            continue
        owner[source] = node.name
        params += shapes.types[t].size
        if i not in op.non_trainable_inputs:
            trainable += shapes.types[t].size
    return params, trainable


def block_totals(layers: list[LayerCost]) -> list[BlockCost]:
    """Subtotals for every block path and each of its ancestors, in order of appearance."""
    blocks: dict[str, BlockCost] = {}
    for layer in layers:
        parts = layer.block.split("/") if layer.block else []
        for depth in range(1, len(parts) + 1):
            path = "/".join(parts[:depth])
            block = blocks.setdefault(path, BlockCost(name=path))
            block.add(layer)
            block.layers += 1
    return list(blocks.values())


def _is_param(shapes: Shapes, tensor: str, weight_input: bool) -> bool:
    """A float constant that holds weights: any size at a weight input, else more than one
    element (a single number elsewhere is an operator constant such as x / 255)."""
    t = shapes.types[tensor]
    return t.dtype in dtypes.FLOAT_TYPES and (t.size > 1 or (weight_input and t.rank > 0))


def param_source(graph: Graph, shapes: Shapes, tensor: str) -> str:
    """Follow a folded weight back through view-like ops to the tensor it was made from."""
    seen: Optional[str] = None
    while tensor != seen:
        seen = tensor
        producer = graph.producer.get(tensor)
        if producer is not None:
            node = graph.nodes[producer]
            op = lookup(node)
            if (op.is_view or op.reorders_only) and node.inputs[0] in shapes.constant:
                tensor = node.inputs[0]
    return tensor
