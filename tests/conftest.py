"""Shared fixtures for gradspec's tests."""

from __future__ import annotations

import contextlib
import gc
import importlib
import math
import os
import shutil
import sys
import tempfile
import textwrap
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType

import pytest

pytest_plugins = ["pytester"]

# The tests keep gradspec's disk cache of exact references to themselves, so they neither read a
# developer's cache nor leave files in it: a fresh folder per run, made by the process that starts the run
# and inherited by its pytest-xdist workers, so that a reference one worker worked out (the built-in
# library's, which three tests run whole) another reads.
if "PYTEST_XDIST_WORKER" not in os.environ or "GRADSPEC_TEST_CACHE_DIR" not in os.environ:
    os.environ["GRADSPEC_TEST_CACHE_DIR"] = tempfile.mkdtemp(prefix="gradspec-test-cache-")
os.environ["GRADSPEC_CACHE_DIR"] = os.environ["GRADSPEC_TEST_CACHE_DIR"]

# Most of the JAX tests' time is XLA compiling the small programs of eager JAX: each op of each graph, in
# each mode, in each process (every pytest-xdist worker, every `gradspec run` worker). JAX's persistent
# compilation cache keeps them on disk by what they are (the program, its compile options, the versions
# and flags of jax and XLA), so a program compiled once, by any test process of this run or of an earlier
# one, is loaded rather than compiled again: the same executable, the same numbers. Set here before any
# test imports jax (JAX reads these once, on import), and inherited by the processes tests start. A cache
# a developer configured is left as it is. JAX's own size bound is not used: it lists and stats the whole
# folder on every write (quadratic in the entries, most of a cold run's system time); the folder is
# emptied instead when a run starts with it over XLA_CACHE_LIMIT (by the one process that starts the
# run, before any worker). Without that bound JAX writes entries unlocked: a process that reads one half
# written warns and compiles the program itself.
XLA_CACHE = Path(tempfile.gettempdir()) / "gradspec-test-xla-cache"
XLA_CACHE_LIMIT = 1 << 30


def _cache_size(folder: Path) -> int:
    """The folder's bytes; files another process removes meanwhile count as none."""
    total = 0
    for entry in folder.iterdir():
        with contextlib.suppress(OSError):
            total += entry.stat().st_size
    return total


if "JAX_COMPILATION_CACHE_DIR" not in os.environ:
    if "PYTEST_XDIST_WORKER" not in os.environ and XLA_CACHE.is_dir() and _cache_size(XLA_CACHE) > XLA_CACHE_LIMIT:
        shutil.rmtree(XLA_CACHE, ignore_errors=True)
    os.environ.update({
        "JAX_COMPILATION_CACHE_DIR": str(XLA_CACHE),
        "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS": "0",  # the default (1 s) leaves out every program here
        "JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES": "-1",
    })

DATA = Path(__file__).resolve().parent / "data"
HOSTILE = DATA / "hostile"
VALID = DATA / "valid"


@pytest.fixture(autouse=True)
def _no_progress_lines(monkeypatch: pytest.MonkeyPatch) -> None:
    """``gradspec run`` writes progress lines to stderr once a run has taken 2 s, and a loaded machine
    can stretch any run past that: tests that compare stderr would fail by the clock. The tests of the
    progress lines themselves set the quiet period they need."""
    monkeypatch.setattr("gradspec.report.terminal.QUIET_FOR", math.inf)


# The interpreter's recursion limit before any test module is collected: importing tinygrad raises it for the
# whole process, and tests of recursion (a recursive backward's RecursionError, nesting limits) need this one.
RECURSION_LIMIT = sys.getrecursionlimit()


@pytest.fixture(autouse=True)
def _default_recursion_limit() -> Iterator[None]:
    sys.setrecursionlimit(RECURSION_LIMIT)
    yield
    sys.setrecursionlimit(RECURSION_LIMIT)


@contextlib.contextmanager
def quickly(seconds: float = 1.0) -> Iterator[None]:
    """What the block does costs this thread less than ``seconds`` of CPU (its own time: neither a loaded machine
    nor another library's threads decide), with the garbage collector held off meanwhile: a full collection
    in a test process that holds other tests' large graphs can take that long by itself."""
    gc.disable()
    start = time.thread_time()
    try:
        yield
    finally:
        gc.enable()
    assert time.thread_time() - start < seconds


@pytest.fixture
def cache_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A disk cache of references of the test's own, empty, with nothing of the store in memory."""
    from gradspec.reference.store import STORE

    monkeypatch.setenv("GRADSPEC_CACHE_DIR", str(tmp_path))
    STORE.clear_memory()
    yield tmp_path
    STORE.clear_memory()


@pytest.fixture
def engines(monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    """tests/data/engines.py, importable as ``engines`` (so ``engines:Class`` specs resolve)."""
    monkeypatch.syspath_prepend(str(DATA))
    return importlib.import_module("engines")


@pytest.fixture
def textbook(monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    """tests/data/textbook.py, a micrograd-style Value class and its one-bug variants, as ``textbook``."""
    monkeypatch.syspath_prepend(str(DATA))
    return importlib.import_module("textbook")


@pytest.fixture
def misbehaving(engines: ModuleType) -> ModuleType:
    """tests/data/misbehaving.py, importable as ``misbehaving`` (so ``misbehaving:Class`` specs resolve)."""
    return importlib.import_module("misbehaving")


@pytest.fixture
def write_case(tmp_path: Path) -> Callable[..., Path]:
    """Write a case file (dedented text, or bytes) under tmp_path; returns its path."""

    def write(text: str | bytes, name: str = "case.gradspec.yaml") -> Path:
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(text, bytes):
            path.write_bytes(text)
        else:
            path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
        return path

    return write


@pytest.fixture
def kinds_file(tmp_path: Path) -> Path:
    """A copy of tests/data/valid/kinds.yaml named as a case file."""
    target = tmp_path / "kinds.gradspec.yaml"
    shutil.copyfile(VALID / "kinds.yaml", target)
    return target


Expected = tuple[int, int, str]  # line, col, a fragment of the message


@pytest.fixture
def assert_invalid(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Callable[..., list[str]]:
    """Check that a case file is refused with exactly the expected located errors.

    Loads it with ``load_file`` (which must raise CaseFileError whose ``errors`` are, in order, one per
    expected ``(line, col, fragment)``, each rendered ``path:line:col: ...``), within 2 seconds, and
    runs ``gradspec validate`` on it (exit 2, the same lines on stderr, no traceback). Runs with the
    working directory in an empty folder and returns the error lines. Time is this thread's CPU time
    (:func:`quickly`), so parallel workers on a small machine do not make the bound flaky.
    """
    import io

    from gradspec.casefile.loader import errors_of, load_file
    from gradspec.cli import main
    from gradspec.errors import CaseFileError

    workdir = tmp_path / "cwd"
    workdir.mkdir(exist_ok=True)
    monkeypatch.chdir(workdir)

    def check(path: Path, expected: list[Expected]) -> list[str]:
        with quickly(2.0), pytest.raises(CaseFileError) as info:
            load_file(path)
        errors = errors_of(info.value)
        lines = [str(e) for e in errors]
        got = [(e.line, e.col) for e in errors]
        assert got == [(line, col) for line, col, _ in expected], lines
        for e, text, (line, col, fragment) in zip(errors, lines, expected, strict=True):
            assert e.path == str(path)
            assert text.startswith(f"{path}:{line}:{col}: "), text
            assert fragment in e.message, (fragment, text)
        # the group error itself is the first located error
        assert str(info.value) == lines[0]

        out, err = io.StringIO(), io.StringIO()
        with quickly(2.0):
            code = main(["validate", str(path)], out, err)
        assert code == 2, (out.getvalue(), err.getvalue())
        assert "Traceback" not in err.getvalue() + out.getvalue()
        assert err.getvalue().splitlines() == lines
        assert out.getvalue().strip() == f"0 valid file(s), 0 cases, 0 points; {len(lines)} error(s)"
        assert list(workdir.iterdir()) == [], "loading a case file created files"
        return lines

    return check


def pytest_sessionfinish(session: pytest.Session) -> None:
    # An xdist worker whose tests are done may still be releasing what its session held when the controller
    # ends it, and execnet then interrupts it with SIGINT after 5 s: the KeyboardInterrupt lands in whatever
    # callback runs (a weak reference's) and is printed as an unraisable exception. Its work is over; it
    # finishes on its own, or execnet ends it 10 s later.
    if hasattr(session.config, "workerinput"):
        import signal

        signal.signal(signal.SIGINT, signal.SIG_IGN)


# The tests that take tens of seconds each: every engine's run of the built-in library, by part (JAX's and
# tinygrad's parts 15-55 s each), and the two that run the whole library through the command line.
LONG = ("tests/test_conformance.py::test_jax_", "tests/test_conformance.py::test_tinygrad_",
        "tests/test_conformance.py::", "tests/test_cli_run.py::test_run_builtin_library",
        "tests/test_terminal.py::test_one_planted_bug_on_the_whole_library")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Under pytest-xdist, the long tests first, dealt out evenly between the workers' first shares.

    Work stealing hands each worker a contiguous share of the collection in order (the first N // n items
    to one, and so on) and lets an idle worker take the back half of another's queue, never the test it
    runs nor the one after it. Where the long tests sat together in one share, a worker ran the last of
    them alone for up to a minute while the others had nothing left to take. Here each share begins with
    its part of the long tests, JAX's and tinygrad's heaviest dealt first, and ends with the short ones,
    which are what stealing moves. The order is the same in every worker, as xdist requires; a run
    without workers keeps the collection's order."""
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    if workers < 2:
        return

    def rank(item: pytest.Item) -> int:
        return next((k for k, prefix in enumerate(LONG) if item.nodeid.startswith(prefix)), len(LONG))

    ranked = sorted(range(len(items)), key=lambda i: (rank(items[i]), i))
    long = [items[i] for i in ranked if rank(items[i]) < len(LONG)]
    rest = [items[i] for i in ranked if rank(items[i]) == len(LONG)]
    shares: list[list[pytest.Item]] = [long[k::workers] for k in range(workers)]
    left = len(items)
    for k, share in enumerate(shares):  # the sizes xdist gives: what is left over the workers left
        size = left // (workers - k)
        take = max(0, size - len(share))
        share += rest[:take]
        rest = rest[take:]
        left -= size
    shares[-1] += rest
    items[:] = [item for share in shares for item in share]
