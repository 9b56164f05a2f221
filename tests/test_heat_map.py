"""The HTML report's heat maps of per-element error for failing tensor checks (report/plots.py, svg.py)."""

from __future__ import annotations

import dataclasses
import importlib
import json
import math
import re
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest

from gradspec.casefile.loader import load_file
from gradspec.engines.resolve import resolve
from gradspec.reference.numerical import relative_error
from gradspec.report import render
from gradspec.report.plots import MAX_HEAT_MAPS, NON_FINITE_COLOUR, ZERO_COLOUR, error_colour, heat_maps
from gradspec.results import CheckResult, ElementErrors, Quantity, Role, Run, Verdict
from gradspec.run.runner import run_case

DATA = Path(__file__).resolve().parent / "data"
_RECT = re.compile(r'<rect(?: class="(?P<cls>\w+)")? x="(?P<x>[\d.]+)" y="(?P<y>[\d.]+)" width="[\d.]+" height="[\d.]+" '
                   r'fill="(?P<fill>[^"]+)"><title>(?P<tip>[^<]*)</title></rect>')


@pytest.fixture
def buggy(monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    pytest.importorskip("torch")
    monkeypatch.syspath_prepend(str(DATA))
    return importlib.import_module("tensor_engines")


def _run(tmp_path: Path, case: str, engine: object) -> Run:
    """``case`` (YAML lines of one case) from a case file, through the runner, as a run."""
    path = tmp_path / "t.gradspec.yaml"
    path.write_text("cases:\n" + case)
    (loaded,) = load_file(path).cases
    results = run_case(loaded, resolve(engine))  # type: ignore[arg-type]
    return Run(tuple(results), (results[0].engine,), (str(path),), (), 0.1, "test")


def _cells(svg: str) -> list[re.Match[str]]:
    """The grid's cells (the legend's swatches are rects with no class and a tooltip without an index)."""
    return [m for m in _RECT.finditer(svg) if m["tip"].startswith("[") and m["cls"] != "worst"]


def _svg_of(page: str, name: str) -> str:
    start = page.index(f"{name}: relative error per element")
    return page[page.rindex("<svg", 0, start):page.index("</svg>", start)]


MATMUL = """  - id: matmul-bug
    expr: sigmoid(x @ w)
    sample:
      count: 1
      vars:
        x: {shape: [3, 4], normal: [0, 1]}
        w: {shape: [4, 4], uniform: [-1, 1]}
"""


def test_a_failing_tensor_check_carries_every_elements_error(buggy: ModuleType, tmp_path: Path) -> None:
    run = _run(tmp_path, MATMUL, buggy.TransposedMatmul)
    (result,) = run.results
    assert result.verdict is Verdict.FAIL
    x = next(q for q in result.quantities if q.name == "w (vjp0)")
    assert x.verdict is Verdict.FAIL and x.elements is not None
    assert x.elements.shape == (4, 4) and x.elements.rows == 1 and x.elements.grid == (4, 4)
    assert len(x.elements.errors) == len(x.elements.over) == 16
    assert x.index is not None
    worst = int(np.ravel_multi_index(x.index, x.elements.shape))
    # the marked element is the one the quantity's own numbers describe
    assert x.elements.errors[worst] == pytest.approx(relative_error(x.engine or 0.0, x.exact or 0.0))
    assert x.elements.over[worst] and sum(x.elements.over) == int(x.note.split(" of ")[0])
    for name in ("value", "x (vjp0)"):  # the forward pass and x's gradient are right: nothing to map
        right = next(q for q in result.quantities if q.name == name)
        assert right.verdict is Verdict.PASS and right.elements is None


def test_the_html_report_draws_the_map_with_every_cell_and_the_worst_marked(buggy: ModuleType, tmp_path: Path) -> None:
    run = _run(tmp_path, MATMUL, buggy.TransposedMatmul)
    (result,) = run.results
    page = render("html", run)
    assert 'class="heat-maps"' in page
    x = next(q for q in result.quantities if q.name == "w (vjp0)")
    assert x.elements is not None and x.index is not None
    assert "x (vjp0): relative error per element" not in page
    svg = _svg_of(page, "w (vjp0)")
    cells = _cells(svg)
    assert len(cells) == 16
    assert [c["tip"].split(":")[0] for c in cells] == [str([i, j]) for i in range(4) for j in range(4)]
    for cell, err, over in zip(cells, x.elements.errors, x.elements.over, strict=True):
        assert cell["fill"] == error_colour(err) and (cell["cls"] == "over") == over
    (marked,) = re.findall(r'<rect class="worst" x="([\d.]+)" y="([\d.]+)"', svg)
    at = next(c for c in cells if c["tip"].startswith(f"{list(x.index)}:"))
    assert marked == (at["x"], at["y"])
    assert ">axis 0<" in svg and ">axis 1<" in svg and ">relative error, log scale<" in svg
    assert "href" not in svg  # nothing loaded from anywhere


def test_a_sign_flipped_softmax_is_wrong_by_two_everywhere_and_its_jacobian_is_block_diagonal(
        buggy: ModuleType, tmp_path: Path) -> None:
    case = """  - id: softmax-bug
    expr: softmax(x, axis=-1)
    sample:
      count: 1
      vars:
        x: {shape: [3, 4], normal: [0, 1]}
"""
    (result,) = _run(tmp_path, case, buggy.SignFlippedSoftmax).results
    by_name = {q.name: q for q in result.quantities}
    vjp = by_name["x (vjp0)"].elements
    assert vjp is not None and all(e == pytest.approx(2.0) for e in vjp.errors)  # |-g - g| / |g|
    jac = by_name["x (jacobian)"].elements
    assert jac is not None and jac.shape == (3, 4, 3, 4) and jac.rows == 2 and jac.grid == (12, 12)
    grid = np.array(jac.errors).reshape(12, 12)
    same_row = np.kron(np.eye(3), np.ones((4, 4))).astype(bool)  # softmax mixes only within a row
    assert np.all(grid[~same_row] == 0) and np.all(grid[same_row] == pytest.approx(2.0))
    assert np.array(jac.over).reshape(12, 12).tolist() == same_row.tolist()
    svg = _svg_of(render("html", Run((result,), (result.engine,), (), (), 0.1, "test")), "x (jacobian)")
    assert len(_cells(svg)) == 144
    assert ">axes 0-1 (output)<" in svg and ">axes 2-3 (input)<" in svg and ">1,3<" in svg
    assert sum(c["fill"] == ZERO_COLOUR for c in _cells(svg)) == 144 - 48


def test_a_passing_tensor_check_and_scalar_failures_draw_no_map(buggy: ModuleType, tmp_path: Path) -> None:
    passing = _run(tmp_path, MATMUL, "torch")
    assert passing.results[0].verdict is Verdict.PASS
    assert 'class="heat-maps"' not in render("html", passing)
    from gradspec import check

    scalar = check("tanh(x) * y", {"x": 0.5, "y": 2.0}, engine="builtin")
    wrong = dataclasses.replace(scalar, verdict=Verdict.FAIL, quantities=tuple(
        dataclasses.replace(q, verdict=Verdict.FAIL) for q in scalar.quantities))
    page = render("html", Run((wrong,), (wrong.engine,), (), (), 0.1, "test"))
    assert 'id="failures"' in page and "Failures (1)" in page and 'class="heat-maps"' not in page


def test_one_dimensional_and_three_dimensional_quantities_have_no_map_but_their_jacobian_does(
        buggy: ModuleType, tmp_path: Path) -> None:
    case = """  - id: softmax-1d
    expr: softmax(x, axis=-1)
    sample:
      count: 1
      vars:
        x: {shape: [5], normal: [0, 1]}
"""
    (result,) = _run(tmp_path, case, buggy.SignFlippedSoftmax).results
    by_name = {q.name: q for q in result.quantities}
    assert by_name["x (vjp0)"].verdict is Verdict.FAIL and by_name["x (vjp0)"].elements is None
    jac = by_name["x (jacobian)"].elements
    assert jac is not None and jac.grid == (5, 5)
    case3 = case.replace("softmax-1d", "softmax-3d").replace("shape: [5]", "shape: [2, 2, 3]")
    (result3,) = _run(tmp_path, case3, buggy.SignFlippedSoftmax).results
    vjp3 = next(q for q in result3.quantities if q.name == "x (vjp0)")
    assert vjp3.verdict is Verdict.FAIL and vjp3.elements is None
    assert next(q for q in result3.quantities if q.name == "x (jacobian)").elements.grid == (12, 12)  # type: ignore[union-attr]


def _mapped(name: str, errors: tuple[float, ...], shape: tuple[int, int] = (2, 2)) -> Quantity:
    over = tuple(e > 1e-7 for e in errors)
    worst = int(np.argmax(errors))
    index = tuple(int(i) for i in np.unravel_index(worst, shape))
    return Quantity(name, Role.INPUT, 1.0, 2.0, None, 1.0, 0.5, 1e-7, Verdict.FAIL, index=index,
                    elements=ElementErrors(shape, 1, errors, over))


def test_zero_and_non_finite_errors_have_colours_of_their_own() -> None:
    assert error_colour(0.0) == ZERO_COLOUR
    assert error_colour(math.inf) == error_colour(math.nan) == NON_FINITE_COLOUR
    assert error_colour(1e-20) == error_colour(1e-16) != error_colour(1e-8) != error_colour(1.0) == error_colour(50.0)
    q = _mapped("x (vjp0)", (0.0, math.inf, 1e-3, 1e-12))
    (svg,), more = heat_maps(CheckResult("x", {}, "e", Verdict.FAIL, (q,), kind="tensor"))
    assert more == 0
    assert [c["fill"] for c in _cells(svg)] == [ZERO_COLOUR, NON_FINITE_COLOUR, error_colour(1e-3), error_colour(1e-12)]


def test_maps_past_the_limit_are_counted_in_the_report() -> None:
    quantities = tuple(_mapped(f"x{i} (vjp0)", (0.5, 0.0, 0.0, 0.0)) for i in range(MAX_HEAT_MAPS + 2))
    result = CheckResult("x", {}, "e", Verdict.FAIL, quantities, kind="tensor")
    maps, more = heat_maps(result)
    assert len(maps) == MAX_HEAT_MAPS and more == 2
    page = render("html", Run((result,), ("e",), (), (), 0.1, "test"))
    assert page.count('<rect class="worst"') == MAX_HEAT_MAPS and "2 more heat map(s) of this check left out" in page


HOSTILE = '<script>alert("x")</script>'


def test_hostile_text_in_a_map_stays_escaped() -> None:
    q = _mapped(f"x{HOSTILE} (vjp0)", (0.5, 0.0, 0.25, 0.0))
    result = CheckResult(f"x {HOSTILE}", {}, f"e{HOSTILE}", Verdict.FAIL, (q,), case_id=HOSTILE, kind="tensor")
    page = render("html", Run((result,), (result.engine,), (), (), 0.1, "test"))
    assert 'class="heat-maps"' in page
    assert page.count("<script") == 1  # the page's own
    assert "x&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; (vjp0): relative error per element" in page


def test_the_json_quantity_carries_the_elements(buggy: ModuleType, tmp_path: Path) -> None:
    run = _run(tmp_path, MATMUL, buggy.TransposedMatmul)
    data = json.loads(render("json", run))
    (check,) = data["checks"]
    by_name = {q["name"]: q for q in check["quantities"]}
    assert by_name["value"]["elements"] is None and by_name["x (vjp0)"]["elements"] is None
    x = by_name["w (vjp0)"]["elements"]
    q = next(q for q in run.results[0].quantities if q.name == "w (vjp0)")
    assert q.elements is not None
    assert x == {"shape": [4, 4], "rows": 1, "rel_errors": list(q.elements.errors),
                 "over": [i for i, o in enumerate(q.elements.over) if o]}
    inf = _mapped("x (vjp0)", (math.inf, 0.0, 0.0, 0.0))
    record = json.loads(render("json", Run((CheckResult("x", {}, "e", Verdict.FAIL, (inf,)),), ("e",), (), (), 0.1, "t")))
    assert record["checks"][0]["quantities"][0]["elements"]["rel_errors"] == ["inf", 0.0, 0.0, 0.0]
