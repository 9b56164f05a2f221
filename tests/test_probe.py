"""gradspec.engines.probe: an engine that cannot take part in a run is found once, before any check, with
what to do about it; an engine that keeps only its leaves' gradients is told apart from a wrong one."""

from __future__ import annotations

from types import ModuleType

import pytest

from gradspec.engines.probe import probe_value_class, require
from gradspec.engines.protocol import Unavailable, ValueClassEngine
from gradspec.engines.resolve import resolve
from gradspec.errors import EngineError


def test_a_correct_engine_has_no_problem_and_keeps_intermediates(misbehaving: ModuleType) -> None:
    probe = probe_value_class(misbehaving.Scalar, "scalar")
    assert (probe.problem, probe.keeps_intermediates) == (None, True)
    require(resolve("misbehaving:Scalar"))  # raises nothing
    require(resolve("builtin"))


def test_no_grad_names_the_key_to_map_and_the_attribute_that_held_the_gradient(misbehaving: ModuleType) -> None:
    with pytest.raises(EngineError) as info:
        require(resolve("misbehaving:Derivative"))
    assert str(info.value) == (
        "engine misbehaving:Derivative: engine's Value has no attribute grad; map it with grad = \"derivative\" "
        "under [tool.gradspec.engine.NAME] in pyproject.toml, with class = \"misbehaving:Derivative\", and run "
        "--engine NAME (derivative held the number expected there)")


def test_no_data_names_the_data_key(misbehaving: ModuleType) -> None:
    problem = probe_value_class(misbehaving.Payload, "payload").problem
    assert problem == ("engine's Value has no attribute data; map it with data = \"payload\" under "
                       "[tool.gradspec.engine.payload] in pyproject.toml (payload held the number expected there)")


def test_no_backward_method(misbehaving: ModuleType) -> None:
    problem = probe_value_class(misbehaving.NoBackward, "nb").problem
    assert problem is not None and problem.startswith("engine's Value has no method backward()")


def test_a_class_that_cannot_even_multiply() -> None:
    class Broken:
        def __init__(self, x: float) -> None:
            self.data = x

        def __mul__(self, other: object) -> object:
            raise ValueError("no")

    problem = probe_value_class(Broken, "broken").problem
    assert problem == "engine's Value cannot build a * b from Value(2) and Value(3): ValueError: no"


def test_a_backward_that_raises_is_a_bug_for_the_checks_not_a_protocol_problem(engines: ModuleType) -> None:
    assert probe_value_class(engines.Raises, "raises").problem is None


def test_leaf_only_gradients_are_told_apart_from_wrong_ones(misbehaving: ModuleType, engines: ModuleType) -> None:
    assert probe_value_class(misbehaving.LeafGradients, "leaves").keeps_intermediates is False
    # A wrong mul rule changes the intermediate's gradient to a wrong number: that is kept, and judged.
    assert probe_value_class(engines.MulAssign, "mul").keeps_intermediates is True
    assert ValueClassEngine(misbehaving.LeafGradients).keeps_intermediates is False


def test_an_unavailable_engine_is_refused_with_its_reason() -> None:
    with pytest.raises(EngineError, match=r"^engine torch:float32 cannot be used: torch is not installed "
                                          r"\(pip install 'gradspec\[torch\]'\)$"):
        require(Unavailable("torch:float32", "torch is not installed (pip install 'gradspec[torch]')"))


def test_a_class_whose_names_are_mapped_passes_the_probe(misbehaving: ModuleType) -> None:
    assert probe_value_class(misbehaving.Derivative, "mine", grad="derivative").problem is None
    assert probe_value_class(misbehaving.Payload, "mine", data="payload").problem is None
