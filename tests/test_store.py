"""The reference store: one reference per (graph, point), shared by equal graphs, errors never remembered."""

from __future__ import annotations

import functools
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


def test_a_bounded_memo_keeps_the_newest_results_by_content_and_never_an_error() -> None:
    memo: store.Bounded[str, int] = store.Bounded(2)
    calls: list[str] = []

    def compute(key: str) -> int:
        calls.append(key)
        return len(key)

    for key in ("a", "bb", "a", "ccc", "a", "bb"):
        assert memo.get(key, functools.partial(compute, key)) == len(key)
    assert calls == ["a", "bb", "ccc", "a", "bb"]  # "a" was the oldest when "ccc" came, then "bb" was
    assert len(memo) == 2
    with pytest.raises(DomainError):
        memo.get("x", lambda: (_ for _ in ()).throw(DomainError("no")))
    assert memo.get("x", lambda: 7) == 7


def test_the_tensor_and_mode_references_are_remembered_in_the_store() -> None:
    import numpy as np

    from gradspec.graph.tensor import build_tensor
    from gradspec.lang.expr import parse
    from gradspec.modes import Ask, Mode
    from gradspec.reference.modes import mode_reference
    from gradspec.reference.tensor import exact_tensor

    graph = build_tensor(parse("tanh(x) * x"), {"x": (2,)})
    point = {"x": np.array([Fraction(1, 2), Fraction(-1)], dtype=object)}
    first = exact_tensor(graph, point)
    again = exact_tensor(build_tensor(parse("tanh(x) * x"), {"x": (2,)}), {"x": point["x"].copy()})
    assert again is first and len(STORE.tensors) == 1  # equal by content, not by identity
    u = (np.array([0.5, -0.25]),)
    ask = Ask(frozenset({Mode.JVP}), u, u, np.array([1.0, 0.75]))
    f64 = mode_reference(graph, point, ask, 2.0**-52)
    f32 = mode_reference(graph, point, ask, 2.0**-23)
    assert len(STORE.modes) == 2 and f64.jvp is not None and f32.jvp is not None
    assert np.all(f32.jvp.allowance >= f64.jvp.allowance)
    STORE.clear_memory()
    assert len(STORE.tensors) == len(STORE.modes) == 0
