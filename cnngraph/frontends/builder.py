"""The Python builder API: write a network layer by layer, get a ``cnngraph.ir.Graph``.

Functional style: ``Network.input`` declares an input, every layer call adds its node(s) and
returns a ``Tensor`` handle (a name and a static shape, known at once), so branches and merges
are ordinary variables. ``net.output(y)`` marks outputs; ``net.build()`` gives a frozen Graph.

>>> import cnngraph
>>> net = Network("tiny")
>>> x = net.input("x", ("N", 3, 32, 32))
>>> y = net.conv(x, 16, 3, padding="same", activation="relu", name="conv1")
>>> y
Tensor('conv1_relu', (1, 16, 32, 32))
>>> net.output(net.dense(net.global_avg_pool(y), 10, name="fc"))
>>> cnngraph.analyze(net.build()).totals.params  # 16*27 + 16  +  16*10 + 10
618

What the builder emits
    Only standard ONNX ops with opset 18 semantics (Conv, Gemm, BatchNormalization, MaxPool,
    Clip for ReLU6, Gather for connection tables...), so shape propagation, cost analysis and
    an ONNX exporter need nothing special. Weights are graph Constants with ``loader=None``
    (structure only: shape and dtype, no bytes), named after their node: 'conv1/W', 'conv1/B',
    'bn1/scale', 'bn1/B', 'bn1/mean', 'bn1/var'. Small settings (Gather indices, Reshape
    shapes, Clip bounds, the Dropout ratio) are Constants that carry their values.

Names and blocks
    Every layer has a name: the one given (``name="conv1"``, without '/'), or a readable unique
    one ('conv_3', 'relu_4'). ``with net.block("inception_3a"):`` scopes the names inside
    ('inception_3a/1x1'); blocks nest, paths join with '/'. A node's block path is exactly what
    ``cnngraph.ir.block_paths`` gives for its name, so the report shows the same blocks whether
    the model came from ONNX or from here. Using a name twice is an error.

    A layer's main node carries the layer's name; nodes that serve it are named after it:
    'fc_flatten' before a dense layer, 'conv1_relu' for a fused activation, 'scale_reshape'
    before a channel-wise multiply. Layers made of several ops of equal standing (subsample,
    separable_conv, sparse_conv) are blocks named after the layer ('c3/conv_0', 'c3/concat'),
    so the report subtotals them. Every node's output tensor has the node's name.

Padding
    'valid' (none), 'same' (out = ceil(in / stride), the odd pixel at the end), an int (every
    side), a tuple of one int per spatial axis (both sides), or ONNX's begins-then-ends tuple
    (top, left, bottom, right). 'same' becomes explicit pads where they do not depend on the
    input size (stride 1), auto_pad=SAME_UPPER otherwise.

Errors and limits
    A bad layer raises ``BuildError`` (a bad argument, a used name, the ``max_nodes`` limit) or
    the op's own ``ShapeError``; the message is one line naming the layer or its node, and the
    exception carries ``.layer`` (the layer's full name) and ``.origin`` (what ``net.at`` set,
    e.g. a DSL's (file, line, column)). A layer that fails, or a block whose body raises,
    leaves the network as it was. ``net.origins[node_name]`` keeps the origin of every node
    added under ``net.at(origin)``.

Reusable blocks
    Module-level functions that take the network first and use only the public API, as a
    user's own block would: ``inception``, ``residual_basic``, ``residual_bottleneck``,
    ``se_block``, ``depthwise_separable``, ``inverted_residual``, ``dense_block``,
    ``transition``, ``fire``. ``LAYERS`` and ``BLOCKS`` list the vocabulary for a DSL.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Callable, Iterator, Mapping, Optional, Sequence, Union

import numpy as np

from .. import dtypes
from ..errors import CnnGraphError
from ..ir import Constant, Graph, Node, TensorInfo
from ..ops import Call, TensorType, lookup
from ..ops.base import check_opset

OPSET = 18  # every node the builder emits has this opset's semantics
MAX_NODES = 1_000_000
# Weight types numpy can hold, so settings (Clip bounds, the Dropout ratio) match the input's.
# Memory can still be counted in any type: ``analyze(graph, dtype=...)``.
_WEIGHT_DTYPES = ("float32", "float16", "float64")

Padding = Union[str, int, Sequence[int]]
IntOrInts = Union[int, Sequence[int]]


class BuildError(CnnGraphError):
    """A layer or block call is wrong: a bad argument, a name already used, a limit reached.

    ``layer`` is the full name of the layer that failed (None outside a layer); ``origin`` is
    what ``Network.at`` set when it failed (None if nothing).
    """

    def __init__(self, message: str, *, layer: Optional[str] = None, origin: Any = None):
        super().__init__(message)
        self.layer = layer
        self.origin = origin


@dataclass(frozen=True)
class Tensor:
    """A handle on one tensor of a Network: its name and static shape.

    The shape is computed when the layer is added, by the op's own shape rule; a symbolic
    batch dimension counts as 1 here (the built graph keeps the symbol).

    >>> Tensor("conv1", (1, 64, 56, 56)).channels
    64
    """

    name: str
    shape: tuple[int, ...]
    dtype: str = "float32"

    @property
    def rank(self) -> int:
        return len(self.shape)

    @property
    def channels(self) -> int:
        """The size of axis 1 (NCHW channels, or features of a 2-D tensor)."""
        if len(self.shape) < 2:
            raise BuildError(f"tensor '{self.name}' of shape {self.shape} has no channel axis")
        return self.shape[1]

    def __repr__(self) -> str:
        dtype = "" if self.dtype == "float32" else f", {self.dtype!r}"
        return f"Tensor({self.name!r}, {self.shape}{dtype})"


# kind -> (op type, attributes); relu6 is Clip(0, 6), with its bounds as constant inputs.
_ACTIVATIONS: dict[str, tuple[str, dict]] = {
    "relu": ("Relu", {}),
    "relu6": ("Clip", {}),
    "sigmoid": ("Sigmoid", {}),
    "tanh": ("Tanh", {}),
    "leaky_relu": ("LeakyRelu", {"alpha": 0.01}),
    "hard_sigmoid": ("HardSigmoid", {}),
    "hard_swish": ("HardSwish", {}),
    "softmax": ("Softmax", {"axis": 1}),
    "log_softmax": ("LogSoftmax", {"axis": 1}),
}
ACTIVATIONS = tuple(_ACTIVATIONS)  # the activation kinds, for ``activation=`` and activation()


class _Layer:
    """One layer call in progress: names its nodes and constants and adds them to the network."""

    __slots__ = ("net", "kind", "name", "is_block")

    def __init__(self, net: "Network", kind: str, name: str, is_block: bool):
        self.net, self.kind, self.name, self.is_block = net, kind, name, is_block

    def node_name(self, role: Optional[str] = None) -> str:
        """The main node's name (role None), or a serving node's: 'fc_flatten', 'c3/concat'."""
        if role is None:
            return self.name
        return f"{self.name}/{role}" if self.is_block else f"{self.name}_{role}"

    def error(self, message: str) -> BuildError:
        return BuildError(f"layer '{self.name}' ({self.kind}): {message}", layer=self.name,
                          origin=self.net._origin)

    def tensor(self, x: Any, what: str = "input") -> Tensor:
        """Check that x is a handle this network made (and is still current)."""
        if not isinstance(x, Tensor):
            raise self.error(f"{what} must be a Tensor returned by this network, "
                             f"got {type(x).__name__} {x!r}")
        t = self.net._types.get(x.name)
        if t is None or x.name in self.net._constants or t.shape != x.shape:
            raise self.error(f"{what} '{x.name}' is not a tensor of network '{self.net.name}'")
        return x

    def weight(self, name: str, shape: tuple[int, ...]) -> str:
        """A trainable (or BN statistic) constant: structure only, no bytes."""
        return self.net._add_constant(self, Constant(name, self.net.dtype, tuple(shape), None))

    def setting(self, name: str, value: np.ndarray) -> str:
        """A small constant that carries its value (indices, shapes, bounds)."""
        value = np.asarray(value)
        const = Constant(name, dtypes.name_of(value.dtype), tuple(value.shape), value.copy)
        self.net._values[name] = value
        return self.net._add_constant(self, const)

    def node(self, name: str, op_type: str, inputs: Sequence[str],
             attrs: Optional[Mapping[str, Any]] = None) -> Tensor:
        return self.net._add_node(self, name, op_type, inputs, attrs or {})

    def activate(self, x: Tensor, kind: Optional[str], main: bool = False) -> Tensor:
        """Apply an activation after the layer's op (a node named after the layer and kind),
        or as the layer itself (main)."""
        if kind is None:
            return x
        if not isinstance(kind, str) or kind.lower() not in _ACTIVATIONS and kind != "linear":
            raise self.error(f"activation {kind!r} is not one of "
                             f"{', '.join(ACTIVATIONS)} or 'linear'")
        kind = kind.lower()
        if kind == "linear":
            return x
        op_type, attrs = _ACTIVATIONS[kind]
        name = self.node_name(None if main else kind)
        inputs = [x.name]
        if kind == "relu6":
            dtype = np.dtype(dtypes.numpy_dtype(x.dtype))
            inputs += [self.setting(f"{name}/min", np.array(0, dtype)),
                       self.setting(f"{name}/max", np.array(6, dtype))]
        return self.node(name, op_type, inputs, attrs)


def _name_error(name: Any, what: str) -> Optional[str]:
    if not isinstance(name, str) or not name.strip():
        return f"{what} must be a non-empty string, got {name!r}"
    if "/" in name:
        return f"{what} {name!r} contains '/'; nest names with net.block(...) instead"
    if name != name.strip():
        return f"{what} {name!r} has leading or trailing spaces"
    return None


class Network:
    """A network under construction. Layers are methods; ``build()`` gives the Graph.

    ``max_nodes`` bounds the number of nodes (a runaway loop fails fast with a message);
    ``dtype`` is the element type of the weights and the default one of inputs.

    >>> net = Network("lenet_c1")
    >>> x = net.input("x", ("N", 1, 32, 32))
    >>> c1 = net.conv(x, 6, 5, activation="tanh", name="c1")
    >>> c1.shape, len(net)
    ((1, 6, 28, 28), 2)
    """

    def __init__(self, name: str, *, max_nodes: int = MAX_NODES, dtype: str = "float32"):
        if not isinstance(name, str) or not name.strip():
            raise BuildError(f"the network name must be a non-empty string, got {name!r}")
        if isinstance(max_nodes, bool) or not isinstance(max_nodes, int) or max_nodes < 1:
            raise BuildError(f"network '{name}': max_nodes must be a positive int, "
                             f"got {max_nodes!r}")
        if dtype not in _WEIGHT_DTYPES:
            raise BuildError(f"network '{name}': dtype {dtype!r} is not one of "
                             f"{', '.join(_WEIGHT_DTYPES)}")
        self.name = name
        self.max_nodes = max_nodes
        self.dtype = dtype
        self.origins: dict[str, Any] = {}  # node name -> origin set by at()
        self._inputs: list[TensorInfo] = []
        self._outputs: list[str] = []
        self._nodes: dict[str, Node] = {}
        self._constants: dict[str, Constant] = {}
        self._values: dict[str, np.ndarray] = {}  # the settings' values
        self._types: dict[str, TensorType] = {}  # every tensor's static type
        self._owner: dict[str, str] = {}  # every name in use -> what uses it
        self._counters: dict[str, int] = {}  # kind -> last automatic number
        self._scope: list[str] = []  # the open blocks' full paths
        self._origin: Any = None

    # -- reading ------------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self._nodes)

    def __repr__(self) -> str:
        return f"Network({self.name!r}, {len(self._nodes)} nodes)"

    @property
    def nodes(self) -> Mapping[str, Node]:
        """The nodes so far, by name, in the order they were added (read-only)."""
        return MappingProxyType(self._nodes)

    @property
    def constants(self) -> Mapping[str, Constant]:
        """The constants so far, by name (read-only)."""
        return MappingProxyType(self._constants)

    @property
    def inputs(self) -> list[Tensor]:
        """Handles on the graph inputs, in declaration order."""
        return [Tensor(t.name, self._types[t.name].shape, t.dtype) for t in self._inputs]

    @property
    def outputs(self) -> list[str]:
        """The names of the tensors marked as outputs, in order."""
        return list(self._outputs)

    @property
    def scope(self) -> str:
        """The current block path ('' outside every block)."""
        return self._scope[-1] if self._scope else ""

    # -- structure ----------------------------------------------------------------------------
    def input(self, name: str, shape: Sequence[Union[int, str]],
              dtype: Optional[str] = None) -> Tensor:
        """Declare a graph input. The batch (first) dim may be symbolic, e.g. "N"; the handle's
        shape counts it as 1. Every other dim must be a positive int.

        >>> Network("n").input("x", ("N", 3, 224, 224))
        Tensor('x', (1, 3, 224, 224))
        """
        dtype = dtype or self.dtype
        problem = _name_error(name, "the input name")
        if problem:
            raise self.error(problem)
        if name in self._owner:
            raise self.error(f"input name '{name}' is already used by {self._owner[name]}")
        if dtype not in dtypes.ITEMSIZE:
            raise self.error(f"input '{name}': dtype {dtype!r} is not one of "
                             f"{', '.join(dtypes.ITEMSIZE)}")
        dims = tuple(shape) if isinstance(shape, (tuple, list)) else None
        if not dims or any(
                isinstance(d, bool) or not (isinstance(d, (int, np.integer)) and d >= 1
                                            or isinstance(d, str) and d and i == 0)
                for i, d in enumerate(dims)):
            raise self.error(
                f"input '{name}': shape {shape!r} must be a non-empty tuple of positive ints "
                f"(the first may be a symbolic batch name such as 'N')")
        dims = tuple(d if isinstance(d, str) else int(d) for d in dims)
        static = tuple(1 if isinstance(d, str) else d for d in dims)
        self._inputs.append(TensorInfo(name, dtype, dims))
        self._types[name] = TensorType(static, dtype)
        self._owner[name] = "an input"
        return Tensor(name, static, dtype)

    def output(self, x: Tensor) -> None:
        """Mark a tensor as a graph output.

        >>> net = Network("n"); x = net.input("x", (1, 4))
        >>> net.output(net.relu(x)); net.outputs
        ['relu_1']
        """
        if not isinstance(x, Tensor) or x.name not in self._types or x.name in self._constants:
            raise self.error(f"output must be a Tensor of network '{self.name}', got {x!r}")
        if x.name in self._outputs:
            raise self.error(f"tensor '{x.name}' is already an output")
        self._outputs.append(x.name)

    def build(self) -> Graph:
        """The network as a frozen Graph (opset 18, source '<builder:NAME>'). The network
        stays usable: add more and build again.

        >>> net = Network("n"); net.output(net.relu(net.input("x", ("N", 8))))
        >>> g = net.build(); g.source, g.opset, g.order()
        ('<builder:n>', 18, ['relu_1'])
        """
        if not self._inputs:
            raise self.error(f"network '{self.name}' has no inputs; declare one with "
                             f"net.input(name, shape)")
        if not self._outputs:
            raise self.error(f"network '{self.name}' has no outputs; mark one with net.output(y)")
        graph = Graph(self.name, source=f"<builder:{self.name}>", opset=OPSET)
        for info in self._inputs:
            graph.add_input(info)
        for const in self._constants.values():
            graph.add_constant(const)
        for node in self._nodes.values():
            graph.add_node(node)
        graph.outputs.extend(self._outputs)
        graph.origins.update(self.origins)
        return graph.freeze()

    @contextlib.contextmanager
    def block(self, name: Optional[str] = None, *, kind: str = "block") -> Iterator[str]:
        """Scope the names of the layers inside: ``with net.block("inception_3a"):`` makes
        'inception_3a/1x1'. Blocks nest. Without a name the block is called '<kind>_<n>'.
        Yields the block's full path. If the body raises, everything it added is undone.

        >>> net = Network("n"); x = net.input("x", (1, 3, 8, 8))
        >>> with net.block("stem") as path:
        ...     y = net.conv(x, 4, 3, name="conv")
        >>> path, y.name, net.nodes["stem/conv"].block
        ('stem', 'stem/conv', 'stem')
        """
        snapshot = self._snapshot()
        try:
            path = self._claim(kind, name, "block")
            self._owner[path] = "a block"
            self._scope.append(path)
            try:
                yield path
            finally:
                self._scope.pop()
        except BaseException as e:
            self._restore(snapshot)
            self._annotate(e, None)
            raise

    @contextlib.contextmanager
    def at(self, origin: Any) -> Iterator[None]:
        """Record ``origin`` (e.g. a DSL's (file, line, column)) for every node added inside, in
        ``net.origins``, and on any error raised inside (``error.origin``).

        >>> net = Network("n"); x = net.input("x", (1, 3, 8, 8))
        >>> with net.at(("net.cnn", 3, 1)):
        ...     y = net.relu(x, name="r")
        >>> net.origins["r"]
        ('net.cnn', 3, 1)
        """
        previous, self._origin = self._origin, origin
        try:
            yield
        finally:
            self._origin = previous

    def error(self, message: str) -> BuildError:
        """A BuildError for a block's own checks, naming the current block and origin.

        >>> net = Network("n")
        >>> with net.block("se"):
        ...     str(net.error("ratio 0 must be positive"))
        "block 'se': ratio 0 must be positive"
        """
        where = f"block '{self.scope}': " if self._scope else ""
        return BuildError(where + message, origin=self._origin)

    # -- convolutions -------------------------------------------------------------------------
    def conv(self, x: Tensor, filters: int, kernel: IntOrInts, stride: IntOrInts = 1,
             padding: Padding = "valid", dilation: IntOrInts = 1, groups: int = 1,
             bias: bool = True, activation: Optional[str] = None,
             name: Optional[str] = None) -> Tensor:
        """Convolution (ONNX Conv), any spatial rank. Weight (filters, Cin/groups, *kernel),
        bias (filters). Parameters: filters * (kh*kw*Cin/groups) + filters.

        >>> net = Network("alexnet"); x = net.input("x", ("N", 3, 227, 227))
        >>> net.conv(x, 96, 11, stride=4, name="conv1")  # 96 * 11*11*3 + 96 = 34,944 params
        Tensor('conv1', (1, 96, 55, 55))
        """
        with self._layer("conv", name) as layer:
            x = layer.tensor(x)
            y = _conv(layer, layer.node_name(), x, filters, kernel, stride, padding, dilation,
                      groups, bias)
            return layer.activate(y, activation)

    def depthwise_conv(self, x: Tensor, kernel: IntOrInts, stride: IntOrInts = 1,
                       padding: Padding = "valid", multiplier: int = 1, dilation: IntOrInts = 1,
                       bias: bool = True, activation: Optional[str] = None,
                       name: Optional[str] = None) -> Tensor:
        """Depthwise convolution: each input map filtered alone (Conv with group = Cin),
        ``multiplier`` filters per map. Parameters: Cin*multiplier * kh*kw (+ Cin*multiplier).

        >>> net = Network("n"); x = net.input("x", (1, 32, 16, 16))
        >>> net.depthwise_conv(x, 3, padding="same", bias=False)
        Tensor('depthwise_conv_1', (1, 32, 16, 16))
        """
        with self._layer("depthwise_conv", name) as layer:
            x = layer.tensor(x)
            m = _positive(layer, multiplier, "multiplier")
            y = _conv(layer, layer.node_name(), x, x.channels * m, kernel, stride, padding,
                      dilation, x.channels, bias)
            return layer.activate(y, activation)

    def separable_conv(self, x: Tensor, filters: int, kernel: IntOrInts, stride: IntOrInts = 1,
                       padding: Padding = "valid", dilation: IntOrInts = 1, multiplier: int = 1,
                       bias: bool = True, activation: Optional[str] = None,
                       name: Optional[str] = None) -> Tensor:
        """Depthwise separable convolution, the Xception/MobileNet way: a depthwise conv (the
        stride, padding and dilation; no bias) then a 1x1 pointwise conv to ``filters`` maps
        (with the bias). A block: 'NAME/depthwise', 'NAME/pointwise'.

        >>> net = Network("n"); x = net.input("x", (1, 32, 16, 16))
        >>> net.separable_conv(x, 64, 3, padding="same", name="sep")
        Tensor('sep/pointwise', (1, 64, 16, 16))
        """
        with self._layer("separable_conv", name, block=True) as layer:
            x = layer.tensor(x)
            m = _positive(layer, multiplier, "multiplier")
            y = _conv(layer, layer.node_name("depthwise"), x, x.channels * m, kernel, stride,
                      padding, dilation, x.channels, False)
            y = _conv(layer, layer.node_name("pointwise"), y, filters, 1, 1, "valid", 1, 1, bias)
            return layer.activate(y, activation)

    def sparse_conv(self, x: Tensor, table: Sequence[Sequence[int]], kernel: IntOrInts,
                    stride: IntOrInts = 1, padding: Padding = "valid", dilation: IntOrInts = 1,
                    bias: bool = True, activation: Optional[str] = None,
                    name: Optional[str] = None) -> Tensor:
        """A convolution whose output map i reads only the input maps ``table[i]`` (LeNet-5's
        C3). Parameters: sum over output maps of len(table[i])*kh*kw (+ 1 bias each).

        Standard ops only, as a block: output maps reading the same set of inputs form a
        group; each group is a Gather (axis 1) of its input maps, unless it reads them all,
        then a Conv without bias ('NAME/inputs_g', 'NAME/conv_g'); a Concat joins the groups
        ('NAME/concat'); if grouping changed the order, a Gather puts the maps back in table
        order ('NAME/order'); an Add of one bias per map follows ('NAME/bias', constant
        'NAME/bias/B' of shape (1, maps, 1, 1): one constant, not a one-element bias per
        single-map group, which the cost pass would not count as a parameter).

        >>> net = Network("n"); x = net.input("x", (1, 3, 8, 8))
        >>> y = net.sparse_conv(x, [[0, 1], [2], [0, 1]], 3, name="sc")
        >>> y.shape, [n.op_type for n in net.nodes.values()]
        ((1, 3, 6, 6), ['Gather', 'Conv', 'Gather', 'Conv', 'Concat', 'Gather', 'Add'])
        """
        with self._layer("sparse_conv", name, block=True) as layer:
            x = layer.tensor(x)
            groups = _connection_groups(layer, table, x.channels)
            parts, order = [], []
            for g, (inputs, maps) in enumerate(groups):
                source = x
                if inputs != tuple(range(x.channels)):
                    indices = layer.setting(f"{layer.node_name(f'inputs_{g}')}/indices",
                                            np.array(inputs, np.int64))
                    source = layer.node(layer.node_name(f"inputs_{g}"), "Gather",
                                        [x.name, indices], {"axis": 1})
                parts.append(_conv(layer, layer.node_name(f"conv_{g}"), source, len(maps),
                                   kernel, stride, padding, dilation, 1, False))
                order += maps
            y = parts[0]
            if len(parts) > 1:
                y = layer.node(layer.node_name("concat"), "Concat", [p.name for p in parts],
                               {"axis": 1})
            if order != sorted(order):
                position = {m: i for i, m in enumerate(order)}
                perm = np.array([position[m] for m in range(len(order))], np.int64)
                indices = layer.setting(f"{layer.node_name('order')}/indices", perm)
                y = layer.node(layer.node_name("order"), "Gather", [y.name, indices],
                               {"axis": 1})
            if _flag(layer, bias, "bias"):
                shift = layer.node_name("bias")
                per_map = (1, len(order)) + (1,) * (x.rank - 2)
                y = layer.node(shift, "Add", [y.name, layer.weight(f"{shift}/B", per_map)])
            return layer.activate(y, activation)

    # -- pooling ------------------------------------------------------------------------------
    def max_pool(self, x: Tensor, kernel: IntOrInts, stride: Optional[IntOrInts] = None,
                 padding: Padding = "valid", ceil_mode: bool = False,
                 name: Optional[str] = None) -> Tensor:
        """Max pooling (ONNX MaxPool). ``stride`` defaults to the kernel; ``ceil_mode`` rounds
        the output size up (the last window still starts inside the input or its padding).

        >>> net = Network("n"); x = net.input("x", (1, 96, 55, 55))
        >>> net.max_pool(x, 3, stride=2)
        Tensor('max_pool_1', (1, 96, 27, 27))
        """
        with self._layer("max_pool", name) as layer:
            return _pool(layer, layer.node_name(), "MaxPool", layer.tensor(x), kernel, stride,
                         padding, ceil_mode, {})

    def avg_pool(self, x: Tensor, kernel: IntOrInts, stride: Optional[IntOrInts] = None,
                 padding: Padding = "valid", ceil_mode: bool = False,
                 count_include_pad: bool = False, name: Optional[str] = None) -> Tensor:
        """Average pooling (ONNX AveragePool); like max_pool. ``count_include_pad`` divides
        by the whole window, padding included (torch's default), instead of the real inputs.

        >>> net = Network("n"); x = net.input("x", (1, 6, 28, 28))
        >>> net.avg_pool(x, 2)
        Tensor('avg_pool_1', (1, 6, 14, 14))
        """
        with self._layer("avg_pool", name) as layer:
            extra = {"count_include_pad": 1} if count_include_pad else {}
            return _pool(layer, layer.node_name(), "AveragePool", layer.tensor(x), kernel,
                         stride, padding, ceil_mode, extra)

    def global_avg_pool(self, x: Tensor, name: Optional[str] = None) -> Tensor:
        """The mean of each map: (N, C, H, W) -> (N, C, 1, 1) (ONNX GlobalAveragePool).

        >>> net = Network("n"); net.global_avg_pool(net.input("x", (1, 512, 7, 7)))
        Tensor('global_avg_pool_1', (1, 512, 1, 1))
        """
        with self._layer("global_avg_pool", name) as layer:
            return layer.node(layer.node_name(), "GlobalAveragePool", [layer.tensor(x).name])

    def global_max_pool(self, x: Tensor, name: Optional[str] = None) -> Tensor:
        """The maximum of each map: (N, C, H, W) -> (N, C, 1, 1) (ONNX GlobalMaxPool).

        >>> net = Network("n"); net.global_max_pool(net.input("x", (1, 8, 7, 7)))
        Tensor('global_max_pool_1', (1, 8, 1, 1))
        """
        with self._layer("global_max_pool", name) as layer:
            return layer.node(layer.node_name(), "GlobalMaxPool", [layer.tensor(x).name])

    def subsample(self, x: Tensor, kernel: IntOrInts = 2, stride: Optional[IntOrInts] = None,
                  activation: Optional[str] = None, name: Optional[str] = None) -> Tensor:
        """LeNet-5's trainable subsampling: average each window (2x2 stride 2 by default),
        multiply by one trainable coefficient per map, add one trainable bias per map:
        2 parameters per map. A block: 'NAME/pool' (AveragePool), 'NAME/scale' (Mul by a
        (1, C, 1, 1) constant), 'NAME/bias' (Add of a (1, C, 1, 1) constant).

        >>> net = Network("n"); x = net.input("x", (1, 6, 28, 28))
        >>> net.subsample(x, activation="tanh", name="s2")
        Tensor('s2/tanh', (1, 6, 14, 14))
        """
        with self._layer("subsample", name, block=True) as layer:
            x = layer.tensor(x)
            y = _pool(layer, layer.node_name("pool"), "AveragePool", x, kernel, stride,
                      "valid", False, {})
            per_map = (1, x.channels) + (1,) * (x.rank - 2)
            scale, shift = layer.node_name("scale"), layer.node_name("bias")
            y = layer.node(scale, "Mul", [y.name, layer.weight(f"{scale}/W", per_map)])
            y = layer.node(shift, "Add", [y.name, layer.weight(f"{shift}/B", per_map)])
            return layer.activate(y, activation)

    # -- dense, normalization, regularization -------------------------------------------------
    def dense(self, x: Tensor, units: int, bias: bool = True, activation: Optional[str] = None,
              name: Optional[str] = None) -> Tensor:
        """Fully connected layer (ONNX Gemm, weight (units, in) with transB=1, bias (units)).
        A >2-D input is flattened first ('NAME_flatten'). Parameters: in*units + units.

        >>> net = Network("n"); x = net.input("x", (1, 16, 5, 5))
        >>> net.dense(x, 120, name="c5")  # 400*120 + 120 = 48,120 params
        Tensor('c5', (1, 120))
        """
        with self._layer("dense", name) as layer:
            x = layer.tensor(x)
            units = _positive(layer, units, "units")
            if x.rank < 2:
                raise layer.error(f"input '{x.name}' {x.shape} must have rank >= 2 (N, features)")
            if x.rank > 2:
                x = layer.node(layer.node_name("flatten"), "Flatten", [x.name], {"axis": 1})
            name = layer.node_name()
            inputs = [x.name, layer.weight(f"{name}/W", (units, x.shape[1]))]
            if _flag(layer, bias, "bias"):
                inputs.append(layer.weight(f"{name}/B", (units,)))
            y = layer.node(name, "Gemm", inputs, {"transB": 1})
            return layer.activate(y, activation)

    def batchnorm(self, x: Tensor, epsilon: float = 1e-5, activation: Optional[str] = None,
                  name: Optional[str] = None) -> Tensor:
        """Batch normalization (inference form, ONNX BatchNormalization): scale and B are
        trainable, mean and var are not. Parameters: 2C trainable + 2C non-trainable.

        >>> net = Network("n"); x = net.input("x", (1, 64, 56, 56))
        >>> net.batchnorm(x, activation="relu", name="bn1")
        Tensor('bn1_relu', (1, 64, 56, 56))
        """
        with self._layer("batchnorm", name) as layer:
            x = layer.tensor(x)
            if x.rank < 2:
                raise layer.error(f"input '{x.name}' {x.shape} has no channel axis")
            eps = _number(layer, epsilon, "epsilon", low=0, low_open=True)
            name = layer.node_name()
            inputs = [x.name] + [layer.weight(f"{name}/{part}", (x.channels,))
                                 for part in ("scale", "B", "mean", "var")]
            y = layer.node(name, "BatchNormalization", inputs, {"epsilon": eps})
            return layer.activate(y, activation)

    def lrn(self, x: Tensor, size: int = 5, alpha: float = 1e-4, beta: float = 0.75,
            bias: float = 1.0, name: Optional[str] = None) -> Tensor:
        """Local response normalization across ``size`` neighbouring channels (ONNX LRN):
        x / (bias + alpha/size * sum of squares)^beta. AlexNet: size 5, alpha 1e-4,
        beta 0.75, bias 2.

        >>> net = Network("n"); net.lrn(net.input("x", (1, 96, 55, 55)), bias=2.0)
        Tensor('lrn_1', (1, 96, 55, 55))
        """
        with self._layer("lrn", name) as layer:
            x = layer.tensor(x)
            attrs = {"size": _positive(layer, size, "size"),
                     "alpha": _number(layer, alpha, "alpha"),
                     "beta": _number(layer, beta, "beta"),
                     "bias": _number(layer, bias, "bias")}
            return layer.node(layer.node_name(), "LRN", [x.name], attrs)

    def dropout(self, x: Tensor, rate: float = 0.5, name: Optional[str] = None) -> Tensor:
        """Dropout (ONNX Dropout, the ratio as a constant input): the identity at inference.

        >>> net = Network("n"); net.dropout(net.input("x", (1, 4096)), 0.5, name="drop6")
        Tensor('drop6', (1, 4096))
        """
        with self._layer("dropout", name) as layer:
            x = layer.tensor(x)
            rate = _number(layer, rate, "rate", low=0, high=1)
            name = layer.node_name()
            dtype = dtypes.numpy_dtype(x.dtype)
            ratio = layer.setting(f"{name}/ratio", np.array(rate, dtype))
            return layer.node(name, "Dropout", [x.name, ratio])

    # -- activations --------------------------------------------------------------------------
    def activation(self, x: Tensor, kind: str, name: Optional[str] = None) -> Tensor:
        """An activation layer of one of ``ACTIVATIONS`` ('relu', 'relu6' (Clip 0..6),
        'sigmoid', 'tanh', 'softmax' (over axis 1)...); 'linear' adds nothing. Named
        '<kind>_<n>' by default.

        >>> net = Network("n"); net.activation(net.input("x", (1, 8)), "relu6")
        Tensor('relu6_1', (1, 8))
        """
        if kind == "linear" or kind is None:
            return x
        kind_name = kind.lower() if isinstance(kind, str) and kind.lower() in _ACTIVATIONS \
            else "activation"
        with self._layer(kind_name, name) as layer:
            return layer.activate(layer.tensor(x), kind, main=True)

    def relu(self, x: Tensor, name: Optional[str] = None) -> Tensor:
        """max(x, 0) (ONNX Relu).

        >>> net = Network("n"); net.relu(net.input("x", (1, 8)), name="relu1")
        Tensor('relu1', (1, 8))
        """
        return self.activation(x, "relu", name)

    def sigmoid(self, x: Tensor, name: Optional[str] = None) -> Tensor:
        """1 / (1 + exp(-x)) (ONNX Sigmoid)."""
        return self.activation(x, "sigmoid", name)

    def tanh(self, x: Tensor, name: Optional[str] = None) -> Tensor:
        """tanh(x) (ONNX Tanh)."""
        return self.activation(x, "tanh", name)

    def softmax(self, x: Tensor, axis: int = 1, name: Optional[str] = None) -> Tensor:
        """Softmax along ``axis`` (default 1: the classes of (N, classes), the channels of
        NCHW).

        >>> net = Network("n"); net.softmax(net.input("x", (1, 1000)), name="prob")
        Tensor('prob', (1, 1000))
        """
        with self._layer("softmax", name) as layer:
            x = layer.tensor(x)
            axis = _integer(layer, axis, "axis")
            if not -x.rank <= axis < x.rank:
                raise layer.error(f"axis {axis} is out of range for input '{x.name}' {x.shape}")
            return layer.node(layer.node_name(), "Softmax", [x.name], {"axis": axis})

    # -- merging and reshaping ----------------------------------------------------------------
    def add(self, *xs: Tensor, activation: Optional[str] = None,
            name: Optional[str] = None) -> Tensor:
        """Elementwise sum of two or more tensors (ONNX Add; Sum for three or more), with
        broadcasting; e.g. a residual unit's skip connection.

        >>> net = Network("n"); x = net.input("x", (1, 64, 56, 56))
        >>> net.add(x, net.relu(x), activation="relu", name="add")
        Tensor('add_relu', (1, 64, 56, 56))
        """
        with self._layer("add", name) as layer:
            if len(xs) == 1 and isinstance(xs[0], (list, tuple)):
                xs = tuple(xs[0])
            if len(xs) < 2:
                raise layer.error(f"needs at least two inputs, got {len(xs)}")
            names = [layer.tensor(x, f"input {i}").name for i, x in enumerate(xs)]
            y = layer.node(layer.node_name(), "Add" if len(xs) == 2 else "Sum", names)
            return layer.activate(y, activation)

    def multiply(self, a: Tensor, b: Tensor, name: Optional[str] = None) -> Tensor:
        """Elementwise product with broadcasting (ONNX Mul). A channel vector, (N, C) against
        (N, C, H, W), is reshaped to (N, C, 1, 1) first ('NAME_reshape'): the SE scale.

        >>> net = Network("n"); x = net.input("x", (1, 64, 8, 8))
        >>> s = net.sigmoid(net.dense(net.global_avg_pool(x), 64))
        >>> net.multiply(x, s, name="scale")
        Tensor('scale', (1, 64, 8, 8))
        """
        with self._layer("multiply", name) as layer:
            a, b = layer.tensor(a, "input 0"), layer.tensor(b, "input 1")

            def channel_vector(v: Tensor, of: Tensor) -> Tensor:
                if v.rank == 2 and of.rank > 2 and v.shape == of.shape[:2]:
                    reshape = layer.node_name("reshape")
                    target = np.array([0, -1] + [1] * (of.rank - 2), np.int64)
                    return layer.node(reshape, "Reshape",
                                      [v.name, layer.setting(f"{reshape}/shape", target)])
                return v

            a, b = channel_vector(a, b), channel_vector(b, a)
            return layer.node(layer.node_name(), "Mul", [a.name, b.name])

    def concat(self, xs: Sequence[Tensor], axis: int = 1, name: Optional[str] = None) -> Tensor:
        """Join tensors along ``axis`` (default 1: channels) (ONNX Concat).

        >>> net = Network("n"); x = net.input("x", (1, 64, 28, 28))
        >>> net.concat([x, net.relu(x)], name="output")
        Tensor('output', (1, 128, 28, 28))
        """
        with self._layer("concat", name) as layer:
            if not isinstance(xs, (list, tuple)) or not xs:
                raise layer.error(f"needs a non-empty list of tensors, got {xs!r}")
            names = [layer.tensor(x, f"input {i}").name for i, x in enumerate(xs)]
            axis = _integer(layer, axis, "axis")
            return layer.node(layer.node_name(), "Concat", names, {"axis": axis})

    def flatten(self, x: Tensor, name: Optional[str] = None) -> Tensor:
        """(N, d1, d2, ...) -> (N, d1*d2*...) (ONNX Flatten, axis 1).

        >>> net = Network("n"); net.flatten(net.input("x", (1, 256, 6, 6)))
        Tensor('flatten_1', (1, 9216))
        """
        with self._layer("flatten", name) as layer:
            return layer.node(layer.node_name(), "Flatten", [layer.tensor(x).name], {"axis": 1})

    def reshape(self, x: Tensor, shape: Sequence[int], name: Optional[str] = None) -> Tensor:
        """Give each sample a new shape (the batch dim is kept; one -1 is inferred) (ONNX
        Reshape with shape [0, *shape]).

        >>> net = Network("n"); net.reshape(net.input("x", (1, 64, 1, 1)), (64,))
        Tensor('reshape_1', (1, 64))
        """
        with self._layer("reshape", name) as layer:
            x = layer.tensor(x)
            dims = tuple(shape) if isinstance(shape, (list, tuple)) else None
            if dims is None or any(isinstance(d, bool) or not isinstance(d, (int, np.integer))
                                   or d < -1 or d == 0 for d in dims) or dims.count(-1) > 1:
                raise layer.error(f"shape {shape!r} must be a tuple of positive ints (one may "
                                  f"be -1), the batch dim left out")
            name = layer.node_name()
            target = layer.setting(f"{name}/shape", np.array((0,) + dims, np.int64))
            return layer.node(name, "Reshape", [x.name, target])

    # -- internals ----------------------------------------------------------------------------
    @contextlib.contextmanager
    def _layer(self, kind: str, name: Optional[str], block: bool = False) -> Iterator[_Layer]:
        """One layer call: resolve its name, and undo everything it added if it fails."""
        snapshot = self._snapshot()
        full = None
        try:
            full = self._claim(kind, name, "layer")
            if block:
                self._owner[full] = "a block"
            yield _Layer(self, kind, full, block)
        except BaseException as e:
            self._restore(snapshot)
            self._annotate(e, full)
            raise

    def _claim(self, kind: str, name: Optional[str], what: str) -> str:
        """The full name of a new layer or block: given (checked) or '<kind>_<n>'."""
        prefix = self.scope + "/" if self._scope else ""
        if name is None:
            n = self._counters.get(kind, 0)
            while True:
                n += 1
                full = f"{prefix}{kind}_{n}"
                if full not in self._owner:
                    self._counters[kind] = n
                    return full
        problem = _name_error(name, "the name")
        full = prefix + name if problem is None else prefix + str(name)
        if problem is None and full in self._owner:
            problem = f"the name is already used by {self._owner[full]}"
        if problem:
            raise BuildError(f"{what} '{full}' ({kind}): {problem}", layer=full,
                             origin=self._origin)
        return full

    def _add_constant(self, layer: _Layer, const: Constant) -> str:
        if const.name in self._owner:
            raise layer.error(f"constant name '{const.name}' is already used by "
                              f"{self._owner[const.name]}")
        self._constants[const.name] = const
        self._types[const.name] = TensorType(const.shape, const.dtype)
        self._owner[const.name] = f"a constant of layer '{layer.name}'"
        return const.name

    def _add_node(self, layer: _Layer, name: str, op_type: str, inputs: Sequence[str],
                  attrs: Mapping[str, Any]) -> Tensor:
        """Add one node, its output named after it, typed by the op's own shape rule."""
        if len(self._nodes) >= self.max_nodes:
            raise layer.error(f"network '{self.name}' already has {len(self._nodes):,} nodes, "
                              f"its max_nodes limit")
        if name in self._owner:
            raise layer.error(f"node name '{name}' is already used by {self._owner[name]}")
        node = Node(name, op_type, tuple(inputs), (name,), MappingProxyType(dict(attrs)),
                    block=name.rpartition("/")[0])
        op = lookup(node)
        check_opset(node, OPSET)
        call = Call(node, op, [self._types[t] for t in node.inputs],
                    [self._values.get(t) for t in node.inputs], OPSET)
        (out,) = op.infer(call)[:1]
        self._nodes[name] = node
        self._types[name] = out
        self._owner[name] = f"a node of layer '{layer.name}'"
        if self._origin is not None:
            self.origins[name] = self._origin
        return Tensor(name, out.shape, out.dtype)

    def _snapshot(self) -> tuple:
        return (len(self._nodes), len(self._constants), len(self._values), len(self._types),
                len(self._owner), len(self.origins), len(self._inputs), len(self._outputs),
                dict(self._counters))

    def _restore(self, snapshot: tuple) -> None:
        """Undo everything added since the snapshot (dicts keep insertion order)."""
        *sizes, counters = snapshot
        for d, size in zip((self._nodes, self._constants, self._values, self._types,
                            self._owner, self.origins), sizes):
            for key in list(d)[size:]:
                del d[key]
        del self._inputs[sizes[6]:]
        del self._outputs[sizes[7]:]
        self._counters = counters

    def _annotate(self, e: BaseException, layer: Optional[str]) -> None:
        """Give every cnngraph error leaving a layer or block its layer and origin."""
        if isinstance(e, CnnGraphError):
            if getattr(e, "layer", None) is None:
                e.layer = layer
            if getattr(e, "origin", None) is None:
                e.origin = self._origin


# -- argument checks ---------------------------------------------------------------------------
def _integer(layer: _Layer, value: Any, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise layer.error(f"{what} must be an int, got {value!r}")
    return int(value)


def _positive(layer: _Layer, value: Any, what: str) -> int:
    value = _integer(layer, value, what)
    if value < 1:
        raise layer.error(f"{what} must be a positive int, got {value!r}")
    return value


def _flag(layer: _Layer, value: Any, what: str) -> bool:
    if not isinstance(value, (bool, np.bool_)):
        raise layer.error(f"{what} must be True or False, got {value!r}")
    return bool(value)


def _number(layer: _Layer, value: Any, what: str, low: Optional[float] = None,
            high: Optional[float] = None, low_open: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise layer.error(f"{what} must be a number, got {value!r}")
    value = float(value)
    if (low is not None and (value < low or low_open and value == low)
            or high is not None and value >= high or value != value):
        bounds = f"{'(' if low_open else '['}{low}, {high if high is not None else 'inf'})"
        raise layer.error(f"{what} must be in {bounds}, got {value!r}")
    return value


def _ints(layer: _Layer, value: Any, rank: int, what: str, minimum: int) -> tuple[int, ...]:
    """An int, or one int per spatial axis, each >= minimum."""
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        values = (int(value),) * rank
    elif (isinstance(value, (list, tuple)) and len(value) == rank and all(
            isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in value)):
        values = tuple(int(v) for v in value)
    else:
        raise layer.error(f"{what} must be an int or {rank} ints (one per spatial axis), "
                          f"got {value!r}")
    if min(values) < minimum:
        raise layer.error(f"{what} must be at least {minimum}, got {value!r}")
    return values


def _spatial_rank(layer: _Layer, x: Tensor) -> int:
    if x.rank < 3:
        raise layer.error(f"input '{x.name}' {x.shape} must have rank >= 3 "
                          f"(N, C, spatial...)")
    return x.rank - 2


def _padding(layer: _Layer, padding: Any, kernel: tuple, stride: tuple,
             dilation: tuple) -> dict:
    """Padding as Conv/pool attributes: explicit pads, or auto_pad SAME_UPPER when 'same'
    depends on the input size (stride > 1)."""
    rank = len(kernel)
    if isinstance(padding, str):
        mode = padding.lower()
        if mode == "valid":
            return {}
        if mode == "same":
            if any(s != 1 for s in stride):
                return {"auto_pad": "SAME_UPPER"}
            total = [d * (k - 1) for k, d in zip(kernel, dilation)]
            begins = [t // 2 for t in total]
            pads = begins + [t - b for t, b in zip(total, begins)]
            return {"pads": pads} if any(pads) else {}
    elif isinstance(padding, (list, tuple)) and len(padding) == 2 * rank and all(
            isinstance(p, (int, np.integer)) and not isinstance(p, bool) for p in padding):
        pads = [int(p) for p in padding]
        if min(pads) < 0:
            raise layer.error(f"padding {padding!r} must not be negative")
        return {"pads": pads} if any(pads) else {}
    else:
        try:
            per_axis = list(_ints(layer, padding, rank, "padding", -1 << 62))
        except BuildError:
            pass
        else:
            if min(per_axis) < 0:
                raise layer.error(f"padding {padding!r} must not be negative")
            return {"pads": per_axis * 2} if any(per_axis) else {}
    raise layer.error(f"padding {padding!r} must be 'valid', 'same', an int, {rank} ints (per "
                      f"axis) or {2 * rank} ints (ONNX begins then ends)")


def _conv(layer: _Layer, name: str, x: Tensor, filters: Any, kernel: Any, stride: Any,
          padding: Any, dilation: Any, groups: Any, bias: Any) -> Tensor:
    """One Conv node with its weight 'NAME/W' and bias 'NAME/B'."""
    rank = _spatial_rank(layer, x)
    filters = _positive(layer, filters, "filters")
    groups = _positive(layer, groups, "groups")
    kernel = _ints(layer, kernel, rank, "kernel", 1)
    stride = _ints(layer, stride, rank, "stride", 1)
    dilation = _ints(layer, dilation, rank, "dilation", 1)
    if x.channels % groups or filters % groups:
        raise layer.error(f"groups={groups} must divide the input's {x.channels} channels and "
                          f"the {filters} filters")
    attrs: dict[str, Any] = {"kernel_shape": list(kernel), "strides": list(stride)}
    attrs.update(_padding(layer, padding, kernel, stride, dilation))
    if any(d != 1 for d in dilation):
        attrs["dilations"] = list(dilation)
    if groups != 1:
        attrs["group"] = groups
    inputs = [x.name, layer.weight(f"{name}/W", (filters, x.channels // groups) + kernel)]
    if _flag(layer, bias, "bias"):
        inputs.append(layer.weight(f"{name}/B", (filters,)))
    return layer.node(name, "Conv", inputs, attrs)


def _pool(layer: _Layer, name: str, op_type: str, x: Tensor, kernel: Any, stride: Any,
          padding: Any, ceil_mode: Any, extra: dict) -> Tensor:
    rank = _spatial_rank(layer, x)
    kernel = _ints(layer, kernel, rank, "kernel", 1)
    stride = kernel if stride is None else _ints(layer, stride, rank, "stride", 1)
    attrs: dict[str, Any] = {"kernel_shape": list(kernel), "strides": list(stride)}
    attrs.update(_padding(layer, padding, kernel, stride, (1,) * rank))
    if _flag(layer, ceil_mode, "ceil_mode"):
        attrs["ceil_mode"] = 1
    attrs.update(extra)
    return layer.node(name, op_type, [x.name], attrs)


def _connection_groups(layer: _Layer, table: Any, channels: int) -> list[tuple[tuple, list]]:
    """[(sorted input maps, [output maps reading exactly them])] in order of first use."""
    if not isinstance(table, (list, tuple)) or not table:
        raise layer.error(f"table must be a non-empty list with one list of input maps per "
                          f"output map, got {table!r}")
    groups: dict[tuple, list] = {}
    for i, maps in enumerate(table):
        if (not isinstance(maps, (list, tuple)) or not maps or any(
                isinstance(m, bool) or not isinstance(m, (int, np.integer)) for m in maps)):
            raise layer.error(f"table[{i}] must be a non-empty list of input map indices, "
                              f"got {maps!r}")
        bad = [int(m) for m in maps if not 0 <= m < channels]
        if bad:
            raise layer.error(f"table[{i}] reads input map {bad[0]}, but the input has "
                              f"{channels} maps (0..{channels - 1})")
        key = tuple(sorted({int(m) for m in maps}))
        if len(key) != len(maps):
            raise layer.error(f"table[{i}] lists an input map twice: {list(maps)}")
        groups.setdefault(key, []).append(i)
    return list(groups.items())


# -- reusable blocks ---------------------------------------------------------------------------
def inception(net: Network, x: Tensor, c1x1: int, c3x3_reduce: int, c3x3: int,
              c5x5_reduce: int, c5x5: int, pool_proj: int, name: Optional[str] = None) -> Tensor:
    """A GoogLeNet inception module (Szegedy et al. 2014, Table 1): four branches on x, 1x1;
    1x1 reduce then 3x3; 1x1 reduce then 5x5; 3x3 max pool (stride 1, same) then 1x1
    projection; every conv followed by ReLU; the branches concatenated along channels
    ('NAME/output'). Output channels: c1x1 + c3x3 + c5x5 + pool_proj.

    >>> net = Network("g"); x = net.input("x", ("N", 192, 28, 28))
    >>> inception(net, x, 64, 96, 128, 16, 32, 32, name="inception_3a")
    Tensor('inception_3a/output', (1, 256, 28, 28))
    """
    with net.block(name, kind="inception"):
        b1 = net.conv(x, c1x1, 1, activation="relu", name="1x1")
        b2 = net.conv(x, c3x3_reduce, 1, activation="relu", name="3x3_reduce")
        b2 = net.conv(b2, c3x3, 3, padding="same", activation="relu", name="3x3")
        b3 = net.conv(x, c5x5_reduce, 1, activation="relu", name="5x5_reduce")
        b3 = net.conv(b3, c5x5, 5, padding="same", activation="relu", name="5x5")
        b4 = net.max_pool(x, 3, stride=1, padding="same", name="pool")
        b4 = net.conv(b4, pool_proj, 1, activation="relu", name="pool_proj")
        return net.concat([b1, b2, b3, b4], name="output")


def _shortcut(net: Network, x: Tensor, channels: int, stride: int) -> Tensor:
    """The identity, or (when the shape changes) a 1x1 conv with the stride + BN projection
    in a 'downsample' block, as torchvision does."""
    if stride == 1 and x.channels == channels:
        return x
    with net.block("downsample"):
        y = net.conv(x, channels, 1, stride=stride, bias=False, name="conv")
        return net.batchnorm(y, name="bn")


def residual_basic(net: Network, x: Tensor, filters: int, stride: int = 1,
                   name: Optional[str] = None) -> Tensor:
    """A ResNet basic unit as torchvision builds it: 3x3 conv (the stride) - BN - ReLU -
    3x3 conv - BN, plus the shortcut (identity, or 1x1 stride-s conv + BN when the shape
    changes), then ReLU. Convs have no bias.

    >>> net = Network("r"); x = net.input("x", ("N", 64, 56, 56))
    >>> residual_basic(net, x, 128, stride=2, name="layer2.0")
    Tensor('layer2.0/add_relu', (1, 128, 28, 28))
    """
    with net.block(name, kind="residual"):
        y = net.conv(x, filters, 3, stride=stride, padding=1, bias=False, name="conv1")
        y = net.batchnorm(y, activation="relu", name="bn1")
        y = net.conv(y, filters, 3, padding=1, bias=False, name="conv2")
        y = net.batchnorm(y, name="bn2")
        return net.add(y, _shortcut(net, x, filters, stride), activation="relu", name="add")


def residual_bottleneck(net: Network, x: Tensor, filters: int, stride: int = 1,
                        expansion: int = 4, name: Optional[str] = None) -> Tensor:
    """A ResNet bottleneck unit as torchvision v1.5 builds it: 1x1 conv - BN - ReLU - 3x3 conv
    (the stride) - BN - ReLU - 1x1 conv to filters*expansion - BN, plus the shortcut
    (identity, or 1x1 stride-s conv + BN), then ReLU. Convs have no bias.

    >>> net = Network("r"); x = net.input("x", ("N", 64, 56, 56))
    >>> residual_bottleneck(net, x, 64, name="layer1.0")
    Tensor('layer1.0/add_relu', (1, 256, 56, 56))
    """
    with net.block(name, kind="bottleneck"):
        y = net.conv(x, filters, 1, bias=False, name="conv1")
        y = net.batchnorm(y, activation="relu", name="bn1")
        y = net.conv(y, filters, 3, stride=stride, padding=1, bias=False, name="conv2")
        y = net.batchnorm(y, activation="relu", name="bn2")
        y = net.conv(y, filters * expansion, 1, bias=False, name="conv3")
        y = net.batchnorm(y, name="bn3")
        shortcut = _shortcut(net, x, filters * expansion, stride)
        return net.add(y, shortcut, activation="relu", name="add")


def se_block(net: Network, x: Tensor, ratio: int = 16, name: Optional[str] = None) -> Tensor:
    """A squeeze-and-excitation block (Hu et al.): global average pool ('squeeze') - dense
    C/ratio + ReLU ('fc1') - dense C + sigmoid ('fc2') - x scaled channel-wise ('scale').
    Parameters: 2*C*C/r + C/r + C.

    >>> net = Network("se"); x = net.input("x", ("N", 256, 56, 56))
    >>> se_block(net, x, ratio=16, name="se")
    Tensor('se/scale', (1, 256, 56, 56))
    """
    with net.block(name, kind="se"):
        s = net.global_avg_pool(x, name="squeeze")
        if isinstance(ratio, bool) or not isinstance(ratio, int) or ratio < 1:
            raise net.error(f"ratio must be a positive int, got {ratio!r}")
        if x.channels // ratio < 1:
            raise net.error(f"{x.channels} channels / ratio {ratio} leaves no hidden units")
        s = net.dense(s, x.channels // ratio, activation="relu", name="fc1")
        s = net.dense(s, x.channels, activation="sigmoid", name="fc2")
        return net.multiply(x, s, name="scale")


def depthwise_separable(net: Network, x: Tensor, filters: int, stride: int = 1,
                        name: Optional[str] = None) -> Tensor:
    """A MobileNet v1 unit: 3x3 depthwise conv (the stride, padding 1) - BN - ReLU, then
    1x1 pointwise conv to ``filters`` - BN - ReLU. Convs have no bias.

    >>> net = Network("m"); x = net.input("x", ("N", 32, 112, 112))
    >>> depthwise_separable(net, x, 64, name="conv_dw_1")
    Tensor('conv_dw_1/pw_bn_relu', (1, 64, 112, 112))
    """
    with net.block(name, kind="depthwise_separable"):
        y = net.depthwise_conv(x, 3, stride=stride, padding=1, bias=False, name="dw")
        y = net.batchnorm(y, activation="relu", name="dw_bn")
        y = net.conv(y, filters, 1, bias=False, name="pw")
        return net.batchnorm(y, activation="relu", name="pw_bn")


def inverted_residual(net: Network, x: Tensor, filters: int, stride: int = 1,
                      expansion: int = 6, name: Optional[str] = None) -> Tensor:
    """A MobileNet v2 unit as torchvision builds it: 1x1 expansion to Cin*expansion - BN -
    ReLU6 (left out when expansion is 1), 3x3 depthwise (the stride) - BN - ReLU6, 1x1
    linear projection to ``filters`` - BN; x is added back when stride is 1 and the channels
    match. Convs have no bias.

    >>> net = Network("m"); x = net.input("x", ("N", 24, 56, 56))
    >>> inverted_residual(net, x, 24, name="features.3")
    Tensor('features.3/add', (1, 24, 56, 56))
    """
    with net.block(name, kind="inverted_residual"):
        if isinstance(expansion, bool) or not isinstance(expansion, int) or expansion < 1:
            raise net.error(f"expansion must be a positive int, got {expansion!r}")
        y = x
        if expansion != 1:
            y = net.conv(y, x.channels * expansion, 1, bias=False, name="expand")
            y = net.batchnorm(y, activation="relu6", name="expand_bn")
        y = net.depthwise_conv(y, 3, stride=stride, padding=1, bias=False, name="dw")
        y = net.batchnorm(y, activation="relu6", name="dw_bn")
        y = net.conv(y, filters, 1, bias=False, name="project")
        y = net.batchnorm(y, name="project_bn")
        if stride == 1 and x.channels == filters:
            y = net.add(x, y, name="add")
        return y


def dense_block(net: Network, x: Tensor, layers: int, growth_rate: int, bn_size: int = 4,
                name: Optional[str] = None) -> Tensor:
    """A DenseNet dense block: ``layers`` times BN - ReLU - 1x1 conv to bn_size*growth_rate
    - BN - ReLU - 3x3 conv to growth_rate, each layer's maps concatenated to its input
    ('NAME/denselayerI/concat'). Output channels: Cin + layers*growth_rate.

    >>> net = Network("d"); x = net.input("x", ("N", 64, 56, 56))
    >>> dense_block(net, x, 6, 32, name="denseblock1")
    Tensor('denseblock1/denselayer6/concat', (1, 256, 56, 56))
    """
    with net.block(name, kind="dense_block"):
        if isinstance(layers, bool) or not isinstance(layers, int) or layers < 1:
            raise net.error(f"layers must be a positive int, got {layers!r}")
        for i in range(layers):
            with net.block(f"denselayer{i + 1}"):
                y = net.batchnorm(x, activation="relu", name="norm1")
                y = net.conv(y, bn_size * growth_rate, 1, bias=False, name="conv1")
                y = net.batchnorm(y, activation="relu", name="norm2")
                y = net.conv(y, growth_rate, 3, padding=1, bias=False, name="conv2")
                x = net.concat([x, y], name="concat")
        return x


def transition(net: Network, x: Tensor, filters: int, name: Optional[str] = None) -> Tensor:
    """A DenseNet transition layer: BN - ReLU - 1x1 conv to ``filters`` (no bias) - 2x2
    average pool, stride 2.

    >>> net = Network("d"); x = net.input("x", ("N", 256, 56, 56))
    >>> transition(net, x, 128, name="transition1")
    Tensor('transition1/pool', (1, 128, 28, 28))
    """
    with net.block(name, kind="transition"):
        y = net.batchnorm(x, activation="relu", name="norm")
        y = net.conv(y, filters, 1, bias=False, name="conv")
        return net.avg_pool(y, 2, stride=2, name="pool")


def fire(net: Network, x: Tensor, squeeze: int, expand1x1: int, expand3x3: int,
         name: Optional[str] = None) -> Tensor:
    """A SqueezeNet fire module: 1x1 squeeze conv + ReLU, then 1x1 and 3x3 (padding 1)
    expand convs + ReLU side by side, concatenated. Output channels: expand1x1 + expand3x3.

    >>> net = Network("s"); x = net.input("x", ("N", 96, 54, 54))
    >>> fire(net, x, 16, 64, 64, name="fire2")
    Tensor('fire2/concat', (1, 128, 54, 54))
    """
    with net.block(name, kind="fire"):
        s = net.conv(x, squeeze, 1, activation="relu", name="squeeze")
        e1 = net.conv(s, expand1x1, 1, activation="relu", name="expand1x1")
        e3 = net.conv(s, expand3x3, 3, padding=1, activation="relu", name="expand3x3")
        return net.concat([e1, e3], name="concat")


# The vocabulary, for a DSL: layer methods of Network, and block functions.
LAYERS = ("conv", "depthwise_conv", "separable_conv", "sparse_conv", "max_pool", "avg_pool",
          "global_avg_pool", "global_max_pool", "subsample", "dense", "batchnorm", "lrn",
          "dropout", "activation", "relu", "sigmoid", "tanh", "softmax", "add", "multiply",
          "concat", "flatten", "reshape")
BLOCKS: dict[str, Callable[..., Tensor]] = {
    "inception": inception, "residual_basic": residual_basic,
    "residual_bottleneck": residual_bottleneck, "se_block": se_block,
    "depthwise_separable": depthwise_separable, "inverted_residual": inverted_residual,
    "dense_block": dense_block, "transition": transition, "fire": fire,
}

__all__ = ["Network", "Tensor", "BuildError", "OPSET", "MAX_NODES", "ACTIVATIONS", "LAYERS",
           "BLOCKS", *BLOCKS]
