"""Finding out, once and before any check, whether an engine can take part in a run at all.

A run on an engine that cannot load, or whose Value class does not follow the protocol (no ``.data``,
no ``.grad``, no ``backward``), would otherwise produce hundreds of identical failures or, worse, skips
that add up to a green run in which nothing was compared. :func:`require` turns both into one
:class:`~gradspec.errors.EngineError` that says what is wrong and what to do about it.

The probe is a three-node graph ``t = a * b; out = t * b`` at ``a = 2, b = 3``: d out/da = 9 and
d out/dt = 3. It also tells whether the engine keeps the gradients of intermediate nodes (minitorch
keeps only the leaves'): where it does not, those quantities are "not reported" rather than wrong.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from gradspec.errors import EngineError

__all__ = ["Probe", "probe_value_class", "require"]

_A, _B = 2.0, 3.0
_DOUT_DA, _DOUT_DT = _B * _B, _B  # out = (a * b) * b


@dataclass(frozen=True)
class Probe:
    """What the probe found: a protocol problem (None when there is none), and whether intermediates'
    gradients are kept."""

    problem: str | None
    keeps_intermediates: bool = True


def _number(x: Any) -> float | None:
    if isinstance(x, bool):
        return None
    try:
        return float(x)
    except (TypeError, ValueError, OverflowError):
        return None


def _holding(obj: Any, want: float, skip: str) -> list[str]:
    """Public attributes of ``obj`` (other than ``skip``) that hold the number ``want``."""
    found = []
    for attr in dir(obj):
        if attr.startswith("_") or attr == skip:
            continue
        try:
            value = getattr(obj, attr)
        except Exception:  # a property that raises says nothing about the mapping
            continue
        if not callable(value) and _number(value) == want:
            found.append(attr)
    return found


def _unmapped(name: str, attr: str, candidates: list[str]) -> str:
    hint = f'{attr} = "{candidates[0]}"' if candidates else f'{attr} = "ATTRIBUTE"'
    seen = f" ({', '.join(candidates)} held the number expected there)" if candidates else ""
    return f"engine's Value has no attribute {attr}; map it with {hint} under {_table(name)}{seen}"


def _table(name: str) -> str:
    """Where a mapping for the engine ``name`` goes: its own table when it is already a named engine,
    else a new named engine whose ``class`` is the spec (then run with ``--engine NAME``)."""
    if ":" in name or "." in name:
        return f'[tool.gradspec.engine.NAME] in pyproject.toml, with class = "{name}", and run --engine NAME'
    return f"[tool.gradspec.engine.{name}] in pyproject.toml"


def probe_value_class(cls: type, name: str, *, data: str = "data", grad: str = "grad",
                      backward: str = "backward", methods: Mapping[str, str] | None = None) -> Probe:
    """Build and differentiate the probe graph with a micrograd-style Value class, whose forward value,
    gradient and backward method are spelt ``data``, ``grad`` and ``backward``; ``methods`` (the
    configuration's renames, op method to the class's name) must each name a method the class has."""
    # A rename to a method the class lacks would skip every check of that op, quietly: a configuration
    # error instead, said before any check.
    absent = [(op, spelt) for op, spelt in sorted((methods or {}).items()) if not hasattr(cls, spelt)]
    if absent:
        listed = ", ".join(f"{op} = \"{spelt}\"" for op, spelt in absent)
        return Probe(f"methods = {{ {listed} }} under {_table(name)} names what {cls.__qualname__} does not have "
                     f"(no {', '.join(spelt for _, spelt in absent)}): fix the name, or leave the op out of methods")
    try:
        a, b = cls(_A), cls(_B)
        t = a * b
        out = t * b
    except Exception as exc:  # the class's own error, reported as it is
        return Probe(f"engine's Value cannot build a * b from Value({_A:g}) and Value({_B:g}): "
                     f"{type(exc).__name__}: {exc}")
    if not hasattr(out, data):
        return Probe(_unmapped(name, "data", _holding(out, _A * _B * _B, data)))
    if not callable(getattr(out, backward, None)):
        return Probe(f"engine's Value has no method {backward}(); gradspec calls out.{backward}() to "
                     f'backpropagate (map it with methods = {{ backward = "METHOD" }} under {_table(name)})')
    before = _number(getattr(t, grad, None))
    try:
        getattr(out, backward)()
    except Exception:  # a backward that raises is a bug the checks report, one by one, not a protocol mismatch
        return Probe(None)
    if not hasattr(a, grad):
        return Probe(_unmapped(name, "grad", _holding(a, _DOUT_DA, grad)))
    # An intermediate whose gradient backward left as it was (None, or its initial value, where d out/dt
    # is 3) is not kept. A wrong number is kept, and judged by the checks: a bug must not hide here.
    after = _number(getattr(t, grad, None))
    return Probe(None, keeps_intermediates=after is not None and not (after == before != _DOUT_DT))


def require(engine: Any) -> None:
    """Raise :class:`EngineError` when ``engine`` cannot take part in a run: it did not load here
    (with the reason and the install command), or it does not follow the engine protocol."""
    missing = getattr(engine, "unavailable", None)
    if missing is not None:
        raise EngineError(f"engine {engine.name} cannot be used: {missing}")
    problem = getattr(engine, "protocol_problem", lambda: None)()
    if problem:
        raise EngineError(f"engine {engine.name}: {problem}")
