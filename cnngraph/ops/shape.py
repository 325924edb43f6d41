"""Shape and data-movement ops: Reshape, Flatten, Transpose, Squeeze, Unsqueeze, Concat, Split,
Slice, Gather, Shape, Size, Constant, ConstantOfShape, Cast, Pad, Resize, Upsample, Expand, Tile,
Where.

They move bytes and do no arithmetic (0 FLOPs), except Resize/Upsample's interpolation. Their
numpy references run during constant folding, where exported models compute shapes with
Shape -> Gather -> Unsqueeze -> Concat -> Reshape chains and weights with ConstantOfShape.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional, Sequence

import numpy as np

from ..dtypes import ITEMSIZE, from_onnx, name_of, numpy_dtype
from ..errors import CnnGraphError
from .base import Call, OpDef, TensorType, broadcast, normalize_axis, register, shape_str


# -- shared helpers ------------------------------------------------------------------------------
def _text(call: Call, name: str) -> str:
    """A string attribute (onnx hands them over as bytes)."""
    value = call.attr(name)
    return value.decode() if isinstance(value, bytes) else value


def _ints(values) -> list[int]:
    return [int(v) for v in np.asarray(values).reshape(-1)]


def _dims(call: Call, i: int, what: str) -> list[int]:
    """A 1-D integer input (shape, repeats, axes) that must be known at compile time."""
    return _ints(call.value(i, what))


def _optional_floats(call: Call, i: int, what: str) -> Optional[list[float]]:
    """An optional float input (Resize roi/scales); absent or empty means not given."""
    if not call.has_input(i):
        return None
    values = np.asarray(call.value(i, what), dtype=np.float64).reshape(-1)
    return values.tolist() if values.size else None


def _show(values: Sequence[float]) -> str:
    """Numbers as a reader wrote them: float32 scales print as 0.2, not 0.20000000298."""
    return "[" + ", ".join(f"{v:g}" for v in values) + "]"


def _axes(call: Call, axes: Sequence[int], rank: int) -> list[int]:
    """Axes normalized to [0, rank); an error if one is out of range or repeated."""
    result = [normalize_axis(call, int(a), rank) for a in axes]
    if len(set(result)) != len(result):
        raise call.error(f"axes {list(axes)} repeat an axis")
    return result


def _same_type(call: Call, shape: Sequence[int]) -> list[TensorType]:
    """One output with input 0's dtype."""
    return [TensorType(tuple(int(d) for d in shape), call.input(0).dtype)]


# -- reshaping views -----------------------------------------------------------------------------
class _View(OpDef):
    """The output is input 0's bytes under another shape."""

    is_view = True

    def evaluate(self, call: Call) -> list[np.ndarray]:
        return [call.values[0].reshape(self.infer(call)[0].shape)]


@register
class Reshape(_View):
    """Reshape to the shape input (opset 5+): 0 copies the input dim (unless allowzero),
    -1 is inferred from the element count."""

    op_type = "Reshape"
    attrs = {"allowzero": 0}
    attribute_inputs = (1,)

    def infer(self, call: Call) -> list[TensorType]:
        x = call.shape(0)
        target = _dims(call, 1, "shape")
        keep_zero = bool(call.attr("allowzero"))
        out = []
        for i, d in enumerate(target):
            if d == 0 and not keep_zero:
                if i >= len(x):
                    raise call.error(f"shape {target} copies dimension {i} with 0, but the "
                                     f"input {shape_str(x)} has rank {len(x)}")
                d = x[i]
            elif d < -1:
                raise call.error(f"shape {target} has a negative dimension {d}")
            out.append(d)
        if out.count(-1) > 1:
            raise call.error(f"shape {target} has more than one -1")
        size = math.prod(x)
        if -1 in out:
            rest = math.prod(d for d in out if d != -1)
            if rest == 0 or size % rest:
                raise call.error(f"cannot reshape {shape_str(x)} ({size} elements) to "
                                 f"{shape_str(target)}: {size} is not a multiple of {rest}")
            out[out.index(-1)] = size // rest
        elif math.prod(out) != size:
            raise call.error(f"cannot reshape {shape_str(x)} ({size} elements) to "
                             f"{shape_str(out)} ({math.prod(out)} elements)")
        return _same_type(call, out)


@register
class Flatten(_View):
    """(d0 .. d_axis-1, d_axis .. dn) -> 2-D (product before axis, product from axis)."""

    op_type = "Flatten"
    attrs = {"axis": 1}

    def infer(self, call: Call) -> list[TensorType]:
        x = call.shape(0)
        axis = int(call.attr("axis"))
        if not -len(x) <= axis <= len(x):  # axis may equal the rank here
            raise call.error(f"axis {axis} is out of range for rank {len(x)}")
        axis += len(x) if axis < 0 else 0
        return _same_type(call, (math.prod(x[:axis]), math.prod(x[axis:])))


@register
class Squeeze(_View):
    """Drop the given size-1 axes (attribute before opset 13, input from 13); all of them
    when no axes are given."""

    op_type = "Squeeze"
    attribute_inputs = (1,)

    def infer(self, call: Call) -> list[TensorType]:
        x = call.shape(0)
        axes = call.attr_or_input("axes", 1, since=13)
        if axes is None:
            axes = [i for i, d in enumerate(x) if d == 1]
        else:
            axes = _axes(call, axes, len(x))
            for a in axes:
                if x[a] != 1:
                    raise call.error(f"cannot squeeze axis {a} of size {x[a]}: only size-1 "
                                     f"axes can be removed")
        return _same_type(call, [d for i, d in enumerate(x) if i not in axes])


@register
class Unsqueeze(_View):
    """Insert size-1 axes at the given positions of the output (attribute before opset 13,
    input from 13)."""

    op_type = "Unsqueeze"
    attribute_inputs = (1,)

    def infer(self, call: Call) -> list[TensorType]:
        x = call.shape(0)
        axes = call.attr_or_input("axes", 1, since=13)
        if axes is None:
            raise call.error("axes are required")
        out = list(x)
        for a in sorted(_axes(call, axes, len(x) + len(axes))):
            out.insert(a, 1)
        return _same_type(call, out)


@register
class Transpose(OpDef):
    """Permute the axes: output axis i is input axis perm[i] (default: reversed)."""

    op_type = "Transpose"
    reorders_only = True
    attrs = {"perm": None}

    def perm(self, call: Call) -> list[int]:
        rank = call.input(0).rank
        perm = call.attr("perm")
        if perm is None:
            return list(range(rank))[::-1]
        perm = [int(p) for p in perm]
        if sorted(perm) != list(range(rank)):
            raise call.error(f"perm {perm} is not a permutation of the {rank} input axes")
        return perm

    def infer(self, call: Call) -> list[TensorType]:
        x = call.shape(0)
        return _same_type(call, [x[p] for p in self.perm(call)])

    def evaluate(self, call: Call) -> list[np.ndarray]:
        return [np.transpose(call.values[0], self.perm(call))]


# -- joining, splitting, selecting ---------------------------------------------------------------
@register
class Concat(OpDef):
    """Join the inputs along axis; every other dimension must match."""

    op_type = "Concat"

    def infer(self, call: Call) -> list[TensorType]:
        first = call.input(0)
        axis = normalize_axis(call, int(call.attr("axis")), first.rank)
        total = 0
        for i in range(len(call.inputs)):
            t = call.input(i)
            if t.rank != first.rank:
                raise call.error(f"input {i} has rank {t.rank} but input 0 has rank {first.rank}")
            if t.dtype != first.dtype:
                raise call.error(f"input {i} is {t.dtype} but input 0 is {first.dtype}")
            if any(a != b for k, (a, b) in enumerate(zip(t.shape, first.shape)) if k != axis):
                raise call.error(
                    f"input {i} has shape {shape_str(t.shape)} but input 0 has "
                    f"{shape_str(first.shape)}: every dimension except axis {axis} must match")
            total += t.shape[axis]
        out = list(first.shape)
        out[axis] = total
        return _same_type(call, out)

    def evaluate(self, call: Call) -> list[np.ndarray]:
        axis = normalize_axis(call, int(call.attr("axis")), call.input(0).rank)
        return [np.concatenate(call.values, axis=axis)]


@register
class Split(OpDef):
    """Cut input 0 along axis into the given sizes (split attribute before opset 13, input from
    13), into num_outputs pieces (opset 18, the last one smaller), or into equal pieces."""

    op_type = "Split"
    attrs = {"axis": 0}
    attribute_inputs = (1,)

    def sizes(self, call: Call) -> tuple[int, list[int]]:
        x = call.shape(0)
        axis = normalize_axis(call, int(call.attr("axis")), len(x))
        dim, n = x[axis], len(call.node.outputs)
        split = call.attr_or_input("split", 1, since=13)
        if split:
            split = [int(s) for s in split]
            if len(split) != n or sum(split) != dim or min(split) < 0:
                raise call.error(f"split {split} must be {n} non-negative sizes (one per "
                                 f"output) adding up to axis {axis}'s {dim}")
            return axis, split
        if call.opset >= 18 and call.has_attr("num_outputs"):
            pieces = int(call.attr("num_outputs"))
            chunk = -(-dim // pieces) if pieces > 0 else 0
            last = dim - chunk * (pieces - 1)
            if pieces != n or last < 0:
                raise call.error(f"num_outputs={pieces} cannot cut axis {axis} of size {dim} "
                                 f"into {n} outputs of {chunk} with a smaller last one")
            return axis, [chunk] * (n - 1) + [last]
        if dim % n:
            raise call.error(f"axis {axis} of size {dim} does not split into {n} equal outputs")
        return axis, [dim // n] * n

    def infer(self, call: Call) -> list[TensorType]:
        axis, sizes = self.sizes(call)
        x = call.input(0)
        return [TensorType(x.shape[:axis] + (s,) + x.shape[axis + 1:], x.dtype) for s in sizes]

    def evaluate(self, call: Call) -> list[np.ndarray]:
        axis, sizes = self.sizes(call)
        return np.split(call.values[0], np.cumsum(sizes)[:-1], axis=axis)


@register
class Slice(OpDef):
    """Strided slices per axis (starts/ends/axes as attributes before opset 10; starts, ends,
    axes, steps as inputs from 10). Negative indices count from the end; out-of-range ones
    are clamped as ONNX says, so INT_MAX ends mean "to the end"."""

    op_type = "Slice"
    attribute_inputs = (1, 2, 3, 4)

    def slices(self, call: Call) -> list[slice]:
        x = call.shape(0)
        starts = call.attr_or_input("starts", 1, since=10)
        ends = call.attr_or_input("ends", 2, since=10)
        if starts is None or ends is None:
            raise call.error("starts and ends are required")
        axes = call.attr_or_input("axes", 3, since=10) or list(range(len(starts)))
        steps = call.attr_or_input("steps", 4, since=10) or [1] * len(starts)
        if not len(starts) == len(ends) == len(axes) == len(steps):
            raise call.error(f"starts {starts}, ends {ends}, axes {axes} and steps {steps} "
                             f"must have the same length")
        result = [slice(None)] * len(x)
        for a, start, end, step in zip(_axes(call, axes, len(x)), starts, ends, steps):
            start, end, step, dim = int(start), int(end), int(step), x[a]
            if step == 0:
                raise call.error(f"step 0 on axis {a}")
            start += dim if start < 0 else 0
            end += dim if end < 0 else 0
            if step > 0:
                start, end = min(max(start, 0), dim), min(max(end, 0), dim)
            else:  # walking down: the end may be -1, just before index 0
                start, end = min(max(start, 0), dim - 1), min(max(end, -1), dim - 1)
            result[a] = slice(start, end if end >= 0 else None, step)
        return result

    def infer(self, call: Call) -> list[TensorType]:
        x = call.shape(0)
        return _same_type(call, [len(range(d)[s]) for d, s in zip(x, self.slices(call))])

    def evaluate(self, call: Call) -> list[np.ndarray]:
        return [call.values[0][tuple(self.slices(call))]]


@register
class Gather(OpDef):
    """Pick entries of data along axis by indices (negative ones count from the end):
    out = data[:axis] + indices + data[axis+1:]."""

    op_type = "Gather"
    attrs = {"axis": 0}

    def indices(self, call: Call, axis: int) -> Optional[np.ndarray]:
        """The indices normalized to [0, n) when known; an error if one is out of range."""
        idx = call.values[1]
        if idx is None:
            return None
        idx = np.asarray(idx, dtype=np.int64)
        n = call.shape(0)[axis]
        bad = idx[(idx < -n) | (idx >= n)]
        if bad.size:
            raise call.error(f"index {int(bad.flat[0])} is out of range for axis {axis} of "
                             f"size {n}")
        return np.where(idx < 0, idx + n, idx)

    def infer(self, call: Call) -> list[TensorType]:
        data, idx = call.shape(0), call.shape(1)
        axis = normalize_axis(call, int(call.attr("axis")), len(data))
        self.indices(call, axis)
        return _same_type(call, data[:axis] + idx + data[axis + 1:])

    def evaluate(self, call: Call) -> list[np.ndarray]:
        axis = normalize_axis(call, int(call.attr("axis")), call.input(0).rank)
        return [np.take(call.values[0], self.indices(call, axis), axis=axis)]


@register
class Where(OpDef):
    """Pick X where the condition holds, else Y, with multidirectional broadcasting. A
    selection, not arithmetic: 0 FLOPs."""

    op_type = "Where"

    def infer(self, call: Call) -> list[TensorType]:
        cond, x, y = call.input(0), call.input(1), call.input(2)
        if cond.dtype != "bool":
            raise call.error(f"the condition is {cond.dtype}, not bool")
        if x.dtype != y.dtype:
            raise call.error(f"X is {x.dtype} but Y is {y.dtype}")
        return [TensorType(broadcast(call, [cond.shape, x.shape, y.shape]), x.dtype)]

    def evaluate(self, call: Call) -> list[np.ndarray]:
        cond, x, y = call.values
        return [np.where(cond, x, y)]


# -- shapes as data ------------------------------------------------------------------------------
@register
class Shape(OpDef):
    """The input's shape as a 1-D int64 tensor, dims start:end (opset 15; clamped like
    Python slices)."""

    op_type = "Shape"
    attrs = {"start": 0, "end": None}
    shape_only = True

    def dims(self, call: Call) -> list[int]:
        end = call.attr("end")
        return list(call.shape(0)[int(call.attr("start")):None if end is None else int(end)])

    def infer(self, call: Call) -> list[TensorType]:
        return [TensorType((len(self.dims(call)),), "int64")]

    def evaluate(self, call: Call) -> list[np.ndarray]:
        return [np.array(self.dims(call), dtype=np.int64)]


@register
class Size(OpDef):
    """The input's element count as an int64 scalar."""

    op_type = "Size"
    shape_only = True

    def infer(self, call: Call) -> list[TensorType]:
        return [TensorType((), "int64")]

    def evaluate(self, call: Call) -> list[np.ndarray]:
        return [np.array(call.input(0).size, dtype=np.int64)]


@register
class Constant(OpDef):
    """A tensor from exactly one attribute: value (an array), value_float(s), value_int(s)."""

    op_type = "Constant"
    # attribute -> the dtype its python value is stored as (None: an array keeps its own)
    KINDS = {"value": None, "value_float": "float32", "value_floats": "float32",
             "value_int": "int64", "value_ints": "int64"}

    def array(self, call: Call) -> np.ndarray:
        given = list(call.node.attrs)
        if len(given) != 1 or given[0] not in self.KINDS:
            raise call.error(f"needs exactly one of {', '.join(self.KINDS)}; got "
                             f"{', '.join(given) or 'none'}")
        kind = self.KINDS[given[0]]
        value = np.asarray(call.node.attrs[given[0]], dtype=kind)
        if name_of(value.dtype) not in ITEMSIZE:
            raise call.error(f"element type {value.dtype} is not supported")
        return value

    def infer(self, call: Call) -> list[TensorType]:
        value = self.array(call)
        return [TensorType(value.shape, name_of(value.dtype))]

    def evaluate(self, call: Call) -> list[np.ndarray]:
        return [self.array(call)]


@register
class ConstantOfShape(OpDef):
    """A tensor of the shape given by input 0's value, filled with the one-element value
    attribute (float32 0 by default)."""

    op_type = "ConstantOfShape"
    attrs = {"value": np.zeros(1, dtype=np.float32)}
    attribute_inputs = (0,)

    def fill(self, call: Call) -> tuple[tuple[int, ...], np.ndarray]:
        shape = _dims(call, 0, "shape")
        if any(d < 0 for d in shape):
            raise call.error(f"shape {shape} has a negative dimension")
        value = np.asarray(call.attr("value"))
        if value.size != 1:
            raise call.error(f"value must hold one element, not {value.size}")
        return tuple(shape), value.reshape(())

    def infer(self, call: Call) -> list[TensorType]:
        shape, value = self.fill(call)
        return [TensorType(shape, name_of(value.dtype))]

    def evaluate(self, call: Call) -> list[np.ndarray]:
        shape, value = self.fill(call)
        return [np.full(shape, value, dtype=value.dtype)]


@register
class Cast(OpDef):
    """Convert the elements to the ONNX type code `to`."""

    op_type = "Cast"
    reorders_only = True

    def dtype(self, call: Call) -> str:
        try:
            return from_onnx(int(call.attr("to")))
        except CnnGraphError as e:
            raise call.error(f"to={call.attr('to')}: {e.message}") from None

    def infer(self, call: Call) -> list[TensorType]:
        return [TensorType(call.shape(0), self.dtype(call))]

    def evaluate(self, call: Call) -> list[np.ndarray]:
        return [call.values[0].astype(numpy_dtype(self.dtype(call)))]


# -- padding and repeating -----------------------------------------------------------------------
@register
class Pad(OpDef):
    """Pad (or, with negative pads, crop) each axis at both ends. Pads are an attribute before
    opset 11 and an input from 11; opset 18 adds an axes input. Modes: constant, reflect,
    edge, wrap (opset 19)."""

    op_type = "Pad"
    attrs = {"mode": "constant", "value": 0.0}
    attribute_inputs = (1, 2, 3)

    def widths(self, call: Call) -> list[tuple[int, int]]:
        x = call.shape(0)
        mode = _text(call, "mode")
        if mode not in ("constant", "reflect", "edge", "wrap"):
            raise call.error(f"mode '{mode}' is not one of constant, reflect, edge, wrap")
        pads = call.attr_or_input("pads", 1, since=11)
        if pads is None:
            raise call.error("pads are required")
        has_axes = call.opset >= 18 and call.has_input(3)
        axes = _axes(call, _dims(call, 3, "axes"), len(x)) if has_axes else range(len(x))
        if len(pads) != 2 * len(axes):
            raise call.error(f"pads {pads} must hold 2 values per padded axis ({len(axes)})")
        widths = [(0, 0)] * len(x)
        for k, a in enumerate(axes):
            begin, end = int(pads[k]), int(pads[k + len(axes)])
            kept = x[a] + min(begin, 0) + min(end, 0)  # what cropping leaves
            if kept < 0:
                raise call.error(f"pads ({begin}, {end}) crop more than axis {a}'s {x[a]}")
            if mode == "reflect" and max(begin, end) > 0 and max(begin, end) >= kept:
                raise call.error(f"reflect pads ({begin}, {end}) on axis {a} must be smaller "
                                 f"than its size {kept}")
            if mode in ("edge", "wrap") and kept == 0 and max(begin, end) > 0:
                raise call.error(f"{mode} padding of axis {a} needs a non-empty axis")
            widths[a] = (begin, end)
        return widths

    def infer(self, call: Call) -> list[TensorType]:
        return _same_type(call, [d + b + e for d, (b, e) in zip(call.shape(0), self.widths(call))])

    def evaluate(self, call: Call) -> list[np.ndarray]:
        widths = self.widths(call)
        if call.opset >= 11:
            value = call.values[2] if call.has_input(2) else 0
        else:
            value = call.attr("value")
        cropped = call.values[0][tuple(slice(-min(b, 0), d + min(e, 0))
                                       for d, (b, e) in zip(call.shape(0), widths))]
        grow = [(max(b, 0), max(e, 0)) for b, e in widths]
        mode = _text(call, "mode")
        if mode == "constant":
            return [np.pad(cropped, grow, constant_values=np.asarray(value).item())]
        return [np.pad(cropped, grow, mode=mode)]


@register
class Expand(OpDef):
    """Broadcast input 0 with the shape input's value (bidirectionally, like numpy)."""

    op_type = "Expand"
    attribute_inputs = (1,)

    def infer(self, call: Call) -> list[TensorType]:
        target = _dims(call, 1, "shape")
        if any(d < 0 for d in target):
            raise call.error(f"shape {target} has a negative dimension")
        return _same_type(call, broadcast(call, [call.shape(0), tuple(target)]))

    def evaluate(self, call: Call) -> list[np.ndarray]:
        return [np.broadcast_to(call.values[0], self.infer(call)[0].shape).copy()]


@register
class Tile(OpDef):
    """Repeat input 0 repeats[i] times along each axis i."""

    op_type = "Tile"
    attribute_inputs = (1,)

    def repeats(self, call: Call) -> list[int]:
        x = call.shape(0)
        repeats = _dims(call, 1, "repeats")
        if len(repeats) != len(x) or min(repeats, default=0) < 0:
            raise call.error(f"repeats {repeats} must be {len(x)} non-negative counts, one "
                             f"per input axis")
        return repeats

    def infer(self, call: Call) -> list[TensorType]:
        return _same_type(call, [d * r for d, r in zip(call.shape(0), self.repeats(call))])

    def evaluate(self, call: Call) -> list[np.ndarray]:
        return [np.tile(call.values[0], self.repeats(call))]


# -- resampling ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class _Resampling:
    """A resolved Resize/Upsample: output size and scale per axis, and how to interpolate."""

    out: tuple[int, ...]
    scales: tuple[float, ...]  # output/input per axis: the given scale, or derived from sizes
    mode: str  # nearest, linear, cubic
    transform: str  # coordinate_transformation_mode
    nearest: str  # nearest_mode; "legacy" = floor when upsampling, ceil when downsampling
    roi: Optional[tuple[tuple[float, float], ...]] = None  # tf_crop_and_resize only
    cubic_a: float = -0.75
    exclude_outside: bool = False
    extrapolation: float = 0.0
    antialias: bool = False

    def taps(self, axis: int) -> int:
        """Input samples one output sample reads on an axis (linear 2, cubic 4; antialias
        widens the kernel by 1/scale when downsampling)."""
        if self.mode == "nearest":
            return 1
        support = 1 if self.mode == "linear" else 2
        return 2 * math.ceil(support / self._stretch(axis))

    def _stretch(self, axis: int) -> float:
        return min(self.scales[axis], 1.0) if self.antialias else 1.0

    def weights(self, axis: int, n_in: int) -> tuple[np.ndarray, Optional[np.ndarray]]:
        """The (out, in) matrix that interpolates one axis, and which outputs fall outside
        the input (tf_crop_and_resize extrapolation), if any."""
        n_out, scale = self.out[axis], self.scales[axis]
        y = np.arange(n_out, dtype=np.float64)
        t, outside = self.transform, None
        if t == "align_corners":
            x = y * (n_in - 1) / (n_out - 1) if n_out > 1 else np.zeros(n_out)
        elif t == "asymmetric":
            x = y / scale
        elif t == "tf_crop_and_resize":
            start, end = self.roi[axis]
            if n_out > 1:
                x = start * (n_in - 1) + y * (end - start) * (n_in - 1) / (n_out - 1)
            else:
                x = np.full(n_out, 0.5 * (start + end) * (n_in - 1))
            outside = (x < 0) | (x > n_in - 1)
        elif t == "pytorch_half_pixel":
            x = (y + 0.5) / scale - 0.5 if n_out > 1 else np.zeros(n_out)  # as the spec says
        elif t == "half_pixel":
            x = (y + 0.5) / scale - 0.5
        elif t == "tf_half_pixel_for_nn":
            x = (y + 0.5) / scale
        else:  # half_pixel_symmetric: centre the implicit ROI when out was rounded
            offset = n_in / 2 * (1 - n_out / (scale * n_in))
            x = offset + (y + 0.5) / scale - 0.5
        rows = np.arange(n_out)
        matrix = np.zeros((n_out, n_in))
        if self.mode == "nearest":
            pick = {"round_prefer_floor": np.ceil(x - 0.5), "round_prefer_ceil": np.floor(x + 0.5),
                    "floor": np.floor(x), "ceil": np.ceil(x),
                    "legacy": np.ceil(x) if scale < 1 else np.floor(x)}[self.nearest]
            matrix[rows, np.clip(pick.astype(np.int64), 0, n_in - 1)] = 1.0
            return matrix, outside
        stretch = self._stretch(axis)
        reach = self.taps(axis) // 2
        base = np.floor(x).astype(np.int64)
        for k in range(1 - reach, reach + 1):
            index = base + k
            w = self._kernel(stretch * np.abs(x - index))
            if self.exclude_outside:
                w = np.where((index >= 0) & (index < n_in), w, 0.0)
            # Taps past the border read the edge sample (edge padding).
            np.add.at(matrix, (rows, np.clip(index, 0, n_in - 1)), w)
        # Linear and cubic kernels sum to 1 already; antialias and exclude_outside do not.
        return matrix / matrix.sum(axis=1, keepdims=True), outside

    def _kernel(self, d: np.ndarray) -> np.ndarray:
        if self.mode == "linear":
            return np.clip(1 - d, 0, None)
        a = self.cubic_a
        return np.where(d <= 1, ((a + 2) * d - (a + 3)) * d * d + 1,
                        np.where(d < 2, ((a * d - 5 * a) * d + 8 * a) * d - 4 * a, 0.0))

    def resized_axes(self, shape: Sequence[int]) -> list[int]:
        return [a for a, (n, m) in enumerate(zip(shape, self.out))
                if n != m or self.scales[a] != 1 or self.transform == "tf_crop_and_resize"]

    def apply(self, x: np.ndarray) -> np.ndarray:
        """Interpolate one axis at a time: every mode here is separable."""
        y = x.astype(np.float64)
        for axis in self.resized_axes(x.shape):
            matrix, outside = self.weights(axis, y.shape[axis])
            y = np.moveaxis(np.tensordot(matrix, y, axes=([1], [axis])), 0, axis)
            if outside is not None:
                mask = outside.reshape((-1,) + (1,) * (y.ndim - axis - 1))
                y = np.where(mask, self.extrapolation, y)
        if np.issubdtype(x.dtype, np.integer):
            info = np.iinfo(x.dtype)
            y = np.clip(np.rint(y), info.min, info.max)
        return y.astype(x.dtype)


def _scaled(call: Call, shape: Sequence[int], scales: Sequence[float]) -> list[int]:
    """floor(in * scale) per axis, in float32 as onnx and onnxruntime compute it."""
    if len(scales) != len(shape) or min(scales, default=1) <= 0:
        raise call.error(f"scales {_show(scales)} must be {len(shape)} positive numbers, one per "
                         f"input axis")
    out = [int(np.floor(np.float32(n) * np.float32(s))) for n, s in zip(shape, scales)]
    for a, (n, s, m) in enumerate(zip(shape, scales, out)):
        if m < 1:
            raise call.error(f"scale {s:g} on axis {a} of size {n} gives output size {m}")
    return out


class _Resampler(OpDef):
    """Shared by Resize and Upsample: shapes, the numpy reference and the cost of a plan."""

    attribute_inputs = (1, 2, 3)

    def plan(self, call: Call) -> _Resampling:
        raise NotImplementedError

    def infer(self, call: Call) -> list[TensorType]:
        return _same_type(call, self.plan(call).out)

    def evaluate(self, call: Call) -> list[np.ndarray]:
        return [self.plan(call).apply(call.values[0])]

    def other_flops(self, call: Call, outs: list[TensorType]) -> int:
        """flops = |Y| * sum over resized axes of (2*taps - 1): linear 3, cubic 7, nearest 0"""
        plan = self.plan(call)
        if plan.mode == "nearest":
            return 0
        # Interpolating one axis costs taps multiplies and taps-1 adds per output element.
        return outs[0].size * sum(2 * plan.taps(a) - 1
                                  for a in plan.resized_axes(call.shape(0)))


def _legacy_mode(call: Call) -> str:
    """Upsample and Resize-10 know nearest and linear (bilinear is Upsample-7's alias)."""
    mode = _text(call, "mode")
    if mode == "bilinear":
        mode = "linear"
    if mode not in ("nearest", "linear"):
        raise call.error(f"mode '{mode}' is not one of nearest, linear")
    return mode


_TRANSFORMS = ("half_pixel", "half_pixel_symmetric", "pytorch_half_pixel", "align_corners",
               "asymmetric", "tf_half_pixel_for_nn", "tf_crop_and_resize")


@register
class Resize(_Resampler):
    """Resize to floor(in * scale) per axis, or to the sizes input. Opset 10: inputs X, scales;
    11+: X, roi, scales, sizes; 18 adds axes, keep_aspect_ratio_policy and antialias."""

    op_type = "Resize"
    attrs = {"mode": "nearest", "coordinate_transformation_mode": "half_pixel",
             "nearest_mode": "round_prefer_floor", "cubic_coeff_a": -0.75, "exclude_outside": 0,
             "extrapolation_value": 0.0, "antialias": 0, "axes": None,
             "keep_aspect_ratio_policy": "stretch"}

    def plan(self, call: Call) -> _Resampling:
        x = call.shape(0)
        if call.opset < 11:  # asymmetric coordinates and "simple" nearest, as onnxruntime
            scales = _optional_floats(call, 1, "scales") or []
            return _Resampling(tuple(_scaled(call, x, scales)), tuple(scales),
                               _legacy_mode(call), "asymmetric", "legacy")
        mode, transform = _text(call, "mode"), _text(call, "coordinate_transformation_mode")
        nearest = _text(call, "nearest_mode")
        if mode not in ("nearest", "linear", "cubic"):
            raise call.error(f"mode '{mode}' is not one of nearest, linear, cubic")
        if transform not in _TRANSFORMS:
            raise call.error(f"coordinate_transformation_mode '{transform}' is not one of "
                             f"{', '.join(_TRANSFORMS)}")
        if nearest not in ("round_prefer_floor", "round_prefer_ceil", "floor", "ceil"):
            raise call.error(f"nearest_mode '{nearest}' is not one of round_prefer_floor, "
                             f"round_prefer_ceil, floor, ceil")
        axes = call.attr("axes")
        axes = _axes(call, axes, len(x)) if axes is not None else list(range(len(x)))
        scales = _optional_floats(call, 2, "scales")
        sizes = _optional_floats(call, 3, "sizes")
        if (scales is None) == (sizes is None):
            raise call.error("exactly one of scales and sizes must be given")
        what, given = ("scales", scales) if scales is not None else ("sizes", sizes)
        if len(given) != len(axes):
            raise call.error(f"{what} {_show(given)} must have one value per resized axis "
                             f"({len(axes)})")
        full_scales = [1.0] * len(x)
        out = list(x)
        if scales is not None:
            for a, s in zip(axes, scales):
                full_scales[a] = s
            out = _scaled(call, x, full_scales)
        else:
            sizes = [int(s) for s in sizes]
            if min(sizes) < 1:
                raise call.error(f"sizes {sizes} must be positive")
            policy = _text(call, "keep_aspect_ratio_policy")
            ratios = [s / x[a] for a, s in zip(axes, sizes)]
            if policy == "stretch":
                for a, s, r in zip(axes, sizes, ratios):
                    out[a], full_scales[a] = s, r
            elif policy in ("not_larger", "not_smaller"):
                r = min(ratios) if policy == "not_larger" else max(ratios)
                for a in axes:  # round half up, as the spec says
                    out[a], full_scales[a] = int(r * x[a] + 0.5), r
            else:
                raise call.error(f"keep_aspect_ratio_policy '{policy}' is not one of stretch, "
                                 f"not_larger, not_smaller")
        roi = None
        if transform == "tf_crop_and_resize":
            values = _optional_floats(call, 1, "roi")
            if values is None or len(values) != 2 * len(axes):
                raise call.error(f"tf_crop_and_resize needs an roi of 2 values per resized "
                                 f"axis ({len(axes)}), got {values}")
            pairs = [(0.0, 1.0)] * len(x)
            for k, a in enumerate(axes):
                pairs[a] = (values[k], values[k + len(axes)])
            roi = tuple(pairs)
        return _Resampling(
            tuple(out), tuple(full_scales), mode, transform, nearest, roi,
            float(call.attr("cubic_coeff_a")), bool(call.attr("exclude_outside")),
            float(call.attr("extrapolation_value")), bool(call.attr("antialias")))


@register
class Upsample(_Resampler):
    """Resize's predecessor: output floor(in * scale); scales an attribute in opset 7, an
    input from 9. Coordinates are asymmetric (out index / scale)."""

    op_type = "Upsample"
    attrs = {"mode": "nearest"}

    def plan(self, call: Call) -> _Resampling:
        scales = call.attr_or_input("scales", 1, since=9)
        if scales is None:
            raise call.error("scales are required")
        scales = [float(s) for s in scales]
        if min(scales, default=1.0) < 1:
            raise call.error(f"scales {_show(scales)} must be >= 1: Upsample cannot shrink")
        out = _scaled(call, call.shape(0), scales)
        return _Resampling(tuple(out), tuple(scales), _legacy_mode(call), "asymmetric", "legacy")
