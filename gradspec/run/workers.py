"""Checks in worker processes: ``gradspec run --jobs N``.

Each worker is a copy of the parent (forked, when the parent is single-threaded) or a fresh interpreter
that loads the same case files and resolves the same engine specs (spawned, when a library such as
PyTorch or JAX has started threads of its own). It runs whole (case, engine) pairs exactly as a run in
one process does, and sends each result back as it is made. The parent keeps the order of a serial run, so reports do not depend on ``N``.

Workers also make the time limit hard. Every limited call (an engine call, a SymPy derivation) writes
when it started and its limit into memory shared with the parent (:data:`gradspec.limits.LIMITS.watch`),
with no message and no system call; a worker that stays inside one past its limit plus a grace period is
stuck in native code, where the in-process timer cannot reach it. The parent stops that worker, fails
the check with that message, and a fresh worker goes on from the next point. A worker that dies (an
engine that crashes the interpreter) fails its check the same way.

Both end. After ``STRIKES`` time-limit hits an engine's remaining checks fail at once. An op used by
``STRIKES`` crashed checks or more, of two cases at least, and by no check that finished (``log`` that
calls ``os._exit``: every check that uses it dies, while the other ops of those graphs pass in checks
that finish) is blamed, and the engine's remaining checks that use it fail at once with one message,
instead of each taking a worker down and waiting for a fresh one; a case whose points crashed
``STRIKES`` times fails its remaining points at once.
"""

from __future__ import annotations

import multiprocessing
import multiprocessing.connection
import os
import signal
import time
from collections import Counter, deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import Any

from gradspec.casefile.model import Case, CaseFile, Overrides
from gradspec.checks.kinds import KINDS
from gradspec.engines.call import STRIKES, struck_out, timed_out
from gradspec.engines.protocol import Engine, NamedEngine
from gradspec.errors import GradspecError
from gradspec.limits import LIMITS
from gradspec.results import CheckResult

__all__ = ["grace", "run_in_workers", "run_units"]

_UNIT, _POINT, _STARTED, _SECONDS = range(4)  # the slots of a worker's shared state
_NOT_STARTED, _BETWEEN = -1.0, -2.0  # a worker's unit before its first one, and between two
_POLL = 0.25  # seconds between looks at the workers' state while no result arrives
_AHEAD = 4  # small units sent to a worker before it finishes the one it is on, so it never waits for the next
_SMALL = 4  # points in a small unit


def grace(seconds: float) -> float:
    """How long past a call's own limit its worker is given before it counts as stuck."""
    return 1.0 + 0.1 * seconds


@dataclass(frozen=True)
class _Setup:
    """What a worker needs to rebuild the parent's cases and engines."""

    paths: tuple[str, ...]
    case_ids: tuple[tuple[str, ...], ...]
    engines: tuple[str | NamedEngine, ...]  # specs, resolved again in each worker
    engine_limit: float
    derivation_limit: float
    overrides: Overrides | None = None  # the command line's, applied again to the files a spawned worker loads


class _Pool:
    """The parent's side: the units still to run, their results, and the workers."""

    def __init__(self, files: Sequence[CaseFile], cases: Sequence[tuple[int, int]],
                 engines: Sequence[tuple[str | NamedEngine, Engine]], jobs: int,
                 on_result: Callable[[CheckResult], bool] = lambda _: False, overrides: Overrides | None = None) -> None:
        self.files, self.engines = files, [engine for _, engine in engines]
        self.on_result, self.stopped = on_result, False
        self.setup = _Setup(tuple(f.path for f in files), tuple(tuple(c.id for c in f.cases) for f in files),
                            tuple(spec for spec, _ in engines), LIMITS.engine, LIMITS.derivation, overrides)
        self.units = [(fi, ci, ei) for fi, ci in cases for ei in range(len(engines))]
        self.results: list[dict[int, CheckResult]] = [{} for _ in self.units]
        # The longest units first (training, then the most points), so that no worker is left with a
        # long one at the end while the others wait; the results keep the serial order all the same.
        order = sorted(range(len(self.units)), key=lambda u: _cost(self.case(u)), reverse=True)
        self.queue: deque[int] = deque(order)
        self.resume: dict[int, int] = {}  # unit -> the point a fresh worker starts from
        self.hits = [0] * len(engines)  # time-limit hits per engine, in every worker together
        # Per engine: the (unit, ops) of each check that took its worker down, and the ops of checks that
        # finished alive.
        self.crashes: list[list[tuple[int, frozenset[str]]]] = [[] for _ in engines]
        self.survived: list[set[str]] = [set() for _ in engines]
        self.last_crash = [""] * len(engines)
        context = multiprocessing.get_context("fork" if _single_threaded() else "spawn")
        self.workers = [_Worker(context, self) for _ in range(max(1, min(jobs, len(self.units))))]

    def strike_out(self, unit: int, message: str) -> None:
        """Fail the unit's remaining points at once with ``message``: its engine has run past the time limit
        too often, or crashed too often in an op the unit uses."""
        from gradspec.run.runner import failed

        case = self.case(unit)
        first = self.resume.pop(unit, 0)
        points = list(case.points[first:]) if case.points else [None]
        for i, point in enumerate(points, first):
            result = self.results[unit][i] = failed(case, point, self.engines[self.units[unit][2]].name, message)
            self.stopped = self.on_result(result) or self.stopped

    def struck(self, unit: int) -> str | None:
        """Why the unit is not run (the one message of the breaker that stops it), or None."""
        ei = self.units[unit][2]
        name = self.engines[ei].name
        if self.hits[ei] >= STRIKES:
            return struck_out(name)
        crashes = self.crashes[ei]
        if sum(u == unit for u, _ in crashes) >= STRIKES:  # the same graph crashes at every point
            return (f"not run: engine {name}'s worker process died in {STRIKES} checks of this case "
                    f"({self.last_crash[ei]}), so its remaining points fail at once instead of taking a worker down again")
        # An op to blame was in STRIKES crashed checks or more, of two cases at least (so that one graph's
        # other ops are not blamed with it), and in no check that finished.
        units: dict[str, set[int]] = {}
        count: Counter[str] = Counter()
        for u, ops in crashes:
            count.update(ops)
            for op in ops:
                units.setdefault(op, set()).add(u)
        blamed = sorted(op for op in _ops(self.case(unit))
                        if count[op] >= STRIKES and len(units[op]) >= 2 and op not in self.survived[ei])
        if not blamed:
            return None
        listed = ", ".join(blamed)
        return (f"not run: engine {name}'s worker process died in {STRIKES} or more checks using {listed}, and no "
                f"check using {listed} has finished ({self.last_crash[ei]}), so its remaining checks that use "
                f"{listed} fail at once instead of taking a worker down again")

    def crashed(self, unit: int, how: str) -> None:
        """Count a check of ``unit`` that took its worker down."""
        ei = self.units[unit][2]
        self.crashes[ei].append((unit, _ops(self.case(unit))))
        self.last_crash[ei] = f"the last: {how}"

    def finished(self, unit: int, result: CheckResult) -> None:
        """A check that came back: the ops it ran did not take the process down."""
        if result.quantities:  # the engine was called and returned numbers
            self.survived[self.units[unit][2]].update(_ops(self.case(unit)))

    def case(self, unit: int) -> Case:
        fi, ci, _ = self.units[unit]
        return self.files[fi].cases[ci]

    def run(self, on_unit: Callable[[str], None]) -> list[list[CheckResult]]:
        try:
            while (self.queue or any(w.inflight for w in self.workers)) and not self.stopped:
                for w in self.workers:
                    while self.queue and w.wants_more():
                        unit = self.queue.popleft()
                        if (why := self.struck(unit)) is not None:
                            self.strike_out(unit, why)
                            on_unit(self.case(unit).id)
                        else:
                            w.give(unit)
                busy = [w for w in self.workers if w.inflight]
                left = [t for t in (w.stuck_in() for w in busy) if t is not None]
                ready = multiprocessing.connection.wait([w.conn for w in busy], max(0.0, min([*left, _POLL])))
                for w in busy:
                    if w.conn in ready:
                        done = w.receive()
                    elif (t := w.stuck_in()) is not None and t <= 0:
                        done = w.stop()
                    else:
                        continue
                    for unit in done:
                        on_unit(self.case(unit).id)
            if self.stopped:  # told to stop (--maxfail): the units still running are not waited for
                for w in self.workers:
                    w.process.kill()
        except BaseException:  # Ctrl-C, or an error of gradspec's own: the workers go at once
            for w in self.workers:
                w.process.kill()
            raise
        finally:
            for w in self.workers:
                w.close()
        return [[r for _, r in sorted(per_unit.items())] for per_unit in self.results]


def run_in_workers(files: Sequence[CaseFile], cases: Sequence[tuple[int, int]],
                   engines: Sequence[tuple[str | NamedEngine, Engine]],
                   jobs: int, on_unit: Callable[[str], None] = lambda _: None,
                   on_result: Callable[[CheckResult], bool] = lambda _: False,
                   overrides: Overrides | None = None) -> list[CheckResult]:
    """Every point of ``cases`` (file and case indices into ``files``) on every engine (its spec, and
    the engine it resolved to), in ``jobs`` worker processes; results come back in serial order.
    ``on_unit`` hears each finished case id, ``on_result`` each result as it arrives: when it returns
    True, the run stops and returns the results it has, still in serial order."""
    units = run_units(files, cases, engines, jobs, on_unit, on_result, overrides)
    return [r for per_unit in units for r in per_unit]


def run_units(files: Sequence[CaseFile], cases: Sequence[tuple[int, int]], engines: Sequence[tuple[str | NamedEngine, Engine]],
              jobs: int, on_unit: Callable[[str], None] = lambda _: None,
              on_result: Callable[[CheckResult], bool] = lambda _: False,
              overrides: Overrides | None = None) -> list[list[CheckResult]]:
    """As :func:`run_in_workers`, the results grouped by (case, engine) unit: case by case, and within a
    case engine by engine, so that a caller can interleave them with results of its own."""
    return _Pool(files, cases, engines, jobs, on_result, overrides).run(on_unit)


class _Worker:
    """The parent's handle on one worker process and the units sent to it, oldest (running) first."""

    def __init__(self, context: Any, pool: _Pool) -> None:
        self.context, self.pool = context, pool
        self._start()

    def _start(self) -> None:
        self.conn, child = self.context.Pipe()
        # What the worker is doing, written by it and read here: its unit and point, and the start
        # (time.monotonic, the same clock in every process) and limit of the limited call it is in.
        self.state = self.context.RawArray("d", 4)
        self.state[_UNIT] = _NOT_STARTED
        # A forked worker starts with the parent's cases and engines; a spawned one rebuilds them.
        built = (self.pool.files, self.pool.engines) if self.context.get_start_method() == "fork" else None
        self.process = self.context.Process(target=_serve, args=(child, self.state, self.pool.setup, built),
                                            daemon=True)
        self.process.start()
        child.close()
        self.inflight: deque[int] = deque()

    def give(self, unit: int) -> None:
        pool = self.pool
        first = pool.resume.pop(unit, 0)
        shrunk = any(r.shrunk for r in pool.results[unit].values())
        self.inflight.append(unit)
        self.conn.send((unit, *pool.units[unit], first, shrunk))

    def wants_more(self) -> bool:
        """A unit to start with, or a few small ones queued behind the one running; never a long one
        behind another, so that long units spread over the workers."""
        if not self.inflight:
            return True
        pool = self.pool
        return len(self.inflight) < _AHEAD and all(_small(pool.case(u)) for u in (*self.inflight, pool.queue[0]))

    def stuck_in(self) -> float | None:
        """Seconds until the running limited call counts as stuck; None outside one."""
        started, seconds = self.state[_STARTED], self.state[_SECONDS]
        if not started:
            return None
        return started + seconds + grace(seconds) - time.monotonic()

    def receive(self) -> list[int]:
        """Take one result; returns its unit when it was the unit's last."""
        try:
            unit, index, result, last = self.conn.recv()
        except (EOFError, OSError):
            return self._died()
        return self._record(unit, index, result, last)

    def _record(self, unit: int, index: int, result: CheckResult, last: bool) -> list[int]:
        self.pool.results[unit][index] = result
        if timed_out(result.message):
            self.pool.hits[self.pool.units[unit][2]] += 1
        self.pool.finished(unit, result)
        self.pool.stopped = self.pool.on_result(result) or self.pool.stopped
        if not last:
            return []
        self.inflight.popleft()
        return [unit]

    def _died(self) -> list[int]:
        self.process.join(1)
        code = self.process.exitcode
        how = f"signal {-code}" if code is not None and code < 0 else f"exit code {code}"
        return self._fail_and_resume(f"the worker process died ({how}) during this check", crash=how)

    def stop(self) -> list[int]:
        """Stop a worker stuck in a limited call."""
        seconds = self.state[_SECONDS]
        self.process.kill()
        self.process.join()
        return self._fail_and_resume(f"engine did not return within {seconds:g} s (+{grace(seconds):g} s grace) "
                                     "and its worker process was stopped: it was stuck outside Python, where the "
                                     "in-process time limit cannot interrupt it")

    def _fail_and_resume(self, message: str, crash: str = "") -> list[int]:
        """Fail the point in progress, start a fresh process, and queue the rest of its units."""
        from gradspec.run.runner import failed

        finished: list[int] = []
        while self.inflight:  # the results it sent before it went
            try:
                if not self.conn.poll():
                    break
                finished += self._record(*self.conn.recv())
            except (EOFError, OSError):
                break
        pool = self.pool
        unit, index = int(self.state[_UNIT]), int(self.state[_POINT])
        if timed_out(message) and unit >= 0:
            pool.hits[pool.units[unit][2]] += 1
        if unit == _NOT_STARTED:
            raise GradspecError(f"a worker process could not start ({message}); its error is above")
        rest = list(self.inflight)
        if unit >= 0 and rest and unit == rest[0]:
            if crash:
                pool.crashed(unit, crash)
            case = pool.case(unit)
            _, _, ei = pool.units[unit]
            point = case.points[index] if case.points else None
            pool.results[unit][index] = failed(case, point, pool.engines[ei].name, message)
            rest.pop(0)
            if index + 1 < len(case.points):
                pool.resume[unit] = index + 1
                rest.insert(0, unit)
            else:
                finished.append(unit)
        pool.queue.extendleft(reversed(rest))
        self.conn.close()
        self._start()
        return finished

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


def _single_threaded() -> bool:
    """Whether this process has one thread (Linux tells), so that forking it is safe.

    Forking copies only the calling thread; libraries with thread pools of their own (PyTorch, JAX) can
    deadlock in the child. Only a process known to be single-threaded is forked; others spawn fresh
    interpreters, which cost a second or so of start-up each.
    """
    if "fork" not in multiprocessing.get_all_start_methods():
        return False
    try:
        return len(os.listdir("/proc/self/task")) == 1
    except OSError:
        return False


def _ops(case: Case) -> frozenset[str]:
    """The op-table names a case's graph applies (a tensor case's own tensor ops); empty for a kind
    without one graph (training), which the crash breaker then never stops. A binary op with a constant
    operand is an op of its own here (``pow with a constant``): an engine's ``x ** 2`` and ``x ** y``
    are different code, and one may crash where the other does not."""
    graph = getattr(case.spec, "graph", None) or case.graph
    varying = getattr(graph, "varying", None)
    out = set()
    for step in getattr(graph, "steps", ()):
        if (op := getattr(step, "op", None)) is None:
            continue
        constant = varying is not None and len(step.args) > 1 and not all(varying[a] for a in step.args)
        out.add(f"{op} with a constant" if constant else op)
    return frozenset(out)


def _cost(case: Case) -> tuple[int, int]:
    return (KINDS[case.kind].cost, len(case.points))


def _small(case: Case) -> bool:
    return KINDS[case.kind].points and len(case.points) <= _SMALL


def _case(file: CaseFile, case_id: str) -> Case:
    for c in file.cases:
        if c.id == case_id:
            return c
    raise GradspecError(f"{file.path}: case {case_id!r} changed while the run was going on")


# -- the worker side ------------------------------------------------------------------------------------


def _serve(conn: Connection, state: Any, setup: _Setup, built: tuple[Sequence[CaseFile], Sequence[Engine]] | None) -> None:
    """A worker's life: rebuild the cases and engines (unless ``built`` brings them), then run units
    until told to stop."""
    from gradspec.casefile.loader import load_file
    from gradspec.engines.resolve import resolve
    from gradspec.reference.store import STORE
    from gradspec.run.runner import iter_case

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent handles Ctrl-C and stops its workers
    LIMITS.engine, LIMITS.derivation = setup.engine_limit, setup.derivation_limit

    def watch(seconds: float | None) -> None:
        if seconds is None:
            state[_STARTED] = 0.0
        else:
            state[_SECONDS] = seconds
            state[_STARTED] = time.monotonic()

    LIMITS.watch = watch
    files = built[0] if built else [load_file(p).with_overrides(setup.overrides) for p in setup.paths]
    cases = [[_case(f, cid) for cid in ids] for f, ids in zip(files, setup.case_ids, strict=True)]
    engines = built[1] if built else [resolve(s) for s in setup.engines]
    try:
        while (spec := conn.recv()) is not None:
            unit, fi, ci, ei, first, shrunk = spec
            case, engine = cases[fi][ci], engines[ei]
            state[_UNIT] = unit
            last = len(KINDS[case.kind].checks(case)) - 1
            for i, result in iter_case(case, engine, first=first, shrunk=shrunk,
                                       starting=lambda i: state.__setitem__(_POINT, i)):
                if i == last:
                    state[_UNIT] = _BETWEEN
                conn.send((unit, i, result, i == last))
    except (EOFError, OSError):
        pass  # the parent went away
    finally:
        STORE.flush()
