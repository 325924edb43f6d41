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

import numpy as np

from .._native import native
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
          inplace: bool = True, training: bool = False, use_native: bool = True) -> Aliasing:
    """The storages of the activations of ``order`` (running nodes, topologically sorted).

    ``training``: what the forward pass keeps for the backward pass. A value is written
    over in place only when no reader needs it for its gradient (every reader's op has
    ``grad_from_output``: ReLU over BN's output, the residual Add over the last BN's, as
    torchvision's in-place ReLU and ``out += identity`` do); no Concat is eliminated.

    The rules run natively over integer arrays (csrc/aliasing.pyx); ``use_native=False``,
    or a graph that names one tensor twice, runs `alias_py`, the plain-Python twin.
    """
    if use_native:
        found = _alias_native(graph, shapes, order, dtype, inplace, training)
        if found is not None:
            return found
    return alias_py(graph, shapes, order, dtype, inplace, training)


def alias_py(graph, shapes, order: Sequence[str], dtype: str = "float32",
             inplace: bool = True, training: bool = False) -> Aliasing:
    """`alias` in plain Python: the native core's twin and test oracle."""
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
    return Aliasing(leaf, leaves, _groups(children, parent), size, producer, readers, preds)


# node flags of the native core
_VIEW, _GRAD_FROM_OUTPUT, _CONCAT = 1, 2, 4


class Table(NamedTuple):
    """`alias`'s result in numbers (csrc/aliasing.pyx): tensor k is ``names[k]`` with
    ``sizes[k]`` bytes and ``producer[k]``; ``core`` holds the decisions (readers, preds,
    value, storage, parent, offset...) and ``leaves`` the leaf storages (leaf_st, their
    tensors, keep lists, pinned, and the nodes reading them: cons_ptr/cons)."""

    names: list
    sizes: list
    producer: list
    outputs: set
    core: dict
    leaves: dict


def table(graph, shapes, order, dtype: str = "float32", inplace: bool = True,
          training: bool = False):
    """The native `alias` in numbers, or None when the graph names a tensor twice or
    ``order`` reads a tensor before making it (`alias_py` then answers)."""
    nodes = [graph.nodes[name] for name in order]
    types = shapes.types
    tid: dict[str, int] = {}
    names, sizes, producer = [], [], []
    for name in graph.input_names:
        if name in types:
            if name in tid:
                return None
            tid[name] = len(names)
            names.append(name)
            sizes.append(tensor_bytes(shapes, name, dtype))
            producer.append(-1)
    n = len(nodes)
    in_len, out0 = [0] * n, [-1] * n
    flags, ip_len, ip_k = [0] * n, [0] * n, []
    op_flags: dict = {}  # op class -> (flags, in_place)
    for i, node in enumerate(nodes):
        in_len[i] = len(node.inputs)
        for o in node.outputs:
            if o and o in types:
                if o in tid:
                    return None
                tid[o] = len(names)
                names.append(o)
                sizes.append(tensor_bytes(shapes, o, dtype))
                producer.append(i)
        if node.outputs:
            out0[i] = tid.get(node.outputs[0], -1)
        op = lookup(node)
        f = op_flags.get(type(op))
        if f is None:
            f = op_flags[type(op)] = ((_VIEW if op.is_view else 0)
                                      | (_GRAD_FROM_OUTPUT if op.grad_from_output else 0),
                                      tuple(op.in_place))
        flags[i] = f[0]
        if f[1]:
            ip_len[i] = len(f[1])
            ip_k.extend(f[1])
        if node.op_type == "Concat" and out0[i] >= 0:
            shape = types[node.outputs[0]].shape
            axis = node.attrs.get("axis", 0)
            axis = axis + len(shape) if axis < 0 else axis
            if not any(d != 1 for d in shape[:axis]):
                flags[i] |= _CONCAT
    i64 = np.int64
    get = tid.get
    in_ids = np.fromiter((get(t, -1) for node in nodes for t in node.inputs), dtype=i64,
                         count=sum(in_len))
    producer_a = np.array(producer, dtype=i64)
    reader = np.repeat(np.arange(n, dtype=i64), in_len)
    known = in_ids >= 0
    if (producer_a[in_ids[known]] >= reader[known]).any():
        return None  # not a topological order
    outputs = set(graph.outputs)
    T = len(names)
    is_output = np.fromiter((t in outputs for t in names), dtype=bool, count=T).astype(i64)

    def ptr(lens):
        out = np.zeros(len(lens) + 1, dtype=i64)
        np.cumsum(lens, out=out[1:])
        return out

    mod = native("aliasing")
    keys = ("rd_ptr", "rd_idx", "pr_ptr", "pr_idx", "value", "storage", "parent", "offset",
            "made", "vnext", "cnext")
    core = dict(zip(keys, mod.alias_arrays(
        n, ptr(in_len), in_ids, np.array(out0, dtype=i64), np.array(sizes, dtype=i64),
        producer_a, is_output, np.array(flags, dtype=i64), ptr(ip_len),
        np.array(ip_k, dtype=i64), bool(inplace), bool(training), _ANCESTRY_BUDGET)))
    leaves = mod.leaf_arrays(n, core["value"], core["storage"], core["parent"],
                             core["offset"], core["vnext"], core["cnext"], core["rd_ptr"],
                             core["rd_idx"], producer_a, is_output)
    return Table(names, sizes, producer, outputs, core, leaves)


def rows(ptr, idx) -> list:
    """The rows of a CSR pair, as lists."""
    ptr, idx = ptr.tolist(), idx.tolist()
    return [idx[ptr[k]:ptr[k + 1]] for k in range(len(ptr) - 1)]


def table_groups(tb: Table) -> list:
    """Per outermost eliminated Concat, its leaves and their offsets (as `alias` has them)."""
    parent, names = tb.core["parent"], tb.names
    sliced = np.flatnonzero(parent >= 0)
    sliced = sliced[np.argsort(tb.core["made"][sliced])]  # in the order the slices were made
    parent_of = {names[c]: (names[p], off) for c, p, off in
                 zip(sliced.tolist(), parent[sliced].tolist(),
                     tb.core["offset"][sliced].tolist())}
    children: dict[str, list] = {}
    for c, (p, off) in parent_of.items():
        children.setdefault(p, []).append((off, c))
    for kids in children.values():
        kids.sort()
    return _groups(children, parent_of)


def _alias_native(graph, shapes, order, dtype, inplace, training):
    """`alias` by the native core, named again; None where `table` declines."""
    tb = table(graph, shapes, order, dtype, inplace, training)
    if tb is None:
        return None
    names, lv = tb.names, tb.leaves
    in_leaf = [names[t] for t in lv["leaf_t"].tolist()]
    leaf = dict(zip(in_leaf, [names[t] for t in lv["leaf_home"].tolist()]))
    leaves: dict[str, tuple] = {}
    kp, keep_all = lv["keep_ptr"].tolist(), lv["keep"].tolist()
    sliced = (tb.core["parent"][lv["leaf_st"]] >= 0).tolist()
    for k, (t, lo, hi, plain, pin) in enumerate(zip(
            lv["leaf_st"].tolist(), lv["ten_lo"].tolist(), lv["ten_hi"].tolist(),
            lv["plain"].tolist(), lv["pinned"].tolist())):
        # the twin's types: a tuple for a tensor sharing nothing, else lists
        tensors = (names[t],) if plain else in_leaf[lo:hi]
        keep = [names[u] for u in keep_all[kp[k]:kp[k + 1]]] if sliced[k] else tensors
        leaves[names[t]] = (tensors, keep, bool(pin))
    return Aliasing(leaf, leaves, table_groups(tb), dict(zip(names, tb.sizes)),
                    dict(zip(names, tb.producer)),
                    dict(zip(names, rows(tb.core["rd_ptr"], tb.core["rd_idx"]))),
                    rows(tb.core["pr_ptr"], tb.core["pr_idx"]))


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


def _groups(children: dict, parent: dict) -> list:
    """One group per outermost sliced storage: its slices, nested ones flattened by _collect."""
    groups = []
    for st in children:
        if st not in parent:
            group: list = []
            _collect(st, 0, children, group)
            groups.append(group)
    return groups


def _collect(s, base, children, group) -> None:
    for off, c in children[s]:
        if c in children:
            _collect(c, base + off, children, group)
        else:
            group.append((c, base + off))
