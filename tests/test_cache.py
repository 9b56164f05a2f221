"""The disk cache of exact references: a warm run needs no SymPy; a bad file is ignored, never trusted."""

from __future__ import annotations

import json
from fractions import Fraction
from pathlib import Path

import pytest

import gradspec.reference.store as store
from gradspec.checks.check import prepare
from gradspec.reference.store import STORE, exact, reference


@pytest.fixture
def folder(cache_folder: Path) -> Path:
    return cache_folder


POINT = {"x": Fraction(1, 3), "y": Fraction(2)}


def graph():  # type: ignore[no-untyped-def]
    return prepare("a = x*y; tanh(a) + log(x)", ["x", "y"])


def test_a_warm_run_reads_the_exact_values_without_sympy(folder: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cold = exact(graph(), POINT)
    reference(graph(), POINT).numerical(1e-4)
    STORE.flush()
    (file,) = folder.glob("*.json")
    STORE.clear_memory()

    def no_sympy(*args: object) -> None:
        raise AssertionError("SymPy was asked again")

    monkeypatch.setattr(store, "exact_at", no_sympy)
    monkeypatch.setattr(store, "numerical", no_sympy)
    warm = exact(graph(), POINT)
    assert {n: str(v)[:32] for n, v in warm.grads.items()} == {n: str(v)[:32] for n, v in cold.grads.items()}
    assert reference(graph(), POINT).numerical(1e-4)["x"] == pytest.approx(float(cold.grads["x"]), rel=1e-8)
    record = json.loads(file.read_text())
    assert record["versions"]["gradspec"] and len(record["points"]) == 1


@pytest.mark.parametrize("content", ["{not json", json.dumps({"versions": {"gradspec": "0.0"}, "points": {}}),
                                     json.dumps({"versions": "x", "points": []}), "\x00\x01"])
def test_a_corrupt_or_stale_file_is_ignored_and_rewritten(folder: Path, content: str) -> None:
    right = exact(graph(), POINT)
    STORE.flush()
    (file,) = folder.glob("*.json")
    file.write_text(content)
    STORE.clear_memory()
    again = exact(graph(), POINT)
    assert str(again.value)[:30] == str(right.value)[:30]
    assert {n: str(v)[:30] for n, v in again.grads.items()} == {n: str(v)[:30] for n, v in right.grads.items()}
    STORE.flush()
    assert json.loads(file.read_text())["points"]  # rewritten with a good record


def test_a_damaged_record_is_recomputed(folder: Path) -> None:
    right = exact(graph(), POINT)
    STORE.flush()
    (file,) = folder.glob("*.json")
    data = json.loads(file.read_text())
    key = next(iter(data["points"]))
    data["points"][key] = {"v": "not a number"}
    file.write_text(json.dumps(data))
    STORE.clear_memory()
    assert str(exact(graph(), POINT).grads["x"]) == str(right.grads["x"])


def test_the_cache_can_be_turned_off(folder: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GRADSPEC_CACHE", "0")
    exact(graph(), POINT)
    STORE.flush()
    assert list(folder.glob("*.json")) == []


# -- case files that loaded cleanly ---------------------------------------------------------------------

import gradspec.casefile.loader as loader_module  # noqa: E402
from gradspec.casefile.cache import DOCUMENTS  # noqa: E402
from gradspec.casefile.loader import load_file  # noqa: E402
from gradspec.errors import CaseFileError  # noqa: E402

CASE_FILE = """\
description: two cases
cases:
  - id: product
    expr: "x*y + tanh(x)"
    at: [{x: 0.5, y: -2}, {x: 0.5, y: 3}]
    expect: {grad: {y: 0.5}}
  - id: sampled
    expr: exp(x)
    sample: {count: 3, vars: {x: {uniform: [-1, 1]}}}
"""


def _cases(loaded):  # type: ignore[no-untyped-def]
    return [(c.id, c.line, c.expression, c.points, c.expect, c.tolerance, c.domain) for c in loaded.cases]


def test_an_unchanged_file_is_rebuilt_without_parsing_or_validation(folder: Path, tmp_path: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "a.gradspec.yaml"
    path.write_text(CASE_FILE)
    cold = load_file(path)
    assert len(list((folder / "files").glob("*.json"))) == 1

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("parsed or validated again")

    monkeypatch.setattr(loader_module, "load", refuse)
    monkeypatch.setattr(loader_module._Loader, "schema_errors", refuse)
    monkeypatch.setattr(loader_module._CaseLoader, "check_points", refuse)
    warm = load_file(path)
    assert _cases(warm) == _cases(cold)
    assert [p.line for c in warm.cases for p in c.points] == [5, 5, 9, 9, 9]


def test_an_edited_file_is_validated_again(folder: Path, tmp_path: Path) -> None:
    path = tmp_path / "a.gradspec.yaml"
    path.write_text(CASE_FILE)
    load_file(path)
    path.write_text(CASE_FILE.replace("y: 0.5", "y: 0.75"))  # now contradicts d/dy = x = 0.5
    with pytest.raises(CaseFileError) as err:
        load_file(path)
    assert (err.value.line, err.value.col) == (6, 24)
    assert "contradicts the exact d/dy = 0.5" in err.value.message


def test_a_file_with_errors_is_never_remembered(folder: Path, tmp_path: Path) -> None:
    path = tmp_path / "bad.gradspec.yaml"
    path.write_text(CASE_FILE.replace("tanh(x)", "tanh(z)"))
    for _ in range(2):
        with pytest.raises(CaseFileError, match="undefined variable 'z'"):
            load_file(path)
    assert not (folder / "files").exists()


def test_a_file_whose_keys_are_not_strings_is_not_remembered(folder: Path, tmp_path: Path) -> None:
    path = tmp_path / "a.gradspec.yaml"
    path.write_text(CASE_FILE + "  - id: numbered\n    expr: x\n    at: {x: 1}\n    description: {1: one}\n")
    with pytest.raises(CaseFileError):
        load_file(path)  # the schema refuses a mapping as a description; nothing is written either way
    assert not (folder / "files").exists()


@pytest.mark.parametrize("content", ["{not json", "[]", json.dumps({"marks": [[1]], "key_marks": [], "data": {}}),
                                     json.dumps({"data": {"cases": []}})])
def test_a_corrupt_case_file_record_is_ignored(folder: Path, tmp_path: Path, content: str) -> None:
    path = tmp_path / "a.gradspec.yaml"
    path.write_text(CASE_FILE)
    cold = load_file(path)
    (record,) = (folder / "files").glob("*.json")
    record.write_text(content)
    assert _cases(load_file(path)) == _cases(cold)
    assert json.loads(record.read_text())["data"]["cases"][0]["id"] == "product"  # written again


def test_the_record_depends_on_gradspec_itself(folder: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "a.gradspec.yaml"
    path.write_text(CASE_FILE)
    load_file(path)
    monkeypatch.setattr(DOCUMENTS, "_fingerprint", "another build of gradspec")
    load_file(path)
    assert len(list((folder / "files").glob("*.json"))) == 2


def test_case_files_are_not_remembered_with_the_cache_off(folder: Path, tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GRADSPEC_CACHE", "0")
    path = tmp_path / "a.gradspec.yaml"
    path.write_text(CASE_FILE)
    load_file(path)
    assert not (folder / "files").exists()


def test_points_another_process_wrote_are_kept(folder: Path) -> None:
    exact(graph(), POINT)
    STORE.flush()
    (file,) = folder.glob("*.json")
    data = json.loads(file.read_text())
    data["points"]["x=1/7,y=1/1"] = next(iter(data["points"].values()))  # what another worker wrote meanwhile
    file.write_text(json.dumps(data))
    exact(graph(), {"x": Fraction(1, 5), "y": Fraction(3)})
    STORE.flush()
    assert sorted(json.loads(file.read_text())["points"]) == ["x=1/3,y=2/1", "x=1/5,y=3/1", "x=1/7,y=1/1"]


def test_a_record_that_does_not_build_is_loaded_the_long_way(folder: Path, tmp_path: Path) -> None:
    path = tmp_path / "a.gradspec.yaml"
    path.write_text(CASE_FILE)
    cold = load_file(path)
    (record,) = (folder / "files").glob("*.json")
    stored = json.loads(record.read_text())
    stored["data"]["cases"][0]["at"] = "not a list of points"  # what the schema would have refused
    record.write_text(json.dumps(stored))
    assert _cases(load_file(path)) == _cases(cold)


def test_the_record_depends_on_the_validating_library(monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib.metadata

    from gradspec.casefile.cache import DocumentCache

    before = DocumentCache().fingerprint()
    real = importlib.metadata.version
    monkeypatch.setattr(importlib.metadata, "version", lambda name: "99.0" if name == "jsonschema" else real(name))
    assert DocumentCache().fingerprint() != before
