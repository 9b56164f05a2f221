"""The case model: points, bounds, cases, and finding case files."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import pytest

from gradspec.casefile.model import SUFFIXES, Bounds, Case, Point, data_dir, discover
from gradspec.checks.check import prepare


def test_a_point_is_exact_and_reads_as_floats_and_a_label() -> None:
    p = Point((("x", Fraction(1, 10)), ("y", Fraction(-3))), line=7)
    assert p.exact() == {"x": Fraction(1, 10), "y": Fraction(-3)}
    assert p.floats() == {"x": 0.1, "y": -3.0}
    assert p.label == "x=0.1,y=-3"
    assert p.line == 7


def test_bounds_allow_the_interval_minus_its_exclusions() -> None:
    b = Bounds("x", -1.0, 2.0, ((0.0, 0.5),))
    assert [b.allows(v) for v in (-1.0, -0.5, 0.0, 0.25, 0.5, 0.75, 2.0, 2.5, -1.5)] == [
        True, True, False, False, False, True, True, False, False]


def test_a_case_reads_its_expression_from_its_graph() -> None:
    graph = prepare("x * y", ["x", "y"])
    assert Case("c", "gradient", "f.gradspec.yaml", 3, graph=graph).expression == "x * y"
    assert Case("t", "training", "f.gradspec.yaml", 3).expression == ""


def test_a_case_is_frozen() -> None:
    case = Case("c", "gradient", "f.gradspec.yaml", 3)
    with pytest.raises(AttributeError):
        case.id = "d"  # type: ignore[misc]


def test_discover_finds_case_files_sorted_and_keeps_named_files(tmp_path: Path) -> None:
    (tmp_path / "b").mkdir()
    for name in ("b/two.gradspec.yml", "a.gradspec.yaml", "notes.yaml", "b/three.txt"):
        (tmp_path / name).write_text("cases: []\n")
    named = tmp_path / "notes.yaml"
    assert discover([tmp_path]) == [tmp_path / "a.gradspec.yaml", tmp_path / "b" / "two.gradspec.yml"]
    assert discover([named]) == [named]  # a file named on the command line is taken as it is
    assert discover([tmp_path], suffixes=(".txt",)) == [tmp_path / "b" / "three.txt"]
    assert SUFFIXES == (".gradspec.yaml", ".gradspec.yml")


def test_data_dir_finds_the_shipped_schema_and_cases() -> None:
    assert (data_dir("schemas") / "case-file.schema.json").is_file()
    assert any(data_dir("cases").glob("*.gradspec.yaml"))
    with pytest.raises(FileNotFoundError):
        data_dir("no-such-folder")
