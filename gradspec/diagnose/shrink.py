"""Shrinking a failure: the smallest sub-expression that still fails, and the simplest failing input.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from fractions import Fraction
from typing import Any

from gradspec.diagnose.text import _ancestors, _number, subprogram
from gradspec.engines.protocol import Engine
from gradspec.graph.ir import Graph

__all__ = ["as_yaml_case", "shrink", "shrink_input"]

_SHRINK_LIMIT = 200  # steps; larger graphs are not shrunk


def shrink(graph: Graph, point: Mapping[str, Fraction], engine: Engine, still_fails: Any) -> tuple[str, dict[str, Fraction]] | None:
    """The smallest sub-expression of ``graph`` that still fails on ``engine``, with its point.

    ``still_fails(text, point)`` decides whether a candidate fails (the caller's own check).
    """
    if len(graph.steps) > _SHRINK_LIMIT:
        return None
    candidates = []
    for i, step in enumerate(graph.steps):
        if step.op is None or not graph.varying[i]:
            continue
        text = subprogram(graph, i)
        used = {graph.steps[a].name for a in _ancestors(graph, i)} - {None}
        candidates.append((_size(graph, i), text, {n: v for n, v in point.items() if n in used}))
    for _, text, sub_point in sorted(candidates, key=lambda c: (c[0], c[1])):
        if still_fails(text, sub_point):
            return text, sub_point
    return None


def _size(graph: Graph, index: int) -> int:
    return sum(1 for i in _ancestors(graph, index) if graph.steps[i].op is not None)


def as_yaml_case(case_id: str, text: str, point: Mapping[str, Fraction], note: str) -> str:
    """A ready-to-paste case for a case file's ``cases:`` list."""
    at = ", ".join(f"{k}: {_number(v)}" for k, v in point.items())
    return f"- id: {case_id}\n  description: {json.dumps(note)}\n  expr: {json.dumps(text)}\n  at: {{{at}}}\n"


def shrink_input(point: Mapping[str, Fraction], bounds: Mapping[str, Any], still_fails: Any) -> dict[str, Fraction]:
    """A simpler failing input, Hypothesis-style: each variable in turn moves to the simplest value it
    can take (0, then integers, then fewer decimals, then halfway towards those) while the check still
    fails and the value stays inside its sampled domain. Deterministic: no randomness at all."""
    current = dict(point)
    for name in current:
        allows = bounds[name].allows if name in bounds else (lambda v: True)
        for _ in range(60):  # each accepted step makes the value strictly simpler
            better = next((c for c in _simpler(current[name]) if allows(float(c))
                           and still_fails({**current, name: c})), None)
            if better is None:
                break
            current[name] = better
    return current


def _simpler(v: Fraction) -> list[Fraction]:
    """Candidates simpler than ``v``, simplest first."""
    sign = 1 if v >= 0 else -1
    out = [Fraction(0), *(Fraction(sign * k) for k in range(1, min(abs(round(v)), 20))), Fraction(round(v))]
    out += [Fraction(round(float(v), k)).limit_denominator(10**k) for k in range(0, 6)]
    out += [v / 2, Fraction(round(v)) + (v - round(v)) / 2]
    seen = []
    for c in out:
        if c != v and c not in seen and _complexity(c) < _complexity(v):
            seen.append(c)
    return seen


def _complexity(v: Fraction) -> tuple[int, float]:
    """Fewer decimals first, then nearer 0."""
    decimals = next((k for k in range(21) if (v * 10**k).denominator == 1), 99)
    return (decimals, abs(float(v)))
