"""Subscripts and einsum's equation in the expression language: what parses, how it prints back, and
what is refused at which column."""

from __future__ import annotations

import dataclasses

import pytest

from gradspec.errors import ExpressionError
from gradspec.lang.expr import Apply, Name, parse
from gradspec.ops.table import TENSOR_OPS, Keyword


def spec(node: object) -> str:
    assert isinstance(node, Apply) and node.op == "index"
    return str(dict(node.kwargs)["spec"])


@pytest.mark.parametrize("text, canonical", [
    ("x[0]", "0"),
    ("x[-1]", "-1"),
    ("x[1:3, :, -1]", "1:3, :, -1"),
    ("x[..., None]", "..., None"),
    ("x[::2]", "::2"),
    ("x[::-1]", "::-1"),
    ("x[:-1:2, 3:]", ":-1:2, 3:"),
    ("x[::]", ":"),
    ("x[ 1 : 2 ,\n None ]", "1:2, None"),
])
def test_subscripts_keep_their_canonical_text(text: str, canonical: str) -> None:
    program = parse(text)
    assert spec(program.output) == canonical
    assert program.output.args == (Name("x"),)  # type: ignore[union-attr]
    assert program.output.col == 2  # type: ignore[union-attr]  # the "[" (where an index error points)


@pytest.mark.parametrize("text, printed", [
    ("x[0]", "x[0]"),
    ("-x[0] ** 2", "(-(x[0] ** 2))"),
    ("(x + y)[1:][0]", "(x + y)[1:][0]"),
    ("sum(x, axis=0)[None, ...]", "sum(x, axis=0)[None, ...]"),
    ("a = x[::-1]; a[0] * 2", "a = x[::-1]; (a[0] * 2)"),
    ('einsum("ij, jk -> ik", a, b)', 'einsum("ij,jk->ik", a, b)'),
    ('einsum("ii", x)[None]', 'einsum("ii", x)[None]'),
    ("x ** y[0]", "(x ** y[0])"),
])
def test_subscripts_and_einsum_print_back_as_written_and_reparse(text: str, printed: str) -> None:
    program = parse(text)
    assert str(program) == printed
    assert str(parse(str(program))) == printed


def test_a_subscript_binds_tighter_than_unary_minus_and_power() -> None:
    out = parse("-x[0] ** 2").output
    assert isinstance(out, Apply) and out.op == "neg"
    power = out.args[0]
    assert isinstance(power, Apply) and power.op == "pow" and spec(power.args[0]) == "0"


def test_einsum_keeps_its_equation_as_an_internal_keyword() -> None:
    out = parse('einsum("i, j", u, v)').output
    assert isinstance(out, Apply) and out.op == "einsum" and out.args == (Name("u"), Name("v"))
    assert dict(out.kwargs) == {"equation": "i,j"}


def test_a_subscript_on_a_multi_output_call_selects_the_output_then_indexes(monkeypatch: pytest.MonkeyPatch) -> None:
    # A two-output op (values, indices) in the table's shape: its first subscript picks the output.
    row = dataclasses.replace(TENSOR_OPS["flip"], name="pair", outputs=("values", "indices"), bare=None,
                              keywords=(*TENSOR_OPS["flip"].keywords, Keyword("output", "int", 0, internal=True)))
    monkeypatch.setitem(TENSOR_OPS, "pair", row)
    parse.cache_clear()
    try:
        out = parse("pair(x, axis=0)[1][0]").output
        assert spec(out) == "0"
        inner = out.args[0]  # type: ignore[union-attr]
        assert isinstance(inner, Apply) and inner.op == "pair" and dict(inner.kwargs)["output"] == 1
        assert str(out) == "pair(x, axis=0)[1][0]"
        assert str(parse("pair(x, axis=0)[0]").output) == "pair(x, axis=0)[0]"
        with pytest.raises(ExpressionError, match="returns 2 outputs"):
            parse("pair(x, axis=0)[2]")
    finally:
        parse.cache_clear()


def test_index_is_syntax_not_a_name() -> None:
    # The subscript op is not a callable, and its name stays free for inputs (an index tensor's name).
    assert parse("gather(x, index, axis=0)").inputs == ("x", "index")
    assert parse("index = x * 2; index[0]").intermediates == ("index",)
    with pytest.raises(ExpressionError, match="unknown function 'index'"):
        parse("index(x)")


REFUSED = [
    # text, column, a phrase of the message
    ("x[y]", 3, "a subscript takes integers, slices (a:b:s), None and ... as literals, found 'y'"),
    ("x[1.5]", 3, "found '1.5'"),
    ("x[1e3]", 3, "found '1e3'"),
    ("x[(0)]", 3, "found '('"),
    ("x[x[0]]", 3, "found 'x'"),
    ("x[]", 3, "expected an index"),
    ("x[0 1]", 5, "expected ',' or ']' in a subscript, found '1'"),
    ("x[0, 1", 7, "found the end of the expression"),
    ("x[None:1]", 7, "expected ',' or ']'"),
    ("x[0:1:0]", 3, "a slice step cannot be zero"),
    ("x[1:2:3:4]", 8, "expected ',' or ']'"),
    ("x[10000000]", 3, "index 10000000 is too large"),
    ("2[0]", 2, "a number cannot be subscripted"),
    ("[x]", 1, "brackets are not allowed"),
    ("x + [0]", 5, "brackets are not allowed"),
    ("x:y", 2, "':' is not allowed outside a subscript"),
    ("x...", 2, "'...' is allowed only inside a subscript"),
    ("None", 1, "'None' is a Python keyword"),
    ("x[0] + None", 8, "'None' is a Python keyword"),
    ("index(x)", 1, "unknown function 'index'"),
    ('sum("ij")', 5, "strings are not allowed, except as a keyword's value"),
    ('einsum(a, "ij")', 11, "strings are not allowed"),
    ("einsum(a)", 8, 'einsum takes its equation first, as a string: einsum("ij,jk->ik", a, b); found \'a\''),
    ('einsum("ij")', 12, "expected ',' and the operands after einsum's equation"),
    ('einsum("i;j", a)', 8, "strings are not allowed"),  # only letters, ',', '->' and spaces form a string
    ('einsum("i", a, equation="j")', 16, "einsum has no keyword 'equation' (keywords: none)"),
    ("x[0](1)", 5, "expected an operator or the end of the statement"),
]


@pytest.mark.parametrize("text, col, phrase", REFUSED, ids=[repr(t) for t, _, _ in REFUSED])
def test_refused_with_column(text: str, col: int, phrase: str) -> None:
    with pytest.raises(ExpressionError) as info:
        parse(text)
    assert info.value.col == col, info.value
    assert phrase in info.value.message
