"""Stability sweeps: how accurate an engine's gradient is across a range of one variable.

At each point the engine's gradient is compared with the exact one, and the point is classed: correct
to (nearly) every digit, losing digits, wrong, overflowing where the exact value is finite in float64,
beyond float64 altogether (the exact value itself overflows or underflows), or nan. Adjacent points in
the same class are reported as one range. Engines that can evaluate many points in one call (PyTorch,
JAX: ``run_batch``) do so; the others are run point by point.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from fractions import Fraction
from html import escape

import mpmath

from gradspec.engines import call
from gradspec.engines.protocol import Engine
from gradspec.errors import DomainError
from gradspec.graph.ir import Graph
from gradspec.reference.chain import adjoints, forward
from gradspec.reference.exact import DPS
from gradspec.reference.mpeval import to_mpf
from gradspec.reference.store import STORE

__all__ = ["Sample", "SweepRange", "classify", "ranges", "render_svg", "sweep"]

_FLOAT64_MAX = 1.7976931348623157e308
_TINY = 2.2250738585072014e-308
_FLOAT32_MAX = 3.4028234663852886e38
_TINY32 = 1.1754943508222875e-38


@dataclass(frozen=True)
class Sample:
    x: float
    engine: float | None
    exact: float  # rounded to float64 (inf beyond its range)
    digits: float  # correct significant digits of the engine's gradient (17 = exact)
    status: str


@dataclass(frozen=True)
class SweepRange:
    status: str
    start: float
    stop: float
    count: int
    worst_digits: float
    example: Sample


def _digits(engine: float, exact: float) -> float:
    if engine == exact:
        return 17.0
    if not math.isfinite(engine) or not math.isfinite(exact):
        return 0.0
    rel = abs(engine - exact) / max(abs(exact), _TINY)
    return max(0.0, min(17.0, -math.log10(rel))) if rel > 0 else 17.0


def classify(engine: float | None, exact_mp: mpmath.mpf, eps: float = 2.0**-52) -> tuple[str, float]:
    """The class of one point and the engine's correct digits there."""
    exact = float(exact_mp)
    full = -math.log10(eps)  # digits the dtype can hold
    dtype, fmax, tiny = ("float32", _FLOAT32_MAX, _TINY32) if eps > 1e-10 else ("float64", _FLOAT64_MAX, _TINY)
    if engine is None or math.isnan(engine):
        return ("nan" if mpmath.isfinite(exact_mp) else "undefined (exact is nan)"), 0.0
    if mpmath.isfinite(exact_mp) and abs(exact_mp) > fmax:
        label = f"beyond {dtype}: the exact gradient overflows"
        return (label + (", engine gives inf" if math.isinf(engine) else f", engine gives {engine:.3g}")), 0.0
    if mpmath.isfinite(exact_mp) and 0 < abs(exact_mp) < tiny and abs(engine) < tiny:
        return f"beyond {dtype}: the exact gradient underflows (subnormal or 0)", full
    if math.isinf(engine):
        return ("overflow: engine gives inf for a finite gradient" if math.isfinite(exact) else "exact is infinite"), 0.0
    digits = _digits(engine, exact)
    if digits >= full - 2:
        return "accurate", digits
    if digits >= 3:
        return "loses digits", digits
    return "no correct digits", digits


def sweep(
    graph: Graph,
    var: str,
    xs: Sequence[float],
    engine: Engine,
    fixed: Mapping[str, Fraction],
) -> list[Sample]:
    """The engine's d output / d ``var`` at each x, against the exact value."""
    points = [{**{k: float(v) for k, v in fixed.items()}, var: x} for x in xs]
    batch = call.batch(engine, graph, {k: [p[k] for p in points] for k in points[0]})
    if batch is not None and batch.verdict is None:
        engine_grads: list[float | None] = list(batch.get()[1][var])
    else:  # point by point; the engine failing at a point is a result of the sweep
        runs = [call.run(engine, graph, p, representable=False) for p in points]
        engine_grads = [r.get().grads.get(var) if r.verdict is None else math.nan for r in runs]
    exact_grads = _exact_grads(graph, var, xs, fixed)
    out = []
    for x, g, e in zip(xs, engine_grads, exact_grads, strict=True):
        status, digits = classify(g, e, getattr(engine, "eps", 2.0**-52))
        out.append(Sample(x, g, float(e), digits, status))
    return out


def _exact_grads(graph: Graph, var: str, xs: Sequence[float], fixed: Mapping[str, Fraction]) -> list[mpmath.mpf]:
    """The exact d output / d ``var`` at each x, taken at the float the engine receives (nan outside the
    domain)."""
    d = STORE.derivation(graph) if STORE.symbolic(graph) else None
    out = []
    with mpmath.workdps(DPS):
        others = {k: to_mpf(v) for k, v in fixed.items()}
        for x in xs:
            env = {**others, var: to_mpf(x)}
            try:
                values, _ = forward(graph, env)  # also the domain check, for the symbolic path
            except DomainError:
                out.append(mpmath.nan)
                continue
            if d is not None:
                out.append(d.evaluate(var, {d.symbols[k]: v for k, v in env.items()}))
            else:
                out.append(adjoints(graph, values)[dict(graph.inputs)[var]])
    return out


def ranges(samples: Sequence[Sample]) -> list[SweepRange]:
    """Adjacent samples of the same class, merged."""
    out: list[SweepRange] = []
    for s in samples:
        if out and out[-1].status == s.status:
            r = out[-1]
            out[-1] = SweepRange(r.status, r.start, s.x, r.count + 1, min(r.worst_digits, s.digits),
                                 r.example if r.worst_digits <= s.digits else s)
        else:
            out.append(SweepRange(s.status, s.x, s.x, 1, s.digits, s))
    return out


def render_svg(title: str, series: Mapping[str, Sequence[Sample]], width: int = 720, height: int = 300) -> str:
    """Correct digits against x, one line per engine, as a self-contained SVG."""
    colours = ("#2563eb", "#dc2626", "#059669", "#d97706", "#7c3aed")
    left, right, top, bottom = 48, 16, 28, 36
    xs = [s.x for samples in series.values() for s in samples]
    lo, hi = min(xs), max(xs)
    span = (hi - lo) or 1.0

    def px(x: float) -> float:
        return left + (x - lo) / span * (width - left - right)

    def py(d: float) -> float:
        return top + (1 - d / 17) * (height - top - bottom)

    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" font-family="sans-serif" '
             f'font-size="11"><title>{escape(title)}</title>',
             f'<text x="{width / 2}" y="16" text-anchor="middle">{escape(title)}</text>']
    for d in (0, 4, 8, 12, 16):
        parts.append(f'<line x1="{left}" x2="{width - right}" y1="{py(d):.1f}" y2="{py(d):.1f}" stroke="#ddd"/>'
                     f'<text x="{left - 6}" y="{py(d) + 4:.1f}" text-anchor="end">{d}</text>')
    for x in (lo, (lo + hi) / 2, hi):
        parts.append(f'<text x="{px(x):.1f}" y="{height - 16}" text-anchor="middle">{x:.4g}</text>')
    parts.append(f'<text x="12" y="{height / 2}" transform="rotate(-90 12 {height / 2})" text-anchor="middle">'
                 'correct digits</text>')
    for i, (name, samples) in enumerate(series.items()):
        colour = colours[i % len(colours)]
        pts = " ".join(f"{px(s.x):.1f},{py(s.digits):.1f}" for s in samples)
        parts.append(f'<polyline fill="none" stroke="{colour}" stroke-width="1.5" points="{pts}"/>')
        parts.append(f'<text x="{width - right - 4}" y="{top + 14 * (i + 1)}" text-anchor="end" fill="{colour}">'
                     f'{escape(name)}</text>')
    parts.append("</svg>")
    return "\n".join(parts)
