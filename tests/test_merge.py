"""gradspec merge: sharded and per-engine JSON reports join into the report one run would have written."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from gradspec.cli import main
from gradspec.report.json_format import from_dict, render_json, to_dict
from gradspec.report.merge import merge

CASES = """
cases:
  - id: mul
    expr: x * y + x
    at: [{x: 1, y: 2}, {x: 3, y: -4}]
  - id: tanh
    expr: tanh(x) * y
    at: [{x: 0.5, y: 2}]
  - id: relu
    expr: relu(x) + x * x
    at: [{x: -1}, {x: 2}]
  - id: tensor
    expr: sum(softmax(x, axis=-1) * w)
    sample:
      count: 2
      vars:
        x: {shape: [2, 3], uniform: [-1, 1]}
        w: {shape: [2, 3], uniform: [-1, 1]}
"""


def run(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(list(argv), out, err)
    return code, out.getvalue(), err.getvalue()


@pytest.fixture
def folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "c.gradspec.yaml").write_text(CASES, encoding="utf-8")
    return tmp_path


def _checks(path: Path) -> list[dict[str, object]]:
    return sorted(json.loads(path.read_text(encoding="utf-8"))["checks"], key=lambda c: (str(c["case"]), str(c["point"])))


def test_a_report_reads_back_into_the_run_it_was_written_from(folder: Path, engines: object) -> None:
    assert run("run", "c.gradspec.yaml", "--engine", "builtin", "--engine", "engines:TanhSignFlip",
               "--report", "one.json")[0] == 1
    data = json.loads((folder / "one.json").read_text(encoding="utf-8"))
    again = to_dict(from_dict(data))
    assert again == data  # every field, the matrix and the summary recomputed from the checks
    assert render_json(from_dict(data)) == (folder / "one.json").read_text(encoding="utf-8")


def test_shards_merge_into_the_whole_run(folder: Path) -> None:
    assert run("run", "c.gradspec.yaml", "--report", "whole.json")[0] == 0
    for k in (1, 2, 3):
        assert run("run", "c.gradspec.yaml", "--shard", f"{k}/3", "--report", f"s{k}.json")[0] == 0
    code, out, err = run("merge", "s1.json", "s2.json", "s3.json", "--report", "all.json", "--report", "all.md",
                         "--report", "all.html")
    assert (code, err) == (0, "")
    assert "OK: 7 checks of 4 cases in 1 files on 1 engine(s)" in out
    assert _checks(folder / "all.json") == _checks(folder / "whole.json")
    assert (folder / "all.md").read_text(encoding="utf-8").startswith("## gradspec: all checks passed (7 checks)")
    assert "<html" in (folder / "all.html").read_text(encoding="utf-8")


def test_per_engine_jobs_merge_into_the_conformance_matrix(folder: Path, engines: object) -> None:
    assert run("run", "c.gradspec.yaml", "--report", "a.json")[0] == 0
    assert run("run", "c.gradspec.yaml", "--engine", "engines:TanhSignFlip", "--report", "b.json")[0] == 1
    code, _, _ = run("merge", "a.json", "b.json", "--report", "all.json", "--report", "all.md")
    assert code == 1
    matrix = json.loads((folder / "all.json").read_text(encoding="utf-8"))["matrix"]
    assert matrix["engines"] == ["builtin", "engines:TanhSignFlip"]
    tanh = next(r for r in matrix["rows"] if r["case"] == "tanh")
    assert (tanh["cells"]["builtin"]["verdict"], tanh["cells"]["engines:TanhSignFlip"]["verdict"]) == ("pass", "fail")
    assert "### Conformance matrix" in (folder / "all.md").read_text(encoding="utf-8")


def test_reports_of_other_case_files_or_versions_or_overlapping_are_refused(folder: Path) -> None:
    assert run("run", "c.gradspec.yaml", "--shard", "1/2", "--report", "a.json")[0] == 0
    (folder / "c.gradspec.yaml").write_text(CASES.replace("x: 3, y: -4", "x: 3, y: -5"), encoding="utf-8")
    assert run("run", "c.gradspec.yaml", "--shard", "2/2", "--report", "b.json")[0] == 0
    code, out, err = run("merge", "a.json", "b.json", "--report", "all.json")
    assert (code, out) == (2, "")
    assert err == ("gradspec: cannot merge reports of different case files: a.json and b.json differ in "
                   "c.gradspec.yaml; run every job on the same checkout\n")
    assert not (folder / "all.json").exists()
    code, _, err = run("merge", "b.json", "b.json")
    assert code == 2 and "b.json and b.json both ran case" in err and "(overlapping shards?)" in err
    data = json.loads((folder / "b.json").read_text(encoding="utf-8"))
    data["gradspec"] = "0.0.1"
    (folder / "old.json").write_text(json.dumps(data), encoding="utf-8")
    run("run", "c.gradspec.yaml", "--shard", "1/2", "--report", "a.json")
    code, _, err = run("merge", "a.json", "old.json")
    assert code == 2
    assert "cannot merge reports of different gradspec versions: a.json was written by" in err
    assert "old.json by 0.0.1" in err
    (folder / "bad.json").write_text("{", encoding="utf-8")
    assert run("merge", "bad.json")[2].startswith("gradspec: bad.json: not JSON: ")
    (folder / "other.json").write_text("[1]", encoding="utf-8")
    assert run("merge", "other.json")[2] == "gradspec: other.json: not a gradspec JSON report (no 'gradspec' and 'checks' keys)\n"
    assert run("merge", "none.json")[0] == 2
    with pytest.raises(Exception, match="at least one"):
        merge([])
