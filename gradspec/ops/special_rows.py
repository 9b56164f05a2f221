"""The op table's rows of special functions and activations (:mod:`gradspec.ops.table` reads ``ROWS``).

Each row's forms, domain and kinks are functions of :mod:`gradspec.ops.special`; each also says how
every engine spells the op. A library function is named by its dotted path from the module an adapter
passes (torch, jax, tinygrad) or, with a leading ".", as a method of the first operand.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from fractions import Fraction
from typing import Any

import sympy

from gradspec.ops import special as _S
from gradspec.ops.forms import LIBM, at_zero
from gradspec.ops.row import Keyword, Kink, Op

__all__ = ["ROWS"]


def _lib(path: str, **names: str) -> Callable[[Any, Sequence[Any], dict[str, Any]], Any]:
    """A library call ``path(*operands, lib_kw=our_kw, ...)``; ``names`` maps the library's keyword names
    to the op's (tinygrad's ``neg_slope`` is ``negative_slope``)."""

    def call(module: Any, a: Sequence[Any], kw: dict[str, Any]) -> Any:
        target: Any = a[0] if path.startswith(".") else module
        for part in path.strip(".").split("."):
            target = getattr(target, part)
        operands = a[1:] if path.startswith(".") else a
        return target(*operands, **{lib: kw[ours] for lib, ours in names.items()})

    return call


def _swapped(path: str) -> Callable[[Any, Sequence[Any], dict[str, Any]], Any]:
    """A symmetric binary method (maximum) called on whichever operand is a tensor."""
    method = _lib(path)

    def call(module: Any, a: Sequence[Any], kw: dict[str, Any]) -> Any:
        return method(module, a if isinstance(a[0], module.Tensor) else a[::-1], kw)

    return call


def _same(*names: str) -> dict[str, str]:
    return {n: n for n in names}


_NUM = "number"
_UNIT = ((0.0, 1.0),)
_ONE_ARG_FREE = _UNIT
_NO_ERFC = "tinygrad has no erfc"

ROWS: tuple[Op, ...] = (
    Op("erf", 1, sympy.erf, math.erf, method="erf", torch=_lib("special.erf"), jax=_S.jax_special("erf"),
       tinygrad=_lib(".erf"), ulps=LIBM, partial_ulps=LIBM + 1, fuzz=None),
    Op("erfc", 1, sympy.erfc, math.erfc, method="erfc", torch=_lib("special.erfc"), jax=_S.jax_special("erfc"),
       tinygrad_lacks=_NO_ERFC, ulps=2 * LIBM, partial_ulps=2 * LIBM + 1, fuzz=None),  # float32's far tail
    Op("log1p", 1, _S.log1p, math.log1p, method="log1p", domain=_S.d_log1p, torch=_lib("log1p"),
       jax=_lib("numpy.log1p"), tinygrad_lacks="tinygrad has no log1p", ulps=LIBM, partial_ulps=1, fuzz=None),
    Op("expm1", 1, _S.expm1, math.expm1, method="expm1", torch=_lib("expm1"), jax=_lib("numpy.expm1"),
       # expm1' is read from the output as y + 1, which loses y's error absolutely (as tanh' = 1 - t*t)
       tinygrad_lacks="tinygrad has no expm1", ulps=LIBM, partial_ulps=LIBM, partial_abs=LIBM + 1, fuzz=None),
    Op("softplus", 1, _S.softplus, _S.f_softplus, method="softplus", domain=_S.d_softplus,
       keywords=(Keyword("beta", _NUM, Fraction(1)), Keyword("threshold", _NUM, Fraction(20))),
       kink=Kink(_S.k_softplus, (1.0,), _UNIT, "softplus at beta*x = threshold (torch returns x above it)",
                 interval_at=_S.k_softplus_interval),
       torch=_lib("nn.functional.softplus", **_same("beta", "threshold")), jax=_S.jax_softplus,
       tinygrad=_S.tinygrad_softplus, ulps=LIBM, partial_ulps=2 * LIBM, fuzz=None),  # z/(z + 1), z = exp(beta*x)
    Op("logsigmoid", 1, lambda x: -_S.log1p(sympy.exp(-x)), _S.f_logsigmoid, method="logsigmoid",
       torch=_lib("nn.functional.logsigmoid"), jax=_lib("nn.log_sigmoid"), tinygrad=_lib(".logsigmoid"),
       ulps=LIBM, partial_ulps=LIBM + 1, fuzz=None),
    Op("elu", 1, _S.elu, _S.f_elu, method="elu", keywords=(Keyword("alpha", _NUM, Fraction(1)),),
       kink=Kink(lambda a, alpha: at_zero(a), (1.0,), _UNIT, "elu at 0 (elu'(0) = alpha, torch's)",
                 interval_at=lambda a, alpha: ((float(min(alpha, 1)), float(max(alpha, 1))),)),
       torch=_lib("nn.functional.elu", alpha="alpha"), jax=_lib("nn.elu", alpha="alpha"),
       # elu' below 0 is read from the output as y + alpha: y's error, absolutely (alpha up to 1)
       tinygrad=_lib(".elu", alpha="alpha"), ulps=LIBM, partial_ulps=LIBM + 1, partial_abs=LIBM + 1, fuzz=None),
    Op("selu", 1, lambda x: _S.SELU_SCALE * _S.elu(x, _S.SELU_ALPHA),
       lambda x: 1.0507009873554805 * _S.f_elu(x, 1.6732632423543772), method="selu",
       kink=Kink(at_zero, (1.7580993408473766,), ((1.0507009873554805, 1.7580993408473766),),
                 "selu at 0 (selu'(0) = scale*alpha, torch's)"),
       torch=_lib("nn.functional.selu"), jax=_lib("nn.selu"), tinygrad=_lib(".selu"),
       ulps=LIBM + 1, partial_ulps=LIBM + 2, partial_abs=2 * (LIBM + 1), fuzz=None),  # y + scale*alpha
    Op("celu", 1, _S.celu, _S.f_celu, method="celu", domain=_S.d_celu, keywords=(Keyword("alpha", _NUM, Fraction(1)),),
       kink=Kink(lambda a, alpha: at_zero(a), (1.0,), ((1.0, 1.0),), "celu at 0 (once differentiable, not twice)"),
       torch=_lib("nn.functional.celu", alpha="alpha"), jax=_lib("nn.celu", alpha="alpha"),
       tinygrad=_lib(".celu", alpha="alpha"), ulps=LIBM + 1, partial_ulps=LIBM + 1, partial_abs=LIBM + 1, fuzz=None),
    Op("gelu", 1, _S.gelu, _S.f_gelu, method="gelu",
       keywords=(Keyword("approximate", "str", "none", choices=("none", "tanh")),),
       torch=_lib("nn.functional.gelu", approximate="approximate"),
       jax=lambda j, a, kw: j.nn.gelu(a[0], approximate=kw["approximate"] == "tanh"),
       # gelu' = Phi + x*phi (or its tanh form): two library functions and a product, which cancel where
       # the slope crosses 0 (x = -0.75); the tanh form's 1 - t*t loses t's error absolutely, times x*u'
       # (up to about 5 before 1 - t*t is 0): absolute errors, as for tanh
       tinygrad=_lib(".gelu", approximate="approximate"), ulps=LIBM + 2, partial_ulps=3 * LIBM, partial_abs=4 * LIBM,
       fuzz=None),
    Op("silu", 1, lambda x: x / (1 + sympy.exp(-x)), _S.f_silu, method="silu", torch=_lib("nn.functional.silu"),
       jax=_lib("nn.silu"), tinygrad=_lib(".silu"), ulps=LIBM + 1, partial_ulps=2 * LIBM, fuzz=None),
    Op("mish", 1, lambda x: x * sympy.tanh(_S.log1p(sympy.exp(x))), _S.f_mish, method="mish",
       torch=_lib("nn.functional.mish"), jax=_lib("nn.mish"), tinygrad=_lib(".mish"),
       ulps=2 * LIBM, partial_ulps=3 * LIBM, fuzz=None),
    Op("tan", 1, sympy.tan, math.tan, method="tan", torch=_lib("tan"), jax=_lib("numpy.tan"), tinygrad=_lib(".tan"),
       ulps=LIBM, partial_ulps=2 * LIBM + 1, fuzz=None),
    Op("atan", 1, sympy.atan, math.atan, method="atan", torch=_lib("atan"), jax=_lib("numpy.arctan"),
       tinygrad=_lib(".atan"), ulps=LIBM, partial_ulps=2, fuzz=None),
    Op("asin", 1, sympy.asin, math.asin, method="asin", domain=_S.d_unit("asin", True), torch=_lib("asin"),
       jax=_lib("numpy.arcsin"), tinygrad=_lib(".asin"), ulps=LIBM, partial_ulps=3, fuzz=None),
    Op("acos", 1, sympy.acos, math.acos, method="acos", domain=_S.d_unit("acos", True), torch=_lib("acos"),
       jax=_lib("numpy.arccos"), tinygrad=_lib(".acos"), ulps=LIBM, partial_ulps=3, fuzz=None),
    Op("sinh", 1, sympy.sinh, math.sinh, method="sinh", torch=_lib("sinh"), jax=_lib("numpy.sinh"),
       tinygrad=_lib(".sinh"), ulps=LIBM, partial_ulps=LIBM, fuzz=None),
    Op("cosh", 1, sympy.cosh, math.cosh, method="cosh", torch=_lib("cosh"), jax=_lib("numpy.cosh"),
       tinygrad=_lib(".cosh"), ulps=LIBM, partial_ulps=LIBM, fuzz=None),
    Op("asinh", 1, sympy.asinh, math.asinh, method="asinh", torch=_lib("asinh"), jax=_lib("numpy.arcsinh"),
       tinygrad=_lib(".asinh"), ulps=LIBM, partial_ulps=3, fuzz=None),
    Op("acosh", 1, sympy.acosh, math.acosh, method="acosh", domain=_S.d_acosh, torch=_lib("acosh"),
       jax=_lib("numpy.arccosh"), tinygrad=_lib(".acosh"), ulps=LIBM, partial_ulps=3, fuzz=None),
    Op("atanh", 1, sympy.atanh, math.atanh, method="atanh", domain=_S.d_unit("atanh", False), torch=_lib("atanh"),
       jax=_lib("numpy.arctanh"), tinygrad=_lib(".atanh"), ulps=LIBM, partial_ulps=2, fuzz=None),
    Op("reciprocal", 1, lambda x: 1 / x, lambda x: 1 / x, method="reciprocal", domain=_S.d_nonzero("reciprocal"),
       torch=_lib("reciprocal"), jax=_lib("numpy.reciprocal"), tinygrad=_lib(".reciprocal"),
       partial_ulps=1.5, fuzz=None),
    Op("rsqrt", 1, lambda x: x ** sympy.Rational(-1, 2), lambda x: 1 / math.sqrt(x), method="rsqrt",
       domain=_S.d_rsqrt, torch=_lib("rsqrt"), jax=_lib("lax.rsqrt"), tinygrad=_lib(".rsqrt"),
       ulps=1.5, partial_ulps=3, fuzz=None),
    Op("square", 1, lambda x: x**2, lambda x: x * x, method="square", torch=_lib("square"), jax=_lib("numpy.square"),
       tinygrad=_lib(".square"), partial_ulps=0.5, fuzz=None),
    Op("sign", 1, sympy.sign, lambda x: float((x > 0) - (x < 0)), method="sign",
       kink=Kink(at_zero, (0.0,), ((0.0, 0.0),), "sign at 0 (a jump; sign' = 0 on both sides)"),
       torch=_lib("sign"), jax=_lib("numpy.sign"), tinygrad=_lib(".sign"), ulps=0, fuzz=None),
    Op("leaky_relu", 1, lambda x, negative_slope: sympy.Piecewise((x, x > 0), (negative_slope * x, True)),
       lambda x, negative_slope: x if x > 0 else negative_slope * x, method="leaky_relu",
       keywords=(Keyword("negative_slope", _NUM, Fraction(1, 100)),),
       kink=Kink(lambda a, negative_slope: at_zero(a), (0.01,), _UNIT,
                 "leaky_relu at 0 (the negative slope, torch's)",
                 interval_at=lambda a, negative_slope: ((float(min(negative_slope, 1)), float(max(negative_slope, 1))),)),
       torch=_lib("nn.functional.leaky_relu", negative_slope="negative_slope"),
       jax=_lib("nn.leaky_relu", negative_slope="negative_slope"),
       tinygrad=_lib(".leaky_relu", neg_slope="negative_slope"), fuzz=None),
    Op("relu6", 1, lambda x: _S.hardtanh(x, 0, 6), lambda x: min(max(x, 0.0), 6.0), method="relu6",
       kink=Kink(_S.at_points(0, 6), (0.0,), _UNIT, "relu6 at 0 or 6 (derivative 0 there, torch's and JAX's)"),
       torch=_lib("nn.functional.relu6"), jax=_lib("nn.relu6"), tinygrad=_lib(".relu6"), ulps=0, fuzz=None),
    Op("hardtanh", 1, _S.hardtanh, lambda x, min_val, max_val: min(max(x, min_val), max_val), method="hardtanh",
       domain=lambda a, v, min_val, max_val: _S.d_hardtanh(a, v, min_val, max_val),
       keywords=(Keyword("min_val", _NUM, Fraction(-1)), Keyword("max_val", _NUM, Fraction(1))),
       kink=Kink(lambda a, min_val, max_val: _S.k_bounds(a, lo=min_val, hi=max_val), (0.0,), _UNIT,
                 "hardtanh at min_val or max_val (derivative 0 there, torch's)"),
       torch=_lib("nn.functional.hardtanh", **_same("min_val", "max_val")), jax=_S.jax_hardtanh,
       tinygrad=_lib(".hardtanh", **_same("min_val", "max_val")), ulps=0, fuzz=None),
    Op("hardsigmoid", 1, lambda x: _S.hardtanh(x / 6 + sympy.Rational(1, 2), 0, 1),
       lambda x: min(max(x / 6 + 0.5, 0.0), 1.0), method="hardsigmoid",
       kink=Kink(_S.at_points(-3, 3), (0.0,), ((0.0, 1 / 6),), "hardsigmoid at -3 or 3 (derivative 0 there, torch's)"),
       torch=_lib("nn.functional.hardsigmoid"), jax=_lib("nn.hard_sigmoid"), tinygrad=_lib(".hardsigmoid"),
       ulps=1.5, partial_ulps=0.5, fuzz=None),
    Op("hardswish", 1, _S.hardswish, _S.f_hardswish, method="hardswish",
       kink=Kink(_S.at_points(-3, 3), (0.0,), ((-0.5, 1.5),), "hardswish at -3 or 3 (the outer piece's slope, torch's)",
                 interval_at=_S.k_hardswish_interval),
       torch=_lib("nn.functional.hardswish"), jax=_lib("nn.hard_swish"), tinygrad=_lib(".hardswish"),
       ulps=2, partial_ulps=2, partial_abs=1, fuzz=None),  # x/3 + 1/2 cancels near x = -3/2: absolute
    Op("clamp", 1, _S.clamp, _S.f_clamp, method="clamp", domain=_S.d_clamp,
       keywords=(Keyword("min", _NUM, None), Keyword("max", _NUM, None)),
       kink=Kink(lambda a, min, max: _S.k_bounds(a, lo=min, hi=max), (1.0,), _UNIT,
                 "clamp at min or max (derivative 1 there, torch's)"),
       torch=_S.torch_clamp, jax=_lib("numpy.clip", min="min", max="max"),
       tinygrad=_lib(".clamp", min_="min", max_="max"), ulps=0, fuzz=None),
    Op("maximum", 2, _S.maximum, max, method="maximum",
       kink=Kink(_S.k_tie, (0.5, 0.5), (_UNIT[0], _UNIT[0]), "maximum at a tie (1/2 each, torch's and JAX's)"),
       torch=_lib("maximum"), jax=_lib("numpy.maximum"), tinygrad=_swapped(".maximum"), ulps=0, fuzz=None),
    Op("minimum", 2, _S.minimum, min, method="minimum",
       kink=Kink(_S.k_tie, (0.5, 0.5), (_UNIT[0], _UNIT[0]), "minimum at a tie (1/2 each, torch's and JAX's)"),
       torch=_lib("minimum"), jax=_lib("numpy.minimum"), tinygrad=_swapped(".minimum"), ulps=0, fuzz=None),
    Op("atan2", 2, sympy.atan2, math.atan2, method="atan2", domain=_S.d_atan2, torch=_lib("atan2"),
       jax=_lib("numpy.arctan2"), tinygrad_lacks="tinygrad has no atan2", ulps=LIBM, partial_ulps=3, fuzz=None),
    Op("logaddexp", 2, lambda a, b: sympy.log(sympy.exp(a) + sympy.exp(b)), _S.f_logaddexp, method="logaddexp",
       # the partials are sigmoid(a - b): a - b's own rounding, times |a - b|, adds ulps far from a tie
       torch=_lib("logaddexp"), jax=_lib("numpy.logaddexp"), tinygrad=_swapped(".logaddexp"),
       ulps=LIBM, partial_ulps=2 * LIBM + 1, fuzz=None),
    Op("xlogy", 2, _S.xlogy, _S.f_xlogy, method="xlogy", domain=_S.d_xlogy, torch=_lib("xlogy"),
       jax=_S.jax_special("xlogy"), tinygrad_lacks="tinygrad has no xlogy", ulps=LIBM, partial_ulps=1, fuzz=None),
    Op("where", 4, _S.where, _S.f_where, method="where",
       keywords=(Keyword("cmp", "str", ">", choices=tuple(_S.COMPARE), internal=True),),
       kink=Kink(lambda a, cmp: _S.k_tie(a), (0.0, 0.0, 1.0, 0.0), ((0.0, 0.0), (0.0, 0.0), _UNIT[0], _UNIT[0]),
                 "where at a comparison's tie (its operands equal)"),
       torch=_S.torch_where, jax=_S.jax_where, tinygrad=_S.tinygrad_where, value_call=_S.value_where, ulps=0, fuzz=None),
)
