"""Subscripts of the expression language: NumPy basic indexing with literals.

``x[1]``, ``x[a:b:s, :, -1]``, ``x[..., None]``: every item is an integer literal (signed), a slice of
integer literals with any part omitted, ``None`` (a new axis) or ``...`` (the axes not named). Nothing
else is an index: a name, an expression or a float inside the brackets is refused at its column. A
subscript is kept as its canonical text (items joined by ", "), the ``spec`` of the tensor op
``index``, which the shape rule, the lowering and every library read back with
:func:`gradspec.ops.shapes.index.index_items`.
"""

from __future__ import annotations

from gradspec.errors import ExpressionError
from gradspec.lang.tokens import Tok, describe

__all__ = ["MAX_INDEX", "read_subscript"]

MAX_INDEX = 1_000_000  # |i| of an index or slice bound
_ITEMS = "integers, slices (a:b:s), None and ..."


def read_subscript(toks: list[Tok], i: int) -> tuple[str, int]:
    """The canonical text of the subscript whose "[" is ``toks[i]``, and the index after its "]"."""
    reader = _Reader(toks, i + 1)
    items: list[str] = []
    while True:
        items.append(reader.item())
        end = reader.take()
        if end.text == "]":
            return ", ".join(items), reader.i
        if end.text != ",":
            raise ExpressionError(f"expected ',' or ']' in a subscript, found {describe(end)}", col=end.col)


class _Reader:
    def __init__(self, toks: list[Tok], i: int) -> None:
        self.toks = toks
        self.i = i

    def peek(self) -> Tok:
        while self.toks[self.i].text == "\n":  # a subscript may span lines, as parentheses may
            self.i += 1
        return self.toks[self.i]

    def take(self) -> Tok:
        tok = self.peek()
        if tok.kind != "end":
            self.i += 1
        return tok

    def item(self) -> str:
        tok = self.peek()
        if tok.text in ("...", "None"):
            self.i += 1
            return tok.text
        parts = [self.bound()]
        while self.peek().text == ":" and len(parts) < 3:
            self.i += 1
            parts.append(self.bound())
        if parts == [None]:
            raise ExpressionError(f"expected an index ({_ITEMS}), found {describe(tok)}", col=tok.col)
        if len(parts) == 1:
            return str(parts[0])
        if len(parts) == 3 and parts[2] == 0:
            raise ExpressionError("a slice step cannot be zero", col=tok.col)
        shown = ["" if p is None else str(p) for p in parts]
        return ":".join(shown if len(parts) == 3 and parts[2] is not None else shown[:2])

    def bound(self) -> int | None:
        """A signed integer literal, or None where the slice omits it."""
        tok = self.peek()
        if tok.text in (":", ",", "]"):
            return None
        sign = 1
        if tok.text == "-":
            sign = -1
            self.i += 1
            tok = self.peek()
        if tok.kind != "number" or not tok.text.isdigit():
            raise ExpressionError(f"a subscript takes {_ITEMS} as literals, found {describe(tok)}", col=tok.col)
        self.i += 1
        value = sign * int(tok.text)
        if abs(value) > MAX_INDEX:
            raise ExpressionError(f"index {value} is too large", col=tok.col)
        return value
