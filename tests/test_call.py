"""The guarded engine call: time limit, exceptions as verdicts, protocol checks, and that it is the only door."""

from __future__ import annotations

import ast
import importlib.util
import math
from pathlib import Path

import pytest

from gradspec import Verdict
from gradspec.checks.check import prepare
from gradspec.engine import Value
from gradspec.engines import call
from gradspec.engines.protocol import Engine, Outcome, Unsupported, ValueClassEngine
from gradspec.limits import LIMITS, TimeLimit

PACKAGE = Path(__file__).resolve().parent.parent / "gradspec"
ENGINE_METHODS = {"run", "run_batch", "run_tensor", "gradients", "value", "derivatives"}
# The implementations of the protocol (a function under test is wrapped as an engine) call their own
# primitives; everything else goes through the door.
IMPLEMENTATIONS = {"engines/call.py", "engines/protocol.py", "engines/tensor.py", "engines/function.py", "engines/modes.py"}
# Receivers in the package that have a ``run`` method and are not engines: the kind table's rows, the
# case-file loaders and the worker pool. Imported modules (the guarded call itself) are never engines.
NOT_ENGINES = ("KINDS[", "_Loader(", "_CaseLoader(", "_Pool(")


def _modules(tree: ast.AST) -> set[str]:
    """The names a module binds to other modules (``import a.b as c``, ``from gradspec.engines import call``)."""
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(a.asname or a.name.split(".")[0] for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.update(a.asname or a.name for a in node.names if _is_module(f"{node.module}.{a.name}"))
    return names


def _is_module(dotted: str) -> bool:
    try:
        return importlib.util.find_spec(dotted) is not None
    except ModuleNotFoundError:  # its parent is a module, not a package
        return False


def direct_engine_calls(source: str) -> list[str]:
    """``x.run(...)``-style calls (and ``getattr(x, "run")``) in ``source``, as ``receiver.method`` text."""
    tree = ast.parse(source)
    modules = _modules(tree)
    found = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        if isinstance(func, ast.Attribute) and func.attr in ENGINE_METHODS:
            receiver = ast.unparse(func.value)
            if receiver not in modules and not receiver.startswith(NOT_ENGINES):
                found.append(f"{receiver}.{func.attr}")
        elif isinstance(func, ast.Name) and func.id == "getattr" and len(node.args) >= 2:
            name = node.args[1]
            if isinstance(name, ast.Constant) and name.value in ENGINE_METHODS:
                found.append(f"getattr({ast.unparse(node.args[0])}, {name.value!r})")
    return found


def test_no_module_but_the_guarded_call_calls_an_engine() -> None:
    offenders = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = path.relative_to(PACKAGE).as_posix()
        if rel in IMPLEMENTATIONS or rel.startswith("engines/adapters/"):
            continue
        calls = direct_engine_calls(path.read_text())
        if calls:
            offenders[rel] = calls
    assert offenders == {}


def test_the_walk_finds_direct_calls() -> None:
    # The walk above must be able to fail: it sees each way of calling an engine directly.
    source = "engine.run(g, p)\nself.engine.gradients(out, n)\nx = e.value(n)\ngetattr(engine, 'run_batch')\n_Pool(a).run(b)\n"
    source += "from gradspec.engines import call\ncall.run(e, g, p)\nKINDS[k].run(c, p, e)\n"
    assert direct_engine_calls(source) == ["engine.run", "self.engine.gradients", "e.value", "getattr(engine, 'run_batch')"]
    assert "engine.run" in direct_engine_calls((PACKAGE / "engines" / "call.py").read_text())


# -- what one guarded call returns --------------------------------------------------------------------

GRAPH = prepare("x * y + x", ["x", "y"])


class Scripted(Engine):
    """An engine whose run does what a test tells it to."""

    name = "scripted"

    def __init__(self, behave) -> None:  # type: ignore[no-untyped-def]
        self.behave = behave

    def run(self, graph, point, *, every_node=False):  # type: ignore[no-untyped-def]
        return self.behave()


def test_a_returning_engine_gives_its_outcome_and_the_time_taken() -> None:
    called = call.run(ValueClassEngine(Value, "builtin"), GRAPH, {"x": 2.0, "y": 3.0})
    assert called.ok and called.verdict is None and called.message == ""
    assert called.get().value == 8.0
    assert called.get().grads == {"x": 4.0, "y": 2.0}
    assert called.seconds >= 0.0


def test_an_engine_that_raises_fails_with_the_exception_named() -> None:
    def boom() -> Outcome:
        raise ZeroDivisionError("float division by zero")

    called = call.run(Scripted(boom), GRAPH, {"x": 2.0, "y": 3.0})
    assert called.verdict is Verdict.FAIL
    assert called.message == "engine raised ZeroDivisionError: float division by zero"
    assert called.raised and not called.timed_out
    assert called.value is None


def test_recursion_error_is_a_failure_too() -> None:
    def deep() -> Outcome:
        return deep()

    called = call.run(Scripted(deep), GRAPH, {"x": 2.0, "y": 3.0})
    assert called.verdict is Verdict.FAIL
    assert called.message.startswith("engine raised RecursionError")


def test_unsupported_skips_with_the_engines_reason() -> None:
    def no() -> Outcome:
        raise Unsupported("engine has no tanh")

    called = call.run(Scripted(no), GRAPH, {"x": 2.0, "y": 3.0})
    assert (called.verdict, called.message) == (Verdict.SKIP, "engine has no tanh")
    assert not called.raised


def test_an_engine_that_cannot_run_the_graph_is_skipped_before_it_runs() -> None:
    ran = []

    class NoMul(Scripted):
        def unsupported(self, graph):  # type: ignore[no-untyped-def]
            return "engine has no __mul__"

    called = call.run(NoMul(lambda: ran.append(1)), GRAPH, {"x": 2.0, "y": 3.0})
    assert (called.verdict, called.message, ran) == (Verdict.SKIP, "engine has no __mul__", [])


def test_a_point_beyond_float32_is_skipped_unless_the_caller_wants_the_engine_to_see_it() -> None:
    class Float32(ValueClassEngine):
        eps = 2.0**-23

    engine = Float32(Value, "f32")
    called = call.run(engine, GRAPH, {"x": 1e300, "y": 1.0})
    assert called.verdict is Verdict.SKIP
    assert called.message == "input x = 1e+300 is not representable in float32, the engine's precision"
    assert call.run(engine, GRAPH, {"x": 1e300, "y": 1.0}, representable=False).ok


def test_an_engine_that_never_returns_is_stopped(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(LIMITS, "engine", 0.2)

    def forever() -> Outcome:
        while True:
            pass

    called = call.run(Scripted(forever), GRAPH, {"x": 2.0, "y": 3.0})
    assert called.verdict is Verdict.FAIL
    assert called.message == "engine did not finish within 0.2 s"
    assert called.timed_out and not called.raised
    assert isinstance(called.error, TimeLimit)
    assert 0.15 < called.seconds < 5


@pytest.mark.parametrize(("answer", "problem"), [
    ({"value": 1.0}, "run() returned dict, not an Outcome"),
    (Outcome("1.0", {}), "the value is str '1.0', not a float"),
    (Outcome(1.0, {"x": "2"}), "the gradient of x is str '2', not a float"),
    (Outcome(True, {}), "the value is bool True, not a float"),
])
def test_an_answer_outside_the_protocol_fails(answer: object, problem: str) -> None:
    called = call.run(Scripted(lambda: answer), GRAPH, {"x": 2.0, "y": 3.0})
    assert called.verdict is Verdict.FAIL
    assert called.message == f"engine broke the protocol: {problem}"
    assert not called.raised


def test_an_engine_whose_run_takes_no_every_node_is_called_without_it() -> None:
    class Plain(Engine):
        def run(self, graph, point):  # type: ignore[no-untyped-def, override]
            return Outcome(point["x"] * point["y"], {"x": point["y"], "y": point["x"]})

    assert call.run(Plain(), GRAPH, {"x": 2.0, "y": 3.0}).get().grads == {"x": 3.0, "y": 2.0}


def test_a_batch_answer_that_has_no_length_breaks_the_protocol() -> None:
    class Scalar(Engine):
        def run_batch(self, graph, columns):  # type: ignore[no-untyped-def]
            return 1.0, {"x": 1.0, "y": 1.0}

    called = call.batch(Scalar(), GRAPH, {"x": [1.0], "y": [2.0]})
    assert called is not None and called.verdict is Verdict.FAIL and not called.raised
    assert called.message == "engine broke the protocol: object of type 'float' has no len()"


def test_a_missing_gradient_is_allowed_and_nan_is_a_float() -> None:
    called = call.run(Scripted(lambda: Outcome(math.nan, {"x": None})), GRAPH, {"x": 2.0, "y": 3.0})
    assert called.ok and called.get().grads == {"x": None}


def test_steps_builds_with_the_engines_primitives_and_reads_value_and_gradients() -> None:
    engine = ValueClassEngine(Value, "builtin")

    def build():  # type: ignore[no-untyped-def]
        x, y = engine.leaf(2.0), engine.leaf(5.0)
        return x * y, [x, y]

    assert call.steps(engine, build).get() == (10.0, [5.0, 2.0])
    assert call.steps(engine, build, backward=False).get() == (10.0, [])


def test_batch_is_none_for_an_engine_without_a_batch_mode_and_checks_the_shape() -> None:
    assert call.batch(ValueClassEngine(Value, "builtin"), GRAPH, {"x": [1.0], "y": [2.0]}) is None

    class Short(Engine):
        def run_batch(self, graph, columns):  # type: ignore[no-untyped-def]
            return [1.0], {"x": [1.0], "y": [1.0]}

    called = call.batch(Short(), GRAPH, {"x": [1.0, 2.0], "y": [3.0, 4.0]})
    assert called is not None and called.verdict is Verdict.FAIL
    assert called.message == "engine broke the protocol: run_batch() must return 2 values and 2 gradients per input"
