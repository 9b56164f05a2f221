"""Starting a case library: ``gradspec init [DIR]`` and ``gradspec schema [--write DIR]``.

``init`` writes a commented starter case file, with the schema copied beside it so that its
``$schema`` line resolves in an editor on any machine (:mod:`gradspec.casefile.schema_file`), and
prints how to run it. ``schema`` prints the installed schema's path, or copies it into a folder.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any, TextIO

from gradspec.casefile.schema_file import SCHEMA_LINE, copy_beside, installed
from gradspec.errors import GradspecError

__all__ = ["STARTER", "STARTER_NAME", "add_parsers", "init_command", "schema_command"]

STARTER_NAME = "starter.gradspec.yaml"

STARTER = f"""{SCHEMA_LINE}
# A gradspec case file. Every key is described in {installed().name} beside this file (your editor
# completes and checks keys from it). Files must end in .gradspec.yaml to be collected.
version: 1
description: Starter cases to edit, copy and add to
defaults:
  tolerance: {{rtol: 1e-7, atol: 1e-10}}    # |engine - exact| <= atol + rtol * |exact|
cases:
  # One expression at one point. gradspec differentiates it exactly (SymPy) and compares the engine's
  # value and every gradient; `expect` is optional, and is itself checked against SymPy when loading.
  - id: mul
    description: d(x*y)/dx = y, d(x*y)/dy = x
    expr: x * y
    at: {{x: 2, y: 3}}
    expect: {{value: 6, grad: {{x: 3, y: 2}}}}

  # Named intermediates are graph nodes: their gradients are checked too. Several points in a list.
  - id: shared-intermediate
    expr: |
      a = x * y
      b = a + x
      b * a
    at: [{{x: 2, y: 3}}, {{x: -1, y: 0.5}}]

  # A sampled domain: `count` points drawn (seeded from the case id, so every run draws the same ones).
  - id: tanh-of-square
    expr: tanh(x**2) + exp(-x) * sin(x)
    sample:
      count: 20
      vars:
        x: {{uniform: [-3, 3]}}

  # A point on a kink must say which gradient it accepts: `convention` (the declared relu'(0) = 0)
  # or `any` (every subgradient passes).
  - id: relu-at-zero
    expr: relu(x)
    at: {{x: 0}}
    kink: convention
    expect: {{grad: {{x: 0}}}}

  # Ops: + - * / **, unary -, relu tanh exp log sigmoid sin cos sqrt abs. A case can be tagged
  # (pytest -m TAG), skipped or marked xfail with a reason, and limited to some engines.
  - id: log-sigmoid
    expr: log(sigmoid(x)) / (1 + x**2)
    at: {{x: 0.5}}
    tags: [smoke]
"""


def add_parsers(sub: Any) -> None:
    """Add ``init`` and ``schema`` to the command line's subparsers."""
    i = sub.add_parser("init", help="write a commented starter case file (and the schema beside it)")
    i.add_argument("dir", nargs="?", default="grad_cases", type=Path,
                   help="the folder for the case files (default: grad_cases)")
    s = sub.add_parser("schema", help="print the path of the case-file JSON Schema, or copy it into a folder")
    s.add_argument("--write", type=Path, metavar="DIR", help="copy the schema into DIR (beside your case files)")


def init_command(args: argparse.Namespace, out: TextIO) -> int:
    folder: Path = args.dir
    target = folder / STARTER_NAME
    if target.exists():
        raise GradspecError(f"{target} already exists; gradspec init does not overwrite it "
                            "(name another folder, or move the file away)")
    if folder.exists() and not folder.is_dir():
        raise GradspecError(f"{folder} is not a folder")
    schema, _ = copy_beside(folder)
    target.write_text(STARTER, encoding="utf-8")
    print(f"wrote {target}", file=out)
    print(f"wrote {schema} (the schema its first line names, for completion and checks in your editor)", file=out)
    print("run it on the built-in engine, on your own Value class (from the folder that holds mymodule.py),"
          " or through pytest:", file=out)
    for command in (f"gradspec run {folder}", f"gradspec run {folder} --engine mymodule:Value", f"pytest {folder}"):
        print(f"  {command}", file=out)
    return 0


def schema_command(args: argparse.Namespace, out: TextIO) -> int:
    if args.write is None:
        print(installed(), file=out)
        return 0
    if args.write.exists() and not args.write.is_dir():
        raise GradspecError(f"{args.write} is not a folder")
    path, written = copy_beside(args.write)
    print(f"{'wrote' if written else 'up to date:'} {path}", file=out)
    print(f"first line of a case file beside it: {SCHEMA_LINE}", file=out)
    return 0
