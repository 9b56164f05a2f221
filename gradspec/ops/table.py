"""The op table: every op gradspec knows, defined once.

A row says everything the rest of gradspec needs about an op: how the expression language spells it,
its arity, its exact SymPy form (the reference differentiates this), its float form (the numerical
reference evaluates this), where it is defined, its declared convention at kinks, and how a
micrograd-style engine spells it (an operator or a method), how the parser binds and folds it, how
the fuzzer draws it, and which checking modes it supports. The parser, the references, the numerical
check, the fuzzer and every engine adapter read this table; adding an op is one row here plus cases
that use it.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import operator
from collections.abc import Mapping
from fractions import Fraction
from typing import Any

import mpmath
import sympy

from gradspec.modes import Capability
from gradspec.ops import shapes as _shape
from gradspec.ops.forms import (
    LIBM,
    at_zero,
    div_domain,
    float_range,
    fold_div,
    fold_pow,
    log_domain,
    pow_domain,
    pow_float,
    relu_sym,
    sigmoid,
    sqrt_domain,
)
from gradspec.ops.row import REVERSE_AND_TENSOR, REVERSE_ONLY, Fuzz, Keyword, Kink, Op, TensorOp, show_number

__all__ = [
    "CALLABLE",
    "INFIX",
    "OPS",
    "PREFIX_BINDING",
    "REVERSE_AND_TENSOR",
    "REVERSE_ONLY",
    "TENSOR_INFIX",
    "TENSOR_OPS",
    "Capability",
    "Fuzz",
    "Keyword",
    "Kink",
    "Op",
    "TensorOp",
    "bind",
    "op",
    "show_number",
]

#: The binding power of prefix ops (unary minus): tighter than * and /, looser than **.
PREFIX_BINDING = 30


OPS: dict[str, Op] = {
    o.name: o
    for o in (
        Op("add", 2, operator.add, operator.add, "+", pyop=operator.add, dunders=("__add__", "__radd__"),
           binding=(10, 10), fold=float_range(operator.add)),
        Op("sub", 2, operator.sub, operator.sub, "-", pyop=operator.sub, dunders=("__sub__", "__rsub__"),
           binding=(10, 10), fold=float_range(operator.sub)),
        Op("mul", 2, operator.mul, operator.mul, "*", pyop=operator.mul, dunders=("__mul__", "__rmul__"),
           binding=(20, 20), fold=float_range(operator.mul)),
        Op(
            "div", 2, operator.truediv, operator.truediv, "/",
            pyop=operator.truediv, dunders=("__truediv__", "__rtruediv__"), domain=div_domain,
            binding=(20, 20), fold=float_range(fold_div), fuzz=Fuzz(positive=(1,)),
            partial_ulps=1.5,  # 1/b; -a/(b*b)
        ),
        Op(
            "pow", 2, lambda a, b: sympy.Pow(a, b), pow_float, "**",
            pyop=operator.pow, dunders=("__pow__", "__rpow__"), domain=pow_domain,
            # Binds tighter than unary minus on its left (-x**2 is -(x**2)) and takes a unary on its
            # right (2**-x), so its right operand is parsed at the prefix binding power.
            binding=(41, PREFIX_BINDING), fold=fold_pow, fuzz=Fuzz(positive=(0,), constants=("2", "3", "-1", "0.5")),
            asserts_on_value=(1, "engine's ** does not take a Value exponent"),
            ulps=LIBM, partial_ulps=2 * LIBM + 1,  # y * x**(y-1); x**y * log(x)
        ),
        Op("neg", 1, operator.neg, operator.neg, "-", pyop=operator.neg, dunders=("__neg__",),
           fold=float_range(operator.neg), ulps=0),
        Op(
            "relu", 1, relu_sym, lambda x: x if x > 0 else 0.0, method="relu",
            kink=Kink(at_zero, (0.0,), ((0.0, 1.0),), "relu at 0"), ulps=0,
        ),
        Op("tanh", 1, sympy.tanh, math.tanh, method="tanh", ulps=LIBM, partial_ulps=1, partial_abs=2 * LIBM + 1),
        Op("exp", 1, sympy.exp, math.exp, method="exp", ulps=LIBM, partial_ulps=LIBM),  # exp' is exp's output
        Op("log", 1, sympy.log, math.log, method="log", domain=log_domain, fuzz=Fuzz(positive=(0,)),
           ulps=LIBM, partial_ulps=0.5),
        Op(
            "sigmoid", 1, lambda x: 1 / (1 + sympy.exp(-x)), sigmoid, method="sigmoid",
            ulps=LIBM, partial_ulps=1, partial_abs=LIBM + 1,
        ),
        Op("sin", 1, sympy.sin, math.sin, method="sin", ulps=LIBM, partial_ulps=LIBM),
        Op("cos", 1, sympy.cos, math.cos, method="cos", ulps=LIBM, partial_ulps=LIBM),
        Op("sqrt", 1, sympy.sqrt, math.sqrt, method="sqrt", domain=sqrt_domain, fuzz=Fuzz(positive=(0,)),
           partial_ulps=1.5),  # 0.5 / s
        Op(
            "abs", 1, sympy.Abs, abs, method="abs",
            kink=Kink(at_zero, (0.0,), ((-1.0, 1.0),), "abs at 0"), ulps=0, builtin=("__abs__", abs),
        ),
    )
}


# The special functions and activations: their rows, built from the classes above (gradspec.ops.special_rows).
from gradspec.ops.special_rows import ROWS as _SPECIAL_ROWS  # noqa: E402

_TEMPLATES: dict[str, Op] = {o.name: o for o in _SPECIAL_ROWS if o.keywords}


def _key_text(v: object) -> str:
    return str(v)  # a Fraction as 1/2, a string as itself, None as None


def bind(row: Op, given: Mapping[str, object]) -> Op:
    """``row`` with its keyword values: ``given`` over the defaults. The bound op is named by the values
    that differ from the defaults (``softplus[beta=2]``; ``softplus`` with none), so equal calls are one
    op, and its forms, domain and kink test see the values."""
    row = _TEMPLATES.get(row.base or row.name, row)
    if not row.keywords:
        return row
    values = {k.name: given.get(k.name, k.default) for k in row.keywords}
    shown = [f"{k.name}={_key_text(values[k.name])}" for k in row.keywords if values[k.name] != k.default]
    name = f"{row.name}[{','.join(shown)}]" if shown else row.name
    sym = {k: sympy.Rational(v.numerator, v.denominator) if isinstance(v, Fraction) else v for k, v in values.items()}
    exact = {k: mpmath.mpf(v.numerator) / v.denominator if isinstance(v, Fraction) else v for k, v in values.items()}
    floats = {k: float(v) if isinstance(v, Fraction) else v for k, v in values.items()}
    domain, kink = row.domain, row.kink
    if domain is not None:
        domain = functools.partial(domain, **exact)
    if kink is not None:
        kink = dataclasses.replace(kink, at=functools.partial(kink.at, **exact), interval_at=None if kink.interval_at is None
                                   else functools.partial(kink.interval_at, **exact))
    return dataclasses.replace(row, name=name, base=row.name, shown=row.name, kw=tuple(values.items()),
                               sympy=functools.partial(row.sympy, **sym), fn=functools.partial(row.fn, **floats),
                               domain=domain, kink=kink)


@functools.lru_cache(maxsize=1024)
def _by_name(name: str) -> Op | None:
    """The bound op a name such as ``softplus[beta=2]`` or ``where[cmp=>]`` stands for, or None."""
    base, bracket, rest = name.partition("[")
    row = _TEMPLATES.get(base)
    if row is None or not bracket or not rest.endswith("]"):
        return None
    kinds = {k.name: k for k in row.keywords}
    given: dict[str, object] = {}
    for item in filter(None, rest[:-1].split(",")):
        key, _, text = item.partition("=")
        if key not in kinds:
            return None
        kind = kinds[key]
        given[key] = text if kind.kind == "str" else None if text == "None" else Fraction(text)
    return bind(row, given)


class _OpTable(dict[str, Op]):
    """The op table by name. Iterating it gives the rows; a keyworded op with values other than its
    defaults is looked up by its bound name (``softplus[beta=2]``, see :func:`bind`), so every stage that
    reads ``OPS[step.op]`` sees the values without knowing about keywords."""

    def __missing__(self, name: str) -> Op:
        found = _by_name(name) if isinstance(name, str) else None
        if found is None:
            raise KeyError(name)
        return found

    def __contains__(self, name: object) -> bool:
        return dict.__contains__(self, name) or (isinstance(name, str) and _by_name(name) is not None)


OPS = _OpTable({**OPS, **{o.name: bind(o, {}) for o in _SPECIAL_ROWS}})

#: Infix and prefix spellings: (symbol, arity) -> op name.
INFIX: dict[tuple[str, int], str] = {(o.symbol, o.arity): o.name for o in OPS.values() if o.symbol}
#: Ops written as calls in expressions: name -> op.
CALLABLE: dict[str, Op] = {o.name: o for o in OPS.values() if o.symbol is None}


def op(name: str) -> Op:
    return OPS[name]


# -- tensor ops ---------------------------------------------------------------------------------------
# Every scalar op above also applies to tensors, element by element with NumPy broadcasting. The rows
# below are the ops that only make sense on tensors: a keyword signature, a shape rule
# (:mod:`gradspec.ops.shapes`), the element-wise definition in scalar ops that the exact reference
# differentiates and scalar engines run (:mod:`gradspec.ops.lowering`), and how PyTorch, JAX and
# tinygrad spell the op with their own kernels (each gets the library module, the operands and the keyword values);
# a library without the op has None in its column, and skips the cases that use it, saying so.

_AXIS = Keyword("axis", "int", None)
_LAST = Keyword("axis", "int", -1)


def _dims(kw: dict[str, Any]) -> dict[str, Any]:
    return {} if kw.get("axis") is None else {"dim": kw["axis"]}


_BASIC_TENSOR_ROWS: tuple[TensorOp, ...] = (
    TensorOp("sum", 1, (_AXIS,), _shape.reduce, "total",
             lambda t, a, kw: a[0].sum(**_dims(kw)), lambda j, a, kw: j.numpy.sum(a[0], axis=kw["axis"]),
             "sum of the elements (along axis)",
             tinygrad=lambda tg, a, kw: a[0].sum(kw["axis"])),
    TensorOp("mean", 1, (_AXIS,), _shape.reduce, "mean",
             lambda t, a, kw: a[0].mean(**_dims(kw)), lambda j, a, kw: j.numpy.mean(a[0], axis=kw["axis"]),
             "sum / n (along axis)",
             tinygrad=lambda tg, a, kw: a[0].mean(kw["axis"])),
    TensorOp("max", 1, (_AXIS,), _shape.reduce, "maximum",
             lambda t, a, kw: t.amax(a[0], **_dims(kw)), lambda j, a, kw: j.numpy.max(a[0], axis=kw["axis"]),
             "max(a, b) = b + relu(a - b), folded pairwise; a tie is relu's kink",
             tinygrad=lambda tg, a, kw: a[0].max(kw["axis"])),
    TensorOp("min", 1, (_AXIS,), _shape.reduce, "minimum",
             lambda t, a, kw: t.amin(a[0], **_dims(kw)), lambda j, a, kw: j.numpy.min(a[0], axis=kw["axis"]),
             "min(a, b) = b - relu(b - a), folded pairwise; a tie is relu's kink",
             tinygrad=lambda tg, a, kw: a[0].min(kw["axis"])),
    TensorOp("logsumexp", 1, (_AXIS,), _shape.reduce, "logsumexp",
             lambda t, a, kw: t.logsumexp(a[0], dim=kw["axis"] if kw["axis"] is not None else tuple(range(a[0].dim()))),
             lambda j, a, kw: j.nn.logsumexp(a[0], axis=kw["axis"]), "log(sum_j exp(x_j)) (along axis)",
             tinygrad=lambda tg, a, kw: a[0].logsumexp(kw["axis"])),
    TensorOp("reshape", 1, (Keyword("shape", "ints"),), _shape.reshape, "reshape",
             lambda t, a, kw: a[0].reshape(kw["shape"]), lambda j, a, kw: j.numpy.reshape(a[0], kw["shape"]),
             "the elements in row-major order",
             tinygrad=lambda tg, a, kw: a[0].reshape(kw["shape"])),
    TensorOp("transpose", 1, (), _shape.transpose, "transpose",
             lambda t, a, kw: a[0].transpose(-2, -1), lambda j, a, kw: j.numpy.swapaxes(a[0], -2, -1),
             "the last two axes swapped",
             tinygrad=lambda tg, a, kw: a[0].transpose(-2, -1)),
    TensorOp("permute", 1, (Keyword("axes", "ints"),), _shape.permute, "permute",
             lambda t, a, kw: a[0].permute(kw["axes"]), lambda j, a, kw: j.numpy.transpose(a[0], kw["axes"]),
             "the axes in the given order",
             tinygrad=lambda tg, a, kw: a[0].permute(kw["axes"])),
    TensorOp("matmul", 2, (), _shape.matmul, "matmul",
             lambda t, a, kw: a[0] @ a[1], lambda j, a, kw: j.numpy.matmul(a[0], a[1]),
             "y_ij = sum_k a_ik b_kj (batched, broadcasting)", symbol="@", binding=(20, 20),
             tinygrad=lambda tg, a, kw: a[0].matmul(a[1])),
    TensorOp("softmax", 1, (_LAST,), _shape.same_along_axis, "softmax",
             lambda t, a, kw: t.softmax(a[0], dim=kw["axis"]), lambda j, a, kw: j.nn.softmax(a[0], axis=kw["axis"]),
             "y_i = exp(x_i) / sum_j exp(x_j) along axis",
             tinygrad=lambda tg, a, kw: a[0].softmax(kw["axis"])),
    TensorOp("log_softmax", 1, (_LAST,), _shape.same_along_axis, "log_softmax",
             lambda t, a, kw: t.log_softmax(a[0], dim=kw["axis"]),
             lambda j, a, kw: j.nn.log_softmax(a[0], axis=kw["axis"]), "y_i = x_i - logsumexp(x) along axis",
             tinygrad=lambda tg, a, kw: a[0].log_softmax(kw["axis"])),
)

from gradspec.ops import index_rows, layer_rows, linalg_rows, loss_rows, reduce_rows  # noqa: E402

# torch's names of the same reductions: gradspec's max and min are torch.amax and torch.amin already (a tie is
# relu's kink; torch splits it evenly, a convention difference)
_ALIASES = tuple(dataclasses.replace(r, name=f"a{r.name}") for r in _BASIC_TENSOR_ROWS if r.name in ("max", "min"))

# The tensor ops by group: the basics above, then reductions and scans, indexing and shape, normalisation
# and layers, losses and linear algebra, each group's rows in its own module.
TENSOR_OPS: dict[str, TensorOp] = {
    o.name: o
    for o in (*_BASIC_TENSOR_ROWS, *_ALIASES, *reduce_rows.ROWS, *index_rows.ROWS, *layer_rows.ROWS, *loss_rows.ROWS,
              *linalg_rows.ROWS)
}

#: Infix spellings of tensor ops: symbol -> op name.
TENSOR_INFIX: dict[str, str] = {o.symbol: o.name for o in TENSOR_OPS.values() if o.symbol}
