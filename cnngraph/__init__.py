"""cnngraph: exact shapes, parameters, FLOPs and memory for convolutional networks.

>>> import cnngraph
>>> a = cnngraph.analyze(cnngraph.load("light-bvlc_alexnet"))
>>> a.totals.params
60965224
>>> net = cnngraph.Network("tiny")
>>> x = net.input("x", ("N", 3, 32, 32))
>>> net.output(net.dense(net.conv(x, 8, 3, activation="relu"), 10))
>>> cnngraph.analyze(net.build()).totals.params
72234
"""

from . import errors
from .backends.export_onnx import export, to_onnx
from .backends.reference import run_reference
from .backends.render import render, to_dot
from .execute import Compiled, compile, run
from .frontends import load
from .frontends.builder import Network
from .passes.analysis import Analysis, analyze
from .passes.plan import MemoryPlan, plan_memory
from .passes.training import max_batch_size, training_memory

__version__ = "0.1.0"
__all__ = ["load", "analyze", "Analysis", "Network", "export", "to_onnx", "run_reference",
           "plan_memory", "MemoryPlan", "training_memory", "max_batch_size", "errors",
           "compile", "run", "Compiled",
           "render", "to_dot",
           "__version__"]
