"""The kind table: it matches the schema, names each check, and a new kind is one function and one row."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from gradspec.casefile.loader import errors_of, load_file, schema
from gradspec.casefile.model import Case, Point
from gradspec.checks import expression
from gradspec.checks.kinds import KINDS, CaseKind, Kind
from gradspec.engine import Value
from gradspec.engines import call
from gradspec.engines.protocol import Engine, ValueClassEngine
from gradspec.engines.resolve import resolve
from gradspec.errors import CaseFileError
from gradspec.reference.store import exact
from gradspec.results import CheckResult, Verdict
from gradspec.run.runner import iter_case, run_case


def test_the_schema_lists_the_kinds_of_the_table_in_order() -> None:
    kind = schema()["properties"]["cases"]["items"]["properties"]["kind"]
    assert kind["enum"] == list(KINDS)
    assert list(KINDS) == [k.value for k in CaseKind]
    for name in KINDS:  # the schema's prose describes every kind
        assert f"{name}:" in kind["description"] or f"{name} (default)" in kind["description"]


def test_every_kind_row_is_consistent() -> None:
    for name, row in KINDS.items():
        assert set(row.required) <= row.keys, name
        assert row.cost >= 1, name
    assert KINDS["training"].points is False
    assert [n for n, row in KINDS.items() if row.plotted] == ["gradient"]


def test_checks_are_labelled_by_point_and_made_unique(write_case: Callable[..., Path]) -> None:
    path = write_case("""
        cases:
          - id: twice
            expr: x * x
            at: [{x: 1.5}, {x: 1.5}, {x: 2}]
    """)
    case = load_file(path).cases[0]
    assert [label for _, label in KINDS[case.kind].checks(case)] == ["x=1.5", "x=1.5#2", "x=2"]
    assert [p.floats() for p, _ in KINDS[case.kind].checks(case) if p is not None] == [{"x": 1.5}, {"x": 1.5}, {"x": 2.0}]


# -- a new kind: one function (its check) and one row -------------------------------------------------


def run_value_only(case: Case, point: Point | None, engine: Engine) -> CheckResult:
    """A toy kind: only the engine's forward value is judged, against the exact value."""
    assert case.graph is not None and point is not None
    called = call.run(engine, case.graph, point.floats())
    if called.verdict is not None:
        return CheckResult(case.expression, point.floats(), engine.name, called.verdict, message=called.message)
    got, want = called.get().value, float(exact(case.graph, point.exact()).value)
    verdict = Verdict.PASS if abs(got - want) <= case.tolerance.bound(want) else Verdict.FAIL
    return CheckResult(case.expression, point.floats(), engine.name, verdict, message=f"value {got:.17g}, exact {want:.17g}")


TOY = Kind(frozenset({"expr"}), ("expr",), expression.load_expr, run_value_only)

TOY_FILE = """
    cases:
      - id: toy
        kind: value-only
        expr: x * y + 1
        at: [{x: 2, y: 3}, {x: 0.5, y: -4}]
"""


class WrongForward(Value):
    """Multiplies wrongly in the forward pass (adds one)."""

    __slots__ = ()

    def __mul__(self, other):  # type: ignore[no-untyped-def]
        other = other if isinstance(other, Value) else WrongForward(other)
        return WrongForward(self.data * other.data + 1.0, (self, other), "mul")


def test_a_new_kind_loads_and_runs_from_its_row(write_case: Callable[..., Path], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(KINDS, "value-only", TOY)
    case = load_file(write_case(TOY_FILE)).cases[0]
    assert case.kind == "value-only"
    assert [p.floats() for p in case.points] == [{"x": 2.0, "y": 3.0}, {"x": 0.5, "y": -4.0}]

    results = run_case(case, resolve("builtin"))
    assert [(r.verdict, r.kind, r.case_id, r.message) for r in results] == [
        (Verdict.PASS, "value-only", "toy", "value 7, exact 7"),
        (Verdict.PASS, "value-only", "toy", "value -1, exact -1"),
    ]
    wrong = [r for _, r in iter_case(case, ValueClassEngine(WrongForward, "wrong"))]
    assert [(r.verdict, r.message) for r in wrong] == [(Verdict.FAIL, "value 8, exact 7"), (Verdict.FAIL, "value 0, exact -1")]


def test_a_new_kind_gets_the_loaders_checks(write_case: Callable[..., Path], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(KINDS, "value-only", TOY)
    path = write_case("""
        cases:
          - id: toy
            kind: value-only
            expr: x + 1
            f: x
            at: {x: 1}
    """)
    with pytest.raises(CaseFileError) as info:
        load_file(path)
    assert [(e.message, e.line) for e in errors_of(info.value)] == [("'f' does not apply to a value-only case", 5)]


def test_a_kind_without_a_row_is_rejected_where_it_is_written(write_case: Callable[..., Path]) -> None:
    with pytest.raises(CaseFileError) as info:
        load_file(write_case(TOY_FILE))
    (error,) = errors_of(info.value)
    assert error.line == 3 and error.case_id == "toy"
    assert "'value-only' is not one of" in error.message
