"""Small inline SVG charts drawn in Python: a bar chart, a log-log line chart and a heat map.

No external fonts, scripts or images; every label is escaped. Charts scale with their container
(``viewBox``, no fixed size) and take their colours and font from the page's CSS where they can.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from html import escape

__all__ = ["PALETTE", "Bar", "HeatCell", "Series", "bar_chart", "heat_map", "line_chart"]

_Scale = Callable[[float], float]

PALETTE = ("#2563eb", "#dc2626", "#059669", "#d97706", "#7c3aed", "#0891b2", "#db2777", "#4b5563")


@dataclass(frozen=True)
class Bar:
    label: str  # under the bar
    count: int
    color: str
    tip: str  # the tooltip


@dataclass(frozen=True)
class Series:
    label: str
    points: tuple[tuple[float, float], ...]  # (log10 x, log10 y)
    color: str
    tips: tuple[str, ...] = ()  # one tooltip per point; default: the series label


@dataclass(frozen=True)
class HeatCell:
    color: str
    tip: str
    outlined: bool = False  # drawn with a thin dark border (over tolerance)


@dataclass(frozen=True)
class _Frame:
    """The drawing area inside a chart's margins."""

    width: int
    height: int
    left: int = 48
    right: int = 12
    top: int = 28
    bottom: int = 40

    @property
    def x0(self) -> int:
        return self.left

    @property
    def x1(self) -> int:
        return self.width - self.right

    @property
    def y0(self) -> int:
        return self.height - self.bottom

    @property
    def y1(self) -> int:
        return self.top


def _f(x: float) -> str:
    return f"{x:.1f}"


def _open(title: str, width: int, height: int) -> list[str]:
    t = escape(title)
    return [f'<svg class="chart" viewBox="0 0 {width} {height}" role="img" aria-label="{t}">',
            f"<title>{t}</title>",
            f'<text class="chart-title" x="{width / 2:.0f}" y="16" text-anchor="middle">{t}</text>']


def _text(x: float, y: float, text: str, anchor: str = "middle", cls: str = "tick") -> str:
    return f'<text class="{cls}" x="{_f(x)}" y="{_f(y)}" text-anchor="{anchor}">{escape(text)}</text>'


def _line(x1: float, y1: float, x2: float, y2: float, cls: str) -> str:
    return f'<line class="{cls}" x1="{_f(x1)}" y1="{_f(y1)}" x2="{_f(x2)}" y2="{_f(y2)}"/>'


def _nice_top(n: int) -> int:
    """The smallest of 1, 2, 5, 10, 20, 50, ... that is at least ``n``."""
    top = 1
    while top < n:
        top = _next_nice(top)
    return top


def _next_nice(top: int) -> int:
    digits = 10 ** (len(str(top)) - 1)
    lead = top // digits
    return {1: 2, 2: 5, 5: 10}.get(lead, 10) * digits


def bar_chart(title: str, bars: list[Bar], *, width: int = 420, height: int = 220, y_label: str = "count",
              x_label: str = "") -> str:
    """Vertical bars with a count axis; each bar's tooltip is ``bar.tip``; empty labels are not drawn."""
    fr = _Frame(width, height, left=58)
    top = _nice_top(max((b.count for b in bars), default=0))
    out = _open(title, width, height)
    for frac in (0, 0.5, 1):
        y = fr.y0 - frac * (fr.y0 - fr.y1)
        out.append(_line(fr.x0, y, fr.x1, y, "grid"))
        out.append(_text(fr.x0 - 4, y + 3, f"{top * frac:g}", "end"))
    out.append(_vertical_label(12, (fr.y0 + fr.y1) / 2, y_label))
    if x_label:
        out.append(_text((fr.x0 + fr.x1) / 2, height - 6, x_label, cls="axis-label"))
    slot = (fr.x1 - fr.x0) / max(len(bars), 1)
    for i, bar in enumerate(bars):
        h = (fr.y0 - fr.y1) * bar.count / top
        x = fr.x0 + i * slot
        out.append(f'<rect x="{_f(x + slot * 0.12)}" y="{_f(fr.y0 - h)}" width="{_f(slot * 0.76)}" '
                   f'height="{_f(h)}" fill="{bar.color}"><title>{escape(bar.tip)}</title></rect>')
        if bar.label:
            out.append(_text(x + slot / 2, fr.y0 + 13, bar.label))
    out.append(_line(fr.x0, fr.y0, fr.x1, fr.y0, "axis"))
    out.append("</svg>")
    return "\n".join(out)


def _vertical_label(x: float, y: float, text: str) -> str:
    return (f'<text class="axis-label" x="{_f(x)}" y="{_f(y)}" text-anchor="middle" '
            f'transform="rotate(-90 {_f(x)} {_f(y)})">{escape(text)}</text>')


def _decade(k: int) -> str:
    return "1" if k == 0 else f"1e{k}"


def line_chart(
    title: str,
    series: list[Series],
    *,
    x_range: tuple[int, int],
    x_label: str,
    y_label: str,
    marker_x: float | None = None,
    marker_label: str = "",
    width: int = 640,
    height: int = 320,
) -> str:
    """Log-log lines over decades: points are (log10 x, log10 y); ``marker_x`` draws a dashed vertical line."""
    fr = _Frame(width, height, left=56)
    ys = [y for s in series for _, y in s.points]
    y_lo, y_hi = (math.floor(min(ys)), math.ceil(max(ys))) if ys else (-16, 0)
    y_hi = max(y_hi, y_lo + 1)
    x_lo, x_hi = x_range

    def px(x: float) -> float:
        return fr.x0 + (x - x_lo) / (x_hi - x_lo) * (fr.x1 - fr.x0)

    def py(y: float) -> float:
        return fr.y0 - (y - y_lo) / (y_hi - y_lo) * (fr.y0 - fr.y1)

    out = _open(title, width, height)
    out += _decade_grid(fr, (x_lo, x_hi), (y_lo, y_hi), px, py)
    out.append(_text((fr.x0 + fr.x1) / 2, height - 6, x_label, cls="axis-label"))
    out.append(_vertical_label(12, (fr.y0 + fr.y1) / 2, y_label))
    if marker_x is not None:
        out.append(_line(px(marker_x), fr.y0, px(marker_x), fr.y1, "marker"))
        right = px(marker_x) > (fr.x0 + fr.x1) / 2  # label on the side with room
        out.append(_text(px(marker_x) + (-4 if right else 4), fr.y1 + 10, marker_label, "end" if right else "start",
                         "marker-label"))
    for s in series:
        out.append(_polyline(s, px, py))
    out.append("</svg>")
    return "\n".join(out)


def _decade_grid(fr: _Frame, xs: tuple[int, int], ys: tuple[int, int], px: _Scale, py: _Scale) -> list[str]:
    out = []
    for k in range(xs[0], xs[1] + 1):
        out.append(_line(px(k), fr.y0, px(k), fr.y1, "grid"))
        out.append(_text(px(k), fr.y0 + 13, _decade(k)))
    step = max(1, math.ceil((ys[1] - ys[0]) / 8))
    for k in range(ys[0], ys[1] + 1, step):
        out.append(_line(fr.x0, py(k), fr.x1, py(k), "grid"))
        out.append(_text(fr.x0 - 4, py(k) + 3, _decade(k), "end"))
    out.append(_line(fr.x0, fr.y0, fr.x1, fr.y0, "axis"))
    out.append(_line(fr.x0, fr.y0, fr.x0, fr.y1, "axis"))
    return out


def _polyline(s: Series, px: _Scale, py: _Scale) -> str:
    coords = " ".join(f"{_f(px(x))},{_f(py(y))}" for x, y in s.points)
    tips = s.tips or (s.label,) * len(s.points)
    dots = "".join(f'<circle cx="{_f(px(x))}" cy="{_f(py(y))}" r="2.5" fill="{s.color}">'
                   f"<title>{escape(tip)}</title></circle>" for (x, y), tip in zip(s.points, tips, strict=True))
    return (f'<g class="series"><polyline points="{coords}" fill="none" stroke="{s.color}" stroke-width="1.6"/>'
            f"{dots}</g>")


def _step(count: int, cell: float, widest: int) -> int:
    """Label every ``step``-th row or column so that labels ``widest`` characters wide do not overlap."""
    return max(1, math.ceil((widest * 6 + 4) / cell)) if count > 1 else 1


def heat_map(title: str, cells: list[HeatCell], columns: int, *, row_labels: list[str], column_labels: list[str],
             marked: int | None, x_label: str, y_label: str, legend: list[tuple[str, str]],
             legend_ticks: dict[int, str], legend_label: str = "") -> str:
    """A grid of coloured cells, row-major, with row labels on the left and column labels on top;
    ``marked`` (a flat index) gets a heavy border. ``legend`` is a colour strip of (colour, tooltip) under
    the grid (an empty colour leaves a gap) with ``legend_ticks`` (position in the strip -> text) below it."""
    rows = max(1, len(cells) // max(columns, 1))
    cell = min(28.0, max(4.0, 360 / max(rows, columns)))
    label_w = max((len(t) for t in row_labels), default=1) * 6 + 10
    left, top = 22 + label_w, 48
    grid_w, grid_h = columns * cell, rows * cell
    swatch = 14
    strip = len(legend) * swatch
    width = int(max(left + grid_w + 12, 24 + strip + 12, len(title) * 7 + 16, 300))
    height = int(top + grid_h + 68)
    out = _open(title, width, height)
    out.append(_text(left + grid_w / 2, 30, x_label, cls="axis-label"))
    out.append(_vertical_label(10, top + grid_h / 2, y_label))
    col_step = _step(columns, cell, max((len(t) for t in column_labels), default=1))
    for c in range(0, columns, col_step):
        out.append(_text(left + (c + 0.5) * cell, top - 4, column_labels[c]))
    row_step = max(1, math.ceil(12 / cell))  # rows are labelled at least a line's height apart
    for r in range(0, rows, row_step):
        out.append(_text(left - 4, top + (r + 0.5) * cell + 3, row_labels[r], "end"))
    for i, heat in enumerate(cells):
        x, y = left + (i % columns) * cell, top + (i // columns) * cell
        cls = ' class="over"' if heat.outlined else ""
        out.append(f'<rect{cls} x="{_f(x)}" y="{_f(y)}" width="{_f(cell)}" height="{_f(cell)}" fill="{heat.color}">'
                   f"<title>{escape(heat.tip)}</title></rect>")
    if marked is not None and 0 <= marked < len(cells):
        x, y = left + (marked % columns) * cell, top + (marked // columns) * cell
        out.append(f'<rect class="worst" x="{_f(x)}" y="{_f(y)}" width="{_f(cell)}" height="{_f(cell)}" fill="none">'
                   f"<title>{escape(cells[marked].tip)}</title></rect>")
    ly = top + grid_h + 26
    out.append(_text(24, ly - 5, legend_label, "start", "axis-label"))
    for k, (color, tip) in enumerate(legend):
        if not color:
            continue  # a gap between groups of the strip
        out.append(f'<rect x="{24 + k * swatch}" y="{_f(ly)}" width="{swatch}" height="10" fill="{color}">'
                   f"<title>{escape(tip)}</title></rect>")
    for k, text in legend_ticks.items():
        out.append(_text(24 + (k + 0.5) * swatch, ly + 22, text))
    out.append("</svg>")
    return "\n".join(out)
