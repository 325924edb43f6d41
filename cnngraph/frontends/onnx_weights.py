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
from typing import NamedTuple, Optional

import numpy as np
import onnx

from .._native import native
from ..errors import LoadError

INLINE_BYTES = 4096  # payloads up to this size stay in the parsed model

# ONNX element types as little-endian numpy types: those read from a file as they are (the
# wire walk cuts only float, double, int64, int32 and float16: csrc/onnx_wire.pyx).
_DTYPES = {1: "<f4", 2: "u1", 3: "i1", 4: "<u2", 5: "<i2", 6: "<i4", 7: "<i8", 9: "?",
           10: "<f2", 11: "<f8", 12: "<u4", 13: "<u8"}


class Payload(NamedTuple):
    """Where one tensor's values sit in a file, and the file's state when the model was read."""
    path: str
    offset: int
    nbytes: int
    dtype: str
    stamp: Optional[tuple[int, int]]  # (size, mtime_ns): a changed file is refused, not
    # misread; None: the file was not there

    def read(self, shape: tuple[int, ...]) -> np.ndarray:
        st = _stat(self.path)
        if self.stamp is not None and _stamp(st) != self.stamp:
            raise LoadError(f"{self.path}: the file changed after it was loaded; load it again")
        dtype = np.dtype(self.dtype)
        count = self.nbytes // dtype.itemsize
        if count != int(np.prod(shape, dtype=np.int64)) or self.nbytes % dtype.itemsize:
            raise LoadError(f"{self.path}: a tensor of shape {shape} holds {self.nbytes} bytes "
                            f"of {dtype.name}")
        if self.offset < 0 or self.offset + self.nbytes > st.st_size:
            raise LoadError(f"{self.path}: a tensor of {self.nbytes} bytes at offset "
                            f"{self.offset} runs past the file's end ({st.st_size} bytes)")
        a = np.fromfile(self.path, dtype=dtype, count=count, offset=self.offset)
        return a.astype(dtype.newbyteorder("="), copy=False).reshape(shape)


def _stat(path: str) -> os.stat_result:
    try:
        return os.stat(path)
    except OSError as e:
        raise LoadError(f"{path}: cannot read the weights ({e.strerror})") from None


def _stamp(st: os.stat_result) -> tuple[int, int]:
    return st.st_size, st.st_mtime_ns


def external_payload(tensor: onnx.TensorProto, model_path: str) -> Optional[Payload]:
    """Where an initializer stored as external data sits (None: a type not read raw). The
    file must lie in the model's folder, as onnx's checker requires; it is read only when
    the values are asked for."""
    info = {e.key: e.value for e in tensor.external_data}
    dtype = _DTYPES.get(tensor.data_type)
    if dtype is None:
        return None
    location = info.get("location", "")
    base = os.path.dirname(os.path.abspath(model_path))
    path = os.path.normpath(os.path.join(base, location))
    if not location or os.path.isabs(location) or os.path.commonpath([base, path]) != base:
        raise LoadError(f"{model_path}: initializer '{tensor.name}' keeps its data at "
                        f"'{location}', which is not a file in the model's folder")
    try:
        offset = int(info.get("offset", 0))
        nbytes = int(info["length"]) if "length" in info else \
            int(np.prod(tuple(tensor.dims), dtype=np.int64)) * np.dtype(dtype).itemsize
    except ValueError:
        raise LoadError(f"{model_path}: initializer '{tensor.name}' has external data offset "
                        f"'{info.get('offset')}' and length '{info.get('length')}'") from None
    try:
        stamp = _stamp(os.stat(path))
    except OSError:
        stamp = None  # analysis needs no weights; reading them says the file is missing
    return Payload(path, offset, nbytes, dtype, stamp)


def load_lean(path: str) -> tuple[onnx.ModelProto, dict[str, Payload]]:
    """The model without its large initializer payloads, and where each of those is.

    Raises ValueError when the bytes are not well-formed protobuf (the caller words it).
    """
    stamp = _stamp(_stat(path))
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
