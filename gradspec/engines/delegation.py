"""Which of its own ops a Value class runs when it applies another one: ``x - y`` written as ``x + (-y)``
and ``-y`` as ``y * -1`` (micrograd's spellings) run ``add``, ``neg`` and ``mul``.

The localiser needs this to blame the op a bug is in rather than the op the user's graph named: with
``=`` for ``+=`` in mul's backward, ``x - x`` fails, and so does sub tested alone, only because sub
calls mul. It is found by watching, not by reading source: a subclass whose op methods note their own
name and then call the class's, applied once to two of its Values. The user's class is never changed.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from typing import Any

from gradspec.ops.table import OPS, Op

__all__ = ["delegates"]

_A, _B = 2.0, 3.0  # inside every op's domain, and not equal: a ** b and b ** a are different calls


def _spellings(op: Op, methods: Mapping[str, str]) -> list[str]:
    names = [methods.get(op.method, op.method)] if op.method else list(op.dunders)
    return names + ([op.builtin[0]] if op.builtin else [])


def delegates(cls: type, op_name: str, methods: Mapping[str, str] | None = None) -> tuple[str, ...]:
    """The other op-table ops that applying ``op_name`` to two Values of ``cls`` runs, in the order they
    first run (empty when it runs none, or when the class cannot be watched)."""
    return _delegates(cls, op_name, tuple(sorted((methods or {}).items())))


@functools.lru_cache(maxsize=256)
def _delegates(cls: type, op_name: str, methods: tuple[tuple[str, str], ...]) -> tuple[str, ...]:
    renamed = dict(methods)
    calls: list[str] = []
    depth = [0]

    def watched(name: str, op: str, original: Callable[..., Any]) -> Callable[..., Any]:
        def method(self: Any, *args: Any) -> Any:
            if depth[0] > 0 and op != op_name and op not in calls:
                calls.append(op)
            depth[0] += 1
            try:
                return original(self, *args)
            finally:
                depth[0] -= 1

        method.__name__ = name
        return method

    namespace: dict[str, Any] = {}
    for op in OPS.values():
        for name in _spellings(op, renamed):
            original = getattr(cls, name, None)
            if callable(original):
                namespace[name] = watched(name, op.name, original)
    op = OPS[op_name]
    name = _spellings(op, renamed)[0]
    if name not in namespace:
        return ()
    try:
        spy = type(f"Watched{cls.__name__}", (cls,), namespace)
        a, b = spy(_A), spy(_B)
        getattr(a, name)(*([b] if op.arity == 2 else []))
    except Exception:  # a class that cannot be subclassed or watched: no delegation is claimed
        return ()
    return tuple(calls)
