"""The engine adapters for real autograd libraries: torch, jax and tinygrad in float64 and float32, and
micrograd. Each test imports its library with ``pytest.importorskip``, so a machine without one skips
with the reason; the test set-up installs all of them.

The numbers are judged twice: by gradspec's verdict and against an independent SymPy derivation written
here (each named intermediate differentiated through an additive offset at that step). Kink conventions
are the values the libraries were observed to return, asserted as such.
"""

from __future__ import annotations

import math
import sys
import textwrap
from collections.abc import Callable, Iterator, Mapping
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import sympy as sp

from gradspec import check
from gradspec.casefile.loader import load_file
from gradspec.casefile.model import Case
from gradspec.checks.check import prepare
from gradspec.engines.protocol import FLOAT32_EPS, FLOAT64_EPS, Engine, Unavailable, ValueClassEngine
from gradspec.engines.resolve import resolve
from gradspec.graph.ir import Apply
from gradspec.ops.special_rows import ROWS as SPECIAL_ROWS
from gradspec.ops.table import OPS
from gradspec.results import CheckResult, Tolerance, Verdict
from gradspec.run.runner import run_case

# micrograd's Value has relu and the operators but no number ** Value: what it lacks of the op table
# micrograd has relu and the operators; of the op file's ops (the table's basic rows) it lacks the other methods
MICROGRAD_MISSING = {o.method for o in OPS.values() if o.method not in (None, "relu")
                     and o.name not in {row.name for row in SPECIAL_ROWS}} | {"__rpow__"}

ROOT = Path(__file__).resolve().parent.parent
SPECS = ["torch", "torch:float32", "jax", "jax:float32", "tinygrad", "tinygrad:float32", "micrograd"]
FLOAT32 = [s for s in SPECS if s.endswith(":float32")]


@pytest.fixture(autouse=True)
def _recursion_limit() -> Iterator[None]:
    """Importing tinygrad raises the interpreter's recursion limit to 10,000 for the whole process. Tests
    here run under the limit tinygrad sets; each gives the previous limit back, so tests elsewhere (and
    tests/data/engines.py, which asserts the default) see Python's own."""
    before = sys.getrecursionlimit()
    if "tinygrad" in sys.modules:
        sys.setrecursionlimit(max(before, 10_000))
    yield
    sys.setrecursionlimit(before)


def library(spec: str) -> str:
    return spec.split(":")[0]


def make(spec: str) -> Engine:
    """The adapter's engine for ``spec``; skips where its library is not installed here."""
    pytest.importorskip(library(spec), reason=f"{library(spec)} is not installed")
    engine = resolve(spec)
    if isinstance(engine, Unavailable):
        pytest.skip(engine.reason)
    return engine


def subclass(engine: Engine, **methods: Callable[..., Any]) -> Engine:
    """``engine``, re-classed as a subclass of its adapter's class that overrides ``methods``."""
    cls = type(f"Test{type(engine).__name__}", (type(engine),), methods)
    engine.__class__ = cls
    return engine


def only(results: list[CheckResult]) -> CheckResult:
    assert len(results) == 1
    return results[0]


def quantities(result: CheckResult) -> dict[str, float | None]:
    return {q.name: q.engine for q in result.quantities}


# -- an independent reference ------------------------------------------------------------------------------

X, Y = sp.symbols("x y", real=True)

# Every op of the op table between the two, with named intermediates and every reflected form
# (2 - u, 3*x, 1 + y, 2/x, 2**x) and a Value exponent (x**y).
ARITH = "u = x*y - x/y; v = 2 - u + 3*x; w = v**2 / (1 + y); r = relu(w - 1); r - 2/x + -y"
TRANSC = ("s = sin(x) * cos(y); t = tanh(s) + sigmoid(x - y); e = exp(t) + sqrt(abs(s) + 1); "
          "log(e) * 2 ** x + x ** y")


def _arith(x: sp.Expr, y: sp.Expr, d: Mapping[str, sp.Symbol]) -> sp.Expr:
    u = x * y - x / y + d["u"]
    v = 2 - u + 3 * x + d["v"]
    w = v**2 / (1 + y) + d["w"]
    r = sp.Max(0, w - 1) + d["r"]
    return r - 2 / x - y


def _transc(x: sp.Expr, y: sp.Expr, d: Mapping[str, sp.Symbol]) -> sp.Expr:
    s = sp.sin(x) * sp.cos(y) + d["s"]
    t = sp.tanh(s) + 1 / (1 + sp.exp(-(x - y))) + d["t"]
    e = sp.exp(t) + sp.sqrt(sp.Abs(s) + 1) + d["e"]
    return sp.log(e) * 2**x + x**y


SYMPY = {ARITH: (_arith, ("u", "v", "w", "r")), TRANSC: (_transc, ("s", "t", "e"))}


@cache
def reference(expression: str, x: float, y: float) -> dict[str, float]:
    """Value and every gradient (inputs and named intermediates) by SymPy, at 30 digits."""
    build, names = SYMPY[expression]
    offsets = {n: sp.Symbol(f"d_{n}", real=True) for n in names}
    out = build(X, Y, offsets)
    at = {X: sp.Rational(repr(x)), Y: sp.Rational(repr(y)), **dict.fromkeys(offsets.values(), 0)}

    def num(e: sp.Expr) -> float:
        return float(e.subs(at).evalf(30))

    return {"value": num(out), "x": num(sp.diff(out, X)), "y": num(sp.diff(out, Y)),
            **{n: num(sp.diff(out, o)) for n, o in offsets.items()}}


def test_the_expressions_cover_the_op_table() -> None:
    from tests.test_ops import SPECIAL  # on every adapter through cases/activations.gradspec.yaml (test_conformance)

    ops = {s.op for e in (ARITH, TRANSC) for s in prepare(e, ["x", "y"]).steps if isinstance(s, Apply)}
    assert ops | SPECIAL == set(OPS) and not ops & SPECIAL


# -- (1) every op, with intermediates, against the exact numbers ---------------------------------------------

POINTS = [(ARITH, 1.5, 0.5), (ARITH, -0.7, 2.0), (TRANSC, 0.8, 1.3), (TRANSC, 2.5, 2.0), (TRANSC, 1.2, -0.4)]


@pytest.mark.parametrize("spec", SPECS)
@pytest.mark.parametrize(("expression", "x", "y"), POINTS, ids=["arith-a", "arith-b", "transc-a", "transc-b", "transc-c"])
def test_every_op_gives_the_right_numbers(spec: str, expression: str, x: float, y: float) -> None:
    engine = make(spec)
    # micrograd orders its backward through a set of nodes (hashed by address): sums come out in another
    # order from run to run, a last-bit difference gradspec reports as nondeterminism unless allowed.
    nondet = 1e-9 if spec == "micrograd" else 0.0
    result = check(expression, {"x": x, "y": y}, engine=engine, tolerance=Tolerance(nondet=nondet))
    assert result.engine == spec
    if spec == "micrograd" and expression == TRANSC:
        assert (result.verdict, result.message) == (Verdict.SKIP, "engine has no sin")
        return
    assert result.verdict is Verdict.PASS, result.table()
    expected = reference(expression, x, y)
    got = quantities(result)
    assert list(got) == list(expected)  # value, inputs, then intermediates in order
    tol = dict(rel=1e-12, abs=1e-12) if engine.eps == FLOAT64_EPS else dict(rel=2e-5, abs=2e-6)
    assert got == pytest.approx(expected, **tol)
    # gradspec's own exact reference agrees with the SymPy one written here
    assert {q.name: q.exact for q in result.quantities} == pytest.approx(expected, rel=1e-14, abs=1e-15)


def test_relu_both_sides_are_exercised() -> None:
    w = {x: reference(ARITH, x, y)["w"] for _, x, y in POINTS[:2]}
    assert w == {1.5: 1.0, -0.7: 0.0}  # relu active at the first point, inactive at the second


# -- (2) precision ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("spec", "name", "eps"),
    [
        ("torch", "torch", 2.0**-52),
        ("torch:float64", "torch", 2.0**-52),
        ("torch:float32", "torch:float32", 2.0**-23),
        ("torch:cpu:float32", "torch:float32", 2.0**-23),
        ("jax", "jax", 2.0**-52),
        ("jax:float64", "jax", 2.0**-52),
        ("jax:float32", "jax:float32", 2.0**-23),
        ("tinygrad", "tinygrad", 2.0**-52),
        ("tinygrad:float32", "tinygrad:float32", 2.0**-23),
        ("micrograd", "micrograd", 2.0**-52),
    ],
)
def test_name_and_eps_follow_the_dtype(spec: str, name: str, eps: float) -> None:
    engine = make(spec)
    assert engine.name == name
    assert engine.eps == eps
    assert eps in (FLOAT32_EPS, FLOAT64_EPS)
    result = check("x * y", {"x": 0.1, "y": 0.2}, engine=engine)
    assert result.verdict is Verdict.PASS, result.table()
    assert quantities(result)["x"] == pytest.approx(0.2, rel=eps)


@pytest.mark.parametrize("spec", FLOAT32)
def test_float32_passes_thanks_to_the_rounding_allowance(spec: str) -> None:
    engine = make(spec)
    point = {"x": 1.2, "y": -0.4}
    result = check(TRANSC, point, engine=engine)
    assert result.verdict is Verdict.PASS, result.table()
    allowed = {q.name for q in result.quantities if q.note.startswith("within the rounding allowance")}
    assert allowed, result.table()  # some float32 gradient is beyond rtol 1e-7 and needs the allowance
    for q in result.quantities:
        assert q.rel_error is not None and q.rel_error < 1e-5
    # judged as if the engine were float64, exactly those quantities fail
    engine.eps = FLOAT64_EPS
    strict = check(TRANSC, point, engine=engine)
    assert strict.verdict is Verdict.FAIL
    assert {q.name for q in strict.quantities if q.verdict is Verdict.FAIL} == allowed


def _scaled_first_gradient(self: Any, out: Any, nodes: Any) -> list[float | None]:
    grads = type(self).__mro__[1].gradients(self, out, nodes)
    return [grads[0] * 1.001, *grads[1:]]


@pytest.mark.parametrize("spec", SPECS)
def test_a_gradient_off_by_a_thousandth_fails_even_in_float32(spec: str) -> None:
    engine = subclass(make(spec), gradients=_scaled_first_gradient)
    result = check(ARITH, {"x": 1.5, "y": 0.5}, engine=engine)
    assert result.verdict is Verdict.FAIL, result.table()
    verdicts = {q.name: q.verdict for q in result.quantities}
    assert verdicts == {"value": Verdict.PASS, "x": Verdict.FAIL, "y": Verdict.PASS, "u": Verdict.PASS,
                        "v": Verdict.PASS, "w": Verdict.PASS, "r": Verdict.PASS}
    (x,) = [q for q in result.quantities if q.name == "x"]
    assert x.engine == pytest.approx(1.001 * reference(ARITH, 1.5, 0.5)["x"], rel=1e-5)
    assert x.rel_error == pytest.approx(0.001 / 1.001, rel=1e-3)


# -- (3) engines that misbehave ----------------------------------------------------------------------------------


def _raises(self: Any, out: Any, nodes: Any) -> list[float | None]:
    raise RuntimeError("gradients exploded")


def _nan(self: Any, out: Any, nodes: Any) -> list[float | None]:
    return [math.nan for _ in nodes]


def _no_mul(self: Any, op: Any, value_left: bool) -> str | None:
    return "this build has no mul" if op.name == "mul" else type(self).__mro__[1].missing(self, op, value_left)


@pytest.mark.parametrize("spec", SPECS)
def test_an_engine_raising_in_gradients_fails_with_the_message(spec: str) -> None:
    result = check("x * y + x", {"x": 2, "y": 3}, engine=subclass(make(spec), gradients=_raises))
    assert result.verdict is Verdict.FAIL
    assert result.message == "engine raised RuntimeError: gradients exploded"
    assert result.quantities == ()


@pytest.mark.parametrize("spec", SPECS)
def test_an_engine_returning_nan_fails(spec: str) -> None:
    result = check("x * y + x", {"x": 2, "y": 3}, engine=subclass(make(spec), gradients=_nan))
    assert result.verdict is Verdict.FAIL, result.table()
    verdicts = {q.name: q.verdict for q in result.quantities}
    assert verdicts == {"value": Verdict.PASS, "x": Verdict.FAIL, "y": Verdict.FAIL}
    assert all(math.isnan(q.engine) and q.abs_error == math.inf for q in result.quantities if q.name != "value")


@pytest.mark.parametrize("spec", SPECS)
def test_an_engine_missing_an_op_skips_with_its_reason(spec: str) -> None:
    engine = subclass(make(spec), missing=_no_mul)
    result = check("x * y + x", {"x": 2, "y": 3}, engine=engine)
    assert (result.verdict, result.message) == (Verdict.SKIP, "this build has no mul")
    assert check("x + y", {"x": 2, "y": 3}, engine=engine).verdict is Verdict.PASS


# -- (4) micrograd ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def ops_cases() -> dict[str, Case]:
    return {c.id: c for c in load_file(ROOT / "cases" / "ops.gradspec.yaml").cases}


@pytest.fixture(scope="module")
def edge_cases() -> dict[str, Case]:
    return {c.id: c for c in load_file(ROOT / "cases" / "edge-cases.gradspec.yaml").cases}


@pytest.mark.parametrize("op", ["tanh", "exp", "log"])
def test_micrograd_skips_what_it_does_not_have(op: str, ops_cases: dict[str, Case]) -> None:
    engine = make("micrograd")
    assert isinstance(engine, ValueClassEngine)
    ids = [i for i in ops_cases if i == op or i.startswith(f"{op}-")]
    assert len(ids) == 3
    for case_id in ids:
        for r in run_case(ops_cases[case_id], engine):
            assert r.verdict is Verdict.SKIP
            assert r.message == f"engine has no {op}"
            assert op in r.message


def test_micrograd_on_the_op_library(ops_cases: dict[str, Case]) -> None:
    engine = make("micrograd")
    passed, reasons = 0, set()
    for case in ops_cases.values():
        for r in run_case(case, engine):
            assert r.verdict in (Verdict.PASS, Verdict.SKIP), r.table()
            if r.verdict is Verdict.PASS:
                passed += 1
            else:
                reasons.add(r.message)
    assert passed > 300
    missing = {f"engine has no {m}" for m in MICROGRAD_MISSING}
    value_exponent = "engine's ** does not take a Value exponent: only supporting int/float powers for now"
    assert reasons == missing | {value_exponent}


def test_micrograd_value_exponent_and_reflected_pow() -> None:
    engine = make("micrograd")
    assert check("2 ** x", {"x": 1}, engine=engine).message == "engine has no __rpow__"
    r = check("x ** y", {"x": 2, "y": 3}, engine=engine)
    assert r.verdict is Verdict.SKIP
    assert r.message.startswith("engine's ** does not take a Value exponent")


def test_micrograd_recursive_backward_fails_a_deep_graph(edge_cases: dict[str, Case]) -> None:
    engine = make("micrograd")
    # 20,000 ops deep, past the recursion limit (10,000 once tinygrad is imported, 1,000 otherwise)
    assert edge_cases["deep-10000"].graph.depth == 20_000 > sys.getrecursionlimit()
    deep = only(run_case(edge_cases["deep-10000"], engine))
    assert deep.verdict is Verdict.FAIL
    assert "RecursionError" in deep.message
    assert deep.message.startswith("engine raised RecursionError: maximum recursion depth exceeded")
    shallow = only(run_case(edge_cases["deep-100"], engine))  # 200 ops deep: within the recursion limit
    assert shallow.verdict is Verdict.PASS, shallow.table()
    # gradspec's own engine sorts iteratively and passes the same case
    assert only(run_case(edge_cases["deep-10000"], resolve("builtin"))).verdict is Verdict.PASS


def test_micrograd_square_root_at_zero_divides_by_zero() -> None:
    engine = make("micrograd")
    assert check("sqrt(x)", {"x": 0}, engine=engine).message == "engine has no sqrt"
    # its slope 0.5 * 0.0 ** -0.5 raises where IEEE 754 gives inf, the exact slope: the overflow policy
    r = check("x ** 0.5", {"x": 0}, engine=engine)
    assert r.verdict is Verdict.CONVENTION
    assert r.message == ("overflow policy: raised ZeroDivisionError where IEEE 754 gives inf "
                         "(x: 0.0 cannot be raised to a negative power)")


# -- (5) kinks ---------------------------------------------------------------------------------------------------

# d/dx at x = 0 as each library computes it (observed); gradspec's convention is 0 for both ops.
KINKS: dict[str, dict[str, float | None]] = {
    "torch": {"abs": 0.0, "relu": 0.0},
    "torch:float32": {"abs": 0.0, "relu": 0.0},
    "jax": {"abs": 1.0, "relu": 0.0},  # observed: JAX takes the +1 side of |x| at 0, another valid subgradient
    "jax:float32": {"abs": 1.0, "relu": 0.0},
    "tinygrad": {"abs": 0.0, "relu": 0.0},
    "tinygrad:float32": {"abs": 0.0, "relu": 0.0},
    "micrograd": {"abs": None, "relu": 0.0},  # micrograd has no abs
}


@pytest.mark.parametrize("spec", SPECS)
@pytest.mark.parametrize("op", ["abs", "relu"])
def test_kink_conventions_at_zero(spec: str, op: str, ops_cases: dict[str, Case]) -> None:
    engine = make(spec)
    observed = KINKS[spec][op]
    result = check(f"{op}(x) * 3", {"x": 0}, engine=engine)
    if observed is None:
        assert (result.verdict, result.message) == (Verdict.SKIP, f"engine has no {op}")
        return
    assert result.kinks == (f"{op} at 0",)
    got = quantities(result)
    assert got == {"value": 0.0, "x": 3 * observed}
    (x,) = [q for q in result.quantities if q.name == "x"]
    if observed == 0.0:
        assert result.verdict is Verdict.PASS, result.table()
    else:
        assert result.verdict is Verdict.CONVENTION, result.table()
        assert x.note.startswith("another subgradient at a kink")
    # the library's own case at the kink (kink: convention, expect grad 0) agrees
    library_case = only(run_case(ops_cases[f"{op}-at-zero"], engine))
    assert library_case.verdict is result.verdict
    assert quantities(library_case)["x"] == observed


@pytest.mark.parametrize("spec", SPECS)
def test_sqrt_at_zero_is_infinite(spec: str) -> None:
    engine = make(spec)
    result = check("sqrt(x)", {"x": 0}, engine=engine)
    if spec == "micrograd":
        assert (result.verdict, result.message) == (Verdict.SKIP, "engine has no sqrt")
        return
    assert result.verdict is Verdict.PASS, result.table()
    assert quantities(result) == {"value": 0.0, "x": math.inf}
    power = check("x ** 0.5", {"x": 0}, engine=engine)
    assert power.verdict is Verdict.PASS, power.table()
    assert quantities(power) == {"value": 0.0, "x": math.inf}


# -- (6) properties and training from a case file -------------------------------------------------------------------

CASE_FILE = """
    version: 1
    cases:
      - id: lin
        kind: linearity
        f: x ** 2 * y
        g: sin(x) - exp(y)
        at:
          - {x: 0.5, y: -1, a: 2, b: -3}
          - {x: -1.25, y: 0.75, a: 0.5, b: 1.5}
      - id: chain
        kind: chain-rule
        outer: tanh(u) * u
        inner: x * y + sqrt(x)
        at:
          - {x: 0.5, y: -1}
          - {x: 2, y: 0.25}
      - id: train
        kind: training
        model: {sizes: [1, 4, 1], activation: tanh, seed: 3}
        data:
          x: [-1.0, -0.5, 0.0, 0.5, 1.0]
          target: x ** 2
        steps: 30
        lr: 0.05
        loss_ratio: 0.5
      - id: train-tiny
        kind: training
        model: {sizes: [1, 2, 1], activation: relu, seed: 1}
        data:
          x: [0.0, 0.5, 1.0]
          y: [1.0, 2.0, 3.0]
        steps: 10
        lr: 0.05
        loss_ratio: 0.5
"""


@pytest.fixture
def property_cases(write_case: Callable[..., Path]) -> dict[str, Case]:
    return {c.id: c for c in load_file(write_case(textwrap.dedent(CASE_FILE), "props.gradspec.yaml")).cases}


@pytest.mark.parametrize("spec", ["torch", "jax", "tinygrad"])
def test_linearity_chain_rule_and_training(spec: str, property_cases: dict[str, Case]) -> None:
    engine = make(spec)
    if spec == "tinygrad":
        # Every bias starts at 0: as 0-d tensors (Tensor(0.0), as users write them) tinygrad merges leaves
        # that hold the same number (tinygrad#9597), so the first gradient is wrong, though the loss falls
        (train,) = run_case(property_cases["train-tiny"], engine)
        assert [q.verdict for q in train.quantities] == [Verdict.PASS, Verdict.FAIL]
        assert train.quantities[1].name.endswith("(first step)") and train.culprit is not None
    # tinygrad builds and realizes a kernel graph per step: it trains nothing more here
    training = [] if spec == "tinygrad" else ["train", "train-tiny"]
    for case_id in ["lin", "chain", *training]:
        results = run_case(property_cases[case_id], engine)
        assert len(results) == (1 if case_id.startswith("train") else 2)
        for r in results:
            assert r.verdict is Verdict.PASS, r.table()
            assert r.engine == spec
            props = [q for q in r.quantities if q.role == "property"]
            if case_id == "lin":
                assert [q.name for q in props] == ["linearity d/dx", "linearity d/dy"]
            elif case_id == "chain":
                assert [q.name for q in props] == ["chain rule d/dx", "chain rule d/dy"]
            else:
                assert r.quantities[0].name == "loss"
                assert r.quantities[1].name.endswith("(first step)")
                assert r.quantities[1].verdict is Verdict.PASS
                assert r.quantities[0].rel_error < 0.5  # the final/initial loss ratio
    if spec == "tinygrad":
        return
    train = only(run_case(property_cases["train-tiny"], engine))
    builtin = only(run_case(property_cases["train-tiny"], resolve("builtin")))
    # the same model, data and initial parameters: the same first-step gradient as gradspec's own engine
    assert train.quantities[1].engine == pytest.approx(builtin.quantities[1].engine, rel=1e-9)
    assert train.quantities[0].note == builtin.quantities[0].note == "initial loss 16.8679"


@pytest.mark.parametrize("spec", FLOAT32)
def test_float32_property_checks_allow_for_rounding(spec: str, property_cases: dict[str, Case]) -> None:
    """A correct float32 engine passes linearity and chain-rule cases, as it passes gradient cases.

    The engine's own gradients at these points pass (within the rounding allowance); the property
    comparison, engine against engine, must allow for float32 rounding too.
    """
    engine = make(spec)
    for case_id in ("lin", "chain"):
        for r in run_case(property_cases[case_id], engine):
            assert all(q.verdict is Verdict.PASS for q in r.quantities if q.role != "property"), r.table()
            assert r.verdict is Verdict.PASS, r.table()


# -- (7) CUDA ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("spec", "name"), [("torch:cuda", "torch:cuda"), ("torch:cuda:float32", "torch:cuda:float32")])
def test_torch_cuda_without_a_gpu_is_unavailable(spec: str, name: str, write_case: Callable[..., Path]) -> None:
    torch = pytest.importorskip("torch")
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    engine = resolve(spec)
    assert isinstance(engine, Unavailable)
    assert engine.name == name
    assert engine.reason == "CUDA is not available on this machine"
    assert "CUDA is not available" in engine.reason
    result = check("x * y", {"x": 2, "y": 3}, engine=spec)
    assert (result.verdict, result.message, result.engine) == (Verdict.SKIP, engine.reason, name)
    train = load_file(write_case(textwrap.dedent(CASE_FILE), "cuda.gradspec.yaml")).cases[-1]
    r = only(run_case(train, engine))
    assert (r.verdict, r.message) == (Verdict.SKIP, "CUDA is not available on this machine")


# -- a library that is not installed --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("spec", "modules", "reason"),
    [
        ("torch", ["torch"], "torch is not installed (pip install 'gradspec[torch]')"),
        ("torch:cuda:float32", ["torch"], "torch is not installed (pip install 'gradspec[torch]')"),
        ("jax:float32", ["jax"], "jax is not installed (pip install 'gradspec[jax]')"),
        ("tinygrad", ["tinygrad"], "tinygrad is not installed (pip install 'gradspec[tinygrad]')"),
        ("micrograd", ["micrograd", "micrograd.engine"], "micrograd is not installed (pip install 'gradspec[micrograd]')"),
    ],
)
def test_a_missing_library_makes_an_unavailable_engine(spec: str, modules: list[str], reason: str,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    for m in modules:
        monkeypatch.setitem(sys.modules, m, None)  # import raises ImportError
    engine = resolve(spec)
    assert isinstance(engine, Unavailable)
    assert (engine.name, engine.reason) == (spec, reason)
    result = check("x * y", {"x": 2, "y": 3}, engine=engine)
    assert (result.verdict, result.message) == (Verdict.SKIP, reason)


# -- tinygrad's device: the pure-Python one unless DEV names another ---------------------------------------------
#
# tinygrad keeps its device choice in process-wide state, read when it is first imported, so each of these
# runs in a fresh interpreter. PATH is cut down to the interpreter's own folder, so that no compiler is
# found even on a machine that has one (CI installs clang).

TINYGRAD_PROBE = """
import sys
import tinygrad  # imported before gradspec sets DEV, as pytest.importorskip or the user's own code does
from gradspec import check
from gradspec.engines.protocol import Unavailable
from gradspec.engines.resolve import resolve
engine = resolve(sys.argv[1])
if isinstance(engine, Unavailable):
    print("unavailable:", engine.reason)
else:
    # d(x + 1)/dx is a constant with no device, which tinygrad would read through its CPU device
    for expr in ("x + 1", "tanh(x) * y", "2 * x"):
        result = check(expr, {"x": 0.5, "y": 2.0}, engine=engine)
        print(engine.device, expr, result.verdict.value, [q.engine for q in result.quantities])
"""


def tinygrad_probe(spec: str, dev: str | None, *, compiler: bool = False) -> list[str]:
    import os
    import subprocess

    pytest.importorskip("tinygrad")
    env = {k: v for k, v in os.environ.items() if k not in ("DEV", "CC", "CPU", "CLANG", "PYTHON")}
    if dev is not None:
        env["DEV"] = dev
    if not compiler:
        env["PATH"] = str(Path(sys.executable).parent)
        # and no kernels compiled earlier: tinygrad's disk cache would run them without a compiler
        env["CACHELEVEL"] = "0"
    done = subprocess.run([sys.executable, "-c", TINYGRAD_PROBE, spec], env=env, capture_output=True, text=True,
                          timeout=300, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout.splitlines()


def probed(lines: list[str]) -> dict[str, tuple[str, str, list[float]]]:
    """expression -> (device, verdict, [value, d/dx, d/dy]) from the probe's output."""
    out = {}
    for line in lines:
        head, _, numbers = line.partition(" [")
        device, *words, verdict = head.split(" ")
        out[" ".join(words)] = (device, verdict, [float(n) for n in numbers.rstrip("]").split(", ")])
    return out


def expected_probe(device: str, rel: float) -> dict[str, tuple[str, str, list[float]]]:
    t = math.tanh(0.5)
    return {
        "x + 1": (device, "pass", pytest.approx([1.5, 1.0, 0.0], rel=rel)),
        "tanh(x) * y": (device, "pass", pytest.approx([2 * t, 2 * (1 - t * t), t], rel=rel)),
        "2 * x": (device, "pass", pytest.approx([1.0, 2.0, 0.0], rel=rel)),
    }


@pytest.mark.parametrize(("spec", "rel"), [("tinygrad", 1e-15), ("tinygrad:float32", 1e-6)])
def test_tinygrad_runs_on_its_python_device_without_a_compiler(spec: str, rel: float) -> None:
    assert probed(tinygrad_probe(spec, None)) == expected_probe("PYTHON", rel)


def test_tinygrad_on_a_device_that_needs_a_missing_compiler_is_unavailable_with_the_reason() -> None:
    assert tinygrad_probe("tinygrad", "CPU") == [
        "unavailable: tinygrad's device 'CPU' cannot run here: clang is missing (install it, or unset DEV to use "
        "tinygrad's PYTHON device)",
    ]


def test_tinygrad_on_a_device_it_does_not_know_is_unavailable_with_the_reason() -> None:
    assert tinygrad_probe("tinygrad", "NOSUCHDEVICE") == [
        "unavailable: tinygrad cannot run on device 'NOSUCHDEVICE' here: ModuleNotFoundError: "
        "No module named 'tinygrad.runtime.ops_nosuchdevice'",
    ]


def test_tinygrad_runs_on_its_cpu_device_where_clang_is_installed() -> None:
    import shutil

    if shutil.which("clang") is None:
        pytest.skip("clang is not installed (apt-get install clang): tinygrad's CPU device compiles kernels with it")
    assert probed(tinygrad_probe("tinygrad", "CPU", compiler=True)) == expected_probe("CPU", 1e-15)


def test_jax_takes_the_same_path_in_both_runs_of_a_check() -> None:
    # Eager and jitted XLA differ in the last bit here; a check runs its graph twice to see whether the
    # engine is deterministic, so the adapter must not switch to jit between the two runs of one check.
    pytest.importorskip("jax")
    engine = resolve("jax")
    for x in (-3.670862283897047, -3.670862283897047, 1.25, 1.25, -0.5):
        result = check("exp(sin(x)) * cos(tanh(x)) + log(sigmoid(x))", {"x": x}, engine=engine)
        assert result.verdict is Verdict.PASS, result.table()


@pytest.fixture
def jax_compiles() -> Iterator[list[str]]:
    """The compile requests JAX makes meanwhile, and what its persistent cache answered to each (hits and misses)."""
    jax = pytest.importorskip("jax")
    seen: list[str] = []

    def listen(event: str, **_: Any) -> None:
        if event.startswith("/jax/compilation_cache/") and event.rsplit("/", 1)[1] in (
                "compile_requests_use_cache", "cache_hits", "cache_misses"):
            seen.append(event.rsplit("/", 1)[1])

    jax.monitoring.register_event_listener(listen)
    yield seen
    jax.monitoring.unregister_event_listener(listen)


def test_jax_compiles_a_graph_once_for_every_draw_and_again_for_another_shape_or_dtype(
        jax_compiles: list[str], tmp_path: Path) -> None:
    # Each draw of a tensor case is checked on its own inputs, and JAX keeps the programs it compiled for
    # a graph at its shapes and dtype: a later draw compiles nothing, another shape or dtype compiles anew.
    import jax

    def draws(shape: str, spec: str) -> list[CheckResult]:
        path = tmp_path / f"{shape}-{spec.replace(':', '-')}.gradspec.yaml"
        path.write_text("cases:\n  - id: t\n    expr: x * tanh(x)\n    check: [value, vjp, jvp]\n"
                        f"    sample: {{count: 2, vars: {{x: {{shape: [{shape}], normal: [0, 1]}}}}}}\n", encoding="utf-8")
        return run_case(load_file(path).cases[0], resolve(spec))

    jax.clear_caches()
    first = draws("2", "jax")
    compiled = jax_compiles.count("compile_requests_use_cache")
    assert compiled > 0 and jax_compiles.count("cache_hits") + jax_compiles.count("cache_misses") == compiled
    for shape, spec in (("2", "jax"), ("3", "jax"), ("2", "jax:float32")):
        jax_compiles.clear()
        results = draws(shape, spec)
        assert [r.verdict for r in first + results] == [Verdict.PASS] * 4
        assert {q.name for q in results[1].quantities} == {"value", "x (vjp0)", "x (vjp1)", "x (jacobian)", "jvp", "mode consistency"}
        if spec == "jax" and shape == "2":  # the graph of the first run: nothing compiled, not even looked up
            assert jax_compiles == []
            assert [q.engine for q in results[1].quantities] == [q.engine for q in first[1].quantities]
        else:
            assert jax_compiles.count("compile_requests_use_cache") > 0


def test_jax_programs_compiled_once_are_loaded_from_the_persistent_cache_with_the_same_answers(
        jax_compiles: list[str]) -> None:
    # What a test process compiled is on disk (tests/conftest.py configures the cache) for every later one:
    # emptying this process's own caches stands for a new process.
    import jax

    if not jax.config.jax_compilation_cache_dir:
        pytest.skip("no persistent compilation cache is configured")
    engine = resolve("jax")
    expression, point = "logsumexp(x * y, axis=0)", {"x": [[0.5, -1.25], [2.0, 0.75]], "y": [[1.5, 0.25], [-0.5, 1.0]]}
    before = check(expression, point, engine=engine)
    jax.clear_caches()
    jax_compiles.clear()
    after = check(expression, point, engine=engine)
    assert after.verdict is before.verdict is Verdict.PASS
    assert [(q.name, q.engine) for q in after.quantities] == [(q.name, q.engine) for q in before.quantities]
    assert jax_compiles.count("compile_requests_use_cache") == jax_compiles.count("cache_hits") > 0
    assert "cache_misses" not in jax_compiles
