"""Execution: compile passes, kernels, and the executor that runs a graph in its planned arena.

>>> import numpy as np, cnngraph
>>> g = random_weights(cnngraph.load("lenet5"))
>>> c = cnngraph.compile(g)
>>> c.run({"image": np.zeros((1, 1, 32, 32), np.float32)})["output"].shape
(1, 10)
"""

from __future__ import annotations

from ..ir import Graph
from .executor import Compiled, compile, run, set_threads
from .passes import drop_identities, fold_batchnorm, fold_constants, fuse_conv, optimize


def random_weights(graph: Graph, seed: int = 0) -> Graph:
    """``graph`` with fresh weights (He-normal, batch norm calibrated; see
    cnngraph.backends.export_onnx), by way of its ONNX export: a structure-only zoo model
    made runnable."""
    from ..backends.export_onnx import to_onnx
    from ..frontends.onnx import from_model

    return from_model(to_onnx(graph, weights="random", seed=seed), source=graph.source)


__all__ = ["Compiled", "compile", "run", "set_threads", "random_weights", "optimize",
           "drop_identities", "fold_constants", "fold_batchnorm", "fuse_conv"]
