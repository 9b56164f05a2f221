"""Sampled inputs: reproducible draws inside the declared domain, located errors otherwise."""

from __future__ import annotations

import math
from collections.abc import Hashable

import pytest

from gradspec.casefile.model import Bounds
from gradspec.casefile.sampling import domain, points
from gradspec.errors import CaseFileError


def fail(message: str, *key: Hashable) -> CaseFileError:
    return CaseFileError(f"{'.'.join(map(str, key))}: {message}")


def draw(spec: dict, case_id: str = "c", seed: int = 0) -> list[dict[str, float]]:  # type: ignore[type-arg]
    return [p.floats() for p in points(spec, case_id, seed, 7, fail)]


UNIFORM = {"count": 50, "vars": {"x": {"uniform": [-3, 3], "exclude": [[-1, 1]]}, "y": {"normal": [2, 0.5]}}}


def test_the_same_case_draws_the_same_points_every_time() -> None:
    first = draw(UNIFORM)
    assert first == draw(UNIFORM)
    assert len(first) == 50
    assert all(-3 <= p["x"] <= 3 and not -1 <= p["x"] <= 1 for p in first)
    assert 1.0 < sum(p["y"] for p in first) / 50 < 3.0


def test_without_a_seed_the_case_id_and_file_seed_pick_the_draws() -> None:
    assert draw(UNIFORM, "a") != draw(UNIFORM, "b")
    assert draw(UNIFORM, "a", seed=1) != draw(UNIFORM, "a", seed=0)
    seeded = {**UNIFORM, "seed": 42}
    assert draw(seeded, "a") == draw(seeded, "b")


def test_points_keep_the_line_of_the_sample_block_and_exact_values() -> None:
    (p,) = points({"count": 1, "vars": {"x": {"choice": [0.1]}}}, "c", 0, 12, fail)
    assert p.line == 12
    assert p.exact()["x"].denominator == 10  # 0.1 is one tenth, as written, not the nearest binary float


def test_loguniform_and_choice_stay_inside_their_values() -> None:
    drawn = draw({"count": 200, "vars": {"s": {"loguniform": [1e-3, 1e3]}, "k": {"choice": [-2, 0.5, 7]}}})
    assert all(1e-3 <= p["s"] <= 1e3 for p in drawn)
    assert {p["k"] for p in drawn} == {-2, 0.5, 7}
    assert any(p["s"] < 1e-1 for p in drawn) and any(p["s"] > 10 for p in drawn)  # spread over the decades


def test_the_domain_of_each_variable() -> None:
    assert domain(UNIFORM) == (Bounds("x", -3.0, 3.0, ((-1, 1),)), Bounds("y", -1.0, 5.0, ()))
    assert not domain(UNIFORM)[0].allows(0.5) and domain(UNIFORM)[0].allows(2.0)


@pytest.mark.parametrize(("dist", "where", "message"), [
    ({"uniform": [1, 1]}, "sample.vars.x.uniform", "uniform needs low < high, got [1, 1]"),
    ({"loguniform": [5, 1]}, "sample.vars.x.loguniform", "loguniform needs low < high"),
    ({"normal": [0, 0]}, "sample.vars.x.normal", "normal needs a standard deviation > 0"),
    ({"uniform": [0, 1], "normal": [0, 1]}, "sample.vars.x", "needs exactly one of uniform"),
    ({"uniform": [0, 1], "exclude": [[-1, 2]]}, "sample.vars.x.exclude", "the exclusions leave almost nothing"),
])
def test_impossible_distributions_are_located_errors(dist: dict, where: str, message: str) -> None:  # type: ignore[type-arg]
    with pytest.raises(CaseFileError) as err:
        draw({"count": 5, "vars": {"x": dist}})
    assert err.value.message.startswith(f"{where}: ")
    assert message in err.value.message


def test_an_empty_exclusion_list_changes_nothing() -> None:
    plain = {"count": 5, "vars": {"x": {"uniform": [0, 1]}}}
    assert draw(plain) == draw({"count": 5, "vars": {"x": {"uniform": [0, 1], "exclude": []}}})
    assert all(math.isfinite(p["x"]) for p in draw(plain))
