"""Random graph fuzzing: Hypothesis draws expression graphs over the ops an engine has, gradspec checks
each one against the exact reference, and the first failure is shrunk to a minimal graph and input.

Graphs are drawn as a sequence of named steps, each applying an op to earlier steps, inputs or
constants (on either side: ``2 - x``, ``c / x``), so they have shared sub-expressions, reused variables
and chains. A binary step often takes as its second operand an ancestor of its first, which makes a
node that is reached by paths of unequal length: the shape on which a traversal that runs a node before
all of its gradient arrived goes wrong. A step is also often a diamond: a shared intermediate, two
non-linear consumers of it that are siblings (neither on the other's path), and a binary op joining
them; a traversal that is right on unequal paths (a depth-first preorder that takes the deeper operand
first) still runs the shared node there before its second consumer. Only ops (and operand kinds) the engine applies are drawn, so
every graph is one the engine can be judged on. Inputs are short decimals. Ops with a restricted domain
get arguments that keep them inside it (``log(a*a + c)``), and points that land on a kink or overflow
are not counted as failures, so a correct engine is never reported.

Everything is seeded and nothing else counts: Hypothesis only generates (its own shrinker stops on a
clock), and the failure is shrunk by gradspec's deterministic shrinkers, so the same seed gives the same
graphs and the same minimal failure from the Python API and from the command line.
"""

from __future__ import annotations

import dataclasses
import json
import random
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import mpmath
from hypothesis import HealthCheck, Phase, find, settings
from hypothesis import strategies as st
from hypothesis.errors import NoSuchExample

from gradspec.casefile.schema_file import SCHEMA_LINE, copy_beside
from gradspec.checks.check import check_graph, prepare
from gradspec.diagnose.debug import as_yaml_case, localise, primary, shrink, shrink_input, subprogram
from gradspec.engines.protocol import Engine
from gradspec.engines.resolve import resolve
from gradspec.errors import GradspecError
from gradspec.graph.printer import strip
from gradspec.ops.table import OPS, Op
from gradspec.reference.store import exact
from gradspec.results import COMPARED, CheckResult, Culprit, Tolerance, Verdict, skip_reason

__all__ = ["FuzzReport", "Ops", "fuzz", "graphs", "ops_of"]

_NAMES = ("x", "y", "z")
# Every op its row lets the fuzzer draw, unary ones first (the order Hypothesis draws and shrinks in).
_OPS = tuple(sorted((o for o in OPS.values() if o.fuzz is not None), key=lambda o: o.arity))
_SHIFTS = ("0.5", "1", "2")  # keep log, sqrt, div and pow bases positive: f(a*a + c)
_LIMIT = mpmath.mpf(10) ** 30  # values and gradients beyond this are overflow territory, not bugs
_CONSTANTS = ("2", "3", "0.5", "1.5")  # positive: a constant on the left of any op stays in its domain


@dataclass(frozen=True)
class Ops:
    """What may be drawn: ``ops`` (names, on Values), ``left_constant`` (binary ops that may take a
    constant on the left: the engine's reflected method) and ``constant_last`` (ops whose last argument
    must be a constant: the engine does not take a Value there, as micrograd's ``**``)."""

    ops: tuple[str, ...] = tuple(o.name for o in _OPS)
    left_constant: tuple[str, ...] = tuple(o.name for o in _OPS if o.arity == 2)
    constant_last: tuple[str, ...] = ()

    @property
    def empty(self) -> bool:
        return not self.ops

    @property
    def lacking(self) -> list[str]:
        """The ops fuzz draws from that are left out, and the operand kinds (``c - x``, ``x ** y``)."""
        out = [o.name for o in _OPS if o.name not in self.ops]
        out += [f"{OPS[n].symbol or n} with a constant on the left" for n in self.ops
                if OPS[n].arity == 2 and n not in self.left_constant]
        return out + [f"{OPS[n].symbol or n} with a Value as its last argument" for n in self.constant_last]


def ops_of(engine: Engine) -> Ops:
    """The ops ``engine`` applies, each asked of the engine itself (at harmless values, once)."""
    def takes(op: Op, *varying: bool) -> bool:
        return engine.missing(op, varying[0]) is None and engine.takes(op, list(varying))

    ops, left, last = [], [], []
    for op in _OPS:
        if op.arity == 1:
            if takes(op, True):
                ops.append(op.name)
            continue
        values, constant = takes(op, True, True), takes(op, True, False)
        if values or (constant and op.fuzz is not None and op.fuzz.constants):
            ops.append(op.name)
            if not values:
                last.append(op.name)
            if takes(op, False, True):
                left.append(op.name)
    return Ops(tuple(ops), tuple(left), tuple(last))


@st.composite
def graphs(draw: st.DrawFn, max_depth: int = 6, ops: Ops | None = None) -> tuple[str, dict[str, Fraction]]:
    """A program text in gradspec's grammar and a point for its inputs, using only ``ops``."""
    ops = ops or Ops()
    if ops.empty:
        raise GradspecError("the engine applies none of the ops fuzz draws from")
    rows = tuple(o for o in _OPS if o.name in ops.ops)
    consumers = tuple(o for o in rows if o.arity == 1 and o.name != "neg")  # neg only flips a sign
    joins = tuple(o for o in rows if o.arity == 2 and o.name not in ops.constant_last)
    inputs = list(_NAMES[: draw(st.integers(1, len(_NAMES)))])
    available = list(inputs)
    parents: dict[str, set[str]] = {n: set() for n in inputs}
    ancestors: dict[str, set[str]] = {n: set() for n in inputs}
    lines: list[str] = []

    def add(text: str, used: list[str]) -> str:
        step = f"t{len(lines)}"
        lines.append(f"{step} = {text}")
        parents[step] = set(used)
        ancestors[step] = set().union(*(ancestors[u] | {u} for u in used))
        available.append(step)
        return step

    size = draw(st.integers(1, max_depth))
    while len(lines) < size:
        # Recent steps are likelier operands, which grows chains; any earlier one may be reused.
        def operand() -> str:
            return draw(st.one_of(st.sampled_from(available[-3:]), st.sampled_from(available)))

        steps = [n for n in available if n not in inputs]
        room = size - len(lines) >= (3 if steps else 4)
        if consumers and joins and room and draw(st.integers(0, 2)) == 0:
            # A diamond on a shared step (made here from an input when there is none yet): three or four
            # of the graph's steps.
            shared = draw(st.sampled_from(steps[-3:])) if steps else add(
                _apply(draw(st.sampled_from(consumers)), [operand()], draw), [])
            left, right = (add(_apply(draw(st.sampled_from(consumers)), [shared], draw), [shared]) for _ in "lr")
            add(_apply(draw(st.sampled_from(joins)), [left, right], draw, values=True), [left, right])
            continue
        op = draw(st.sampled_from(rows))
        a = operand()
        used = [a]
        if op.arity == 1:
            text = _apply(op, [a], draw)
        elif op.name in ops.left_constant and draw(st.integers(0, 2)) == 0:
            text = _apply(op, [draw(st.sampled_from(_CONSTANTS)), a], draw, left_constant=True)
        else:
            # Half the time, an ancestor step of ``a`` that is not its direct operand: a node reached by two
            # paths of unequal length (a step, not an input: an input has no backward to run too early).
            far = sorted(ancestors[a] - parents[a] - set(inputs))
            b = draw(st.sampled_from(far)) if bool(far) and draw(st.booleans()) else operand()
            if draw(st.booleans()):
                a, b = b, a
            used = [a, b]
            text = _apply(op, [a, b], draw, constant_last=op.name in ops.constant_last)
        add(text, used)
    lines.append(available[-1])
    values = {n: Fraction(draw(st.integers(-300, 300)), 100) for n in inputs}
    return "; ".join(lines), values


def _positive(a: str, draw: st.DrawFn) -> str:
    return f"({a}*{a} + {draw(st.sampled_from(_SHIFTS))})"


def _apply(op: Op, operands: list[str], draw: st.DrawFn, *, left_constant: bool = False,
           constant_last: bool = False, values: bool = False) -> str:
    """``op`` on ``operands`` as its row says to draw it: some arguments kept positive, and a constant in
    place of the last argument half of the time when the row lists constants (always, with
    ``constant_last``; never, with ``values``). With ``left_constant`` the first operand is a positive
    constant already."""
    fuzz = op.fuzz
    assert fuzz is not None
    keep_last = values or left_constant or (draw(st.booleans()) and not constant_last) if fuzz.constants else True
    texts = []
    for k, a in enumerate(operands):
        if left_constant and k == 0:
            pass  # a positive constant: inside every domain as it is
        elif k in fuzz.positive:
            a = _positive(a, draw)
        elif k == len(operands) - 1 and not keep_last:
            a = draw(st.sampled_from(fuzz.constants))
        texts.append(strip(a) if op.symbol is None else a)  # a call's parentheses are its own
    return strip(op.render(texts))


@dataclass
class FuzzReport:
    """What a fuzz run did: ``tried`` graphs drawn up to and including the first failure (or all of them),
    ``ran`` of which the engine was judged on; the others proved nothing, by reason in ``discarded``."""

    tried: int
    failure: CheckResult | None = None
    program: str = ""
    point: dict[str, Fraction] | None = None
    written: Path | None = None
    ran: int = 0
    discarded: dict[str, int] = field(default_factory=dict)
    ops: Ops = field(default_factory=Ops)

    @property
    def culprit(self) -> Culprit | None:
        """Where the shrunk failure goes wrong (the failure's own culprit)."""
        return None if self.failure is None else self.failure.culprit


def fuzz(
    engine: Engine | str,
    *,
    count: int = 200,
    seed: int = 0,
    max_depth: int = 6,
    out: Path | None = None,
    tolerance: Tolerance | None = None,
    progress: Callable[[str], None] | None = None,
) -> FuzzReport:
    """Check up to ``count`` random graphs on ``engine``; shrink the first failure and write it to ``out``."""
    engine = resolve(engine)
    tol = tolerance or Tolerance()
    ops = ops_of(engine)
    tried, ran, found = 0, 0, False
    discarded: Counter[str] = Counter()

    def fails(example: tuple[str, dict[str, Fraction]]) -> bool:
        nonlocal tried, ran, found
        if found:  # Hypothesis replays the failure it returns: that is not another graph
            return True
        tried += 1
        if progress:
            progress(example[0])
        result = _check(example, engine, tol)
        failed = result is not None and result.verdict is Verdict.FAIL
        if failed and not _fails_again(example, engine, tol):
            discarded[_UNREPEATED] += 1
            failed = False
        elif result is None:
            discarded["a kink, an overflow or a point outside a domain"] += 1
        elif result.verdict in COMPARED:
            ran += 1
        else:
            discarded[skip_reason(result) if result.verdict is Verdict.SKIP else result.message] += 1
        found = failed
        return found

    # Generation only: Hypothesis's shrinker stops on a clock, which would make the result depend on the
    # machine's speed. The first failure is shrunk below, deterministically.
    options = settings(max_examples=count, database=None, deadline=None, derandomize=False,
                       phases=[Phase.generate], suppress_health_check=list(HealthCheck))
    try:
        program, point = find(graphs(max_depth, ops), fails, settings=options, random=random.Random(seed))
    except NoSuchExample:
        return FuzzReport(tried, ran=ran, discarded=dict(discarded), ops=ops)
    shrunk = _shrunk(program, point, engine, tol)
    result = _check(shrunk, engine, tol)
    if result is None or result.verdict is not Verdict.FAIL:  # the report must show a case that fails
        result = _check((program, point), engine, tol)
    else:
        program, point = shrunk
    assert result is not None
    graph = prepare(program, list(point))
    # One culprit: the op the localiser finds, with the two runs' disagreement beside it where they
    # disagreed, as gradspec.check reports it (the check's own culprit is only the disagreement).
    result = dataclasses.replace(result, culprit=primary(localise(graph, point, engine), result.culprit))
    report = FuzzReport(tried, result, program, point, ran=ran, discarded=dict(discarded), ops=ops)
    if out is not None:
        report.written = _write(out, engine, seed, program, point, report.culprit)
    return report


def _shrunk(program: str, point: dict[str, Fraction], engine: Engine, tol: Tolerance) -> tuple[str, dict[str, Fraction]]:
    """The smallest failing sub-graph of a failing program, at the simplest failing input."""
    def still_fails(text: str, sub: dict[str, Fraction]) -> bool:
        return _fails_again((text, sub), engine, tol, times=2)

    graph = prepare(program, list(point))
    program = subprogram(graph, graph.output)  # drop the steps the output does not use
    found = shrink(prepare(program, list(point)), point, engine, still_fails)
    if found is not None:
        program, point = found[0], dict(found[1])
    point = shrink_input(point, {}, lambda p: still_fails(program, p))
    return program, point


# A failure is reported only if checking the same graph again fails too, and the shrinker keeps a smaller
# case only if it fails twice: on an engine whose runs differ (beyond rounding) a failure that came by
# luck would otherwise be shrunk to a case that passes and printed beside it.
_UNREPEATED = "a failure that did not repeat when checked again (the engine's runs differ)"


def _fails_again(example: tuple[str, dict[str, Fraction]], engine: Engine, tol: Tolerance, times: int = 1) -> bool:
    for _ in range(times):
        result = _check(example, engine, tol)
        if result is None or result.verdict is not Verdict.FAIL:
            return False
    return True


def _check(example: tuple[str, dict[str, Fraction]], engine: Engine, tol: Tolerance) -> CheckResult | None:
    """The check of one drawn graph, or None where it proves nothing (a kink, overflow, a bad point)."""
    program, point = example
    try:
        graph = prepare(program, list(point))
        ref = exact(graph, point)
    except GradspecError:
        return None
    quantities = [ref.value, *ref.grads.values()]
    if ref.kinks or any(not mpmath.isfinite(q) or abs(q) > _LIMIT for q in quantities):
        return None
    return check_graph(graph, point, engine, tol)


def _write(out: Path, engine: Engine, seed: int, program: str, point: dict[str, Fraction], culprit: Culprit | None) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    slug = "".join(c if c.isalnum() else "-" for c in engine.name).strip("-")
    path = out / f"fuzz-{slug}-seed{seed}.gradspec.yaml"
    note = f"found by gradspec fuzz --seed {seed} on {engine.name}"
    if culprit is not None:
        note += f"; culprit: {culprit.op}"
    case = as_yaml_case(f"fuzz-seed{seed}", program, point, note)
    body = "\n".join("  " + line if line else line for line in case.splitlines())
    copy_beside(out)  # the $schema line names the copy beside the file, which resolves on any machine
    path.write_text(
        f"{SCHEMA_LINE}\n"
        f"version: 1\ndescription: {json.dumps('A regression case ' + note + '.')}\ncases:\n{body}\n",
        encoding="utf-8",
    )
    return path
