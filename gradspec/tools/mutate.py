"""Mutation testing of a case library against gradient mutants of the built-in engine.

Each mutant is the source of :mod:`gradspec.engine` with one plausible gradient bug written in: an
assignment for an accumulation, a flipped sign, a wrong or dropped factor, swapped operands, a wrong
traversal order, a recursion that dies on deep graphs, a changed kink convention, a forward formula
that overflows. A library *kills* a mutant when at least one of its checks fails on it, or reports a
convention difference; the score is the share of mutants killed.

The mutated source is gradspec's own engine, compiled into a fresh module: no case text is ever
executed.
"""

from __future__ import annotations

import functools
import importlib.util
import inspect
import multiprocessing
import sys
import time
import types
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

from gradspec import engine as _engine
from gradspec import engine_graph as _engine_graph
from gradspec.casefile.model import Case
from gradspec.checks.kinds import KINDS
from gradspec.engines.protocol import Engine, ValueClassEngine
from gradspec.graph.ir import Apply
from gradspec.results import Verdict
from gradspec.run.runner import run_point
from gradspec.run.workers import _single_threaded  # the worker pool's own test of when forking is safe

__all__ = ["MUTANTS", "Mutant", "MutationReport", "build", "mutate"]


@dataclass(frozen=True)
class Mutant:
    name: str
    description: str
    old: str  # a snippet of gradspec/engine.py or engine_graph.py, present exactly once in the two
    new: str
    # Which cases can kill it, tried first: op-table ops whose gradient it changes, "rsub"/"rdiv" for a
    # number on the left of - or /, "deep" for deep graphs; empty: any case.
    targets: tuple[str, ...] = ()


_RECURSIVE_TOPOLOGICAL = '''

def _recursive_topological(root: Value) -> list[Value]:
    order: list[Value] = []
    seen: set[int] = set()

    def visit(node: Value) -> None:
        if id(node) not in seen:
            seen.add(id(node))
            for p in node._parents:
                visit(p)
            order.append(node)

    visit(root)
    return order
'''

_ACCUMULATE = "                parent.grad += (d.data if isinstance(d, Value) else d) * g"

MUTANTS: tuple[Mutant, ...] = (
    Mutant("accumulate-assign", "backward assigns (=) a parent's gradient instead of accumulating (+=) it",
           _ACCUMULATE, _ACCUMULATE.replace("+=", "="), targets=()),
    Mutant("chain-drop", "backward drops the chain factor: the partial alone, not times the incoming gradient",
           _ACCUMULATE, _ACCUMULATE.replace(" * g", ""), targets=()),
    Mutant("add-drop", "add passes the gradient to its left operand only", "    return 1.0, 1.0",
           "    return 1.0, 0.0", targets=("add",)),
    Mutant("mul-swapped", "mul's partials are each operand's own value instead of the other operand's",
           "    return y, x\n", "    return x, y\n", targets=("mul",)),
    Mutant("sub-sign", "sub's partial for its right operand is +1", "    return 1.0, -1.0",
           "    return 1.0, 1.0", targets=("sub",)),
    Mutant("neg-sign", "neg passes the gradient through unchanged", "    return (-1.0,)",
           "    return (1.0,)", targets=("neg",)),
    Mutant("div-square", "d(a/b)/db drops a factor 1/b: -a/b instead of -a/b**2",
           "    return 1 / y, -out / y", "    return 1 / y, -out._parents[0] / y", targets=("div",)),
    Mutant("div-swapped", "d(a/b)/da uses a instead of b", "return 1 / y, ", "return 1 / x, ", targets=("div",)),
    Mutant("pow-factor", "d(x**n)/dx = (n - 1) * x**(n - 1)", "(n * x ** (n - 1) if n else None,)",
           "((n - 1) * x ** (n - 1) if n else None,)", targets=("pow",)),
    Mutant("pow-log", "d(x**y)/dy drops the log(x) factor", "dy = out * x.log()", "dy = out", targets=("pow",)),
    Mutant("tanh-sign", "tanh' = 1 + t**2", "return (1 - out * out,)", "return (1 + out * out,)", targets=("tanh",)),
    Mutant("log-square", "log' = 1/x**2", "return (1 / x,)", "return (1 / (x * x),)", targets=("log",)),
    Mutant("sigmoid-factor", "sigmoid' near 0 is (1 - tanh(x/2)**2)/2, twice the right value",
           "return ((1 - t * t) / 4,)", "return ((1 - t * t) / 2,)", targets=("sigmoid",)),
    Mutant("cos-sign", "cos' = +sin", "return (-x.sin(),)", "return (x.sin(),)", targets=("cos",)),
    Mutant("sin-shift", "sin' = -cos", "return (x.cos(),)", "return (-x.cos(),)", targets=("sin",)),
    Mutant("sqrt-factor", "sqrt' = 1/sqrt(x)", "return (0.5 / out,)", "return (1.0 / out,)", targets=("sqrt",)),
    Mutant("abs-sign", "abs' = 1 everywhere", "return (0.0 if x.data == 0 else math.copysign(1.0, x.data),)",
           "return (1.0,)", targets=("abs",)),
    Mutant("relu-kink", "relu'(0) = 1 instead of the declared 0", "return (1.0 if x.data > 0 else 0.0,)",
           "return (1.0 if x.data >= 0 else 0.0,)", targets=("relu",)),
    Mutant("rsub-swapped", "number - Value computes Value - number", "        return _lift(other) - self",
           "        return self - _lift(other)", targets=("rsub",)),
    Mutant("rtruediv-swapped", "number / Value computes Value / number", "        return _lift(other) / self",
           "        return self / _lift(other)", targets=("rdiv",)),
    Mutant("exp-overflow", "exp raises OverflowError instead of returning inf", "e = _ieee(math.exp, self.data)",
           "e = math.exp(self.data)", targets=("exp",)),
    Mutant("sigmoid-overflow", "sigmoid computed as 1/(1 + exp(-x)), which overflows for x < -709",
           "s = 1.0 / (1.0 + math.exp(-x)) if x >= 0 else math.exp(x) / (1.0 + math.exp(x))",
           "s = 1.0 / (1.0 + math.exp(-x))", targets=("sigmoid",)),
    Mutant("traversal-order", "backward runs the nodes from the leaves up instead of from the output down",
           "        for node in reversed(order):\n            if node._hand_written",
           "        for node in order:\n            if node._hand_written", targets=()),
    Mutant("recursive-backward", "backward sorts the graph recursively, which dies on deep graphs",
           "        order = _topological(self)\n", "        order = _recursive_topological(self)\n", targets=("deep",)),
    # Second order and forward mode: first-order gradients stay exactly right, so only a check of the
    # derivatives of the backward rules (hvp, order N) or of forward mode (jvp) can kill these.
    Mutant("tanh-detached", "tanh's partial 1 - t*t is a float: right first order, no second derivative",
           "    return (1 - out * out,)", "    return (1 - out.data * out.data,)", targets=("tanh",)),
    Mutant("sigmoid-detached", "sigmoid's partial near 0 reads tanh(x/2) as a float, as a backward that saves it detached",
           "        t = Value.tanh(x / 2)", "        t = math.tanh(x.data / 2)", targets=("sigmoid",)),
    Mutant("mul-detached", "mul's partials are the operands' floats: d2(xy)/dxdy = 0",
           "    x, y = out._parents\n    return y, x", "    x, y = out._parents\n    return y.data, x.data",
           targets=("mul",)),
    Mutant("sin-second-sign", "sin's partial is 2 cos(x), a float, minus x.cos(): right, its own derivative sign-flipped",
           "    return (x.cos(),)", "    return (2 * math.cos(x.data) - x.cos(),)", targets=("sin",)),
    Mutant("jvp-assign", "forward mode keeps only the last parent's term instead of summing them",
           "                        t = term if t is None else t + term", "                        t = term",
           targets=("add", "mul")),
)


def build(mutant: Mutant) -> type:
    """The mutant's Value class, compiled from gradspec's engine source with the bug written in: the bug goes
    into whichever of the engine's modules holds its snippet, and a mutated graph walk is the one the
    compiled engine imports."""
    sources = {name: inspect.getsource(module) for name, module in _ENGINE_MODULES}
    found = sum(source.count(mutant.old) for source in sources.values())
    if found != 1:
        raise ValueError(f"mutant {mutant.name}: its snippet occurs {found} times in engine.py and engine_graph.py")
    sources = {name: source.replace(mutant.old, mutant.new) for name, source in sources.items()}
    if mutant.name == "recursive-backward":
        sources["gradspec.engine"] = sources["gradspec.engine"].replace("\n\ndef _lift(", _RECURSIVE_TOPOLOGICAL + "\n\ndef _lift(")
    tag = mutant.name.replace("-", "_")
    walks = _compiled(f"gradspec_mutant_graph_{tag}", sources["gradspec.engine_graph"], mutant.name)
    real = sys.modules["gradspec.engine_graph"]
    sys.modules["gradspec.engine_graph"] = walks  # the mutant engine's `from gradspec.engine_graph import`
    try:
        module = _compiled(f"gradspec_mutant_{tag}", sources["gradspec.engine"], mutant.name)
    finally:
        sys.modules["gradspec.engine_graph"] = real
    value: type = module.Value
    return value


_ENGINE_MODULES = (("gradspec.engine", _engine), ("gradspec.engine_graph", _engine_graph))


def _compiled(name: str, source: str, mutant: str) -> types.ModuleType:
    spec = importlib.util.spec_from_loader(name, loader=None)
    assert spec is not None
    module = types.ModuleType(spec.name)
    sys.modules[spec.name] = module  # dataclasses and annotations resolve names through sys.modules
    exec(compile(source, f"<mutant {mutant} of {name}>", "exec"), module.__dict__)  # gradspec's own engine source, never case text
    return module


@dataclass
class MutationReport:
    killers: dict[str, list[str]] = field(default_factory=dict)  # mutant -> "file::case[engine verdict]"

    @property
    def killed(self) -> list[str]:
        return [m for m, k in self.killers.items() if k]

    @property
    def score(self) -> float:
        return len(self.killed) / len(self.killers) if self.killers else 0.0


def mutate(
    cases: Iterable[Case],
    mutants: Iterable[Mutant] = MUTANTS,
    *,
    every: bool = False,
    jobs: int = 1,
    progress: Callable[[str], None] | None = None,
) -> MutationReport:
    """Run ``cases`` on every mutant: by default each mutant stops at its first killer; with ``every``,
    every case runs on every mutant and each killer is listed.

    A mutant tries first the cases that exercise what it changes (:attr:`Mutant.targets`), cheapest
    first: cost is measured as the cases run (seconds per case, on earlier mutants) and estimated from
    the graph's size until then. The score does not depend on the order: a mutant is killed when any
    case kills it. With ``jobs`` > 1 the mutants are shared among that many forked processes, where this
    process has one thread (as :mod:`gradspec.run.workers` forks); else they run here.
    """
    cases = list(cases)
    mutants = list(mutants)
    report = MutationReport()
    if jobs > 1 and len(mutants) > 1 and _single_threaded():
        # Forked as the worker pool forks (only a process with one thread: a library's thread pool, as
        # JAX's or BLAS's, can deadlock in a forked child), each process adopting the loaded cases once
        # (nothing is pickled but a mutant and its killers); one mutant per task, so that the slow ones
        # (few relevant cases, or every case) spread out. Elsewhere the mutants run here, one by one.
        with multiprocessing.get_context("fork").Pool(min(jobs, len(mutants)), initializer=_adopt,
                                                      initargs=(cases,)) as pool:
            for name, killers in pool.imap_unordered(functools.partial(_score_adopted, every=every), mutants):
                report.killers[name] = killers
                if progress:
                    progress(name)
        report.killers = {m.name: report.killers[m.name] for m in mutants}  # the table's order
        return report
    costs: dict[tuple[str, str], float] = {}
    for mutant in mutants:
        name, killers = _score(cases, mutant, every=every, costs=costs)
        report.killers[name] = killers
        if progress:
            progress(name)
    return report


_ADOPTED: list[Case] = []  # in a forked process of mutate()'s pool only: the cases it was started with


def _adopt(cases: list[Case]) -> None:
    _ADOPTED[:] = cases


def _score_adopted(mutant: Mutant, *, every: bool) -> tuple[str, list[str]]:
    return _score(_ADOPTED, mutant, every=every)


def _score(cases: Sequence[Case], mutant: Mutant, *, every: bool,
           costs: dict[tuple[str, str], float] | None = None) -> tuple[str, list[str]]:
    """The mutant's name and the cases that kill it (only the first, unless ``every``)."""
    costs = {} if costs is None else costs
    engine: Engine = ValueClassEngine(build(mutant), f"mutant:{mutant.name}")
    killers: list[int] = []
    order = sorted(range(len(cases)), key=lambda i: (not _targets(mutant, cases[i]),
                                                     costs.get((cases[i].path, cases[i].id), _estimate(cases[i]))))
    for i in order:
        case = cases[i]
        start = time.perf_counter()
        if _kills(case, engine):
            killers.append(i)
            if not every:
                break
        else:  # a killing run stops early: only a full run measures the case's cost
            costs[(case.path, case.id)] = time.perf_counter() - start
    return mutant.name, [f"{cases[i].path}::{cases[i].id}" for i in sorted(killers)]  # in the library's order


def _targets(mutant: Mutant, case: Case) -> bool:
    """Whether ``case`` exercises what ``mutant`` changes (any case does for a mutant without targets)."""
    if not mutant.targets:
        return True
    graph = case.graph
    if graph is None:  # a training case: every op of its network, and expensive; tried with the rest
        return False
    for target in mutant.targets:
        if target == "deep" and (case.kind == "deep" or graph.depth > _DEEP):
            return True
        if target in ("rsub", "rdiv"):
            op = {"rsub": "sub", "rdiv": "div"}[target]
            if any(isinstance(s, Apply) and s.op == op and not graph.varying[s.args[0]] for s in graph.steps):
                return True
        elif any(isinstance(s, Apply) and s.op == target for s in graph.steps):
            return True
    return False


_DEEP = 500  # a graph this deep is deep for a recursive traversal
_SECONDS_PER_NODE = 2e-5  # a rough cost of one node at one point, until a case's cost is measured


def _estimate(case: Case) -> float:
    if case.graph is None:
        return 10.0  # training: seconds
    return _SECONDS_PER_NODE * len(case.graph.steps) * max(1, len(case.points))


def _kills(case: Case, engine: Engine) -> bool:
    for point, _ in KINDS[case.kind].checks(case):
        result = run_point(case, point, engine, apply_xfail=False, shrink=False, localise=False)
        if result.verdict in (Verdict.FAIL, Verdict.CONVENTION):
            return True
    return False
