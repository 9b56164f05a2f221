"""Reports of a run: one result model (:class:`~gradspec.results.Run`), several renderers.

The suffix of a report's path picks its format::

    .json              every check in a stable, documented shape (docs/report-format.md)
    .md, .markdown     a summary, the conformance matrix (several engines) and the failures, for a CI job page
    .html, .htm        one self-contained page: summaries, the matrix, plots, a sortable table, derivatives

>>> format_for("out/report.HTML")
'html'
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path

from gradspec.errors import GradspecError
from gradspec.results import Run

__all__ = ["FORMATS", "SUFFIXES", "check_report_paths", "format_for", "render", "write_reports"]

SUFFIXES: dict[str, str] = {
    ".json": "json",
    ".md": "markdown",
    ".markdown": "markdown",
    ".html": "html",
    ".htm": "html",
}
FORMATS: tuple[str, ...] = ("json", "markdown", "html")


def format_for(path: str | Path) -> str:
    """The report format a path's suffix names (case-insensitive); raises :class:`GradspecError` otherwise."""
    suffix = Path(path).suffix.lower()
    fmt = SUFFIXES.get(suffix)
    if fmt is None:
        known = ", ".join(SUFFIXES)
        what = f"suffix {suffix!r}" if suffix else "no suffix"
        raise GradspecError(f"cannot tell the report format of {str(path)!r} ({what}); use one of: {known}")
    return fmt


def check_report_paths(paths: Iterable[str | Path]) -> list[tuple[Path, str]]:
    """Each path with its format, before anything runs or is written; raises for an unknown suffix."""
    return [(Path(p), format_for(p)) for p in paths]


def _renderer(fmt: str) -> Callable[[Run], str]:
    if fmt == "json":
        from gradspec.report.json_format import render_json

        return render_json
    if fmt == "markdown":
        from gradspec.report.markdown import render_markdown

        return render_markdown
    if fmt == "html":
        from gradspec.report.html import render_html

        return render_html
    raise GradspecError(f"unknown report format {fmt!r}; use one of: {', '.join(FORMATS)}")


def render(fmt: str, run: Run) -> str:
    """``run`` as report text in ``fmt`` (``"json"``, ``"markdown"`` or ``"html"``; ``"md"`` also works)."""
    fmt = {"md": "markdown", "htm": "html"}.get(fmt.lower(), fmt.lower())
    return _renderer(fmt)(run)


def write_reports(paths: Iterable[str | Path], run: Run) -> None:
    """Write one report per path, the format taken from its suffix; folders are made as needed.

    Every suffix is checked before the first file is written, so a typo writes nothing.
    """
    targets = check_report_paths(paths)
    texts: dict[str, str] = {}
    for path, fmt in targets:
        if fmt not in texts:
            texts[fmt] = render(fmt, run)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(texts[fmt], encoding="utf-8")
