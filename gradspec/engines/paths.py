"""Where engine modules and functions under test are imported from: the installed packages, then the
folders a command names (the current one, the project root), as ``python -m`` has the current folder."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

__all__ = ["importable"]


@contextmanager
def importable(*folders: Path | None) -> Iterator[None]:
    """Make modules in ``folders`` importable for the duration, as ``python -m`` makes the current one.

    The folders go after the installed packages, so a local file never shadows an installed module;
    only the entries added here are taken away again.
    """
    added = [str(f) for f in dict.fromkeys(folders) if f is not None and str(f) not in sys.path]
    sys.path.extend(added)
    try:
        yield
    finally:
        for entry in added:
            if entry in sys.path:
                sys.path.remove(entry)
