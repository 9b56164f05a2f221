"""--shard K/N: every case in exactly one shard, balanced by cost, the same split whatever the order given."""

from __future__ import annotations

import io
import json
import textwrap
from pathlib import Path

import pytest

from gradspec.cli import main
from gradspec.errors import GradspecError
from gradspec.run.shard import case_key, parse_shard, shard


def test_parse_shard() -> None:
    assert parse_shard("2/4") == (2, 4)
    assert parse_shard(" 1 / 1 ") == (1, 1)
    for bad in ("0/3", "4/3", "1", "a/b", "1/0", "-1/2"):
        with pytest.raises(GradspecError, match=r"expected a shard K/N with 1 <= K <= N \(e.g. 2/4\)"):
            parse_shard(bad)


def test_every_item_lands_in_exactly_one_shard_balanced_greedily() -> None:
    keys = [("f.yaml", f"c{i}") for i in range(7)]
    costs = [10, 1, 1, 8, 3, 3, 2]
    parts = [shard(keys, costs, k, 3) for k in (1, 2, 3)]
    assert sorted(i for p in parts for i in p) == list(range(7))
    # costliest first, each to the lightest shard: 10 | 8 | 3, 3 -> shard 3 (6), 2 -> shard 3 (8), 1 -> shard 2 (9), 1 -> shard 3
    assert parts == [[0], [1, 3], [2, 4, 5, 6]]
    assert [sum(costs[i] for i in p) for p in parts] == [10, 9, 9]
    # the same split when the items come in another order (another machine's directory listing)
    order = [6, 2, 4, 0, 5, 1, 3]
    moved = [[order[i] for i in shard([keys[j] for j in order], [costs[j] for j in order], k, 3)] for k in (1, 2, 3)]
    assert [sorted(p) for p in moved] == parts


def test_case_key_is_relative_to_the_current_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert case_key(str(tmp_path / "a" / "b.gradspec.yaml"), "c") == ("a/b.gradspec.yaml", "c")
    assert case_key("/elsewhere/x.yaml", "c") == ("/elsewhere/x.yaml", "c")


CASES = "cases:\n" + "".join(
    f"  - id: c{i}\n    expr: x * y + {i}\n    at: [{', '.join('{x: ' + str(j) + ', y: 2}' for j in range(i + 1))}]\n"
    for i in range(6))


def test_run_shards_split_the_cases_and_together_run_them_all(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "s.gradspec.yaml").write_text(CASES, encoding="utf-8")
    ran = []
    for k in (1, 2, 3):
        out = io.StringIO()
        assert main(["run", "s.gradspec.yaml", "--shard", f"{k}/3", "--report", f"r{k}.json"], out, io.StringIO()) == 0
        checks = json.loads((tmp_path / f"r{k}.json").read_text(encoding="utf-8"))["checks"]
        ran.append(sorted({c["case"] for c in checks}))
    assert ran == [["c0", "c5"], ["c1", "c4"], ["c2", "c3"]]  # 6+1 | 5+2 | 4+3 points
    err = io.StringIO()
    assert main(["run", "s.gradspec.yaml", "--shard", "4/3"], io.StringIO(), err) == 2
    assert err.getvalue() == "gradspec: expected a shard K/N with 1 <= K <= N (e.g. 2/4), got '4/3'\n"


def test_pytest_shards_and_xdist(pytester: pytest.Pytester) -> None:
    (pytester.path / "s.gradspec.yaml").write_text(textwrap.dedent(CASES), encoding="utf-8")
    seen = []
    for k in (1, 2, 3):
        result = pytester.runpytest("--gradspec-shard", f"{k}/3", "-q", "-p", "no:cacheprovider", "--co")
        seen.append(sorted({line.split("::")[1].split("[")[0] for line in result.outlines if "::" in line}))
    assert seen == [["c0", "c5"], ["c1", "c4"], ["c2", "c3"]]
    result = pytester.runpytest("--gradspec-shard", "0/3")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    pytest.importorskip("xdist")
    result = pytester.runpytest("-p", "xdist", "-n", "2", "-q", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=21)
