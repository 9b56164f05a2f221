"""Disk caches: exact references, so a second run skips SymPy altogether, and case files that loaded
cleanly, so an unchanged file skips parsing and validation.

Exact references: one JSON file per graph, named by a hash of its text, its inputs and the versions of
gradspec, SymPy and mpmath. It holds the symbolic formulas and, per point, the exact value, gradients,
kinks and subgradient ranges to 40 significant digits. A file that is unreadable, corrupt or written by
other versions is ignored and rewritten; the cache never decides a result, it only remembers one.

Case files: one JSON file per file content that loaded without a single error, named by a hash of the
bytes, the schema, gradspec's own source, the versions above and those of PyYAML and jsonschema. It
holds the YAML data and the line and column of every value, so the loader rebuilds the same cases
without YAML parsing, the JSON Schema, or the exact checks of hand-written expectations. Any change to
the file, the schema or gradspec changes the name, and an error-free file is the only kind remembered.

The folder is ``$GRADSPEC_CACHE_DIR``, else ``$XDG_CACHE_HOME/gradspec``, else ``~/.cache/gradspec``;
``GRADSPEC_CACHE=0`` turns the cache off.
"""

from __future__ import annotations

import atexit
import hashlib
import importlib.metadata
import json
import os
import tempfile
from fractions import Fraction
from pathlib import Path
from typing import Any

import mpmath
import sympy

from gradspec.casefile.source import Document, Mark, decode_text
from gradspec.graph.ir import Graph

__all__ = ["CACHE", "DOCUMENTS", "DiskCache", "DocumentCache"]

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
        key = self._key(graph)
        found = self._entries.get(key)
        if found is None:
            folder = _folder()
            if folder is None:
                return None
            found = self._entries[key] = self._read(folder / f"{key}.json")
        return found

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
        """Write what changed, atomically; a folder that cannot be written is skipped silently.

        What another process wrote meanwhile (a worker of the same run) is merged in, not overwritten.
        """
        folder = _folder()
        if folder is None or not self._dirty:
            return
        try:
            folder.mkdir(parents=True, exist_ok=True)
            for key in sorted(self._dirty):
                entry = self._entries[key]
                on_disk = self._read(folder / f"{key}.json")
                entry["points"] = {**on_disk["points"], **entry["points"]}
                for field in ("formulas", "over_budget"):
                    if field in on_disk and field not in entry:
                        entry[field] = on_disk[field]
                _write(folder / f"{key}.json", entry)
        except OSError:
            pass
        self._dirty.clear()

    def clear_memory(self) -> None:
        from gradspec.reference.exact import _MEMO

        self._entries.clear()
        self._dirty.clear()
        _MEMO.clear()


class DocumentCache:
    """Case files that loaded cleanly, by content: their YAML data and marks."""

    def __init__(self) -> None:
        self._fingerprint: str | None = None

    def _path(self, raw: bytes) -> Path | None:
        folder = _folder()
        if folder is None:
            return None
        digest = hashlib.sha256(self.fingerprint().encode())
        digest.update(raw)
        return folder / "files" / f"{digest.hexdigest()[:40]}.json"

    def fingerprint(self) -> str:
        """What the outcome of loading depends on besides the file: the schema, gradspec's code, and the
        versions of the libraries that parse, validate and evaluate it."""
        if self._fingerprint is None:
            import yaml

            from gradspec.casefile.model import data_dir

            versions = {**_versions(), "pyyaml": yaml.__version__, "libyaml": str(getattr(yaml, "__with_libyaml__", False)),
                        "jsonschema": importlib.metadata.version("jsonschema")}
            digest = hashlib.sha256(json.dumps(versions, sort_keys=True).encode())
            package = Path(__file__).resolve().parent
            for source in [data_dir("schemas") / "case-file.schema.json", *sorted(package.rglob("*.py"))]:
                digest.update(source.name.encode())
                digest.update(source.read_bytes())
            self._fingerprint = digest.hexdigest()
        return self._fingerprint

    def get(self, path: str, raw: bytes) -> Document | None:
        where = self._path(raw)
        if where is None:
            return None
        try:
            stored = json.loads(where.read_text(encoding="utf-8"))
            marks = {tuple(p): Mark(line, col, style) for p, line, col, style in stored["marks"]}
            key_marks = {tuple(p): Mark(line, col) for p, line, col in stored["key_marks"]}
            return Document(path, stored["data"], marks, key_marks, decode_text(path, raw).splitlines())
        except (OSError, ValueError, KeyError, TypeError):
            return None  # absent, unreadable or not ours: the file is loaded the long way

    def put(self, raw: bytes, doc: Document) -> None:
        where = self._path(raw)
        if where is None or not _plain(doc.data):
            return  # non-string keys do not survive JSON; such a file is simply not remembered
        stored = {
            "marks": [[list(p), m.line, m.col, m.style] for p, m in doc.marks.items()],
            "key_marks": [[list(p), m.line, m.col] for p, m in doc.key_marks.items()],
            "data": doc.data,
        }
        try:
            where.parent.mkdir(parents=True, exist_ok=True)
            _write(where, stored)
        except OSError:
            pass


def _write(path: Path, data: Any) -> None:
    """``data`` as JSON at ``path``, atomically: readers see the old file or the new one, never half."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(json.dumps(data))  # dumps, not dump: only dumps uses the C encoder
    os.replace(tmp, path)


def _plain(data: Any) -> bool:
    """Whether ``data`` survives a JSON round trip unchanged (mapping keys are strings)."""
    if isinstance(data, dict):
        return all(isinstance(k, str) and _plain(v) for k, v in data.items())
    if isinstance(data, list):
        return all(_plain(v) for v in data)
    return True


def _point_key(point: dict[str, Fraction]) -> str:
    return ",".join(f"{k}={v.numerator}/{v.denominator}" for k, v in sorted(point.items()))


def encode(x: Any) -> str:
    return mpmath.nstr(x, _DIGITS, strip_zeros=False) if mpmath.isfinite(x) else str(x)


def decode(text: str) -> Any:
    return mpmath.mpf(text)


CACHE = DiskCache()
atexit.register(CACHE.flush)
DOCUMENTS = DocumentCache()
