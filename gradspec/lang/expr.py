"""The expression language: a Pratt parser over whitelisted tokens (:mod:`gradspec.lang.tokens`) into a
small frozen tree (:mod:`gradspec.lang.tree`).

Grammar (Python's precedence and associativity)::

    program    := statement ((";" | newline) statement)*
    statement  := NAME "=" expr | expr            the last statement is the output
    expr       := expr ("+" | "-") expr | expr ("*" | "/") expr | unary
    unary      := ("-" | "+") unary | power
    power      := postfix ("**" unary)?           right-associative: -x**2 is -(x**2)
    postfix    := atom subscript*                 x[0], x[1:, None]: binds tightest (-x[0] is -(x[0]))
    atom       := NUMBER | NAME | NAME "(" args ")" | "(" expr ")"
    atom       |= "where" "(" expr CMP expr "," expr "," expr ")"
    atom       |= NAME "(" args ")" "[" INT "]"    one output of a multi-output op (slogdet(a)[1])
    atom       |= "einsum" "(" STRING "," expr ("," expr)* ")"    einsum("ij,jk->ik", a, b)
    subscript  := "[" item ("," item)* "]"
    item       := INT | [INT] ":" [INT] [":" [INT]] | "None" | "..."     integer literals, signed
    args       := expr ("," expr)* ("," NAME "=" kwvalue)*
    kwvalue    := ["-"] NUMBER | "[" ["-"] INT ("," ["-"] INT)* "]" | STRING
    CMP        := "<" | "<=" | ">" | ">=" | "==" | "!="

``@`` (matrix product) binds like ``*``. Keyword arguments are checked against the op's keyword
signature; their values are numbers, lists of integers or strings (``approximate="tanh"``), never
expressions. Brackets also subscript an expression (NumPy basic indexing with literals,
:mod:`gradspec.lang.subscript`); a subscript directly on a multi-output op's call selects an output
(``sort(x)[0][1]`` indexes the first output). There are no list literals, and a string is otherwise only
einsum's equation. A comparison is data, not a value: it is only where's first argument.

Nothing in case text is ever handed to ``eval``, ``exec`` or SymPy's parsers: text becomes tokens,
tokens become the nodes below, and every name is checked against the op table or the inputs.
"""

from __future__ import annotations

import math
from fractions import Fraction
from functools import lru_cache
from typing import Any

from gradspec.errors import ExpressionError
from gradspec.lang.keywords import read_keyword
from gradspec.lang.subscript import read_subscript
from gradspec.lang.tokens import REFUSED, STRING_CALLS, STRINGS, Tok, describe, tokenize
from gradspec.lang.tree import Apply, KwValue, Name, Node, Num, Program
from gradspec.ops.special import COMPARE
from gradspec.ops.table import CALLABLE, OPS, PREFIX_BINDING, TENSOR_OPS, Keyword, Op, TensorOp, bind, show_number

__all__ = ["MAX_DEPTH", "MAX_LENGTH", "Apply", "Name", "Node", "Num", "Program", "parse"]

MAX_LENGTH = 65_536  # characters in one expression
MAX_DEPTH = 100  # nesting of parentheses, unary signs and powers
MAX_EXPONENT = 1024  # |n| of a constant exponent
MAX_NODES = 20_000
_COMPARISON = ("comparisons are allowed only as where's first argument (where(x > 0, x, 0)): a comparison "
               "is data, not a value")


# Infix spellings and their binding powers, read from the op table (scalar and tensor rows).
_INFIX: dict[str, tuple[tuple[int, int], str]] = {
    **{o.symbol: (o.binding, o.name) for o in OPS.values() if o.symbol and o.binding is not None},
    **{t.symbol: (t.binding, t.name) for t in TENSOR_OPS.values() if t.symbol and t.binding is not None},
}
# Op names, which no input or intermediate may take; the subscript op ("[]") is syntax, not a name.
_OP_NAMES = frozenset({*OPS, *(n for n, t in TENSOR_OPS.items() if t.symbol != "[]")})
_SUBSCRIPT = next(t.name for t in TENSOR_OPS.values() if t.symbol == "[]")


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
        if tok.text in ("[", "]"):
            raise ExpressionError(REFUSED[tok.text], col=tok.col)
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

    def expr(self, min_bp: int, comparison: bool = False) -> Node:
        """An expression; a comparison after it ends it where ``comparison`` allows one (where's first
        argument) or an enclosing expression may decide (``min_bp > 0``), and is refused otherwise."""
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise ExpressionError(f"expression nested deeper than {MAX_DEPTH} levels", col=self.peek().col)
        left = self.prefix()
        while True:
            tok = self.peek()
            if tok.text == "[":
                left = self.subscript(left, tok)
                continue
            if tok.text in COMPARE:
                if comparison or min_bp > 0:
                    break
                raise ExpressionError(_COMPARISON, col=tok.col)
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
        if tok.kind == "string":
            raise ExpressionError(STRINGS, col=tok.col)
        if tok.kind == "name":
            if self.peek().text == "(":
                return self.call(tok)
            if tok.text in _OP_NAMES:
                raise ExpressionError(f"{tok.text!r} is an op; call it as {tok.text}(...)", col=tok.col)
            self.count(tok.col)
            return Name(tok.text, tok.col)
        raise ExpressionError(f"expected a number, a name or '(', found {describe(tok)}", col=tok.col)

    def call(self, name: Tok) -> Node:
        tensor_op = TENSOR_OPS.get(name.text)
        if tensor_op is not None and not tensor_op.symbol:
            return self.tensor_call(name, tensor_op)
        o = CALLABLE.get(name.text)
        if o is None:
            known = ", ".join(sorted([*CALLABLE, *(t for t, r in TENSOR_OPS.items() if not r.symbol)]))
            raise ExpressionError(f"unknown function {name.text!r}; known: {known}", col=name.col)
        if o.name == "where":
            return self.where_call(name, o)
        if o.keywords:
            operands, given = self.call_args(name, o.name, o.arity, o.keywords)
            return self.make(bind(o, given).name, tuple(operands), name.col)
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
        self.close_call(name, o.arity, args)
        return self.make(o.name, tuple(args), name.col)

    def close_call(self, name: Tok, arity: int, args: list[Node], most: int | None = None) -> None:
        """The ``)`` that ends a call, and its count of positional arguments against the op's arity (at
        least ``arity`` and at most ``most`` where a tensor op takes optional operands; -1: no limit)."""
        self.paren -= 1
        self.expect(")", f"',' or ')' in the call of {name.text}")
        top = arity if most is None else most
        if len(args) < arity or (top >= 0 and len(args) > top):
            if top == arity:
                count = f"{arity} argument{'s' if arity != 1 else ''}"
            elif top < 0:
                count = f"at least {arity} arguments"
            else:
                count = f"{arity} to {top} arguments"
            raise ExpressionError(f"{name.text} takes {count}, got {len(args)}", col=name.col)

    def subscript(self, left: Node, bracket: Tok) -> Node:
        """``left[...]``: the tensor op ``index`` with the subscript's canonical text as its ``spec``."""
        if isinstance(left, Num):
            raise ExpressionError("a number cannot be subscripted", col=bracket.col)
        spec, self.i = read_subscript(self.toks, self.i)
        self.count(bracket.col)
        return Apply(_SUBSCRIPT, (left,), bracket.col, (("spec", spec),))

    def tensor_call(self, name: Tok, o: TensorOp) -> Node:
        """A tensor op's call: positional operands, then keyword values checked against its signature."""
        args, given = self.call_args(name, o.name, o.arity, o.keywords, o.max_arity)
        if o.outputs:
            given["output"] = self.output(name, o)
        kwargs: tuple[tuple[str, Any], ...] = tuple((k.name, given.get(k.name, k.default)) for k in o.keywords)
        self.count(name.col)
        return Apply(o.name, tuple(args), name.col, kwargs)

    def output(self, name: Tok, o: TensorOp) -> int:
        """Which output of a multi-output op a call means: ``slogdet(a)[1]``, or the row's ``bare`` one."""
        names = ", ".join(o.outputs)
        if self.peek().text != "[":
            if o.bare is None:
                raise ExpressionError(f"{o.name} returns a tuple ({names}); subscript it: {o.name}(...)[0]",
                                      col=name.col)
            return o.bare
        self.i += 1
        tok = self.peek()
        if tok.kind != "number" or not tok.text.isdigit() or int(tok.text) >= len(o.outputs):
            raise ExpressionError(f"{o.name} returns {len(o.outputs)} outputs ({names}); subscript it with 0 to "
                                  f"{len(o.outputs) - 1}, found {describe(tok)}", col=tok.col)
        self.i += 1
        end = self.peek()
        if end.text != "]":
            raise ExpressionError(f"expected ']', found {describe(end)}", col=end.col)
        self.i += 1
        return int(tok.text)

    def call_args(self, name: Tok, op: str, arity: int, keywords: tuple[Keyword, ...],
                  most: int | None = None) -> tuple[list[Node], dict[str, KwValue]]:
        """A call's positional operands, then its keyword values checked against the op's signature."""
        self.take()  # "("
        self.paren += 1
        args: list[Node] = []
        given: dict[str, KwValue] = {}
        signature = {k.name: k for k in keywords if not k.internal}
        if op in STRING_CALLS:  # einsum("ij,jk->ik", a, b): the equation, then the operands
            tok = self.peek()
            if tok.kind != "string":
                raise ExpressionError(f'{op} takes its equation first, as a string: {op}("ij,jk->ik", a, b); '
                                      f"found {describe(tok)}", col=tok.col)
            self.i += 1
            given["equation"] = "".join(tok.text[1:-1].split())
            self.expect(",", f"',' and the operands after {op}'s equation")
        while self.peek().text != ")":
            tok = self.peek()
            if tok.kind == "name" and self.toks[self.i + 1].text == "=":
                key = signature.get(tok.text)
                if key is None:
                    known = ", ".join(signature) or "none"
                    raise ExpressionError(f"{op} has no keyword {tok.text!r} (keywords: {known})", col=tok.col)
                if tok.text in given:
                    raise ExpressionError(f"keyword {tok.text!r} is given twice", col=tok.col)
                self.i += 2
                given[tok.text], self.i = read_keyword(self.toks, self.i, op, key)
            elif given.keys() & signature.keys():
                raise ExpressionError("a positional argument cannot follow a keyword argument", col=tok.col)
            else:
                args.append(self.expr(0))
            if self.peek().text != ",":
                break
            self.take()
        self.close_call(name, arity, args, most)
        missing = [k.name for k in keywords if k.required and not k.internal and k.name not in given]
        if missing:
            raise ExpressionError(f"{name.text} needs the keyword {missing[0]}=", col=name.col)
        return args, given

    def where_call(self, name: Tok, o: Op) -> Node:
        """``where(lhs < rhs, a, b)``: the comparison is where's own syntax, kept as the bound op's ``cmp``."""
        self.take()  # "("
        self.paren += 1
        first = self.peek()
        lhs = self.expr(0, comparison=True)
        tok = self.peek()
        if tok.text not in COMPARE:
            raise ExpressionError(f"where's first argument must be a comparison such as x > 0, found {describe(tok)}",
                                  col=tok.col if tok.text != "," else first.col)
        cmp = self.take().text
        args = [lhs, self.expr(0)]
        while self.peek().text == ",":
            self.take()
            item = self.peek()
            if item.kind == "name" and self.toks[self.i + 1].text == "=":
                raise ExpressionError("where takes no keyword arguments", col=item.col)
            args.append(self.expr(0))
        self.close_call(name, 3, args[1:])  # the comparison is one argument
        return self.make(bind(o, {"cmp": cmp}).name, tuple(args), name.col)

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
        if name in TENSOR_OPS:
            return Apply(name, args, col)
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
        if name in _OP_NAMES:
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
