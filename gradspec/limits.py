"""Limits: time for work that may not come back (an engine that never returns, a SymPy derivation that
explodes), and the size of a tensor input, refused before any work is done.

On Unix, in the main thread, a limit is an interval timer whose signal raises :class:`TimeLimit` inside
the running code, so even a pure-Python infinite loop is interrupted. Elsewhere (another thread, or no
``SIGALRM``) the work runs unlimited: correctness first, and the caller's own timeout (pytest's, CI's)
still applies.

Native code (a C extension, a compiler) does not see the signal until it returns. For that, a run can
use worker processes (:mod:`gradspec.run.workers`): ``LIMITS.watch`` is told when each limited call starts
and ends, and the parent stops a worker that stays inside one past its limit.
"""

from __future__ import annotations

import signal
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import FrameType
from typing import Any

__all__ = ["LIMITS", "TimeLimit", "deadline", "too_large"]


class _Limits:
    """Seconds allowed, settable from the command line (``--time-limit``) and pytest's ini."""

    engine: float = 60.0  # one engine call: build a graph and backpropagate
    derivation: float = 20.0  # one SymPy derivation; past it the chain rule is used, step by step
    watch: Callable[[float | None], None] | None = None  # told a limited call's seconds as it starts, None as it ends
    # Elements of one tensor input, in case files and gradspec.check ([tool.gradspec] max-elements): the
    # exact reference's time and memory grow with them, so a larger input is refused before any work.
    elements: int = 1_000_000


LIMITS = _Limits()
_AGAIN = 0.01  # seconds before a limit whose exception was swallowed is raised again


class TimeLimit(BaseException):
    """Raised inside work that ran past its limit (a BaseException, so that an engine's own
    ``except Exception`` cannot swallow it)."""


@contextmanager
def deadline(seconds: float | None) -> Iterator[None]:
    """Run the body with at most ``seconds`` of wall time; ``None`` or ``0`` means no limit."""
    usable = (
        seconds is not None
        and seconds > 0
        and hasattr(signal, "setitimer")
        and threading.current_thread() is threading.main_thread()
        and signal.getitimer(signal.ITIMER_REAL)[0] == 0  # never override an enclosing limit
    )
    if not usable or seconds is None:
        yield
        return

    def _expired(signum: int, frame: FrameType | None) -> None:
        raise TimeLimit(f"did not finish within {seconds:g} s")

    previous_hook = sys.unraisablehook

    def _swallowed(info: Any) -> None:
        # The signal can land where Python ignores exceptions (a __del__, a weakref or gc callback); the
        # limit would be lost, so it is raised again a moment later, in the code that ran too long.
        if isinstance(info.exc_value, TimeLimit):
            signal.setitimer(signal.ITIMER_REAL, _AGAIN)
        else:
            previous_hook(info)

    previous = signal.signal(signal.SIGALRM, _expired)
    sys.unraisablehook = _swallowed
    watch = LIMITS.watch
    if watch is not None:
        watch(seconds)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
        sys.unraisablehook = previous_hook
        if watch is not None:
            watch(None)


def too_large(name: str, elements: int) -> str | None:
    """Why a tensor input of ``elements`` elements is refused; None when it is within the limit."""
    if elements <= LIMITS.elements:
        return None
    return (f"input {name} has {elements:,} elements; the limit is {LIMITS.elements:,} per input "
            "(max-elements in [tool.gradspec], or gradspec.limits.LIMITS.elements)")
