"""Which engines each case runs on: a function case's own keys unless the command line names engines."""

from __future__ import annotations

import dataclasses
import textwrap
from pathlib import Path

import pytest

from gradspec.casefile.loader import load_file
from gradspec.casefile.model import Case, FunctionSpec
from gradspec.engines.protocol import NamedEngine
from gradspec.run.plan import case_cost, own_engines, plan

EXAMPLES = Path(__file__).resolve().parent.parent / "examples" / "functions"

FILE = """
cases:
  - id: plain
    expr: x * y
    at: [{x: 1, y: 2}, {x: 3, y: 4}]
  - id: fn
    kind: function
    function: {builtin: "scalar_ops:smooth_abs"}
    reference: sqrt(x*x + y*y + 1)
    sample:
      count: 3
      vars:
        x: {uniform: [-2, 2]}
        y: {uniform: [-2, 2]}
  - id: tensor
    expr: sum(x * x)
    sample:
      count: 2
      vars:
        x: {shape: [3, 4], uniform: [-1, 1]}
"""


@pytest.fixture
def cases(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Case]:
    monkeypatch.chdir(EXAMPLES)
    path = tmp_path / "p.gradspec.yaml"
    path.write_text(textwrap.dedent(FILE), encoding="utf-8")
    return {c.id: c for c in load_file(path).cases}


def _for(case: Case, *keys: str) -> Case:
    assert isinstance(case.spec, FunctionSpec)
    spec = dataclasses.replace(case.spec, functions=tuple((k, f"m:{k}") for k in keys))
    return dataclasses.replace(case, spec=spec, engines=keys)


def test_a_function_case_runs_on_its_own_engines_when_none_is_given(cases: dict[str, Case]) -> None:
    torch_and_jax = _for(cases["fn"], "torch", "jax")
    assert own_engines(torch_and_jax, ["builtin"]) == ["torch", "jax"]
    assert own_engines(cases["plain"], ["builtin"]) == ["builtin"]
    specs, per_case = plan([cases["plain"], torch_and_jax, _for(cases["fn"], "jax")], ["builtin"], explicit=False)
    assert specs == ["builtin", "torch", "jax"]
    assert per_case == [(0,), (1, 2), (2,)]


def test_a_configured_engine_of_the_same_library_stands_in_for_a_key(cases: dict[str, Case]) -> None:
    mine = NamedEngine("torch", "torch:float32")  # a named engine called torch
    assert own_engines(_for(cases["fn"], "torch", "jax"), ["builtin", "torch:float32", mine]) == \
        ["torch:float32", mine, "jax"]


def test_an_engine_list_from_the_command_line_runs_every_case_on_it(cases: dict[str, Case]) -> None:
    specs, per_case = plan([cases["plain"], _for(cases["fn"], "torch")], ["builtin", "jax"], explicit=True)
    assert specs == ["builtin", "jax"]
    assert per_case == [(0, 1), (0, 1)]  # the function case then skips where it has no function (applies())


def test_cost_is_points_times_engines_times_elements(cases: dict[str, Case]) -> None:
    assert case_cost(cases["plain"], 1) == 2
    assert case_cost(cases["plain"], 3) == 6
    assert case_cost(cases["fn"], 2) == 3 * 2 * 2  # three draws of two scalar inputs, on two engines
    assert case_cost(cases["tensor"], 1) == 2 * 12
