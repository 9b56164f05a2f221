"""Where a case file's ``$schema`` line points, in a form that resolves wherever gradspec is installed.

The JSON Schema ships inside the package; its installed path differs on every machine and changes with
every virtual environment, so a case file never names it. Instead a copy sits beside the case files and
the first line names it relatively, the way editors (the YAML language server) resolve it::

    # yaml-language-server: $schema=case-file.schema.json

``gradspec init`` and ``gradspec schema --write DIR`` put the copy there, and ``gradspec fuzz --out``
does for its regression files.
"""

from __future__ import annotations

from pathlib import Path

from gradspec.casefile.model import data_dir

__all__ = ["SCHEMA_FILE", "SCHEMA_LINE", "copy_beside", "installed"]

SCHEMA_FILE = "case-file.schema.json"
SCHEMA_LINE = f"# yaml-language-server: $schema={SCHEMA_FILE}"


def installed() -> Path:
    """The schema gradspec itself validates case files with."""
    return data_dir("schemas") / SCHEMA_FILE


def copy_beside(folder: Path) -> tuple[Path, bool]:
    """Put a copy of the installed schema in ``folder``; returns its path and whether it was (re)written.

    An existing copy that already matches is left alone; a stale one (from an older gradspec) is replaced.
    """
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / SCHEMA_FILE
    content = installed().read_bytes()
    if target.is_file() and target.read_bytes() == content:
        return target, False
    target.write_bytes(content)
    return target, True
