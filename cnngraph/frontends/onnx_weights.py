"""Reading a large ONNX file without holding its weights in memory.

``onnx.load`` parses the whole file: a 550 MB VGG-16 costs the file's bytes plus the parsed
message (over 1 GB at its peak), and every weight read later is one more copy. Here the file
is memory-mapped and walked at the protobuf wire level (csrc/onnx_wire.pyx); each large tensor
payload (raw_data, or packed float_data / double_data) of an initializer is left out of the
bytes handed to ``onnx``, and its place in the file is kept instead. A Constant then reads
exactly its own bytes with one ``np.fromfile`` when a pass or the executor asks for them.
"""

from __future__ import annotations

import mmap
import os
from typing import NamedTuple

import numpy as np
import onnx

from .._native import native
from ..errors import LoadError

LEAN_FILE_BYTES = 16 << 20  # files from this size are read lean (small ones: onnx.load)
INLINE_BYTES = 4096  # payloads up to this size stay in the parsed model

# The element types whose payloads are cut (csrc/onnx_wire.pyx), as little-endian numpy types.
_DTYPES = {1: "<f4", 11: "<f8", 7: "<i8", 6: "<i4", 10: "<f2"}


class Payload(NamedTuple):
    """Where one tensor's values sit in its file, and the file's state when it was read."""
    path: str
    offset: int
    nbytes: int
    dtype: str
    stamp: tuple[int, int]  # (size, mtime_ns): a changed file is refused, not misread

    def read(self, shape: tuple[int, ...]) -> np.ndarray:
        st = _stat(self.path)
        if (st.st_size, st.st_mtime_ns) != self.stamp:
            raise LoadError(f"{self.path}: the file changed after it was loaded; load it again")
        dtype = np.dtype(self.dtype)
        count = self.nbytes // dtype.itemsize
        if count != int(np.prod(shape, dtype=np.int64)) or self.nbytes % dtype.itemsize:
            raise LoadError(f"{self.path}: a tensor of shape {shape} holds {self.nbytes} bytes "
                            f"of {dtype.name}")
        a = np.fromfile(self.path, dtype=dtype, count=count, offset=self.offset)
        return a.astype(dtype.newbyteorder("="), copy=False).reshape(shape)


def _stat(path: str) -> os.stat_result:
    try:
        return os.stat(path)
    except OSError as e:
        raise LoadError(f"{path}: cannot read the weights any more ({e.strerror})") from None


def load_lean(path: str) -> tuple[onnx.ModelProto, dict[str, Payload]]:
    """The model without its large initializer payloads, and where each of those is.

    Raises ValueError when the bytes are not well-formed protobuf (the caller words it).
    """
    st = _stat(path)
    stamp = (st.st_size, st.st_mtime_ns)
    with open(path, "rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as buf:
        view = memoryview(buf)
        try:
            stripped, cuts = native("onnx_wire").split_payloads(view, INLINE_BYTES)
        finally:
            view.release()
    model = onnx.ModelProto()
    model.ParseFromString(stripped)
    payloads = {}
    for name, data_type, offset, nbytes in cuts:
        payloads.setdefault(name.decode("utf-8", "replace"),
                            Payload(path, offset, nbytes, _DTYPES[data_type], stamp))
    return model, payloads
