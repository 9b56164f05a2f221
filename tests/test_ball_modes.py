"""Forward mode and second order on the ball tape against the nested duals, which stay the definition."""

from __future__ import annotations

from fractions import Fraction
from typing import Any

import mpmath
import numpy as np
import pytest

from gradspec.checks.modes import directions, mode_quantities
from gradspec.engines.resolve import resolve
from gradspec.graph.tensor import build_tensor
from gradspec.lang.expr import parse
from gradspec.modes import Mode
from gradspec.reference import modes
from gradspec.reference.ball import Unsupported
from gradspec.reference.ball_modes import directional
from gradspec.reference.store import STORE
from gradspec.results import Tolerance, Verdict
from tests.test_ball import CASES, agree, draw

FLOAT32 = 2.0**-23
ASKED = frozenset({Mode.JVP, Mode.HVP})
# Every kernel but the power with a moving exponent, which has no forward rule here (see below), and
# tanh, whose partial engines rebuild from its rounded output (taken here, not by the first-order sweep).
TAKEN = [(t, s) if "** y" not in t else ("x ** 3 + (x * x + 1) ** 0.5", {"x": (4,)}) for t, s in CASES] + [
    ("tanh(tanh(x @ w1) @ w2)", {"x": (2, 3), "w1": (3, 3), "w2": (3, 2)}),
    ("tanh(x * 3) * x + tanh(y)", {"x": (5,), "y": ()}),
]


def both(text: str, shapes: dict[str, tuple[int, ...]], seed: int = 0) -> tuple[dict[str, Any], dict[str, Any]]:
    """The ball path's references of jvp and hvp, and the nested duals' of the same draw and directions."""
    graph = build_tensor(parse(text), shapes)
    point = draw(shapes, seed)
    ask = directions(graph, ASKED, 1, seed)
    names = [n for n, _ in graph.differentiable]
    balls = modes._in_balls(graph, point, ask)
    with mpmath.workdps(60):
        duals = modes._jvp(graph, point, ask, FLOAT32, names) | modes._hvp(graph, point, ask, FLOAT32, names)
    return balls, duals


def at_least(ball: modes.Known, dual: modes.Known) -> None:
    """The same exact quantity, and a rounding bound never below the duals' (bar float rounding of the
    bound), without and with what partials rebuilt from rounded outputs add (the verdict's two bounds)."""
    agree(ball.exact, dual.exact)
    allowed, wide = (np.asarray(k.allowance, dtype=float) for k in (ball, dual))
    assert np.all(allowed >= wide * (1 - 1e-9))
    assert np.all(allowed + ball.rebuilt >= (wide + np.asarray(dual.rebuilt, dtype=float)) * (1 - 1e-9))
    assert np.all(np.asarray(ball.rebuilt) >= 0)


@pytest.mark.parametrize(("text", "shapes"), TAKEN, ids=[c[0] for c in TAKEN])
def test_each_kernel_agrees_with_the_duals_and_bounds_at_least_as_much(text: str, shapes: dict[str, tuple[int, ...]]) -> None:
    for seed in (0, 1):
        balls, duals = both(text, shapes, seed)
        assert set(balls) == {"jvp", "vjp", "hvp", "radius"}
        at_least(balls["jvp"], duals["jvp"])
        for slot in ("vjp", "hvp"):
            assert len(balls[slot]) == len(duals[slot])
            for got, want in zip(balls[slot], duals[slot], strict=True):
                at_least(got, want)
        assert 0 <= balls["radius"] < 1e-30


def test_a_wrong_second_derivative_through_the_kernels_fails() -> None:
    """The built-in engine with sin's second derivative of the wrong sign (its first-order gradients are
    right) fails the ball path's Hessian-vector products through a matrix product and a softmax."""
    from gradspec.engines.protocol import ValueClassEngine
    from gradspec.tools.mutate import MUTANTS, build

    engine = ValueClassEngine(build(next(m for m in MUTANTS if m.name == "sin-second-sign")), "sin-second-sign")
    graph = build_tensor(parse("softmax(sin(x) @ w, axis=-1)"), {"x": (2, 3), "w": (3, 2)})
    point = draw({"x": (2, 3), "w": (3, 2)}, 4)
    ask = directions(graph, ASKED, 1, 4)
    assert modes._in_balls(graph, point, ask)  # the ball path computes the reference
    STORE.modes.clear()
    right, *_ = mode_quantities(graph, point, resolve("builtin"), Tolerance(), ASKED, 1, 4, ())
    assert {q.verdict for q in right} == {Verdict.PASS}
    wrong, *_ = mode_quantities(graph, point, engine, Tolerance(), ASKED, 1, 4, ())
    assert {q.name for q in wrong if q.verdict is Verdict.FAIL} == {"hvp x", "hvp x (fwd-rev)"}


def test_the_bound_grows_with_the_inputs_representation_error() -> None:
    # 0.501 is not a binary float: the input carries half an ulp, and every quantity's bound grows.
    graph = build_tensor(parse("exp(x) * x"), {"x": (2,)})
    ask = directions(graph, ASKED, 1, 0)
    binary = directional(graph, {"x": np.array([Fraction(1, 2), Fraction(-1)], dtype=object)}, ask.u, ask.v)
    decimal = directional(graph, {"x": np.array([Fraction(501, 1000), Fraction(-1)], dtype=object)}, ask.u, ask.v)
    for got, base in ((decimal.jvp, binary.jvp), (decimal.hvp[0], binary.hvp[0])):
        assert got[1][0] > base[1][0] > 0
        assert got[1][1] == base[1][1]  # the other element is the same binary float in both


@pytest.mark.parametrize(("text", "shapes", "why"), [
    ("x ** y", {"x": (3,), "y": (3,)}, "moving exponent"),
    ("sigmoid(x) + x", {"x": (3,)}, None),  # no ball kernel: the graph is not taken at all
    ("exp(x * 60)", {"x": (3,)}, "range"),  # exp(60 x) past 2**60
])
def test_what_the_ball_tape_does_not_take_goes_to_the_duals(text: str, shapes: dict[str, tuple[int, ...]],
                                                           why: str | None) -> None:
    graph = build_tensor(parse(text), shapes)
    point = {n: np.abs(v) + 1 for n, v in draw(shapes, 0).items()}
    ask = directions(graph, ASKED, 1, 0)
    if why is not None:
        with pytest.raises(Unsupported, match=why):
            directional(graph, point, ask.u, ask.v)
    assert modes._in_balls(graph, point, ask) == {}
    STORE.modes.clear()
    ref = modes.mode_reference(graph, point, ask, FLOAT32)
    assert ref.radius is None and ref.jvp is not None and ref.jvp.peak is not None  # the duals' reference


def test_the_mode_reference_takes_the_ball_path_and_reports_its_radius() -> None:
    graph = build_tensor(parse("layer_norm(softmax(x @ w, axis=-1))"), {"x": (3, 4), "w": (4, 4)})
    point = draw({"x": (3, 4), "w": (4, 4)}, 2)
    STORE.modes.clear()
    ask = directions(graph, ASKED | {Mode.JVP_OF_JVP}, 1, 0)
    ref = modes.mode_reference(graph, point, ask, FLOAT32)
    assert ref.radius is not None and 0 < ref.radius < 1e-30
    assert ref.jvp_of_jvp is not None and ref.jvp_of_jvp.peak is not None  # jvp-of-jvp stays in duals
    assert len(ref.hvp) == 2 and all(k.peak is None for k in ref.hvp)


def test_a_check_reports_the_largest_radius_of_its_mode_references_too() -> None:
    import dataclasses

    from gradspec.checks.expression import with_modes
    from gradspec.checks.tensor import check_tensor
    from gradspec.report.json_format import check_record

    graph = build_tensor(parse("layer_norm(softmax(x @ w, axis=-1))"), {"x": (3, 4), "w": (4, 4)})
    point = draw({"x": (3, 4), "w": (4, 4)}, 2)
    STORE.modes.clear()
    found = mode_quantities(graph, point, resolve("builtin"), Tolerance(), ASKED, 1, 0, ())
    ref = modes.mode_reference(graph, point, directions(graph, ASKED, 1, 0), resolve("builtin").eps)
    assert found.radius == ref.radius and found.radius is not None and 0 < found.radius < 1e-30
    first = check_tensor(graph, point, resolve("builtin"), Tolerance())
    both = check_tensor(graph, point, resolve("builtin"), Tolerance(), modes=ASKED)
    assert first.verdict is both.verdict is Verdict.PASS
    assert first.radius is not None and both.radius == max(first.radius, found.radius)
    assert check_record(both)["radius"] == both.radius
    # the larger of the two, whichever it is; a check without a first-order radius takes the modes'
    assert with_modes(first, found.quantities, found.note, 1e-20).radius == 1e-20
    assert with_modes(dataclasses.replace(first, radius=None), *found).radius == found.radius


@pytest.mark.parametrize("spec", ["builtin", "torch:float32"])
def test_correct_engines_pass_through_attention(spec: str) -> None:
    engine = resolve(spec)
    if getattr(engine, "reason", None):
        pytest.skip(engine.reason)
    graph = build_tensor(parse("softmax((q @ transpose(k)) / 2, axis=-1) @ v"), {n: (3, 3) for n in "qkv"})
    for seed in range(3):
        point = draw({n: (3, 3) for n in "qkv"}, seed)
        STORE.modes.clear()
        quantities, *_ = mode_quantities(graph, point, engine, Tolerance(), ASKED, 1, seed, ())
        assert quantities and all(q.verdict in (Verdict.PASS, Verdict.SKIP) for q in quantities), \
            [(q.name, q.verdict, q.note) for q in quantities]


def test_every_element_wise_kernel_has_a_forward_rule_and_every_kernel_is_exercised() -> None:
    from gradspec.reference.ball_scalar import _TANGENT, REBUILT, SCALAR
    from gradspec.reference.kernels import TENSOR

    assert set(_TANGENT) == set(SCALAR) | set(REBUILT)
    used = set()
    for text, shapes in TAKEN:
        used |= {s.op for s in build_tensor(parse(text), shapes).steps if s.op}
    assert set(SCALAR) | set(REBUILT) <= used and set(TENSOR) <= used


def test_a_node_without_a_forward_rule_sends_the_graph_to_the_duals() -> None:
    from gradspec.reference.ball_ops import Tape, constant

    tape = Tape()
    leaf = tape.leaf(constant(np.array([Fraction(1), Fraction(2)], dtype=object)))
    assert leaf.node is not None
    out = tape.push(leaf.value, leaf.err, [leaf.node])  # a reverse rule's node, no forward one
    assert out.node is not None
    with pytest.raises(Unsupported, match="without a forward rule"):
        tape.tangents({leaf.node: constant(np.array([Fraction(1), Fraction(1)], dtype=object))}, out.node)


def test_a_partial_rebuilt_from_a_rounded_output_is_kept_apart() -> None:
    # tanh' as 1 - t*t from a rounded t loses absolute digits near |t| = 1: the duals keep that as the
    # rebuilt allowance (imprecise, not fail), and so does the ball path; without tanh it is zero.
    graph = build_tensor(parse("tanh(x @ w) * 2"), {"x": (2, 3), "w": (3,)})
    point = draw({"x": (2, 3), "w": (3,)}, 1)
    ask = directions(graph, ASKED, 1, 1)
    balls = modes._in_balls(graph, point, ask)
    assert balls and np.all(balls["jvp"].rebuilt > 0) and all(np.all(k.rebuilt > 0) for k in balls["hvp"])
    plain = build_tensor(parse("sin(x @ w) * 2"), {"x": (2, 3), "w": (3,)})
    balls = modes._in_balls(plain, point, ask)
    assert balls and not np.any(balls["jvp"].rebuilt) and not any(np.any(k.rebuilt) for k in balls["hvp"])


def test_tanh_far_out_keeps_its_partials_relative_bound() -> None:
    # At x = 20, tanh' = 1 - t*t is 1.7e-17: 0 from a float t, a ball of that size here; the duals' bound
    # counts its relative budget, and so must the tape's (a partial read as 0 would drop it).
    balls, duals = both_at("tanh(x) * 3", {"x": np.array([Fraction(20), Fraction(-21), Fraction(1, 3)], dtype=object)})
    at_least(balls["jvp"], duals["jvp"])
    at_least(balls["vjp"][0], duals["vjp"][0])
    at_least(balls["hvp"][0], duals["hvp"][0])


def both_at(text: str, point: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    graph = build_tensor(parse(text), {n: v.shape for n, v in point.items()})
    ask = directions(graph, ASKED, 1, 0)
    names = [n for n, _ in graph.differentiable]
    with mpmath.workdps(60):
        return modes._in_balls(graph, point, ask), modes._jvp(graph, point, ask, FLOAT32, names) | \
            modes._hvp(graph, point, ask, FLOAT32, names)
