"""A disk cache of exact references, so a second run skips SymPy altogether.

One JSON file per graph, named by a hash of its text, its inputs and the versions of gradspec, SymPy
and mpmath: it holds the symbolic formulas and, per point, the exact value, gradients, kinks and
subgradient ranges to 40 significant digits. A file that is unreadable, corrupt or written by other
versions is ignored and rewritten; the cache never decides a result, it only remembers one.

The folder is ``$GRADSPEC_CACHE_DIR``, else ``$XDG_CACHE_HOME/gradspec``, else ``~/.cache/gradspec``;
``GRADSPEC_CACHE=0`` turns the cache off.
"""

from __future__ import annotations

import atexit
import hashlib
import json
import os
import tempfile
from fractions import Fraction
from pathlib import Path
from typing import Any

import mpmath
import sympy

from gradspec._graph import Graph

__all__ = ["CACHE", "DiskCache"]

_DIGITS = 40


def _versions() -> dict[str, str]:
    from gradspec import __version__

    return {"gradspec": __version__, "sympy": sympy.__version__, "mpmath": mpmath.__version__, "format": "1"}


def _folder() -> Path | None:
    if os.environ.get("GRADSPEC_CACHE", "1") == "0":
        return None
    explicit = os.environ.get("GRADSPEC_CACHE_DIR")
    if explicit:
        return Path(explicit)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "gradspec"


class DiskCache:
    """Exact references by graph and point, loaded on first use and written back by :meth:`flush`."""

    def __init__(self) -> None:
        self._entries: dict[str, dict[str, Any]] = {}
        self._dirty: set[str] = set()
        self._keys: dict[Graph, str] = {}  # graphs hash by identity, and are built once per text

    def _key(self, graph: Graph) -> str:
        key = self._keys.get(graph)
        if key is None:
            text = json.dumps([graph.program.source, [n for n, _ in graph.inputs], _versions()])
            key = self._keys[graph] = hashlib.sha256(text.encode()).hexdigest()[:32]
        return key

    def _entry(self, graph: Graph) -> dict[str, Any] | None:
        folder = _folder()
        if folder is None:
            return None
        key = self._key(graph)
        if key not in self._entries:
            self._entries[key] = self._read(folder / f"{key}.json")
        return self._entries[key]

    @staticmethod
    def _read(path: Path) -> dict[str, Any]:
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {"versions": _versions(), "points": {}}
        if not isinstance(data, dict) or data.get("versions") != _versions() or not isinstance(data.get("points"), dict):
            return {"versions": _versions(), "points": {}}  # stale or foreign: start again
        return data

    # -- exact values per point ------------------------------------------------------------------------
    def get(self, graph: Graph, point: dict[str, Fraction]) -> dict[str, Any] | None:
        entry = self._entry(graph)
        if entry is None:
            return None
        found = entry["points"].get(_point_key(point))
        return found if isinstance(found, dict) else None

    def put(self, graph: Graph, point: dict[str, Fraction], record: dict[str, Any]) -> None:
        entry = self._entry(graph)
        if entry is None:
            return
        entry["points"][_point_key(point)] = record
        self._dirty.add(self._key(graph))

    def note(self, graph: Graph, point: dict[str, Fraction], field: str, value: Any) -> None:
        """Add ``field`` to the record of an already cached point."""
        record = self.get(graph, point)
        if record is not None:
            record[field] = value
            self._dirty.add(self._key(graph))

    # -- formulas ----------------------------------------------------------------------------------------
    def formulas(self, graph: Graph) -> dict[str, str] | None:
        entry = self._entry(graph)
        found = entry.get("formulas") if entry is not None else None
        return found if isinstance(found, dict) else None

    def put_formulas(self, graph: Graph, formulas: dict[str, str]) -> None:
        entry = self._entry(graph)
        if entry is not None:
            entry["formulas"] = formulas
            self._dirty.add(self._key(graph))

    def over_budget(self, graph: Graph) -> bool:
        entry = self._entry(graph)
        return bool(entry and entry.get("over_budget"))

    def mark_over_budget(self, graph: Graph) -> None:
        entry = self._entry(graph)
        if entry is not None:
            entry["over_budget"] = True
            self._dirty.add(self._key(graph))

    def flush(self) -> None:
        """Write what changed, atomically; a folder that cannot be written is skipped silently."""
        folder = _folder()
        if folder is None or not self._dirty:
            return
        try:
            folder.mkdir(parents=True, exist_ok=True)
            for key in sorted(self._dirty):
                fd, tmp = tempfile.mkstemp(dir=folder, suffix=".tmp")
                with os.fdopen(fd, "w", encoding="utf-8") as f:
                    json.dump(self._entries[key], f)
                os.replace(tmp, folder / f"{key}.json")
        except OSError:
            pass
        self._dirty.clear()

    def clear_memory(self) -> None:
        from gradspec._reference import _MEMO

        self._entries.clear()
        self._dirty.clear()
        _MEMO.clear()


def _point_key(point: dict[str, Fraction]) -> str:
    return ",".join(f"{k}={v.numerator}/{v.denominator}" for k, v in sorted(point.items()))


def encode(x: Any) -> str:
    return mpmath.nstr(x, _DIGITS, strip_zeros=False) if mpmath.isfinite(x) else str(x)


def decode(text: str) -> Any:
    return mpmath.mpf(text)


CACHE = DiskCache()
atexit.register(CACHE.flush)
