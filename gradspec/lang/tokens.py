"""The tokenizer of the expression language: a whitelist of numbers, names and operators.

Anything else (strings other than a keyword's value, attribute access, brackets outside a keyword's
integer list, Python keywords) is refused here, with the column and a reason, before the parser sees it.
"""

from __future__ import annotations

import keyword
import re
from dataclasses import dataclass

from gradspec.errors import ExpressionError

__all__ = ["REFUSED", "STRINGS", "Tok", "describe", "tokenize"]


_TOKEN = re.compile(
    r"""(?P<space>[ \t\r]+|\#[^\n]*)
      | (?P<number>(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)
      | (?P<name>[A-Za-z_][A-Za-z_0-9]*)
      | (?P<string>"[A-Za-z0-9_]*"|'[A-Za-z0-9_]*')
      | (?P<op>\*\*|==|!=|<=|>=|//|[-+*/@(),=;\n\[\]<>])
    """,
    re.VERBOSE,
)
STRINGS = 'strings are not allowed, except as a keyword\'s value (approximate="tanh")'
REFUSED = {
    "'": "strings are not allowed",
    '"': "strings are not allowed",
    ".": "attribute access is not allowed",
    "[": "brackets are not allowed (no lists, indexing or comprehensions)",
    "]": "brackets are not allowed (no lists, indexing or comprehensions)",
    "{": "braces are not allowed",
    "}": "braces are not allowed",
    ":": "':' is not allowed (no lambdas, slices or annotations)",
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
    in_list = in_output = False
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
        # Brackets only open a keyword's integer list (`shape=[3, 4]`) and close it; anywhere else
        # they would be indexing or a list literal.
        # and subscript a multi-output call (`slogdet(a)[1]`; the parser checks the call takes one).
        if tok == "[" and toks and toks[-1].text == "=" and not in_list:
            in_list = True
        elif tok == "]" and in_list:
            in_list = False
        elif tok == "[" and toks and toks[-1].text == ")" and not (in_list or in_output):
            in_output = True
        elif tok == "]" and in_output:
            in_output = False
        elif kind == "op" and tok in REFUSED:
            raise ExpressionError(REFUSED[tok], col=col)
        # A string is a keyword's value (approximate="tanh") and nothing else: it follows an "=".
        if kind == "string" and not (toks and toks[-1].text == "="):
            raise ExpressionError(STRINGS, col=col)
        if kind == "name" and keyword.iskeyword(tok):
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
