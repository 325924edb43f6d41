"""The text DSL (``.cnn`` files): a hand-written tokenizer and recursive-descent parser whose
program runs against the builder, so one graph model exists. docs/dsl.md is the reference.

>>> g = parse_dsl('''
... input x: Nx1x32x32
... c1 = conv(6, 5, activation=tanh)     # reads x
... s2 = max_pool(2)
... ''', "tiny.cnn")
>>> g.name, g.order(), g.outputs
('tiny', ['c1', 'c1_tanh', 's2'], ['s2'])

Stages, each done before the next starts:
    tokenize -> parse (a syntax tree) -> check blocks (names, recursion) -> measure (the full
    expansion's size, before anything is built) -> run (builder calls under ``net.at``).

Every problem is a ``DslError`` at file:line:column. A builder error (a bad argument value, a
shape that does not fit) is caught at the statement that made the call and reported there,
at the argument it names when it names one.
"""

from __future__ import annotations

import difflib
import functools
import inspect
import os
import re
from dataclasses import dataclass, field
from typing import Any, Optional, Union

from ..errors import CnnGraphError, LoadError
from ..ir import Graph
from .builder import BLOCKS, LAYERS, Network, Tensor

MAX_REPEAT = 10_000  # copies in one repetition
MAX_LAYERS = 100_000  # layer calls in the whole expansion (built-in blocks count their layers)
MAX_CALL_DEPTH = 100  # user block calls nested in each other
MAX_NESTING = 50  # brackets, lists and scopes nested in each other (parser)
MAX_EXPRESSION_DEPTH = 100  # operators and lists in one expression's tree
MAX_FILE_BYTES = 10 * 1024 * 1024
MAX_INT_DIGITS = 18
_EXCERPT_WIDTH = 160  # longer source lines are cut around the caret

RESERVED = ("in", "true", "false")
_KEYWORD_STATEMENTS = ("network", "input", "output", "block")
# Names people reach for, and the layer they mean (suggestions only).
_ALIASES = {"fc": "dense", "linear": "dense", "gemm": "dense", "fully_connected": "dense",
            "bn": "batchnorm", "batch_norm": "batchnorm", "cat": "concat", "sum": "add",
            "mul": "multiply", "maxpool": "max_pool", "avgpool": "avg_pool",
            "dwconv": "depthwise_conv", "conv2d": "conv"}
# Layer calls a built-in block expands to (for the size check); dense_block: 5 per layer.
_BLOCK_LAYERS = {"inception": 8, "residual_basic": 7, "residual_bottleneck": 9, "se_block": 4,
                 "depthwise_separable": 4, "inverted_residual": 7, "transition": 3, "fire": 4}


class DslError(CnnGraphError):
    """A problem in DSL text, at ``file``:``line``:``column`` (1-based, in characters).

    ``str()`` is the position and message, then the source line and a caret under the column.

    >>> print(DslError("unknown layer 'convv' (did you mean 'conv'?)", "net.cnn", 2, 6,
    ...                "c2 = convv(16, 5)"))
    net.cnn:2:6: error: unknown layer 'convv' (did you mean 'conv'?)
    c2 = convv(16, 5)
         ^
    """

    located = True

    def __init__(self, message: str, file: str, line: int, column: int, text: str = ""):
        super().__init__(message, source=file)
        self.file, self.line, self.column, self.text = file, line, column, text

    def __str__(self) -> str:
        text, col = self.text, self.column
        if len(text) > _EXCERPT_WIDTH:  # a window around the column
            start = max(0, min(col - 1 - _EXCERPT_WIDTH // 2, len(text) - _EXCERPT_WIDTH))
            text = text[start:start + _EXCERPT_WIDTH]
            col -= start
        pad = "".join("\t" if c == "\t" else " " for c in text[:col - 1])
        pad += " " * (col - 1 - len(pad))
        return (f"{self.file}:{self.line}:{self.column}: error: {self.message}\n"
                f"{text}\n{pad}^")


class _Source:
    """The text being compiled: makes errors with their excerpt."""

    def __init__(self, text: str, filename: str):
        self.text, self.filename = text, filename
        self.lines = [line.rstrip("\r") for line in text.split("\n")]

    def error(self, message: str, line: int, column: int) -> DslError:
        text = self.lines[line - 1] if 0 < line <= len(self.lines) else ""
        return DslError(message, self.filename, line, column, text)


# -- tokens ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Token:
    kind: str  # NAME INT FLOAT STRING SHAPE OP END (newline or ';') EOF
    text: str
    line: int
    col: int
    value: Any = None


_NUMBER = r"\d+(?:_\d+)*"
_TOKEN_RE = re.compile(rf"""
    (?P<space>[ \t\r\f\v]+)
  | (?P<comment>\#[^\n]*)
  | (?P<end>[\n;])
  | (?P<float>{_NUMBER}(?:\.\d+(?:_\d+)*(?:[eE][+-]?\d+)?|[eE][+-]?\d+))
  | (?P<int>{_NUMBER})
  | (?P<name>[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z0-9_]+)*)
  | (?P<string>"[^"\n]*"|'[^'\n]*')
  | (?P<op>//|[()\[\]{{}},=+\-*:])
""", re.VERBOSE | re.ASCII)
_SHAPE_RE = re.compile(r"[ \t]*((?:\d+|[A-Za-z_][A-Za-z0-9_]*?)(?:[ \t]*x[ \t]*\d+)+"
                       r"|[A-Za-z_][A-Za-z0-9_]*|\d+)", re.ASCII)
_CLOSERS = {")": "(", "]": "[", "}": "{"}


def tokenize(src: _Source) -> list[Token]:
    """The tokens of the text. Newlines inside ( ) and [ ] are dropped; a shape is scanned
    after every ':' (the only place one may appear)."""
    text = src.text
    tokens: list[Token] = []
    opened: list[Token] = []  # open brackets
    pos, line, line_start = 0, 1, 0
    while pos < len(text):
        m = _TOKEN_RE.match(text, pos)
        col = pos - line_start + 1
        if m is None:
            ch = text[pos]
            if ch in "\"'":
                raise src.error("this string is not closed on its line", line, col)
            hint = (" (use // for floor division)" if ch == "/" else
                    " (names are ASCII letters, digits and _)" if ch.isalpha() else "")
            raise src.error(f"unexpected character {ch!r}{hint}", line, col)
        kind, piece = m.lastgroup, m.group()
        if kind == "end":
            if piece == "\n" and not (opened and opened[-1].text in "(["):
                tokens.append(Token("END", piece, line, col))
            elif piece == ";":
                tokens.append(Token("END", piece, line, col))
            if piece == "\n":
                line, line_start = line + 1, m.end()
        elif kind in ("int", "float"):
            digits = piece.replace("_", "")
            if kind == "int":
                follow = re.match(r"x\d", text[m.end():m.end() + 2])
                if follow:
                    shape = re.match(r"\d+(?:x\d+)+", text[pos:]).group()
                    raise src.error(f"'{shape}' is a shape, written only after 'input NAME:'; "
                                    f"write a kernel or stride as a list: "
                                    f"[{', '.join(shape.split('x'))}]", line, col)
                if len(digits.lstrip("0")) > MAX_INT_DIGITS:
                    raise src.error(f"the number {piece} is too large (at most "
                                    f"{MAX_INT_DIGITS} digits)", line, col)
                tokens.append(Token("INT", piece, line, col, int(digits)))
            else:
                value = float(digits)
                if value == float("inf"):
                    raise src.error(f"the number {piece} is too large", line, col)
                tokens.append(Token("FLOAT", piece, line, col, value))
        elif kind == "name":
            tokens.append(Token("NAME", piece, line, col))
        elif kind == "string":
            tokens.append(Token("STRING", piece, line, col, piece[1:-1]))
        elif kind == "op":
            tok = Token("OP", piece, line, col)
            if piece in "([{":
                opened.append(tok)
                if len(opened) > MAX_NESTING:
                    raise src.error(f"brackets nested more than {MAX_NESTING} deep", line, col)
            elif piece in _CLOSERS:
                if not opened:
                    raise src.error(f"unmatched '{piece}'", line, col)
                if opened[-1].text != _CLOSERS[piece]:
                    o = opened[-1]
                    raise src.error(f"'{piece}' does not match '{o.text}' opened at line "
                                    f"{o.line}, column {o.col}", line, col)
                opened.pop()
            tokens.append(tok)
            if piece == ":":
                s = _SHAPE_RE.match(text, m.end())
                if s and not re.match(r"[A-Za-z0-9_.]", text[s.end():s.end() + 1]):
                    tokens.append(_shape_token(src, s, line, line_start))
                    pos = s.end()
                    continue
        pos = m.end()
    if opened:
        o = opened[-1]
        raise src.error(f"'{o.text}' was never closed", o.line, o.col)
    if tokens:
        last = tokens[-1]
        end = (last.line, last.col + len(last.text)) if last.kind != "END" else (
            last.line, last.col)
    else:
        end = (1, 1)
    tokens.append(Token("EOF", "", *end))
    return tokens


def _shape_token(src: _Source, m: re.Match, line: int, line_start: int) -> Token:
    """A SHAPE token: value [(dim, column)], dim an int or (first only) a symbolic name."""
    start, piece = m.start(1), m.group(1)
    first = re.fullmatch(r"(\d+|[A-Za-z_][A-Za-z0-9_]*?)((?:[ \t]*x[ \t]*\d+)*)", piece)
    found = [(first.group(1), start)]
    found += [(d.group(1), start + first.start(2) + d.start(1))
              for d in re.finditer(r"[ \t]*x[ \t]*(\d+)", first.group(2))]
    dims = []
    for value, offset in found:
        col = offset - line_start + 1
        if value.isdigit():
            if len(value.lstrip("0")) > MAX_INT_DIGITS:
                raise src.error(f"the number {value} is too large (at most {MAX_INT_DIGITS} "
                                f"digits)", line, col)
            value = int(value)
        dims.append((value, col))
    return Token("SHAPE", piece, line, start - line_start + 1, dims)


def _describe(tok: Token) -> str:
    if tok.kind == "EOF":
        return "the end of the file"
    if tok.kind == "END":
        return "the end of the line" if tok.text == "\n" else "';'"
    if tok.kind == "SHAPE":
        return f"the shape '{tok.text}'"
    if tok.kind == "STRING":
        return tok.text
    return f"'{tok.text}'"


# -- the syntax tree ---------------------------------------------------------------------------
@dataclass
class Num:
    tok: Token
    value: Any  # int, float, bool or str (a quoted string)


@dataclass
class Name:
    tok: Token


@dataclass
class ListExpr:
    tok: Token
    items: list
    depth: int = 1


@dataclass
class BinOp:
    tok: Token  # the left operand's first token
    op: Token
    left: Any
    right: Any
    depth: int = 1


@dataclass
class Neg:
    tok: Token
    operand: Any
    depth: int = 1


@dataclass
class Arg:
    key: Optional[Token]
    expr: Any


@dataclass
class Call:
    name: Token
    args: list


@dataclass
class Repeat:
    tok: Token  # first token of the count
    count: Any
    call: Call


@dataclass
class Assign:
    name: Token
    value: Union[Call, Repeat]


@dataclass
class Scope:
    name: Token
    body: list


@dataclass
class InputDecl:
    tok: Token
    name: Token
    shape: Token


@dataclass
class OutputDecl:
    tok: Token
    names: list


@dataclass
class Param:
    name: Token
    default: Any = None


@dataclass
class BlockDef:
    tok: Token
    name: Token
    params: list
    body: list


@dataclass
class Program:
    network: Optional[Token]
    statements: list
    blocks: dict = field(default_factory=dict)


# -- the parser --------------------------------------------------------------------------------
class _Parser:
    """Recursive descent over the token list; one method per rule of the grammar."""

    def __init__(self, tokens: list[Token], src: _Source):
        self.toks, self.i, self.src = tokens, 0, src

    # helpers
    def peek(self, k: int = 0) -> Token:
        return self.toks[min(self.i + k, len(self.toks) - 1)]

    def next(self) -> Token:
        tok = self.toks[self.i]
        if tok.kind != "EOF":
            self.i += 1
        return tok

    @staticmethod
    def is_op(tok: Token, text: str) -> bool:
        return tok.kind == "OP" and tok.text == text

    @staticmethod
    def is_name(tok: Token, text: Optional[str] = None) -> bool:
        return tok.kind == "NAME" and (text is None or tok.text == text)

    def fail(self, message: str, tok: Token) -> DslError:
        return self.src.error(message, tok.line, tok.col)

    def expect_op(self, text: str, after: str) -> Token:
        tok = self.peek()
        if not self.is_op(tok, text):
            raise self.fail(f"expected '{text}' {after}, got {_describe(tok)}", tok)
        return self.next()

    def expect_name(self, what: str) -> Token:
        tok = self.peek()
        if tok.kind != "NAME":
            raise self.fail(f"expected {what}, got {_describe(tok)}", tok)
        if tok.text in RESERVED:
            raise self.fail(f"'{tok.text}' is reserved and cannot be {what}", tok)
        return self.next()

    def skip_ends(self) -> None:
        while self.peek().kind == "END":
            self.next()

    def end(self) -> None:
        tok = self.peek()
        if tok.kind == "END":
            self.next()
        elif not (tok.kind == "EOF" or self.is_op(tok, "}")):
            raise self.fail(f"expected the end of the statement, got {_describe(tok)}", tok)

    # rules
    def program(self) -> Program:
        self.skip_ends()
        network = None
        if self.is_name(self.peek(), "network") and self.peek(1).kind == "NAME":
            self.next()
            network = self.expect_name("the network's name")
            self.end()
        statements = []
        self.skip_ends()
        while self.peek().kind != "EOF":
            statements.append(self.statement(top=True))
            self.skip_ends()
        return Program(network, statements)

    def statement(self, top: bool):
        tok, after = self.peek(), self.peek(1)
        if (tok.kind == "NAME" and tok.text in _KEYWORD_STATEMENTS
                and not (after.kind == "OP" and after.text in "=({")):
            if not top:
                raise self.fail(f"'{tok.text}' is only allowed at the top level of the file",
                                tok)
            if tok.text == "network":
                raise self.fail("'network NAME' must be the first statement of the file", tok)
            return {"input": self.input_decl, "output": self.output_decl,
                    "block": self.block_def}[tok.text]()
        if tok.kind == "NAME" and tok.text not in RESERVED:
            if self.is_op(after, "="):
                name = self.next()
                self.next()
                value = self.assigned()
                self.end()
                return Assign(name, value)
            if self.is_op(after, "("):
                call = self.call()
                self.end()
                return call
            if self.is_op(after, "{"):
                name = self.next()
                body = self.body(f"scope '{name.text}'")
                self.end()
                return Scope(name, body)
            if self.is_name(after, "x"):
                rep = self.repetition()
                self.end()
                return rep
            if (tok.text in LAYERS or tok.text in BLOCKS) and (
                    after.kind in ("END", "EOF") or self.is_op(after, "}")):
                raise self.fail(f"'{tok.text}' is a layer or block: call it with parentheses, "
                                f"{tok.text}(...)", tok)
            raise self.fail(f"expected '=', '(' or '{{' after '{tok.text}', got "
                            f"{_describe(after)}", after)
        if tok.kind == "INT" or self.is_op(tok, "("):
            rep = self.repetition()
            self.end()
            return rep
        if tok.kind == "NAME":
            raise self.fail(f"'{tok.text}' is reserved and cannot start a statement", tok)
        raise self.fail(f"expected a statement, got {_describe(tok)}", tok)

    def input_decl(self) -> InputDecl:
        kw = self.next()
        name = self.expect_name("the input's name")
        self.expect_op(":", "after the input's name")
        shape = self.peek()
        if shape.kind != "SHAPE":
            raise self.fail(f"expected a shape such as 1x3x224x224 or Nx3x224x224 after ':', "
                            f"got {_describe(shape)}", shape)
        self.next()
        self.end()
        return InputDecl(kw, name, shape)

    def output_decl(self) -> OutputDecl:
        kw = self.next()
        names = [self.expect_name("the name of a tensor to output")]
        while self.is_op(self.peek(), ","):
            self.next()
            names.append(self.expect_name("the name of a tensor to output"))
        self.end()
        return OutputDecl(kw, names)

    def block_def(self) -> BlockDef:
        kw = self.next()
        name = self.expect_name("the block's name")
        self.expect_op("(", f"after 'block {name.text}' (the parameter list)")
        params: list[Param] = []
        while not self.is_op(self.peek(), ")"):
            p = Param(self.expect_name("a parameter name"))
            if self.is_op(self.peek(), "="):
                self.next()
                p.default = self.expr()
            params.append(p)
            if self.is_op(self.peek(), ","):
                self.next()
            elif not self.is_op(self.peek(), ")"):
                raise self.fail(f"expected ',' or ')' after the parameter, got "
                                f"{_describe(self.peek())}", self.peek())
        self.next()
        body = self.body(f"block '{name.text}'")
        self.end()
        return BlockDef(kw, name, params, body)

    def body(self, what: str) -> list:
        self.expect_op("{", f"to open the body of {what}")
        statements = []
        self.skip_ends()
        while not self.is_op(self.peek(), "}"):
            statements.append(self.statement(top=False))
            self.skip_ends()
        self.next()
        return statements

    def assigned(self):
        tok, after = self.peek(), self.peek(1)
        if tok.kind == "INT" or self.is_op(tok, "(") or (
                tok.kind == "NAME" and self.is_name(after, "x")):
            return self.repetition()
        if tok.kind == "NAME" and self.is_op(after, "("):
            return self.call()
        if tok.kind == "NAME" and self.is_op(after, "{"):
            raise self.fail("a scope is written 'NAME { ... }', without '='", tok)
        raise self.fail(f"expected a layer or block call after '=', got {_describe(tok)}", tok)

    def repetition(self) -> Repeat:
        tok = self.peek()
        if tok.kind == "INT":
            count = Num(self.next(), tok.value)
        elif self.is_op(tok, "("):
            self.next()
            count = self.expr()
            self.expect_op(")", "to close the repetition count")
        else:
            count = Name(self.expect_name("a repetition count"))
        x = self.peek()
        if not self.is_name(x, "x"):
            raise self.fail(f"expected 'x' after the repetition count, got {_describe(x)}", x)
        self.next()
        target, after = self.peek(), self.peek(1)
        if target.kind == "NAME" and self.is_op(after, "="):
            raise self.fail("a repeated call cannot be named; name the repetition instead: "
                            "'NAME = n x call(...)'", target)
        if not (target.kind == "NAME" and self.is_op(after, "(")):
            raise self.fail(f"expected a layer or block call after 'x', got "
                            f"{_describe(target)}", target)
        return Repeat(tok, count, self.call())

    def call(self) -> Call:
        name = self.expect_name("a layer or block name")
        self.next()  # '('
        args: list[Arg] = []
        keyword = False
        while not self.is_op(self.peek(), ")"):
            tok = self.peek()
            if tok.kind == "NAME" and self.is_op(self.peek(1), "="):
                key = self.expect_name("an argument name")
                self.next()
                args.append(Arg(key, self.expr()))
                keyword = True
            else:
                if keyword:
                    raise self.fail("a positional argument cannot follow a keyword argument",
                                    tok)
                args.append(Arg(None, self.expr()))
            if self.is_op(self.peek(), "(") and isinstance(args[-1].expr, Name):
                inner = args[-1].expr.tok
                raise self.fail(f"calls do not nest: put {inner.text}(...) on its own line "
                                f"before this one", inner)
            if self.is_op(self.peek(), ","):
                self.next()
            elif not self.is_op(self.peek(), ")"):
                raise self.fail(f"expected ',' or ')' after the argument, got "
                                f"{_describe(self.peek())}", self.peek())
        self.next()
        return Call(name, args)

    def nested(self, node, *children):
        """Set the node's depth; a tree deeper than MAX_EXPRESSION_DEPTH is an error (its
        evaluation recurses)."""
        node.depth = 1 + max((getattr(c, "depth", 0) for c in children), default=0)
        if node.depth > MAX_EXPRESSION_DEPTH:
            raise self.fail(f"this expression is more than {MAX_EXPRESSION_DEPTH} operators "
                            f"or lists deep", node.tok)
        return node

    def expr(self):
        left = self.term()
        while self.peek().kind == "OP" and self.peek().text in ("+", "-"):
            op = self.next()
            right = self.term()
            left = self.nested(BinOp(left.tok, op, left, right), left, right)
        return left

    def term(self):
        left = self.factor()
        while self.peek().kind == "OP" and self.peek().text in ("*", "//"):
            op = self.next()
            right = self.factor()
            left = self.nested(BinOp(left.tok, op, left, right), left, right)
        return left

    def factor(self):
        signs = []
        while self.is_op(self.peek(), "-"):
            signs.append(self.next())
        value = self.atom()
        if len(signs) % 2:  # - - x is x
            value = self.nested(Neg(signs[0], value), value)
        return value

    def atom(self):
        tok = self.next()
        if tok.kind in ("INT", "FLOAT", "STRING"):
            return Num(tok, tok.value)
        if tok.kind == "NAME":
            if tok.text in ("true", "false"):
                return Num(tok, tok.text == "true")
            return Name(tok)
        if self.is_op(tok, "("):
            e = self.expr()
            self.expect_op(")", "to close '('")
            return e
        if self.is_op(tok, "["):
            items = []
            while not self.is_op(self.peek(), "]"):
                items.append(self.expr())
                if self.is_op(self.peek(), ","):
                    self.next()
                elif not self.is_op(self.peek(), "]"):
                    raise self.fail(f"expected ',' or ']' in the list, got "
                                    f"{_describe(self.peek())}", self.peek())
            self.next()
            return self.nested(ListExpr(tok, items), *items)
        raise self.fail(f"expected a value, got {_describe(tok)}", tok)


# -- the builder's vocabulary ------------------------------------------------------------------
@dataclass(frozen=True)
class _Spec:
    """How a layer or built-in block takes its arguments."""

    inputs: str  # 'one' (x), 'two' (multiply), 'many' (add), 'list' (concat)
    params: tuple  # (name, takes a string, required) after the inputs, 'name' left out


@functools.lru_cache(maxsize=None)
def _spec(callee: str) -> _Spec:
    if callee in LAYERS:
        sig = list(inspect.signature(getattr(Network, callee)).parameters.values())[1:]
    else:
        sig = list(inspect.signature(BLOCKS[callee]).parameters.values())[1:]
    tensors, params = [], []
    for p in sig:
        ann = str(p.annotation)
        if p.name == "name":
            continue
        if "Tensor" in ann:
            tensors.append(p)
        else:
            takes_str = bool(re.search(r"\bstr\b|Padding", ann))
            params.append((p.name, takes_str, p.default is inspect.Parameter.empty))
    if len(tensors) == 2:
        inputs = "two"
    elif tensors[0].kind == inspect.Parameter.VAR_POSITIONAL:
        inputs = "many"
    elif "Sequence" in str(tensors[0].annotation):
        inputs = "list"
    else:
        inputs = "one"
    return _Spec(inputs, tuple(params))


def _suggest(name: str, candidates) -> str:
    candidates = sorted(set(candidates))
    if name.lower() in _ALIASES and _ALIASES[name.lower()] in candidates:
        return f" (did you mean '{_ALIASES[name.lower()]}'?)"
    close = difflib.get_close_matches(name, candidates, n=1, cutoff=0.7)
    return f" (did you mean '{close[0]}'?)" if close else ""


# -- the compiler --------------------------------------------------------------------------------
class _Scope:
    """The names of one body: a file, a block call's body, or an inline scope inside either.
    Inline scopes see outward (parent); a block body's root sees only its own names."""

    def __init__(self, parent: Optional["_Scope"], params: dict, current: Optional[Tensor],
                 leaf: Optional[str]):
        self.parent, self.params, self.current, self.leaf = parent, params, current, leaf
        self.names: dict[str, tuple[Tensor, Optional[Token]]] = {}
        self.unnamed_blocks = 0  # for 'leaf.k'

    def lookup(self, name: str) -> Optional[tuple[Tensor, Optional[Token]]]:
        scope = self
        while scope is not None:
            if name in scope.names:
                return scope.names[name]
            scope = scope.parent
        return None

    def visible(self) -> list[str]:
        names, scope = list(self.params), self
        while scope is not None:
            names += [n for n in scope.names if n != "in"]
            scope = scope.parent
        return names


class _Unknown:
    """A value the size check cannot know (it never guesses; the real run reports)."""

    def __repr__(self) -> str:
        return "?"


UNKNOWN = _Unknown()


def _freeze(value: Any) -> Any:
    if isinstance(value, list):
        return tuple(_freeze(v) for v in value)
    return value


class _Compiler:
    def __init__(self, program: Program, src: _Source):
        self.program, self.src = program, src
        self.net: Optional[Network] = None
        self.stack: list[tuple[str, Token]] = []  # user block calls being run
        self.sizes: dict = {}

    # -- errors --------------------------------------------------------------------------
    def error(self, message: str, tok: Token) -> DslError:
        if self.stack:
            calls = [f"in block '{b}' called at line {t.line}" for b, t in reversed(self.stack)]
            if len(calls) > 4:  # the innermost and the outermost say enough
                calls = calls[:2] + [f"... {len(calls) - 3} more"] + calls[-1:]
            message = f"{message} ({', '.join(calls)})"
        return self.src.error(message, tok.line, tok.col)

    # -- checks before running ------------------------------------------------------------
    def collect_blocks(self) -> None:
        blocks = self.program.blocks
        for stmt in self.program.statements:
            if not isinstance(stmt, BlockDef):
                continue
            name = stmt.name.text
            if name in blocks:
                raise self.error(f"block '{name}' is already defined at line "
                                 f"{blocks[name].name.line}", stmt.name)
            if name in LAYERS:
                raise self.error(f"'{name}' is a layer; a block cannot take a layer's name",
                                 stmt.name)
            seen: dict[str, Token] = {}
            defaults = False
            for p in stmt.params:
                if p.name.text in seen:
                    raise self.error(f"block '{name}' has two parameters named "
                                     f"'{p.name.text}'", p.name)
                if p.default is None and defaults:
                    raise self.error(f"parameter '{p.name.text}' needs a default: it follows "
                                     f"one that has a default", p.name)
                defaults = defaults or p.default is not None
                seen[p.name.text] = p.name
            if not stmt.body:
                raise self.error(f"block '{name}' is empty", stmt.name)
            blocks[name] = stmt

    def check_recursion(self) -> None:
        """A block that calls itself, directly or through others, is an error naming the
        cycle, at the call that closes it (calls are static: every cycle would run forever)."""
        blocks = self.program.blocks
        calls = {name: [c for c in self._calls(b.body) if c.name.text in blocks]
                 for name, b in blocks.items()}
        done: set[str] = set()
        for root in blocks:
            if root in done:
                continue
            # depth-first, with an explicit stack: a chain of blocks may be long
            path, on_path = [root], {root}
            todo = [iter(calls[root])]
            while todo:
                call = next(todo[-1], None)
                if call is None:
                    todo.pop()
                    done.add(path[-1])
                    on_path.discard(path.pop())
                    continue
                callee = call.name.text
                if callee in on_path:
                    cycle = path[path.index(callee):] + [callee]
                    if len(cycle) > 12:
                        cycle = cycle[:5] + [f"... {len(cycle) - 10} more"] + cycle[-5:]
                    raise self.src.error(f"block '{callee}' calls itself: "
                                         f"{' -> '.join(cycle)}", call.name.line, call.name.col)
                if callee not in done:
                    path.append(callee)
                    on_path.add(callee)
                    todo.append(iter(calls[callee]))

    def _calls(self, body: list):
        for stmt in body:
            if isinstance(stmt, Call):
                yield stmt
            elif isinstance(stmt, Repeat):
                yield stmt.call
            elif isinstance(stmt, Assign):
                yield stmt.value.call if isinstance(stmt.value, Repeat) else stmt.value
            elif isinstance(stmt, Scope):
                yield from self._calls(stmt.body)

    # -- the size check: the expansion, counted without building ----------------------------
    def measure(self) -> None:
        names = {s.name.text for s in self.program.statements if isinstance(s, InputDecl)}
        self._size_body(self.program.statements, {}, [names], "the network")

    def _size_body(self, body: list, env: dict, names: list, what: str) -> int:
        total = 0
        for stmt in body:
            n = self._size_stmt(stmt, env, names)
            total += n
            if total > MAX_LAYERS:
                tok = self._first_token(stmt)
                raise self.error(f"{what} grows to {total:,} layers here, over the limit of "
                                 f"{MAX_LAYERS:,}", tok)
        return total

    @staticmethod
    def _first_token(stmt) -> Token:
        if isinstance(stmt, (Assign, Scope)):
            return stmt.name
        if isinstance(stmt, Call):
            return stmt.name
        return stmt.tok

    def _size_stmt(self, stmt, env: dict, names: list) -> int:
        if isinstance(stmt, Call):
            return self._size_call(stmt, env, names)
        if isinstance(stmt, Repeat):
            return self._size_repeat(stmt, env, names)
        if isinstance(stmt, Assign):
            if isinstance(stmt.value, Repeat):
                n = self._size_repeat(stmt.value, env, names + [set()])
            else:
                n = self._size_call(stmt.value, env, names)
            names[-1].add(stmt.name.text)
            return n
        if isinstance(stmt, Scope):
            n = self._size_body(stmt.body, env, names + [set()], f"scope '{stmt.name.text}'")
            names[-1].add(stmt.name.text)
            return n
        return 0

    def _size_repeat(self, rep: Repeat, env: dict, names: list) -> int:
        count = self._dry_value(rep.count, env)
        if isinstance(count, bool) or not isinstance(count, int):
            count = 1
        if count > MAX_REPEAT:
            raise self.error(f"repetition count {count:,} is over the limit of {MAX_REPEAT:,}",
                             rep.count.tok)
        n = max(count, 0) * self._size_call(rep.call, env, names)
        if n > MAX_LAYERS:
            raise self.error(f"{count:,} x {rep.call.name.text}(...) expands to {n:,} layers, "
                             f"over the limit of {MAX_LAYERS:,}", rep.tok)
        return n

    def _size_call(self, call: Call, env: dict, names: list) -> int:
        callee = call.name.text
        if callee in LAYERS:
            return 1
        user = self.program.blocks.get(callee)
        if user is None and callee in BLOCKS:
            if callee != "dense_block":
                return _BLOCK_LAYERS.get(callee, 10)
            layers = self._dry_args(call, [p for p, _, _ in _spec(callee).params], env,
                                    names).get("layers")
            n = 5 * layers + 1 if isinstance(layers, int) and not isinstance(layers, bool) \
                else 1
            if n > MAX_LAYERS:
                raise self.error(f"dense_block(...) expands to {n:,} layers, over the limit "
                                 f"of {MAX_LAYERS:,}", call.name)
            return n
        if user is None:
            return 1  # the run reports the unknown name
        bound = self._dry_args(call, [p.name.text for p in user.params], env, names)
        inner: dict = {}
        for p in user.params:
            if p.name.text in bound:
                inner[p.name.text] = bound[p.name.text]
            elif p.default is not None:
                inner[p.name.text] = self._dry_value(p.default, inner)
            else:
                inner[p.name.text] = UNKNOWN
        key = (callee, tuple((k, _freeze(v)) for k, v in inner.items()))
        if key not in self.sizes:
            if len(self.stack) >= MAX_CALL_DEPTH:
                raise self.error(f"block calls are nested more than {MAX_CALL_DEPTH} deep",
                                 call.name)
            self.stack.append((callee, call.name))
            try:
                self.sizes[key] = self._size_body(user.body, inner, [{"in"}],
                                                  f"block '{callee}'")
            finally:
                self.stack.pop()
        return self.sizes[key]

    def _dry_args(self, call: Call, params: list, env: dict, names: list) -> dict:
        positional = [a.expr for a in call.args if a.key is None]
        if positional and isinstance(positional[0], Name) and (
                positional[0].tok.text not in env
                and any(positional[0].tok.text in s for s in names)):
            positional = positional[1:]  # the input
        bound = {p: self._dry_value(e, env) for p, e in zip(params, positional)}
        for a in call.args:
            if a.key is not None:
                bound[a.key.text] = self._dry_value(a.expr, env)
        return bound

    def _dry_value(self, expr, env: dict) -> Any:
        if isinstance(expr, Num):
            return expr.value
        if isinstance(expr, Name):
            return env.get(expr.tok.text, UNKNOWN)
        if isinstance(expr, ListExpr):
            return [self._dry_value(e, env) for e in expr.items]
        if isinstance(expr, Neg):
            v = self._dry_value(expr.operand, env)
            return -v if _is_number(v) else UNKNOWN
        if isinstance(expr, BinOp):
            a, b = self._dry_value(expr.left, env), self._dry_value(expr.right, env)
            if not (_is_number(a) and _is_number(b)):
                return UNKNOWN
            try:
                return _arith(expr.op.text, a, b)
            except (ZeroDivisionError, OverflowError):
                return UNKNOWN
        return UNKNOWN

    # -- the run --------------------------------------------------------------------------
    def run(self) -> Network:
        self.collect_blocks()
        self.check_recursion()
        self.measure()
        prog = self.program
        if prog.network is not None:
            name = prog.network.text
        else:
            stem = os.path.splitext(os.path.basename(self.src.filename))[0]
            name = stem if stem and not self.src.filename.startswith("<") else "network"
        self.net = Network(name)
        top = _Scope(None, {}, None, None)
        outputs: list[tuple[Tensor, Token]] = []
        declared_outputs = False
        for stmt in prog.statements:
            if isinstance(stmt, BlockDef):
                continue
            if isinstance(stmt, InputDecl):
                self.declare_input(stmt, top)
            elif isinstance(stmt, OutputDecl):
                declared_outputs = True
                for tok in stmt.names:
                    found = top.lookup(tok.text)
                    if found is None:
                        raise self.error(f"undefined name '{tok.text}'"
                                         f"{_suggest(tok.text, top.visible())}", tok)
                    if any(t.name == found[0].name for t, _ in outputs):
                        raise self.error(f"'{tok.text}' is already an output", tok)
                    outputs.append((found[0], tok))
            else:
                self.statement(stmt, top)
        if not self.net.inputs:
            raise self.src.error("the file declares no input; start with one, e.g. "
                                 "'input x: 1x3x224x224'", 1, 1)
        if len(self.net) == 0:
            end = prog.statements[-1] if prog.statements else None
            tok = self._first_token(end) if end is not None else Token("EOF", "", 1, 1)
            raise self.error("the file has no layers", tok)
        if not declared_outputs:
            outputs = [(top.current, None)]
        for tensor, tok in outputs:
            try:
                self.net.output(tensor)
            except CnnGraphError as e:  # not expected: the checks above come first
                raise self.error(e.message, tok or self._first_token(prog.statements[-1])) \
                    from None
        return self.net

    def declare_input(self, stmt: InputDecl, scope: _Scope) -> None:
        self.define_check(stmt.name, scope)
        dims = []
        for i, (dim, col) in enumerate(stmt.shape.value):
            if isinstance(dim, int) and dim < 1:
                raise self.src.error(f"dimension {i} of input '{stmt.name.text}' is {dim}; "
                                     f"dimensions must be positive", stmt.shape.line, col)
            dims.append(dim)
        with self.net.at(self.origin(stmt.name)):
            try:
                t = self.net.input(stmt.name.text, tuple(dims))
            except CnnGraphError as e:
                raise self.error(e.message, stmt.name) from None
        scope.names[stmt.name.text] = (t, stmt.name)
        scope.current = t

    def origin(self, tok: Token) -> tuple[str, int, int]:
        return (self.src.filename, tok.line, tok.col)

    def define_check(self, tok: Token, scope: _Scope) -> None:
        name = tok.text
        if name in scope.params:
            raise self.error(f"'{name}' is a parameter of this block and cannot name a tensor",
                             tok)
        found = scope.lookup(name)
        if found is not None:
            where = f" (first defined at line {found[1].line})" if found[1] else ""
            raise self.error(f"duplicate name '{name}'{where}", tok)

    def statement(self, stmt, scope: _Scope) -> None:
        if isinstance(stmt, Call):
            scope.current = self.call(stmt, scope, None)
        elif isinstance(stmt, Repeat):
            scope.current = self.repeat(stmt, scope)
        elif isinstance(stmt, Assign):
            self.define_check(stmt.name, scope)
            if isinstance(stmt.value, Repeat):
                out = self.scope(stmt.name, [stmt.value], scope)
            else:
                out = self.call(stmt.value, scope, stmt.name)
            scope.names[stmt.name.text] = (out, stmt.name)
            scope.current = out
        elif isinstance(stmt, Scope):
            self.define_check(stmt.name, scope)
            if not stmt.body:
                raise self.error(f"scope '{stmt.name.text}' is empty", stmt.name)
            out = self.scope(stmt.name, stmt.body, scope)
            scope.names[stmt.name.text] = (out, stmt.name)
            scope.current = out
        else:  # pragma: no cover - the parser allows nothing else here
            raise AssertionError(stmt)

    def scope(self, name: Token, body: list, parent: _Scope) -> Tensor:
        with self.net.at(self.origin(name)):
            try:
                with self.net.block(name.text, kind="scope"):
                    inner = _Scope(parent, parent.params, parent.current, name.text)
                    for stmt in body:
                        self.statement(stmt, inner)
            except DslError:
                raise
            except CnnGraphError as e:
                raise self.error(e.message, name) from None
        if inner.current is None:
            raise self.error("nothing to read: declare an input first, e.g. "
                             "'input x: 1x3x224x224'", name)
        return inner.current

    def repeat(self, rep: Repeat, scope: _Scope) -> Tensor:
        count = self.value(rep.count, scope, "value", "the repetition count")
        if isinstance(count, bool) or not isinstance(count, int):
            raise self.error(f"the repetition count must be a whole number, got "
                             f"{_show(count)}", rep.count.tok)
        if count < 0:
            raise self.error(f"the repetition count must be 0 or more, got {count}",
                             rep.count.tok)
        if count > MAX_REPEAT:  # measure() caught literal ones already
            raise self.error(f"repetition count {count:,} is over the limit of "
                             f"{MAX_REPEAT:,}", rep.count.tok)
        for _ in range(count):
            scope.current = self.call(rep.call, scope, None)
        return scope.current

    # -- calls ------------------------------------------------------------------------------
    def call(self, call: Call, scope: _Scope, name: Optional[Token]) -> Tensor:
        callee = call.name.text
        user = self.program.blocks.get(callee) if callee not in LAYERS else None
        if user is None and callee not in LAYERS and callee not in BLOCKS:
            candidates = list(LAYERS) + list(BLOCKS) + list(self.program.blocks)
            raise self.error(f"unknown layer '{callee}'{_suggest(callee, candidates)}",
                             call.name)
        for a in call.args:
            if a.key is not None and a.key.text == "name":
                raise self.error(f"name a layer by assigning it: "
                                 f"'NAME = {callee}(...)', not with name=", a.key)
        node_name = name.text if name is not None else None
        if node_name is None and (user is not None or callee in BLOCKS) and scope.leaf:
            node_name = f"{scope.leaf}.{scope.unnamed_blocks}"
            scope.unnamed_blocks += 1
        if user is not None:
            return self.call_user(call, user, scope, node_name, name)
        return self.call_builder(call, scope, node_name, name)

    def previous(self, scope: _Scope, call: Call) -> Tensor:
        if scope.current is None:
            raise self.error("nothing to read: declare an input first, e.g. "
                             "'input x: 1x3x224x224'", call.name)
        return scope.current

    def tensor_ref(self, expr, scope: _Scope) -> Optional[Tensor]:
        """The tensor a bare name refers to, or None if expr is not one."""
        if not isinstance(expr, Name) or expr.tok.text in scope.params:
            return None
        found = scope.lookup(expr.tok.text)
        return found[0] if found else None

    def must_tensor(self, expr, scope: _Scope, callee: str) -> Tensor:
        t = self.tensor_ref(expr, scope)
        if t is not None:
            return t
        if isinstance(expr, Name):
            self.check_in(expr, scope)
            raise self.error(f"undefined name '{expr.tok.text}'"
                             f"{_suggest(expr.tok.text, scope.visible())}", expr.tok)
        raise self.error(f"{callee} reads tensors: expected the name of a tensor here",
                         expr.tok)

    def check_in(self, expr: Name, scope: _Scope) -> None:
        if expr.tok.text == "in" and scope.lookup("in") is None:
            raise self.error("'in' is the input of a block: it is only defined inside a "
                             "block's body", expr.tok)

    def bind(self, call: Call, positional: list, params: list, what: str) -> dict:
        """Argument expressions by parameter name (positional after the inputs, then
        keywords); reports too many, unknown and repeated arguments."""
        bound: dict[str, Any] = {}
        if len(positional) > len(params):
            extra = positional[len(params)]
            if not params:
                raise self.error(f"{what} takes no arguments after its input", extra.tok)
            raise self.error(f"{what} takes at most {len(params)} argument"
                             f"{'s' if len(params) > 1 else ''} after its input "
                             f"({', '.join(params)}), got {len(positional)}", extra.tok)
        for p, expr in zip(params, positional):
            bound[p] = expr
        for a in call.args:
            if a.key is None:
                continue
            key = a.key.text
            if key not in params:
                raise self.error(f"{what} has no argument '{key}'{_suggest(key, params)}",
                                 a.key)
            if key in bound:
                raise self.error(f"{what} got argument '{key}' twice", a.key)
            bound[key] = a.expr
        return bound

    def call_builder(self, call: Call, scope: _Scope, node_name: Optional[str],
                     name: Optional[Token]) -> Tensor:
        callee = call.name.text
        spec = _spec(callee)
        positional = [a.expr for a in call.args if a.key is None]
        explicit: dict[str, Any] = {}  # argument name -> expression, for error positions
        if spec.inputs == "list":
            if not positional or not isinstance(positional[0], ListExpr):
                tok = positional[0].tok if positional else call.name
                raise self.error(f"{callee} takes a list of tensors first, e.g. "
                                 f"{callee}([a, b])", tok)
            inputs = [self.must_tensor(e, scope, callee) for e in positional[0].items]
            explicit["input"] = positional[0]
            positional = positional[1:]
        elif spec.inputs == "many" and positional and isinstance(positional[0], ListExpr):
            inputs = [self.must_tensor(e, scope, callee) for e in positional[0].items]
            positional = positional[1:]
        else:
            limit = {"one": 1, "two": 2, "many": len(positional)}[spec.inputs]
            inputs = []
            while positional and len(inputs) < limit:
                t = self.tensor_ref(positional[0], scope)
                if t is None:
                    break
                if not inputs:
                    explicit["input"] = positional[0]
                inputs.append(t)
                positional = positional[1:]
            need = {"one": 1, "two": 2, "many": 2}[spec.inputs]
            if len(inputs) < need:
                if len(inputs) + 1 < need:
                    if positional and isinstance(positional[0], Name):
                        self.must_tensor(positional[0], scope, callee)
                    raise self.error(f"{callee} needs {need} tensors: {callee}(a, b), or "
                                     f"{callee}(b) to combine the previous output with b",
                                     call.name)
                inputs.insert(0, self.previous(scope, call))
        params = [p for p, _, _ in spec.params]
        if spec.inputs == "many" and positional:
            extra = positional[0]
            if isinstance(extra, Name):
                self.must_tensor(extra, scope, callee)
            raise self.error(f"{callee} takes its tensors, then keyword arguments only "
                             f"({', '.join(params)})", extra.tok)
        bound = self.bind(call, positional, params, callee)
        kwargs = {}
        for p, takes_str, required in spec.params:
            if p in bound:
                kwargs[p] = self.value(bound[p], scope, "str" if takes_str else "value",
                                       f"argument '{p}' of {callee}")
                explicit[p] = bound[p]
            elif required:
                raise self.error(f"{callee} is missing argument '{p}'", call.name)
        with self.net.at(self.origin(call.name)):
            try:
                if callee in LAYERS:
                    method = getattr(self.net, callee)
                    if spec.inputs == "list":
                        return method(inputs, **kwargs, name=node_name)
                    return method(*inputs, **kwargs, name=node_name)
                return BLOCKS[callee](self.net, *inputs, **kwargs, name=node_name)
            except DslError:
                raise
            except CnnGraphError as e:
                raise self.builder_error(e, call, explicit, name) from None
            except (TypeError, ValueError, OverflowError) as e:
                raise self.error(f"{callee}: {e}", call.name) from None

    def builder_error(self, e: CnnGraphError, call: Call, explicit: dict,
                      name: Optional[Token]) -> DslError:
        """The builder's message, at the argument it is about, the name it refuses, or the
        layer's name in the statement."""
        message = e.message
        tok = call.name
        if name is not None and "is already used" in message:
            tok = name
        else:
            m = re.match(r"(?:layer|block) '[^']*'(?: \([^)]*\))?: (\w+)", message)
            if m and m.group(1) in explicit:
                tok = explicit[m.group(1)].tok
        return self.error(message, tok)

    def call_user(self, call: Call, block: BlockDef, scope: _Scope, node_name: Optional[str],
                  name: Optional[Token]) -> Tensor:
        callee = call.name.text
        positional = [a.expr for a in call.args if a.key is None]
        x = self.tensor_ref(positional[0], scope) if positional else None
        if x is not None:
            positional = positional[1:]
        else:
            x = self.previous(scope, call)
        params = [p.name.text for p in block.params]
        bound = self.bind(call, positional, params, f"block '{callee}'")
        env: dict[str, Any] = {}
        for p in block.params:
            pname = p.name.text
            if pname in bound:
                env[pname] = self.value(bound[pname], scope, "any",
                                        f"argument '{pname}' of block '{callee}'")
            elif p.default is not None:
                # defaults see the parameters before them, as the block's body does
                env[pname] = self.value(p.default, _Scope(None, dict(env), None, None), "any",
                                        f"the default of '{pname}'")
            else:
                raise self.error(f"block '{callee}' is missing argument '{pname}'", call.name)
        if len(self.stack) >= MAX_CALL_DEPTH:
            raise self.error(f"block calls are nested more than {MAX_CALL_DEPTH} deep",
                             call.name)
        with self.net.at(self.origin(call.name)):
            try:
                with self.net.block(node_name, kind=callee):
                    self.stack.append((callee, call.name))
                    try:
                        body = _Scope(None, env, x, None)
                        body.names["in"] = (x, None)
                        for stmt in block.body:
                            self.statement(stmt, body)
                    finally:
                        self.stack.pop()
            except DslError:
                raise
            except CnnGraphError as e:
                raise self.error(e.message, name or call.name) from None
        return body.current

    # -- values -------------------------------------------------------------------------------
    def value(self, expr, scope: _Scope, kind: str, what: str) -> Any:
        """A Python value for an argument: kind 'str' (a bare name is a string), 'value' (an
        unknown bare name is an error) or 'any' (a user block's argument: a bare name that is
        not a parameter is a string)."""
        if isinstance(expr, Num):
            return expr.value
        if isinstance(expr, ListExpr):
            return [self.value(e, scope, kind, what) for e in expr.items]
        if isinstance(expr, Name):
            text = expr.tok.text
            if text in scope.params:
                return scope.params[text]
            self.check_in(expr, scope)
            if kind != "str" or text == "in":
                if self.tensor_ref(expr, scope) is not None:
                    extra = (" (only a block's first positional argument may be a tensor: "
                             "its input)" if kind == "any" else "")
                    raise self.error(f"'{text}' is a tensor, but {what} is a value{extra}",
                                     expr.tok)
            if kind in ("str", "any"):
                return text
            raise self.error(f"undefined name '{text}'{_suggest(text, scope.visible())}",
                             expr.tok)
        if isinstance(expr, Neg):
            v = self.number(expr.operand, scope, "-")
            return -v
        if isinstance(expr, BinOp):
            a = self.number(expr.left, scope, expr.op.text)
            b = self.number(expr.right, scope, expr.op.text)
            try:
                result = _arith(expr.op.text, a, b)
            except ZeroDivisionError:
                raise self.error("division by zero", expr.op) from None
            except OverflowError:
                raise self.error("the result is too large", expr.op) from None
            if isinstance(result, int) and abs(result) >= 1 << 63:
                raise self.error(f"the result {result:.3e} is too large", expr.op)
            return result
        raise AssertionError(expr)  # pragma: no cover

    def number(self, expr, scope: _Scope, op: str) -> Union[int, float]:
        v = self.value(expr, scope, "value", "an operand")
        if not _is_number(v):
            raise self.error(f"'{op}' needs numbers, got {_show(v)}", expr.tok)
        return v


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _arith(op: str, a, b):
    if op == "+":
        return a + b
    if op == "-":
        return a - b
    if op == "*":
        return a * b
    return a // b


def _show(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, str):
        return f"'{v}'"
    if isinstance(v, list):
        return "a list"
    return repr(v)


# -- the public API --------------------------------------------------------------------------
def compile_dsl(text: str, filename: str = "<string>") -> Network:
    """Compile DSL text to a builder ``Network`` (``net.origins`` maps every node to its
    statement's (file, line, column)).

    >>> net = compile_dsl("input x: 1x3x8x8\\nc = conv(4, 3)", "n.cnn")
    >>> net.nodes["c"].op_type, net.origins["c"]
    ('Conv', ('n.cnn', 2, 5))
    """
    if len(text) > MAX_FILE_BYTES:
        raise LoadError(f"{filename}: {len(text):,} characters is over the limit for DSL "
                        f"text ({MAX_FILE_BYTES:,})")
    if text.startswith("\ufeff"):
        text = text[1:]
    src = _Source(text, filename)
    program = _Parser(tokenize(src), src).program()
    return _Compiler(program, src).run()


def parse_dsl(text: str, filename: str = "<string>") -> Graph:
    """A frozen Graph from DSL text; ``filename`` names it in errors and in ``graph.source``.

    >>> parse_dsl("input x: 1x8\\ny = dense(4)").order()
    ['y']
    """
    graph = compile_dsl(text, filename).build()
    graph.source = filename
    return graph


def read_dsl(path: str) -> str:
    """The text of a .cnn file: UTF-8 (a byte-order mark is dropped), at most 10 MiB."""
    try:
        if os.path.isdir(path):
            raise LoadError(f"{path}: is a directory, not a .cnn file")
        size = os.path.getsize(path)
        if size > MAX_FILE_BYTES:
            raise LoadError(f"{path}: {size:,} bytes is over the limit for a .cnn file "
                            f"({MAX_FILE_BYTES:,})")
        with open(path, "rb") as f:
            data = f.read()
    except FileNotFoundError:
        raise LoadError(f"{path}: no such file") from None
    except OSError as e:
        raise LoadError(f"{path}: cannot be read ({e.strerror or e})") from None
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        start = data.rfind(b"\n", 0, e.start) + 1
        end = data.find(b"\n", e.start)
        line_text = data[start:end if end >= 0 else len(data)].decode("utf-8", "replace")
        column = len(data[start:e.start].decode("utf-8", "replace")) + 1
        raise DslError(f"the file is not UTF-8 text (byte 0x{data[e.start]:02x})", path,
                       data.count(b"\n", 0, e.start) + 1, column,
                       line_text.rstrip("\r")) from None


def load_dsl(path: str) -> Graph:
    """A frozen Graph from a .cnn file.

    >>> import os, tempfile
    >>> path = os.path.join(tempfile.mkdtemp(), "tiny.cnn")
    >>> _ = open(path, "w").write("input x: Nx3x32x32\\nconv(8, 3)\\n")
    >>> g = load_dsl(path); g.name, g.order()
    ('tiny', ['conv_1'])
    """
    return parse_dsl(read_dsl(path), path)


__all__ = ["DslError", "load_dsl", "parse_dsl", "compile_dsl", "read_dsl", "MAX_REPEAT",
           "MAX_LAYERS", "MAX_CALL_DEPTH"]
