"""Hardening: hostile files, random garbage for the parser and the loader, faulty engines, SymPy blow-ups.

The only exception that may escape gradspec for bad input is its own error type; a hostile file gives a
located message and exit 2 quickly and runs no code; a faulty engine fails its own checks and nothing
else.
"""

from __future__ import annotations

import json
import shutil
import string
import time
from io import StringIO
from pathlib import Path
from types import ModuleType

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gradspec.casefile.loader import load_file
from gradspec.checks.api import check
from gradspec.cli import main
from gradspec.errors import CaseFileError, ExpressionError
from gradspec.lang.expr import parse
from gradspec.limits import LIMITS
from gradspec.results import Verdict
from tests.conftest import quickly

DATA = Path(__file__).parent / "data"
HOSTILE = sorted((DATA / "hostile").glob("*.yaml"))


def run(*argv: str) -> tuple[int, str, str]:
    out, err = StringIO(), StringIO()
    return main(list(argv), out, err), out.getvalue(), err.getvalue()


# -- hostile files -------------------------------------------------------------------------------------


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    """Every hostile file as a case file, beside one valid file."""
    for path in HOSTILE:
        shutil.copy(path, tmp_path / f"{path.stem}.gradspec.yaml")
    (tmp_path / "valid.gradspec.yaml").write_text("cases:\n  - id: ok\n    expr: x * y\n    at: {x: 2, y: 3}\n")
    return tmp_path


def test_the_corpus_is_large_and_varied() -> None:
    names = {p.stem for p in HOSTILE}
    assert len(names) >= 40
    assert {"alias_bomb", "python_apply", "binary_garbage", "non_utf8", "utf16", "deep_nesting", "expr_python",
            "expr_huge_exponent", "inf_input", "unknown_key", "tab_indent"} <= names


@pytest.mark.parametrize("path", HOSTILE, ids=lambda p: p.stem)
def test_each_hostile_file_is_a_located_error_within_two_seconds(path: Path, tmp_path: Path) -> None:
    target = tmp_path / f"{path.stem}.gradspec.yaml"
    shutil.copy(path, target)
    with quickly(2.0):
        code, out, err = run("validate", str(target))
    assert code == 2
    assert "Traceback" not in out + err
    first = err.splitlines()[0]
    location, _, message = first.partition(": ")
    file, line, col = location.rsplit(":", 2)
    assert file == str(target) and int(line) >= 1 and int(col) >= 1 and message


def test_hostile_files_run_no_code_and_do_not_stop_the_others(corpus: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[str] = []
    monkeypatch.setattr("os.system", lambda cmd: calls.append(cmd) or 0)
    monkeypatch.chdir(corpus)
    code, _, err = run("run", str(corpus), "--report", str(corpus / "r.json"))
    assert code == 2  # invalid input outranks everything
    assert calls == []
    assert not list(corpus.glob("SENTINEL*")) and not list(Path.cwd().glob("pwned*"))
    assert len(err.splitlines()) >= len(HOSTILE)
    report = json.loads((corpus / "r.json").read_text())
    assert [c["case"] for c in report["checks"]] == ["ok"]  # the valid file still ran
    assert report["checks"][0]["verdict"] == "pass"


# -- random input for the parser and the loader ------------------------------------------------------------

TOKENS = ["x", "y", "a", "1", "2.5", "1e3", "+", "-", "*", "/", "**", "(", ")", ",", "=", ";", "\n", "tanh",
          "exp", "log", "relu", "sqrt", "abs", "sin", " ", "__import__", "'", '"', ".", "[", "]", "lambda", ":",
          "#", "9", "**9", "0", "e", "nan", "inf", "\t", "\\", "{", "}", "%", "@", "!", "<", ">", "==", "\x00", "é"]


@settings(max_examples=5000, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.lists(st.sampled_from(TOKENS), max_size=40).map("".join) | st.text(max_size=80))
def test_the_parser_raises_nothing_but_its_own_error(text: str) -> None:
    try:
        program = parse(text)
    except ExpressionError as exc:
        assert exc.expr_col is None or 1 <= exc.expr_col <= len(text) + 1
        return
    assert program.source == text


@settings(max_examples=2500, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.lists(st.sampled_from(TOKENS), max_size=30).map("".join))
def test_checking_any_expression_raises_nothing_but_its_own_error(text: str) -> None:
    try:
        result = check(text, {"x": 0.7, "y": -1.3, "a": 2.0})
    except ExpressionError:
        return
    assert result.verdict in (Verdict.PASS, Verdict.ERROR, Verdict.CONVENTION)


SCALARS = st.one_of(st.none(), st.booleans(), st.integers(-10**6, 10**6), st.floats(allow_nan=True),
                    st.text(alphabet=string.printable, max_size=12), st.sampled_from(["x * y", "tanh(x)", "log(x"]))
KEYS = st.sampled_from(["cases", "id", "expr", "at", "sample", "count", "vars", "x", "y", "uniform", "expect",
                        "grad", "value", "kind", "tolerance", "rtol", "defaults", "version", "steps", "model",
                        "sizes", "data", "init", "step", "repeat", "f", "g", "kink", "tags", "bogus"])
DOCS = st.recursive(SCALARS, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(KEYS, inner, max_size=5),
                    max_leaves=25)


@settings(max_examples=2500, deadline=None, suppress_health_check=list(HealthCheck))
@given(DOCS, st.binary(max_size=8), st.integers(0, 400))
def test_the_loader_raises_nothing_but_its_own_error(tmp_path_factory: pytest.TempPathFactory, doc: object,
                                                     noise: bytes, where: int) -> None:
    raw = yaml.safe_dump({"cases": doc} if not isinstance(doc, dict) else doc).encode()
    if noise:  # and now and then, corrupt the bytes
        raw = raw[:where] + noise + raw[where:]
    path = tmp_path_factory.mktemp("fuzz") / "f.gradspec.yaml"
    path.write_bytes(raw)
    try:
        load_file(path)
    except CaseFileError as exc:
        assert exc.path == str(path) and exc.line is not None and exc.col is not None


# -- faulty engines ---------------------------------------------------------------------------------------


FAULTY = '''
from engines import Same

class Hangs(Same):
    __slots__ = ()
    def tanh(self):
        while True:
            pass

class Drifts(Same):
    """Shared state leaks between checks: every backward scales later gradients a little more."""
    __slots__ = ()
    calls = [0]
    def backward(self):
        Drifts.calls[0] += 1
        super().backward()
        stack, seen = [self], set()
        while stack:
            node = stack.pop()
            if id(node) not in seen:
                seen.add(id(node))
                node.grad *= 1 + 0.01 * Drifts.calls[0]
                stack.extend(node._parents)
'''


def test_faulty_engines_fail_cleanly_and_the_run_goes_on(engines: ModuleType, tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "faulty.py").write_text(FAULTY)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(LIMITS, "engine", 0.5)
    cases = tmp_path / "c.gradspec.yaml"
    cases.write_text("cases:\n  - id: t\n    expr: tanh(x) * y\n    at: [{x: 0.5, y: 2}, {x: 1, y: 3}]\n"
                     "  - id: m\n    expr: x * y + x\n    at: [{x: 2, y: 3}, {x: 1, y: 1}]\n")
    reports = [tmp_path / "r.json", tmp_path / "r.md", tmp_path / "r.html"]
    start = time.perf_counter()
    code, out, _ = run("run", str(cases), "--engine", "faulty:Hangs", "--engine", "engines:Raises",
                       "--engine", "engines:NanTanh", "--engine", "faulty:Drifts", "--engine", "builtin",
                       "--time-limit", "0.5", *(f"--report={r}" for r in reports))
    assert time.perf_counter() - start < 30
    assert code == 1
    rows = {line.split()[0]: line.split()[1:] for line in out.splitlines() if line.startswith(("faulty", "engines", "builtin"))}
    assert rows["faulty:Hangs"][:2] == ["2", "2"]  # both tanh checks stopped by the time limit
    assert rows["engines:Raises"][:2] == ["0", "4"]
    assert rows["engines:NanTanh"][:2] == ["2", "2"]
    assert rows["faulty:Drifts"][1] != "0"  # its later checks are off by the leaked factor
    assert rows["builtin"][:2] == ["4", "0"]  # the other engines are untouched
    assert "engine did not finish within 0.5 s" in out
    data = json.loads(reports[0].read_text())
    assert data["summary"]["engines"]["builtin"]["pass"] == 4
    assert all(r.stat().st_size > 0 for r in reports)


def test_a_derivative_that_explodes_is_reported_not_waited_for(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(LIMITS, "derivation", 1.0)
    steps = ["t0 = x"] + [f"t{k} = sin(t{k-1}*y) * cos(t{k-1} + y) + t{k-1}*t{k-1}*0.1" for k in range(1, 9)]
    expr = "; ".join(steps) + "; t8"
    start = time.perf_counter()
    result = check(expr, {"x": 0.3, "y": 0.7})
    assert time.perf_counter() - start < 15
    assert result.verdict is Verdict.PASS  # exact values still come from the chain rule
    assert "the symbolic derivative is too large" in result.message
    assert all(q.symbolic == "" for q in result.quantities)
