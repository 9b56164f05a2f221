"""Where engine modules and functions under test are imported from: the installed packages, then the
folders a command names (the current one, the project root), as ``python -m`` has the current folder;
or a Python file named by its path (``../engines/myeng.py:Value``, ``/abs/path/engine.py:Value``)."""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import ModuleType

__all__ = ["import_module", "importable", "is_file_path"]


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


def is_file_path(module: str) -> bool:
    """Whether the module part of a ``module:attr`` spec is a file path rather than a dotted name."""
    return module.endswith(".py") or "/" in module or "\\" in module


def import_module(module: str) -> ModuleType:
    """A module by its dotted name, or a Python file by its path (relative to the current directory).

    A file is loaded once per resolved path, under a name made from its path, so two files both called
    ``engine.py`` stay two modules; its folder is importable while it loads, so it may import its
    neighbours. Raises what importing raises (FileNotFoundError for a file that is not there).
    """
    if not is_file_path(module):
        return importlib.import_module(module)
    path = Path(module).expanduser().resolve()
    if not path.is_file():
        raise FileNotFoundError(f"no such file: {path}")
    name = f"_gradspec_file_{path.stem}_{hashlib.sha256(str(path).encode()).hexdigest()[:12]}"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise ImportError(f"{path} is not a Python module")
    loaded = importlib.util.module_from_spec(spec)
    sys.modules[name] = loaded  # before running it, as import does: dataclasses and pickling look it up
    try:
        with importable(path.parent):
            spec.loader.exec_module(loaded)
    except BaseException:
        del sys.modules[name]
        raise
    return loaded
