"""The disk cache of exact references, so a second run skips SymPy altogether.

One JSON file per graph, named by a hash of the graph's canonical text (:attr:`Graph.key`) and the
versions of gradspec, SymPy and mpmath. It holds the symbolic formulas, the over-budget mark and, per
point, the exact value, gradients, kinks and subgradient ranges to 40 significant digits, and the
numerical references. Other references keep a record of their own, one file per key
(:meth:`DiskCache.record`: the forward-mode and higher-order references of a graph, a point and the
directions). A file that is unreadable, corrupt or written by other versions is ignored and
rewritten; the cache never decides a result, it only remembers one. Only
:mod:`gradspec.reference.store` uses it.

The folder is ``$GRADSPEC_CACHE_DIR``, else ``$XDG_CACHE_HOME/gradspec``, else ``~/.cache/gradspec``;
``GRADSPEC_CACHE=0`` turns the cache off.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import tempfile
from fractions import Fraction
from pathlib import Path
from typing import Any

import mpmath
import sympy

from gradspec.graph.ir import Graph
from gradspec.version import __version__

__all__ = ["DiskCache", "decode", "encode", "folder", "versions", "write"]

_DIGITS = 40
_PENDING = 256


def versions() -> dict[str, str]:
    return {"gradspec": __version__, "sympy": sympy.__version__, "mpmath": mpmath.__version__, "format": "1",
            "definitions": _definitions()}


@functools.cache
def _definitions() -> str:
    """A hash of the code that defines what a reference is (the op table, the grammar, the reference
    itself): an op whose meaning changes under the same name, between releases or in a checkout, must
    not be served a result computed for the old one."""
    digest = hashlib.sha256()
    root = Path(__file__).resolve().parent.parent
    for package in ("ops", "lang", "reference"):
        for path in sorted((root / package).glob("*.py")):
            digest.update(path.name.encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def folder() -> Path | None:
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
        self._keys: dict[Graph, str] = {}
        self._records: dict[str, Any] = {}  # by file name: what :meth:`keep` was given, not yet written

    def _key(self, graph: Graph) -> str:
        key = self._keys.get(graph)
        if key is None:
            text = json.dumps([graph.key, versions()])
            key = self._keys[graph] = hashlib.sha256(text.encode()).hexdigest()[:32]
        return key

    def _entry(self, graph: Graph) -> dict[str, Any] | None:
        key = self._key(graph)
        found = self._entries.get(key)
        if found is None:
            where = folder()
            if where is None:
                return None
            found = self._entries[key] = self._read(where / f"{key}.json")
        return found

    @staticmethod
    def _read(path: Path) -> dict[str, Any]:
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {"versions": versions(), "points": {}}
        if not isinstance(data, dict) or data.get("versions") != versions() or not isinstance(data.get("points"), dict):
            return {"versions": versions(), "points": {}}  # stale or foreign: start again
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

    # -- records by a key of their own ------------------------------------------------------------------
    @staticmethod
    def _record_name(key: str) -> str:
        return "r" + hashlib.sha256(json.dumps([key, versions()]).encode()).hexdigest()[:32]

    def record(self, key: str) -> Any:
        """What :meth:`keep` was given for ``key`` (by this process or an earlier one), else None."""
        name = self._record_name(key)
        if name in self._records:
            return self._records[name]
        where = folder()
        if where is None:
            return None
        try:
            data = json.loads((where / f"{name}.json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        return data.get("record") if isinstance(data, dict) and data.get("versions") == versions() else None

    def keep(self, key: str, record: Any) -> None:
        """Remember ``record`` (JSON data) for ``key``; written by :meth:`flush`, which runs every
        ``_PENDING`` records (memory stays bounded, and another process of the same run reads them)."""
        if folder() is None:  # no cache: nothing to write, and nothing held in memory for it
            return
        self._records[self._record_name(key)] = record
        if len(self._records) >= _PENDING:
            self.flush()
            self._records.clear()  # written, or a folder that cannot be written: either way not held

    def flush(self) -> None:
        """Write what changed, atomically; a folder that cannot be written is skipped silently.

        What another process wrote meanwhile (a worker of the same run) is merged in, not overwritten.
        """
        where = folder()
        if where is None or not (self._dirty or self._records):
            return
        try:
            where.mkdir(parents=True, exist_ok=True)
            for name, record in self._records.items():
                write(where / f"{name}.json", {"versions": versions(), "record": record})
            self._records.clear()
            for key in sorted(self._dirty):
                entry = self._entries[key]
                on_disk = self._read(where / f"{key}.json")
                entry["points"] = {**on_disk["points"], **entry["points"]}
                for field in ("formulas", "over_budget"):
                    if field in on_disk and field not in entry:
                        entry[field] = on_disk[field]
                write(where / f"{key}.json", entry)
        except OSError:
            pass
        self._dirty.clear()

    def clear_memory(self) -> None:
        """Forget what was read (what was not flushed is lost)."""
        self._entries.clear()
        self._dirty.clear()
        self._records.clear()


def write(path: Path, data: Any) -> None:
    """``data`` as JSON at ``path``, atomically: readers see the old file or the new one, never half."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(json.dumps(data))  # dumps, not dump: only dumps uses the C encoder
    os.replace(tmp, path)


def _point_key(point: dict[str, Fraction]) -> str:
    return ",".join(f"{k}={v.numerator}/{v.denominator}" for k, v in sorted(point.items()))


def encode(x: Any) -> str:
    return mpmath.nstr(x, _DIGITS, strip_zeros=False) if mpmath.isfinite(x) else str(x)


def decode(text: str) -> Any:
    return mpmath.mpf(text)

