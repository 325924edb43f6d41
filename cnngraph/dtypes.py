"""Element types: ONNX codes, numpy names, and the byte sizes memory is counted in."""

from __future__ import annotations

import numpy as np

from .errors import CnnGraphError

# ONNX TensorProto.DataType code -> numpy-style name. bfloat16 has no numpy type; it is
# only ever counted, never computed.
ONNX_TO_NAME = {
    1: "float32", 2: "uint8", 3: "int8", 4: "uint16", 5: "int16", 6: "int32", 7: "int64",
    9: "bool", 10: "float16", 11: "float64", 12: "uint32", 13: "uint64", 16: "bfloat16",
}
NAME_TO_ONNX = {v: k for k, v in ONNX_TO_NAME.items()}

ITEMSIZE = {
    "float32": 4, "float64": 8, "float16": 2, "bfloat16": 2, "int8": 1, "uint8": 1,
    "int16": 2, "uint16": 2, "int32": 4, "uint32": 4, "int64": 8, "uint64": 8, "bool": 1,
}

FLOAT_TYPES = frozenset({"float32", "float64", "float16", "bfloat16"})

# The dtypes a user may count activation and parameter memory in (--dtype).
COUNTING_DTYPES = ("float32", "float16", "bfloat16", "int8")


def from_onnx(code: int) -> str:
    try:
        return ONNX_TO_NAME[code]
    except KeyError:
        raise CnnGraphError(f"unsupported ONNX element type {code}") from None


def is_float(dtype: str) -> bool:
    return dtype in FLOAT_TYPES


def itemsize(dtype: str) -> int:
    return ITEMSIZE[dtype]


def numpy_dtype(dtype: str) -> np.dtype:
    """The numpy type values of this dtype are computed in (bfloat16 widens to float32)."""
    return np.dtype("float32" if dtype == "bfloat16" else dtype)


def name_of(array_dtype) -> str:
    return np.dtype(array_dtype).name


def check_counting_dtype(dtype: str) -> str:
    if dtype not in COUNTING_DTYPES:
        raise CnnGraphError(f"dtype '{dtype}' is not one of {', '.join(COUNTING_DTYPES)}")
    return dtype
