"""One exception hierarchy. Every message is one line that names the file, node, op and shapes.

The CLI prints ``str(error)`` and exits with code 2 for any ``CnnGraphError``.
"""

from __future__ import annotations

import contextlib


class CnnGraphError(Exception):
    """Base of every error cnngraph raises for bad input."""

    # Whether str() already says where and that it is an error ('file:3:5: error: ...'), so
    # the CLI adds no prefix of its own.
    located = False

    def __init__(self, message: str, *, source: str | None = None):
        super().__init__(message)
        self.message = message
        self.source = source

    def with_source(self, source: str) -> "CnnGraphError":
        """Attach the file the error comes from (once, by the outermost caller that knows it)."""
        if self.source is None:
            self.source = source
        return self

    def __str__(self) -> str:
        return f"{self.source}: {self.message}" if self.source else self.message


class LoadError(CnnGraphError):
    """The file cannot be read as a model: missing, not ONNX, truncated."""


class GraphError(CnnGraphError):
    """The graph is malformed: a cycle, a tensor read but never defined, a duplicate name."""


class NodeError(CnnGraphError):
    """Something is wrong at one node; the message starts with the node and op."""

    def __init__(self, node, message: str, *, source: str | None = None):
        self.node_name = node.name
        self.op_type = node.op_type
        super().__init__(f"node '{node.name}' ({node.op_type}): {message}", source=source)

    def declared_at(self, origin: tuple) -> "NodeError":
        """Name the source line that declared the node (a DSL file), once."""
        if origin and "declared at" not in self.message:
            file, line, column = origin
            self.message += f" (declared at {file}:{line}:{column})"
            self.args = (self.message,)
        return self


class ShapeError(NodeError):
    """A shape rule failed: mismatched inputs, a kernel larger than its padded input, ..."""


class UnsupportedOpError(NodeError):
    """The op registry does not know this op type (or this form of it)."""


class InputShapeError(CnnGraphError):
    """A graph input has a dimension nobody gave a value for, or a bad --input-shape."""


class ExportError(CnnGraphError):
    """The graph cannot be written as asked: a weight without a value, an opset the converter
    cannot reach, an attribute ONNX cannot hold."""


@contextlib.contextmanager
def located_in(graph):
    """Errors raised inside name the graph's file, and a node's error its declaring line."""
    try:
        yield
    except NodeError as e:
        e.declared_at(graph.origins.get(e.node_name))
        e.with_source(graph.source or graph.name)
        raise
    except CnnGraphError as e:
        e.with_source(graph.source or graph.name)
        raise
