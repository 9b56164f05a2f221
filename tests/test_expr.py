"""The expression language: what it accepts, what it refuses (with the column), and that it runs nothing."""

from __future__ import annotations

import builtins
import os
import subprocess
from fractions import Fraction

import pytest

from gradspec.errors import ExpressionError, GradspecError
from gradspec.lang import expr
from gradspec.lang.expr import MAX_DEPTH, MAX_LENGTH, MAX_NODES, Apply, Name, Num, Program, parse
from tests.conftest import quickly


def out(text: str):
    return parse(text).output


# -- accepted ---------------------------------------------------------------------------------------


def test_unary_minus_binds_looser_than_power() -> None:
    assert out("-x**2") == out("-(x**2)")
    assert out("-x**2") == Apply("neg", (Apply("pow", (Name("x"), Num(Fraction(2), "2"))),))
    assert out("-x**2") != out("(-x)**2")


def test_negative_exponent_folds_exactly() -> None:
    assert out("2**-1") == Num(Fraction(1, 2), "0.5")
    assert out("x**-1") == Apply("pow", (Name("x"), Num(Fraction(-1), "-1")))
    assert out("x**-y") == Apply("pow", (Name("x"), Apply("neg", (Name("y"),))))


def test_power_is_right_associative() -> None:
    assert out("x**y**z") == out("x**(y**z)")
    assert out("x**y**z") != out("(x**y)**z")
    assert out("2**3**2") == Num(Fraction(512), "512")  # 2**(3**2), not (2**3)**2 = 64
    assert out("x**2**3") == Apply("pow", (Name("x"), Num(Fraction(8), "8")))


def test_binary_precedence_and_left_associativity() -> None:
    assert out("x + y * z") == out("x + (y * z)")
    assert out("x - y - z") == out("(x - y) - z")
    assert out("x - y - z") != out("x - (y - z)")
    assert out("x / y / z") == out("(x / y) / z")
    assert out("x * y ** 2") == out("x * (y ** 2)")
    assert out("-x * y") == out("(-x) * y")
    assert out("+x") == Name("x")
    assert out("x - -y") == Apply("sub", (Name("x"), Apply("neg", (Name("y"),))))


def test_constants_fold_exactly_as_decimals() -> None:
    assert out("0.1*x").args[0] == Num(Fraction(1, 10), "0.1")
    assert out("x*(1/3 + 1/6)") == Apply("mul", (Name("x"), Num(Fraction(1, 2), "0.5")))
    assert out("1e-3 + x").args[0].value == Fraction(1, 1000)
    assert out(".5*x").args[0].value == Fraction(1, 2)
    # A non-rational constant stays an op node.
    assert out("x*sqrt(2)") == Apply("mul", (Name("x"), Apply("sqrt", (Num(Fraction(2), "2"),))))


def test_calls() -> None:
    assert out("tanh(x)") == Apply("tanh", (Name("x"),))
    assert out("exp(log(x) * 2)") == Apply("exp", (Apply("mul", (Apply("log", (Name("x"),)), Num(Fraction(2), "2"))),))


def test_assignments_with_semicolons_and_newlines() -> None:
    a = parse("a = x*y; b = a + x; b")
    b = parse("a = x*y\nb = a + x\nb")
    c = parse("a = x*y; b = a + x")
    for p in (a, b, c):
        assert isinstance(p, Program)
        assert p.intermediates == ("a", "b")
        assert p.inputs == ("x", "y")
        assert p.output == Name("b")
        assert p.assignments[0] == ("a", Apply("mul", (Name("x"), Name("y"))))
        assert p.assignments[1] == ("b", Apply("add", (Name("a"), Name("x"))))


def test_final_assignment_becomes_the_output() -> None:
    p = parse("a = x*2; c = a + 1")
    assert p.output == Name("c")
    assert p.intermediates == ("a", "c")
    q = parse("a = x*2; a + 1")
    assert q.output == Apply("add", (Name("a"), Num(Fraction(1), "1")))
    assert q.intermediates == ("a",)


def test_comments_and_blank_lines() -> None:
    p = parse("# header\n\na = x * 2  # double it\n;;\n  a + 1   # done\n")
    assert p.intermediates == ("a",)
    assert p.output == Apply("add", (Name("a"), Num(Fraction(1), "1")))
    assert p.inputs == ("x",)


def test_newlines_inside_parentheses_continue_the_line() -> None:
    assert out("(x +\n y)") == out("x + y")
    assert out("tanh(\n  x\n)") == out("tanh(x)")
    assert parse("a = (x\n * y)\na").intermediates == ("a",)


def test_inputs_in_order_of_first_use() -> None:
    assert parse("y*x + z").inputs == ("y", "x", "z")
    assert parse("a = z*2; a + y + z").inputs == ("z", "y")


def test_limits_are_inclusive() -> None:
    assert out("x**1024") == Apply("pow", (Name("x"), Num(Fraction(1024), "1024")))
    nested = "(" * (MAX_DEPTH - 1) + "x" + ")" * (MAX_DEPTH - 1)
    assert out(nested) == Name("x")


def test_a_flat_sum_within_the_limits_parses() -> None:
    # 1001 terms, about 4,000 characters and 2,001 nodes: far inside MAX_LENGTH and MAX_NODES.
    text = "x" + " + x" * 1000
    p = parse(text)
    assert p.inputs == ("x",)
    assert p.output.op == "add"


def test_program_text_reparses_to_the_same_program() -> None:
    for text in ("(-2)**x", "x - (y - z)", "-x**2", "(x*y + x)**2 - tanh(y)", "a = x*y; b = a + x"):
        p = parse(text)
        again = parse(str(p))
        assert again.output == p.output, (text, str(p))
        assert again.assignments == p.assignments


def test_parse_is_cached() -> None:
    assert parse("x*y + 1") is parse("x*y + 1")


# -- keywords on scalar ops, strings, where with comparisons --------------------------------------------


def test_keyword_values_bind_the_op_and_the_defaults_are_the_plain_op() -> None:
    assert out("softplus(x, beta=2)") == Apply("softplus[beta=2]", (Name("x"),))
    assert out("softplus(x, beta=1, threshold=20)") == out("softplus(x)") == Apply("softplus", (Name("x"),))
    assert out('gelu(x, approximate="tanh")') == Apply("gelu[approximate=tanh]", (Name("x"),))
    assert out("gelu(x, approximate='none')") == Apply("gelu", (Name("x"),))
    assert out("clamp(x, max=1, min=-0.5)") == Apply("clamp[min=-1/2,max=1]", (Name("x"),))
    assert out("leaky_relu(x, negative_slope=-0.25)").op == "leaky_relu[negative_slope=-1/4]"
    assert out("hardtanh(x, min_val=-2)").op == "hardtanh[min_val=-2]"


def test_where_takes_a_comparison_of_expressions() -> None:
    got = out("where(x * y <= y + 1, x, 0.5)")
    assert got == Apply("where[cmp=<=]", (Apply("mul", (Name("x"), Name("y"))), Apply("add", (Name("y"), Num(Fraction(1), "1"))),
                                           Name("x"), Num(Fraction(1, 2), "0.5")))
    assert out("where(x > 0, x, y)").op == "where"  # > is where's default comparison
    assert [out(f"where(x {c} 0, x, y)").op for c in ("<", "<=", ">=", "==", "!=")] == [
        "where[cmp=<]", "where[cmp=<=]", "where[cmp=>=]", "where[cmp===]", "where[cmp=!=]"]
    assert out("where(where(x > 1, x, y) < y, 1, x)").args[0] == out("where(x > 1, x, y)")
    assert parse("where(x > 0, x, y)").inputs == ("x", "y")


def test_keyword_and_where_calls_print_as_they_are_written_and_reparse() -> None:
    for text in ("softplus(x, beta=2, threshold=10)", 'gelu(x, approximate="tanh")', "where(x > y, x, (y * 2))",
                 "where((x * y) != 1, x, y)", "clamp(x, min=-0.5)", "((x + maximum(x, y)) * atan2(y, x))"):
        p = parse(text)
        assert str(p) == text
        assert parse(str(p)).output == p.output
    assert str(parse("softplus(x, beta=1)")) == "softplus(x)"


def test_a_comparison_of_constants_folds_to_the_chosen_branch() -> None:
    assert out("where(1 > 2, 3, 4)") == Apply("where", tuple(Num(Fraction(v), str(v)) for v in (1, 2, 3, 4)))
    assert parse("where(1 > 2, 3, 4) + x").inputs == ("x",)


# -- refused ----------------------------------------------------------------------------------------

REFUSED = [
    # text, column, a phrase of the message
    ("__import__('os').system('ls')", 12, "strings are not allowed"),
    ("__import__(os)", 1, "unknown function '__import__'"),
    ("eval(x)", 1, "unknown function 'eval'"),
    ("x.y", 2, "attribute access"),
    ("lambda x: x", 1, "keyword"),
    ("[x for x in y]", 1, "brackets are not allowed"),
    ("'abc'", 1, "strings are not allowed"),
    ('x + "a"', 5, "strings are not allowed"),
    ("tanh(x=1)", 6, "tanh takes no keyword arguments"),
    ("sum(x, dim=1)", 8, "sum has no keyword 'dim' (keywords: axis)"),
    ("sum(x, axis=1.5)", 13, "axis= takes an integer"),
    ("sum(x, axis=y)", 13, "axis= takes an integer, found 'y'"),
    ("reshape(x)", 1, "reshape needs the keyword shape="),
    ("reshape(x, shape=[2, x])", 22, "shape= takes an integer"),
    ("sum(x, axis=[1])", 13, "axis= takes an integer, found '['"),
    ("softmax(axis=1, x)", 17, "a positional argument cannot follow a keyword argument"),
    ("sum(x, axis=1, axis=2)", 16, "keyword 'axis' is given twice"),
    ("x * [0]", 5, "brackets are not allowed"),  # a subscript follows an expression (tests/test_expr_index.py)
    ("[x, y]", 1, "brackets are not allowed"),
    ("sum = x; sum(x)", 1, "'sum' is an op and cannot be assigned"),
    ("foo(x)", 1, "unknown function 'foo'"),
    ("x + foo(x)", 5, "unknown function 'foo'"),
    ("tanh(x, y)", 1, "tanh takes 1 argument, got 2"),
    ("1 + tanh(x, y)", 5, "tanh takes 1 argument, got 2"),
    ("tanh()", 1, "tanh takes 1 argument, got 0"),
    ("x**10**10", 2, "exponent 10000000000 is too large"),
    ("9**9**9", 2, "exponent 387420489 is too large"),
    ("x**1025", 2, "too large"),
    ("2**1024", 2, "outside the float64 range"),
    ("1e999", 1, "outside the float64 range"),
    ("x + 1e999", 5, "outside the float64 range"),
    ("1e-999", 1, "outside the float64 range"),
    ("", 1, "empty expression"),
    ("  # only a comment\n", 1, "empty expression"),
    ("a = x; a = y; a", 8, "'a' is assigned twice"),
    ("tanh = x; tanh(x)", 1, "'tanh' is an op and cannot be assigned"),
    ("tanh + x", 1, "'tanh' is an op"),
    ("x + exp", 5, "'exp' is an op"),
    ("x y", 3, "expected an operator or the end of the statement"),
    ("x = x + 1; x", 5, "used in its own definition"),
    ("a = x; x = a; x", 5, "used as an input before it is assigned"),
    ("x; y", 1, "only the last statement may be a bare expression"),
    ("x // y", 3, "'//'"),
    ("x == y", 3, "comparisons are allowed only as where's first argument"),
    ("x + (y < 1)", 8, "comparisons are allowed only as where's first argument"),
    ("tanh(x >= 0)", 8, "a comparison is data, not a value"),
    ("a = x != y; a", 7, "comparisons are allowed only"),
    ("where(x, y, 1)", 7, "where's first argument must be a comparison such as x > 0, found ','"),
    ("where((x > 0), y, 1)", 10, "comparisons are allowed only"),
    ("where(x > 0 > y, 1, x)", 13, "comparisons are allowed only"),
    ("where(x > 0, y)", 1, "where takes 3 arguments, got 2"),
    ("where(x > 0, x, y, 1)", 1, "where takes 3 arguments, got 4"),
    ("where(x > 0, x, y, cmp=1)", 20, "where takes no keyword arguments"),
    ("x => y", 4, "expected a number, a name or '(', found '>'"),
    ("x <> y", 3, "comparisons are allowed only"),
    ('gelu(x, approximate="exact")', 21, 'gelu: approximate= takes one of "none", "tanh", found \'"exact"\''),
    ("gelu(x, approximate=1)", 21, 'approximate= takes one of "none", "tanh", found \'1\''),
    ('softplus(x, beta="tanh")', 18, "softplus: beta= takes a number, found '\"tanh\"'"),
    ("softplus(x, beta=y)", 18, "softplus: beta= takes a number, found 'y'"),
    ("softplus(x, gamma=2)", 13, "softplus has no keyword 'gamma' (keywords: beta, threshold)"),
    ("elu(x, alpha=1, alpha=2)", 17, "keyword 'alpha' is given twice"),
    ("elu(alpha=1, x)", 14, "a positional argument cannot follow a keyword argument"),
    ("elu(x, 2)", 1, "elu takes 1 argument, got 2"),
    ("maximum(x)", 1, "maximum takes 2 arguments, got 1"),
    ("atan2(x, y, z)", 1, "atan2 takes 2 arguments, got 3"),
    ("layer_norm(x, eps=1e999)", 19, "eps= 1e999 is outside the float64 range"),
    ("x + 'tanh'", 5, "strings are not allowed, except as a keyword's value"),
    ('a = "tanh"; x', 5, "strings are not allowed, except as a keyword's value"),
    ('sum(x, axis="0")', 13, "sum: axis= takes an integer, found '\"0\"'"),
    ("clamp(x, min=1e999)", 14, "outside the float64 range"),
    ("log1p(-1)", 1, "not a finite float64 number"),
    ("x @ @ y", 5, "expected a number, a name or '('"),
    ("{x}", 1, "braces"),
    ("x:y", 2, "':' is not allowed"),
    ("1x", 1, "malformed number"),
    ("x +", 4, "found the end of the expression"),
    ("(x", 3, "expected ')'"),
    ("x +\n1", 4, "found a line break"),
    ("if", 1, "keyword"),
    ("1/0", 2, "division by zero in a constant"),
    ("0**-1", 2, "zero to a negative power"),
    ("log(0)", 1, "not a finite float64 number"),
    ("x * sqrt(-1)", 5, "not a finite float64 number"),
]


@pytest.mark.parametrize("text, col, phrase", REFUSED, ids=[repr(t) for t, _, _ in REFUSED])
def test_refused_with_column(text: str, col: int, phrase: str) -> None:
    with quickly(), pytest.raises(ExpressionError) as info:
        parse(text)
    err = info.value
    assert isinstance(err, GradspecError)
    assert err.col == col, err
    assert err.expr_col == col
    assert phrase in err.message
    assert str(err) == f"column {col}: {err.message}"


def test_ten_thousand_nested_parentheses() -> None:
    text = "(" * 10_000 + "x" + ")" * 10_000
    with quickly(), pytest.raises(ExpressionError) as info:
        parse(text)
    assert info.value.col == MAX_DEPTH + 1
    assert f"deeper than {MAX_DEPTH}" in info.value.message


@pytest.mark.parametrize("text", ["-" * 10_000 + "x", "x" + "**x" * 10_000], ids=["unary", "power"])
def test_deep_unary_and_power_chains_are_refused(text: str) -> None:
    with quickly(), pytest.raises(ExpressionError, match="deeper than"):
        parse(text)


def test_one_megabyte_expression() -> None:
    text = "x+" * 500_000 + "x"
    assert len(text) > 1_000_000
    with quickly(), pytest.raises(ExpressionError) as info:
        parse(text)
    assert info.value.col == 1
    assert f"limit is {MAX_LENGTH}" in info.value.message


def test_too_many_nodes(monkeypatch: pytest.MonkeyPatch) -> None:
    text = "x+" * 15_000 + "x"  # under MAX_LENGTH characters, over MAX_NODES nodes
    assert len(text) < MAX_LENGTH
    counted = []
    count = expr._Parser.count
    monkeypatch.setattr(expr._Parser, "count", lambda self, col: (counted.append(col), count(self, col))[1])
    with pytest.raises(ExpressionError, match="nodes"):
        parse(text)
    assert len(counted) == MAX_NODES + 1  # refused at the first node over the limit: no work after it


def test_not_a_string() -> None:
    with pytest.raises(ExpressionError, match="must be a string") as info:
        parse(5)  # type: ignore[arg-type]
    assert info.value.col == 1


# -- nothing runs -----------------------------------------------------------------------------------

HOSTILE = [
    "__import__('os').system('ls')",
    "__import__(os).system(ls)",
    "os.system(ls)",
    "exec(x)",
    "eval(x)",
    "open(x)",
    "sentinel_fn(x)",
    "compile(x, x, x)",
    "breakpoint()",
    "getattr(x, y)",
    "(lambda: sentinel_fn())()",
    "[sentinel_fn() for _ in x]",
]


def test_parsing_hostile_text_runs_no_code(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[str, object]] = []

    def recorder(label: str):
        def record(*args, **kwargs):
            calls.append((label, args))

        return record

    def recording_import(name, *args, **kwargs):
        calls.append(("import", name))
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(os, "system", recorder("os.system"))
    monkeypatch.setattr(subprocess, "Popen", recorder("subprocess.Popen"))
    monkeypatch.setattr(builtins, "sentinel_fn", recorder("sentinel_fn"), raising=False)
    real_import, real_eval, real_exec = builtins.__import__, builtins.eval, builtins.exec
    errors = []
    # Patched only around the parse calls, so that nothing else (pytest included) sees the recorders.
    builtins.__import__, builtins.eval, builtins.exec = recording_import, recorder("eval"), recorder("exec")
    try:
        for text in HOSTILE:
            try:
                parse(text)
            except ExpressionError as exc:
                errors.append(exc)
    finally:
        builtins.__import__, builtins.eval, builtins.exec = real_import, real_eval, real_exec
    assert calls == []
    assert len(errors) == len(HOSTILE)
    # The recorders do record when called: the empty list above is a real observation.
    os.system("true")
    builtins.sentinel_fn()  # type: ignore[attr-defined]
    assert [c[0] for c in calls] == ["os.system", "sentinel_fn"]


def test_a_name_that_looks_dangerous_is_only_a_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    import gradspec

    calls: list[str] = []
    monkeypatch.setattr(os, "system", lambda *a: calls.append("os.system"))
    p = parse("__import__ * system + 1")
    assert p.inputs == ("__import__", "system")
    result = gradspec.check("__import__ * system + 1", {"__import__": 2, "system": 3})
    assert result.verdict.value == "pass"
    grads = {q.name: q.engine for q in result.quantities}
    assert grads == {"value": 7.0, "__import__": 3.0, "system": 2.0}
    assert calls == []
