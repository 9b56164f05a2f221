"""Case files: every bad input is a located CaseFileError (and exit 2 from `gradspec validate`); valid files
load into the right frozen objects, and sampled points are deterministic."""

from __future__ import annotations

import dataclasses
import io
import math
import random
import time
from collections.abc import Callable
from fractions import Fraction
from pathlib import Path

import pytest

from gradspec.casefile.loader import errors_of, load_file
from gradspec.casefile.model import Case, ChainRule, Linearity, Point, Training
from gradspec.cli import main
from gradspec.errors import CaseFileError
from gradspec.results import Tolerance

HOSTILE = Path(__file__).resolve().parent / "data" / "hostile"

# file -> every error it must produce, in order: (line, col, fragment of the message)
CORPUS: dict[str, list[tuple[int, int, str]]] = {
    # YAML
    "malformed_flow.yaml": [(5, 7, "invalid YAML: expected ',' or '}', but got ':'")],
    "malformed_indent.yaml": [(4, 4, "invalid YAML: expected <block end>")],
    "tab_indent.yaml": [(4, 1, "YAML indentation must use spaces, not tabs")],
    "duplicate_key.yaml": [(5, 5, "duplicate key 'expr' (first at line 3)")],
    "python_apply.yaml": [(2, 9, "tag 'tag:yaml.org,2002:python/object/apply:os.system' is not allowed")],
    "python_apply_top.yaml": [(1, 1, "python/object/apply:os.system' is not allowed")],
    "python_name.yaml": [(3, 11, "python/name:os.system' is not allowed; case files use plain YAML values only")],
    "local_tag.yaml": [(3, 11, "tag '!expr' is not allowed")],
    "alias_bomb.yaml": [(6, 4, "the document expands to more than 200000 values (alias bomb?)")],
    "deep_nesting.yaml": [(1, 1, "YAML nested deeper than 64 levels")],
    "long_integer.yaml": [(4, 13, "integer literal is too long")],
    "empty.yaml": [(1, 1, "the file is empty")],
    "comment_only.yaml": [(1, 1, "the file is empty")],
    "non_utf8.yaml": [(2, 12, "not UTF-8: byte 0xe9 cannot be decoded")],
    "utf16.yaml": [(1, 1, "not UTF-8: byte 0xff cannot be decoded")],
    "nul_bytes.yaml": [(3, 12, "binary data: the file contains NUL bytes")],
    "binary_garbage.yaml": [(2, 118, "not UTF-8: byte 0x80 cannot be decoded")],
    # schema
    "missing_cases.yaml": [(1, 1, "'cases' is a required property")],
    "missing_id.yaml": [(2, 5, "cases[0]: 'id' is a required property")],
    "wrong_type.yaml": [(3, 11, "cases[0].expr: 5 is not of type 'string'")],
    "wrong_type_count.yaml": [(5, 14, "cases[0].sample.count: 'many' is not of type 'integer'")],
    "unknown_key.yaml": [(3, 5, "unknown key 'exprs' in cases[0]; did you mean 'expr'?")],
    "unknown_key_top.yaml": [(2, 1, "unknown key 'default'; did you mean 'defaults'?")],
    "top_level_list.yaml": [(1, 1, "is not of type 'object'")],
    # meaning
    "missing_expr.yaml": [(2, 5, "a gradient case needs 'expr'")],
    "duplicate_id.yaml": [(5, 9, "duplicate case id 'twin' (first at line 2)")],
    "nan_input.yaml": [(4, 13, "input x is nan; inputs must be finite numbers")],
    "inf_input.yaml": [(6, 19, "input y is -inf; inputs must be finite numbers")],
    "expr_plain.yaml": [(3, 15, "expr: expected a number, a name or '(', found '*'")],
    "expr_quoted.yaml": [(3, 16, "expr: expected a number, a name or '(', found '*'")],
    "expr_single_quoted.yaml": [(3, 22, "expr: expected a number, a name or '(', found '@'")],
    "expr_block.yaml": [(5, 15, "expr: unexpected character '$'")],
    "expr_python.yaml": [(3, 22, "expr: strings are not allowed")],
    "expr_deep_parens.yaml": [(3, 111, "expr: expression nested deeper than 100 levels")],
    "expr_huge_exponent.yaml": [(3, 13, "expr: exponent 100000 is too large (limit 1024)")],
    "log_negative.yaml": [(6, 9, "point x=-1 is outside the domain: log needs x > 0")],
    "div_zero.yaml": [(4, 9, "point x=3,y=3 is outside the domain: division by zero")],
    "kink_undeclared.yaml": [(4, 9, "point x=0,y=2 lies on a kink (relu at 0); declare `kink: convention` or `kink: any`")],
    "expect_contradicts.yaml": [(9, 12, "expect.grad.y = 3 contradicts the exact d/dy = 2.0 at x=2,y=3")],
    "expect_value_contradicts.yaml": [(5, 21, "expect.value = 10 contradicts the exact value = 9.0 at x=3")],
    "expect_domain_inside.yaml": [(6, 14, "expect.error is 'domain' but point x=1 is inside every op's domain")],
    "undefined_variable.yaml": [(3, 19, "expr: undefined variable 'w' (inputs: x, y)")],
    "unknown_op.yaml": [(3, 15, "expr: unknown function 'frobnicate'")],
    "several_errors.yaml": [
        (14, 5, "unknown key 'tolerence' in cases[3]; did you mean 'tolerance'?"),
        (6, 15, "expr: undefined variable 'w' (inputs: x)"),
        (10, 9, "point x=-1 is outside the domain: log needs x > 0"),
        (15, 9, "duplicate case id 'ok' (first at line 2)"),
    ],
}


def test_corpus_table_covers_every_file() -> None:
    on_disk = {p.name for p in HOSTILE.glob("*.yaml")}
    assert on_disk - {"sqrt_negative_sampled.yaml"} == set(CORPUS)


@pytest.mark.parametrize("name", sorted(CORPUS))
def test_hostile_corpus(name: str, assert_invalid: Callable[..., list[str]]) -> None:
    assert_invalid(HOSTILE / name, CORPUS[name])


def test_case_ids_in_messages(assert_invalid: Callable[..., list[str]]) -> None:
    lines = assert_invalid(HOSTILE / "several_errors.yaml", CORPUS["several_errors.yaml"])
    path = HOSTILE / "several_errors.yaml"
    assert lines == [
        f"{path}:14:5: [typo] unknown key 'tolerence' in cases[3]; did you mean 'tolerance'?",
        f"{path}:6:15: [undefined] expr: undefined variable 'w' (inputs: x)",
        f"{path}:10:9: [domain] point x=-1 is outside the domain: log needs x > 0, got x = -1.0 (in log(x))",
        f"{path}:15:9: [ok] duplicate case id 'ok' (first at line 2)",
    ]


def test_python_tag_does_not_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    for name in ("python_apply.yaml", "python_apply_top.yaml", "expr_python.yaml"):
        with pytest.raises(CaseFileError):
            load_file(HOSTILE / name)
    assert not (tmp_path / "SENTINEL").exists()
    assert list(tmp_path.iterdir()) == []


def test_ten_megabyte_file(write_case: Callable[..., Path], assert_invalid: Callable[..., list[str]]) -> None:
    raw = b"cases:\n" + b"  - {id: a, expr: x * y, at: {x: 1, y: 2}}\n" * 250_000
    assert len(raw) >= 10_000_000
    path = write_case(raw)
    assert_invalid(path, [(1, 1, f"file is {len(raw)} bytes; the limit is 1000000")])


def test_missing_file_is_a_located_error(tmp_path: Path) -> None:
    with pytest.raises(CaseFileError) as info:
        load_file(tmp_path / "nope.gradspec.yaml")
    assert info.value.message.startswith("cannot read: ")
    assert info.value.path == str(tmp_path / "nope.gradspec.yaml")


def test_sampled_points_outside_the_domain(assert_invalid: Callable[..., list[str]]) -> None:
    path = HOSTILE / "sqrt_negative_sampled.yaml"
    with pytest.raises(CaseFileError) as info:
        load_file(path)
    errors = errors_of(info.value)
    assert 1 <= len(errors) <= 20
    for e in errors:
        assert (e.line, e.col) == (5, 7)  # the `sample` mapping
        assert e.message.startswith("point x=-")
        assert "sqrt needs x >= 0" in e.message
        assert e.message.endswith("; narrow the sampled range or add an exclusion")
    assert_invalid(path, [(5, 7, "outside the domain")] * len(errors))


def test_sampled_exclusion_fixes_the_domain(write_case: Callable[..., Path]) -> None:
    text = (HOSTILE / "sqrt_negative_sampled.yaml").read_text().replace("{uniform: [-1, 1]}", "{uniform: [-1, 1], exclude: [[-1, 0]]}")
    case = load_file(write_case(text)).cases[0]
    assert len(case.points) == 20
    assert all(p.exact()["x"] > 0 for p in case.points)


# -- more refusals, written inline ----------------------------------------------------------------------


def errors(path: Path) -> list[str]:
    with pytest.raises(CaseFileError) as info:
        load_file(path)
    return [str(e) for e in errors_of(info.value)]


def test_gradient_case_without_inputs(write_case: Callable[..., Path]) -> None:
    path = write_case("""
        cases:
          - id: lonely
            expr: x * y
        """)
    assert errors(path) == [f"{path}:2:5: [lonely] a gradient case needs inputs: `at` (points) or `sample` (a sampled domain)"]


def test_keys_of_another_kind(write_case: Callable[..., Path]) -> None:
    path = write_case("""
        cases:
          - id: mixed
            expr: x
            repeat: 3
            at: {x: 1}
        """)
    assert errors(path) == [f"{path}:4:5: [mixed] 'repeat' does not apply to a gradient case"]


def test_at_and_sample_together(write_case: Callable[..., Path]) -> None:
    path = write_case("""
        cases:
          - id: both
            expr: x
            at: {x: 1}
            sample: {count: 2, vars: {x: {uniform: [0, 1]}}}
        """)
    assert errors(path) == [f"{path}:5:5: [both] give the inputs as `at` or as `sample`, not both"]


def test_points_with_different_variables(write_case: Callable[..., Path]) -> None:
    path = write_case("""
        cases:
          - id: ragged
            expr: x + y
            at:
              - {x: 1, y: 2}
              - {x: 1}
        """)
    lines = errors(path)
    assert lines == [f"{path}:6:9: [ragged] every point must give the same variables"]


def test_boolean_is_not_a_number(write_case: Callable[..., Path]) -> None:
    path = write_case("""
        cases:
          - id: b
            expr: x
            at: {x: true}
        """)
    (line,) = errors(path)
    assert line.startswith(f"{path}:4:")


def test_wrong_type_inside_a_point_is_located_at_the_value(write_case: Callable[..., Path]) -> None:
    """`at` is anyOf(point, list of points): the error must name the bad number, not the whole mapping."""
    path = write_case("""
        cases:
          - id: a
            expr: x * y
            at: {x: 1, y: two}
        """)
    assert errors(path) == [f"{path}:4:19: [a] cases[0].at.y: 'two' is not of type 'number', 'array'"]


def test_wrong_type_inside_a_point_list_is_located_at_the_value(write_case: Callable[..., Path]) -> None:
    path = write_case("""
        cases:
          - id: a
            expr: x
            at:
              - {x: 1}
              - {x: one}
        """)
    assert errors(path) == [f"{path}:6:13: [a] cases[0].at[1].x: 'one' is not of type 'number', 'array'"]


def test_yaml11_boolean_words_are_not_booleans(write_case: Callable[..., Path]) -> None:
    path = write_case("""
        cases:
          - id: a
            expr: x
            at: {x: 1}
            expect: {finite: yes}
        """)
    assert errors(path) == [f"{path}:5:22: [a] cases[0].expect.finite: 'yes' is not of type 'boolean'"]


def test_linearity_needs_its_coefficients(write_case: Callable[..., Path]) -> None:
    path = write_case("""
        cases:
          - id: lin
            kind: linearity
            f: x ** 2
            g: x
            at: {x: 1, a: 2}
        """)
    assert errors(path) == [f"{path}:6:9: [lin] a linearity case needs the coefficient 'b' among its inputs"]


def test_chain_rule_outer_uses_only_via(write_case: Callable[..., Path]) -> None:
    path = write_case("""
        cases:
          - id: ch
            kind: chain-rule
            outer: u * x
            inner: x ** 2
            at: {x: 1}
        """)
    assert errors(path) == [f"{path}:4:12: [ch] outer may only use 'u' (the inner function's value), not 'x'"]


def test_deep_step_without_var(write_case: Callable[..., Path]) -> None:
    path = write_case("""
        cases:
          - id: d
            kind: deep
            init: x
            step: x * 2
            repeat: 3
            at: {x: 1}
        """)
    assert errors(path) == [f"{path}:5:11: [d] step does not use 'z', so nothing is composed"]


def test_training_needs_one_output(write_case: Callable[..., Path]) -> None:
    path = write_case("""
        cases:
          - id: t
            kind: training
            model: {sizes: [1, 4, 2]}
            data: {x: [0.0, 1.0], y: [0.0, 1.0]}
            steps: 5
            lr: 0.1
            loss_ratio: 0.5
        """)
    assert errors(path) == [f"{path}:4:20: [t] a training model has one output: the last size must be 1"]


def test_expect_error_combined_with_value(write_case: Callable[..., Path]) -> None:
    path = write_case("""
        cases:
          - id: e
            expr: log(x)
            at: {x: -1}
            expect: {error: domain, value: 0}
        """)
    assert errors(path) == [f"{path}:5:21: [e] expect.error cannot be combined with value, grad or finite"]


def test_expect_ieee_is_loaded_and_checked(write_case: Callable[..., Path]) -> None:
    path = write_case("""
        cases:
          - id: strict
            expr: exp(x)
            at: {x: 800}
            expect: {ieee: true}
          - id: lenient
            expr: exp(x)
            at: {x: 800}
        """)
    strict, lenient = load_file(path).cases
    assert strict.expect.ieee is True and lenient.expect.ieee is False
    bad = write_case("""
        cases:
          - id: e
            expr: exp(x)
            at: {x: 800}
            expect: {ieee: 1}
        """, "bad.gradspec.yaml")
    assert errors(bad) == [f"{bad}:5:20: [e] cases[0].expect.ieee: 1 is not of type 'boolean'"]


def test_expect_grad_of_an_unknown_name(write_case: Callable[..., Path]) -> None:
    path = write_case("""
        cases:
          - id: e
            expr: x * 2
            at: {x: 1}
            expect:
              grad: {q: 2}
        """)
    assert errors(path) == [f"{path}:6:14: [e] expect.grad names 'q', which is neither an input nor an intermediate"]


def test_stationary_case_that_is_not(write_case: Callable[..., Path]) -> None:
    path = write_case("""
        cases:
          - id: s
            kind: stationary
            expr: (x - 1) ** 2
            at: {x: 2}
        """)
    assert errors(path) == [f"{path}:5:9: [s] point x=2 is not stationary: d/dx = 2.0 exactly"]


# -- expression columns map onto the file -----------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "cases:\n  - id: a\n    at: {x: 1, y: 2}\n    expr: x + y * $\n",
        "cases:\n  - id: a\n    at: {x: 1, y: 2}\n    expr:    x + y * $   # a comment\n",
        "cases:\n  - id: a\n    at: {x: 1, y: 2}\n    expr: 'x + y * $'\n",
        'cases:\n  - id: a\n    at: {x: 1, y: 2}\n    expr: "x + y * $"\n',
        "cases:\n  - {id: a, at: {x: 1, y: 2}, expr: x + y * $}\n",
        "cases:\n  - {id: a, at: {x: 1, y: 2}, expr: 'x + y * $'}\n",
    ],
    ids=["plain", "plain-spaced", "single-quoted", "double-quoted", "flow-plain", "flow-quoted"],
)
def test_expression_error_columns_single_line(write_case: Callable[..., Path], text: str) -> None:
    path = write_case(text)
    line = next(i for i, t in enumerate(text.splitlines(), 1) if "$" in t)
    col = text.splitlines()[line - 1].index("$") + 1
    assert errors(path) == [f"{path}:{line}:{col}: [a] expr: unexpected character '$'; expressions use numbers, names, + - * / ** and calls"]


@pytest.mark.parametrize("indicator", ["|", "|-", "|+"])
def test_expression_error_columns_block_scalar(write_case: Callable[..., Path], indicator: str) -> None:
    path = write_case(
        "cases:\n"
        "  - id: a\n"
        f"    expr: {indicator}\n"
        "      a = x * y\n"
        "      b = a + x\n"
        "      b ** 2 + tanh(y) ! 3\n"
        "    at: {x: 1, y: 2}\n"
    )
    col = path.read_text().splitlines()[5].index("!") + 1
    assert col == 24
    assert errors(path) == [f"{path}:6:{col}: [a] expr: unexpected character '!'; expressions use numbers, names, + - * / ** and calls"]


def test_expression_error_columns_block_scalar_first_line(write_case: Callable[..., Path]) -> None:
    path = write_case("cases:\n  - id: a\n    expr: |\n        x ** ** 2\n    at: {x: 1}\n")
    assert errors(path) == [f"{path}:4:14: [a] expr: expected a number, a name or '(', found '**'"]


def test_undefined_name_in_block_scalar(write_case: Callable[..., Path]) -> None:
    path = write_case("cases:\n  - id: a\n    expr: |\n      a = x * y\n      a + zeta\n    at: {x: 1, y: 2}\n")
    assert errors(path) == [f"{path}:5:11: [a] expr: undefined variable 'zeta' (inputs: x, y)"]


def test_undefined_name_that_is_also_part_of_a_longer_name(write_case: Callable[..., Path]) -> None:
    """`x` is undefined; `xx` (an input) comes first in the text, but the error is about the `x` at column 16."""
    path = write_case("cases:\n  - id: a\n    expr: xx + x\n    at: {xx: 1}\n")
    assert errors(path) == [f"{path}:3:16: [a] expr: undefined variable 'x' (inputs: xx)"]


def test_unknown_op_in_block_scalar(write_case: Callable[..., Path]) -> None:
    path = write_case("cases:\n  - id: a\n    expr: |\n      a = x * y\n      swish(a) + a\n    at: {x: 1, y: 2}\n")
    (line,) = errors(path)
    assert line.startswith(f"{path}:5:7: [a] expr: unknown function 'swish'")


def test_expression_error_columns_folded_scalar(write_case: Callable[..., Path]) -> None:
    """A folded scalar keeps its lines in the file: the error is on the line of the `$`, not the first."""
    path = write_case("cases:\n  - id: a\n    expr: >\n      x * y +\n      $ x\n    at: {x: 1, y: 2}\n")
    (line,) = errors(path)
    assert line.startswith(f"{path}:5:7: ")


def test_expression_error_columns_multiline_plain_scalar(write_case: Callable[..., Path]) -> None:
    path = write_case("cases:\n  - id: a\n    expr: x * y +\n      $ x\n    at: {x: 1, y: 2}\n")
    (line,) = errors(path)
    assert line.startswith(f"{path}:4:7: ")


def test_expression_error_columns_double_quoted_with_escapes(write_case: Callable[..., Path]) -> None:
    """`\\t` is two characters in the file and one in the value: the column is the file's, after the escape."""
    text = 'cases:\n  - id: a\n    expr: "x\\t* * y"\n    at: {x: 1, y: 2}\n'
    path = write_case(text)
    col = text.splitlines()[2].index("* y") + 1
    assert col == 17
    assert errors(path) == [f"{path}:3:{col}: [a] expr: expected a number, a name or '(', found '*'"]


def test_expression_errors_in_other_keys(write_case: Callable[..., Path]) -> None:
    path = write_case("""
        cases:
          - id: lin
            kind: linearity
            f: x ** 2
            g: x # 2
            at: {x: 1, a: 1, b: 2}
          - id: ch
            kind: chain-rule
            outer: tanh(u)
            inner: x ^ 2
            at: {x: 1}
          - id: dp
            kind: deep
            init: x
            step: z * [2]
            repeat: 3
            at: {x: 1}
        """)
    assert errors(path) == [
        f"{path}:10:14: [ch] inner: unexpected character '^'; expressions use numbers, names, + - * / ** and calls",
        f"{path}:15:15: [dp] step: brackets are not allowed (no lists, indexing or comprehensions)",
    ]


# -- YAML 1.2 scalars in case files -----------------------------------------------------------------------


def test_yaml12_scalars_in_a_case_file(write_case: Callable[..., Path]) -> None:
    path = write_case("""
        cases:
          - id: on
            expr: x * y
            at: {x: 1e-3, y: 2E+2}
            tolerance: {rtol: 1e-6, atol: 1e-12}
          - id: no
            expr: x
            at: {x: 0x10}
        """)
    on, no = load_file(path).cases
    assert (on.id, no.id) == ("on", "no")
    assert on.tolerance == Tolerance(rtol=1e-6, atol=1e-12, h=1e-4)
    assert on.points[0].exact() == {"x": Fraction(1, 1000), "y": Fraction(200)}
    assert no.points[0].exact() == {"x": Fraction(16)}


def test_duplicate_keys_refused_in_a_case_file(write_case: Callable[..., Path]) -> None:
    path = write_case("""
        cases:
          - id: a
            expr: x
            at: {x: 1, x: 2}
        """)
    assert errors(path) == [f"{path}:4:16: duplicate key 'x' (first at line 4)"]


def test_a_duplicate_key_does_not_hide_the_files_other_errors(write_case: Callable[..., Path]) -> None:
    path = write_case("""
        cases:
          - id: a
            expr: x
            expr: y
            at: {x: 1}
          - id: a
            expr: log(x)
            at: {x: 1}
          - id: b
            expr: w
            at: {x: 1}
        """)
    assert errors(path) == [
        f"{path}:4:5: duplicate key 'expr' (first at line 3)",
        f"{path}:6:9: [a] duplicate case id 'a' (first at line 2)",
        f"{path}:10:11: [b] expr: undefined variable 'w' (inputs: x)",
    ]


def test_tags_take_what_ids_take(write_case: Callable[..., Path]) -> None:
    path = write_case("""
        cases:
          - id: a
            expr: x
            at: {x: 1}
            tags: [torch-builtin, v1.2, _slow, 3d]
        """)
    assert load_file(path).cases[0].tags == ("torch-builtin", "v1.2", "_slow", "3d")
    bad = write_case("""
        cases:
          - id: a
            expr: x
            at: {x: 1}
            tags: [-leading, "has space"]
        """)
    assert [line.split(": ", 1)[1] for line in errors(bad)] == [
        "[a] cases[0].tags[0]: '-leading' does not match '^[A-Za-z0-9_][A-Za-z0-9_.-]*$'",
        "[a] cases[0].tags[1]: 'has space' does not match '^[A-Za-z0-9_][A-Za-z0-9_.-]*$'",
    ]


# -- valid files -----------------------------------------------------------------------------------------


def test_every_kind_loads(kinds_file: Path) -> None:
    start = time.process_time()
    cf = load_file(kinds_file)
    assert time.process_time() - start < 5
    assert cf.path == str(kinds_file)
    assert cf.description == "every case kind"
    by_id = {c.id: c for c in cf.cases}
    assert [c.id for c in cf.cases] == [
        "grad-mul", "grad-intermediates", "stationary-square", "linearity-poly", "chain-exp-sin", "deep-contraction",
        "train-line",
    ]
    assert [c.kind for c in cf.cases] == ["gradient", "gradient", "stationary", "linearity", "chain-rule", "deep", "training"]
    for c in cf.cases:
        assert isinstance(c, Case)
        assert c.path == str(kinds_file)
        assert c.tags == ("kinds",)
        assert c.tolerance == Tolerance(rtol=1e-7, atol=0.0, h=1e-4)
        with pytest.raises(dataclasses.FrozenInstanceError):
            c.id = "other"  # type: ignore[misc]

    mul = by_id["grad-mul"]
    assert mul.line == 9
    assert mul.expression == "x * y"
    assert mul.points == (Point((("x", Fraction(2)), ("y", Fraction(3))), 11),)
    assert mul.expect.value == 6 and mul.expect.grad == (("x", 3.0), ("y", 2.0))
    assert mul.spec is None

    inter = by_id["grad-intermediates"]
    assert inter.graph is not None
    assert [n for n, _ in inter.graph.inputs] == ["x", "y"]
    assert [n for n, _ in inter.graph.intermediates] == ["a", "b"]
    assert [p.line for p in inter.points] == [19, 20]
    assert inter.points[1].exact() == {"x": Fraction(-1, 2), "y": Fraction(1, 4)}

    assert by_id["stationary-square"].points[0].floats() == {"x": 1.0, "y": -2.0}

    lin = by_id["linearity-poly"]
    assert isinstance(lin.spec, Linearity)
    assert len(lin.points) == 5
    assert [n for n, _ in lin.spec.f.inputs] == ["x", "y"]
    assert {n for n, _ in lin.graph.inputs} == {"x", "y", "a", "b"}  # type: ignore[union-attr]

    ch = by_id["chain-exp-sin"]
    assert isinstance(ch.spec, ChainRule)
    assert ch.spec.via == "u"
    assert [n for n, _ in ch.graph.intermediates] == ["u"]  # type: ignore[union-attr]

    deep = by_id["deep-contraction"]
    assert deep.spec is None and deep.graph is not None
    assert len(deep.graph.steps) > 200  # 100 unrolled steps of two ops each

    train = by_id["train-line"]
    assert train.points == () and train.graph is None
    assert train.spec == Training(
        sizes=(1, 4, 1), activation="tanh", seed=1, x=((-1.0,), (-0.5,), (0.0,), (0.5,), (1.0,)),
        y=(-1.0, 0.0, 1.0, 2.0, 3.0), steps=60, lr=0.05, loss_ratio=0.5,
    )


def test_validate_on_a_directory(tmp_path: Path, kinds_file: Path) -> None:
    sub = tmp_path / "nested" / "deeper"
    sub.mkdir(parents=True)
    (sub / "two.gradspec.yml").write_text("cases:\n  - id: a\n    expr: x\n    at: [{x: 1}, {x: 2}]\n")
    (tmp_path / "config.yaml").write_text("this: is not a case file\n")
    (tmp_path / "notes.gradspec.yaml.bak").write_text(": : :\n")
    out, err = io.StringIO(), io.StringIO()
    assert main(["validate", str(tmp_path)], out, err) == 0
    assert err.getvalue() == ""
    # kinds: 7 cases, 1+2+1+5+2+1 points + 1 for training; two.gradspec.yml: 1 case, 2 points
    assert out.getvalue() == "2 valid file(s), 8 cases, 15 points; 0 error(s)\n"


def test_validate_directory_with_an_invalid_file(tmp_path: Path, kinds_file: Path) -> None:
    bad = tmp_path / "bad.gradspec.yaml"
    bad.write_text("cases:\n  - id: a\n    expr: log(x)\n    at: {x: 0}\n  - id: b\n    expr: x +\n    at: {x: 1}\n")
    out, err = io.StringIO(), io.StringIO()
    assert main(["validate", str(tmp_path)], out, err) == 2
    assert err.getvalue().splitlines() == [
        f"{bad}:4:9: [a] point x=0 is outside the domain: log needs x > 0, got x = 0.0 (in log(x))",
        f"{bad}:6:14: [b] expr: expected a number, a name or '(', found the end of the expression",
    ]
    assert out.getvalue() == "1 valid file(s), 7 cases, 13 points; 2 error(s)\n"


def test_validate_missing_path(tmp_path: Path) -> None:
    out, err = io.StringIO(), io.StringIO()
    assert main(["validate", str(tmp_path / "nope.gradspec.yaml")], out, err) == 2
    assert err.getvalue() == f"{tmp_path / 'nope.gradspec.yaml'}: no such file or directory\n"


def test_defaults_merge(write_case: Callable[..., Path]) -> None:
    path = write_case("""
        defaults:
          tolerance: {rtol: 1e-5, h: 0.001}
          tags: [base, shared]
          engines: [builtin]
        cases:
          - id: a
            expr: x
            at: {x: 1}
            tolerance: {atol: 0.5}
            tags: [shared, own]
          - id: b
            expr: x
            at: {x: 1}
            engines: [torch]
            skip: not now
            xfail: known
        """)
    a, b = load_file(path).cases
    assert a.tolerance == Tolerance(rtol=1e-5, atol=0.5, h=0.001)
    assert a.tags == ("base", "shared", "own")
    assert a.engines == ("builtin",) and b.engines == ("torch",)
    assert (a.skip, a.xfail) == (None, None)
    assert (b.skip, b.xfail) == ("not now", "known")


def test_kink_and_domain_declarations_load(write_case: Callable[..., Path]) -> None:
    path = write_case("""
        cases:
          - id: relu-conv
            expr: relu(x)
            at: {x: 0}
            kink: convention
            expect: {grad: {x: 1}}
          - id: abs-any
            expr: abs(x) * y
            at: {x: 0, y: 3}
            kink: any
          - id: log-domain
            expr: log(x)
            at: [{x: -1}, {x: 0}]
            expect: {error: domain}
          - id: inf-expect
            expr: 1 / x
            at: {x: 4}
            expect: {value: 0.25, grad: {x: -0.0625}, finite: true}
        """)
    conv, any_, dom, fin = load_file(path).cases
    assert conv.kink == "convention" and conv.expect.grad == (("x", 1.0),)
    assert any_.kink == "any"
    assert dom.expect.error == "domain" and len(dom.points) == 2
    assert fin.expect.finite is True and fin.expect.value == 0.25


def test_exact_decimals(write_case: Callable[..., Path]) -> None:
    path = write_case("cases:\n  - id: a\n    expr: x + y\n    at: {x: 0.1, y: -2.5e-3}\n")
    (case,) = load_file(path).cases
    assert case.points[0].exact() == {"x": Fraction(1, 10), "y": Fraction(-1, 400)}
    assert case.points[0].label == "x=0.1,y=-0.0025"


# -- sampled points --------------------------------------------------------------------------------------

SAMPLED = """
defaults:
  seed: {base}
cases:
  - id: alpha
    expr: x * y
    sample:
      count: 40
      vars:
        x: {{uniform: [-3, 3], exclude: [[-1, 1]]}}
        y: {{choice: [1, 2, 3]}}
  - id: beta
    expr: x * y
    sample:
      count: 40
      vars:
        x: {{uniform: [-3, 3], exclude: [[-1, 1]]}}
        y: {{choice: [1, 2, 3]}}
  - id: seeded-1
    expr: exp(x) + y
    sample:
      count: 7
      seed: 12345
      vars: {{x: {{normal: [0, 2]}}, y: {{loguniform: [0.001, 1000]}}}}
  - id: seeded-2
    expr: exp(x) + y
    sample:
      count: 7
      seed: 12345
      vars: {{x: {{normal: [0, 2]}}, y: {{loguniform: [0.001, 1000]}}}}
"""


def load_sampled(write_case: Callable[..., Path], base: int = 0, name: str = "s.gradspec.yaml") -> dict[str, Case]:
    return {c.id: c for c in load_file(write_case(SAMPLED.format(base=base), name)).cases}


def test_sampling_is_deterministic(write_case: Callable[..., Path]) -> None:
    first = load_sampled(write_case, name="one.gradspec.yaml")
    second = load_sampled(write_case, name="two.gradspec.yaml")
    for cid in first:
        assert first[cid].points == second[cid].points
        assert len(first[cid].points) in (7, 40)


def test_sampling_depends_on_the_case_id_and_file_seed(write_case: Callable[..., Path]) -> None:
    cases = load_sampled(write_case)
    assert cases["alpha"].points != cases["beta"].points
    reseeded = load_sampled(write_case, base=7, name="other.gradspec.yaml")
    assert reseeded["alpha"].points != cases["alpha"].points
    # an explicit seed ignores both the id and the file's seed
    def values(case: Case) -> list[tuple[tuple[str, Fraction], ...]]:
        return [p.values for p in case.points]

    assert values(cases["seeded-1"]) == values(cases["seeded-2"]) == values(reseeded["seeded-1"])


def test_explicit_seed_is_the_seed_of_the_draw(write_case: Callable[..., Path]) -> None:
    case = load_sampled(write_case)["seeded-1"]
    rng = random.Random(12345)
    xs = [rng.gauss(0, 2) for _ in range(7)]
    ys = [math.exp(rng.uniform(math.log(0.001), math.log(1000))) for _ in range(7)]
    assert [p.floats()["x"] for p in case.points] == xs
    assert [p.floats()["y"] for p in case.points] == pytest.approx(ys, rel=1e-15)


def test_sampling_count_and_exclusions(write_case: Callable[..., Path]) -> None:
    cases = load_sampled(write_case)
    for cid in ("alpha", "beta"):
        pts = [p.floats() for p in cases[cid].points]
        assert len(pts) == 40
        assert all(1 < abs(p["x"]) <= 3 for p in pts)
        assert {p["y"] for p in pts} <= {1.0, 2.0, 3.0}
        assert len({p["y"] for p in pts}) == 3
        # every sampled point is located at the case's `sample` mapping
        assert {p.line for p in cases[cid].points} == {7 if cid == "alpha" else 14}
    assert len(cases["seeded-1"].points) == 7
    assert all(0.001 <= p.floats()["y"] <= 1000 for p in cases["seeded-1"].points)


def test_exclusions_that_leave_nothing(write_case: Callable[..., Path]) -> None:
    path = write_case("""
        cases:
          - id: a
            expr: x
            sample:
              count: 5
              vars:
                x: {uniform: [0, 1], exclude: [[-1, 2]]}
        """)
    start = time.process_time()
    assert errors(path) == [f"{path}:7:39: [a] variable 'x': the exclusions leave almost nothing to sample"]
    assert time.process_time() - start < 2


def test_bad_distribution_bounds(write_case: Callable[..., Path]) -> None:
    path = write_case("""
        cases:
          - id: a
            expr: x
            sample:
              count: 5
              vars:
                x: {uniform: [1, 0]}
        """)
    assert errors(path) == [f"{path}:7:22: [a] uniform needs low < high, got [1, 0]"]
