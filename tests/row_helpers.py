"""Helpers of the layer and loss row tests: a tensor expression evaluated through its lowering in floats,
and a case file run through the CLI."""

from __future__ import annotations

import io
from collections.abc import Sequence
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np

from gradspec.cli import main
from gradspec.graph.tensor import build_tensor, evaluate
from gradspec.lang.expr import parse
from gradspec.ops.table import OPS


class Floats:
    """A scalar backend of plain floats: every op by its row's float form."""

    def op(self, name: str, *args: Any) -> float:
        return float(OPS[name].fn(*(float(a) for a in args)))

    def shift(self, xs: Sequence[Any]) -> Fraction | None:
        return None


def lowered(text: str, data: Sequence[str] = (), **inputs: Any) -> Any:
    """``text`` at ``inputs`` through the op table's lowerings, in float64 (data inputs as exact Fractions)."""
    arrays = {n: np.asarray(v, dtype=float) for n, v in inputs.items()}
    graph = build_tensor(parse(text), {n: a.shape for n, a in arrays.items()}, frozenset(data))
    leaves = {}
    for name, a in arrays.items():
        leaf = np.empty(a.shape, dtype=object)
        for i in np.ndindex(a.shape):
            leaf[i] = Fraction(float(a[i])) if name in data else float(a[i])
        leaves[name] = leaf
    out = evaluate(graph, Floats(), leaves)[graph.output]
    return np.vectorize(float, otypes=[float])(out)


def run_file(tmp_path: Path, text: str) -> tuple[int, str, str]:
    """``gradspec run`` on a case file holding ``text``, on the built-in engine."""
    path = tmp_path / "case.gradspec.yaml"
    path.write_text("version: 1\ncases:\n" + text)
    out, err = io.StringIO(), io.StringIO()
    code = main(["run", str(path), "--engine", "builtin", "-q"], out, err)
    return code, out.getvalue(), err.getvalue()
