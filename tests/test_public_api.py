"""The public surface, pinned: adding or removing a name is a deliberate change to this file."""

from __future__ import annotations

import gradspec
import gradspec.engine
import gradspec.errors
import gradspec.nn


def test_gradspec_all() -> None:
    assert sorted(gradspec.__all__) == [
        "CaseFileError",
        "CheckResult",
        "ConfigError",
        "DomainError",
        "EngineError",
        "ExpressionError",
        "GradspecError",
        "Quantity",
        "Tolerance",
        "Verdict",
        "check",
        "check_function",
        "check_gradients",
    ]
    assert len(set(gradspec.__all__)) == len(gradspec.__all__)
    for name in gradspec.__all__:
        assert getattr(gradspec, name) is not None


def test_star_import_gives_exactly_all() -> None:
    namespace: dict[str, object] = {}
    exec("from gradspec import *", namespace)
    assert sorted(k for k in namespace if k != "__builtins__") == sorted(gradspec.__all__)


def test_engine_exports() -> None:
    assert gradspec.engine.__all__ == ["Value", "grad", "jvp"]
    assert isinstance(gradspec.engine.Value, type)


def test_nn_exports() -> None:
    assert sorted(gradspec.nn.__all__) == ["Layer", "MLP", "Module", "Neuron"]
    for name in gradspec.nn.__all__:
        assert isinstance(getattr(gradspec.nn, name), type)
    assert issubclass(gradspec.nn.MLP, gradspec.nn.Module)
    assert issubclass(gradspec.nn.Layer, gradspec.nn.Module)
    assert issubclass(gradspec.nn.Neuron, gradspec.nn.Module)


def test_errors_hierarchy_and_reexports() -> None:
    assert sorted(gradspec.errors.__all__) == [
        "CaseFileError", "ConfigError", "DomainError", "EngineError", "ExpressionError", "GradspecError",
    ]
    for name in ("CaseFileError", "ConfigError", "DomainError", "EngineError", "ExpressionError"):
        cls = getattr(gradspec, name)
        assert cls is getattr(gradspec.errors, name)
        assert issubclass(cls, gradspec.GradspecError)
    assert issubclass(gradspec.GradspecError, Exception)


def test_check_and_results_are_the_implementations() -> None:
    from gradspec.checks.api import check, check_function, check_gradients
    from gradspec.results import CheckResult, Quantity, Tolerance, Verdict

    assert gradspec.check is check
    assert gradspec.check_gradients is check_gradients
    assert gradspec.check_function is check_function
    assert (gradspec.CheckResult, gradspec.Quantity, gradspec.Tolerance, gradspec.Verdict) == (
        CheckResult, Quantity, Tolerance, Verdict,
    )
    assert {"pass", "fail", "convention", "skip", "error"} <= {v.value for v in gradspec.Verdict}
    assert gradspec.Tolerance() == gradspec.Tolerance(rtol=1e-7, atol=0.0, h=1e-4)


def test_version() -> None:
    assert gradspec.__version__ == "0.1.0"
