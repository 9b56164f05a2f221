"""The disk cache of case files that loaded cleanly, so an unchanged file skips parsing and validation.

One JSON file per file content that loaded without a single error, named by a hash of the bytes, the
schema, gradspec's own source, the versions of gradspec, SymPy, mpmath, PyYAML and jsonschema. It holds
the YAML data and the line and column of every value, so the loader rebuilds the same cases without
YAML parsing, the JSON Schema, or the exact checks of hand-written expectations. Any change to the file,
the schema or gradspec changes the name, and an error-free file is the only kind remembered. It lives
in the same folder as the exact references (:mod:`gradspec.reference.cache`), under ``files/``.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
from pathlib import Path
from typing import Any

from gradspec.casefile.source import Document, Mark, decode_text
from gradspec.reference.cache import folder, versions, write

__all__ = ["DOCUMENTS", "DocumentCache"]


class DocumentCache:
    """Case files that loaded cleanly, by content: their YAML data and marks."""

    def __init__(self) -> None:
        self._fingerprint: str | None = None

    def _path(self, raw: bytes) -> Path | None:
        where = folder()
        if where is None:
            return None
        digest = hashlib.sha256(self.fingerprint().encode())
        digest.update(raw)
        return where / "files" / f"{digest.hexdigest()[:40]}.json"

    def fingerprint(self) -> str:
        """What the outcome of loading depends on besides the file: the schema, gradspec's code, and the
        versions of the libraries that parse, validate and evaluate it."""
        if self._fingerprint is None:
            import yaml

            from gradspec.casefile.model import data_dir

            libraries = {**versions(), "pyyaml": yaml.__version__, "libyaml": str(getattr(yaml, "__with_libyaml__", False)),
                        "jsonschema": importlib.metadata.version("jsonschema")}
            digest = hashlib.sha256(json.dumps(libraries, sort_keys=True).encode())
            package = Path(__file__).resolve().parents[1]  # all of gradspec, not only this subpackage
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
            write(where, stored)
        except OSError:
            pass


def _plain(data: Any) -> bool:
    """Whether ``data`` survives a JSON round trip unchanged (mapping keys are strings)."""
    if isinstance(data, dict):
        return all(isinstance(k, str) and _plain(v) for k, v in data.items())
    if isinstance(data, list):
        return all(_plain(v) for v in data)
    return True


DOCUMENTS = DocumentCache()
