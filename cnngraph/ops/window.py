"""The sliding-window output-size rule shared by Conv, ConvTranspose and pooling."""

from __future__ import annotations

from typing import NamedTuple

from .base import Call


class Window(NamedTuple):
    """A resolved window: per spatial axis kernel, stride, dilation and padding per side."""

    kernel: tuple[int, ...]
    strides: tuple[int, ...]
    dilations: tuple[int, ...]
    pads_begin: tuple[int, ...]
    pads_end: tuple[int, ...]
    out: tuple[int, ...]

    @property
    def pads(self) -> tuple[int, ...]:
        """ONNX order: all begins, then all ends."""
        return self.pads_begin + self.pads_end


def _ints(call: Call, name: str, default, rank: int) -> tuple[int, ...]:
    value = tuple(map(int, call.node.attrs.get(name, default)))
    if len(value) != rank:
        raise call.error(f"attribute {name}={list(value)} needs {rank} values")
    return value


def resolve(call: Call, spatial: tuple[int, ...], kernel: tuple[int, ...],
            ceil_mode: bool = False, pooling: bool = False) -> Window:
    """Output size per axis: floor((n + p_begin + p_end - d*(k-1) - 1) / s) + 1.

    auto_pad SAME_* pads so that out = ceil(n / s), the odd pixel at the end (SAME_UPPER) or
    the beginning (SAME_LOWER); VALID pads nothing. With ceil_mode the division rounds up,
    but the last window must start inside the input or its left padding.
    A size that comes out below 1 is an error naming the kernel, stride and padding, as are
    negative pads and, for pooling, a pad as large as the window (it would only see padding).
    """
    rank = len(spatial)
    strides = _ints(call, "strides", (1,) * rank, rank)
    dilations = _ints(call, "dilations", (1,) * rank, rank)
    auto_pad = call.node.attrs.get("auto_pad", "NOTSET")
    if isinstance(auto_pad, bytes):
        auto_pad = auto_pad.decode()
    if min(strides + dilations + tuple(kernel), default=1) < 1:
        raise call.error(f"kernel {list(kernel)}, strides {list(strides)} and dilations "
                         f"{list(dilations)} must be positive")
    pads = _ints(call, "pads", (0,) * (2 * rank), 2 * rank) if auto_pad == "NOTSET" else None
    begins, ends, out = [], [], []
    for i in range(rank):
        n, k, s, d = spatial[i], kernel[i], strides[i], dilations[i]
        span = d * (k - 1) + 1
        if auto_pad in ("SAME_UPPER", "SAME_LOWER"):
            o = -(-n // s)
            total = max(0, (o - 1) * s + span - n)
            small = total // 2
            pb, pe = (small, total - small) if auto_pad == "SAME_UPPER" else (total - small, small)
        elif auto_pad == "VALID":
            pb = pe = 0
        elif auto_pad == "NOTSET":
            pb, pe = pads[i], pads[i + rank]
        else:
            raise call.error(f"auto_pad '{auto_pad}' is not one of NOTSET, SAME_UPPER, "
                             f"SAME_LOWER, VALID")
        if pb < 0 or pe < 0:
            raise call.error(f"padding ({pb}, {pe}) on spatial axis {i} must not be negative")
        if pooling and max(pb, pe) >= span:
            raise call.error(f"padding ({pb}, {pe}) on spatial axis {i} must be smaller than "
                             f"the window {span}: a window would see only padding")
        if auto_pad not in ("SAME_UPPER", "SAME_LOWER"):
            extent = n + pb + pe - span
            if extent < 0:
                o = 0
            elif ceil_mode:
                o = -(-extent // s) + 1
                if (o - 1) * s >= n + pb:  # last window would start in the right padding
                    o -= 1
            else:
                o = extent // s + 1
        if o < 1:
            raise call.error(
                f"output size {o} on spatial axis {i}: input {n}, kernel {k}, stride {s}, "
                f"dilation {d}, padding ({pb}, {pe}); the window is larger than the padded input")
        begins.append(pb)
        ends.append(pe)
        out.append(o)
    return Window(tuple(kernel), strides, dilations, tuple(begins), tuple(ends), tuple(out))
