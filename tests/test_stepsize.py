"""The step-size series a check carries: truncation at large h, rounding at tiny h, none at a kink."""

from __future__ import annotations

import math

import gradspec
from gradspec.checks.check import prepare
from gradspec.checks.stepsize import MAX_STEPS, STEP_EXPONENTS, central_errors


def test_the_series_shows_truncation_then_rounding() -> None:
    graph = prepare("tanh(x) * exp(y)", ["x", "y"])
    exact = (1 - math.tanh(0.5) ** 2) * math.exp(-1)
    errors = dict(central_errors(graph, {"x": 0.5, "y": -1.0}, "x", exact))
    assert set(errors) == set(STEP_EXPONENTS)
    assert errors[-1] > 1e-4  # h = 0.1: truncation
    assert errors[-5] < 1e-9
    assert errors[-13] > errors[-5]  # h = 1e-13: rounding


def test_a_linear_function_differences_exactly_at_large_steps() -> None:
    errors = dict(central_errors(prepare("3*x + y", ["x", "y"]), {"x": 0.5, "y": 2.0}, "x", 3.0))
    assert errors[-1] < 1e-12


def test_no_series_for_an_unknown_name_or_a_large_graph() -> None:
    assert central_errors(prepare("x * 2", ["x"]), {"x": 1.0}, "y", 2.0) == ()
    big = prepare(" + ".join(["x"] * (MAX_STEPS + 1)), ["x"])
    assert central_errors(big, {"x": 1.0}, "x", float(MAX_STEPS + 1)) == ()


def test_a_check_carries_the_series_of_its_first_input_and_none_at_a_kink() -> None:
    result = gradspec.check("tanh(x) * exp(y)", {"x": 0.5, "y": -1.0})
    assert result.step_input == "x"
    assert result.step_errors == central_errors(prepare("tanh(x) * exp(y)", ["x", "y"]), {"x": 0.5, "y": -1.0}, "x",
                                                result.quantities[1].exact or 0.0)
    kink = gradspec.check("relu(x)", {"x": 0.0})
    assert kink.kinks and kink.step_errors == () and kink.step_input == ""
