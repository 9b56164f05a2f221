"""The checks a ``gradspec run`` picked, in this process or in workers, stopping after ``maxfail`` failures."""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence

from gradspec.casefile.model import CaseFile, Overrides
from gradspec.engines.protocol import Engine, NamedEngine
from gradspec.results import CheckResult, Verdict
from gradspec.run.runner import iter_case

__all__ = ["run_picked"]


def run_picked(files: Sequence[CaseFile], picked: Sequence[tuple[int, int]],
               engines: Sequence[tuple[str | NamedEngine, Engine]],
               *, jobs: int | None = None, maxfail: int | None = None, on_case: Callable[[str], None] = lambda _: None,
               on_failure: Callable[[], None] = lambda: None, overrides: Overrides | None = None,
               isolate: bool = False) -> tuple[list[CheckResult], bool]:
    """Every point of the picked cases (file and case indices into ``files``) on every engine (its spec
    and the engine), serially or with ``jobs`` workers (0: one per core); and whether the run stopped
    at ``maxfail`` failing checks. ``on_case`` hears each finished case id, ``on_failure`` each failing
    check. Results keep the serial order; a stopped run keeps them up to its ``maxfail``-th failure.

    Serially, with ``isolate``, engines other than the built-in one run in one worker process of their
    own, so that one that takes its process down (``os._exit``, a crash in native code) or hangs outside
    Python fails the check it was on, and the run goes on to its report. ``overrides`` are the command
    line's, which a spawned worker applies again to the files it loads."""
    failures = 0

    def stop(result: CheckResult) -> bool:
        nonlocal failures
        if result.verdict in (Verdict.FAIL, Verdict.ERROR):
            failures += 1
            on_failure()
        return maxfail is not None and failures >= maxfail

    results: list[CheckResult] = []
    if jobs is not None:
        from gradspec.run.workers import run_in_workers

        results = run_in_workers(files, picked, engines, jobs or os.cpu_count() or 1, on_case, stop, overrides)
    else:
        isolated = [i for i, (_, e) in enumerate(engines) if isolate and e.name != "builtin"]
        grouped: list[list[CheckResult]] = []
        if isolated:
            from gradspec.run.workers import run_units

            grouped = run_units(files, picked, [engines[i] for i in isolated], 1, on_case, stop, overrides)
        _serial(files, picked, [engine for _, engine in engines], results, stop, on_case,
                {i: [grouped[k * len(isolated) + n] for k in range(len(picked))] for n, i in enumerate(isolated)})
    stopped = maxfail is not None and failures >= maxfail
    if stopped:  # workers may have finished more in the meantime: keep the serial order's first ones
        failing = [i for i, r in enumerate(results) if r.verdict in (Verdict.FAIL, Verdict.ERROR)]
        results = results[: failing[maxfail - 1] + 1] if maxfail is not None and len(failing) >= maxfail else results
    return results, stopped


def _serial(files: Sequence[CaseFile], picked: Sequence[tuple[int, int]], engines: Sequence[Engine],
            results: list[CheckResult], stop: Callable[[CheckResult], bool], on_case: Callable[[str], None],
            done: dict[int, list[list[CheckResult]]]) -> None:
    """The checks in serial order; ``done`` holds, per engine index, what workers already ran (per case)."""
    for k, (fi, ci) in enumerate(picked):
        case = files[fi].cases[ci]
        for i, engine in enumerate(engines):
            if i in done:
                results.extend(done[i][k])
                continue
            for _, result in iter_case(case, engine):
                results.append(result)
                if stop(result):
                    return
            on_case(case.id)
