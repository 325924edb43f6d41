"""The intermediate representation: nodes and tensors on a networkx DAG.

Nodes are plain data; what an op *does* lives in the op classes (cnngraph.ops). Argument order
and repeated inputs (``Add(x, x)``) come from ``Node.inputs``, never from networkx edges, which
hold neither order nor multiplicity. The DAG's edges only say "this node reads something that
node wrote", which is what scheduling and cycle checks need.

>>> g = Graph("tiny")
>>> g.add_input(TensorInfo("x", "float32", (1, 3, 8, 8)))
>>> _ = g.add_node(Node("r", "Relu", ("x",), ("y",)))
>>> g.outputs.append("y")
>>> g.freeze().order()
['r']
"""

from __future__ import annotations

import contextlib
import gc
import math
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Callable, Mapping, NamedTuple, Optional, Sequence

import numpy as np

from .errors import GraphError

if TYPE_CHECKING:
    import networkx as nx


def _nx():
    """networkx, imported on first use: it takes a third of a second to import, and a model
    whose nodes are already in a valid order never needs it."""
    import networkx

    return networkx

# The key of the ONNX node metadata in which cnngraph's export keeps a block path its node
# names do not carry (flat names from torch's dynamo exporter), so an import gets it back.
BLOCK_KEY = "cnngraph.block"

@contextlib.contextmanager
def gc_paused():
    """Building or walking a large graph allocates millions of small objects and no cycles;
    with the cyclic collector paused, time stays linear in the graph's size instead of
    rescanning the growing heap again and again."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


@dataclass(frozen=True)
class Node:
    """One op application. ``inputs`` may hold '' for an omitted optional input."""

    name: str
    op_type: str
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    attrs: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))
    block: str = ""
    domain: str = ""

    def __post_init__(self):
        # Frontends pass tuples and read-only mappings already; convert anything else.
        if type(self.inputs) is not tuple:
            object.__setattr__(self, "inputs", tuple(self.inputs))
        if type(self.outputs) is not tuple:
            object.__setattr__(self, "outputs", tuple(self.outputs))
        if type(self.attrs) is not MappingProxyType:
            object.__setattr__(self, "attrs", MappingProxyType(dict(self.attrs)))


@dataclass(frozen=True)
class TensorInfo:
    """A declared tensor type; dims may be symbolic (str) or unknown (None)."""

    name: str
    dtype: str
    shape: Optional[tuple] = None


class Constant(NamedTuple):
    """A tensor known before the run (an initializer). Its bytes are read only on demand, so a
    multi-GB model is analysed without touching its weights. (A NamedTuple: a model may hold a
    hundred thousand of them.)"""

    name: str
    dtype: str
    shape: tuple[int, ...]
    loader: Optional[Callable[[], np.ndarray]] = None  # None: no bytes (structure only)

    @property
    def size(self) -> int:
        return math.prod(self.shape)

    def value(self) -> Optional[np.ndarray]:
        return None if self.loader is None else self.loader()


def block_paths(names: Sequence[str]) -> list[str]:
    """The block path of each node from the name scopes of all the graph's node names.

    Scoped names ('inception_3a/1x1') sit in their scope. Exporters that start names with
    '/' (torch) end them with 'module/OpType'; the module is a block only if some other node
    lies deeper inside it, so a leaf layer ('conv1') is not its own block while a residual
    unit that runs its own Add is.

    >>> block_paths(["inception_3a/1x1", "conv1"])
    ['inception_3a', '']
    >>> block_paths(["/layer1/layer1.0/conv1/Conv", "/layer1/layer1.0/Add", "/fc/Gemm"])
    ['layer1/layer1.0', 'layer1/layer1.0', '']
    """
    torch_scopes = {name.rpartition("/")[0] for name in names if name.startswith("/")}
    containers = set()  # torch scopes that have a scope below them
    for scope in torch_scopes:
        parent = scope.rpartition("/")[0]
        while parent and parent not in containers:
            containers.add(parent)
            parent = parent.rpartition("/")[0]
    block_of: dict[str, str] = {}  # scope -> block; many nodes share one scope
    blocks = []
    for name in names:
        scope = name.rpartition("/")[0]
        block = block_of.get(scope)
        if block is None:
            path = scope
            if scope.startswith("/") and scope not in containers:
                path = scope.rpartition("/")[0]  # a leaf module: the layer itself, not a block
            block = block_of[scope] = "/".join(p for p in path.split("/") if p)
        blocks.append(block)
    return blocks


class Graph:
    """A network: nodes in the model's own order, graph inputs and outputs, constants.

    Build it with add_input / add_constant / add_node, then ``freeze()`` to check it and
    build the DAG. A frozen graph is what passes take.
    """

    def __init__(self, name: str, source: str = "", opset: int = 18):
        self.name = name
        self.source = source
        self.opset = opset
        self.nodes: dict[str, Node] = {}
        self.inputs: list[TensorInfo] = []
        self.outputs: list[str] = []
        self.constants: dict[str, Constant] = {}
        self.value_info: dict[str, TensorInfo] = {}  # shapes a producer declared, if any
        self.origins: dict[str, tuple] = {}  # node -> (file, line, column) where it was declared
        self._dag: Optional["nx.DiGraph"] = None
        self.producer: dict[str, str] = {}
        self.consumers: dict[str, list[str]] = {}
        self._order: Optional[list[str]] = None

    # -- building ---------------------------------------------------------------------------
    def add_input(self, info: TensorInfo) -> None:
        self.inputs.append(info)

    def add_constant(self, const: Constant) -> None:
        self.constants[const.name] = const

    def add_node(self, node: Node) -> Node:
        if node.name in self.nodes:
            raise GraphError(f"two nodes are named '{node.name}'")
        self.nodes[node.name] = node
        self._order = None
        return node

    def freeze(self) -> "Graph":
        """Index producers and consumers, build the DAG, reject undefined tensors and cycles."""
        defined = {t.name for t in self.inputs} | set(self.constants)
        producer: dict[str, str] = {}
        for node in self.nodes.values():
            for out in node.outputs:
                if not out:
                    continue
                if out in producer or out in defined:
                    raise GraphError(
                        f"node '{node.name}' ({node.op_type}) writes tensor '{out}', "
                        f"which is already defined")
                producer[out] = node.name
        consumers: dict[str, list[str]] = {}
        for node in self.nodes.values():
            for inp in node.inputs:
                if not inp:
                    continue
                if inp not in producer and inp not in defined:
                    raise GraphError(
                        f"node '{node.name}' ({node.op_type}) reads tensor '{inp}', "
                        f"which no node, input or initializer defines")
                consumers.setdefault(inp, []).append(node.name)
        for out in self.outputs:
            if out not in producer and out not in defined:
                raise GraphError(f"graph output '{out}' is never defined")
        self.producer, self.consumers, self._dag = producer, consumers, None
        # ONNX lists nodes in a valid order, so this O(n) check is the common case; then every
        # edge points forward and there is no cycle to look for.
        self._order = list(self.nodes) if self._in_model_order() else None
        if self._order is None and not _nx().is_directed_acyclic_graph(self.dag):
            cycle = _nx().find_cycle(self.dag)
            path = " -> ".join(f"'{a}'" for a, _ in cycle) + f" -> '{cycle[0][0]}'"
            raise GraphError(f"the graph has a cycle: {path}")
        return self

    @property
    def dag(self) -> "nx.DiGraph":
        """Node -> node edges, one per producer/consumer pair (built on first use: a report
        of a model in valid order never needs it)."""
        if self._dag is None:
            dag = _nx().DiGraph()
            dag.add_nodes_from(self.nodes)
            dag.add_edges_from((self.producer[t], reader) for t, readers in
                               self.consumers.items() if t in self.producer for reader in readers)
            self._dag = dag
        return self._dag

    # -- reading ----------------------------------------------------------------------------
    def order(self) -> list[str]:
        """A topological order that keeps the model's own order wherever it is already valid.

        Deterministic: ties are broken by position in the model, so the same file always
        gives the same order.
        """
        if self._order is None:
            position = {name: i for i, name in enumerate(self.nodes)}
            self._order = list(_nx().lexicographical_topological_sort(self.dag,
                                                                      key=position.get))
        return self._order

    def _in_model_order(self) -> bool:
        """Whether every node comes after the producers of its inputs (ONNX requires it, so
        this is the common case, and an O(n) check beats a sort)."""
        done: set[str] = set()
        for name, node in self.nodes.items():
            for t in node.inputs:
                p = self.producer.get(t)
                if p is not None and p not in done:
                    return False
            done.add(name)
        return True

    @property
    def input_names(self) -> list[str]:
        return [t.name for t in self.inputs]

    def node_list(self) -> list[Node]:
        return [self.nodes[n] for n in self.order()]

    def __len__(self) -> int:
        return len(self.nodes)

    def __repr__(self) -> str:
        return f"Graph({self.name!r}, {len(self.nodes)} nodes, {len(self.constants)} constants)"
