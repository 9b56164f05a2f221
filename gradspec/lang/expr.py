"""The expression language: a Pratt parser over whitelisted tokens (:mod:`gradspec.lang.tokens`) into a
small frozen tree (:mod:`gradspec.lang.tree`).

Grammar (Python's precedence and associativity)::

    program    := statement ((";" | newline) statement)*
    statement  := NAME "=" expr | expr            the last statement is the output
    expr       := expr ("+" | "-") expr | expr ("*" | "/") expr | unary
    unary      := ("-" | "+") unary | power
    power      := atom ("**" unary)?              right-associative: -x**2 is -(x**2)
    atom       := NUMBER | NAME | NAME "(" expr ("," expr)* ")" | "(" expr ")"

Nothing in case text is ever handed to ``eval``, ``exec`` or SymPy's parsers: text becomes tokens,
tokens become the nodes below, and every name is checked against the op table or the inputs.
"""

from __future__ import annotations

import math
from fractions import Fraction
from functools import lru_cache

from gradspec.errors import ExpressionError
from gradspec.lang.tokens import Tok, describe, tokenize
from gradspec.lang.tree import Apply, Name, Node, Num, Program
from gradspec.ops.table import CALLABLE, OPS, PREFIX_BINDING, show_number

__all__ = ["MAX_DEPTH", "MAX_LENGTH", "Apply", "Name", "Node", "Num", "Program", "parse"]

MAX_LENGTH = 65_536  # characters in one expression
MAX_DEPTH = 100  # nesting of parentheses, unary signs and powers
MAX_EXPONENT = 1024  # |n| of a constant exponent
MAX_NODES = 20_000


# Infix spellings and their binding powers, read from the op table.
_INFIX = {o.symbol: (o.binding, o.name) for o in OPS.values() if o.symbol and o.binding is not None}


class _Parser:
    def __init__(self, text: str) -> None:
        self.toks = tokenize(text)
        self.i = 0
        self.depth = 0
        self.nodes = 0
        self.paren = 0

    # -- token stream -------------------------------------------------------------------------
    def peek(self) -> Tok:
        tok = self.toks[self.i]
        while tok.text == "\n" and self.paren:  # newlines inside parentheses continue the line
            self.i += 1
            tok = self.toks[self.i]
        return tok

    def take(self) -> Tok:
        tok = self.peek()
        self.i += 1
        return tok

    def expect(self, text: str, why: str) -> Tok:
        tok = self.peek()
        if tok.text != text:
            raise ExpressionError(f"expected {why}, found {describe(tok)}", col=tok.col)
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
                raise ExpressionError(f"expected an operator or the end of the statement, found {describe(end)}", col=end.col)
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
            entry = _INFIX.get(tok.text)
            if entry is None or entry[0][0] <= min_bp:
                break
            self.take()
            (_, right_bp), name = entry
            left = self.make(name, (left, self.expr(right_bp)), tok.col)
        self.depth -= 1
        return left

    def prefix(self) -> Node:
        tok = self.take()
        if tok.text in ("-", "+"):
            operand = self.expr(PREFIX_BINDING)
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
            if tok.text in OPS:
                raise ExpressionError(f"{tok.text!r} is an op; call it as {tok.text}(...)", col=tok.col)
            self.count(tok.col)
            return Name(tok.text, tok.col)
        raise ExpressionError(f"expected a number, a name or '(', found {describe(tok)}", col=tok.col)

    def call(self, name: Tok) -> Node:
        o = CALLABLE.get(name.text)
        if o is None:
            known = ", ".join(sorted(CALLABLE))
            raise ExpressionError(f"unknown function {name.text!r}; known: {known}", col=name.col)
        self.take()  # "("
        self.paren += 1
        args: list[Node] = []
        if self.peek().text != ")":
            while True:
                tok = self.peek()
                if tok.kind == "name" and self.toks[self.i + 1].text == "=":
                    raise ExpressionError("keyword arguments are not allowed", col=tok.col)
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

    def number(self, tok: Tok) -> Num:
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
                raise ExpressionError(f"exponent {show_number(e)} is too large (limit {MAX_EXPONENT})", col=col)
        if all(isinstance(a, Num) for a in args):
            folded = _fold(name, tuple(a.value for a in args if isinstance(a, Num)), col)
            if folded is not None:
                return Num(folded, show_number(folded), col)
            node = Apply(name, args, col)
            try:
                value = OPS[name].fn(*(float(a.value) for a in args if isinstance(a, Num)))
            except (ArithmeticError, ValueError):
                value = math.nan
            if not math.isfinite(value):
                raise ExpressionError(f"constant {node} is not a finite float64 number", col=col)
            return node
        return Apply(name, args, col)


def _fold(name: str, vals: tuple[Fraction, ...], col: int) -> Fraction | None:
    """Exact value of a rational constant op (its row's ``fold``), or None when it is not rational."""
    fold = OPS[name].fold
    if fold is None:
        return None
    try:
        return fold(*vals)
    except ArithmeticError as exc:  # the row refuses these constants (division by zero, out of range)
        raise ExpressionError(str(exc), col=col) from None


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
        if name in OPS:
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
