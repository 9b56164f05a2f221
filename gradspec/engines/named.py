"""An engine named in configuration (``[tool.gradspec.engine.NAME]``): plain data, read by
:func:`gradspec.engines.protocol.resolve`."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["NamedEngine"]


@dataclass(frozen=True)
class NamedEngine:
    """An engine given a name in configuration: the spec it stands for, and how its Value class spells
    the attributes and methods gradspec reads (``methods`` maps an op-table method, or ``backward``, to
    the class's own name). Plain data, so it travels to worker processes as it is.
    """

    name: str
    target: str
    data: str = "data"
    grad: str = "grad"
    methods: tuple[tuple[str, str], ...] = ()
    where: str | None = None  # the file that defined it, for messages

    @property
    def renamed(self) -> bool:
        return (self.data, self.grad, self.methods) != ("data", "grad", ())
