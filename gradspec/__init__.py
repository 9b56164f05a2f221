"""gradspec: declarative gradient checks for autograd engines, judged against exact SymPy references.

The public surface::

    check(expression, point, engine=...)   one expression at one point -> CheckResult
    check_gradients(f, inputs)             numerically verify every gradient of a callable
    check_function(fn, reference, inputs)  a hand-written differentiable function against its reference
    Tolerance, CheckResult, Quantity, Verdict
    errors: GradspecError and its subclasses
    gradspec.engine.Value, gradspec.nn.MLP

Everything else lives in private modules.
"""

from __future__ import annotations

from gradspec.checks.api import check, check_function, check_gradients
from gradspec.errors import CaseFileError, ConfigError, DomainError, EngineError, ExpressionError, GradspecError
from gradspec.results import CheckResult, Quantity, Tolerance, Verdict
from gradspec.version import __version__ as __version__

__all__ = [
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

