"""The reference store: one reference per (graph, point), shared by equal graphs, errors never remembered."""

from __future__ import annotations

from fractions import Fraction

import mpmath
import pytest

import gradspec.reference.store as store
from gradspec.checks.check import prepare
from gradspec.errors import DomainError
from gradspec.reference.store import STORE, reference


@pytest.fixture(autouse=True)
def fresh(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GRADSPEC_CACHE", "0")  # memory only: what is remembered here is the store's doing
    STORE.clear_memory()


def test_equal_graphs_share_one_reference_and_its_work(monkeypatch: pytest.MonkeyPatch) -> None:
    point = {"x": Fraction(1, 2), "y": Fraction(3)}
    first = reference(prepare("a = x*y; tanh(a) + x", ["x", "y"]), point)
    value = first.exact().value
    with mpmath.workdps(60):
        assert mpmath.almosteq(value, mpmath.tanh(mpmath.mpf(3) / 2) + mpmath.mpf(1) / 2, 1e-50)
    assert first.rounding(2.0**-23)[""] > first.rounding(2.0**-52)[""] > 0
    nums = first.numerical(1e-4)

    def again(*args: object) -> None:
        raise AssertionError("worked out twice")

    monkeypatch.setattr(store, "exact_at", again)
    monkeypatch.setattr(store, "numerical", again)
    monkeypatch.setattr(store, "bounds", again)
    second = reference(prepare("a = x * y;  tanh(a) + x", ["x", "y"]), {**point, "unused": Fraction(7)})
    assert second.graph is not first.graph and second.graph == first.graph
    assert second.exact() is first.exact()
    assert second.numerical(1e-4) is nums
    assert second.rounding(2.0**-23) is first.rounding(2.0**-23)
    assert second.precision(2.0**-23) is first.precision(2.0**-23)


def test_a_different_point_or_graph_is_another_reference() -> None:
    graph = prepare("x*x", ["x"])
    two = reference(graph, {"x": Fraction(2)}).exact()
    three = reference(graph, {"x": Fraction(3)}).exact()
    cube = reference(prepare("x*x*x", ["x"]), {"x": Fraction(2)}).exact()
    assert (two.grads["x"], three.grads["x"], cube.grads["x"]) == (4, 6, 12)


def test_a_domain_error_names_the_callers_column_every_time() -> None:
    point = {"x": Fraction(-1)}
    with pytest.raises(DomainError) as wide:
        reference(prepare("2  +  log(x)", ["x"]), point).exact()
    with pytest.raises(DomainError) as tight:
        reference(prepare("2+log(x)", ["x"]), point).exact()
    assert (wide.value.col, tight.value.col) == (7, 3)
    assert "log needs x > 0" in tight.value.message


def test_formulas_and_the_over_budget_note_are_kept_per_graph(monkeypatch: pytest.MonkeyPatch) -> None:
    graph = prepare("x*y + x", ["x", "y"])
    refs = reference(graph, {"x": Fraction(1), "y": Fraction(2)})
    assert refs.formulas == {"": "x*y + x", "x": "y + 1", "y": "x"}
    assert refs.over_budget == ""

    def too_slow(graph: object) -> None:
        raise store.TimeLimit("derivation took too long")

    big = prepare("tanh(x)*exp(x)", ["x"])
    monkeypatch.setattr(store, "derive", too_slow)
    result = reference(big, {"x": Fraction(1, 2)}).exact()  # falls back to the chain rule
    with mpmath.workdps(50):
        x = mpmath.mpf(1) / 2
        assert mpmath.almosteq(result.grads["x"], (1 - mpmath.tanh(x) ** 2) * mpmath.exp(x) + mpmath.tanh(x) * mpmath.exp(x), 1e-40)
    assert "symbolic derivative is too large" in reference(prepare("tanh(x) * exp(x)", ["x"]), {"x": Fraction(1)}).over_budget
    assert not STORE.symbolic(big) and reference(big, {"x": Fraction(1)}).formulas == {}
    STORE.clear_memory()
    assert STORE.symbolic(big) and reference(big, {"x": Fraction(1)}).over_budget == ""
