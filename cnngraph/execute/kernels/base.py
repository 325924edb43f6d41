"""What every kernel shares: the workspace (scratch memory sized once for the hungriest step),
the compile context, and the op table: ``build_step`` picks a node's kernel, or the op's own
numpy reference (``reference_kernel``) for an op without one."""

from __future__ import annotations

import math
import os
from typing import Callable, Optional

import numpy as np

from ... import dtypes
from ...errors import UnsupportedOpError
from ...ops.base import Call, OpDef

Kernel = Callable[[], None]


# Set to 1 to run the numpy kernels even when the native ones are built (tests compare both).
NUMPY_ONLY_ENV = "CNNGRAPH_NUMPY_KERNELS"


class Slot:
    """A scratch array of one step; ``a`` is bound when the workspace is allocated."""

    __slots__ = ("shape", "dtype", "offset", "a")

    def __init__(self, shape, dtype, offset):
        self.shape, self.dtype, self.offset, self.a = tuple(shape), np.dtype(dtype), offset, None


class Workspace:
    """Scratch memory shared by every step: each step's slots start at offset 0 (steps run one
    at a time), so the workspace is as large as the hungriest step."""

    def __init__(self):
        self.slots: list[Slot] = []
        self.size = 0
        self._top = 0
        self.buffer: Optional[np.ndarray] = None

    def begin_step(self) -> None:
        self._top = 0

    def request(self, shape, dtype=np.float32) -> Slot:
        dtype = np.dtype(dtype)
        slot = Slot(shape, dtype, self._top)
        self._top += -(-math.prod(slot.shape) * dtype.itemsize // 64) * 64
        self.size = max(self.size, self._top)
        self.slots.append(slot)
        return slot

    def allocate(self) -> None:
        self.buffer = np.zeros(self.size, np.uint8)
        for s in self.slots:
            s.a = np.ndarray(s.shape, s.dtype, buffer=self.buffer, offset=s.offset)


class Context:
    """What kernels share while a graph compiles."""

    def __init__(self, threads: int):
        self.threads = threads
        self.workspace = Workspace()
        self.kinds: dict[str, str] = {}  # node -> kernel used ('numpy', 'native', 'reference')
        self.constants: set[str] = set()  # tensor names whose values are known now
        self.kind = "numpy"


def _numpy_only() -> bool:
    return os.environ.get(NUMPY_ONLY_ENV, "") not in ("", "0")


def native_conv_module():
    """cnngraph._native.conv, or None when it is not built (or numpy is asked for)."""
    if _numpy_only():
        return None
    try:
        from ..._native import native

        return native("conv")
    except ImportError:
        return None


STRIDED_BUFSIZE = 1024  # numpy's iterator buffer (elements) for kernels of strided adds


def chain(*fns) -> Kernel:
    fns = [f for f in fns if f is not None]
    if len(fns) == 1:
        return fns[0]

    def run():
        for f in fns:
            f()
    return run


BUILDERS: dict[str, Callable] = {}


def kernel(*op_types):
    def deco(fn):
        for t in op_types:
            BUILDERS[t] = fn
        return fn
    return deco


def build_step(ctx: Context, call: Call, ins: list, outs: list) -> Optional[Kernel]:
    """The kernel of one node (None: nothing to do, e.g. a view already in place)."""
    ctx.workspace.begin_step()
    ctx.kind = "numpy"
    fn = None
    builder = BUILDERS.get(call.node.op_type)
    if builder is not None and call.node.domain in ("", "ai.onnx"):
        fn = builder(ctx, call, ins, outs)
    if fn is NotImplemented or builder is None:
        ctx.kind = "reference"
        fn = reference_kernel(call, ins, outs)
    ctx.kinds[call.node.name] = ctx.kind
    return fn


def reference_kernel(call: Call, ins: list, outs: list) -> Kernel:
    """The op's numpy reference, its results copied into the output views (allocates: the
    path for ops without a dedicated kernel)."""
    op = call.op
    if type(op).evaluate is OpDef.evaluate:
        raise UnsupportedOpError(call.node, "has no kernel and no numpy reference to run it")
    call.values = list(ins)
    pairs = [(i, o) for i, o in enumerate(outs) if o is not None]

    def run():
        results = op.evaluate(call)
        for i, o in pairs:
            np.copyto(o, results[i], casting="unsafe")
    return run


def is_float(a) -> bool:
    return a is not None and a.dtype.kind == "f"


def float_op(outs) -> bool:
    return len(outs) == 1 and outs[0] is not None and outs[0].dtype.kind == "f"


CHUNK = 8192  # elements per pass of the multi-step element-wise kernels (temporaries in cache)


def chunked(ws: Workspace, x: np.ndarray, out: np.ndarray, slots: int, dtype, body):
    """A kernel calling body(x_chunk, out_chunk, *scratch) over CHUNK-element pieces of the
    flattened x and out, with ``slots`` scratch arrays of one chunk each."""
    fx, fo = x.reshape(-1), out.reshape(-1)
    size = fx.size
    chunk = max(1, min(size, CHUNK))
    scratch = [ws.request((chunk,), dtype) for _ in range(slots)]
    spans = [(i, min(size, i + chunk)) for i in range(0, size, chunk)]

    def run():
        bufs = [s.a for s in scratch]
        for i0, i1 in spans:
            m = i1 - i0
            body(fx[i0:i1], fo[i0:i1], *(b[:m] for b in bufs))
    return run


def same_memory(a: np.ndarray, b: np.ndarray) -> bool:
    """Whether b already is a's elements in a's layout (a view the planner placed there)."""
    return (a.shape == b.shape and a.dtype == b.dtype and a.flags.c_contiguous
            and b.flags.c_contiguous and a.size > 0
            and a.__array_interface__["data"][0] == b.__array_interface__["data"][0])


def dtype_of(t) -> np.dtype:
    return dtypes.numpy_dtype(t.dtype)


def native_run(native_kernel, args: tuple, ctx: Context, nbytes: int) -> Kernel:
    """A native kernel's run on ``args`` with scratch from the shared workspace (so it
    allocates nothing), its arguments checked once: bound at the first call (the workspace
    exists only once every step is built), the bound call (no checks in Python) from then on."""
    scratch = ctx.workspace.request((max(nbytes, 1),), np.uint8)
    threads = ctx.threads
    bound = None

    def run():
        nonlocal bound
        if bound is None:
            bound = native_kernel.bind(*args, threads=threads, scratch=scratch.a)
        bound()
    return run
