"""Engines: every spec form ``resolve`` takes, entry points, unavailable engines, what ``Engine.run`` reports
for nodes the output does not use, and a third-party engine written against the protocol alone running
``gradspec.check`` and case files end to end."""

from __future__ import annotations

import importlib
import math
import sys
import textwrap
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

import gradspec.engines.resolve as engines_module
from gradspec import check
from gradspec.casefile.loader import load_file
from gradspec.checks.check import prepare
from gradspec.engine import Value
from gradspec.engines.protocol import FLOAT32_EPS, FLOAT64_EPS, Engine, Unavailable, ValueClassEngine
from gradspec.engines.resolve import resolve
from gradspec.errors import EngineError
from gradspec.graph.ir import Apply
from gradspec.ops.table import OPS
from gradspec.results import Verdict
from gradspec.run.runner import run_case

DATA = Path(__file__).resolve().parent / "data"

# Every op of the op table, with named intermediates and the reflected forms (number on the left).
EVERY_OP = ("u = x*y - x/y; v = 2 - u + 3*x; w = v**2 / (1 + y); r = relu(w - 1); "
            "s = sin(x) * cos(y); t = tanh(s) + sigmoid(x - y); e = exp(t) + sqrt(abs(s) + 1); "
            "r - 2/x + -y + log(e) * 2 ** x + x ** y")


@pytest.fixture
def dual(monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    """tests/data/adapter_dual.py, importable as ``adapter_dual`` (a forward-mode third-party engine)."""
    monkeypatch.syspath_prepend(str(DATA))
    return importlib.import_module("adapter_dual")


# -- resolve: every spec form --------------------------------------------------------------------------


def test_builtin_is_gradspecs_value_class() -> None:
    engine = resolve("builtin")
    assert isinstance(engine, ValueClassEngine)
    assert engine.cls is Value
    assert engine.name == "builtin"
    assert engine.eps == FLOAT64_EPS == 2.0**-52
    assert FLOAT32_EPS == 2.0**-23


def test_module_spec_for_a_value_class(engines: ModuleType) -> None:
    engine = resolve("engines:Same")
    assert isinstance(engine, ValueClassEngine)
    assert engine.cls is engines.Same
    assert engine.name == "engines:Same"
    result = check("x * y + tanh(x)", {"x": 0.5, "y": -2}, engine="engines:Same")
    assert result.verdict is Verdict.PASS, result.table()
    assert result.engine == "engines:Same"


def test_module_spec_for_an_engine_subclass_and_an_instance(dual: ModuleType) -> None:
    made = resolve("adapter_dual:DualEngine")
    assert type(made) is dual.DualEngine
    assert made.options == ""
    assert made.name == "dual"
    assert resolve("adapter_dual:ENGINE") is dual.ENGINE
    assert dual.ENGINE.options == "instance"


def test_module_spec_with_a_dotted_attribute(dual: ModuleType, monkeypatch: pytest.MonkeyPatch) -> None:
    holder = type("Holder", (), {"Inner": dual.DualEngine})
    monkeypatch.setattr(dual, "Holder", holder, raising=False)
    assert type(resolve("adapter_dual:Holder.Inner")) is dual.DualEngine


def test_objects_resolve_to_themselves_or_their_engine(engines: ModuleType, dual: ModuleType) -> None:
    instance = dual.DualEngine("mine")
    assert resolve(instance) is instance
    made = resolve(dual.DualEngine)
    assert type(made) is dual.DualEngine and made is not instance
    value_engine = resolve(engines.Same)
    assert isinstance(value_engine, ValueClassEngine)
    assert value_engine.cls is engines.Same
    assert value_engine.name == "engines:Same"
    assert resolve(Value).name == "gradspec.engine:Value"


def test_unknown_spec_names_the_known_engines() -> None:
    with pytest.raises(EngineError) as info:
        resolve("no-such-engine")
    message = str(info.value)
    assert message == ("unknown engine 'no-such-engine'; use one of builtin, torch, jax, tinygrad, micrograd, "
                       "'module.path:ClassName' or 'path/to/file.py:ClassName'")


_FILE_ENGINE = '''
from helper import scale  # a neighbour of the file: its folder is importable while it loads

class Value:
    def __init__(self, data, _children=()):
        self.data, self.grad, self._prev, self._backward = data, 0.0, _children, lambda: None

    def __add__(self, other):
        other = other if isinstance(other, Value) else Value(other)
        out = Value(self.data + other.data, (self, other))
        def _backward():
            self.grad += out.grad
            other.grad += out.grad
        out._backward = _backward
        return out

    def __mul__(self, other):
        other = other if isinstance(other, Value) else Value(other)
        out = Value(self.data * other.data, (self, other))
        def _backward():
            self.grad += other.data * out.grad * scale
            other.grad += self.data * out.grad * scale
        out._backward = _backward
        return out

    __radd__, __rmul__ = __add__, __mul__

    def backward(self):
        order, seen = [], set()
        def visit(v):
            if v not in seen:
                seen.add(v)
                for c in v._prev:
                    visit(c)
                order.append(v)
        visit(self)
        self.grad = 1.0
        for v in reversed(order):
            v._backward()
'''


def test_engine_by_file_path_relative_and_absolute(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "engines").mkdir()
    (tmp_path / "project").mkdir()
    (tmp_path / "engines" / "myeng.py").write_text(_FILE_ENGINE, encoding="utf-8")
    (tmp_path / "engines" / "helper.py").write_text("scale = 1.0\n", encoding="utf-8")
    monkeypatch.chdir(tmp_path / "project")
    relative = resolve("../engines/myeng.py:Value")
    assert isinstance(relative, ValueClassEngine)
    assert relative.name == "../engines/myeng.py:Value"
    assert check("x * y + x", {"x": 2, "y": 3}, engine=relative).verdict is Verdict.PASS
    absolute = resolve(f"{tmp_path / 'engines' / 'myeng.py'}:Value")
    assert isinstance(absolute, ValueClassEngine)
    assert absolute.cls is relative.cls  # one module per file, however it is named
    assert str(tmp_path / "engines") not in sys.path  # the folder was importable only while the file loaded
    with pytest.raises(EngineError) as info:
        resolve("../engines/missing.py:Value")
    assert str(info.value) == ("cannot import engine module '../engines/missing.py': FileNotFoundError: no such "
                               f"file: {tmp_path / 'engines' / 'missing.py'}")
    with pytest.raises(EngineError, match="has no 'Nope'"):
        resolve("../engines/myeng.py:Nope")


@pytest.mark.parametrize("spec", [42, None, 1.5, ["builtin"]])
def test_not_an_engine(spec: object) -> None:
    with pytest.raises(EngineError, match="not an engine"):
        resolve(spec)  # type: ignore[arg-type]


def test_module_that_fails_to_import(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "adapter_broken_on_import.py").write_text("ENGINE = 1 / 0\n", encoding="utf-8")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "adapter_broken_on_import", raising=False)
    with pytest.raises(EngineError) as info:
        resolve("adapter_broken_on_import:ENGINE")
    assert str(info.value) == "cannot import engine module 'adapter_broken_on_import': ZeroDivisionError: division by zero"
    assert isinstance(info.value.__cause__, ZeroDivisionError)


def test_module_that_does_not_exist() -> None:
    with pytest.raises(EngineError) as info:
        resolve("gradspec_no_such_module_xyz:Value")
    assert str(info.value).startswith("cannot import engine module 'gradspec_no_such_module_xyz': ModuleNotFoundError")


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("engines:Nope", "module 'engines' has no 'Nope'"),
        ("engines:Same.nope", "module 'engines' has no 'Same.nope'"),
        ("engines:_Missing", "'engines:_Missing' is not a Value class: it needs backward(), + and *"),
        ("engines:_OPS", "'engines:_OPS' is neither a Value class nor an engine"),
    ],
)
def test_module_spec_errors(engines: ModuleType, spec: str, message: str) -> None:
    with pytest.raises(EngineError) as info:
        resolve(spec)
    assert str(info.value) == message


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("torch:bogus", "unknown torch option 'bogus'; use float32, float64, cpu or cuda"),
        ("torch:float32:bogus", "unknown torch option 'bogus'; use float32, float64, cpu or cuda"),
        ("jax:float16", "unknown jax option 'float16'; use float32 or float64"),
        ("tinygrad:int8", "unknown tinygrad option 'int8'; use float32 or float64"),
        ("micrograd:fast", "micrograd takes no options, got 'fast'"),
    ],
)
def test_adapter_options_are_checked_before_the_library_is_imported(spec: str, message: str) -> None:
    with pytest.raises(EngineError) as info:
        resolve(spec)
    assert str(info.value) == message


# -- entry points -----------------------------------------------------------------------------------------


@dataclass
class FakeEntryPoint:
    name: str
    value: str
    target: Any

    def load(self) -> Any:
        if isinstance(self.target, BaseException):
            raise self.target
        return self.target


@pytest.fixture
def register(monkeypatch: pytest.MonkeyPatch) -> Callable[..., list[dict[str, Any]]]:
    """Replace the installed ``gradspec.engines`` entry points with fakes; returns the recorded calls."""

    def install(*eps: FakeEntryPoint) -> list[dict[str, Any]]:
        calls: list[dict[str, Any]] = []

        def entry_points(**kwargs: Any) -> list[FakeEntryPoint]:
            calls.append(kwargs)
            return list(eps) if kwargs.get("group") == "gradspec.engines" else []

        monkeypatch.setattr(engines_module, "entry_points", entry_points)
        return calls

    return install


def test_entry_point_engine_class_is_found_by_name(register: Callable[..., Any], dual: ModuleType) -> None:
    calls = register(FakeEntryPoint("other", "elsewhere:Engine", RuntimeError("must not be loaded")),
                     FakeEntryPoint("dual", "adapter_dual:DualEngine", dual.DualEngine))
    engine = resolve("dual")
    assert type(engine) is dual.DualEngine
    assert engine.options == ""
    assert calls == [{"group": "gradspec.engines"}]
    with_options = resolve("dual:fast:float32")
    assert type(with_options) is dual.DualEngine
    assert with_options.options == "fast:float32"  # everything after the name goes to the factory
    result = check("sin(x) * y", {"x": 1, "y": 2}, engine="dual")
    assert result.verdict is Verdict.PASS and result.engine == "dual"


def test_entry_point_factory_may_return_a_value_class_or_an_instance(register: Callable[..., Any],
                                                                     dual: ModuleType) -> None:
    seen: list[tuple[str, ...]] = []

    def value_factory(*options: str) -> type:
        seen.append(options)
        return Value

    instance = dual.DualEngine("from factory")
    register(FakeEntryPoint("mine", "pkg:value_factory", value_factory),
             FakeEntryPoint("inst", "pkg:instance", lambda *options: instance))
    engine = resolve("mine")
    assert isinstance(engine, ValueClassEngine) and engine.cls is Value
    resolve("mine:opt")
    assert seen == [(), ("opt",)]
    assert resolve("inst") is instance


def test_entry_point_that_fails_to_load(register: Callable[..., Any]) -> None:
    register(FakeEntryPoint("broken", "broken_pkg:Engine", ImportError("No module named 'broken_pkg'")))
    with pytest.raises(EngineError) as info:
        resolve("broken")
    assert str(info.value) == ("engine 'broken' from entry point 'broken_pkg:Engine' failed to load: "
                               "No module named 'broken_pkg'")
    with pytest.raises(EngineError, match="failed to load"):
        check("x", {"x": 1}, engine="broken")


def test_unmatched_name_with_entry_points_installed_is_unknown(register: Callable[..., Any],
                                                               dual: ModuleType) -> None:
    register(FakeEntryPoint("dual", "adapter_dual:DualEngine", dual.DualEngine))
    with pytest.raises(EngineError, match="unknown engine 'duel'"):
        resolve("duel")


def test_builtin_and_adapter_names_come_before_entry_points(register: Callable[..., Any]) -> None:
    register(FakeEntryPoint("builtin", "x:y", RuntimeError("shadowed")),
             FakeEntryPoint("micrograd", "x:y", RuntimeError("shadowed")))
    assert resolve("builtin").name == "builtin"
    with pytest.raises(EngineError, match="micrograd takes no options"):
        resolve("micrograd:opt")


# -- unavailable engines ------------------------------------------------------------------------------------


def test_unavailable_engine_skips_every_check_with_its_reason(kinds_file: Path) -> None:
    ghost = Unavailable("ghost", "ghost is not installed (pip install ghost)")
    assert ghost.name == "ghost"
    result = check(EVERY_OP, {"x": 0.8, "y": 1.3}, engine=ghost)
    assert (result.verdict, result.message, result.quantities) == (Verdict.SKIP, ghost.reason, ())
    kinds = set()
    for case in load_file(kinds_file).cases:
        for r in run_case(case, ghost):
            assert r.verdict is Verdict.SKIP, r.table()
            assert r.message == "ghost is not installed (pip install ghost)"
            assert r.engine == "ghost"
            kinds.add(r.kind)
    assert kinds == {"gradient", "stationary", "linearity", "chain-rule", "deep", "training"}


def test_a_domain_error_is_reported_before_an_engine_is_consulted() -> None:
    ghost = Unavailable("ghost", "not here")
    result = check("log(x)", {"x": -1}, engine=ghost)
    assert result.verdict is Verdict.ERROR
    assert result.message == "log needs x > 0, got x = -1.0 (in log(x))"


# -- Engine.run --------------------------------------------------------------------------------------------


@pytest.fixture
def recording(dual: ModuleType) -> type:
    class Recording(dual.DualEngine):
        """Records the tape positions gradients() is asked for."""

        def __init__(self) -> None:
            super().__init__()
            self.asked: list[list[int]] = []

        def gradients(self, out: Any, nodes: Sequence[Any]) -> list[float | None]:
            self.asked.append([n.index for n in nodes])
            return super().gradients(out, nodes)

    return Recording


def test_run_reports_zero_for_unused_inputs_and_intermediates(recording: type) -> None:
    graph = prepare("a = x*y; b = x + 1; b", ["x", "y", "z"])
    engine = recording()
    outcome = engine.run(graph, {"x": 2.0, "y": 3.0, "z": 5.0})
    assert outcome.value == 3.0
    assert outcome.grads == {"x": 1.0, "y": 0.0, "z": 0.0, "a": 0.0, "b": 1.0}
    assert all(type(g) is float for g in outcome.grads.values())
    # tape: x, y, z (leaves) then a = x*y, b = x + 1: only x and b are asked for
    assert engine.asked == [[0, 4]]


def test_run_on_a_constant_output_never_backpropagates(recording: type) -> None:
    graph = prepare("a = x*y; 2 + 3", ["x", "y"])
    engine = recording()
    outcome = engine.run(graph, {"x": 2.0, "y": 3.0})
    assert outcome.value == 5.0
    assert outcome.grads == {"x": 0.0, "y": 0.0, "a": 0.0}
    assert engine.asked == []


def test_unused_nodes_through_check_and_a_value_class() -> None:
    result = check("a = x*y; b = x + 1; b", {"x": 2, "y": 3, "z": 5})
    assert result.verdict is Verdict.PASS, result.table()
    grads = {q.name: q.engine for q in result.quantities}
    assert grads == {"value": 3.0, "x": 1.0, "y": 0.0, "z": 0.0, "a": 0.0, "b": 1.0}


def test_engine_defaults_apply_ops_the_way_the_op_table_spells_them() -> None:
    engine = Engine()
    assert engine.const(2.5) == 2.5
    assert engine.missing(OPS["tanh"], True) is None
    assert engine.apply(OPS["sub"], [2.0, 3.5]) == -1.5
    assert engine.apply(OPS["pow"], [2.0, 10.0]) == 1024.0
    t = engine.apply(OPS["tanh"], [Value(0.5)])
    assert isinstance(t, Value) and t.data == pytest.approx(math.tanh(0.5), rel=1e-15)
    with pytest.raises(NotImplementedError):
        engine.leaf(1.0)


# -- a third-party engine, end to end ------------------------------------------------------------------------


def test_third_party_engine_covers_the_op_table() -> None:
    # the table's basic rows; the special functions and activations (gradspec.ops.special_rows) are checked
    # on every engine by the library's activations file
    from gradspec.ops.special_rows import ROWS as SPECIAL

    ops = {s.op for s in prepare(EVERY_OP, ["x", "y"]).steps if isinstance(s, Apply)}
    assert ops == set(OPS) - {row.name for row in SPECIAL}


@pytest.mark.parametrize("point", [{"x": 0.8, "y": 1.3}, {"x": 2.5, "y": 2.0}, {"x": 1.2, "y": -0.4}])
def test_third_party_engine_runs_check(dual: ModuleType, point: dict[str, float]) -> None:
    engine = dual.DualEngine()
    result = check(EVERY_OP, point, engine=engine)
    assert result.verdict is Verdict.PASS, result.table()
    assert result.engine == "dual"
    assert [q.name for q in result.quantities] == ["value", "x", "y", "u", "v", "w", "r", "s", "t", "e"]
    for q in result.quantities:
        assert q.engine == pytest.approx(q.exact, rel=1e-12, abs=1e-12), q
    # one forward replay per gradient and one for the value, in each of the check's two runs
    assert engine.replays == 2 * len(result.quantities)
    # the same numbers as gradspec's own reverse-mode engine
    builtin = {q.name: q.engine for q in check(EVERY_OP, point).quantities}
    assert {q.name: q.engine for q in result.quantities} == pytest.approx(builtin, rel=1e-12, abs=1e-12)


def test_third_party_engine_reports_a_missing_op_as_a_skip(dual: ModuleType, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delitem(dual._RULES, "cos")
    result = check("cos(x) + x", {"x": 1}, engine=dual.DualEngine())
    assert (result.verdict, result.message) == (Verdict.SKIP, "dual numbers have no cos")


def test_third_party_engine_runs_a_case_file_of_every_kind(dual: ModuleType, kinds_file: Path) -> None:
    engine = resolve("adapter_dual:DualEngine")
    kinds = set()
    for case in load_file(kinds_file).cases:
        results = run_case(case, engine)
        assert len(results) == max(1, len(case.points))
        for r in results:
            assert r.verdict is Verdict.PASS, r.table()
            assert r.engine == "dual"
            kinds.add(r.kind)
    assert kinds == {"gradient", "stationary", "linearity", "chain-rule", "deep", "training"}


def test_third_party_engine_runs_a_gradient_case_file(dual: ModuleType, write_case: Callable[..., Path]) -> None:
    path = write_case(textwrap.dedent("""
        version: 1
        cases:
          - id: exact-intermediates
            expr: |
              s = x + y
              p = s * s
              q = 3 * p
              q
            at: {x: 0.5, y: 0.5}
            expect: {value: 3, grad: {q: 1, p: 3, s: 6, x: 6, y: 6}}
          - id: sampled
            expr: a = sin(x) * y; b = exp(a) / (1 + y ** 2); log(b + 2) - sqrt(abs(a) + 1)
            sample:
              count: 10
              vars: {x: {uniform: [-3, 3]}, y: {uniform: [-3, 3]}}
          - id: relu-kink
            expr: relu(x) + abs(y)
            at: {x: 0, y: 0}
            kink: convention
            expect: {value: 0, grad: {x: 0, y: 0}}
          - id: sqrt-at-zero
            expr: sqrt(x)
            at: {x: 0}
          - id: domain
            expr: log(x)
            at: {x: -1}
            expect: {error: domain}
    """), "third-party.gradspec.yaml")
    engine = dual.DualEngine()
    results = {c.id: run_case(c, engine) for c in load_file(path).cases}
    assert [len(r) for r in results.values()] == [1, 10, 1, 1, 1]
    for case_id in ("exact-intermediates", "sampled", "relu-kink", "sqrt-at-zero"):
        for r in results[case_id]:
            assert r.verdict is Verdict.PASS, r.table()
    (exact,) = results["exact-intermediates"]
    assert {q.name: q.engine for q in exact.quantities} == {"value": 3.0, "x": 6.0, "y": 6.0, "s": 6.0, "p": 3.0, "q": 1.0}
    (root,) = results["sqrt-at-zero"]
    assert [q.engine for q in root.quantities] == [0.0, math.inf]
    # outside log's domain the dual engine raises ValueError (math.log), as the case expects
    (domain,) = results["domain"]
    assert domain.verdict is Verdict.PASS
    assert "engine raised ValueError as expected" in domain.message


def test_third_party_engine_and_a_wrong_rule_fails_where_it_is_wrong(dual: ModuleType,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(dual._RULES, "sin", lambda a: (math.sin(a), -math.cos(a)))  # sign error in sin'
    result = check("a = sin(x); b = a * y; b + x", {"x": 0.5, "y": 2}, engine=dual.DualEngine())
    assert result.verdict is Verdict.FAIL
    verdicts = {q.name: q.verdict for q in result.quantities}
    assert verdicts == {"value": Verdict.PASS, "x": Verdict.FAIL, "y": Verdict.PASS, "a": Verdict.PASS,
                        "b": Verdict.PASS}
    (x,) = [q for q in result.quantities if q.name == "x"]
    assert x.engine == pytest.approx(1 - 2 * math.cos(0.5), rel=1e-14)
    assert x.exact == pytest.approx(1 + 2 * math.cos(0.5), rel=1e-14)


def test_a_value_class_with_both_spellings_is_run_with_each(engines: ModuleType) -> None:
    engine = ValueClassEngine(engines.AbsDunderSignless)
    graph = prepare("abs(x) * 3 + x", ["x"])
    assert engine.second_spellings(graph) == ("__abs__",)
    outcome = engine.run(graph, {"x": -2.0})
    assert outcome.grads["x"] == -2.0  # x.abs()
    assert list(outcome.spelled) == ["__abs__"]
    assert outcome.spelled["__abs__"].grads["x"] == 4.0  # abs(x): the unsigned __abs__
    assert outcome.spelled["__abs__"].value == outcome.value == 4.0
    # no second spelling in the graph, or a class without __abs__: built once
    assert engine.second_spellings(prepare("x * 3", ["x"])) == ()
    assert engine.run(prepare("x * 3", ["x"]), {"x": 1.0}).spelled == {}


    class MethodOnly:
        def abs(self) -> MethodOnly:
            return self

    assert ValueClassEngine(MethodOnly).second_spellings(graph) == ()


# -- what an engine returned, what it raised, and what it does not report -------------------------------------


def test_a_non_number_from_the_engine_is_not_called_an_engine_error(misbehaving: ModuleType) -> None:
    result = check("exp(x)", {"x": 1}, engine="misbehaving:ComplexExp")
    assert result.verdict is Verdict.FAIL
    assert not result.message.startswith("engine raised")
    # exp's partial is its output, so the complex data reaches the gradient too, which is read first
    assert result.message.startswith("engine returned a non-number as a gradient: (2.718281828459045+0j) (complex), "
                                     "which float() rejects: ")


NEGATIVE_BASE = """
cases:
  - id: negative-base
    expr: x ** y
    at: {x: -8, y: 0.5}
    expect: {error: domain}
"""


def test_pow_raising_on_a_complex_result_is_not_a_missing_value_exponent(
        misbehaving: ModuleType, write_case: Callable[..., Path]) -> None:
    case = load_file(write_case(NEGATIVE_BASE)).cases[0]
    (result,) = run_case(case, resolve("misbehaving:ComplexPow"))
    # the engine takes a Value exponent (it does at 0.5 ** 0.5); here it raised, as the domain case expects
    assert result.verdict is Verdict.PASS, result.table()
    assert result.message == ("outside the domain (pow of a negative base needs an integer exponent, got 0.5 (in "
                              "pow(x, y))); engine raised TypeError as expected")
    (plain,) = run_case(case, resolve("engines:Same"))
    assert plain.verdict is Verdict.PASS


def test_an_engine_without_value_exponents_still_skips_them(write_case: Callable[..., Path]) -> None:
    class NoValueExponent(Value):
        def __pow__(self, other: Any) -> Value:
            assert isinstance(other, int | float), "only int/float powers"
            return Value.__pow__(self, other)

    case = load_file(write_case(NEGATIVE_BASE)).cases[0]
    (result,) = run_case(case, resolve(NoValueExponent))
    assert result.verdict is Verdict.SKIP
    assert result.message.startswith("engine's ** does not take a Value exponent: only int/float powers")


def test_gradients_an_engine_does_not_keep_are_not_reported(misbehaving: ModuleType) -> None:
    engine = resolve("misbehaving:LeafGradients")
    graph = prepare("a = x * y; b = a + x; b * y", ["x", "y"])
    outcome = engine.run(graph, {"x": 2.0, "y": 3.0}, every_node=True)
    assert outcome.grads == {"x": 12.0, "y": 14.0, "a": None, "b": None}
    assert {g for i, g in outcome.node_grads.items() if isinstance(graph.steps[i], Apply)} == {None}
    result = check("a = x * y; b = a + x; b * y", {"x": 2, "y": 3}, engine=engine)
    assert result.verdict is Verdict.SKIP  # x and y pass; a and b are not reported, so not everything passed
    assert [q.verdict.value for q in result.quantities] == ["pass", "pass", "pass", "skip", "skip"]


def test_a_value_class_with_only_the_builtin_spelling_is_run_with_it(engines: ModuleType) -> None:
    engine = ValueClassEngine(engines.AbsDunderOnlyMutates)
    assert engine.missing(OPS["abs"], True) is None  # abs(x) through __abs__: no "engine has no abs"
    graph = prepare("abs(x) * 3 + x", ["x"])
    assert engine.second_spellings(graph) == ()  # one spelling: built once, with it
    outcome = engine.run(graph, {"x": -2.0})
    assert (outcome.value, outcome.grads["x"]) == (8.0, 4.0)  # |x| mutated x in place; no node, so d/dx = 3 + 1
    result = check("abs(x) * 3 + x", {"x": -2.0}, engine=engine)
    assert result.verdict is Verdict.FAIL
    assert {q.name: q.verdict for q in result.quantities} == {"value": Verdict.FAIL, "x": Verdict.FAIL}


def test_a_class_with_neither_spelling_says_so() -> None:
    class Neither:
        pass

    assert ValueClassEngine(Neither).missing(OPS["abs"], True) == "engine has no abs"
