"""Kernels: for one node, a zero-argument callable that computes its outputs into arena views.

``build_step(ctx, call, ins, outs)`` picks the kernel: a dedicated one that writes through
``out=`` into preallocated buffers (so a step allocates nothing of its own; numpy's ufuncs may
still take a small iterator buffer when they broadcast), or, for an op without one, the op's
own numpy reference whose result is copied into the output views (``ctx.kinds`` says
'reference'). Scratch space a kernel needs (padded inputs, im2col columns, temporaries, the
native kernels' scratch) comes from the shared workspace (``Workspace``), sized once for the
hungriest step.

Outputs may share memory with inputs as the planner decides (cnngraph.passes.aliasing):
element-wise kernels are correct when ``out`` is one of their inputs, a view or a Concat
whose data already sits in place does nothing, and a FusedConv may write over its residual.

Convolutions and dense layers go through ``conv_kernel`` / ``dense_kernel``: the compiled
``PackedConv`` / ``PackedDense`` (cnngraph._native.conv) when built and the case fits, else
numpy im2col + BLAS (``CNNGRAPH_NUMPY_KERNELS=1`` forces numpy). That is the one place to
change when the native kernel's interface moves.

One module per family, as in cnngraph/ops: base (workspace, context, the op table), activation,
conv, linear, elementwise, norm, pool, reduce, shape. Importing this package registers them all.
"""

from . import activation, conv, elementwise, linear, norm, pool, reduce, shape  # noqa: F401
from .activation import activation_kernel
from .base import (
           BUILDERS,
           NUMPY_ONLY_ENV,
           Context,
           Kernel,
           Workspace,
           build_step,
           kernel,
           reference_kernel,
)
from .conv import conv_kernel, conv_numpy
from .linear import dense_kernel

__all__ = ["NUMPY_ONLY_ENV", "BUILDERS", "Context", "Kernel", "Workspace", "activation_kernel",
           "build_step", "conv_kernel", "conv_numpy", "dense_kernel", "kernel",
           "reference_kernel"]
