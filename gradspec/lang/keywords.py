"""Keyword values of the expression language: ``axis=-1``, ``eps=1e-5``, ``shape=[3, -1]``,
``approximate="tanh"``. A value is a signed number, a list of signed integers or a string among the
keyword's choices, never an expression; each is checked against the op's keyword signature
(:class:`~gradspec.ops.row.Keyword`) at its column.
"""

from __future__ import annotations

import math
from fractions import Fraction

from gradspec.errors import ExpressionError
from gradspec.lang.tokens import Tok, describe
from gradspec.lang.tree import KwValue
from gradspec.ops.row import Keyword

__all__ = ["read_keyword"]


def read_keyword(toks: list[Tok], i: int, op: str, keyword: Keyword) -> tuple[KwValue, int]:
    """The value of ``keyword`` whose first token is ``toks[i]``, and the index after it."""
    reader = _Reader(toks, i)
    return reader.read(op, keyword), reader.i


class _Reader:
    def __init__(self, toks: list[Tok], i: int) -> None:
        self.toks = toks
        self.i = i

    def peek(self) -> Tok:
        tok = self.toks[self.i]
        while tok.text == "\n":  # a keyword value is inside a call's parentheses, where newlines continue the line
            self.i += 1
            tok = self.toks[self.i]
        return tok

    def read(self, op: str, keyword: Keyword) -> KwValue:
        tok = self.peek()
        key, kind = keyword.name, keyword.kind
        if kind == "str":
            choices = ", ".join(f'"{c}"' for c in keyword.choices)
            if tok.kind != "string" or tok.text[1:-1] not in keyword.choices:
                raise ExpressionError(f"{op}: {key}= takes one of {choices}, found {describe(tok)}", col=tok.col)
            self.i += 1
            return tok.text[1:-1]
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
                    raise ExpressionError(f"expected ',' or ']' in {key}=, found {describe(end)}", col=end.col)
        if keyword.choices and tok.kind == "string":  # a number keyword that also names values (ord="inf")
            if tok.text[1:-1] not in keyword.choices:
                choices = ", ".join(f'"{c}"' for c in keyword.choices)
                raise ExpressionError(f"{op}: {key}= takes {'an integer' if kind == 'int' else 'a number'} or one "
                                      f"of {choices}, found {describe(tok)}", col=tok.col)
            self.i += 1
            return tok.text[1:-1]
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
            raise ExpressionError(f"{op}: {key}= takes {what}, found {describe(tok)}", col=tok.col)
        self.i += 1
        value = sign * Fraction(tok.text)
        if kind == "int":
            if value.denominator != 1:
                raise ExpressionError(f"{op}: {key}= takes an integer, got {tok.text}", col=tok.col)
            if abs(value) > 1_000_000:
                raise ExpressionError(f"{op}: {key}= {value} is too large", col=tok.col)
            return int(value)
        try:
            finite = math.isfinite(float(value))
        except OverflowError:  # 1e999: the exact value is too large for a float to hold at all
            finite = False
        if not finite:
            raise ExpressionError(f"{op}: {key}= {tok.text} is outside the float64 range", col=tok.col)
        return value

