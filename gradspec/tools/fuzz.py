"""Random graph fuzzing: Hypothesis draws expression graphs over the op table, gradspec checks each one
against the exact reference, and a failure is shrunk to a minimal graph and input.

Graphs are drawn as a sequence of named steps, each applying an op to any earlier step or input, so
they have shared sub-expressions, reused variables and chains. Inputs are short decimals. Ops with a
restricted domain get arguments that keep them inside it (``log(a*a + c)``), and points that land on a
kink or overflow are not counted as failures, so a correct engine is never reported. Everything is
seeded: the same seed gives the same graphs and the same minimal failure.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import mpmath
from hypothesis import HealthCheck, Phase, find, settings
from hypothesis import strategies as st
from hypothesis.errors import NoSuchExample

from gradspec.casefile.schema_file import SCHEMA_LINE, copy_beside
from gradspec.checks.check import check_graph, prepare
from gradspec.checks.results import CheckResult, Culprit, Tolerance, Verdict
from gradspec.diagnose.debug import as_yaml_case, localise, subprogram
from gradspec.engines.protocol import Engine, resolve
from gradspec.errors import GradspecError
from gradspec.graph.printer import strip
from gradspec.ops.table import OPS, Op
from gradspec.reference.store import exact

__all__ = ["FuzzReport", "fuzz", "graphs"]

_NAMES = ("x", "y", "z")
# Every op its row lets the fuzzer draw, unary ones first (the order Hypothesis draws and shrinks in).
_OPS = tuple(sorted((o for o in OPS.values() if o.fuzz is not None), key=lambda o: o.arity))
_SHIFTS = ("0.5", "1", "2")  # keep log, sqrt, div and pow bases positive: f(a*a + c)
_LIMIT = mpmath.mpf(10) ** 30  # values and gradients beyond this are overflow territory, not bugs


@st.composite
def graphs(draw: st.DrawFn, max_depth: int = 6) -> tuple[str, dict[str, Fraction]]:
    """A program text in gradspec's grammar and a point for its inputs."""
    inputs = list(_NAMES[: draw(st.integers(1, len(_NAMES)))])
    available = list(inputs)
    lines = []
    for k in range(draw(st.integers(1, max_depth))):
        # Recent steps are likelier operands, which grows chains; any earlier one may be reused.
        def operand() -> str:
            recent = available[-3:]
            return draw(st.one_of(st.sampled_from(recent), st.sampled_from(available)))

        op = draw(st.sampled_from(_OPS))
        text = _apply(op, [operand() for _ in range(op.arity)], draw)
        lines.append(f"t{k} = {text}")
        available.append(f"t{k}")
    lines.append(available[-1])
    values = {n: Fraction(draw(st.integers(-300, 300)), 100) for n in inputs}
    return "; ".join(lines), values


def _positive(a: str, draw: st.DrawFn) -> str:
    return f"({a}*{a} + {draw(st.sampled_from(_SHIFTS))})"


def _apply(op: Op, operands: list[str], draw: st.DrawFn) -> str:
    """``op`` on ``operands`` as its row says to draw it: some arguments kept positive, and a constant in
    place of the last argument half of the time when the row lists constants."""
    fuzz = op.fuzz
    assert fuzz is not None
    keep_last = draw(st.booleans()) if fuzz.constants else True
    texts = []
    for k, a in enumerate(operands):
        if k in fuzz.positive:
            a = _positive(a, draw)
        elif k == len(operands) - 1 and not keep_last:
            a = draw(st.sampled_from(fuzz.constants))
        texts.append(strip(a) if op.symbol is None else a)  # a call's parentheses are its own
    return strip(op.render(texts))


@dataclass
class FuzzReport:
    tried: int
    failure: CheckResult | None = None
    program: str = ""
    point: dict[str, Fraction] | None = None
    culprit: Culprit | None = None
    written: Path | None = None


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
    """Check ``count`` random graphs on ``engine``; shrink the first failure and write it to ``out``."""
    engine = resolve(engine)
    tol = tolerance or Tolerance()
    tried = 0

    def fails(example: tuple[str, dict[str, Fraction]]) -> bool:
        nonlocal tried
        tried += 1
        if progress:
            progress(example[0])
        result = _check(example, engine, tol)
        return result is not None and result.verdict is Verdict.FAIL

    options = settings(max_examples=count, database=None, deadline=None, derandomize=False,
                       phases=[Phase.generate, Phase.shrink], suppress_health_check=list(HealthCheck))
    try:
        program, point = find(graphs(max_depth), fails, settings=options, random=random.Random(seed))
    except NoSuchExample:
        return FuzzReport(tried)
    graph = prepare(program, list(point))
    program = subprogram(graph, graph.output)  # drop the steps the output does not use
    graph = prepare(program, list(point))
    result = _check((program, point), engine, tol)
    assert result is not None
    report = FuzzReport(tried, result, program, point, localise(graph, point, engine))
    if out is not None:
        report.written = _write(out, engine, seed, program, point, report.culprit)
    return report


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
