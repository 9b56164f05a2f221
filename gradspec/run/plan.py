"""Which engines each case of a run goes to, and how much work a case is (what sharding balances).

A function case names the engines it is for: its ``function:`` keys (``torch``, ``jax``, ``builtin``).
When the user gives no engine list on the command line, the case runs on those, and every other case
on the default list (``pyproject.toml``'s ``engines``, else ``builtin``); a default engine of the same
library stands in for a key (``torch:float32`` configured runs a ``torch`` function in float32). An
engine list given on the command line is what the user asked for: every case, function cases too, runs
on the listed engines it applies to (:func:`gradspec.run.runner.applies` skips the others).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from gradspec.casefile.model import Case, CaseFile, FunctionSpec, TensorPoint
from gradspec.checks.kinds import KINDS
from gradspec.engines.protocol import Engine, NamedEngine
from gradspec.results import CheckResult, Verdict
from gradspec.run.session import run_picked

__all__ = ["Spec", "case_cost", "own_engines", "plan", "run_planned", "spec_name"]

Spec = str | NamedEngine


def spec_name(spec: Spec) -> str:
    """The name the engine a spec resolves to will carry (what a case's engine keys are matched with)."""
    return spec.name if isinstance(spec, NamedEngine) else spec


def _matches(name: str, key: str) -> bool:
    return name == key or name.split(":")[0] == key  # as applies() reads a case's engines


def own_engines(case: Case, defaults: Sequence[Spec]) -> list[Spec]:
    """The engines ``case`` runs on when the user named none: a function case's keys, each met by a
    default engine of that name or library where there is one; any other case's: the defaults."""
    if not isinstance(case.spec, FunctionSpec):
        return list(defaults)
    picked: list[Spec] = []
    for key, _ in case.spec.functions:
        picked.extend([d for d in defaults if _matches(spec_name(d), key)] or [key])
    return list({spec_name(s): s for s in picked}.values())


def plan(cases: Sequence[Case], defaults: Sequence[Spec], explicit: bool) -> tuple[list[Spec], list[tuple[int, ...]]]:
    """The engines a run needs (the defaults first, then the others in first-use order; without
    ``explicit``, only those some case runs on), and per case the indices of those it runs on. With
    ``explicit`` (an engine list from the command line), every case runs on all of ``defaults``."""
    specs: dict[str, Spec] = {spec_name(d): d for d in defaults}
    if explicit:
        return list(specs.values()), [tuple(range(len(specs)))] * len(cases)
    per_case = [[spec_name(s) for s in own_engines(case, defaults)] for case in cases]
    for case in cases:
        for s in own_engines(case, defaults):
            specs.setdefault(spec_name(s), s)
    used = {n for names in per_case for n in names}
    if used:  # a default engine no picked case runs on is left out (with no case at all, the run says so)
        specs = {n: s for n, s in specs.items() if n in used}
    order = list(specs)
    return list(specs.values()), [tuple(order.index(n) for n in names) for names in per_case]


def case_cost(case: Case, engines: int) -> int:
    """An estimate of a case's work, to balance shards: its checks (points) times the engines it runs
    on times the elements of its inputs (a tensor point costs as many scalar points as it has elements)."""
    checks = KINDS[case.kind].checks(case)
    size = sum(max(1, sum(math.prod(shape) for _, shape, _ in p.values)) if isinstance(p, TensorPoint) else 1
               for p, _ in checks)
    return max(1, size) * max(1, engines)


def run_planned(files: Sequence[CaseFile], picked: Sequence[tuple[int, int]], engines: Sequence[tuple[Spec, Engine]],
                per_case: Sequence[tuple[int, ...]], *, maxfail: int | None = None,
                **options: Any) -> tuple[list[CheckResult], bool]:
    """:func:`~gradspec.run.session.run_picked` for a plan: the cases that share an engine list run
    together, and the results come back in the order of ``picked``. ``maxfail`` counts across them."""
    groups: dict[tuple[int, ...], list[int]] = {}
    for k, indices in enumerate(per_case):
        groups.setdefault(indices, []).append(k)
    position = {(files[fi].cases[ci].path, files[fi].cases[ci].id): k for k, (fi, ci) in enumerate(picked)}
    results: list[CheckResult] = []
    failures, stopped = 0, False
    for indices, ks in groups.items():
        left = None if maxfail is None else maxfail - failures
        got, stopped = run_picked(files, [picked[k] for k in ks], [engines[i] for i in indices], maxfail=left,
                                  **options)
        results.extend(got)
        failures += sum(r.verdict in (Verdict.FAIL, Verdict.ERROR) for r in got)
        if stopped:
            break
    if len(groups) > 1:
        results.sort(key=lambda r: position.get((r.path, r.case_id), len(position)))  # stable: points keep their order
    return results, stopped
