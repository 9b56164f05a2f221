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

__all__ = ["DEFAULT", "MODE_ROWS", "ORDER", "ROWS", "Ask", "Capability", "Derivatives", "Mode", "ModeRow", "asked",
           "needs", "rows"]


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


ORDER = "order"  # the table's key for ``order: N``, nested derivatives of every order up to N


@dataclass(frozen=True)
class ModeRow:
    """One row of the mode table: everything the stages read about one quantity a check can ask for.

    ``reference`` says how :mod:`gradspec.reference.modes` computes the exact one, ``compose`` how the
    shared driver of :mod:`gradspec.engines.modes` composes the engine's from its primitives (value,
    vjp, jvp, and differentiating a gradient again); both modules key their one function per row on
    ``key``, and :mod:`gradspec.checks.modes` compares and names every row the same way.
    """

    key: str  # the word in a case's check: list (ORDER for order: N)
    formula: str  # what is compared
    needs: frozenset[Capability]  # what an engine must declare to be asked for it
    lacks: str  # why an engine that does not declare it (or reach min_order) is skipped
    slot: str  # the field of Derivatives (and of the reference) that holds it
    label: str  # a quantity's name: {input} per differentiable input, {k} per order
    reference: str
    compose: str
    min_order: int = 1  # the max_order an engine must reach (order: N needs N, checked by needs())
    forward: bool = False  # composed from the function's forward mode: refused where the function has none
    again: bool = False  # differentiates the gradient again: the reverse pass keeps its graph
    second: str | None = None  # a second composition, in its own slot, judged against the same reference
    second_label: str = ""
    consistency: bool = False  # also judged: v·(J u) from this row against (Jᵀ v)·u from the reverse pass
    whole: bool = False  # a full matrix: skipped where it has more entries than the checks' limit
    degree: int = 1  # how many times the quantity differentiates f (ORDER: k, per quantity)

    @property
    def mode(self) -> Mode | None:
        return None if self.key == ORDER else Mode(self.key)


_NO_FORWARD = "no forward mode (it does not declare the jvp capability)"
_NO_AGAIN = "no differentiable gradients (it does not declare the hvp capability)"

#: The mode table, in the order a check's quantities are listed. Value and vjp are every check's own.
ROWS: tuple[ModeRow, ...] = (
    ModeRow(Mode.JVP.value, "J u", frozenset({Capability.JVP}), _NO_FORWARD, "jvp", "jvp",
            "one level of dual numbers along u", "jvp(f, u)", forward=True, consistency=True),
    ModeRow(Mode.HVP.value, "∇²(v·f) u", frozenset({Capability.HVP}), _NO_AGAIN, "hvp", "hvp {input}",
            "forward over reverse: the tape in duals along u, swept back from v",
            "reverse over reverse: the gradient of (Jᵀv)·u; and jvp(vjp(f, v), u) on an engine with forward mode",
            again=True, second="hvp_fwd", second_label="hvp {input} (fwd-rev)", degree=2),
    ModeRow(Mode.JVP_OF_JVP.value, "∂²f[u, w]", frozenset({Capability.JVP}),
            "no nested forward mode (it needs the jvp capability and max_order of at least 2)", "jvp_of_jvp",
            "jvp-of-jvp", "two levels of dual numbers, along u and w", "jvp(jvp(f, u), w)", min_order=2,
            forward=True, degree=2),
    ModeRow(Mode.JACOBIAN.value, "J", frozenset({Capability.JVP}), _NO_FORWARD, "jacobian", "jacobian {input} (fwd)",
            "the exact tensor tape, one VJP per output element", "the library's forward Jacobian, or jvp per column",
            forward=True, whole=True),
    ModeRow(ORDER, "D^k(v·f)[u^k]", frozenset({Capability.HVP}), _NO_AGAIN, "orders", "order {k}",
            "N levels of dual numbers along u, contracted with v", "the gradient differentiated again along u, k - 1 times",
            again=True),  # and max_order of at least N: needs() says so
)
MODE_ROWS = {row.key: row for row in ROWS}


def rows(modes: frozenset[Mode], order: int = 1) -> list[ModeRow]:
    """The table's rows a check with ``modes`` and ``order`` asks for, in the table's order."""
    return [row for row in ROWS if row.key in modes or (row.key == ORDER and order >= 2)]


def needs(mode: Mode | str, capabilities: frozenset[Capability], max_order: int, order: int = 2) -> str | None:
    """Why an engine with these capabilities cannot be checked in ``mode`` (to ``order`` for ORDER), or None."""
    row = MODE_ROWS[mode]
    if not row.needs <= capabilities or max_order < row.min_order:
        return f"has {row.lacks}"
    if row.key == ORDER and order > max_order:
        return f"reaches derivatives of order {max_order}"
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
    # Rows of the mode table (by key) it cannot compute for this function, with the reason (a Function
    # without jvp): their quantities are skipped saying so.
    refused: dict[str, str] = field(default_factory=dict)
