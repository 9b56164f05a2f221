"""``gradspec run --jobs N``: the same results as one process, and a hard limit on engines that hang or
crash in native code."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from io import StringIO
from pathlib import Path
from types import ModuleType

import pytest

import gradspec.run.workers as workers
from gradspec.cli import main
from gradspec.engines.call import struck_out
from gradspec.run.workers import grace

ROOT = Path(__file__).parent.parent
DATA = Path(__file__).parent / "data"

NATIVE = '''
import os, signal, time
from engines import Same

class HangsNatively(Same):
    """tanh never returns, and no signal reaches Python meanwhile: what a stuck C extension does."""
    __slots__ = ()
    def tanh(self):
        if os.environ.get("STUCK_MARK"):  # tells a test that a worker is stuck now
            open(os.environ["STUCK_MARK"], "a").close()
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGALRM})
        time.sleep(3600)

class Crashes(Same):
    """tanh takes the interpreter down, as a segfaulting extension would."""
    __slots__ = ()
    def tanh(self):
        os.kill(os.getpid(), signal.SIGSEGV)
'''

CASES = """\
cases:
  - id: t
    expr: tanh(x) * y
    at: [{x: 0.5, y: 2}, {x: 1, y: 3}, {x: -1, y: 0.5}]
  - id: m
    expr: x * y + x
    at: [{x: 2, y: 3}, {x: 1, y: 1}]
"""


def run(*argv: str) -> tuple[int, str, str]:
    out, err = StringIO(), StringIO()
    return main(list(argv), out, err), out.getvalue(), err.getvalue()


def _checks(report: Path) -> list[tuple[object, ...]]:
    data = json.loads(report.read_text())
    return [(r["case"], r["engine"], r["point"], r["verdict"], r["message"], json.dumps(r["quantities"]),
             json.dumps(r.get("culprit")), r.get("shrunk")) for r in data["checks"]]


@pytest.fixture
def native(engines: ModuleType, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    (tmp_path / "native.py").write_text(NATIVE)
    monkeypatch.syspath_prepend(str(tmp_path))
    cases = tmp_path / "c.gradspec.yaml"
    cases.write_text(CASES)
    return cases


# A fresh interpreter: single-threaded, so its workers fork (this test process may have PyTorch's threads).
FORKING = """
import multiprocessing, sys
used = []
get_context = multiprocessing.get_context
multiprocessing.get_context = lambda method=None: (used.append(method), get_context(method))[1]
from gradspec.cli import main
code = main(sys.argv[1:])
print("start methods:", used)
sys.exit(code)
"""


@pytest.mark.parametrize("start", ["fork", "spawn"])
def test_workers_give_the_results_of_one_process_in_the_same_order(engines: ModuleType, tmp_path: Path, start: str,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    library = Path(__file__).parent.parent / "cases"
    args = [str(library / "ops.gradspec.yaml"), "-q",
            "--engine", "builtin", "--engine", "engines:TanhSignFlip"]
    serial, parallel = tmp_path / "serial.json", tmp_path / "parallel.json"
    code_serial, _, _ = run("run", *args, f"--report={serial}")
    if start == "spawn":
        monkeypatch.setattr(workers, "_single_threaded", lambda: False)
        code_parallel, out, _ = run("run", *args, "--jobs", "2", f"--report={parallel}")
    else:
        env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(DATA), str(ROOT)])}
        child = subprocess.run([sys.executable, "-c", FORKING, "run", *args, "--jobs", "2", f"--report={parallel}"],
                               env=env, capture_output=True, text=True, timeout=300)
        code_parallel, out = child.returncode, child.stdout
        assert "start methods: ['fork']" in out, child.stderr
    assert code_serial == code_parallel == 1
    checks = _checks(serial)
    assert checks == _checks(parallel)
    assert len(checks) > 500
    shrunk = [c for c in checks if c[-1]]
    assert shrunk and len({(c[0], c[1]) for c in shrunk}) == len(shrunk)  # one shrunk case per failing case
    assert "FAILED" in out


def test_an_engine_stuck_in_native_code_is_stopped_and_the_run_goes_on(native: Path, tmp_path: Path) -> None:
    report = tmp_path / "r.json"
    start = time.perf_counter()
    code, out, _ = run("run", str(native), "--engine", "native:HangsNatively", "--engine", "builtin",
                       "--time-limit", "0.5", "--jobs", "1", f"--report={report}")
    took = time.perf_counter() - start
    assert code == 1
    assert "stuck outside Python" in out
    assert took < 3 * (0.5 + grace(0.5)) + 15  # three stuck checks, each stopped; worker starts included
    results = json.loads(report.read_text())["checks"]
    stuck = [r for r in results if r["engine"] == "native:HangsNatively" and r["case"] == "t"]
    assert [r["verdict"] for r in stuck] == ["fail", "fail", "fail"]
    assert [r["point"] for r in stuck] == [{"x": 0.5, "y": 2.0}, {"x": 1.0, "y": 3.0}, {"x": -1.0, "y": 0.5}]
    assert all("did not return within 0.5 s" in r["message"] and "stuck outside Python" in r["message"] for r in stuck)
    # three time-limit hits: the stuck engine's remaining checks (case m) fail at once, without a wait
    struck = [r for r in results if r["engine"] == "native:HangsNatively" and r["case"] == "m"]
    assert [r["message"] for r in struck] == [struck_out("native:HangsNatively")] * 2
    rest = [r["verdict"] for r in results if r not in stuck and r not in struck]
    assert rest == ["pass"] * 5  # everything on the built-in engine


def test_an_engine_that_crashes_its_process_fails_its_checks_only(native: Path, tmp_path: Path) -> None:
    import faulthandler

    report = tmp_path / "r.json"
    enabled = faulthandler.is_enabled()
    faulthandler.disable()  # a forked worker inherits pytest's, which would print the planned crash
    try:
        code, _, _ = run("run", str(native), "--engine", "native:Crashes", "--engine", "builtin", "--jobs", "2",
                         f"--report={report}")
    finally:
        if enabled:
            faulthandler.enable()
    assert code == 1
    results = json.loads(report.read_text())["checks"]
    crashed = [r for r in results if r["verdict"] != "pass"]
    assert [(r["case"], r["engine"]) for r in crashed] == [("t", "native:Crashes")] * 3
    assert all(r["message"] == "the worker process died (signal 11) during this check" for r in crashed)
    assert len(results) == 10


def test_an_xfail_case_stopped_by_the_limit_is_an_expected_failure(native: Path, tmp_path: Path) -> None:
    native.write_text("cases:\n  - id: t\n    expr: tanh(x)\n    at: {x: 0.5}\n    xfail: tanh hangs here\n")
    report = tmp_path / "r.json"
    code, _, _ = run("run", str(native), "--engine", "native:HangsNatively", "--time-limit", "0.3", "-j", "1",
                     f"--report={report}")
    assert code == 0
    (result,) = json.loads(report.read_text())["checks"]
    assert (result["verdict"], result["message"]) == ("xfail", "expected failure: tanh hangs here")


@pytest.mark.parametrize("jobs", ["-1", "x"])
def test_a_bad_job_count_is_a_usage_error(jobs: str) -> None:
    code, _, err = run("run", "--jobs", jobs)
    assert code == 2
    assert "jobs" in err


INTERRUPTED = """
import signal, sys
signal.signal(signal.SIGINT, signal.default_int_handler)  # a shell starts background jobs with SIGINT ignored
from gradspec.cli import main
sys.exit(main(sys.argv[1:]))
"""


def test_ctrl_c_stops_the_workers_at_once(native: Path) -> None:
    import signal

    # Ctrl-C reaches a gradspec process of its own: in this process the KeyboardInterrupt could land in
    # any callback (a weak reference's, a collector's) and be reported as unraisable instead of stopping it.
    mark = native.parent / "stuck"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(native.parent), str(DATA), str(ROOT)]),
           "STUCK_MARK": str(mark)}
    child = subprocess.Popen([sys.executable, "-c", INTERRUPTED, "run", str(native), "--engine", "native:HangsNatively",
                              "--time-limit", "30", "-j", "2"], env=env, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while not mark.exists() and child.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert mark.exists(), "no worker reached the stuck op"
    start = time.perf_counter()
    child.send_signal(signal.SIGINT)
    try:
        _, err = child.communicate(timeout=20)
    finally:
        child.kill()
    assert (child.returncode, err.strip()) == (130, "gradspec: interrupted")
    assert time.perf_counter() - start < 10  # not the 30 s limit, nor a wait for the stuck workers


def test_a_run_leaves_the_process_limits_as_it_found_them(tmp_path: Path) -> None:
    from gradspec.limits import LIMITS

    before = LIMITS.engine
    path = tmp_path / "c.gradspec.yaml"
    path.write_text(CASES)
    assert run("run", str(path), "--time-limit", "0.25", "-q")[0] == 0
    assert LIMITS.engine == before


THREADS = """
import threading, time
from gradspec.run.workers import _single_threaded
assert _single_threaded(), "a fresh interpreter has one thread"
release = threading.Event()
thread = threading.Thread(target=release.wait)
thread.start()
assert not _single_threaded(), "a second thread is seen"
release.set()
thread.join()
end = time.monotonic() + 5  # the kernel lets a thread go a moment after Python's join returns
while not _single_threaded() and time.monotonic() < end:
    time.sleep(0.01)
assert _single_threaded(), "and seen gone"
print("ok")
"""


def test_a_process_with_threads_spawns_its_workers() -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    child = subprocess.run([sys.executable, "-c", THREADS], env=env, capture_output=True, text=True, timeout=60)
    assert (child.returncode, child.stdout.strip()) == (0, "ok"), child.stderr


# -- without --jobs: engines other than builtin run in a worker process of their own ---------------------------

MISBEHAVING = """\
cases:
  - id: t
    expr: tanh(x) * y
    at: [{x: 0.5, y: 2}, {x: 1, y: 3}, {x: -1, y: 0.5}, {x: 2, y: 1}, {x: 0.25, y: 1}]
  - id: e
    expr: exp(x) * y + x
    at: [{x: 0.5, y: 2}, {x: 1, y: 3}]
  - id: m
    expr: x * y + x
    at: [{x: 2, y: 3}, {x: 1, y: 1}]
"""


@pytest.fixture
def misbehaving_cases(misbehaving: ModuleType, tmp_path: Path) -> Path:
    cases = tmp_path / "m.gradspec.yaml"
    cases.write_text(MISBEHAVING)
    return cases


def test_an_engine_that_exits_fails_the_checks_it_was_on_and_the_run_goes_on_without_jobs(
        misbehaving_cases: Path, tmp_path: Path) -> None:
    report = tmp_path / "r.json"
    code, out, _ = run("run", str(misbehaving_cases), "--engine", "builtin", "--engine", "misbehaving:ExitsInExp",
                       f"--report={report}", "--report", str(tmp_path / "r.md"))
    assert code == 1
    assert f"report written: {report}" in out and (tmp_path / "r.md").is_file()
    results = json.loads(report.read_text())["checks"]
    assert len(results) == 18
    died = [(r["case"], r["engine"], r["message"]) for r in results if r["verdict"] != "pass"]
    assert died == [("e", "misbehaving:ExitsInExp", "the worker process died (exit code 70) during this check")] * 2


def test_in_process_the_same_engine_takes_the_run_down(misbehaving_cases: Path) -> None:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(DATA), str(ROOT)])}
    child = subprocess.run([sys.executable, "-m", "gradspec", "run", str(misbehaving_cases), "--in-process",
                            "--engine", "misbehaving:ExitsInExp"], env=env, capture_output=True, text=True, timeout=120)
    assert (child.returncode, child.stdout) == (70, "")  # what --in-process gives up, and what the worker saves


@pytest.mark.parametrize("where", [[], ["--in-process"], ["--jobs", "2"]])
def test_after_three_time_limit_hits_an_engine_s_remaining_checks_fail_at_once(
        misbehaving_cases: Path, tmp_path: Path, where: list[str]) -> None:
    report = tmp_path / "r.json"
    start = time.perf_counter()
    code, _, _ = run("run", str(misbehaving_cases), "--engine", "misbehaving:HangsOnTanh", "--time-limit", "0.5",
                       *where, f"--report={report}")
    took = time.perf_counter() - start
    assert code == 1
    results = json.loads(report.read_text())["checks"]
    messages = [r["message"] for r in results if r["engine"] == "misbehaving:HangsOnTanh"]
    waited = [m for m in messages if m.startswith("engine did not finish within 0.5 s")]
    assert len(waited) == 3  # then no more waiting
    assert messages.count(struck_out("misbehaving:HangsOnTanh")) == len(messages) - 3 - messages.count("")
    assert took < 3 * 0.5 + 20


CRASHING_OP = """\
cases:
  - id: m
    expr: x * y + x
    at: [{x: 2, y: 3}, {x: 1, y: 1}]
  - id: l1
    expr: log(x) * y
    at: [{x: 0.5, y: 2}, {x: 1.5, y: 3}]
  - id: l2
    expr: log(x * y) + x
    at: [{x: 0.5, y: 2}, {x: 1.5, y: 3}]
  - id: l3
    expr: exp(log(x)) - y
    at: [{x: 0.5, y: 2}, {x: 1.5, y: 3}, {x: 3, y: 1}]
  - id: l4
    expr: log(x) + log(y)
    at: [{x: 0.5, y: 2}, {x: 1.5, y: 3}]
  - id: e
    expr: exp(x) * y
    at: [{x: 0.5, y: 2}]
"""


@pytest.mark.parametrize("jobs", [[], ["--jobs", "2"]])
def test_after_three_crashes_in_one_op_the_engine_s_checks_that_use_it_fail_at_once(
        misbehaving: ModuleType, tmp_path: Path, jobs: list[str]) -> None:
    cases = tmp_path / "c.gradspec.yaml"
    cases.write_text(CRASHING_OP)
    report = tmp_path / "r.json"
    code, _, _ = run("run", str(cases), "--engine", "misbehaving:ExitsInLog", *jobs, f"--report={report}")
    assert code == 1
    results = json.loads(report.read_text())["checks"]
    by_case = {}
    for r in results:
        by_case.setdefault(r["case"], []).append(r["message"])
    assert by_case["m"] == ["", ""] and by_case["e"] == [""]  # mul, add and exp finished: never blamed
    logs = [m for c in ("l1", "l2", "l3", "l4") for m in by_case[c]]
    died = [m for m in logs if m == "the worker process died (exit code 1) during this check"]
    struck = [m for m in logs if m.startswith("not run: engine misbehaving:ExitsInLog's worker process died")]
    assert 3 <= len(died) <= 3 + 4  # a few units may already be queued on a worker when the breaker trips
    assert len(died) + len(struck) == 9 and struck
    assert len(set(struck)) == 1 and "3 or more checks using log, and no check using log has finished" in struck[0]
    assert "(the last: exit code 1)" in struck[0]


def test_a_case_whose_points_all_crash_stops_after_three(misbehaving: ModuleType, tmp_path: Path) -> None:
    cases = tmp_path / "c.gradspec.yaml"
    cases.write_text("cases:\n  - id: l\n    expr: log(x)\n    at: [{x: 1}, {x: 2}, {x: 3}, {x: 4}, {x: 5}, {x: 6}]\n")
    report = tmp_path / "r.json"
    assert run("run", str(cases), "--engine", "misbehaving:ExitsInLog", f"--report={report}")[0] == 1
    messages = [r["message"] for r in json.loads(report.read_text())["checks"]]
    assert messages[:3] == ["the worker process died (exit code 1) during this check"] * 3
    assert len(set(messages[3:])) == 1 and messages[3].endswith("so its remaining points fail at once instead of "
                                                                "taking a worker down again")


def test_the_crash_breaker_tells_an_op_on_values_from_one_with_a_constant(tmp_path: Path) -> None:
    from gradspec.casefile.loader import load_file

    path = tmp_path / "p.gradspec.yaml"
    path.write_text("cases:\n  - id: p\n    expr: x ** y + x ** 2 - log(x)\n    at: {x: 2, y: 3}\n")
    (case,) = load_file(path).cases
    assert workers._ops(case) == {"pow", "pow with a constant", "add", "sub", "log"}
