"""check() and check_gradients(): verdicts, quantities, tables, and engines that are wrong in known ways."""

from __future__ import annotations

import math
from types import ModuleType

import pytest

from gradspec import CheckResult, ExpressionError, Tolerance, Verdict, check, check_gradients
from gradspec.engine import Value

# -- engines that are wrong in known ways -------------------------------------------------------------


class OverwritingMul(Value):
    """mul's backward assigns (=) instead of accumulating (+=)."""

    __slots__ = ()

    def __mul__(self, other):
        other = other if isinstance(other, Value) else OverwritingMul(other)
        out = OverwritingMul(self.data * other.data, (self, other), "mul")

        def _backward() -> None:
            self.grad = other.data * out.grad
            other.grad = self.data * out.grad

        out._backward = _backward
        return out

    def __rmul__(self, other):
        return OverwritingMul(other) * self


class FlippedTanh(Value):
    """tanh's backward has the wrong sign."""

    __slots__ = ()

    def tanh(self):
        t = math.tanh(self.data)
        out = Value(t, (self,), "tanh")

        def _backward() -> None:
            self.grad += -(1 - t * t) * out.grad

        out._backward = _backward
        return out


class RaisingExp(Value):
    __slots__ = ()

    def exp(self):
        raise RuntimeError("exp exploded")


class NanSin(Value):
    __slots__ = ()

    def sin(self):
        return Value(math.nan, (self,), "sin")


class NanGradSin(Value):
    __slots__ = ()

    def sin(self):
        out = Value(math.sin(self.data), (self,), "sin")

        def _backward() -> None:
            self.grad += math.nan

        out._backward = _backward
        return out


class ReluOneAtZero(Value):
    """Takes relu'(0) = 1: another valid subgradient, not a bug."""

    __slots__ = ()

    def relu(self):
        out = Value(max(self.data, 0.0), (self,), "relu")

        def _backward() -> None:
            self.grad += (1.0 if self.data >= 0 else 0.0) * out.grad

        out._backward = _backward
        return out


class NoTanh:
    """A tiny Value class with + and * only."""

    def __init__(self, data: float, parents: tuple = ()) -> None:
        self.data = float(data)
        self.grad = 0.0
        self._parents = parents
        self._backward = lambda: None

    def __add__(self, other):
        other = other if isinstance(other, NoTanh) else NoTanh(other)
        out = NoTanh(self.data + other.data, (self, other))

        def bw() -> None:
            self.grad += out.grad
            other.grad += out.grad

        out._backward = bw
        return out

    def __mul__(self, other):
        other = other if isinstance(other, NoTanh) else NoTanh(other)
        out = NoTanh(self.data * other.data, (self, other))

        def bw() -> None:
            self.grad += other.data * out.grad
            other.grad += self.data * out.grad

        out._backward = bw
        return out

    def backward(self) -> None:
        order, seen, stack = [], set(), [(self, False)]
        while stack:
            node, done = stack.pop()
            if done:
                order.append(node)
            elif id(node) not in seen:
                seen.add(id(node))
                stack.append((node, True))
                stack.extend((p, False) for p in node._parents)
        self.grad = 1.0
        for node in reversed(order):
            node._backward()


def by_name(result: CheckResult) -> dict:
    return {q.name: q for q in result.quantities}


# -- results on the builtin engine --------------------------------------------------------------------


def test_pass_result_quantities() -> None:
    r = check("(x*y + x)**2 - tanh(y)", {"x": 2.0, "y": 3.0})
    assert r.verdict is Verdict.PASS
    assert r.ok
    assert r.failures() == []
    assert r.engine == "builtin"
    assert r.expression == "(x*y + x)**2 - tanh(y)"
    assert r.point == {"x": 2.0, "y": 3.0}
    assert [(q.name, q.role) for q in r.quantities] == [("value", "value"), ("x", "input"), ("y", "input")]
    q = by_name(r)
    assert q["value"].exact == pytest.approx(64 - math.tanh(3.0), rel=1e-15)
    assert q["x"].engine == 64.0 and q["x"].exact == 64.0
    assert q["y"].exact == pytest.approx(32 - (1 - math.tanh(3.0) ** 2), rel=1e-15)
    assert q["y"].numerical == pytest.approx(q["y"].exact, rel=1e-8)
    assert q["value"].numerical is None
    assert q["x"].tolerance == pytest.approx(1e-7 * 64)  # rtol only: atol defaults to 0
    assert q["x"].abs_error == 0.0 and q["x"].rel_error == 0.0
    assert all(qq.verdict is Verdict.PASS for qq in r.quantities)
    assert q["x"].symbolic  # SymPy's derivative text
    assert q["x"].exact_text == "64.0"


def test_the_relative_error_is_of_the_exact_difference() -> None:
    # 1/3 in float64 is the float nearest the exact 1/3, which it misses by 1/3 - 6004799503160661/2**54
    # = 1/(3 * 2**54): the engine is that far off, relatively 2**-54, not 0
    q = by_name(check("x / 3", {"x": 1.0}))["value"]
    assert q.engine == q.exact == 1 / 3
    assert q.abs_error == pytest.approx(1 / (3 * 2**54), rel=1e-9, abs=0)
    assert q.rel_error == pytest.approx(2.0**-54, rel=1e-9, abs=0)


def test_pass_table_text() -> None:
    r = check("x*y", {"x": 2, "y": 3})
    lines = r.table().splitlines()
    assert lines[0] == "PASS  x*y  at x=2,y=3  on builtin"
    assert lines[1].split() == ["engine", "exact", "numerical", "abs", "err", "rel", "err", "tol", "verdict"]
    assert lines[2].split()[:3] == ["value", "6", "6"]
    assert lines[3].split()[:4] == ["d/dx", "3", "3", "3"]
    assert lines[4].split()[:4] == ["d/dy", "2", "2", "2"]
    assert all(line.split()[-1] == "pass" for line in lines[2:5])
    assert len(lines) == 5


def test_intermediates_are_checked() -> None:
    r = check("a = x*y; b = a + x", {"x": 2, "y": 3})
    assert r.verdict is Verdict.PASS
    roles = {q.name: q.role for q in r.quantities}
    assert roles == {"value": "value", "x": "input", "y": "input", "a": "intermediate", "b": "intermediate"}
    q = by_name(r)
    assert (q["x"].engine, q["y"].engine, q["a"].engine, q["b"].engine) == (4.0, 2.0, 1.0, 1.0)
    assert "d/da" in r.table()


def test_same_structure_written_differently_keeps_its_own_text_and_columns() -> None:
    # "p  /  q" and "p/q" parse to equal trees; each result must still describe the text it was given.
    spaced = check("p  /  q", {"p": 1, "q": 2})
    assert spaced.expression == "p  /  q"
    tight = check("p/q", {"p": 1, "q": 2})
    assert tight.expression == "p/q"
    assert tight.table().startswith("PASS  p/q  at")
    from gradspec import DomainError
    from gradspec.checks.check import prepare
    from gradspec.reference.store import exact

    with pytest.raises(DomainError) as info:
        exact(prepare("p/q", ["p", "q"]), {"p": 1, "q": 0})
    assert info.value.col == 2  # the '/' of "p/q", not of "p  /  q"


def test_undefined_variable() -> None:
    with pytest.raises(ExpressionError) as info:
        check("x + z", {"x": 1})
    assert "undefined variable 'z'" in info.value.message
    assert info.value.col == 5


def test_parse_error_raises() -> None:
    with pytest.raises(ExpressionError):
        check("x +", {"x": 1})


def test_unused_input_gets_gradient_zero_and_passes() -> None:
    r = check("x*2", {"x": 1.5, "y": 7})
    assert r.verdict is Verdict.PASS
    q = by_name(r)
    assert q["y"].engine == 0.0
    assert q["y"].exact == 0.0
    assert q["y"].verdict is Verdict.PASS
    assert q["x"].engine == 2.0


def test_point_values_accept_strings_and_are_exact() -> None:
    r = check("log(x)", {"x": "0.1"})
    q = by_name(r)
    assert q["x"].exact_text == "10.0"
    assert r.verdict is Verdict.PASS


def test_domain_error_is_an_error_result() -> None:
    r = check("log(x)", {"x": -1})
    assert r.verdict is Verdict.ERROR
    assert not r.ok
    assert "log needs x > 0" in r.message
    assert r.table().startswith("ERROR  log(x)  at x=-1  on builtin\n  log needs x > 0")


def test_kink_is_reported_and_builtin_convention_passes() -> None:
    r = check("relu(x)", {"x": 0})
    assert r.verdict is Verdict.PASS
    assert r.kinks == ("relu at 0",)
    assert "at a kink: relu at 0" in r.table()


def test_another_subgradient_is_a_convention_difference() -> None:
    r = check("relu(x)", {"x": 0}, engine=ReluOneAtZero)
    assert r.verdict is Verdict.CONVENTION
    assert r.ok
    q = by_name(r)["x"]
    assert q.engine == 1.0 and q.exact == 0.0
    assert q.verdict is Verdict.CONVENTION
    assert "another subgradient" in q.note and "[0, 1]" in q.note
    # away from the kink the same engine passes
    assert check("relu(x)", {"x": 0.5}, engine=ReluOneAtZero).verdict is Verdict.PASS


# -- broken engines -----------------------------------------------------------------------------------


def test_overwriting_backward_fails_on_the_right_variable() -> None:
    r = check("x*y + x", {"x": 2, "y": 3}, engine=OverwritingMul)
    assert r.verdict is Verdict.FAIL
    assert not r.ok
    q = by_name(r)
    assert q["value"].verdict is Verdict.PASS
    assert q["x"].verdict is Verdict.FAIL
    assert q["x"].engine == 3.0 and q["x"].exact == 4.0  # the += 1 from the add was overwritten
    assert q["y"].verdict is Verdict.PASS
    assert [f.name for f in r.failures()] == ["x"]
    table = r.table()
    assert table.startswith("FAIL  x*y + x")
    assert "d/dx = y + 1" in table  # the symbolic derivative of the failing gradient is shown
    # the same engine is fine where nothing is overwritten
    assert check("x*y", {"x": 2, "y": 3}, engine=OverwritingMul).verdict is Verdict.PASS


def test_sign_flip_fails_on_the_right_variable() -> None:
    r = check("tanh(x)*y", {"x": 0.5, "y": 2}, engine=FlippedTanh)
    assert r.verdict is Verdict.FAIL
    q = by_name(r)
    assert q["x"].verdict is Verdict.FAIL
    assert q["x"].engine == pytest.approx(-q["x"].exact, rel=1e-15)
    assert q["y"].verdict is Verdict.PASS
    assert [f.name for f in r.failures()] == ["x"]


def test_engine_that_raises_fails_with_the_message() -> None:
    r = check("exp(x)", {"x": 1}, engine=RaisingExp)
    assert r.verdict is Verdict.FAIL
    assert r.message == "engine raised RuntimeError: exp exploded"
    assert r.quantities == ()
    assert "engine raised RuntimeError: exp exploded" in r.table()


def test_engine_lacking_an_op_is_skipped() -> None:
    r = check("tanh(x)", {"x": 1}, engine=NoTanh)
    assert r.verdict is Verdict.SKIP
    assert r.message == "engine has no tanh"
    assert r.ok
    # what it does have it gets right
    ok = check("x*y + x", {"x": 2, "y": 3}, engine=NoTanh)
    assert ok.verdict is Verdict.PASS
    assert by_name(ok)["x"].engine == 4.0


def test_engine_returning_nan_value_fails() -> None:
    r = check("sin(x)", {"x": 1}, engine=NanSin)
    assert r.verdict is Verdict.FAIL
    q = by_name(r)["value"]
    assert math.isnan(q.engine)
    assert q.verdict is Verdict.FAIL
    assert q.abs_error == math.inf


def test_engine_returning_nan_gradient_fails() -> None:
    r = check("sin(x)", {"x": 1}, engine=NanGradSin)
    assert r.verdict is Verdict.FAIL
    assert by_name(r)["value"].verdict is Verdict.PASS
    assert by_name(r)["x"].verdict is Verdict.FAIL
    assert math.isnan(by_name(r)["x"].engine)


def test_engine_given_by_spec_string() -> None:
    r = check("x*y + x", {"x": 2, "y": 3}, engine=f"{__name__}:OverwritingMul")
    assert r.verdict is Verdict.FAIL
    assert r.engine == f"{__name__}:OverwritingMul"


def test_tolerance_keywords_and_object() -> None:
    loose = check("x*y", {"x": 2, "y": 3}, rtol=0.5)
    assert by_name(loose)["x"].tolerance == pytest.approx(1e-10 + 0.5 * 3)
    tight = check("x*y", {"x": 2, "y": 3}, tolerance=Tolerance(rtol=0.0, atol=1e-3))
    assert by_name(tight)["x"].tolerance == pytest.approx(1e-3)
    r = check("tanh(x)*y", {"x": 0.5, "y": 2}, engine=FlippedTanh, rtol=10.0)
    assert r.verdict is Verdict.PASS  # |engine - exact| = 2|exact| <= 10|exact|


def test_deep_flat_sum_is_checked() -> None:
    # 1001 terms: well inside the expression limits (about 4 kB, 2,001 nodes).
    r = check("x" + " + x" * 1000, {"x": 0.5})
    assert r.verdict is Verdict.PASS
    assert by_name(r)["x"].engine == 1001.0


# -- check_gradients ----------------------------------------------------------------------------------


def test_check_gradients_on_a_correct_callable() -> None:
    r = check_gradients(lambda x, y: (x * y + x) ** 2 - y.tanh(), [2.0, 3.0])
    assert r.verdict is Verdict.PASS
    assert r.kind == "callable"
    assert r.engine == "Value"
    assert [q.name for q in r.quantities] == ["x0", "x1"]
    q = by_name(r)
    assert q["x0"].engine == 64.0
    assert q["x0"].numerical == pytest.approx(64.0, rel=1e-9)
    assert q["x1"].engine == pytest.approx(32 - (1 - math.tanh(3.0) ** 2), rel=1e-14)


def test_check_gradients_by_keyword() -> None:
    def f(a, b):
        return (a * b).sin() + a.exp()

    r = check_gradients(f, {"a": 0.3, "b": -1.2})
    assert r.verdict is Verdict.PASS
    assert r.expression == "f"
    assert r.point == {"a": 0.3, "b": -1.2}
    q = by_name(r)
    assert q["a"].engine == pytest.approx(-1.2 * math.cos(-0.36) + math.exp(0.3), rel=1e-14)
    assert q["b"].engine == pytest.approx(0.3 * math.cos(-0.36), rel=1e-14)


def test_check_gradients_on_a_broken_engine_class() -> None:
    r = check_gradients(lambda x, y: x * y + x, [2.0, 3.0], value=OverwritingMul)
    assert r.verdict is Verdict.FAIL
    assert r.engine == "OverwritingMul"
    q = by_name(r)
    assert q["x0"].verdict is Verdict.FAIL
    assert q["x0"].engine == 3.0
    assert q["x0"].numerical == pytest.approx(4.0, rel=1e-9)
    assert q["x1"].verdict is Verdict.PASS
    r2 = check_gradients(lambda x: x.tanh(), [0.4], value=FlippedTanh)
    assert r2.verdict is Verdict.FAIL


# -- tiny values judged relatively; exact zeros; both spellings; overflow ------------------------------


def test_the_default_tolerance_judges_tiny_values_relatively(engines: ModuleType) -> None:
    assert Tolerance().atol == 0.0
    r = check("tanh(x)", {"x": 1e-12}, engine=engines.TanhViaExp)
    assert r.verdict is Verdict.FAIL
    value = by_name(r)["value"]
    assert value.verdict is Verdict.FAIL
    assert value.engine is not None and abs(value.engine - 1e-12) / 1e-12 > 1e-5  # ~1e11 ulps off
    # a blanket absolute tolerance, as the old default had, hid it
    assert check("tanh(x)", {"x": 1e-12}, engine=engines.TanhViaExp, atol=1e-10).verdict is Verdict.PASS
    # where the formula does not cancel, the same engine is right; and a correct engine passes at 1e-12
    assert check("tanh(x)", {"x": 0.5}, engine=engines.TanhViaExp).verdict is Verdict.PASS
    assert check("tanh(x)", {"x": 1e-12}).verdict is Verdict.PASS


def test_an_exact_zero_allows_only_what_rounding_can_do() -> None:
    # 0.1 - 0.3 + 0.2 is 2.8e-17 in float64, not 0: cancellation the rounding allowance accounts for
    r = check("x * 0.1 - x * 0.3 + x * 0.2", {"x": 0.7})
    assert r.verdict is Verdict.PASS, r.table()
    grad = by_name(r)["x"]
    assert grad.exact == 0.0 and grad.engine != 0.0
    assert grad.tolerance is not None and 0 < grad.tolerance < 1e-15
    assert grad.note.startswith("within the rounding allowance")


def test_an_exact_zero_with_nothing_to_round_must_be_zero(engines: ModuleType) -> None:
    r = check("x - x", {"x": 0.5})
    assert by_name(r)["x"].tolerance == 0.0 and r.verdict is Verdict.PASS


def test_both_spellings_of_abs_are_exercised(engines: ModuleType) -> None:
    r = check("abs(x) * 2", {"x": -1.5}, engine=engines.AbsDunderSignless)
    assert r.verdict is Verdict.FAIL
    q = by_name(r)
    assert q["x"].verdict is Verdict.PASS and q["x"].engine == -2.0  # x.abs() is right
    wrong = q["x via __abs__"]  # abs(x) calls __abs__, which is not
    assert wrong.verdict is Verdict.FAIL and wrong.engine == 2.0 and wrong.exact == -2.0
    assert "via __abs__" in r.table() and "built with __abs__" in wrong.note
    # identical numbers from both spellings are judged once
    same = check("abs(x) * 2", {"x": -1.5}, engine=engines.Same)
    assert same.verdict is Verdict.PASS and [q.name for q in same.quantities] == ["value", "x"]


def test_overflow_beyond_the_float_range_is_a_convention_difference(engines: ModuleType) -> None:
    r = check("exp(x)", {"x": 800}, engine=engines.MathOverflow)
    assert r.verdict is Verdict.CONVENTION
    assert r.message.startswith("overflow policy: raised OverflowError where IEEE 754 gives inf (value, x:")
    assert check("exp(x)", {"x": 800}).verdict is Verdict.PASS  # inf, as IEEE 754 gives


def test_overflow_where_the_exact_value_is_finite_fails(engines: ModuleType) -> None:
    r = check("sigmoid(x)", {"x": -800}, engine=engines.MathOverflow)
    assert r.verdict is Verdict.FAIL
    assert r.message == ("engine raised OverflowError: math range error; "
                         "the exact value and gradients are finite in the engine's precision")
    # the same engine at an ordinary point is right
    assert check("sigmoid(x)", {"x": -8}, engine=engines.MathOverflow).verdict is Verdict.PASS


def test_a_division_by_zero_where_the_exact_slope_is_infinite_is_a_convention_difference(
        textbook: ModuleType) -> None:
    # sqrt'(0) = +inf: 0.5 / 0.0 raises in Python where IEEE 754 gives inf, as OverflowError does beyond the range
    r = check("sqrt(x)", {"x": 0}, engine=textbook.SqrtDividing)
    assert r.verdict is Verdict.CONVENTION
    assert r.message.startswith("overflow policy: raised ZeroDivisionError where IEEE 754 gives inf (x: float division")
    # away from 0 the same engine is right
    assert check("sqrt(x)", {"x": 4}, engine=textbook.SqrtDividing).verdict is Verdict.PASS


def test_values_that_refuse_python_numbers_skip_what_needs_one(textbook: ModuleType) -> None:
    # x * 2 reads 2's .data: AttributeError, as a missing __rmul__ is a TypeError: the engine lacks it
    r = check("x * 2 + x * y", {"x": 0.5, "y": 3.0}, engine=textbook.NumberFree)
    assert r.verdict is Verdict.SKIP
    assert r.message.startswith("engine cannot apply mul to Value, number: 'float' object has no attribute 'data'")
    assert check("x * y + x", {"x": 0.5, "y": 3.0}, engine=textbook.NumberFree).verdict is Verdict.PASS


def test_check_gradients_calls_the_function_through_the_guarded_door() -> None:
    def broken(x: object) -> object:
        raise RuntimeError("no forward today")

    result = check_gradients(broken, [2.0])
    assert (result.verdict, result.message) == (Verdict.FAIL, "engine raised RuntimeError: no forward today")
