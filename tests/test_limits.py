"""Time limits: a limited body is interrupted, even when the signal first lands where Python ignores
exceptions, and everything the limit touched is put back afterwards."""

from __future__ import annotations

import signal
import sys
import time
from pathlib import Path

import pytest

from gradspec.limits import LIMITS, TimeLimit, deadline, limited
from tests.conftest import quickly


def spin(seconds: float) -> None:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        pass


def test_a_pure_python_loop_is_interrupted() -> None:
    start = time.monotonic()
    with pytest.raises(TimeLimit, match=r"did not finish within 0\.05 s"), deadline(0.05):
        spin(5)
    assert time.monotonic() - start < 1


@pytest.mark.parametrize("seconds", [None, 0])
def test_no_limit(seconds: float | None) -> None:
    with deadline(seconds):
        spin(0.05)


def test_an_inner_limit_never_overrides_the_outer_one() -> None:
    with pytest.raises(TimeLimit, match=r"within 0\.1 s"), deadline(0.1), deadline(10):
        spin(5)


class _SlowFinalizer:
    def __del__(self) -> None:
        spin(0.3)  # the alarm goes off in here, where Python prints an exception and carries on


def test_a_limit_swallowed_by_a_finalizer_is_raised_again() -> None:
    start = time.monotonic()
    with pytest.raises(TimeLimit), deadline(0.05):
        _SlowFinalizer()  # dropped at once: __del__ runs now, inside the limit
        spin(3)
    assert time.monotonic() - start < 1.5  # the finalizer's 0.3 s, then at once, not after the 3 s loop


def test_other_unraisable_exceptions_still_reach_the_previous_hook(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[type[BaseException]] = []
    monkeypatch.setattr(sys, "unraisablehook", lambda info: seen.append(type(info.exc_value)))

    class Broken:
        def __del__(self) -> None:
            raise ValueError("in a finalizer")

    with deadline(5):
        Broken()
    assert seen == [ValueError]


def test_the_signal_handler_timer_and_hook_are_restored() -> None:
    handler, hook = signal.getsignal(signal.SIGALRM), sys.unraisablehook
    with pytest.raises(TimeLimit), deadline(0.02):
        spin(2)
    with deadline(5):
        pass
    assert signal.getsignal(signal.SIGALRM) is handler
    assert sys.unraisablehook is hook
    assert signal.getitimer(signal.ITIMER_REAL) == (0.0, 0.0)


def test_the_watch_hears_each_limited_call_start_and_end(monkeypatch: pytest.MonkeyPatch) -> None:
    heard: list[float | None] = []
    monkeypatch.setattr(LIMITS, "watch", heard.append)
    with deadline(2), deadline(3):  # not a limited call of its own: the outer one is running
        pass
    with pytest.raises(TimeLimit), deadline(0.02):
        spin(2)
    assert heard == [2, None, 0.02, None]


def test_held_over_many_calls_each_stuck_call_is_stopped_at_its_own_limit() -> None:
    handler, hook = signal.getsignal(signal.SIGALRM), sys.unraisablehook
    with limited():
        with deadline(10):  # sets the timer 10 s ahead; the next call's limit is shorter
            pass
        start = time.monotonic()
        with pytest.raises(TimeLimit, match=r"within 0\.05 s"), deadline(0.05):
            spin(5)
        assert time.monotonic() - start < 1
        with deadline(0.2):  # ends in time: the timer set for the last call, then none, never raise here
            spin(0.05)
        spin(0.3)  # between calls nothing is limited, and the timer that goes off meanwhile raises nothing
        start = time.monotonic()
        with pytest.raises(TimeLimit, match=r"within 0\.1 s"), deadline(0.1):
            spin(5)
        assert 0.09 < time.monotonic() - start < 1
    assert signal.getsignal(signal.SIGALRM) is handler
    assert sys.unraisablehook is hook
    assert signal.getitimer(signal.ITIMER_REAL) == (0.0, 0.0)


def test_held_over_many_calls_a_call_gets_its_whole_limit_from_its_own_start() -> None:
    with limited():
        with deadline(0.2):
            spin(0.15)
        start = time.monotonic()
        with deadline(0.2):  # the timer set for the first call goes off 0.05 s in: set again, not raised
            spin(0.15)
        with pytest.raises(TimeLimit), deadline(0.2):
            spin(5)
        assert 0.33 < time.monotonic() - start < 1.5


def test_held_over_many_calls_a_swallowed_limit_is_raised_again_and_the_watch_hears_each_call(
        monkeypatch: pytest.MonkeyPatch) -> None:
    heard: list[float | None] = []
    monkeypatch.setattr(LIMITS, "watch", heard.append)
    with limited(), limited():  # the inner one does nothing: the outer one holds the timer
        with deadline(3), deadline(4):
            pass
        start = time.monotonic()
        with pytest.raises(TimeLimit), deadline(0.05):
            _SlowFinalizer()
            spin(3)
        assert time.monotonic() - start < 1.5
    assert heard == [3, None, 0.05, None]


def test_an_engine_stuck_in_a_check_is_stopped(monkeypatch: pytest.MonkeyPatch) -> None:
    from gradspec.checks.check import check_graph, prepare
    from gradspec.engine import Value
    from gradspec.engines.protocol import ValueClassEngine
    from gradspec.results import Tolerance

    class Stuck(Value):
        def tanh(self) -> Value:
            spin(60)
            return super().tanh()

    monkeypatch.setattr(LIMITS, "engine", 0.1)
    start = time.monotonic()
    result = check_graph(prepare("tanh(x) * x", ["x"]), {"x": 1}, ValueClassEngine(Stuck), Tolerance())
    assert result.verdict.value == "fail"
    assert result.message == "engine did not finish within 0.1 s"
    assert time.monotonic() - start < 2
    assert signal.getitimer(signal.ITIMER_REAL) == (0.0, 0.0)


def test_a_tensor_input_over_the_element_limit_is_refused_before_any_work(monkeypatch: pytest.MonkeyPatch) -> None:
    import numpy as np

    import gradspec
    from gradspec.errors import GradspecError

    with quickly(0.5), pytest.raises(GradspecError,  # converting a million inputs to exact decimals takes seconds
                                     match=r"input x has 1,000,001 elements; the limit is 1,000,000 per input"):
        gradspec.check("sum(x)", {"x": np.zeros(1_000_001)})
    monkeypatch.setattr(LIMITS, "elements", 4)
    with pytest.raises(GradspecError, match=r"input w has 6 elements; the limit is 4 per input"):
        gradspec.check("sum(x @ w)", {"x": [1.0, 2.0], "w": [[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]]})
    assert gradspec.check("sum(x * x)", {"x": [1.0, 2.0, 3.0, 4.0]}).verdict.value == "pass"


def test_a_nested_list_over_the_limit_is_counted_without_converting_it() -> None:
    import gradspec
    from gradspec.errors import GradspecError

    row = [0.5] * 10_000  # 10,000 references to one row: 10^8 elements, which an array would take 800 MB to hold
    with quickly(0.5), pytest.raises(GradspecError,
                                     match=r"input x has 100,000,000 elements; the limit is 1,000,000 per input"):
        gradspec.check("sum(x)", {"x": [row] * 10_000})
    with pytest.raises(TypeError, match="input x is a nested list of unequal lengths, not an array"):
        gradspec.check("sum(x)", {"x": [[1.0, 2.0], [3.0]]})


def test_the_element_limit_comes_from_the_project_configuration(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import io

    from gradspec.cli import main

    (tmp_path / "pyproject.toml").write_text("[tool.gradspec]\nmax-elements = 3\n")
    (tmp_path / "case.gradspec.yaml").write_text("cases:\n  - id: big\n    expr: sum(x)\n    at: {x: [1, 2, 3, 4]}\n")
    monkeypatch.chdir(tmp_path)
    out, err = io.StringIO(), io.StringIO()
    assert main(["run", "case.gradspec.yaml"], out, err) == 2
    assert "case.gradspec.yaml:4:13: [big] the tensor has 4 elements; the limit is 3 per input" in err.getvalue()
    assert LIMITS.elements == 1_000_000  # the command leaves the process's limit as it found it
    (tmp_path / "pyproject.toml").write_text("[tool.gradspec]\nmax-elements = 0\n")
    assert main(["run", "case.gradspec.yaml"], out, err) == 2
    assert "max-elements: expected a whole number of elements, at least 1, found 0" in err.getvalue()
