"""The one error root of gradspec, and its branches.

Every error a user can cause derives from :class:`GradspecError` and carries where it happened::

    GradspecError              (path, line, col, case_id)
    ├── ExpressionError        an expression that does not parse or names what it may not
    ├── CaseFileError          a case file that is not valid YAML, breaks the schema, or contradicts itself
    ├── DomainError            an input point outside an op's domain (log(-1), 1/0)
    ├── EngineError            an engine that cannot be loaded or cannot build a graph
    └── ConfigError            a ``[tool.gradspec]`` table in pyproject.toml that breaks its schema (``key``)

``str(error)`` is the located one-line message ``path:line:col: message`` (parts that are unknown are
left out), so a command line tool can print it as it is.
"""

from __future__ import annotations

from typing import Any

__all__ = ["CaseFileError", "ConfigError", "DomainError", "EngineError", "ExpressionError", "GradspecError"]


class GradspecError(Exception):
    """Base of every error gradspec reports to a user."""

    def __init__(
        self,
        message: str,
        *,
        path: str | None = None,
        line: int | None = None,
        col: int | None = None,
        case_id: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.path = path
        self.line = line
        self.col = col
        self.case_id = case_id

    def located(
        self,
        *,
        path: str | None = None,
        line: int | None = None,
        col: int | None = None,
        case_id: str | None = None,
    ) -> GradspecError:
        """Fill in location fields that are still unknown; returns ``self``."""
        self.path = self.path if self.path is not None else path
        self.line = self.line if self.line is not None else line
        self.col = self.col if self.col is not None else col
        self.case_id = self.case_id if self.case_id is not None else case_id
        return self

    @property
    def location(self) -> str:
        if self.path is None and self.line is None:
            return f"column {self.col}" if self.col is not None else ""
        parts = [str(p) for p in (self.path, self.line, self.col) if p is not None]
        return ":".join(parts)

    def __str__(self) -> str:
        where = self.location
        case = f"[{self.case_id}] " if self.case_id else ""
        return f"{where}: {case}{self.message}" if where else f"{case}{self.message}"


class ExpressionError(GradspecError):
    """An expression that does not parse, or uses a name, op or size the grammar does not allow.

    ``col`` is the 1-based column inside the expression text (``expr_col``); a case file loader
    moves it onto the file's own line and column.
    """

    def __init__(self, message: str, *, col: int | None = None, path: str | None = None, line: int | None = None,
                 case_id: str | None = None) -> None:
        super().__init__(message, path=path, line=line, col=col, case_id=case_id)
        self.expr_col = col
        self.expr_line: int | None = None


class CaseFileError(GradspecError):
    """A case file that is not valid YAML, breaks the schema, or contradicts SymPy.

    Loading reports every error of a file at once: the first is raised, and ``errors`` holds them all.
    """

    errors: tuple[CaseFileError, ...] = ()


class DomainError(GradspecError):
    """An input point outside an op's domain, such as ``log(-1)`` or ``1/0``."""


class EngineError(GradspecError):
    """An engine that cannot be found, loaded or asked to build a graph."""


class ConfigError(GradspecError):
    """A ``[tool.gradspec]`` table in pyproject.toml that is not valid TOML or breaks its schema.

    ``path`` is the file, ``key`` the dotted key at fault (``tool.gradspec.engine.mine.data``).
    """

    def __init__(self, message: str, *, key: str | None = None, **where: Any) -> None:
        super().__init__(f"{key}: {message}" if key else message, **where)
        self.key = key
