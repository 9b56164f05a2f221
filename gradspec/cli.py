"""The ``gradspec`` command line: ``main(argv) -> exit code``, writing to the streams it is given.

Exit codes: 0 every check passed, 1 a check failed, 2 invalid input or usage, 130 interrupted (Ctrl-C),
141 the output was closed early (piped into ``head``).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import NoReturn, TextIO

import gradspec
from gradspec import starter
from gradspec.casefile.model import Overrides
from gradspec.checks.api import check
from gradspec.commands import (
    EXIT_FAILED,
    EXIT_INVALID,
    EXIT_OK,
    add_opinfo_parser,
    explain_command,
    fuzz_command,
    load_all,
    mutate_command,
    opinfo_command,
    parse_modes,
    sweep_command,
    usable,
)
from gradspec.config import Config, engine_help, importable
from gradspec.config import load as load_config
from gradspec.engines.protocol import Engine
from gradspec.errors import GradspecError
from gradspec.limits import LIMITS
from gradspec.report.terminal import Progress, failure_lines, next_steps, summary
from gradspec.results import COMPARED, Run, Tolerance, Verdict

__all__ = ["main"]

EXIT_INTERRUPTED = 130  # 128 + SIGINT, as shells report it
EXIT_BROKEN_PIPE = 128 + signal.SIGPIPE if hasattr(signal, "SIGPIPE") else 1


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise _UsageError(f"{self.prog}: {message}")


class _UsageError(Exception):
    pass


class _VersionAction(argparse.Action):
    """``--version``, printed by main() to the stream it was given (argparse's own prints to sys.stdout)."""

    def __init__(self, option_strings: Sequence[str], dest: str, **kwargs: object) -> None:
        super().__init__(option_strings, dest, nargs=0, help="print gradspec's version and exit")

    def __call__(self, *args: object, **kwargs: object) -> None:
        raise _VersionRequested


class _VersionRequested(Exception):
    pass


def _max_fail(text: str) -> int:
    n = int(text)
    if n < 1:
        raise argparse.ArgumentTypeError(f"expected a number of failures of 1 or more, got {text}")
    return n


def _point(text: str) -> dict[str, str]:
    point: dict[str, str] = {}
    for part in text.split(","):
        name, sep, value = part.partition("=")
        if not sep or not name.strip() or not value.strip():
            raise argparse.ArgumentTypeError(f"expected name=value[,name=value...], got {text!r}")
        point[name.strip()] = value.strip()
    return point


def _build_parser(config: Config | None = None) -> _Parser:
    engines = engine_help(config or Config())
    parser = _Parser(prog="gradspec", description="Declarative gradient checks for autograd engines.")
    parser.add_argument("--version", action=_VersionAction)
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    p = sub.add_parser("check", help="check one expression at one or more points")
    p.add_argument("expression", help="e.g. '(x*y + x)**2 - tanh(y)' or 'a = x*y; b = a + x; b'")
    p.add_argument("--at", type=_point, action="append", required=True, metavar="x=2,y=3",
                   help="a point (repeat for several)")
    p.add_argument("--engine", action="append", metavar="SPEC", help=f"default builtin; repeatable: {engines}")
    p.add_argument("--rtol", type=float, default=Tolerance.rtol)
    p.add_argument("--atol", type=float, default=Tolerance.atol)
    p.add_argument("--h", type=float, default=Tolerance.h, help="numerical reference step")

    e = sub.add_parser("explain", help="show the graph node by node and localise a wrong gradient")
    e.add_argument("target", help="an expression, or FILE::CASE_ID from a case file")
    e.add_argument("--at", type=_point, metavar="x=2,y=3", help="the point (for an expression)")
    e.add_argument("--point", type=int, default=0, metavar="N", help="which point of the case (default 0)")
    e.add_argument("--engine", default="builtin", metavar="SPEC", help=f"default builtin: {engines}")
    e.add_argument("--dot", action="store_true", help="print the graph as Graphviz DOT instead")

    f = sub.add_parser("fuzz", help="check random expression graphs on an engine; shrink and save a failure")
    f.add_argument("--engine", default="builtin", metavar="SPEC", help=f"default builtin: {engines}")
    f.add_argument("--count", type=int, default=200, help="graphs to try (default 200)")
    f.add_argument("--seed", type=int, default=0, help="random seed (default 0): the same seed, the same graphs")
    f.add_argument("--max-depth", type=int, default=6, help="most steps in a graph (default 6)")
    f.add_argument("--out", type=Path, metavar="DIR", help="write the shrunk failure here as a YAML case")

    w = sub.add_parser("sweep", help="a gradient's accuracy across a range of one variable")
    w.add_argument("expression", help="e.g. 'exp(x)'")
    w.add_argument("--var", required=True, help="the variable to sweep")
    w.add_argument("--range", nargs=2, type=float, required=True, metavar=("A", "B"), help="from A to B")
    w.add_argument("--points", type=int, default=201, help="how many points, evenly spaced (default 201)")
    w.add_argument("--at", type=_point, default={}, metavar="y=1", help="values of the other variables")
    w.add_argument("--engine", action="append", metavar="SPEC", help=f"default builtin; repeatable: {engines}")
    w.add_argument("--plot", type=Path, metavar="FILE.svg", help="write correct digits against the variable as SVG")

    m = sub.add_parser("mutate", help="score a case library against gradient mutants of the built-in engine")
    m.add_argument("paths", nargs="*", metavar="PATH", help="case files or directories (default: the built-in library)")
    m.add_argument("--all", dest="every", action="store_true",
                   help="run every case on every mutant and list all its killers (default: stop at the first)")
    m.add_argument("--first", action="store_true", help=argparse.SUPPRESS)  # the default now; kept for old scripts
    m.add_argument("-j", "--jobs", type=int, default=1, metavar="N",
                   help="score the mutants in N processes (0: one per core; default 1)")

    v = sub.add_parser("validate", help="check case files against the schema and SymPy without running engines")
    v.add_argument("paths", nargs="*", metavar="PATH", help="case files or directories (default: the built-in library)")

    r = sub.add_parser("run", help="run case files on engines and compare with the exact references")
    r.add_argument("paths", nargs="*", metavar="PATH", help="case files or directories (default: the built-in library)")
    r.add_argument("--engine", action="append", metavar="SPEC",
                   help=f"repeatable; default: pyproject.toml's engines, else builtin, and a function case's own "
                        f"engines (its function: keys); given, it also filters function cases: {engines}")
    r.add_argument("--report", action="append", default=[], metavar="FILE",
                   help="write a report; the suffix picks the format (.json, .md, .html); repeatable")
    r.add_argument("--shard", metavar="K/N",
                   help="run only the K-th of N parts of the picked cases, split by case and balanced by cost, the "
                        "same on every machine (one CI job per part; join their JSON reports with gradspec merge)")
    r.add_argument("-k", dest="keyword", metavar="TEXT", help="only cases whose id contains TEXT")
    r.add_argument("--exclude", action="append", default=[], metavar="CASE_ID",
                   help="leave out the case with this id (repeatable)")
    r.add_argument("-q", "--quiet", action="store_true", help="print only the summary (no progress, no failing checks)")
    r.add_argument("-v", "--verbose", action="store_true",
                   help="print every failing check in full (default: the worst point of each case and engine)")
    r.add_argument("--maxfail", type=_max_fail, metavar="N", help="stop after N failing checks")
    r.add_argument("-x", "--exitfirst", dest="maxfail", action="store_const", const=1,
                   help="stop at the first failing check (--maxfail 1)")
    r.add_argument("--strict", action="store_true",
                   help="fail the run on an imprecise check (digits lost beyond what rounding allows, within what a "
                        "formula rebuilt from a rounded intermediate loses); by default it is reported and exits 0")
    nondet = r.add_mutually_exclusive_group()
    nondet.add_argument("--nondet-tol", type=float, metavar="TOL",
                        help="how far two runs of one check may differ, an explicit absolute bound (default: the "
                             "case's nondet_tol, else what rounding in the engine's precision allows two runs of "
                             "that quantity); every check runs the engine twice")
    nondet.add_argument("--deterministic", action="store_true",
                        help="the two runs of every check must agree bitwise (--nondet-tol 0)")
    r.add_argument("--check", type=parse_modes, metavar="MODES",
                   help="compare these quantities in every gradient, stationary, tensor and function case, a "
                        "comma-separated list of value, vjp, jvp, hvp, jvp-of-jvp, jacobian (default: each case's "
                        "check: list)")
    r.add_argument("--order", type=int, choices=range(1, 7), metavar="N",
                   help="check nested derivatives up to order N (2 to 6) in the same cases (default: each case's order:)")
    r.add_argument("--time-limit", type=float, metavar="SECONDS",
                   help=f"fail a check whose engine call takes longer (default {type(LIMITS).engine:g})")
    r.add_argument("--in-process", action="store_true",
                   help="run every engine in this process (by default engines other than builtin run in a worker "
                        "process, so that one that crashes or hangs fails its check and the run goes on)")
    r.add_argument("-j", "--jobs", type=int, metavar="N",
                   help="run the checks in N worker processes (0: one per core); an engine stuck in native code "
                        "past the time limit, or crashing, fails its check and the run goes on")
    g = sub.add_parser("merge", help="join the JSON reports of sharded or per-engine jobs into one report")
    g.add_argument("inputs", nargs="+", metavar="REPORT.json", help="JSON reports written by gradspec run --report")
    g.add_argument("--report", action="append", default=[], metavar="FILE",
                   help="write the joined report; the suffix picks the format (.json, .md, .html); repeatable")
    g.add_argument("-q", "--quiet", action="store_true", help="print only the summary")
    add_opinfo_parser(sub)
    starter.add_parsers(sub)
    return parser


def main(argv: Sequence[str] | None = None, stdout: TextIO | None = None, stderr: TextIO | None = None) -> int:
    out = stdout or sys.stdout
    err = stderr or sys.stderr
    try:
        args = _build_parser(_help_config()).parse_args(argv)
    except _UsageError as exc:
        print(exc, file=err)
        return EXIT_INVALID
    except _VersionRequested:
        print(f"gradspec {gradspec.__version__}", file=out)
        return EXIT_OK
    except SystemExit as exc:  # --help
        return int(exc.code or 0)
    try:
        return _dispatch(args, out, err)
    except BrokenPipeError:
        # The reader went away (``gradspec run | head``): stop quietly, as Python's documentation
        # advises; the descriptor is pointed at devnull so that the flush at exit does not fail again.
        for stream in (out, err):
            with contextlib.suppress(OSError, ValueError, AttributeError):  # not a real file (a StringIO)
                os.dup2(os.open(os.devnull, os.O_WRONLY), stream.fileno())
        return EXIT_BROKEN_PIPE


_UNCONFIGURED = ("init", "schema", "merge")


def _help_config() -> Config:
    """The configuration for the help text alone: a broken one is reported when a command runs."""
    try:
        return load_config()
    except GradspecError:
        return Config()


def _dispatch(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    try:
        # pyproject.toml's [tool.gradspec], and modules in the current folder and the project root
        # importable (as `python -m` has the current folder), for the duration of the command.
        args.config = Config() if args.command in _UNCONFIGURED else load_config()
        saved = LIMITS.elements
        LIMITS.elements = args.config.max_elements or saved
        try:
            with importable(Path.cwd(), args.config.root):
                return _command(args, out, err)
        finally:
            LIMITS.elements = saved
    except GradspecError as exc:
        print(f"gradspec: {exc}", file=err)
        return EXIT_INVALID
    except KeyboardInterrupt:
        print("gradspec: interrupted", file=err)
        return EXIT_INTERRUPTED


def _command(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    if args.command == "init":
        return starter.init_command(args, out)
    if args.command == "schema":
        return starter.schema_command(args, out)
    if args.command == "check":
        return _check_command(args, out)
    if args.command == "explain":
        return explain_command(args, out)
    if args.command == "fuzz":
        return fuzz_command(args, out, err)
    if args.command == "sweep":
        return sweep_command(args, out)
    if args.command == "mutate":
        return mutate_command(args, out, err)
    if args.command == "opinfo":
        return opinfo_command(args, out, err)
    if args.command == "validate":
        return _validate_command(args, out, err)
    if args.command == "merge":
        return _merge_command(args, out)
    return _run_command(args, out, err)


def _check_command(args: argparse.Namespace, out: TextIO) -> int:
    tol = Tolerance(rtol=args.rtol, atol=args.atol, h=args.h)
    verdicts = []
    idle = []  # engines that compared nothing (every check skipped): that is not a pass
    for engine in usable(args.config.specs(args.engine)):
        mine = []
        for point in args.at:
            result = check(args.expression, point, engine=engine, tolerance=tol)
            print(result.table(), file=out)
            mine.append(result.verdict)
        verdicts += mine
        if not any(v in COMPARED for v in mine):
            idle.append(engine.name)
    for name in idle:
        print(f"engine {name} compared nothing: every check was skipped", file=out)
    if Verdict.ERROR in verdicts:
        return EXIT_INVALID
    return EXIT_FAILED if Verdict.FAIL in verdicts or idle else EXIT_OK



def _validate_command(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    files, errors = load_all(args.paths or args.config.case_paths, err)
    cases = sum(len(f.cases) for f in files)
    points = sum(max(1, len(c.points)) for f in files for c in f.cases)
    print(f"{len(files)} valid file(s), {cases} cases, {points} points; {len(errors)} error(s)", file=out)
    return EXIT_INVALID if errors else EXIT_OK


def _merge_command(args: argparse.Namespace, out: TextIO) -> int:
    from gradspec.report import check_report_paths, write_reports
    from gradspec.report.merge import merge

    check_report_paths(args.report)
    run = merge(args.inputs)
    if not args.quiet:
        for line in failure_lines(list(run.results)):
            print(line, file=out)
    print(summary(run), file=out)
    write_reports(args.report, run)
    for path in args.report:
        print(f"report written: {path}", file=out)
    return run.exit_code


def _run_command(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    if args.time_limit is not None and args.time_limit <= 0:
        raise GradspecError("--time-limit must be positive")
    if args.nondet_tol is not None and not args.nondet_tol >= 0:
        raise GradspecError("--nondet-tol must be 0 or more")
    if args.jobs is not None and args.jobs < 0:
        raise GradspecError("--jobs must be 0 (one per core) or more")
    saved = LIMITS.engine
    LIMITS.engine = args.time_limit or args.config.time_limit or type(LIMITS).engine
    try:
        return _run(args, out, err)
    finally:
        LIMITS.engine = saved  # main() is a function: it leaves the process's limits as it found them


def _run(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    from gradspec.run.plan import case_cost, plan, run_planned
    from gradspec.run.shard import case_key, parse_shard, shard

    part = parse_shard(args.shard) if args.shard else None
    defaults = args.config.specs(args.engine)
    usable(defaults)  # an engine asked for that cannot take part stops the run before any file loads
    from gradspec.report import check_report_paths, write_reports

    check_report_paths(args.report)
    start = time.perf_counter()
    files, errors = load_all(args.paths or args.config.case_paths, err)
    overrides = Overrides(0.0 if args.deterministic else args.nondet_tol, args.check, args.order)
    files = [f.with_overrides(overrides) for f in files]
    picked = [(fi, ci) for fi, f in enumerate(files) for ci, c in enumerate(f.cases)
              if (not args.keyword or args.keyword in c.id) and c.id not in args.exclude]
    specs, per_case = plan([files[fi].cases[ci] for fi, ci in picked], defaults, explicit=bool(args.engine))
    if part is not None:
        cases = [files[fi].cases[ci] for fi, ci in picked]
        kept = shard([case_key(c.path, c.id) for c in cases],
                     [case_cost(c, len(e)) for c, e in zip(cases, per_case, strict=True)], *part)
        picked = [picked[i] for i in kept]  # planned again: a shard needs only the engines of its own cases
        specs, per_case = plan([files[fi].cases[ci] for fi, ci in picked], defaults, explicit=bool(args.engine))
    engines: list[Engine] = usable(specs)
    runs = sum(len(e) for e in per_case)
    progress = Progress(err, runs, "cases" if runs == len(picked) else "case runs", shown=not args.quiet)
    try:
        results, stopped = run_planned(files, picked, list(zip(specs, engines, strict=True)), per_case,
                                       jobs=args.jobs, maxfail=args.maxfail, on_case=progress.step,
                                       on_failure=progress.failure, overrides=overrides, isolate=not args.in_process)
    finally:
        progress.done()
    run = Run(tuple(results), tuple(e.name for e in engines), tuple(f.path for f in files), tuple(errors),
              time.perf_counter() - start, gradspec.__version__, strict=args.strict)
    if not args.quiet:
        for line in failure_lines(results, every=args.verbose):
            print(line, file=out)
    if stopped:
        print(f"stopped after {args.maxfail} failing check(s) (--maxfail {args.maxfail}); the rest did not run",
              file=out)
    print(summary(run), file=out)
    write_reports(args.report, run)
    for path in args.report:
        print(f"report written: {path}", file=out)
    if run.exit_code == EXIT_OK and not args.quiet and (tip := next_steps([e.name for e in engines], args.report)):
        print(tip, file=out)
    return run.exit_code


if __name__ == "__main__":
    raise SystemExit(main())
