"""The ``gradspec`` command line: ``main(argv) -> exit code``, writing to the streams it is given.

Exit codes: 0 every check passed, 1 a check failed, 2 invalid input or usage.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import TextIO

from gradspec._check import check
from gradspec._results import Tolerance, Verdict
from gradspec.errors import GradspecError

__all__ = ["main"]

EXIT_OK, EXIT_FAILED, EXIT_INVALID = 0, 1, 2


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        raise _UsageError(f"{self.prog}: {message}")


class _UsageError(Exception):
    pass


def _point(text: str) -> dict[str, str]:
    point: dict[str, str] = {}
    for part in text.split(","):
        name, sep, value = part.partition("=")
        if not sep or not name.strip() or not value.strip():
            raise argparse.ArgumentTypeError(f"expected name=value[,name=value...], got {text!r}")
        point[name.strip()] = value.strip()
    return point


def _build_parser() -> _Parser:
    parser = _Parser(prog="gradspec", description="Declarative gradient checks for autograd engines.")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    p = sub.add_parser("check", help="check one expression at one or more points")
    p.add_argument("expression", help="e.g. '(x*y + x)**2 - tanh(y)' or 'a = x*y; b = a + x; b'")
    p.add_argument("--at", type=_point, action="append", required=True, metavar="x=2,y=3",
                   help="a point (repeat for several)")
    p.add_argument("--engine", action="append", metavar="SPEC", help="'builtin' (default) or 'module.path:Class'")
    p.add_argument("--rtol", type=float, default=Tolerance.rtol)
    p.add_argument("--atol", type=float, default=Tolerance.atol)
    p.add_argument("--h", type=float, default=Tolerance.h, help="numerical reference step")
    return parser


def main(argv: Sequence[str] | None = None, stdout: TextIO | None = None, stderr: TextIO | None = None) -> int:
    out = stdout or sys.stdout
    err = stderr or sys.stderr
    try:
        args = _build_parser().parse_args(argv)
    except _UsageError as exc:
        print(exc, file=err)
        return EXIT_INVALID
    except SystemExit as exc:  # --help
        return int(exc.code or 0)
    try:
        return _check_command(args, out)
    except GradspecError as exc:
        print(f"gradspec: {exc}", file=err)
        return EXIT_INVALID


def _check_command(args: argparse.Namespace, out: TextIO) -> int:
    tol = Tolerance(rtol=args.rtol, atol=args.atol, h=args.h)
    verdicts = []
    for engine in args.engine or ["builtin"]:
        for point in args.at:
            result = check(args.expression, point, engine=engine, tolerance=tol)
            print(result.table(), file=out)
            verdicts.append(result.verdict)
    if Verdict.ERROR in verdicts:
        return EXIT_INVALID
    return EXIT_FAILED if Verdict.FAIL in verdicts else EXIT_OK


if __name__ == "__main__":
    raise SystemExit(main())
