"""Joining the JSON reports of a split run (``--shard K/N`` jobs, one job per engine) into one Run.

Reports join only when they are of one gradspec version and of the same case files (by the SHA-256 of
their bytes, so a checkout in another folder on another machine still matches), and when no two ran the
same case on the same engine (overlapping shards would count those checks twice). Anything else is a
:class:`~gradspec.errors.GradspecError` naming the reports, which the command line turns into exit 2.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from gradspec.errors import GradspecError
from gradspec.report.json_format import from_dict
from gradspec.results import Run

__all__ = ["merge", "read_report"]


def read_report(path: str | Path) -> tuple[Run, dict[str, str | None]]:
    """A JSON report as a Run, with its case files' content hashes (``sources``)."""
    try:
        data: Any = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise GradspecError(f"{path}: cannot be read: {exc}") from None
    except json.JSONDecodeError as exc:
        raise GradspecError(f"{path}: not JSON: {exc}") from None
    if not isinstance(data, dict) or "checks" not in data or "gradspec" not in data:
        raise GradspecError(f"{path}: not a gradspec JSON report (no 'gradspec' and 'checks' keys)")
    if "sources" not in data:
        raise GradspecError(f"{path}: the report does not say which case files it ran (no 'sources'); "
                            "write it again with this gradspec version")
    try:
        return from_dict(data), dict(data["sources"])
    except (KeyError, TypeError, ValueError) as exc:
        raise GradspecError(f"{path}: not a gradspec JSON report this version reads: "
                            f"{type(exc).__name__}: {exc}") from None


def merge(paths: Sequence[str | Path]) -> Run:
    """One Run from the reports at ``paths``: their checks in the order given, the engines of all, the
    first report's case files (checks of the others are moved onto its paths), every input error once,
    and the longest report's seconds (the jobs ran side by side)."""
    if not paths:
        raise GradspecError("merge needs at least one JSON report")
    read = [(str(p), *read_report(p)) for p in paths]
    first, run0, sources0 = read[0]
    by_hash = {h: f for f, h in sources0.items() if h is not None}
    seen: dict[tuple[str, str, str], int] = {}  # (file hash, case, engine) -> the report that ran it
    results = []
    for n, (path, run, sources) in enumerate(read):
        if run.version != run0.version:
            raise GradspecError(f"cannot merge reports of different gradspec versions: {first} was written by "
                                f"{run0.version}, {path} by {run.version}; run every job with one version")
        if sorted(map(str, sources.values())) != sorted(map(str, sources0.values())):
            theirs = {h for h in sources.values()}
            differ = [f for f, h in sources0.items() if h not in theirs or h is None] or \
                     [f for f, h in sources.items() if h not in by_hash]
            raise GradspecError(f"cannot merge reports of different case files: {first} and {path} differ in "
                                f"{', '.join(differ[:3])}; run every job on the same checkout")
        moved = {f: by_hash.get(h, f) for f, h in sources.items() if h is not None}
        for r in run.results:
            key = (sources.get(r.path) or r.path, r.case_id, r.engine)
            if seen.setdefault(key, n) != n:
                raise GradspecError(f"cannot merge: {path} and {read[seen[key]][0]} both ran case {r.case_id!r} on "
                                    f"{r.engine} (overlapping shards?); merge reports of disjoint parts")
            results.append(dataclasses.replace(r, path=moved.get(r.path, r.path)))
    engines = tuple(dict.fromkeys(e for _, run, _ in read for e in run.engines))
    errors = tuple(dict.fromkeys(e for _, run, _ in read for e in run.errors))
    return Run(tuple(results), engines, run0.files, errors, max(run.seconds for _, run, _ in read), run0.version)
