"""The kinds of case: one row per kind, read by everything that treats kinds differently.

The loader reads which keys a kind takes and requires and how it loads (``load``), the runner how one
of its checks runs (``run``), the pytest plugin and the runner which checks a case has and how each is
named (:meth:`Kind.checks`), the worker pool and the mutation tester what a check costs (``cost``),
and the reports whether its checks feed the step-size plot (``plotted``). The schema's ``kind`` list
is this table's keys (a test keeps them equal). Adding a kind is one module (its ``load`` and ``run``)
and one row here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from gradspec.casefile import functions, tensors
from gradspec.casefile.model import Case, Point, Reader, TensorPoint
from gradspec.checks import expression, properties, training
from gradspec.engines.protocol import Engine
from gradspec.graph.ir import Graph
from gradspec.reference.exact import Exact
from gradspec.results import CheckResult

__all__ = ["KINDS", "CaseKind", "Kind"]


class CaseKind(StrEnum):
    GRADIENT = "gradient"
    STATIONARY = "stationary"
    LINEARITY = "linearity"
    CHAIN_RULE = "chain-rule"
    DEEP = "deep"
    TRAINING = "training"
    TENSOR = "tensor"
    FUNCTION = "function"


@dataclass(frozen=True)
class Kind:
    """What one kind of case is, for every module that treats kinds differently."""

    keys: frozenset[str]  # the case keys this kind takes, beyond those every case takes
    required: tuple[str, ...]  # of those, the ones a case of this kind must give
    load: Callable[[Reader, list[str]], tuple[Graph | None, object]]  # (graph, spec) from a schema-valid case
    # One check: the case at one of its points (each kind's own: a Point, a TensorPoint, or None).
    run: Callable[[Case, Any, Engine], CheckResult]
    points: bool = True  # takes inputs (`at` or `sample`) and is checked at each; else one check, no point
    cost: int = 1  # relative work of one check: cheap kinds are scheduled and tried first
    plotted: bool = False  # its checks are plain gradient checks, fit for the step-size plot
    check_point: Callable[[Case, Point, Exact], list[str]] | None = None  # the kind's own meaning checks
    draw: str = "sample"  # how a sampled case's checks are labelled: sample0, sample1, ... (tensors: draw0)

    def checks(self, case: Case) -> list[tuple[Point | TensorPoint | None, str]]:
        """Every check of ``case`` as (point, label): the label names it in test ids (unique per case)."""
        if not self.points:
            return [(None, "")]
        out: list[tuple[Point | TensorPoint | None, str]] = []
        seen: dict[str, int] = {}
        for i, p in enumerate(case.points):
            label = f"{self.draw}{i}" if case.sampled else p.label
            seen[label] = seen.get(label, 0) + 1
            out.append((p, label if seen[label] == 1 else f"{label}#{seen[label]}"))
        return out


def _run_tensor(case: Case, point: Point | TensorPoint | None, engine: Engine) -> CheckResult:
    from gradspec.checks.tensor import run_case  # NumPy: a run without tensor cases never imports it

    return run_case(case, point, engine)


def _run_function(case: Case, point: Point | TensorPoint | None, engine: Engine) -> CheckResult:
    from gradspec.checks.function import run_case  # NumPy, as for tensors

    return run_case(case, point, engine)


_MODES = ("check", "order")  # the modes of checking (gradspec.modes), for kinds that compare derivatives

KINDS: dict[str, Kind] = {
    CaseKind.GRADIENT: Kind(frozenset({"expr", *_MODES}), ("expr",), expression.load_expr, expression.run_gradient,
                            plotted=True),
    CaseKind.STATIONARY: Kind(frozenset({"expr", *_MODES}), ("expr",), expression.load_expr,
                              expression.run_gradient, check_point=expression.stationary),
    CaseKind.LINEARITY: Kind(frozenset({"f", "g"}), ("f", "g"), properties.load_linearity, properties.run_linearity),
    CaseKind.CHAIN_RULE: Kind(frozenset({"outer", "inner", "via"}), ("outer", "inner"), properties.load_chain_rule,
                              properties.run_chain_rule),
    CaseKind.DEEP: Kind(frozenset({"init", "step", "var", "repeat"}), ("init", "step", "repeat"), expression.load_deep,
                        expression.run, cost=2),
    CaseKind.TRAINING: Kind(frozenset({"model", "data", "steps", "lr", "loss_ratio"}),
                            ("model", "data", "steps", "lr", "loss_ratio"), training.load_case, training.run_case,
                            points=False, cost=3),
    CaseKind.TENSOR: Kind(frozenset({"expr", "data_inputs", *_MODES}), ("expr",), tensors.load, _run_tensor, cost=2,
                          draw="draw"),
    CaseKind.FUNCTION: Kind(frozenset({"function", "reference", "dtype", "data_inputs", *_MODES}), ("function", "reference"),
                            functions.load, _run_function, cost=3, draw="draw"),
}
