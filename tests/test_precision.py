"""The precision verdict: pass within the precision bound, imprecise within what a derivative rebuilt
from a rounded output loses, fail beyond both; the exact value rounded to the engine's dtype passes."""

from __future__ import annotations

import math
from fractions import Fraction
from typing import Any

import numpy as np
import pytest

from gradspec.checks.api import check, prepare
from gradspec.engine import Value
from gradspec.engines.protocol import FLOAT32_EPS, FLOAT64_EPS
from gradspec.reference.precision import digits, representation, split
from gradspec.reference.rounding import bounds
from gradspec.results import CheckResult, Run, Verdict


def test_representation_is_half_an_ulp_of_a_normal_value_and_all_of_a_value_below_the_normal_range() -> None:
    assert representation(1.0, FLOAT64_EPS) == FLOAT64_EPS / 2
    assert representation(1.8e-67, FLOAT32_EPS) == 1.8e-67  # float32 holds no such number: 0 is right
    assert representation(1.8e-67, FLOAT64_EPS) == pytest.approx(1.8e-67 * FLOAT64_EPS / 2)
    assert representation(math.inf, FLOAT64_EPS) == 0.0
    assert list(representation(np.array([-2.0, 1e-40]), FLOAT32_EPS)) == [FLOAT32_EPS, 1e-40]


def test_digits_kept() -> None:
    assert digits(0.0, 4.25e-18, FLOAT64_EPS) == "0 of 16 digits"
    assert digits(1.0001, 1.0, FLOAT64_EPS) == "4 of 16 digits"
    assert digits(1.0, 1.0, FLOAT32_EPS) == "7 of 7 digits"


def test_split_is_fail_beyond_both_bounds_and_imprecise_between_them() -> None:
    fails, imprecise = split(np.array([1.0, 3.0, 6.0]), np.array(2.0), np.array(3.0))
    assert list(fails) == [False, False, True] and list(imprecise) == [False, True, False]


def test_the_rebuilt_partial_allowance_is_kept_apart_from_the_precision_bound() -> None:
    graph = prepare("sigmoid(x)", ["x"])
    tight, rebuilt = bounds(graph, (("x", Fraction(40)),), FLOAT64_EPS)
    exact = 4.248354255291589e-18
    assert tight["x"] < exact * 1e-14  # a few ulps of sigmoid'(40) itself
    assert rebuilt["x"] > 100 * exact  # 1 - s from a rounded s = 1 loses all of it
    assert rebuilt[""] == 0.0  # the forward value rebuilds nothing


class Rebuilt(Value):
    """A correct engine whose sigmoid' is s*(1 - s) from the rounded s, as torch and JAX write it."""

    def sigmoid(self) -> Any:
        s = 1.0 / (1.0 + math.exp(-self.data))
        out = Rebuilt(s, (self,), "sigmoid")

        def _backward() -> None:
            self.grad += s * (1 - s) * out.grad

        out._backward = _backward
        return out


class Wrong(Rebuilt):
    """sigmoid' off by 1e-12: beyond what any rounding explains."""

    def sigmoid(self) -> Any:
        s = 1.0 / (1.0 + math.exp(-self.data))
        out = Wrong(s, (self,), "sigmoid")

        def _backward() -> None:
            self.grad += (s * (1 - s) + 1e-12) * out.grad

        out._backward = _backward
        return out


def test_a_derivative_rebuilt_from_a_rounded_output_is_imprecise_with_the_digits_kept() -> None:
    result = check("sigmoid(x)", {"x": 40.0}, engine=Rebuilt)
    grad = next(q for q in result.quantities if q.name == "x")
    assert (result.verdict, grad.verdict, grad.engine) == (Verdict.IMPRECISE, Verdict.IMPRECISE, 0.0)
    assert "engine 0, exact 4.25e-18: 0 of 16 digits" in grad.note
    assert result.ok  # like a convention difference, not a failure by default
    assert check("sigmoid(x)", {"x": 40.0}, engine="builtin").verdict is Verdict.PASS  # every digit kept
    assert check("sigmoid(x)", {"x": 0.5}, engine=Rebuilt).verdict is Verdict.PASS  # no tail, no loss


def test_beyond_both_bounds_fails() -> None:
    assert check("sigmoid(x)", {"x": 40.0}, engine=Wrong).verdict is Verdict.FAIL


def test_the_exact_value_rounded_to_float32_passes_even_where_it_is_zero() -> None:
    # exp(-153) / sum: 1.8e-67 and its neighbours have no float32; 0 is the nearest
    result = check("logsumexp(x, axis=-1)", {"x": [0.0, -153.0, 2.0]}, engine="torch:float32")
    assert result.verdict is Verdict.PASS, result.table()


def test_strict_makes_an_imprecise_run_fail() -> None:
    imprecise = CheckResult("sigmoid(x)", {"x": 40.0}, "torch", Verdict.IMPRECISE)
    assert Run((imprecise,), ("torch",), ()).exit_code == 0
    assert Run((imprecise,), ("torch",), (), strict=True).exit_code == 1


def test_a_case_of_precision_strict_fails_where_it_is_imprecise(tmp_path: Any) -> None:
    from gradspec.casefile.loader import load_file
    from gradspec.engines.resolve import resolve
    from gradspec.run.runner import run_point

    path = tmp_path / "t.gradspec.yaml"
    path.write_text("version: 1\ncases:\n  - id: plain\n    expr: sigmoid(x)\n    at: {x: 40}\n"
                    "  - id: strict\n    expr: sigmoid(x)\n    at: {x: 40}\n    precision: strict\n")
    plain, strict = load_file(path).cases
    assert strict.precision == "strict" and plain.precision == "default"
    engine = resolve(Rebuilt)
    assert run_point(plain, plain.points[0], engine).verdict is Verdict.IMPRECISE
    failed = run_point(strict, strict.points[0], engine)
    assert failed.verdict is Verdict.FAIL and "precision: strict" in failed.message


def test_gradspec_run_strict_exits_1_on_an_imprecise_check(tmp_path: Any, capsys: Any) -> None:
    from gradspec.cli import main

    path = tmp_path / "t.gradspec.yaml"
    path.write_text("version: 1\ncases:\n  - id: tail\n    expr: sigmoid(x)\n    at: {x: 40}\n")
    engine = "tests.test_precision:Rebuilt"
    assert main(["run", str(path), "--engine", engine, "--in-process"]) == 0
    assert "NO FAILURES, SOME IMPRECISE" in capsys.readouterr().out
    assert main(["run", str(path), "--engine", engine, "--in-process", "--strict"]) == 1
    assert main(["run", str(path), "--in-process", "--strict"]) == 0  # the built-in engine keeps every digit
