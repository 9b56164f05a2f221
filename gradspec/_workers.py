"""Checks in worker processes: ``gradspec run --jobs N``.

Each worker is a fresh interpreter that loads the same case files and resolves the same engines, then
runs whole (case, engine) pairs exactly as a run in one process does, and sends each result back as it
is made. The parent keeps the order of a serial run, so reports do not depend on ``N``.

Workers also make the time limit hard. Every limited call (an engine call, a SymPy derivation) tells
the parent when it starts and ends (:data:`gradspec._limits.LIMITS.watch`); a worker that stays inside
one past its limit plus a grace period is stuck in native code, where the in-process timer cannot reach
it. The parent stops that worker, fails the check with that message, and a fresh worker goes on from
the next point. A worker that dies (an engine that crashes the interpreter) fails its check the same way.
"""

from __future__ import annotations

import multiprocessing
import multiprocessing.connection
import signal
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import Any

from gradspec._cases import Case, CaseFile
from gradspec._limits import LIMITS
from gradspec._results import CheckResult
from gradspec.errors import GradspecError

__all__ = ["grace", "run_in_workers"]


def grace(seconds: float) -> float:
    """How long past a call's own limit its worker is given before it counts as stuck."""
    return 1.0 + 0.1 * seconds

Unit = tuple[int, int, int, int, bool]  # file, case in file, engine, first point, a point was shrunk already


@dataclass(frozen=True)
class _Setup:
    """What a worker needs to rebuild the parent's cases and engines."""

    paths: tuple[str, ...]
    case_ids: tuple[tuple[str, ...], ...]
    engines: tuple[str, ...]  # specs, resolved again in each worker
    engine_limit: float
    derivation_limit: float


def run_in_workers(files: Sequence[CaseFile], cases: Sequence[tuple[int, int]], engines: Sequence[tuple[str, str]],
                   jobs: int, on_unit: Callable[[str], None] = lambda _: None) -> list[CheckResult]:
    """Every point of ``cases`` (file and case indices into ``files``) on every engine (its spec and
    name), in ``jobs`` worker processes; results come back in serial order. ``on_unit`` hears each
    finished case id."""
    setup = _Setup(tuple(f.path for f in files), tuple(tuple(c.id for c in f.cases) for f in files),
                   tuple(spec for spec, _ in engines), LIMITS.engine, LIMITS.derivation)
    names = [name for _, name in engines]
    units = [(fi, ci, ei) for fi, ci in cases for ei in range(len(engines))]
    results: list[dict[int, CheckResult]] = [{} for _ in units]
    # The longest units first (training, then the most points), so that no worker is left with a long
    # one at the end while the others wait; the results keep the serial order all the same.
    order = sorted(range(len(units)), key=lambda u: _cost(files[units[u][0]].cases[units[u][1]]), reverse=True)
    queue: deque[tuple[int, Unit]] = deque((u, (*units[u], 0, False)) for u in order)
    context = multiprocessing.get_context("spawn")
    workers = [_Worker(context, setup, files, names) for _ in range(max(1, min(jobs, len(units))))]
    try:
        while queue or any(w.unit is not None for w in workers):
            for w in workers:
                if w.unit is None and queue:
                    w.give(*queue.popleft())
            busy = [w for w in workers if w.unit is not None]
            left = [t for t in (w.stuck_in() for w in busy) if t is not None]
            ready = multiprocessing.connection.wait([w.conn for w in busy], max(0.0, min(left, default=1.0)))
            for w in busy:
                if w.conn in ready:
                    done = w.receive(results)
                else:
                    left_w = w.stuck_in()
                    if left_w is None or left_w > 0:
                        continue
                    done = w.stop(results)
                if done is not None:
                    fi, ci, _ = units[done]
                    on_unit(files[fi].cases[ci].id)
    finally:
        for w in workers:
            w.close()
    return [r for per_unit in results for _, r in sorted(per_unit.items())]


class _Worker:
    """The parent's handle on one worker process and the unit it is running."""

    def __init__(self, context: Any, setup: _Setup, files: Sequence[CaseFile], names: Sequence[str]) -> None:
        self.context, self.setup, self.files, self.names = context, setup, files, names
        self.unit: int | None = None
        self._start()

    def _start(self) -> None:
        self.conn, child = self.context.Pipe()
        self.process = self.context.Process(target=_serve, args=(child, self.setup), daemon=True)
        self.process.start()
        child.close()
        self.spec: Unit | None = None
        self.point = 0
        self.limit: tuple[float, float] | None = None  # (started, seconds) of the limited call running now
        self.shrunk = False

    def give(self, unit: int, spec: Unit) -> None:
        self.unit, self.spec = unit, spec
        self.point, self.shrunk, self.limit = spec[3], spec[4], None
        self.conn.send(spec)

    def stuck_in(self) -> float | None:
        """Seconds until the running limited call counts as stuck; None outside one."""
        if self.limit is None:
            return None
        started, seconds = self.limit
        return started + seconds + grace(seconds) - time.monotonic()

    def receive(self, results: list[dict[int, CheckResult]]) -> int | None:
        """Handle one message; returns the unit index when the unit is finished."""
        assert self.unit is not None
        try:
            message = self.conn.recv()
        except (EOFError, OSError):
            return self._died(results)
        tag = message[0]
        if tag == "limit":
            self.limit = (time.monotonic(), message[1]) if message[1] is not None else None
        elif tag == "point":
            self.point, self.limit = message[1], None
        elif tag == "result":
            _, index, result = message
            results[self.unit][index] = result
            self.shrunk = self.shrunk or bool(result.shrunk)
        elif tag == "done":
            unit, self.unit, self.spec = self.unit, None, None
            return unit
        return None

    def _died(self, results: list[dict[int, CheckResult]]) -> int | None:
        self.process.join(1)
        code = self.process.exitcode
        how = f"signal {-code}" if code is not None and code < 0 else f"exit code {code}"
        return self._fail_and_resume(results, f"the worker process died ({how}) during this check")

    def stop(self, results: list[dict[int, CheckResult]]) -> int | None:
        """Stop a worker stuck in a limited call."""
        seconds = self.limit[1] if self.limit else LIMITS.engine
        self.process.kill()
        self.process.join()
        return self._fail_and_resume(results, f"engine did not return within {seconds:g} s (+{grace(seconds):g} s grace) "
                                     "and its worker process was stopped: it was stuck outside Python, where the "
                                     "in-process time limit cannot interrupt it")

    def _fail_and_resume(self, results: list[dict[int, CheckResult]], message: str) -> int | None:
        """Fail the point in progress, start a fresh process, and give it the rest of the unit."""
        from gradspec._runner import failed

        assert self.unit is not None and self.spec is not None
        fi, ci, ei, _, _ = self.spec
        case = self.files[fi].cases[ci]
        point = case.points[self.point] if case.points else None
        results[self.unit][self.point] = failed(case, point, self.names[ei], message)
        unit, rest = self.unit, self.point + 1
        self.conn.close()
        self._start()
        if rest < len(case.points):
            self.give(unit, (fi, ci, ei, rest, self.shrunk))
            return None
        self.unit = None
        return unit

    def close(self) -> None:
        try:
            if self.process.is_alive():
                self.conn.send(None)
                self.process.join(10)
        except (OSError, EOFError, BrokenPipeError):
            pass
        if self.process.is_alive():
            self.process.kill()
            self.process.join()
        self.conn.close()


def _cost(case: Case) -> tuple[int, int]:
    return (case.kind == "training", len(case.points))


def _case(file: CaseFile, case_id: str) -> Case:
    for c in file.cases:
        if c.id == case_id:
            return c
    raise GradspecError(f"{file.path}: case {case_id!r} changed while the run was going on")


# -- the worker side ------------------------------------------------------------------------------------


def _serve(conn: Connection, setup: _Setup) -> None:
    """A worker's life: rebuild the cases and engines, then run units until told to stop."""
    from gradspec._cache import CACHE
    from gradspec._engines import resolve
    from gradspec._loader import load_file
    from gradspec._runner import run_point

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent handles Ctrl-C and stops its workers
    LIMITS.engine, LIMITS.derivation = setup.engine_limit, setup.derivation_limit
    LIMITS.watch = lambda seconds: conn.send(("limit", seconds))
    files = [load_file(p) for p in setup.paths]
    cases = [[_case(f, cid) for cid in ids] for f, ids in zip(files, setup.case_ids, strict=True)]
    engines = [resolve(s) for s in setup.engines]
    try:
        while (spec := conn.recv()) is not None:
            fi, ci, ei, first, shrunk = spec
            case, engine = cases[fi][ci], engines[ei]
            if case.kind == "training":
                conn.send(("point", 0))
                conn.send(("result", 0, run_point(case, None, engine)))
            for i in range(first, len(case.points)):
                conn.send(("point", i))
                result = run_point(case, case.points[i], engine, shrink=not shrunk)
                shrunk = shrunk or bool(result.shrunk)
                conn.send(("result", i, result))
            conn.send(("done",))
    except (EOFError, OSError):
        pass  # the parent went away
    finally:
        CACHE.flush()
