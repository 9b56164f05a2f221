"""The command line's tool commands: ``explain``, ``fuzz``, ``sweep``, ``mutate`` and ``opinfo``, and what every
command shares (loading the case files named, the engines asked for).

Each takes the parsed arguments and the streams to write to, and returns an exit code, as
:func:`gradspec.cli.main` does.
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TextIO

from gradspec.casefile.loader import errors_of, load_file
from gradspec.casefile.model import CaseFile, data_dir, discover
from gradspec.checks.check import check_graph, prepare
from gradspec.engines.probe import require
from gradspec.engines.protocol import Engine, NamedEngine
from gradspec.engines.resolve import resolve
from gradspec.errors import CaseFileError, GradspecError
from gradspec.lang.numbers import exact_number
from gradspec.modes import Mode
from gradspec.report.terminal import Progress
from gradspec.results import Tolerance, Verdict

__all__ = ["EXIT_FAILED", "EXIT_INVALID", "EXIT_OK", "add_opinfo_parser", "explain_command", "fuzz_command", "load_all",
           "mutate_command", "opinfo_command", "parse_modes", "sweep_command", "usable"]

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
    print(report.failure.table(), file=out)  # with its culprit
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


def add_opinfo_parser(sub: Any) -> None:
    """``gradspec opinfo``'s arguments (kept here, beside the command, as the other tools' are short)."""
    o = sub.add_parser("opinfo", help="judge PyTorch's own OpInfo samples exactly, in every mode torch claims")
    o.add_argument("--ops", type=lambda t: [n.strip() for n in t.split(",") if n.strip()], metavar="NAME,...",
                   help="OpInfo entries as OpInfo names them (erf, linalg.det, div.no_rounding_mode); default: "
                        "every covered one")
    o.add_argument("--list", action="store_true", help="list the covered entries and their gradspec ops, and count them")
    o.add_argument("--uncovered", action="store_true", help="with --list: the entries not covered, by reason")
    o.add_argument("--check", type=parse_modes, metavar="MODES",
                   help="judge these modes where torch claims them (default: every mode the entry claims: vjp; jvp "
                        "with supports_forward_ad; hvp with supports_gradgrad; jvp-of-jvp with supports_fwgrad_bwgrad)")
    o.add_argument("--order", type=int, default=1, choices=range(1, 7), metavar="N",
                   help="also nested derivatives up to order N (2 to 6), where torch claims gradgrad")
    o.add_argument("--dtype", choices=("float64", "float32"), default="float64",
                   help="the samples' dtype and the torch engine's (default float64)")
    o.add_argument("--report", action="append", default=[], metavar="FILE",
                   help="write a report; the suffix picks the format (.json, .md, .html); repeatable")
    o.add_argument("--out", type=Path, metavar="DIR", help="write the generated case files here and keep them")
    o.add_argument("-j", "--jobs", type=int, metavar="N", help="run the checks in N worker processes (0: one per core)")
    o.add_argument("-q", "--quiet", action="store_true", help="print only the summary")


def parse_modes(text: str) -> tuple[Mode, ...]:
    """A comma-separated list of modes (``value,vjp,jvp-of-jvp``)."""
    names = [m.strip() for m in text.split(",") if m.strip()]
    unknown = [m for m in names if m not in {mode.value for mode in Mode}]
    if unknown or not names:
        raise argparse.ArgumentTypeError(f"unknown mode {unknown[0] if unknown else text!r}; use a comma-separated "
                                         f"list of {', '.join(m.value for m in Mode)}")
    return tuple(Mode(m) for m in dict.fromkeys(names))


def opinfo_command(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    from gradspec.tools.opinfo import coverage, load_op_db

    if args.jobs is not None and args.jobs < 0:
        raise GradspecError("--jobs must be 0 (one per core) or more")
    if args.uncovered and not args.list:
        raise GradspecError("--uncovered goes with --list")
    op_db = load_op_db()
    if not args.list:
        return _opinfo_run(args, op_db, out, err)
    cover = coverage(op_db)
    if args.uncovered:
        by_reason: dict[str, list[str]] = {}
        for name, reason in cover.uncovered:
            by_reason.setdefault(reason, []).append(name)
        for reason, names in sorted(by_reason.items(), key=lambda item: (-len(item[1]), item[0])):
            print(f"not covered ({len(names)}): {reason}: {', '.join(names)}", file=out)
    else:
        width = max((len(n) for n, _ in cover.covered), default=0)
        for name, entry in cover.covered:
            note = f"  ({entry.note})" if entry.note else ""
            print(f"{name:<{width}}  {entry.op}{note}", file=out)
    print(f"{len(cover.covered)} of {cover.total} differentiable OpInfo entries covered", file=out)
    return EXIT_OK


def _opinfo_run(args: argparse.Namespace, op_db: list[Any], out: TextIO, err: TextIO) -> int:
    import shutil
    import tempfile

    import gradspec
    from gradspec.report import check_report_paths, write_reports
    from gradspec.report.terminal import failure_lines, summary
    from gradspec.results import Run
    from gradspec.run.plan import run_planned
    from gradspec.tools.opinfo import coverage, prepare

    check_report_paths(args.report)
    spec = "torch" if args.dtype == "float64" else "torch:float32"
    engine = usable([spec])[0]
    start = time.perf_counter()
    folder = args.out or Path(tempfile.mkdtemp(prefix="gradspec-opinfo-"))
    folder.mkdir(parents=True, exist_ok=True)
    try:
        entries = args.ops or [n for n, _ in coverage(op_db).covered]
        progress = Progress(err, len(entries), "OpInfo entries converted")
        try:
            prepared = prepare(op_db, entries, folder, engine=engine.name, dtype=args.dtype, asked=args.check,
                               order=args.order, on_entry=progress.step)
        finally:
            progress.done()
        files = prepared.files
        picked = [(fi, ci) for fi, f in enumerate(files) for ci in range(len(f.cases))]
        progress = Progress(err, len(picked), "cases")
        try:
            results, _ = run_planned(files, picked, [(spec, engine)], [(0,)] * len(picked), jobs=args.jobs,
                                     on_case=progress.step, on_failure=progress.failure, isolate=True)
        finally:
            progress.done()
    finally:
        if args.out is None:
            shutil.rmtree(folder, ignore_errors=True)
    run = Run(tuple(results) + tuple(prepared.skipped), (engine.name,), tuple(f.path for f in files), (),
              time.perf_counter() - start, gradspec.__version__)
    if not args.quiet:
        for line in failure_lines(list(results)):
            print(line, file=out)
        for note in prepared.notes:
            print(note, file=out)
    print(f"OpInfo: {len(entries)} entries, {prepared.samples} samples, {len(picked)} cases run, "
          f"{len(prepared.skipped)} samples not run (see the skip reasons)", file=out)
    print(summary(run), file=out)
    write_reports(args.report, run)
    for path in args.report:
        print(f"report written: {path}", file=out)
    if args.out is not None:
        print(f"case files written: {folder}", file=out)
    failed = any(r.verdict in (Verdict.FAIL, Verdict.ERROR) for r in run.results)
    return EXIT_FAILED if failed else EXIT_OK
