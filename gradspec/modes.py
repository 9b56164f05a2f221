"""The modes of checking: which derivatives of a function are compared, and what an engine can compute.

A case's ``check:`` list names the quantities (:class:`Mode`); an engine declares what it can be
checked for (:class:`Capability`, and ``max_order``); an :class:`Ask` carries the seeded directions
one check uses, so that the engine and the exact reference compute the same numbers::

    value        f(x)
    vjp          Jᵀv for a cotangent v (the gradient, for a scalar output)
    jvp          J u for a tangent u (forward mode)
    hvp          ∇²(v·f) u: reverse over reverse, and forward over reverse where the engine has both
    jvp-of-jvp   ∂²f[u, w]: forward over forward
    jacobian     the full Jacobian, column by column in forward mode (small cases)
    order: N     D^k(v·f)[u, ..., u] for k = 2..N (nested differentiation)

Beside them, an engine with forward and reverse mode is judged on their consistency:
v·(J u) = (Jᵀ v)·u up to rounding.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any

__all__ = ["DEFAULT", "Ask", "Capability", "Derivatives", "Mode", "asked", "needs"]


class Capability(enum.Enum):
    """What an engine (or an op) can be checked for."""

    VJP = "vjp"  # reverse mode: gradients by backpropagation
    JVP = "jvp"  # forward mode
    HVP = "hvp"  # a gradient that can be differentiated again (create_graph): second order and beyond
    TENSOR = "tensor"


class Mode(enum.StrEnum):
    """A quantity a case's ``check:`` list can ask for."""

    VALUE = "value"
    VJP = "vjp"
    JVP = "jvp"
    HVP = "hvp"
    JVP_OF_JVP = "jvp-of-jvp"
    JACOBIAN = "jacobian"

    def __str__(self) -> str:
        return self.value


#: What a case checks when it does not say: the value and reverse mode, plus forward mode on engines
#: that have it.
DEFAULT = (Mode.VALUE, Mode.VJP)


def asked(modes: tuple[Mode, ...] | None, capabilities: frozenset[Capability]) -> frozenset[Mode]:
    """The modes a check compares beyond the value and reverse mode: a case's ``check:`` list, or by
    default forward mode on an engine that has it."""
    if modes is None:
        modes = (*DEFAULT, Mode.JVP) if Capability.JVP in capabilities else DEFAULT
    return frozenset(modes) - {Mode.VALUE, Mode.VJP}


def needs(mode: Mode, capabilities: frozenset[Capability], max_order: int) -> str | None:
    """Why an engine with these capabilities cannot be checked in ``mode``, or None."""
    if mode in (Mode.JVP, Mode.JACOBIAN) and Capability.JVP not in capabilities:
        return "no forward mode (it does not declare the jvp capability)"
    if mode is Mode.HVP and Capability.HVP not in capabilities:
        return "no differentiable gradients (it does not declare the hvp capability)"
    if mode is Mode.JVP_OF_JVP and (Capability.JVP not in capabilities or max_order < 2):
        return "no nested forward mode (it needs the jvp capability and max_order of at least 2)"
    return None


@dataclass(frozen=True, eq=False)
class Ask:
    """The derivatives one check asks of an engine and of the reference, with its seeded directions:
    one array per differentiable input for the tangents ``u`` and ``w``, one output-shaped cotangent
    ``v``. Every direction is a dyadic rational held exactly in float32, so both sides see one number."""

    modes: frozenset[Mode]
    u: tuple[Any, ...]
    w: tuple[Any, ...]
    v: Any
    order: int = 1  # D^k(v·f)[u^k] for k = 2..order

    @property
    def orders(self) -> range:
        return range(2, self.order + 1)


@dataclass
class Derivatives:
    """What an engine computed for an :class:`Ask` (float arrays; None where it was not asked for or
    the engine does not compute it). Per-input lists follow the order of the differentiable inputs."""

    value: Any = None
    vjp: list[Any] | None = None
    jvp: Any = None
    hvp: list[Any] | None = None  # reverse over reverse
    hvp_fwd: list[Any] | None = None  # forward over reverse
    jvp_of_jvp: Any = None
    jacobian: list[Any] | None = None  # forward mode, per input: output shape + input shape
    orders: dict[int, float] = field(default_factory=dict)
    # Modes it cannot compute for this function, with the library's reason (a Function without jvp):
    # their quantities are skipped saying so.
    refused: dict[Mode, str] = field(default_factory=dict)
