"""The one guarded door into code under test.

Every call gradspec makes into an engine goes through this module: it applies the engine time limit
(:data:`gradspec.limits.LIMITS.engine`), turns whatever the engine raises into a verdict, checks that
what came back is what the protocol promises, and records what happened in a :class:`Called`::

    the engine returned, and its answer has the promised shape   -> Called(value=...,   verdict=None)
    the engine cannot run this graph (a skip reason, Unsupported) -> Called(value=None,  verdict=SKIP)
    the engine ran past its limit                                 -> Called(value=None,  verdict=FAIL)
    the engine raised (RecursionError included)                   -> Called(value=None,  verdict=FAIL)
    the engine returned something the protocol does not allow    -> Called(value=None,  verdict=FAIL)
      (a non-number where a float belongs: "engine returned a non-number ...", never "engine raised")

An engine failing is a result of the check, never a crash of the run; a caller reads ``verdict`` and
``message`` and decides what that failure means for its own check.
"""

from __future__ import annotations

import numbers
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from gradspec.engines.protocol import Engine, NotANumber, Outcome, Unsupported
from gradspec.graph.ir import Graph
from gradspec.limits import LIMITS, TimeLimit, deadline
from gradspec.modes import Ask, Derivatives
from gradspec.results import Verdict

if TYPE_CHECKING:
    from gradspec.engines.tensor import TensorOutcome
    from gradspec.graph.tensor import TensorGraph

__all__ = ["STRIKES", "Called", "ProtocolError", "batch", "derivatives", "guarded", "run", "steps", "struck_out", "tensor",
           "timed_out"]

STRIKES = 3  # time-limit hits after which an engine's remaining checks fail without running

T = TypeVar("T")


class ProtocolError(Exception):
    """What an engine returned is not what the engine protocol promises."""


@dataclass(frozen=True)
class Called(Generic[T]):
    """What one call into an engine did: its answer, or the verdict its failure stands for."""

    value: T | None
    verdict: Verdict | None = None  # None: the engine returned, and its answer is in ``value``
    message: str = ""
    error: BaseException | None = None  # what the engine raised, if it raised
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return self.verdict is None

    @property
    def timed_out(self) -> bool:
        return isinstance(self.error, TimeLimit)

    @property
    def raised(self) -> bool:
        """The engine itself raised (not a time limit, a skip or a broken answer)."""
        return self.verdict is Verdict.FAIL and self.error is not None and \
            not isinstance(self.error, TimeLimit | ProtocolError | NotANumber)

    def get(self) -> T:
        assert self.value is not None, "read the answer of a call that failed"
        return self.value


def guarded(body: Callable[[], T], check: Callable[[T], None] = lambda _: None) -> Called[T]:
    """``body()`` under the engine time limit, its exceptions turned into verdicts, its answer checked."""
    start = time.perf_counter()

    def done(value: T | None, verdict: Verdict | None = None, message: str = "",
             error: BaseException | None = None) -> Called[T]:
        return Called(value, verdict, message, error, time.perf_counter() - start)

    try:
        with deadline(LIMITS.engine):
            value = body()
    except TimeLimit as exc:
        return done(None, Verdict.FAIL, f"engine {exc}", exc)
    except Unsupported as exc:
        return done(None, Verdict.SKIP, str(exc), exc)
    except NotANumber as exc:  # gradspec's own float() of an answer: the engine returned it, it raised nothing
        return done(None, Verdict.FAIL, str(exc), exc)
    except (Exception, RecursionError) as exc:  # the engine under test failed: its check fails, the run goes on
        return done(None, Verdict.FAIL, f"engine raised {type(exc).__name__}: {exc}", exc)
    try:
        check(value)
    except (ProtocolError, TypeError, ValueError) as exc:  # an answer of the wrong shape cannot even be measured
        error = exc if isinstance(exc, ProtocolError) else ProtocolError(str(exc))
        return done(None, Verdict.FAIL, f"engine broke the protocol: {error}", error)
    return done(value)


def run(engine: Engine, graph: Graph, point: Mapping[str, float], *, every_node: bool = False,
        representable: bool = True) -> Called[Outcome]:
    """``engine.run`` on ``graph`` at ``point``: skipped when the engine says it cannot run the graph
    (or, with ``representable``, cannot hold the point in its precision)."""

    def body() -> Outcome:
        reason = engine.unsupported(graph) or (engine.unrepresentable(graph, point) if representable else None)
        if reason:
            raise Unsupported(reason)
        # an engine that overrides run() may not take every_node: it is passed only when asked for
        return engine.run(graph, point, every_node=True) if every_node else engine.run(graph, point)

    return _counted(engine, body, lambda out: _outcome(out, every_node))


def timed_out(message: str) -> bool:
    """Whether a check's message says its engine call ran past the time limit."""
    return message.startswith("engine did not finish within") or message.startswith("engine did not return within")


def struck_out(engine_name: str) -> str:
    """The one message of every check an engine does not get to run after ``STRIKES`` time-limit hits."""
    return (f"not run: engine {engine_name} ran past the time limit {STRIKES} times, so its remaining checks fail "
            "at once instead of waiting for it again")


def _counted(engine: Engine, body: Callable[[], T], check: Callable[[T], None] = lambda _: None) -> Called[T]:
    """``guarded``, counting the engine's time-limit hits; after ``STRIKES`` of them it is not called again."""
    if engine.time_limit_hits >= STRIKES:
        return Called(None, Verdict.FAIL, struck_out(engine.name))
    called = guarded(body, check)
    if called.timed_out:
        engine.time_limit_hits += 1
    return called


def batch(engine: Engine, graph: Graph, columns: Mapping[str, Sequence[float]]) -> Called[tuple[list[float], dict[str, list[float]]]] | None:
    """``engine.run_batch`` over every point at once, or None for an engine that has no batch mode."""
    method = getattr(engine, "run_batch", None)
    if method is None:
        return None
    size = len(next(iter(columns.values()), ()))
    return _counted(engine, lambda: method(graph, columns), lambda out: _batch(out, size, [n for n, _ in graph.inputs]))


def steps(engine: Engine, build: Callable[[], tuple[Any, Sequence[Any]]], *, backward: bool = True) -> Called[tuple[float, list[float | None]]]:
    """A graph built by ``build()`` from the engine's primitives (after ``engine.begin()``), as its output
    value and, with ``backward``, the gradients of that output with respect to the nodes it names."""

    def body() -> tuple[float, list[float | None]]:
        engine.begin()
        out, nodes = build()
        grads = engine.gradients(out, nodes) if backward else []
        return engine.value(out), list(grads)

    def check(answer: tuple[float, list[float | None]]) -> None:
        _real("the value", answer[0])
        for g in answer[1]:
            _real("a gradient", g, optional=True)

    return _counted(engine, body, check)


def tensor(engine: Engine, graph: TensorGraph, inputs: Mapping[str, Any], cotangents: Sequence[Any]) -> Called[TensorOutcome]:
    """A tensor graph on ``engine`` (:mod:`gradspec.engines.tensor`): its value and one VJP per cotangent,
    skipped when the engine cannot run the graph. Arrays of the wrong shape are left to the comparison,
    which judges them (an unsummed broadcast axis has a shape of its own)."""

    from gradspec.engines.tensor import run_tensor, tensor_unsupported  # NumPy, for tensor cases only

    def body() -> TensorOutcome:
        reason = tensor_unsupported(engine, graph)
        if reason:
            raise Unsupported(reason)
        return run_tensor(engine, graph, inputs, cotangents)

    def check(out: TensorOutcome) -> None:
        if getattr(out.value, "dtype", None) is None or out.value.dtype.kind != "f":
            raise ProtocolError(f"the value is {type(out.value).__name__}, not an array of floats")
        if len(out.grads) != len(cotangents):
            raise ProtocolError(f"{len(out.grads)} gradients for {len(cotangents)} cotangents")

    return _counted(engine, body, check)


def derivatives(engine: Engine, graph: TensorGraph, inputs: Mapping[str, Any], ask: Ask,
                fn: Callable[..., Any] | None = None) -> Called[Derivatives]:
    """Forward-mode and higher-order derivatives of a tensor graph (or of ``fn``, a user's function of
    the graph's differentiable inputs) on ``engine`` (:mod:`gradspec.engines.modes`)."""

    from gradspec.engines.modes import derivatives as compute  # NumPy, for these checks only

    def check(out: Derivatives) -> None:
        if getattr(out.value, "dtype", None) is None or out.value.dtype.kind != "f":
            raise ProtocolError(f"the value is {type(out.value).__name__}, not an array of floats")
        for k, d in out.orders.items():
            _real(f"the derivative of order {k}", d)

    return _counted(engine, lambda: compute(engine, graph, inputs, ask, fn), check)


def _real(what: str, x: object, *, optional: bool = False) -> None:
    if x is None and optional:
        return
    if isinstance(x, bool) or not isinstance(x, numbers.Real):
        raise ProtocolError(f"{what} is {type(x).__name__} {x!r}, not a float")


def _outcome(out: object, every_node: bool) -> None:
    if not isinstance(out, Outcome):
        raise ProtocolError(f"run() returned {type(out).__name__}, not an Outcome")
    _real("the value", out.value)
    if not isinstance(out.grads, Mapping):
        raise ProtocolError(f"the gradients are {type(out.grads).__name__}, not a mapping of names to floats")
    for name, g in out.grads.items():
        _real(f"the gradient of {name}", g, optional=True)
    if every_node:
        for g in out.node_grads.values():
            _real("a node's gradient", g, optional=True)
        for v in out.node_values.values():
            _real("a node's value", v)


def _batch(out: object, size: int, names: list[str]) -> None:
    if not (isinstance(out, tuple) and len(out) == 2 and isinstance(out[1], Mapping)):
        raise ProtocolError("run_batch() must return (values, {input: gradients})")
    values, grads = out
    if len(values) != size or any(len(grads.get(n, ())) != size for n in names):
        raise ProtocolError(f"run_batch() must return {size} values and {size} gradients per input")
