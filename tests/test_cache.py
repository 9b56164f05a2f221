"""The disk cache of exact references: a warm run needs no SymPy; a bad file is ignored, never trusted."""

from __future__ import annotations

import json
from fractions import Fraction
from pathlib import Path

import pytest

import gradspec._reference as reference
from gradspec._cache import CACHE
from gradspec._check import prepare
from gradspec._reference import exact, numerical_all


@pytest.fixture
def folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("GRADSPEC_CACHE_DIR", str(tmp_path))
    CACHE.clear_memory()
    yield tmp_path
    CACHE.clear_memory()


POINT = {"x": Fraction(1, 3), "y": Fraction(2)}


def graph():  # type: ignore[no-untyped-def]
    return prepare("a = x*y; tanh(a) + log(x)", ["x", "y"])


def test_a_warm_run_reads_the_exact_values_without_sympy(folder: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cold = exact(graph(), POINT)
    numerical_all(graph(), POINT, 1e-4)
    CACHE.flush()
    (file,) = folder.glob("*.json")
    CACHE.clear_memory()

    def no_sympy(*args: object) -> None:
        raise AssertionError("SymPy was asked again")

    monkeypatch.setattr(reference, "_exact", no_sympy)
    monkeypatch.setattr(reference, "numerical", no_sympy)
    warm = exact(graph(), POINT)
    assert {n: str(v)[:32] for n, v in warm.grads.items()} == {n: str(v)[:32] for n, v in cold.grads.items()}
    assert numerical_all(graph(), POINT, 1e-4)["x"] == pytest.approx(float(cold.grads["x"]), rel=1e-8)
    record = json.loads(file.read_text())
    assert record["versions"]["gradspec"] and len(record["points"]) == 1


@pytest.mark.parametrize("content", ["{not json", json.dumps({"versions": {"gradspec": "0.0"}, "points": {}}),
                                     json.dumps({"versions": "x", "points": []}), "\x00\x01"])
def test_a_corrupt_or_stale_file_is_ignored_and_rewritten(folder: Path, content: str) -> None:
    right = exact(graph(), POINT)
    CACHE.flush()
    (file,) = folder.glob("*.json")
    file.write_text(content)
    CACHE.clear_memory()
    again = exact(graph(), POINT)
    assert str(again.value)[:30] == str(right.value)[:30]
    assert {n: str(v)[:30] for n, v in again.grads.items()} == {n: str(v)[:30] for n, v in right.grads.items()}
    CACHE.flush()
    assert json.loads(file.read_text())["points"]  # rewritten with a good record


def test_a_damaged_record_is_recomputed(folder: Path) -> None:
    right = exact(graph(), POINT)
    CACHE.flush()
    (file,) = folder.glob("*.json")
    data = json.loads(file.read_text())
    key = next(iter(data["points"]))
    data["points"][key] = {"v": "not a number"}
    file.write_text(json.dumps(data))
    CACHE.clear_memory()
    assert str(exact(graph(), POINT).grads["x"]) == str(right.grads["x"])


def test_the_cache_can_be_turned_off(folder: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GRADSPEC_CACHE", "0")
    exact(graph(), POINT)
    CACHE.flush()
    assert list(folder.glob("*.json")) == []
