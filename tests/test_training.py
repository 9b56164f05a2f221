"""Training cases: the spec read from a case, and the model built from an engine's primitives."""

from __future__ import annotations

import importlib
import random
from collections.abc import Hashable
from pathlib import Path
from typing import Any

import pytest

from gradspec.casefile.model import Training
from gradspec.checks.training import initial_params, load, mlp_loss, train
from gradspec.engines.protocol import ValueClassEngine
from gradspec.engines.resolve import resolve
from gradspec.errors import CaseFileError
from gradspec.nn import MLP
from gradspec.results import CulpritKind, Tolerance, Verdict

RAW: dict[str, Any] = {"model": {"sizes": [2, 3, 1], "activation": "tanh", "seed": 5},
                       "data": {"x": [[0.5, -1.0], [1.5, 2.0], [-0.25, 0.75]], "y": [1.0, -0.5, 0.25]},
                       "steps": 3, "lr": 0.05, "loss_ratio": 0.9}


def fail(message: str, *key: Hashable) -> CaseFileError:
    return CaseFileError(f"{'.'.join(map(str, key))}: {message}")


def test_the_spec_holds_what_the_case_says() -> None:
    spec = load(RAW, fail)
    assert spec == Training((2, 3, 1), "tanh", 5, ((0.5, -1.0), (1.5, 2.0), (-0.25, 0.75)), (1.0, -0.5, 0.25),
                            3, 0.05, 0.9)


def test_targets_from_an_expression_are_exact_at_every_row() -> None:
    raw = {**RAW, "model": {"sizes": [1, 4, 1]}, "data": {"x": [0.1, 0.2, 3], "target": "x*x - 1"}}
    spec = load(raw, fail)
    assert spec.x == ((0.1,), (0.2,), (3.0,))
    assert spec.y == (0.01 - 1, 0.04 - 1, 8.0)
    assert spec.activation == "relu" and spec.seed == 0


@pytest.mark.parametrize(("change", "message"), [
    ({"model": {"sizes": [2, 3, 2]}}, "model.sizes: a training model has one output"),
    ({"data": {"x": [[1.0]], "y": [1.0]}}, "data.x.0: row 0 has 1 inputs; the model takes 2"),
    ({"data": {"x": [[1.0, 2.0]], "y": [1.0, 2.0]}}, "data.y: 2 targets for 1 rows"),
    ({"data": {"x": [[1.0, 2.0]]}}, "data: give the targets as `y` or as `target`, exactly one"),
    ({"data": {"x": [[1.0, 2.0]], "y": [1.0], "target": "x0"}}, "data: give the targets"),
    ({"data": {"x": [[1.0, 2.0]], "target": "x0 + z"}}, "data.target: data.target: undefined variable 'z' (use x0, x1)"),
    ({"data": {"x": [[1.0, 2.0]], "target": "x0 +"}}, "data.target: data.target: "),
    ({"data": {"x": [[1.0, -2.0]], "target": "log(x1)"}}, "data.target: target at (1.0, -2.0): "),
    ({"steps": 10_000_000}, "steps: training case is too large"),
])
def test_what_cannot_be_trained_is_a_located_error(change: dict[str, Any], message: str) -> None:
    with pytest.raises(CaseFileError) as err:
        load({**RAW, **change}, fail)
    assert err.value.message.startswith(message)


def test_the_initial_weights_are_those_of_gradspec_nn_with_the_same_seed() -> None:
    spec = load(RAW, fail)
    model = MLP(2, [3, 1], activation="tanh", rng=random.Random(5))
    assert initial_params(spec) == [p.data for p in model.parameters()]


def test_the_loss_built_from_primitives_is_the_mlp_loss() -> None:
    spec = load(RAW, fail)
    model = MLP(2, [3, 1], activation="tanh", rng=random.Random(5))
    expected = sum((model(list(x)) - y) ** 2 for x, y in zip(spec.x, spec.y, strict=True))
    engine = resolve("builtin")
    engine.begin()
    leaves = [engine.leaf(p) for p in initial_params(spec)]
    loss = mlp_loss(engine, leaves, spec)
    assert engine.value(loss) == pytest.approx(expected.data, rel=1e-15)
    grads = engine.gradients(loss, leaves)
    expected.backward()
    assert grads == pytest.approx([p.grad for p in model.parameters()], rel=1e-12)


def test_a_wrong_first_gradient_names_the_op_the_localiser_finds(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.syspath_prepend(str(Path(__file__).resolve().parent / "data"))
    textbook = importlib.import_module("textbook")
    spec = load(RAW, fail)
    right = train(spec, Tolerance(), ValueClassEngine(textbook.Value))
    assert right.verdict is Verdict.PASS and right.culprit is None
    wrong = train(spec, Tolerance(), ValueClassEngine(textbook.MulAssign))  # = for += in mul's backward
    assert wrong.quantities[-1].verdict is Verdict.FAIL
    assert wrong.culprit is not None
    assert (wrong.culprit.op, wrong.culprit.kind) == ("mul", CulpritKind.ACCUMULATION)
    assert "overwrites the gradient of its input" in wrong.culprit.message
