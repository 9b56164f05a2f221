"""Configuration: the ``[tool.gradspec]`` table of the nearest ``pyproject.toml``.

Found from the current directory upwards, as pytest and ruff find theirs: the first ``pyproject.toml``
that has a ``[tool.gradspec]`` table is the configuration, and its folder is the project root (case
paths are relative to it, and it is importable, so ``class = "mypkg.autograd:Value"`` finds the
project's own package)::

    [tool.gradspec]
    engines = ["builtin", "mine"]          # the default --engine list
    paths = ["tests/grad_cases"]           # default case paths
    time-limit = 30                        # seconds one engine call may take
    max-elements = 1000000                 # elements of one tensor input; more is refused

    [tool.gradspec.engine.mine]            # a named engine: --engine mine
    class = "mypkg.autograd:Value"         # a Value class, an engine factory or an adapter spec
    data = "value"                         # attribute that holds the forward value
    grad = "derivative"                    # attribute that holds the gradient
    methods = { relu = "ReLU", tanh = "Tanh" }

Named engines live under ``engine`` (singular, as in ``--engine mine``): TOML cannot hold both the
list ``engines = [...]`` and tables under ``engines``. The table is checked against a small JSON
Schema; anything wrong is a :class:`~gradspec.errors.ConfigError` naming the file, the key and what
was expected.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jsonschema
from jsonschema.exceptions import ValidationError, best_match

from gradspec.engines.paths import importable
from gradspec.engines.protocol import NamedEngine
from gradspec.engines.resolve import ADAPTERS
from gradspec.errors import ConfigError
from gradspec.ops.table import OPS

__all__ = ["Config", "engine_help", "find", "importable", "load"]

FILE = "pyproject.toml"
TABLE = "tool.gradspec"

_NAME = {"type": "string", "pattern": r"^[A-Za-z_][A-Za-z0-9_]*$", "description": "a Python attribute name"}
# The methods a Value class can be asked to rename: each op-table method, and backward.
_RENAMEABLE = sorted({o.method for o in OPS.values() if o.method} | {"backward"})

SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "engines": {"type": "array", "items": {"type": "string", "minLength": 1, "description": "an engine spec or name"},
                    "description": "a list of engine specs or names of [tool.gradspec.engine.NAME] tables"},
        "paths": {"type": "array", "items": {"type": "string", "minLength": 1, "description": "a case file or folder"},
                  "description": "a list of case files or folders, relative to pyproject.toml"},
        "time-limit": {"type": "number", "exclusiveMinimum": 0, "description": "a number of seconds above 0"},
        "max-elements": {"type": "integer", "minimum": 1, "description": "a whole number of elements, at least 1"},
        "engine": {
            "type": "object",
            "propertyNames": {"pattern": r"^[A-Za-z0-9_.-]+$", "not": {"const": "builtin"},
                              "description": "an engine name of letters, digits, '_', '.' and '-', other than builtin"},
            "additionalProperties": {
                "type": "object",
                "additionalProperties": False,
                "required": ["class"],
                "properties": {
                    "class": {"type": "string", "pattern": r"\S",
                              "description": "'module.path:Value', an engine factory or an adapter spec ('torch:float32')"},
                    "data": _NAME,
                    "grad": _NAME,
                    "methods": {
                        "type": "object",
                        "propertyNames": {"enum": _RENAMEABLE, "description": f"one of {', '.join(_RENAMEABLE)}"},
                        "additionalProperties": _NAME,
                    },
                },
            },
        },
    },
}


@dataclass(frozen=True)
class Config:
    """The settings of one ``[tool.gradspec]`` table (or the defaults, with ``path`` None)."""

    path: Path | None = None
    engines: tuple[str, ...] = ()
    paths: tuple[str, ...] = ()  # as written: relative to ``root``
    time_limit: float | None = None
    max_elements: int | None = None  # elements of one tensor input (gradspec.limits)
    named: Mapping[str, NamedEngine] = field(default_factory=dict)

    @property
    def root(self) -> Path | None:
        return self.path.parent if self.path else None

    @property
    def case_paths(self) -> list[str]:
        """The default case paths, made absolute against the project root."""
        return [str(self.root / p) for p in self.paths] if self.root else []

    def spec(self, text: str) -> str | NamedEngine:
        """The engine a command line or ini spec means: a named engine, or the spec itself."""
        return self.named.get(text, text)

    def specs(self, given: list[str] | None) -> list[str | NamedEngine]:
        """The engines to run: those given, else the configured list, else ``builtin``."""
        return [self.spec(s) for s in (given or self.engines or ["builtin"])]


def engine_help(config: Config) -> str:
    """What ``--engine`` takes, for its help: the built-in engine, the adapters, the engines this
    project's ``pyproject.toml`` names, and a Value class or engine by module or file."""
    named = f"; configured in {config.path}: {', '.join(config.named)}" if config.named else ""
    return (f"builtin (gradspec's own), an adapter ({', '.join(ADAPTERS)}; with options, e.g. torch:float32, "
            f"jax:float32, torch:cuda){named}; or a Value class or engine as 'module.path:Class' or "
            f"'path/to/file.py:Class'")


def find(start: Path) -> tuple[Path, dict[str, Any]] | None:
    """The nearest ``pyproject.toml`` at or above ``start`` with a ``[tool.gradspec]`` table, and the table."""
    for folder in (start, *start.parents):
        candidate = folder / FILE
        if candidate.is_file():
            table = _read(candidate).get("tool", {}).get("gradspec")
            if table is not None:
                return candidate, table
    return None


def load(start: Path | None = None) -> Config:
    """The configuration that applies in ``start`` (default: the current directory)."""
    found = find((start or Path.cwd()).resolve())
    if found is None:
        return Config()
    path, table = found
    error = best_match(jsonschema.Draft202012Validator(SCHEMA).iter_errors(table))
    if error is not None:
        raise _schema_error(error, path)
    named = {
        name: NamedEngine(name, raw["class"].strip(), raw.get("data", "data"), raw.get("grad", "grad"),
                          tuple(sorted(raw.get("methods", {}).items())), str(path))
        for name, raw in table.get("engine", {}).items()
    }
    return Config(path, tuple(table.get("engines", ())), tuple(table.get("paths", ())), table.get("time-limit"),
                  table.get("max-elements"), named)


def _read(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as f:
            return tomllib.load(f)
    except tomllib.TOMLDecodeError as exc:
        hint = ""
        if "'gradspec', 'engines'" in str(exc):
            hint = ("; named engines go under [tool.gradspec.engine.NAME] (singular), since "
                    "tool.gradspec.engines is the list of default engines")
        raise ConfigError(f"not valid TOML: {exc}{hint}", path=str(path)) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot be read: {exc}", path=str(path)) from None


def _schema_error(error: ValidationError, path: Path) -> ConfigError:
    key = ".".join([TABLE, *(str(p) for p in error.absolute_path)])
    found = error.instance
    schema = error.schema if isinstance(error.schema, Mapping) else {}
    if error.validator == "additionalProperties" and isinstance(found, dict):
        allowed = sorted(schema.get("properties", {}))
        extra = sorted(set(found) - set(allowed))
        return ConfigError(f"unknown key; expected one of {', '.join(allowed)}", key=f"{key}.{extra[0]}", path=str(path))
    if "propertyNames" in error.schema_path:  # a table's key (an engine's name, a method) is at fault
        return ConfigError(f"not allowed; expected {schema.get('description')}", key=f"{key}.{found}",
                           path=str(path))
    if error.validator == "required":
        expected = SCHEMA["properties"]["engine"]["additionalProperties"]["properties"]["class"]["description"]
        return ConfigError(f"missing; expected {expected}", key=f"{key}.class", path=str(path))
    expected = schema.get("description") or _TYPES.get(str(schema.get("type")), error.message)
    if key == f"{TABLE}.engines" and isinstance(found, dict):
        expected += " (named engines go under [tool.gradspec.engine.NAME])"
    return ConfigError(f"expected {expected}, found {found!r}", key=key, path=str(path))


_TYPES = {"object": "a table", "array": "a list", "string": "a string"}
