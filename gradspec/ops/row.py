"""One row of the op table: the classes a row is made of (:class:`Op`, its :class:`Kink`, its
:class:`Keyword` arguments, how the fuzzer draws it) and how a rational constant is shown. The rows
themselves are in :mod:`gradspec.ops.table`, :mod:`gradspec.ops.special_rows` and the tensor-op groups
(``*_rows.py``), and a tensor op is a :class:`TensorOp`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

import mpmath
import sympy

from gradspec.modes import Capability

__all__ = ["REVERSE_AND_TENSOR", "REVERSE_ONLY", "Domain", "Fuzz", "Keyword", "Kink", "Op", "TensorOp", "show_number"]

# (exact arguments, which of them vary) -> what is wrong, or None; a keyworded row's domain, kink test and
# interval also take the keyword values as keyword arguments (see bind), hence the open signatures.
Domain = Callable[..., "str | None"]

@dataclass(frozen=True)
class Kink:
    """Where an op is continuous but not differentiable, and what gradient it declares there.

    ``convention`` is the partial derivative (per argument) gradspec expects by default; ``interval``
    the subgradients an engine may choose instead, which are reported as convention differences.
    """

    at: Callable[..., bool]
    convention: tuple[float, ...]
    interval: tuple[tuple[float, float], ...]
    where: str
    # For an op with several kinks whose subgradients differ (hardswish at -3 and at 3): the interval
    # at the given arguments; None: ``interval`` everywhere.
    interval_at: Callable[..., tuple[tuple[float, float], ...]] | None = None

    def interval_for(self, args: Sequence[mpmath.mpf]) -> tuple[tuple[float, float], ...]:
        """The subgradient interval of each argument at the kink ``args`` lies on."""
        return self.interval if self.interval_at is None else self.interval_at(args)


#: What every op and engine supports today; a later mode adds its member to the rows that support it.
REVERSE_ONLY = frozenset({Capability.VJP})
#: Engines that also run tensor cases (:mod:`gradspec.engines.tensor`).
REVERSE_AND_TENSOR = frozenset({Capability.VJP, Capability.TENSOR})


_REQUIRED = object()


@dataclass(frozen=True)
class Keyword:
    """One keyword argument: ``kind`` is "int", "number", "ints" (a list of integers) or "str" (one of
    ``choices``; an "int" or "number" keyword with ``choices`` also takes those strings, as ``norm``'s
    ord="inf"); an ``internal`` keyword is set by the parser from the syntax (``where``'s comparison),
    never written as a keyword."""

    name: str
    kind: str
    default: object = _REQUIRED
    choices: tuple[str, ...] = ()
    internal: bool = False

    @property
    def required(self) -> bool:
        return self.default is _REQUIRED


@dataclass(frozen=True)
class Fuzz:
    """How the fuzzer draws this op: ``positive`` are argument positions drawn as ``a*a + c`` to keep them
    inside the op's domain; ``constants``, when given, replace the last argument half of the time."""

    positive: tuple[int, ...] = ()
    constants: tuple[str, ...] = ()


@dataclass(frozen=True)
class Op:
    name: str
    arity: int
    sympy: Callable[..., sympy.Expr]
    fn: Callable[..., float]
    symbol: str | None = None  # infix or prefix spelling ("+", "**"); None: called as name(...)
    method: str | None = None  # a Value method (x.tanh()); None: a Python operator
    pyop: Callable[..., object] | None = None  # the Python operator (operator.add) for operator ops
    dunders: tuple[str, ...] = ()  # special methods a Value class needs: own side, reflected side
    domain: Domain | None = None
    kink: Kink | None = None
    # Infix ops: (left binding power, the binding power its right operand is parsed at). Higher binds
    # tighter; a right power below the left one makes the op right-associative (``**``).
    binding: tuple[int, int] | None = None
    # The exact value on rational constants (None where it is not rational); ArithmeticError refuses them.
    fold: Callable[..., Fraction | None] | None = None
    fuzz: Fuzz | None = Fuzz()  # None: the fuzzer does not draw this op
    # (argument, meaning): a micrograd-style class asserts when this argument is a Value; that assertion
    # means the engine does not support it, not that it is wrong.
    asserts_on_value: tuple[int, str] | None = None
    # Every scalar op also applies to tensors, element by element with broadcasting.
    capabilities: frozenset[Capability] = REVERSE_AND_TENSOR
    # Rounding: how far (in units in the last place of the engine's float) an engine may err on the
    # op's result (0 for exact ops, 0.5 for correctly rounded IEEE ops, a few for library
    # transcendentals), on each local partial its backward computes, and, for partials recomputed
    # from the op's own rounded output (tanh' = 1 - t*t, sigmoid' = s*(1 - s)), an absolute error in
    # units of machine epsilon: t is off by its ulps, and 1 - t*t loses that absolutely, not relatively.
    ulps: float = 0.5
    partial_ulps: float = 0.0
    # An op that scales its arguments by a constant and rounds them before its library function (exp2 as
    # exp(x*log(2)), ndtr as erfc(-x/sqrt(2))/2, sinc of pi*x): its value and every derivative err as
    # the exact ones of arguments moved by this many eps, relatively (the scaled argument's rounding and
    # the constant's).
    arg_ulps: float = 0.0
    # An op whose derivatives are another's times a constant, and formed so (log10' as log' divided by
    # log(10)): that constant. An engine forms the other's derivative, whose reciprocal (x*x for log'')
    # is this op's reciprocal times it, and may underflow where this op's own does not.
    derivative_scale: float = 1.0
    partial_abs: float = 0.0
    # Where engines form the value or a derivative of order k as a difference of terms that cancel
    # (gelu = x/2 + x*erf(x/sqrt(2))/2, silu'' from a rounded sigmoid): what that loses, absolutely, in
    # units of eps, given k, the arguments, the exact value of that derivative and the keyword values.
    # None: ``partial_abs`` for each order from the first (a derivative of order k differentiates the
    # rebuilt partial k - 1 more times), nothing for the value.
    rebuilt: Callable[[int, Sequence[float], float, dict[str, Any]], float] | None = None
    # A second spelling Python gives the op: (special method, the builtin that calls it), as abs(x)
    # calls __abs__ while gradspec calls the method x.abs(). Engines that have both are run with both;
    # one that has only the special method is run with it.
    builtin: tuple[str, Callable[..., object]] | None = None
    # Keyword arguments (``softplus(x, beta=2)``) and, in a bound op, their values (every keyword
    # filled in): the row's forms get them as keyword arguments (see :func:`bind`).
    keywords: tuple[Keyword, ...] = ()
    kw: tuple[tuple[str, object], ...] = ()
    # How PyTorch, JAX and tinygrad spell the op, each given its library module, the operands and the
    # keyword values (floats and strings); None: the Tensor method or jnp/jax.nn function ``method``,
    # or the Python operator. ``tinygrad_lacks`` says why tinygrad cannot run the op, where it cannot.
    torch: Callable[[Any, Sequence[Any], dict[str, Any]], Any] | None = None
    jax: Callable[[Any, Sequence[Any], dict[str, Any]], Any] | None = None
    tinygrad: Callable[[Any, Sequence[Any], dict[str, Any]], Any] | None = None
    tinygrad_lacks: str | None = None
    # How a Value class spells an op whose first operands are data (where's comparison): given the class's
    # method by name, a reader of a node's float, the operands and the keyword values; None: the method.
    value_call: Callable[[Callable[[str], Any], Callable[[Any], float], Sequence[Any], dict[str, Any]], Any] | None = None
    base: str = ""  # the row's own name, for a bound op; empty for a row
    shown: str = ""  # how the op is called in expression text, for a bound op (``softplus`` or ``where``)

    def rebuilt_abs(self, order: int, args: Sequence[Any], value: Any) -> float:
        """What the engines' spelling of this op's value (order 0) or derivative of ``order`` loses
        absolutely, beyond its relative rounding, in units of eps: the rebuilt allowance."""
        if self.rebuilt is not None:
            return self.rebuilt(order, [float(a) for a in args], float(value), self.kwargs)
        return self.partial_abs * order

    @property
    def kwargs(self) -> dict[str, Any]:
        """The keyword values as engines take them: floats, ints and strings (None for an omitted bound)."""
        return {k: float(v) if isinstance(v, Fraction) else v for k, v in self.kw}

    def render(self, args: Sequence[str]) -> str:
        """This op applied to argument texts, fully parenthesised, as the expression language spells it."""
        if self.shown == "where":
            return f"where({args[0]} {self.kwargs['cmp']} {args[1]}, {args[2]}, {args[3]})"
        if self.symbol is None:
            defaults = {k.name: k.default for k in self.keywords}
            given = [f"{k}={_kw_show(v)}" for k, v in self.kw if v != defaults.get(k)]
            return f"{self.shown or self.name}({', '.join([*args, *given])})"
        if self.arity == 1:
            return f"({self.symbol}{args[0]})"
        return f"({args[0]} {self.symbol} {args[1]})"

    def needs(self, value_left: bool) -> str:
        """The special method or method a Value class must have to apply this op."""
        if self.method:
            return self.method
        if self.arity == 1 or value_left:
            return self.dunders[0]
        return self.dunders[1]


@dataclass(frozen=True)
class TensorOp:
    """One tensor op: a keyword signature, a shape rule (:mod:`gradspec.ops.shapes`), the element-wise
    definition in scalar ops that the exact reference differentiates and scalar engines run (a function of
    :mod:`gradspec.ops.lowering`), and how PyTorch, JAX and tinygrad spell it with their own kernels (each
    gets the library module, the operands and the keyword values; None: the library lacks the op).

    A multi-output op (``slogdet``, ``sort`` with its indices) names its ``outputs`` and has the internal
    keyword ``output``: ``op(...)[k]`` selects output ``k``, and a bare call means output ``bare`` (None:
    a bare call is refused, the tuple must be subscripted).
    """

    name: str
    arity: int
    keywords: tuple[Keyword, ...]
    shape: Callable[[str, Sequence[tuple[int, ...]], dict[str, Any]], tuple[int, ...]]
    # The element-wise definition: a function of gradspec.ops.lowering ("softmax") or of one of its
    # modules ("scans.cumsum"), imported on use (NumPy).
    lowering: str
    torch: Callable[[Any, Sequence[Any], dict[str, Any]], Any] | None
    jax: Callable[[Any, Sequence[Any], dict[str, Any]], Any] | None
    definition: str  # the element-wise definition, for reports
    symbol: str | None = None  # an infix spelling ("@")
    binding: tuple[int, int] | None = None  # an infix op's binding powers, as for scalar rows
    data: tuple[int, ...] = ()  # arguments that are integer data (class targets), never differentiated
    tinygrad: Callable[[Any, Sequence[Any], dict[str, Any]], Any] | None = None  # gets the tinygrad module
    # Operands beyond ``arity`` that a call may add (``batch_norm(x, w, b)``: arity 1, up to 3); None:
    # exactly ``arity``; -1: any number (``stack(a, b, ...)``). Absent operands are absent from the args.
    max_arity: int | None = None
    outputs: tuple[str, ...] = ()  # a multi-output op's outputs, by name; empty: one output
    bare: int | None = 0  # the output a bare call of a multi-output op means; None: it must be subscripted
    # What engines' own kernel of the op loses beyond the rounding of this lowering, where their spelling
    # cancels terms larger than the result (a dense kernel's matrix formulas, a scan's weights from its
    # rounded output): given a :class:`gradspec.ops.rebuilt_tensor.Site`, the absolute allowance of every
    # element of a quantity (the rebuilt allowance: imprecise, never pass); None: nothing.
    rebuilt: Callable[[Any], Any] | None = None

    def lower(self, backend: Any, args: Sequence[Any], kw: dict[str, Any], shape: tuple[int, ...]) -> Any:
        """This op's element-wise definition applied to object arrays of ``backend``'s scalars."""
        import importlib

        module, _, fn = self.lowering.rpartition(".")
        where = importlib.import_module("gradspec.ops.lowering" + (f".{module}" if module else ""))
        return getattr(where, fn)(backend, args, kw, shape)


def _kw_show(v: object) -> str:
    if isinstance(v, str):
        return f'"{v}"'
    return show_number(v) if isinstance(v, Fraction) else str(v)


def show_number(value: Fraction) -> str:
    """A rational constant for a message: an integer as itself, anything else as its float."""
    if value.denominator == 1:
        return str(value.numerator)
    return repr(float(value))
