"""The expression language: a whitelisted tokenizer and Pratt parser into a small frozen tree.

Grammar (Python's precedence and associativity)::

    program    := statement ((";" | newline) statement)*
    statement  := NAME "=" expr | expr            the last statement is the output
    expr       := expr ("+" | "-") expr | expr ("*" | "/") expr | unary
    unary      := ("-" | "+") unary | power
    power      := atom ("**" unary)?              right-associative: -x**2 is -(x**2)
    atom       := NUMBER | NAME | NAME "(" args ")" | "(" expr ")"
    args       := expr ("," expr)* ("," NAME "=" kwvalue)*
    kwvalue    := ["-"] NUMBER | "[" ["-"] INT ("," ["-"] INT)* "]"

``@`` (matrix product) binds like ``*``. Keyword arguments belong to tensor ops only and are checked
against the op's keyword signature; their values are numbers or lists of integers, never expressions,
so brackets appear nowhere else (no indexing, no list literals).

Nothing in case text is ever handed to ``eval``, ``exec`` or SymPy's parsers: text becomes tokens,
tokens become the nodes below, and every name is checked against the op table or the inputs.
"""

from __future__ import annotations

import keyword
import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from fractions import Fraction
from functools import lru_cache
from typing import Any

from gradspec.errors import ExpressionError
from gradspec.ops.table import CALLABLE, OPS, TENSOR_OPS, TensorOp

__all__ = ["MAX_DEPTH", "MAX_LENGTH", "Apply", "Name", "Node", "Num", "Program", "parse"]

MAX_LENGTH = 65_536  # characters in one expression
MAX_DEPTH = 100  # nesting of parentheses, unary signs and powers
MAX_EXPONENT = 1024  # |n| of a constant exponent
MAX_NODES = 20_000


@dataclass(frozen=True)
class Num:
    value: Fraction
    text: str = field(compare=False)
    col: int = field(default=0, compare=False)

    def __str__(self) -> str:
        return f"({self.text})" if self.value < 0 else self.text


@dataclass(frozen=True)
class Name:
    name: str
    col: int = field(default=0, compare=False)

    def __str__(self) -> str:
        return self.name


KwValue = int | Fraction | tuple[int, ...]  # a number keyword is the exact decimal written


@dataclass(frozen=True)
class Apply:
    op: str
    args: tuple[Node, ...]
    col: int = field(default=0, compare=False)
    kwargs: tuple[tuple[str, KwValue], ...] = ()  # a tensor op's keyword values, every keyword filled in

    def __str__(self) -> str:
        t = TENSOR_OPS.get(self.op)
        if t is not None:
            if t.symbol:
                return f"({self.args[0]} {t.symbol} {self.args[1]})"
            kws = [f"{k}={_kw_text(v)}" for k, v in self.kwargs if v is not None]
            return f"{self.op}({', '.join([*map(str, self.args), *kws])})"
        o = OPS[self.op]
        if o.symbol is None:
            return f"{self.op}({', '.join(map(str, self.args))})"
        if o.arity == 1:
            return f"(-{self.args[0]})"
        return f"({self.args[0]} {o.symbol} {self.args[1]})"


Node = Num | Name | Apply


def _kw_text(v: KwValue) -> str:
    if isinstance(v, tuple):
        return "[" + ", ".join(map(str, v)) + "]"
    return repr(float(v)) if isinstance(v, Fraction) else str(v)


@dataclass(frozen=True)
class Program:
    """A parsed expression: named intermediates in order, then the output.

    ``inputs`` are the free names in order of first use; ``intermediates`` the assigned names.
    """

    source: str
    # A program is identified by its text: equal texts are the same program, and neither hashing nor
    # comparing walks the tree (which may be thousands of nodes deep for a long flat sum).
    assignments: tuple[tuple[str, Node], ...] = field(compare=False)
    output: Node = field(compare=False)
    inputs: tuple[str, ...] = field(compare=False)
    input_cols: tuple[int, ...] = field(default=(), compare=False)  # where each input is first used

    def column_of(self, name: str) -> int | None:
        """The column where input ``name`` is first used."""
        if name in self.inputs and len(self.input_cols) == len(self.inputs):
            return self.input_cols[self.inputs.index(name)]
        return None

    @property
    def intermediates(self) -> tuple[str, ...]:
        return tuple(name for name, _ in self.assignments)

    def __str__(self) -> str:
        parts = [f"{n} = {e}" for n, e in self.assignments] + [str(self.output)]
        return "; ".join(parts)


_TOKEN = re.compile(
    r"""(?P<space>[ \t\r]+|\#[^\n]*)
      | (?P<number>(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)
      | (?P<name>[A-Za-z_][A-Za-z_0-9]*)
      | (?P<op>\*\*|==|!=|<=|>=|//|[-+*/@(),=;\n\[\]])
    """,
    re.VERBOSE,
)
_REFUSED = {
    "'": "strings are not allowed",
    '"': "strings are not allowed",
    ".": "attribute access is not allowed",
    "[": "brackets are not allowed (no lists, indexing or comprehensions)",
    "]": "brackets are not allowed (no lists, indexing or comprehensions)",
    "{": "braces are not allowed",
    "}": "braces are not allowed",
    ":": "':' is not allowed (no lambdas, slices or annotations)",
    "==": "comparisons are not allowed",
    "!=": "comparisons are not allowed",
    "<=": "comparisons are not allowed",
    ">=": "comparisons are not allowed",
    "//": "operator '//' is not supported; use + - * / **",
}


@dataclass(frozen=True)
class _Tok:
    kind: str  # number, name, op, end
    text: str
    col: int  # 1-based column in the whole text (the loader maps it to a line)


def _tokenize(text: str) -> list[_Tok]:
    toks: list[_Tok] = []
    pos = 0
    in_list = False
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        col = pos + 1
        if m is None:
            ch = text[pos]
            reason = _REFUSED.get(ch) or f"unexpected character {ch!r}; expressions use numbers, names, + - * / ** and calls"
            raise ExpressionError(reason, col=col)
        kind = m.lastgroup or ""
        tok = m.group()
        if kind == "number" and pos + len(tok) < len(text) and (text[pos + len(tok)].isalpha() or text[pos + len(tok)] == "_"):
            raise ExpressionError(f"malformed number {tok + text[pos + len(tok)]!r}", col=col)
        # Brackets only open a keyword's integer list (`shape=[3, 4]`) and close it; anywhere else
        # they would be indexing or a list literal.
        if tok == "[" and toks and toks[-1].text == "=" and not in_list:
            in_list = True
        elif tok == "]" and in_list:
            in_list = False
        elif kind == "op" and tok in _REFUSED:
            raise ExpressionError(_REFUSED[tok], col=col)
        if kind == "name" and keyword.iskeyword(tok):
            raise ExpressionError(f"{tok!r} is a Python keyword; expressions cannot use it", col=col)
        if kind != "space":
            toks.append(_Tok(kind, tok, col))
        pos = m.end()
    toks.append(_Tok("end", "", len(text) + 1))
    return toks


_BINARY = {"+": (10, "add"), "-": (10, "sub"), "*": (20, "mul"), "/": (20, "div"), "@": (20, "matmul")}
_POW_BP = 40  # binds tighter than unary minus on its left, accepts a unary on its right
_UNARY_BP = 30


class _Parser:
    def __init__(self, text: str) -> None:
        self.toks = _tokenize(text)
        self.i = 0
        self.depth = 0
        self.nodes = 0
        self.paren = 0

    # -- token stream -------------------------------------------------------------------------
    def peek(self) -> _Tok:
        tok = self.toks[self.i]
        while tok.text == "\n" and self.paren:  # newlines inside parentheses continue the line
            self.i += 1
            tok = self.toks[self.i]
        return tok

    def take(self) -> _Tok:
        tok = self.peek()
        if tok.text in ("[", "]"):
            raise ExpressionError(_REFUSED[tok.text], col=tok.col)
        self.i += 1
        return tok

    def expect(self, text: str, why: str) -> _Tok:
        tok = self.peek()
        if tok.text != text:
            raise ExpressionError(f"expected {why}, found {_describe(tok)}", col=tok.col)
        return self.take()

    # -- grammar ------------------------------------------------------------------------------
    def program(self) -> tuple[list[tuple[str, Node, int]], Node]:
        statements: list[tuple[str | None, Node, int]] = []
        while True:
            while self.peek().text in (";", "\n"):
                self.take()
            if self.peek().kind == "end":
                break
            tok = self.peek()
            nxt = self.toks[self.i + 1]
            if tok.kind == "name" and nxt.text == "=":
                self.i += 2
                statements.append((tok.text, self.expr(0), tok.col))
            else:
                statements.append((None, self.expr(0), tok.col))
            end = self.peek()
            if end.kind != "end" and end.text not in (";", "\n"):
                raise ExpressionError(f"expected an operator or the end of the statement, found {_describe(end)}", col=end.col)
        if not statements:
            raise ExpressionError("empty expression", col=1)
        *body, (last_name, last, last_col) = statements
        for name, _, col in body:
            if name is None:
                raise ExpressionError("only the last statement may be a bare expression; name this one (a = ...)", col=col)
        assigns = [(n, e, c) for n, e, c in body if n is not None]
        if last_name is not None:  # `...; b = a + x` makes b the output
            assigns.append((last_name, last, last_col))
            last = Name(last_name, last_col)
        return assigns, last

    def expr(self, min_bp: int) -> Node:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise ExpressionError(f"expression nested deeper than {MAX_DEPTH} levels", col=self.peek().col)
        left = self.prefix()
        while True:
            tok = self.peek()
            if tok.text == "**":
                if min_bp > _POW_BP:
                    break
                self.take()
                left = self.make("pow", (left, self.expr(_UNARY_BP)), tok.col)
                continue
            if tok.text == "[":
                raise ExpressionError(_REFUSED["["], col=tok.col)
            entry = _BINARY.get(tok.text)
            if entry is None or entry[0] <= min_bp:
                break
            self.take()
            left = self.make(entry[1], (left, self.expr(entry[0])), tok.col)
        self.depth -= 1
        return left

    def prefix(self) -> Node:
        tok = self.take()
        if tok.text in ("-", "+"):
            operand = self.expr(_UNARY_BP)
            return self.make("neg", (operand,), tok.col) if tok.text == "-" else operand
        if tok.text == "(":
            self.paren += 1
            inner = self.expr(0)
            self.paren -= 1
            self.expect(")", "')'")
            return inner
        if tok.kind == "number":
            return self.number(tok)
        if tok.kind == "name":
            if self.peek().text == "(":
                return self.call(tok)
            if tok.text in OPS or tok.text in TENSOR_OPS:
                raise ExpressionError(f"{tok.text!r} is an op; call it as {tok.text}(...)", col=tok.col)
            self.count(tok.col)
            return Name(tok.text, tok.col)
        raise ExpressionError(f"expected a number, a name or '(', found {_describe(tok)}", col=tok.col)

    def call(self, name: _Tok) -> Node:
        tensor_op = TENSOR_OPS.get(name.text)
        if tensor_op is not None and not tensor_op.symbol:
            return self.tensor_call(name, tensor_op)
        o = CALLABLE.get(name.text)
        if o is None:
            known = ", ".join(sorted([*CALLABLE, *(t for t, r in TENSOR_OPS.items() if not r.symbol)]))
            raise ExpressionError(f"unknown function {name.text!r}; known: {known}", col=name.col)
        self.take()  # "("
        self.paren += 1
        args: list[Node] = []
        if self.peek().text != ")":
            while True:
                tok = self.peek()
                if tok.kind == "name" and self.toks[self.i + 1].text == "=":
                    raise ExpressionError(f"{name.text} takes no keyword arguments", col=tok.col)
                args.append(self.expr(0))
                if self.peek().text != ",":
                    break
                self.take()
        self.paren -= 1
        self.expect(")", f"',' or ')' in the call of {name.text}")
        if len(args) != o.arity:
            plural = "s" if o.arity != 1 else ""
            raise ExpressionError(f"{name.text} takes {o.arity} argument{plural}, got {len(args)}", col=name.col)
        return self.make(o.name, tuple(args), name.col)

    def tensor_call(self, name: _Tok, o: TensorOp) -> Node:
        """A tensor op's call: positional operands, then keyword values checked against its signature."""
        self.take()  # "("
        self.paren += 1
        args: list[Node] = []
        given: dict[str, KwValue] = {}
        signature = {k.name: k for k in o.keywords}
        while self.peek().text != ")":
            tok = self.peek()
            if tok.kind == "name" and self.toks[self.i + 1].text == "=":
                key = signature.get(tok.text)
                if key is None:
                    known = ", ".join(signature) or "none"
                    raise ExpressionError(f"{o.name} has no keyword {tok.text!r} (keywords: {known})", col=tok.col)
                if tok.text in given:
                    raise ExpressionError(f"keyword {tok.text!r} is given twice", col=tok.col)
                self.i += 2
                given[tok.text] = self.kw_value(o.name, key.name, key.kind)
            elif given:
                raise ExpressionError("a positional argument cannot follow a keyword argument", col=tok.col)
            else:
                args.append(self.expr(0))
            if self.peek().text != ",":
                break
            self.take()
        self.paren -= 1
        self.expect(")", f"',' or ')' in the call of {name.text}")
        if len(args) != o.arity:
            plural = "s" if o.arity != 1 else ""
            raise ExpressionError(f"{name.text} takes {o.arity} argument{plural}, got {len(args)}", col=name.col)
        missing = [k.name for k in o.keywords if k.required and k.name not in given]
        if missing:
            raise ExpressionError(f"{name.text} needs the keyword {missing[0]}=", col=name.col)
        kwargs: tuple[tuple[str, Any], ...] = tuple((k.name, given.get(k.name, k.default)) for k in o.keywords)
        self.count(name.col)
        return Apply(o.name, tuple(args), name.col, kwargs)

    def kw_value(self, op: str, key: str, kind: str) -> KwValue:
        tok = self.peek()
        if kind == "ints":
            if tok.text != "[":
                raise ExpressionError(f"{op}: {key}= takes a list of integers such as [2, 3]", col=tok.col)
            self.i += 1
            items: list[int] = []
            while True:
                items.append(int(self.signed(op, key, "int")))
                end = self.peek()
                self.i += 1
                if end.text == "]":
                    return tuple(items)
                if end.text != ",":
                    raise ExpressionError(f"expected ',' or ']' in {key}=, found {_describe(end)}", col=end.col)
        return self.signed(op, key, kind)

    def signed(self, op: str, key: str, kind: str) -> int | Fraction:
        tok = self.peek()
        sign = 1
        if tok.text == "-":
            sign = -1
            self.i += 1
            tok = self.peek()
        if tok.kind != "number":
            what = "an integer" if kind == "int" else "a number"
            raise ExpressionError(f"{op}: {key}= takes {what}, found {_describe(tok)}", col=tok.col)
        self.i += 1
        value = sign * Fraction(tok.text)
        if kind == "int":
            if value.denominator != 1:
                raise ExpressionError(f"{op}: {key}= takes an integer, got {tok.text}", col=tok.col)
            if abs(value) > 1_000_000:
                raise ExpressionError(f"{op}: {key}= {value} is too large", col=tok.col)
            return int(value)
        if not math.isfinite(float(value)):
            raise ExpressionError(f"{op}: {key}= {tok.text} is outside the float64 range", col=tok.col)
        return value

    def number(self, tok: _Tok) -> Num:
        self.count(tok.col)
        value = Fraction(tok.text)
        as_float = float(tok.text)
        if math.isinf(as_float) or (value != 0 and as_float == 0.0):
            raise ExpressionError(f"number {tok.text} is outside the float64 range", col=tok.col)
        return Num(value, tok.text, tok.col)

    def count(self, col: int) -> None:
        self.nodes += 1
        if self.nodes > MAX_NODES:
            raise ExpressionError(f"expression has more than {MAX_NODES} nodes", col=col)

    def make(self, name: str, args: tuple[Node, ...], col: int) -> Node:
        """Build an op node, folding constant arithmetic exactly and refusing absurd constants."""
        self.count(col)
        if name == "pow" and isinstance(args[1], Num):
            e = args[1].value
            if abs(e) > MAX_EXPONENT:
                raise ExpressionError(f"exponent {_show(e)} is too large (limit {MAX_EXPONENT})", col=col)
        if name in TENSOR_OPS:
            return Apply(name, args, col)
        if all(isinstance(a, Num) for a in args):
            folded = _fold(name, tuple(a.value for a in args if isinstance(a, Num)), col)
            if folded is not None:
                return Num(folded, _show(folded), col)
            node = Apply(name, args, col)
            try:
                value = OPS[name].fn(*(float(a.value) for a in args if isinstance(a, Num)))
            except (ArithmeticError, ValueError):
                value = math.nan
            if not math.isfinite(value):
                raise ExpressionError(f"constant {node} is not a finite float64 number", col=col)
            return node
        return Apply(name, args, col)


_FOLD: dict[str, Callable[..., Fraction]] = {
    "add": lambda a, b: a + b, "sub": lambda a, b: a - b, "mul": lambda a, b: a * b,
    "div": lambda a, b: a / b, "neg": lambda a: -a,
}


def _fold(name: str, vals: tuple[Fraction, ...], col: int) -> Fraction | None:
    """Exact value of a rational constant op, or None when the result is not rational."""
    if name == "div" and vals[1] == 0:
        raise ExpressionError("division by zero in a constant", col=col)
    if name == "pow":
        base, e = vals
        if e.denominator != 1:
            return None
        if base == 0 and e < 0:
            raise ExpressionError("zero to a negative power in a constant", col=col)
        if base != 0 and abs(e) * abs(math.log10(abs(base))) > 308:
            raise ExpressionError(f"constant {_show(base)}**{_show(e)} is outside the float64 range", col=col)
        return base**e.numerator
    fold = _FOLD.get(name)
    if fold is None:
        return None
    result: Fraction = fold(*vals)
    if result != 0 and not 1e-308 < abs(result) < 1.7e308:
        raise ExpressionError(f"constant {_show(result)} is outside the float64 range", col=col)
    return result


def _show(value: Fraction) -> str:
    if value.denominator == 1:
        return str(value.numerator)
    return repr(float(value))


def _describe(tok: _Tok) -> str:
    if tok.kind == "end":
        return "the end of the expression"
    if tok.text == "\n":
        return "a line break"
    return repr(tok.text)


def _free_names(node: Node, into: dict[str, int]) -> None:
    stack = [node]  # iterative: a flat sum of thousands of terms is a tree thousands deep
    while stack:
        item = stack.pop()
        if isinstance(item, Name):
            into.setdefault(item.name, item.col)
        elif isinstance(item, Apply):
            stack.extend(reversed(item.args))


@lru_cache(maxsize=4096)
def parse(text: str) -> Program:
    """Parse an expression; raises :class:`ExpressionError` with the column for anything else."""
    if not isinstance(text, str):
        raise ExpressionError(f"an expression must be a string, got {type(text).__name__}", col=1)
    if len(text) > MAX_LENGTH:
        raise ExpressionError(f"expression is {len(text)} characters long; the limit is {MAX_LENGTH}", col=1)
    parser = _Parser(text)
    assigns, output = parser.program()
    defined: set[str] = set()
    inputs: dict[str, int] = {}
    for name, node, col in assigns:
        if name in OPS or name in TENSOR_OPS:
            raise ExpressionError(f"{name!r} is an op and cannot be assigned", col=col)
        if name in defined:
            raise ExpressionError(f"{name!r} is assigned twice; each intermediate is named once", col=col)
        used: dict[str, int] = {}
        _free_names(node, used)
        if name in used and name not in defined:
            raise ExpressionError(f"{name!r} is used in its own definition", col=used[name])
        for free, at in used.items():
            if free not in defined:
                inputs.setdefault(free, at)
        if name in inputs:
            raise ExpressionError(f"{name!r} is used as an input before it is assigned", col=inputs[name])
        defined.add(name)
    used = {}
    _free_names(output, used)
    for free, at in used.items():
        if free not in defined:
            inputs.setdefault(free, at)
    return Program(text, tuple((n, e) for n, e, _ in assigns), output, tuple(inputs), tuple(inputs.values()))
