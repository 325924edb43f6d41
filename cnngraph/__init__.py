"""cnngraph: exact shapes, parameters, FLOPs and memory for convolutional networks.

>>> import cnngraph
>>> a = cnngraph.analyze(cnngraph.load("light-bvlc_alexnet"))
>>> a.totals.params
60965224
"""

from . import errors
from .frontends import load
from .frontends.builder import Network as Network
from .passes.analysis import Analysis, analyze

__version__ = "0.1.0"
__all__ = ["load", "analyze", "Analysis", "errors", "__version__"]
