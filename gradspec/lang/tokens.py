"""The tokenizer of the expression language: a whitelist of numbers, names and operators.

Anything else (strings other than a keyword's value or einsum's equation, attribute access, brackets
that neither open a keyword's integer list nor subscript an expression, slices and ``None`` outside a
subscript, Python keywords) is refused here, with the column and a reason, before the parser sees it.
"""

from __future__ import annotations

import keyword
import re
from dataclasses import dataclass

from gradspec.errors import ExpressionError

__all__ = ["REFUSED", "STRINGS", "STRING_CALLS", "Tok", "describe", "tokenize"]


_TOKEN = re.compile(
    r"""(?P<space>[ \t\r]+|\#[^\n]*)
      | (?P<number>(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)
      | (?P<name>[A-Za-z_][A-Za-z_0-9]*)
      | (?P<string>"[A-Za-z0-9_,>\- ]*"|'[A-Za-z0-9_,>\- ]*')
      | (?P<op>\*\*|==|!=|<=|>=|//|\.\.\.|[-+*/@(),=;:\n\[\]<>])
    """,
    re.VERBOSE,
)
STRINGS = ('strings are not allowed, except as a keyword\'s value (approximate="tanh") and as einsum\'s equation '
           '(einsum("ij,jk->ik", a, b))')
#: Ops whose first positional argument is a string (the equation), not an expression.
STRING_CALLS = ("einsum",)
# Tokens after which "[" subscripts what came before: the end of a name, a number, a call or a subscript.
_SUBSCRIPTED = ("name", "number")
REFUSED = {
    "'": "strings are not allowed",
    '"': "strings are not allowed",
    ".": "attribute access is not allowed",
    "[": "brackets are not allowed (no lists, indexing or comprehensions)",
    "]": "brackets are not allowed (no lists, indexing or comprehensions)",
    "{": "braces are not allowed",
    "}": "braces are not allowed",
    ":": "':' is not allowed outside a subscript (no lambdas or annotations)",
    "...": "'...' is allowed only inside a subscript (x[..., 0])",
    "//": "operator '//' is not supported; use + - * / **",
}


@dataclass(frozen=True)
class Tok:
    kind: str  # number, name, op, end
    text: str
    col: int  # 1-based column in the whole text (the loader maps it to a line)


def tokenize(text: str) -> list[Tok]:
    toks: list[Tok] = []
    pos = 0
    # Open brackets, innermost last: "list" (a keyword's integer list) or "subscript" (x[...]).
    open_brackets: list[str] = []
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        col = pos + 1
        if m is None:
            ch = text[pos]
            reason = REFUSED.get(ch) or f"unexpected character {ch!r}; expressions use numbers, names, + - * / ** and calls"
            raise ExpressionError(reason, col=col)
        kind = m.lastgroup or ""
        tok = m.group()
        if kind == "number" and pos + len(tok) < len(text) and (text[pos + len(tok)].isalpha() or text[pos + len(tok)] == "_"):
            raise ExpressionError(f"malformed number {tok + text[pos + len(tok)]!r}", col=col)
        # Brackets open a keyword's integer list (`shape=[3, 4]`) or subscript what precedes them
        # (`x[0]`, `f(x)[1:]`); anywhere else they would be a list literal or a comprehension.
        inside = open_brackets[-1] if open_brackets else None
        if tok == "[" and toks and toks[-1].text == "=" and inside != "list":
            open_brackets.append("list")
        elif tok == "[" and toks and (toks[-1].kind in _SUBSCRIPTED or toks[-1].text in (")", "]")) and inside != "list":
            open_brackets.append("subscript")
        elif tok == "]" and open_brackets:
            open_brackets.pop()
        elif tok in (":", "...") and inside == "subscript":
            pass
        elif kind == "op" and tok in REFUSED:
            raise ExpressionError(REFUSED[tok], col=col)
        # A string is a keyword's value (approximate="tanh") or einsum's equation, and nothing else.
        if kind == "string" and not (toks and toks[-1].text == "=") and not (
                len(toks) > 1 and toks[-1].text == "(" and toks[-2].text in STRING_CALLS):
            raise ExpressionError(STRINGS, col=col)
        if kind == "name" and keyword.iskeyword(tok) and not (tok == "None" and inside == "subscript"):
            raise ExpressionError(f"{tok!r} is a Python keyword; expressions cannot use it", col=col)
        if kind != "space":
            toks.append(Tok(kind, tok, col))
        pos = m.end()
    toks.append(Tok("end", "", len(text) + 1))
    return toks


def describe(tok: Tok) -> str:
    if tok.kind == "end":
        return "the end of the expression"
    if tok.text == "\n":
        return "a line break"
    return repr(tok.text)
