"""`gradspec init` and `gradspec schema`: a starter case file whose $schema line resolves wherever gradspec is
installed (a copy of the schema beside it, named relatively), and the installed schema's path or a copy."""

from __future__ import annotations

import io
import json
import re
from pathlib import Path

import pytest

from gradspec.casefile.loader import load_file, schema
from gradspec.casefile.schema_file import SCHEMA_FILE, copy_beside, installed
from gradspec.cli import main
from gradspec.starter import STARTER_NAME


def run(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(list(argv), out, err)
    return code, out.getvalue(), err.getvalue()


def schema_target(case_file: Path) -> Path:
    """Where an editor resolves the file's `# yaml-language-server: $schema=...` line."""
    first = case_file.read_text(encoding="utf-8").splitlines()[0]
    match = re.fullmatch(r"# yaml-language-server: \$schema=(\S+)", first)
    assert match, first
    assert "://" not in match.group(1) and not Path(match.group(1)).is_absolute()
    return case_file.parent / match.group(1)


def test_init_writes_a_starter_that_is_valid_and_passes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    code, out, err = run("init", "my_cases")
    assert (code, err) == (0, "")
    starter = Path("my_cases") / STARTER_NAME
    assert out.splitlines() == [
        f"wrote {starter}",
        f"wrote {Path('my_cases') / SCHEMA_FILE} (the schema its first line names, for completion and checks in your editor)",
        "run it on the built-in engine, on your own Value class (from the folder that holds mymodule.py), or through pytest:",
        "  gradspec run my_cases",
        "  gradspec run my_cases --engine mymodule:Value",
        "  pytest my_cases",
    ]
    # the $schema line resolves to the schema gradspec validates with, beside the file
    assert schema_target(starter).read_bytes() == installed().read_bytes()
    cases = load_file(starter).cases  # checked against that schema, and its expectations against SymPy
    assert [c.id for c in cases] == ["mul", "shared-intermediate", "tanh-of-square", "relu-at-zero", "log-sigmoid"]
    assert "#" in starter.read_text(encoding="utf-8").split("cases:")[1]  # commented throughout
    code, out, _ = run("run", "my_cases")
    assert code == 0
    (totals,) = [line for line in out.splitlines() if line.startswith(("OK:", "FAILED:", "INVALID INPUT:"))]
    assert totals.startswith("OK: 25 checks of 5 cases in 1 files on 1 engine(s): 25 pass;")


def test_init_defaults_to_grad_cases_and_never_overwrites(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert run("init")[0] == 0
    starter = tmp_path / "grad_cases" / STARTER_NAME
    starter.write_text("edited\n", encoding="utf-8")
    code, out, err = run("init")
    assert (code, out) == (2, "")
    assert err == (f"gradspec: {Path('grad_cases') / STARTER_NAME} already exists; gradspec init does not overwrite it "
                   "(name another folder, or move the file away)\n")
    assert starter.read_text(encoding="utf-8") == "edited\n"
    Path("a-file").write_text("x", encoding="utf-8")
    assert run("init", "a-file") == (2, "", "gradspec: a-file is not a folder\n")


def test_schema_prints_the_installed_path(tmp_path: Path) -> None:
    code, out, err = run("schema")
    assert (code, err) == (0, "")
    path = Path(out.strip())
    assert path.is_absolute() and path == installed() and path.name == SCHEMA_FILE
    assert json.loads(path.read_text(encoding="utf-8")) == schema()


def test_schema_write_copies_it_and_refreshes_a_stale_copy(tmp_path: Path) -> None:
    target = tmp_path / "cases"
    code, out, _ = run("schema", "--write", str(target))
    assert code == 0
    assert out.splitlines() == [f"wrote {target / SCHEMA_FILE}",
                                "first line of a case file beside it: # yaml-language-server: $schema=case-file.schema.json"]
    assert (target / SCHEMA_FILE).read_bytes() == installed().read_bytes()
    assert run("schema", "--write", str(target))[1].splitlines()[0] == f"up to date: {target / SCHEMA_FILE}"
    (target / SCHEMA_FILE).write_text("{}", encoding="utf-8")  # from an older gradspec
    assert copy_beside(target) == (target / SCHEMA_FILE, True)
    assert (target / SCHEMA_FILE).read_bytes() == installed().read_bytes()
    (tmp_path / "f").write_text("", encoding="utf-8")
    assert run("schema", "--write", str(tmp_path / "f")) == (2, "", f"gradspec: {tmp_path / 'f'} is not a folder\n")


def test_init_and_schema_do_not_read_pyproject(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # a broken configuration must not keep a new user from starting
    (tmp_path / "pyproject.toml").write_text("[tool.gradspec]\nbogus = 1\n", encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    assert run("init")[0] == 0
    assert run("schema")[0] == 0
    assert run("validate", "grad_cases")[0] == 2
