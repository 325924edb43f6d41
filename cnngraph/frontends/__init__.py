"""Frontends turn a model (an ONNX or .cnn file, a zoo or example name) into a Graph."""

from __future__ import annotations

import os

from ..errors import LoadError
from ..ir import Graph
from . import zoo
from .builder import Network as Network
from .dsl import load_dsl
from .onnx import from_model, load_onnx

# The real model-zoo graphs the onnx package ships (weights replaced by ConstantOfShape).
LIGHT_MODELS = ("bvlc_alexnet", "densenet121", "inception_v1", "inception_v2", "resnet50",
                "shufflenet", "squeezenet", "vgg19", "zfnet512")


def light_model_path(name: str) -> str:
    import onnx.backend.test

    root = os.path.join(os.path.dirname(onnx.backend.test.__file__), "data", "light")
    return os.path.join(root, f"light_{name}.onnx")


def examples() -> dict[str, str]:
    """Built-in example names -> files: 'light-resnet50' and the like."""
    return {f"light-{n}": light_model_path(n) for n in LIGHT_MODELS}


def load(model: str) -> Graph:
    """A Graph from an ONNX file, a .cnn file (the text DSL, docs/dsl.md), a zoo model's
    name (``cnngraph zoo``) or a built-in example's name (``examples()``).

    >>> load("googlenet").name, load("light-resnet50").name
    ('googlenet', 'resnet50')
    """
    if not os.path.exists(model) and os.sep not in model and "." not in model:
        path = zoo.resolve(model)
        if path is not None:
            return load_dsl(path)
        known = examples()
        if model in known:
            return load_onnx(known[model])
        raise LoadError(f"{model}: no such file, zoo model ({', '.join(zoo.names())}) or "
                        f"example ({', '.join(sorted(known))})")
    if model.endswith(".cnn"):
        return load_dsl(model)
    return load_onnx(model)


__all__ = ["load", "load_onnx", "from_model", "examples", "light_model_path"]
