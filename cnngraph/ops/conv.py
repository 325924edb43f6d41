"""Convolutions: Conv (grouped, depthwise, dilated, every auto_pad) and ConvTranspose."""

from __future__ import annotations

import math

import numpy as np

from .base import Call, OpDef, TensorType, register
from .window import Window, _ints, resolve


def _check_rank(call: Call, x: tuple, w: tuple) -> None:
    if len(x) < 3 or len(w) != len(x):
        raise call.error(f"input rank {len(x)} and weight rank {len(w)} must be equal and >= 3")


@register
class Conv(OpDef):
    op_type = "Conv"
    weight_inputs = (1, 2)
    attrs = {"auto_pad": "NOTSET", "group": 1}

    def window(self, call: Call):
        x, w = call.shape(0), call.shape(1)
        _check_rank(call, x, w)
        kernel = tuple(call.attr("kernel_shape")) if call.has_attr("kernel_shape") else w[2:]
        if tuple(kernel) != tuple(w[2:]):
            raise call.error(f"kernel_shape {list(kernel)} does not match weight {list(w[2:])}")
        return resolve(call, x[2:], tuple(w[2:]))

    def infer(self, call: Call) -> list[TensorType]:
        x, w = call.shape(0), call.shape(1)
        group = int(call.attr("group"))
        _check_rank(call, x, w)
        if group < 1 or x[1] % group or w[0] % group:
            raise call.error(f"group={group} must divide input channels {x[1]} and filters {w[0]}")
        if x[1] // group != w[1]:
            raise call.error(
                f"input has {x[1]} channels; with group={group} each filter must span "
                f"{x[1] // group}, but the weight spans {w[1]}")
        if call.has_input(2) and call.shape(2) != (w[0],):
            raise call.error(f"bias shape {list(call.shape(2))} must be [{w[0]}]")
        win = self.window(call)
        return [TensorType((x[0], w[0]) + win.out, call.input(0).dtype)]

    def macs(self, call: Call, outs: list[TensorType]) -> int:
        """macs = |Y| * Cin/group * prod(kernel)"""
        w = call.shape(1)
        return outs[0].size * math.prod(w[1:])

    def other_flops(self, call: Call, outs: list[TensorType]) -> int:
        """one add per output element for the bias"""
        return outs[0].size if call.has_input(2) else 0

    def evaluate(self, call: Call) -> list[np.ndarray]:
        x, w = call.values[0], call.values[1]
        b = call.values[2] if call.has_input(2) else None
        win = self.window(call)
        group = int(call.attr("group"))
        return [conv_reference(x, w, b, win.strides, win.pads, win.dilations, group)]


def conv_reference(x, w, b, strides, pads, dilations, group):
    """Plain numpy N-d convolution (cross-correlation, as ONNX defines it). Slow and obvious."""
    rank = x.ndim - 2
    n, c = x.shape[:2]
    m = w.shape[0]
    padding = [(0, 0), (0, 0)] + [(pads[i], pads[i + rank]) for i in range(rank)]
    xp = np.pad(x, padding)
    kernel = w.shape[2:]
    out_sp = [(xp.shape[2 + i] - dilations[i] * (kernel[i] - 1) - 1) // strides[i] + 1
              for i in range(rank)]
    cg, mg = c // group, m // group
    y = np.zeros((n, m, *out_sp), dtype=np.result_type(x, w))
    for g in range(group):
        xg = xp[:, g * cg:(g + 1) * cg]
        wg = w[g * mg:(g + 1) * mg]
        for k in np.ndindex(*kernel):
            index = tuple(
                slice(k[i] * dilations[i], k[i] * dilations[i] + strides[i] * (out_sp[i] - 1) + 1,
                      strides[i]) for i in range(rank))
            patch = xg[(slice(None), slice(None)) + index]  # n, cg, *out
            y[:, g * mg:(g + 1) * mg] += np.einsum("nc...,mc->nm...", patch, wg[(...,) + k])
    if b is not None:
        y += b.reshape((1, m) + (1,) * rank)
    return y


@register
class ConvTranspose(OpDef):
    """The gradient of Conv with respect to its input: every input element scatters a kernel-sized
    patch into the output. The weight is (Cin, Cout/group, *kernel)."""

    op_type = "ConvTranspose"
    weight_inputs = (1, 2)
    attrs = {"auto_pad": "NOTSET", "group": 1}

    def window(self, call: Call) -> Window:
        """Kernel, strides, dilations and the crop per side of the full scatter; ``out`` is the
        output's spatial shape.

        The full scatter is s*(n-1) + output_padding + d*(k-1) + 1 long; explicit pads crop it.
        output_shape (or SAME_*, which asks for n*s) fixes the output instead, and the crop is
        derived from it: the odd pixel goes to the end for SAME_UPPER, to the beginning otherwise
        (NOTSET, SAME_LOWER), as the ONNX spec says. An output_shape longer than the scatter is
        an error (onnxruntime rejects it too); SAME never pads the scatter out to n*s.
        """
        x, w = call.shape(0), call.shape(1)
        _check_rank(call, x, w)
        rank = len(x) - 2
        kernel = tuple(call.attr("kernel_shape")) if call.has_attr("kernel_shape") else w[2:]
        if tuple(kernel) != tuple(w[2:]):
            raise call.error(f"kernel_shape {list(kernel)} does not match weight {list(w[2:])}")
        strides = _ints(call, "strides", (1,) * rank, rank)
        dilations = _ints(call, "dilations", (1,) * rank, rank)
        output_padding = _ints(call, "output_padding", (0,) * rank, rank)
        if min(strides + dilations) < 1 or min(output_padding) < 0:
            raise call.error(f"strides {list(strides)} and dilations {list(dilations)} must be "
                             f"positive, output_padding {list(output_padding)} not negative")
        auto_pad = call.attr("auto_pad")
        if isinstance(auto_pad, bytes):
            auto_pad = auto_pad.decode()
        if auto_pad not in ("NOTSET", "SAME_UPPER", "SAME_LOWER", "VALID"):
            raise call.error(f"auto_pad '{auto_pad}' is not one of NOTSET, SAME_UPPER, "
                             f"SAME_LOWER, VALID")
        target = None
        if call.has_attr("output_shape"):
            target = _ints(call, "output_shape", (), rank)
        elif auto_pad in ("SAME_UPPER", "SAME_LOWER"):
            target = tuple(n * s for n, s in zip(x[2:], strides))
        pads = (_ints(call, "pads", (0,) * 2 * rank, 2 * rank)
                if auto_pad == "NOTSET" and target is None else (0,) * 2 * rank)
        begins, ends, out = [], [], []
        for i in range(rank):
            n, k, s, d = x[2 + i], kernel[i], strides[i], dilations[i]
            full = s * (n - 1) + output_padding[i] + d * (k - 1) + 1
            if target is None:
                pb, pe = pads[i], pads[i + rank]
                o = full - pb - pe
            else:
                o = target[i]
                total = full - o
                if total < 0 and not call.has_attr("output_shape"):
                    # SAME, but the scatter is shorter than n*s (kernel below the stride):
                    # onnxruntime and onnx.shape_inference keep the scatter as it is
                    total, o = 0, full
                elif total < 0:
                    raise call.error(
                        f"output size {o} on spatial axis {i} is larger than the {full} the "
                        f"transposed convolution produces from input {n} with kernel {k}, "
                        f"stride {s}, dilation {d}, output_padding {output_padding[i]}")
                small = total // 2
                pb, pe = (small, total - small) if auto_pad == "SAME_UPPER" else (total - small,
                                                                                  small)
            if o < 1:
                raise call.error(
                    f"output size {o} on spatial axis {i}: input {n}, kernel {k}, stride {s}, "
                    f"dilation {d}, output_padding {output_padding[i]}, padding ({pb}, {pe}); "
                    f"the padding crops away the whole output")
            begins.append(pb)
            ends.append(pe)
            out.append(o)
        return Window(tuple(kernel), strides, dilations, tuple(begins), tuple(ends), tuple(out))

    def infer(self, call: Call) -> list[TensorType]:
        x, w = call.shape(0), call.shape(1)
        group = int(call.attr("group"))
        _check_rank(call, x, w)
        if group < 1 or x[1] % group:
            raise call.error(f"group={group} must divide input channels {x[1]}")
        if x[1] != w[0]:
            raise call.error(f"input has {x[1]} channels but the weight is for {w[0]} "
                             f"(ConvTranspose weights are Cin x Cout/group x kernel)")
        m = w[1] * group
        if call.has_input(2) and call.shape(2) != (m,):
            raise call.error(f"bias shape {list(call.shape(2))} must be [{m}] "
                             f"(weight {list(w[:2])} with group={group})")
        win = self.window(call)
        return [TensorType((x[0], m) + win.out, call.input(0).dtype)]

    def macs(self, call: Call, outs: list[TensorType]) -> int:
        """macs = |X| * Cout/group * prod(kernel)"""
        return call.input(0).size * math.prod(call.shape(1)[1:])

    def other_flops(self, call: Call, outs: list[TensorType]) -> int:
        """one add per output element for the bias"""
        return outs[0].size if call.has_input(2) else 0

    def evaluate(self, call: Call) -> list[np.ndarray]:
        x, w = call.values[0], call.values[1]
        b = call.values[2] if call.has_input(2) else None
        win = self.window(call)
        return [conv_transpose_reference(x, w, b, win.strides, win.pads_begin, win.dilations,
                                         int(call.attr("group")), win.out)]


def conv_transpose_reference(x, w, b, strides, pads_begin, dilations, group, out):
    """Plain numpy N-d transposed convolution: scatter every input element times every kernel tap,
    then crop pads_begin and keep ``out`` per axis. Slow and obvious."""
    rank = x.ndim - 2
    n, c = x.shape[:2]
    cg, mg = c // group, w.shape[1]
    kernel = w.shape[2:]
    scatter = [strides[i] * (x.shape[2 + i] - 1) + dilations[i] * (kernel[i] - 1) + 1
               for i in range(rank)]
    # output_padding can ask for more than the scatter reaches: those positions get only the bias
    size = [max(scatter[i], pads_begin[i] + out[i]) for i in range(rank)]
    y = np.zeros((n, mg * group, *size), dtype=np.result_type(x, w))
    for g in range(group):
        xg = x[:, g * cg:(g + 1) * cg]
        wg = w[g * cg:(g + 1) * cg]
        for k in np.ndindex(*kernel):
            index = tuple(
                slice(k[i] * dilations[i],
                      k[i] * dilations[i] + strides[i] * (x.shape[2 + i] - 1) + 1, strides[i])
                for i in range(rank))
            y[(slice(None), slice(g * mg, (g + 1) * mg)) + index] += np.einsum(
                "nc...,cm->nm...", xg, wg[(...,) + k])
    y = y[(slice(None), slice(None)) + tuple(
        slice(pads_begin[i], pads_begin[i] + out[i]) for i in range(rank))]
    if b is not None:
        y = y + b.reshape((1, -1) + (1,) * rank)
    return y


# The activations a FusedConv applies after its bias and residual: name -> (FLOPs per element,
# numpy reference of y = f(x, *params)). ``params`` are Clip's (min, max), LeakyRelu's alpha,
# HardSigmoid's (alpha, beta).
FUSED_ACTIVATIONS = {
    "": (0, lambda x: x),
    "Relu": (1, lambda x: np.maximum(x, 0)),
    "Clip": (2, lambda x, lo, hi: np.minimum(np.maximum(x, lo), hi)),
    "LeakyRelu": (2, lambda x, alpha: np.where(x < 0, alpha * x, x)),
    "Sigmoid": (4, lambda x: 1 / (1 + np.exp(-x))),
    "Tanh": (1, np.tanh),
    "HardSigmoid": (4, lambda x, alpha, beta: np.clip(alpha * x + beta, 0, 1)),
    "HardSwish": (5, lambda x: x * np.clip(x / 6 + 0.5, 0, 1)),
}


@register
class FusedConv(Conv):
    """Y = act(Conv(X, W, B) + R): a Conv with its bias, an optional residual R (input 3, of
    Y's shape) and an activation (``activation``: '', Relu, Clip, LeakyRelu, Sigmoid, Tanh,
    HardSigmoid, HardSwish; its settings in ``activation_params``). cnngraph's compile passes
    make it (domain ''; ONNX has no such op); shapes and MACs are Conv's."""

    op_type = "FusedConv"
    attrs = {**Conv.attrs, "activation": "", "activation_params": ()}
    in_place = (3,)  # Y may overwrite the residual when it dies here

    def activation(self, call: Call):
        name = call.attr("activation")
        name = name.decode() if isinstance(name, bytes) else name
        if name not in FUSED_ACTIVATIONS:
            raise call.error(f"activation '{name}' is not one of "
                             f"{', '.join(a for a in FUSED_ACTIVATIONS if a)}")
        return name, tuple(float(p) for p in call.attr("activation_params"))

    def infer(self, call: Call) -> list[TensorType]:
        outs = super().infer(call)
        self.activation(call)
        if call.has_input(3) and call.shape(3) != outs[0].shape:
            raise call.error(f"residual shape {list(call.shape(3))} must be the output's "
                             f"{list(outs[0].shape)}")
        return outs

    def other_flops(self, call: Call, outs: list[TensorType]) -> int:
        """|Y| per bias and residual add, plus the activation's FLOPs per element"""
        per = int(call.has_input(2)) + int(call.has_input(3))
        per += FUSED_ACTIVATIONS[self.activation(call)[0]][0]
        return outs[0].size * per

    def evaluate(self, call: Call) -> list[np.ndarray]:
        (y,) = super().evaluate(call)
        if call.has_input(3):
            y = y + call.values[3]
        name, params = self.activation(call)
        return [np.asarray(FUSED_ACTIVATIONS[name][1](y, *params)).astype(y.dtype, copy=False)]
