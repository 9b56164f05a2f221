"""Stability sweeps: where a gradient is accurate, loses digits, overflows or leaves float64."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import mpmath
import pytest

from gradspec.checks.check import prepare
from gradspec.cli import main
from gradspec.engines.resolve import resolve
from gradspec.tools.sweep import classify, ranges, sweep


def test_exp_over_its_whole_float64_range(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    plot = tmp_path / "exp.svg"
    assert main(["sweep", "exp(x)", "--var", "x", "--range", "-800", "800", "--plot", str(plot)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "d/dx exp(x) on builtin, x from -800 to 800 (201 points):"
    # exp(x) leaves float64's normal range below about -708.4 and overflows above about 709.78
    assert out[1].startswith("  x in [-800, -712]      12 points  beyond float64: the exact gradient underflows (subnormal or 0)")
    assert out[2].startswith("  x in [-704, 704]     177 points  accurate")
    assert out[3].startswith("  x in [712, 800]      12 points  beyond float64: the exact gradient overflows, engine gives inf")
    svg = plot.read_text()
    assert svg.startswith("<svg") and "<polyline" in svg and "http://www.w3.org/2000/svg" in svg


def test_a_cancelling_formula_loses_digits_in_float32() -> None:
    pytest.importorskip("torch")
    graph = prepare("tanh(x)", ["x"])
    samples = sweep(graph, "x", [0.5, 5.0, 12.0], resolve("torch:float32"), {})
    assert [s.status for s in samples] == ["accurate", "loses digits", "no correct digits"]
    assert samples[2].engine == 0.0 and samples[2].exact == pytest.approx(1.5101e-10, rel=1e-3)


def test_batched_and_pointwise_engines_agree() -> None:
    pytest.importorskip("torch")
    graph = prepare("x*y + sin(x)", ["x", "y"])
    xs = [-2.0 + i * 0.1 for i in range(41)]
    fixed = {"y": Fraction(3, 2)}
    batched = sweep(graph, "x", xs, resolve("torch"), fixed)
    pointwise = sweep(graph, "x", xs, resolve("builtin"), fixed)
    assert [s.engine for s in batched] == pytest.approx([s.engine for s in pointwise], rel=1e-15)
    assert {s.status for s in batched} == {"accurate"}


def test_classify() -> None:
    with mpmath.workdps(60):
        assert classify(1.0, mpmath.mpf(1))[0] == "accurate"
        assert classify(1.0001, mpmath.mpf(1))[0] == "loses digits"
        assert classify(float("inf"), mpmath.mpf(10) ** 100)[0] == "overflow: engine gives inf for a finite gradient"
        assert classify(float("nan"), mpmath.mpf(1))[0] == "nan"
        assert classify(float("inf"), mpmath.mpf(10) ** 400)[0].startswith("beyond float64")


def test_ranges_merge_neighbours() -> None:
    graph = prepare("sqrt(x)", ["x"])
    samples = sweep(graph, "x", [0.0, 1.0, 2.0, 3.0], resolve("builtin"), {})
    merged = ranges(samples)
    assert [(r.status, r.count) for r in merged] == [("exact is infinite", 1), ("accurate", 3)]


def test_bad_sweeps_are_usage_errors() -> None:
    assert main(["sweep", "exp(x)", "--var", "x", "--range", "1", "0"]) == 2
    assert main(["sweep", "exp(x)", "--var", "x", "--range", "0", "1", "--points", "1"]) == 2
    assert main(["sweep", "exp(y)", "--var", "x", "--range", "0", "1"]) == 2


def test_the_exact_gradient_is_taken_at_the_float_the_engine_receives() -> None:
    # 700.1 is not a binary float: at its decimal value the exact exp would differ from the engine's by
    # the input's rounding times 700 (about 13 digits agreeing), which is not the engine's error.
    (sample,) = sweep(prepare("exp(x)", ["x"]), "x", [700.1], resolve("builtin"), {})
    assert sample.digits > 15
