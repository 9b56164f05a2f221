"""Limits: time for work that may not come back (an engine that never returns, a SymPy derivation that
explodes), and the size of a tensor input, refused before any work is done.

On Unix, in the main thread, a limit is an interval timer whose signal raises :class:`TimeLimit` inside
the running code, so even a pure-Python infinite loop is interrupted. Elsewhere (another thread, or no
``SIGALRM``) the work runs unlimited: correctness first, and the caller's own timeout (pytest's, CI's)
still applies. A check makes several limited calls (two engine runs at least); :func:`limited` holds the
signal over all of them, so that each call costs a clock reading rather than a handler installed and a
timer set and cleared, with the same guarantee: every call is stopped at its own limit, and nothing is
raised between calls.

Native code (a C extension, a compiler) does not see the signal until it returns. For that, a run can
use worker processes (:mod:`gradspec.run.workers`): ``LIMITS.watch`` is told when each limited call starts
and ends, and the parent stops a worker that stays inside one past its limit.
"""

from __future__ import annotations

import signal
import sys
import threading
import time
from collections.abc import Callable
from types import FrameType
from typing import Any

__all__ = ["LIMITS", "TimeLimit", "deadline", "limited", "too_large"]

try:  # the C function under signal.signal, without its conversions to and from enums: with a Python
    # handler on either side, each raises and catches an exception, which costs more than the rest of
    # holding the signal for a check
    from _signal import signal as _set_handler
except ImportError:  # pragma: no cover - another Python implementation
    _set_handler = signal.signal


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


class _Timer:
    """SIGALRM while gradspec holds it (in the main thread only): the limited call in progress, if any, and
    when the interval timer goes off. Holding it over many limited calls (:func:`limited`) installs the
    handler once and sets the timer only when no set timer goes off early enough; a timer that goes off
    early (set for an earlier call, or between calls) is set again for what the running call has left, or
    left off. So the guarantee is the same as one timer per call: a call is interrupted at its limit, and
    nothing is raised outside a limited call."""

    held = False
    start: float | None = None  # monotonic time the limited call in progress began
    seconds = 0.0  # its limit
    fires = 0.0  # monotonic time the interval timer goes off; 0 when it is not set
    handler: Any = None  # what SIGALRM and the unraisable hook were before gradspec held them
    hook: Any = None

    def arm(self, seconds: float) -> None:
        self.fires = time.monotonic() + seconds
        signal.setitimer(signal.ITIMER_REAL, seconds)

    def expired(self, signum: int, frame: FrameType | None) -> None:
        self.fires = 0.0
        if self.start is None:
            return  # between limited calls: nothing is running too long
        left = self.start + self.seconds - time.monotonic()
        if left > 0:  # set for an earlier call or limit; this call has time left
            self.arm(left)
            return
        raise TimeLimit(f"did not finish within {self.seconds:g} s")

    def swallowed(self, info: Any) -> None:
        # The signal can land where Python ignores exceptions (a __del__, a weakref or gc callback); the
        # limit would be lost, so it is raised again a moment later, in the code that ran too long.
        if isinstance(info.exc_value, TimeLimit):
            self.arm(_AGAIN)
        else:
            self.hook(info)


_TIMER = _Timer()


def _main_thread() -> bool:
    return threading.current_thread() is threading.main_thread()


class limited:  # lower case: used as a function, ``with limited():``
    """Hold SIGALRM over a run of limited calls (one check, one case): every :func:`deadline` inside it
    costs a clock reading instead of installing a handler and setting a timer. Everything is put back
    when it ends. Where the timer cannot be used (another thread, no ``SIGALRM``, an enclosing interval
    timer that is not gradspec's), or gradspec holds it already, it does nothing."""

    __slots__ = ("_holds",)

    def __enter__(self) -> None:
        t = _TIMER
        self._holds = (not t.held and hasattr(signal, "setitimer") and _main_thread()
                       and signal.getitimer(signal.ITIMER_REAL)[0] == 0)  # never override an enclosing limit
        if self._holds:
            t.handler = _set_handler(signal.SIGALRM, t.expired)
            t.hook, sys.unraisablehook = sys.unraisablehook, t.swallowed
            t.held, t.start, t.fires = True, None, 0.0

    def __exit__(self, *exc: object) -> None:
        if self._holds:
            t = _TIMER
            signal.setitimer(signal.ITIMER_REAL, 0)
            t.held, t.start, t.fires = False, None, 0.0
            _set_handler(signal.SIGALRM, t.handler)
            sys.unraisablehook = t.hook
            t.handler = t.hook = None


class deadline:  # lower case: used as a function, ``with deadline(seconds):``
    """Run the body with at most ``seconds`` of wall time; ``None`` or ``0`` means no limit. Inside a
    limited call already, the body is part of it: an inner limit never overrides the outer one."""

    __slots__ = ("_outer", "_seconds", "_started", "_watch")

    def __init__(self, seconds: float | None) -> None:
        self._seconds = seconds
        self._started = False
        self._outer: limited | None = None
        self._watch: Callable[[float | None], None] | None = None

    def __enter__(self) -> None:
        seconds, t = self._seconds, _TIMER
        if seconds is None or seconds <= 0 or t.start is not None or not _main_thread():
            return
        if not t.held:  # a call of its own: hold the timer for this call alone
            outer = limited()
            outer.__enter__()
            if not t.held:  # the timer cannot be used here: the body runs unlimited
                return
            self._outer = outer
        now = time.monotonic()
        t.start, t.seconds, self._started = now, seconds, True
        self._watch = watch = LIMITS.watch
        if watch is not None:
            watch(seconds)
        if not t.fires or t.fires > now + seconds:
            t.arm(seconds)

    def __exit__(self, *exc: object) -> None:
        if not self._started:
            return
        _TIMER.start = None
        if self._watch is not None:
            self._watch(None)
        if self._outer is not None:
            self._outer.__exit__()


def too_large(name: str, elements: int) -> str | None:
    """Why a tensor input of ``elements`` elements is refused; None when it is within the limit."""
    if elements <= LIMITS.elements:
        return None
    return (f"input {name} has {elements:,} elements; the limit is {LIMITS.elements:,} per input "
            "(max-elements in [tool.gradspec], or gradspec.limits.LIMITS.elements)")
