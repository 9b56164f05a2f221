"""The command line's tool commands: ``explain``, ``fuzz``, ``sweep`` and ``mutate``, and what every
command shares (loading the case files named, the engines asked for).

Each takes the parsed arguments and the streams to write to, and returns an exit code, as
:func:`gradspec.cli.main` does.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Sequence
from typing import TextIO

from gradspec.casefile.loader import errors_of, load_file
from gradspec.casefile.model import CaseFile, data_dir, discover
from gradspec.checks.check import check_graph, prepare
from gradspec.engines.probe import require
from gradspec.engines.protocol import Engine, NamedEngine
from gradspec.engines.resolve import resolve
from gradspec.errors import CaseFileError, GradspecError
from gradspec.lang.numbers import exact_number
from gradspec.report.terminal import Progress
from gradspec.results import Tolerance, Verdict

__all__ = ["EXIT_FAILED", "EXIT_INVALID", "EXIT_OK", "explain_command", "fuzz_command", "load_all",
           "mutate_command", "sweep_command", "usable"]

EXIT_OK, EXIT_FAILED, EXIT_INVALID = 0, 1, 2


def load_all(paths: Sequence[str], err: TextIO) -> tuple[list[CaseFile], list[str]]:
    """Load every case file named; invalid ones are reported, the rest still load."""
    files: list[CaseFile] = []
    errors: list[str] = []
    targets = list(paths) or [str(data_dir("cases"))]
    for path in discover(targets):
        if not path.exists():
            errors.append(f"{path}: no such file or directory")
            continue
        try:
            files.append(load_file(path))
        except CaseFileError as exc:
            errors.extend(str(e) for e in errors_of(exc))
    for line in errors:
        print(line, file=err)
    return files, errors


def usable(specs: Sequence[str | NamedEngine]) -> list[Engine]:
    """The engines named, each loaded and probed once: one that cannot take part stops the run here."""
    engines = [resolve(spec) for spec in specs]
    for engine in engines:
        require(engine)
    return engines


def explain_command(args: argparse.Namespace, out: TextIO) -> int:
    from gradspec.diagnose.debug import explain, render_dot
    from gradspec.run.runner import diagnose

    engine = usable([args.config.spec(args.engine)])[0]
    tol = Tolerance()
    if "::" in args.target:
        path, _, case_id = args.target.rpartition("::")
        case = next((c for c in load_file(path).cases if c.id == case_id), None)
        if case is None or case.graph is None:
            raise GradspecError(f"{path} has no expression case {case_id!r}")
        if not 0 <= args.point < len(case.points):
            raise GradspecError(f"case {case_id!r} has {len(case.points)} point(s); --point {args.point} is out of range")
        graph, point, tol = case.graph, case.points[args.point].exact(), case.tolerance
        name = case.id
    else:
        if not args.at:
            raise GradspecError("explain EXPR needs --at x=...,y=...")
        graph = prepare(args.target, list(args.at))
        name = "explained"
        point = {k: exact_number(v) for k, v in args.at.items()}
    rows, _ = explain(graph, point, engine)
    if args.dot:
        print(render_dot(graph, rows), file=out)
        return EXIT_OK
    result = check_graph(graph, point, engine, tol)
    print(f"{graph.program.source}  at {result.point_text}  on {engine.name}", file=out)
    table = [("step", "node", "op", "value", "exact value", "grad", "exact grad", "")]
    for r in rows:
        table.append((str(r.step), r.label, r.op, _fmt(r.value_engine), _fmt(r.value_exact), _fmt(r.grad_engine),
                      _fmt(r.grad_exact), "ok" if r.ok else "WRONG"))
    widths = [min(max(len(row[i]) for row in table), 48) for i in range(len(table[0]))]
    for row in table:
        print("  " + "  ".join(cell[:48].ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip(), file=out)
    print(f"verdict: {result.verdict.value}", file=out)
    if result.verdict is Verdict.FAIL:
        result = diagnose(result, graph, point, engine, tol, name)
        if result.culprit is not None:
            print(f"culprit: {result.culprit.message}", file=out)
        if result.shrunk:
            print("smallest failing case:", file=out)
            print(result.shrunk.rstrip(), file=out)
    if result.verdict is Verdict.ERROR:
        print(result.message, file=out)
        return EXIT_INVALID
    return EXIT_FAILED if result.verdict is Verdict.FAIL else EXIT_OK


def _fmt(x: float | None) -> str:
    return "-" if x is None else f"{x:.10g}"


def mutate_command(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    from gradspec.tools.mutate import MUTANTS, mutate

    files, errors = load_all(args.paths or args.config.case_paths, err)
    if errors:
        return EXIT_INVALID
    if args.jobs < 0:
        raise GradspecError("--jobs must be 0 (one per core) or more")
    cases = [c for f in files for c in f.cases]
    progress = Progress(err, len(MUTANTS), "mutants")
    try:
        report = mutate(cases, every=args.every, jobs=args.jobs or os.cpu_count() or 1, progress=progress.step)
    finally:
        progress.done()
    for mutant in MUTANTS:
        killers = report.killers[mutant.name]
        status = f"killed by {len(killers)}" if killers else "SURVIVED"
        print(f"{mutant.name:<20} {status:<14} {mutant.description}", file=out)
        for killer in killers[:5]:
            print(f"{'':<20}   {killer}", file=out)
        if len(killers) > 5:
            print(f"{'':<20}   ... and {len(killers) - 5} more", file=out)
    print(f"mutation score: {len(report.killed)}/{len(MUTANTS)} = {report.score:.0%}", file=out)
    return EXIT_OK if report.score == 1.0 else EXIT_FAILED


def fuzz_command(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    from gradspec.tools.fuzz import fuzz

    if args.count < 1 or args.max_depth < 1:
        raise GradspecError("--count and --max-depth must be at least 1")
    engine = usable([args.config.spec(args.engine)])[0]
    progress = Progress(err, args.count, "graphs")
    report = fuzz(engine, count=args.count, seed=args.seed, max_depth=args.max_depth, out=args.out,
                  progress=progress.step)
    progress.done()
    if report.ops.lacking:
        print(f"not drawn, as {engine.name} does not apply them: {', '.join(report.ops.lacking)}", file=out)
    if report.failure is None:
        discarded = "".join(f"; {n} proved nothing ({reason})" for reason, n in report.discarded.items())
        if not report.ran:
            print(f"NOTHING COMPARED: none of {report.tried} random graphs ran on {engine.name} "
                  f"(seed {args.seed}){discarded}", file=out)
            return EXIT_FAILED
        print(f"no failure in {report.ran} random graphs checked on {engine.name} (seed {args.seed}; "
              f"{report.tried} drawn{discarded})", file=out)
        return EXIT_OK
    print(f"FAILURE after {report.tried} graphs on {engine.name} (seed {args.seed}), shrunk to:", file=out)
    print(report.failure.table(), file=out)
    if report.culprit is not None:
        print(f"culprit: {report.culprit.message}", file=out)
    if report.written is not None:
        print(f"regression case written: {report.written}", file=out)
    return EXIT_FAILED


def sweep_command(args: argparse.Namespace, out: TextIO) -> int:
    from gradspec.tools.sweep import ranges, render_svg, sweep

    lo, hi = args.range
    if not (args.points >= 2 and lo < hi) or args.points > 1_000_000:
        raise GradspecError("--range needs A < B and --points between 2 and 1000000")
    graph = prepare(args.expression, [args.var, *args.at])
    fixed = {k: exact_number(v) for k, v in args.at.items()}
    xs = [lo + (hi - lo) * i / (args.points - 1) for i in range(args.points)]
    series = {}
    for engine in usable(args.config.specs(args.engine)):
        if engine.unsupported(graph):
            print(f"{engine.name}: skipped: {engine.unsupported(graph)}", file=out)
            continue
        samples = series[engine.name] = sweep(graph, args.var, xs, engine, fixed)
        print(f"d/d{args.var} {args.expression} on {engine.name}, {args.var} from {lo:g} to {hi:g} ({args.points} points):",
              file=out)
        for r in ranges(samples):
            ex = r.example
            engine_text = "-" if ex.engine is None else f"{ex.engine:.6g}"
            print(f"  {args.var} in [{r.start:.6g}, {r.stop:.6g}]  {r.count:>6} points  {r.status}"
                  f"  (worst: {r.worst_digits:.1f} digits at {args.var}={ex.x:.6g}: engine {engine_text},"
                  f" exact {ex.exact:.6g})", file=out)
    if args.plot and series:
        args.plot.write_text(render_svg(f"d/d{args.var} {args.expression}: correct digits", series), encoding="utf-8")
        print(f"plot written: {args.plot}", file=out)
    return EXIT_OK
