"""Correct float32 engines against the rounding allowance: how many sampled points raise a false alarm.

Every op of the op table (and a few compositions) at points drawn from where it is defined, written
as short decimals as a person would (so inputs are rounded on the way in, as in the case library).
The engine computes all points of one form in a batched call; each point is then judged by
``gradspec.checks.check.compare``, the code every check goes through, with the default tolerance.
A correct engine must fail none of them. Quantities it gets ``imprecise`` (beyond the precision bound,
within what a derivative rebuilt from a rounded output loses) are counted apart, by form and quantity.
Used by ``benchmarks/bench.py rounding`` and ``precision`` (100,000 points) and by
``tests/test_rounding.py`` (a smaller count).
"""

from __future__ import annotations

import random
import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from fractions import Fraction
from typing import Any

from gradspec.checks.check import compare, prepare
from gradspec.engines.protocol import Engine, Outcome
from gradspec.graph.ir import Apply
from gradspec.reference.store import exact
from gradspec.results import Tolerance, Verdict

Draw = Callable[[random.Random], float]


def uniform(low: float, high: float) -> Draw:
    return lambda rng: rng.uniform(low, high)


def magnitude(low: float, high: float, signed: bool = False) -> Draw:
    """Log-uniform in [low, high], of random sign when ``signed``."""
    def draw(rng: random.Random) -> float:
        v = low * (high / low) ** rng.random()
        return -v if signed and rng.random() < 0.5 else v
    return draw


WIDE = uniform(-100, 100)
#: What an engine raises for a derivative its library does not implement (torch: "derivative for
#: aten::hardsigmoid_backward is not implemented", and forward over that: "Trying to use forward AD with
#: aten::hardsigmoid_backward that does not support it"): counted apart from false alarms in the modes sweep.
LACKS = re.compile(r"is not implemented|forward AD with \S+ that does not support it")
_OVER = re.compile(r"(\d+) of \d+ elements over tolerance")
#: expression -> how each input is drawn. Every op of the op table appears (a test checks it).
FORMS: dict[str, dict[str, Draw]] = {
    "x + y": {"x": WIDE, "y": WIDE},
    "x - y": {"x": WIDE, "y": WIDE},
    "x * y": {"x": magnitude(1e-6, 1e6, True), "y": magnitude(1e-6, 1e6, True)},
    "x / y": {"x": magnitude(1e-6, 1e6, True), "y": magnitude(1e-6, 1e6, True)},
    "x ** y": {"x": magnitude(1e-3, 1e3), "y": uniform(-6, 6)},
    "-x": {"x": WIDE},
    "relu(x)": {"x": WIDE},
    "tanh(x)": {"x": uniform(-20, 20)},
    "exp(x)": {"x": uniform(-85, 85)},
    "log(x)": {"x": magnitude(1e-30, 1e30)},
    "sigmoid(x)": {"x": uniform(-85, 85)},
    "sin(x)": {"x": WIDE},
    "cos(x)": {"x": WIDE},
    "sqrt(x)": {"x": magnitude(1e-30, 1e30)},
    "abs(x)": {"x": WIDE},
    "tanh(x * y) + sin(x) / y": {"x": uniform(-5, 5), "y": uniform(0.5, 5)},
    "log(1 + exp(x)) * sqrt(y) - x": {"x": uniform(-20, 20), "y": magnitude(1e-3, 1e3)},
    "sigmoid(x) * cos(y) ** 2 + abs(x - y)": {"x": uniform(-10, 10), "y": uniform(-10, 10)},
    # the special functions and activations
    "erf(x)": {"x": uniform(-4, 4)},
    "erfc(x)": {"x": uniform(-3, 9)},
    "log1p(x)": {"x": magnitude(1e-6, 1e6)},
    "expm1(x)": {"x": uniform(-20, 20)},
    "softplus(x)": {"x": uniform(-20, 30)},
    "softplus(x, beta=2, threshold=10)": {"x": uniform(-10, 10)},
    "logsigmoid(x)": {"x": uniform(-30, 20)},
    "elu(x) + elu(y, alpha=0.5)": {"x": uniform(-10, 10), "y": uniform(-10, 10)},
    "selu(x)": {"x": uniform(-10, 10)},
    "celu(x, alpha=0.5)": {"x": uniform(-10, 10)},
    # below about -1.5 torch's and JAX's gelu formulas cancel (1 + erf, 1 + tanh) beyond rounding: findings
    # of the case library (gelu-tails), not false alarms
    "gelu(x)": {"x": uniform(-1.5, 8)},
    'gelu(x, approximate="tanh")': {"x": uniform(-1.5, 8)},
    "silu(x)": {"x": uniform(-20, 20)},
    "mish(x)": {"x": uniform(-20, 20)},
    "tan(x)": {"x": uniform(-1.5, 1.5)},
    "atan(x)": {"x": WIDE},
    "asin(x)": {"x": uniform(-0.999, 0.999)},
    "acos(x)": {"x": uniform(-0.999, 0.999)},
    "sinh(x)": {"x": uniform(-20, 20)},
    "cosh(x)": {"x": uniform(-20, 20)},
    "asinh(x)": {"x": WIDE},
    "acosh(x)": {"x": magnitude(1.001, 1e6)},
    "atanh(x)": {"x": uniform(-0.999, 0.999)},
    "reciprocal(x)": {"x": magnitude(1e-6, 1e6, True)},
    "rsqrt(x)": {"x": magnitude(1e-20, 1e30)},  # below 1e-25 rsqrt(x)/x, the slope, overflows float32
    "square(x)": {"x": magnitude(1e-6, 1e6, True)},
    "sign(x) * x": {"x": WIDE},
    "leaky_relu(x)": {"x": WIDE},
    "relu6(x)": {"x": uniform(-3, 9)},
    "hardtanh(x)": {"x": uniform(-3, 3)},
    "hardsigmoid(x)": {"x": uniform(-5, 5)},
    "hardswish(x)": {"x": uniform(-5, 5)},
    "clamp(x, min=-0.5, max=2)": {"x": uniform(-3, 3)},
    "maximum(x, y) + minimum(x, y)": {"x": WIDE, "y": WIDE},
    "atan2(y, x)": {"x": WIDE, "y": WIDE},
    "logaddexp(x, y)": {"x": uniform(-10, 10), "y": uniform(-10, 10)},
    "xlogy(x, y)": {"x": WIDE, "y": magnitude(1e-3, 1e3)},
    "where(x > y, x * y, y)": {"x": WIDE, "y": WIDE},
    "log2(x) + log10(y)": {"x": magnitude(1e-30, 1e30), "y": magnitude(1e-30, 1e30)},
    # JAX's exp2 is exp(x*log(2)): the product's rounding costs |x|*log(2)/2 ulps more than an exp2 of its own,
    # beyond the op's budget far out (at x = -102.384, 85 float32 ulps where 82 are allowed)
    "exp2(x)": {"x": uniform(-30, 30)},
    # below about -1 torch's ndtr, (1 + erf(x/sqrt(2)))/2, cancels beyond rounding: a finding of the case
    # library (ndtr-tails), not a false alarm; beyond about 5 the rounding of x*x inside the slope
    # exp(-x*x/2), x*x/4 ulps of it, outgrows the op's budget (as erf's, drawn within 4)
    "ndtr(x)": {"x": uniform(-1, 5)},
    "logit(x) + logit(y, eps=0.25)": {"x": uniform(0.001, 0.999), "y": uniform(0, 1)},
    "entr(x)": {"x": magnitude(1e-6, 1e6)},
    "deg2rad(x) + rad2deg(y)": {"x": WIDE, "y": WIDE},
    "softsign(x)": {"x": WIDE},
    # within about 0.5 of 0 x - tanh(x), torch's tanhshrink, cancels beyond rounding: a finding of the case
    # library (tanhshrink-near-zero), not a false alarm
    "tanhshrink(x)": {"x": magnitude(0.5, 6, True)},
    "hardshrink(x) + softshrink(y)": {"x": uniform(-3, 3), "y": uniform(-3, 3)},
    "threshold(x, threshold=0.5, value=-2)": {"x": uniform(-3, 3)},
    "hypot(x, y)": {"x": WIDE, "y": WIDE},
    "logaddexp2(x, y)": {"x": uniform(-10, 10), "y": uniform(-10, 10)},
    "xlog1py(x, y)": {"x": WIDE, "y": magnitude(1e-3, 1e3)},
    # within about 0.5 of 0 torch's and JAX's sinc' = (cos(pi*x) - sinc(x))/x cancels beyond what even its
    # absolute allowance covers: a finding of the case library (sinc-edges), not a false alarm
    "sinc(x)": {"x": magnitude(0.5, 6, True)},
    "prelu(x, w)": {"x": magnitude(1e-3, 1e3, True), "w": uniform(-2, 2)},
    # JAX's log_ndtr is log(ndtr(x)) up to 8, which loses ndtr's rounding there (log_ndtr(8): a finding of the
    # case library, log-ndtr-tails); both libraries keep the left tail
    "log_ndtr(x)": {"x": uniform(-30, 5)},
    # beside lgamma's zeros at 1 and 2 and digamma's at 1.4616 the libraries' series cancel: findings of the
    # case library (lgamma-edges, digamma-edges), drawn away from them here
    "lgamma(x)": {"x": uniform(2.5, 30)},
    "digamma(x)": {"x": uniform(2.5, 30)},
}


def decimal(v: float, digits: int = 6) -> Fraction:
    """``v`` to ``digits`` significant decimal digits, exactly (8.28118 is not a binary float)."""
    return Fraction(Decimal(f"{v:.{digits - 1}e}"))


@dataclass
class Tally:
    points: int = 0
    false_alarms: int = 0
    first: str = ""  # the first false alarm, as a table
    imprecise: int = 0  # quantities (elements, in the modes sweep) judged imprecise
    where: Counter[str] = field(default_factory=Counter)  # imprecise ones by quantity
    example: str = ""  # the first imprecise one
    lacks: int = 0  # in the modes sweep: elements of quantities the library does not implement (it raised)
    lacking: str = ""  # what it said, the first time


def sweep(engine: Engine, per_form: int, seed: int = 0) -> dict[str, Tally]:
    """Judge ``per_form`` sampled points of every form on ``engine``; a tally per form."""
    rng = random.Random(seed)
    tol = Tolerance()
    out: dict[str, Tally] = {}
    for text, draws in FORMS.items():
        graph = prepare(text, list(draws))
        points = [{n: decimal(d(rng)) for n, d in draws.items()} for _ in range(per_form)]
        values, grads = engine.run_batch(graph, {n: [float(p[n]) for p in points] for n in draws})  # type: ignore[attr-defined]
        tally = out[text] = Tally()
        for k, point in enumerate(points):
            outcome = Outcome(values[k], {n: grads[n][k] for n in draws})
            quantities = compare(graph, exact(graph, point), outcome, point, tol, engine)
            tally.points += 1
            for q in quantities:
                if q.verdict is Verdict.IMPRECISE:
                    tally.imprecise += 1
                    tally.where[q.name] += 1
                    tally.example = tally.example or f"{q.name} at {({n: float(v) for n, v in point.items()})}: {q.note}"
            failed = [q for q in quantities if q.verdict is Verdict.FAIL]
            if failed:
                tally.false_alarms += 1
                if not tally.first:
                    tally.first = f"{text} at {({n: float(v) for n, v in point.items()})}: " + "; ".join(
                        f"{q.name}: engine {q.engine!r}, exact {q.exact_text}, error {q.abs_error:.3g} > {q.tolerance:.3g}"
                        for q in failed)
    return out


def ops_covered() -> set[str]:
    """The op-table ops the forms use."""
    return {s.op.partition("[")[0] for text, draws in FORMS.items() for s in prepare(text, list(draws)).steps
            if isinstance(s, Apply)}


def sweep_modes(engine: Engine, per_form: int, seed: int = 0, chunk: int = 250) -> dict[str, Tally]:
    """The same forms in forward mode and to second order (jvp, mode consistency, hvp reverse over
    reverse and forward over reverse, jvp-of-jvp), judged by ``mode_quantities``: each form's inputs are
    vectors of ``chunk`` sampled points, and every op acts element by element, so each element is one
    independent point. Counted are the elements over tolerance, summed over the quantities; those of a
    quantity the engine raised on as not implemented (``LACKS``) are counted apart, in ``Tally.lacks``."""
    import numpy as np

    from gradspec.checks.modes import mode_quantities
    from gradspec.graph.tensor import build_tensor
    from gradspec.lang.expr import parse
    from gradspec.modes import Mode

    rng = random.Random(seed)
    tol = Tolerance()
    modes = frozenset({Mode.JVP, Mode.HVP, Mode.JVP_OF_JVP})
    out: dict[str, Tally] = {}
    for text, draws in FORMS.items():
        tally = out[text] = Tally()
        done = 0
        while done < per_form:
            n = min(chunk, per_form - done)
            graph = build_tensor(parse(text), {name: (n,) for name in draws})
            point = {name: np.asarray([decimal(d(rng)) for _ in range(n)], dtype=object) for name, d in draws.items()}
            quantities, *_ = mode_quantities(graph, point, engine, tol, modes, 1, rng.randrange(2**31), ())
            over = 0  # failing elements summed over the quantities: at least the failing points, at most
            for q in quantities:  # a few times them
                if q.verdict is Verdict.IMPRECISE:
                    count = int(q.note.split(" of ")[0]) if " elements beyond the precision bound" in q.note else 1
                    tally.imprecise += count
                    tally.where[q.name] += count
                    tally.example = tally.example or f"{q.name}: {q.note}"
                if q.verdict is Verdict.FAIL and LACKS.search(q.note):  # a capability the library lacks, not a
                    tally.lacks += n  # false alarm: torch has no double backward of hardsigmoid, by design
                    tally.lacking = tally.lacking or f"{q.name}: {q.note}"
                elif q.verdict is Verdict.FAIL:
                    # "3 of 136 elements are inf; 1 of 136 elements over tolerance": the second count
                    over += int(counted.group(1)) if (counted := _OVER.search(q.note)) else n
                    if not tally.first:
                        tally.first = f"{text}: {q.name}: engine {q.engine!r}, exact {q.exact_text}, " \
                                      f"error {q.abs_error}, tolerance {q.tolerance}; {q.note}"
            tally.points += n
            tally.false_alarms += over
            done += n
    return out


#: Tensor forms for the reference one tensor op at a time: each composite op's rounding bound, per op.
TENSOR_FORMS: dict[str, dict[str, tuple[int, ...]]] = {
    "softmax(x, axis=-1)": {"x": (4, 16)},
    "log_softmax(x, axis=0) + logsumexp(x, axis=1)": {"x": (8, 8)},
    "layer_norm(x, eps=1e-5)": {"x": (4, 16)},
    "a @ b": {"a": (8, 12), "b": (12, 8)},
    "conv2d(x, w, padding=1)": {"x": (1, 3, 6, 6), "w": (4, 3, 3, 3)},
    "softmax((q @ transpose(k)) / 2, axis=-1) @ v": {"q": (4, 4), "k": (4, 4), "v": (4, 4)},
    "tanh(tanh(x @ w1) @ w2)": {"x": (4, 8), "w1": (8, 8), "w2": (8, 8)},
    "layer_norm(softmax(x @ w, axis=-1))": {"x": (8, 8), "w": (8, 8)},
    "mean(sigmoid(x) * exp(y) / (1 + y * y), axis=0) - sum(sqrt(x * x + 1))": {"x": (6, 5), "y": (5,)},
}


def _tensor_point(shapes: dict[str, tuple[int, ...]], rng: random.Random) -> dict[str, Any]:
    """One draw of six-digit decimals in [-3, 3] for every input of a tensor form."""
    import numpy as np

    return {n: np.array([decimal(rng.uniform(-3, 3)) for _ in range(int(np.prod(s)))], dtype=object).reshape(s)
            for n, s in shapes.items()}


def sweep_tensors(engine: Engine, per_form: int, seed: int = 0) -> dict[str, Tally]:
    """Tensor checks (value, two VJPs, and the Jacobian where small) of every tensor form at ``per_form``
    draws of six-digit decimals in [-3, 3], on ``engine``; a check that fails is a false alarm."""

    from gradspec.checks.tensor import check_tensor
    from gradspec.graph.tensor import build_tensor
    from gradspec.lang.expr import parse

    rng = random.Random(seed)
    out: dict[str, Tally] = {}
    for text, shapes in TENSOR_FORMS.items():
        graph = build_tensor(parse(text), shapes)
        tally = out[text] = Tally()
        for k in range(per_form):
            point = _tensor_point(shapes, rng)
            result = check_tensor(graph, point, engine, Tolerance(), seed=k, localise=False)
            tally.points += 1
            if result.verdict is Verdict.FAIL:
                tally.false_alarms += 1
                if not tally.first:
                    tally.first = "; ".join(f"{q.name}: {q.note}" for q in result.failures())
    return out


def sweep_tensor_modes(engine: Engine, per_form: int, seed: int = 0) -> dict[str, Tally]:
    """The tensor forms in forward mode and to second order (jvp, mode consistency, hvp reverse over reverse
    and forward over reverse: the rows the ball tape computes where it takes the graph) at ``per_form`` draws
    of six-digit decimals in [-3, 3], judged by ``mode_quantities``; a draw with a failing quantity is a
    false alarm. (jvp-of-jvp is left out: its reference is the duals' either way, and torch's layer norm is
    wrong there, see benchmarks/README.md.)"""

    from gradspec.checks.modes import mode_quantities
    from gradspec.graph.tensor import build_tensor
    from gradspec.lang.expr import parse
    from gradspec.modes import Mode

    rng = random.Random(seed)
    modes = frozenset({Mode.JVP, Mode.HVP})
    out: dict[str, Tally] = {}
    for text, shapes in TENSOR_FORMS.items():
        graph = build_tensor(parse(text), shapes)
        tally = out[text] = Tally()
        for _ in range(per_form):
            point = _tensor_point(shapes, rng)
            quantities, *_ = mode_quantities(graph, point, engine, Tolerance(), modes, 1, rng.randrange(2**31), ())
            tally.points += 1
            for q in quantities:
                if q.verdict is Verdict.IMPRECISE:
                    tally.imprecise += 1
                    tally.where[q.name] += 1
            failed = [q for q in quantities if q.verdict is Verdict.FAIL]
            if failed:
                tally.false_alarms += 1
                tally.first = tally.first or "; ".join(f"{q.name}: {q.note}" for q in failed)
    return out
