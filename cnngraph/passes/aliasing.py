"""Which activation tensors share storage: views, in-place outputs and Concat slices.

Three rules, applied in this order to the running nodes of a graph:

1. Views (``op.is_view``: Reshape, Flatten, Squeeze, Identity, Dropout...) alias input 0:
   a view and its source are one *value*.
2. In place (``inplace=True``): a node whose op lists input i in ``op.in_place``
   (element-wise ops, BN at inference, a fused conv's residual) writes its output over that
   input's value when the bytes are equal and the value dies there in every order: each of
   its other readers is an ancestor of the node, and it is neither a graph input nor a graph
   output. Values written over each other form one *storage*.
3. Concat elimination (``inplace=True``): when a Concat's inputs are contiguous slices of its
   output (everything before the axis has extent 1, e.g. a channel concat at batch 1), each
   input's storage becomes a slice of the output's, so producers write straight into it.
   Each slice keeps its own lifetime: from its producer to the last reader of the slice or of
   the output. Refused when an input is a graph input, already a slice, repeated, not the
   last value of its storage, or when the output is later written over in place.

The planner schedules and places *leaf storages* (storages that are not split into
slices); an eliminated Concat's output is the union of its slices, placed together.

>>> from cnngraph import Network
>>> from cnngraph.passes.shapes import infer_shapes
>>> net = Network("t"); x = net.input("x", (1, 4, 8, 8))
>>> a = net.relu(net.conv(x, 4, 3, padding=1))
>>> net.output(net.concat([a, net.conv(x, 2, 1)]))
>>> g = net.build(); al = alias(g, infer_shapes(g), [n for n in g.order()])
>>> sorted(set(al.leaf.values()))  # conv+relu share one storage; both convs are slices
['conv_1', 'conv_2', 'x']
"""

from __future__ import annotations

from typing import NamedTuple, Sequence

from ..ops import lookup
from .cost import tensor_bytes

_ANCESTRY_BUDGET = 4096  # nodes one in-place check may visit before giving up (conservative)


class Aliasing(NamedTuple):
    """``leaf[t]``: the leaf storage (named by its first tensor) at tensor t's offset: its
    own, or for an eliminated Concat's output the first slice. ``leaves``: leaf storage ->
    (its tensors, the tensors whose readers keep it alive, pinned). ``groups``: per
    outermost eliminated Concat, its leaves and their byte offsets in its output. The rest
    is what the rules were computed from: bytes, producer step (-1: graph input) and reader
    steps per tensor, and per node the nodes whose outputs it reads."""

    leaf: dict
    leaves: dict
    groups: list
    nbytes: dict
    producer: dict
    readers: dict
    preds: list


def alias(graph, shapes, order: Sequence[str], dtype: str = "float32",
          inplace: bool = True, training: bool = False) -> Aliasing:
    """The storages of the activations of ``order`` (running nodes, topologically sorted).

    ``training``: what the forward pass keeps for the backward pass. A value is written
    over in place only when no reader needs it for its gradient (every reader's op has
    ``grad_from_output``: ReLU over BN's output, the residual Add over the last BN's, as
    torchvision's in-place ReLU and ``out += identity`` do); no Concat is eliminated.
    """
    nodes = [graph.nodes[name] for name in order]
    types = shapes.types
    size: dict[str, int] = {}
    producer: dict[str, int] = {}
    for name in graph.input_names:
        if name in types:
            size[name] = tensor_bytes(shapes, name, dtype)
            producer[name] = -1
    readers: dict[str, list[int]] = {t: [] for t in size}
    preds: list[list[int]] = []
    for i, node in enumerate(nodes):
        ps = set()
        for t in node.inputs:
            r = readers.get(t)
            if r is not None and (not r or r[-1] != i):
                r.append(i)
                if producer[t] >= 0:
                    ps.add(producer[t])
        preds.append(sorted(ps))
        for o in node.outputs:
            if o and o in types:
                size[o] = tensor_bytes(shapes, o, dtype)
                producer[o] = i
                readers[o] = []
    outputs = set(graph.outputs)
    ops = [lookup(node) for node in nodes]
    # The maps below hold only the exceptions: a tensor is its own value, a value its own
    # storage, a storage its own last value and no slice, unless they say otherwise.

    # 1. values: a view joins its source's value
    value: dict[str, str] = {}  # view tensor -> its value
    views: dict[str, list[str]] = {}  # value -> its view tensors
    for i, node in enumerate(nodes):
        if ops[i].is_view and node.inputs and node.inputs[0] in size and node.outputs \
                and node.outputs[0] in size:
            v = value.get(node.inputs[0], node.inputs[0])
            value[node.outputs[0]] = v
            views.setdefault(v, []).append(node.outputs[0])

    def members(v):
        return [v] + views[v] if v in views else [v]

    # 2. storages: values written over each other in place (a chain, oldest first)
    storage: dict[str, str] = {}  # value -> the storage it was written into
    chain: dict[str, list[str]] = {}  # storage -> its values, when more than itself
    if inplace:
        for i, node in enumerate(nodes):
            if not ops[i].in_place or not node.outputs:
                continue
            out = node.outputs[0]
            if out not in size or out in value:
                continue
            for k in ops[i].in_place:
                if k >= len(node.inputs) or node.inputs[k] not in size:
                    continue
                v = value.get(node.inputs[k], node.inputs[k])
                st = storage.get(v, v)
                if (size[v] != size[out] or chain.get(st, (st,))[-1] != v or producer[st] < 0
                        or any(t in outputs for t in members(v))):
                    continue
                others = {r for t in members(v) for r in readers[t]} - {i}
                if others and not _all_ancestors(others, i, preds):
                    continue
                if training and not all(ops[r].grad_from_output or ops[r].is_view
                                        for r in others | {i}):
                    continue
                storage[out] = st
                chain.setdefault(st, [st]).append(out)
                break

    # 3. Concat elimination: an input's storage becomes a slice of the output's storage
    parent: dict[str, tuple[str, int]] = {}  # storage -> (storage it is a slice of, offset)
    if inplace and not training:
        for node in nodes:
            if node.op_type != "Concat" or not node.outputs or node.outputs[0] not in size:
                continue
            out = node.outputs[0]
            slices = _slices(node, types[out].shape, out, value, storage, chain, size,
                             producer, parent)
            if slices is None:
                continue
            so, offset = storage.get(out, out), 0
            for st in slices:
                parent[st] = (so, offset)
                offset += size[st]

    # leaf storages, what keeps each alive, and the groups Concat elimination made
    children: dict[str, list] = {}
    for c, (p, off) in parent.items():
        children.setdefault(p, []).append((off, c))
    for kids in children.values():
        kids.sort()

    def tensors_of(st):
        return [t for v in chain.get(st, (st,)) for t in members(v)]

    leaf: dict[str, str] = {}
    leaves: dict[str, tuple] = {}
    for t in size:
        if t in value or t in storage:
            continue  # reached from its storage below
        tensors = tensors_of(t) if t in chain or t in views else (t,)
        home = t
        while home in children:  # an eliminated Concat lives at its first slice
            home = children[home][0][1]
        for u in tensors:
            leaf[u] = home
        if t in children:
            continue
        keep, up = tensors, t  # a slice lives while any enclosing storage is read
        while up in parent:
            up = parent[up][0]
            keep = list(keep) + tensors_of(up)
        leaves[t] = (tensors, keep, any(u in outputs for u in keep))
    groups = []
    for st in children:
        if st not in parent:
            group: list = []
            _collect(st, 0, children, group)
            groups.append(group)
    return Aliasing(leaf, leaves, groups, size, producer, readers, preds)


def _all_ancestors(targets: set, node: int, preds) -> bool:
    """Whether every node in ``targets`` is an ancestor of ``node``: a walk up from it that
    never goes below the lowest target (nodes are numbered in a topological order)."""
    if max(targets) >= node:
        return False
    lowest, todo = min(targets), set(targets)
    stack, seen = [node], {node}
    while stack and todo:
        for u in preds[stack.pop()]:
            if u >= lowest and u not in seen:
                if len(seen) > _ANCESTRY_BUDGET:
                    return False
                seen.add(u)
                todo.discard(u)
                stack.append(u)
    return not todo


def _slices(node, shape, out, value, storage, chain, size, producer, parent):
    """The storages of a Concat's inputs, in order, if they can be slices of its output."""
    axis = node.attrs.get("axis", 0)
    axis = axis + len(shape) if axis < 0 else axis
    if any(d != 1 for d in shape[:axis]):
        return None  # the slices would interleave
    so = storage.get(out, out)
    if chain.get(so, (so,))[-1] != out:
        return None  # the output is written over later: its slices would be too
    result = []
    for t in node.inputs:
        if t not in size:
            return None  # a constant input: Concat copies
        v = value.get(t, t)
        st = storage.get(v, v)
        if (chain.get(st, (st,))[-1] != v or producer[st] < 0 or st in parent
                or st in result or size[st] == 0):
            return None
        result.append(st)
    return result if sum(size[st] for st in result) == size[out] else None


def _collect(s, base, children, group) -> None:
    for off, c in children[s]:
        if c in children:
            _collect(c, base + off, children, group)
        else:
            group.append((c, base + off))
