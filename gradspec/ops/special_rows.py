"""The op table's rows of special functions and activations (:mod:`gradspec.ops.table` reads ``ROWS``).

Each row's forms, domain and kinks are functions of :mod:`gradspec.ops.special`; each also says how
every engine spells the op (:mod:`gradspec.ops.spellings`). A library function is named by its dotted
path from the module an adapter passes (torch, jax, tinygrad) or, with a leading ".", as a method of the
first operand.
"""

from __future__ import annotations

import math
from fractions import Fraction

import sympy

from gradspec.ops import rebuilt as _R
from gradspec.ops import special as _S
from gradspec.ops import spellings as _sp
from gradspec.ops.forms import LIBM, at_zero
from gradspec.ops.functions import LogGamma, LogNdtr, Phi, Psi, Sinc, TanhShrink, expm1, log1p
from gradspec.ops.row import Keyword, Kink, Op
from gradspec.ops.spellings import lib, same, swapped

__all__ = ["ROWS"]


_NUM = "number"
_UNIT = ((0.0, 1.0),)
_ONE_ARG_FREE = _UNIT
_NO_ERFC = "tinygrad has no erfc"

ROWS: tuple[Op, ...] = (
    Op("erf", 1, sympy.erf, math.erf, method="erf", torch=lib("special.erf"), jax=_sp.jax_special("erf"),
       tinygrad=lib(".erf"), ulps=LIBM, partial_ulps=LIBM + 1, fuzz=None),
    Op("erfc", 1, sympy.erfc, math.erfc, method="erfc", torch=lib("special.erfc"), jax=_sp.jax_special("erfc"),
       tinygrad_lacks=_NO_ERFC, ulps=2 * LIBM, partial_ulps=2 * LIBM + 1, fuzz=None),  # float32's far tail
    Op("log1p", 1, log1p, math.log1p, method="log1p", domain=_S.d_log1p, torch=lib("log1p"),
       jax=lib("numpy.log1p"), tinygrad_lacks="tinygrad has no log1p", ulps=LIBM, partial_ulps=1, fuzz=None),
    Op("expm1", 1, expm1, math.expm1, method="expm1", torch=lib("expm1"), jax=lib("numpy.expm1"),
       # expm1' is read from the output as y + 1, which loses y's error absolutely (as tanh' = 1 - t*t)
       tinygrad_lacks="tinygrad has no expm1", ulps=LIBM, partial_ulps=LIBM, partial_abs=LIBM + 1, fuzz=None),
    Op("log2", 1, lambda x: sympy.log(x) / sympy.log(2), math.log2, method="log2", domain=_S.d_positive("log2"),
       # JAX's is log(x)/log(2): log's error and a division; the slope 1/(x*log 2): a constant and two roundings
       torch=lib("log2"), jax=lib("numpy.log2"), tinygrad=lib(".log2"), ulps=LIBM + 1, partial_ulps=1.5,
       derivative_scale=1 / math.log(2), fuzz=None),
    Op("log10", 1, lambda x: sympy.log(x) / sympy.log(10), math.log10, method="log10",
       domain=_S.d_positive("log10"), torch=lib("log10"), jax=lib("numpy.log10"), tinygrad=lib(".log10"),
       # JAX's is log(x)/log(10), differentiated as such: log10'' forms x*x, 1/log(10) of log10'''s reciprocal
       ulps=LIBM + 1, partial_ulps=1.5, derivative_scale=1 / math.log(10), fuzz=None),
    Op("exp2", 1, lambda x: 2**x, lambda x: 2.0**x, method="exp2", torch=lib("exp2"), jax=lib("numpy.exp2"),
       # exp2' = exp2(x)*log(2), read from the output: its error, the constant's and the product's; JAX's
       # exp2 is exp(x*log(2)), a rounded product: an ulp of x (the product's and the constant's half each)
       tinygrad=lib(".exp2"), ulps=LIBM, partial_ulps=LIBM + 1, arg_ulps=1, fuzz=None),
    Op("ndtr", 1, Phi, _S.f_ndtr, method="ndtr", torch=lib("special.ndtr"), jax=_sp.jax_special("ndtr"),
       # erfc(-x/sqrt(2))/2: erfc's budget, of a rounded x/sqrt(2) (an ulp of x); the slope
       # exp(-x*x/2)/sqrt(2*pi) as erf's
       tinygrad_lacks="tinygrad has no ndtr", ulps=2 * LIBM, partial_ulps=LIBM + 1, arg_ulps=1, rebuilt=_R.ndtr,
       fuzz=None),
    Op("sinc", 1, Sinc, _S.f_sinc, method="sinc", torch=lib("sinc"), jax=lib("numpy.sinc"),
       # sin and a division; the slope (cos(pi*x) - sinc(x))/x: two library functions of a rounded pi*x (whose
       # rounding moves cos by up to pi/2 eps per unit of x), each to about LIBM + 1 eps, differenced where they
       # cancel (near the slope's zeros, and towards 0): absolute, for |x| from about 1/2 on
       tinygrad_lacks="tinygrad has no sinc", ulps=LIBM + 1, partial_ulps=2 * LIBM + 1, rebuilt=_R.sinc, fuzz=None),
    Op("log_ndtr", 1, LogNdtr, _S.f_log_ndtr, method="log_ndtr", torch=lib("special.log_ndtr"),
       # log of erfc (or of erfcx in the left tail, with -x*x/2 added); the slope phi/Phi, a ratio of two
       jax=_sp.jax_special("log_ndtr"), tinygrad_lacks="tinygrad has no log_ndtr", ulps=LIBM, partial_ulps=LIBM + 1,
       rebuilt=_R.log_ndtr, fuzz=None),
    Op("lgamma", 1, LogGamma, _S.f_lgamma, method="lgamma", domain=_S.d_gamma_pole("lgamma"), torch=lib("lgamma"),
       # the slope digamma(x) is a library function whose recurrence and series cancel beside its zero at
       # 1.4616: an absolute error of a few eps there (as sinc's)
       jax=_sp.jax_special("gammaln"), tinygrad_lacks="tinygrad has no lgamma", ulps=LIBM, partial_ulps=LIBM,
       partial_abs=LIBM, fuzz=None),
    Op("digamma", 1, Psi, _S.f_digamma, method="digamma", domain=_S.d_gamma_pole("digamma"), torch=lib("digamma"),
       jax=_sp.jax_special("digamma"), tinygrad_lacks="tinygrad has no digamma", ulps=LIBM, partial_ulps=LIBM,
       rebuilt=_R.digamma, fuzz=None),
    Op("logit", 1, _S.logit, _S.f_logit, method="logit", domain=_S.d_logit, keywords=(Keyword("eps", _NUM, None),),
       kink=Kink(_S.k_logit, (1.0,), _UNIT, "logit at eps or 1 - eps (the inner slope 1/(eps*(1 - eps)), torch's)",
                 interval_at=_S.k_logit_interval),
       # log(x/(1 - x)): the quotient's rounding and log's; the slope 1/(x*(1 - x)): three roundings
       torch=_sp.torch_logit, jax=_sp.jax_logit, tinygrad_lacks="tinygrad has no logit", ulps=LIBM + 1,
       partial_ulps=1.5, fuzz=None),
    Op("entr", 1, _S.entr, _S.f_entr, method="entr", domain=_S.d_entr, torch=lib("special.entr"),
       # the slope -(log(x) + 1) cancels at x = 1/e: log's error, absolutely (as hardswish's x/3 + 1/2)
       jax=_sp.jax_special("entr"), tinygrad_lacks="tinygrad has no entr", ulps=LIBM, partial_ulps=LIBM,
       partial_abs=LIBM + 1, fuzz=None),
    Op("softplus", 1, _S.softplus, _S.f_softplus, method="softplus", domain=_S.d_softplus,
       keywords=(Keyword("beta", _NUM, Fraction(1)), Keyword("threshold", _NUM, Fraction(20))),
       kink=Kink(_S.k_softplus, (1.0,), _UNIT, "softplus at beta*x = threshold (torch returns x above it)",
                 interval_at=_S.k_softplus_interval),
       torch=lib("nn.functional.softplus", **same("beta", "threshold")), jax=_sp.jax_softplus,
       tinygrad=_sp.tinygrad_softplus, ulps=LIBM, partial_ulps=2 * LIBM, rebuilt=_R.softplus,
       fuzz=None),  # z/(z + 1), z = exp(beta*x)
    Op("logsigmoid", 1, lambda x: -log1p(sympy.exp(-x)), _S.f_logsigmoid, method="logsigmoid",
       torch=lib("nn.functional.logsigmoid"), jax=lib("nn.log_sigmoid"), tinygrad=lib(".logsigmoid"),
       ulps=LIBM, partial_ulps=LIBM + 1, rebuilt=_R.second_from, fuzz=None),
    Op("elu", 1, _S.elu, _S.f_elu, method="elu", keywords=(Keyword("alpha", _NUM, Fraction(1)),),
       kink=Kink(lambda a, alpha: at_zero(a), (1.0,), _UNIT, "elu at 0 (elu'(0) = alpha, torch's)",
                 interval_at=lambda a, alpha: ((float(min(alpha, 1)), float(max(alpha, 1))),)),
       torch=lib("nn.functional.elu", alpha="alpha"), jax=lib("nn.elu", alpha="alpha"),
       # elu' below 0 is read from the output as y + alpha: y's error, absolutely (alpha up to 1)
       tinygrad=lib(".elu", alpha="alpha"), ulps=LIBM, partial_ulps=LIBM + 1, partial_abs=LIBM + 1, fuzz=None),
    Op("selu", 1, lambda x: _S.SELU_SCALE * _S.elu(x, _S.SELU_ALPHA),
       lambda x: 1.0507009873554805 * _S.f_elu(x, 1.6732632423543772), method="selu",
       kink=Kink(at_zero, (1.7580993408473766,), ((1.0507009873554805, 1.7580993408473766),),
                 "selu at 0 (selu'(0) = scale*alpha, torch's)"),
       torch=lib("nn.functional.selu"), jax=lib("nn.selu"), tinygrad=lib(".selu"),
       ulps=LIBM + 1, partial_ulps=LIBM + 2, partial_abs=2 * (LIBM + 1), fuzz=None),  # y + scale*alpha
    Op("celu", 1, _S.celu, _S.f_celu, method="celu", domain=_S.d_celu, keywords=(Keyword("alpha", _NUM, Fraction(1)),),
       kink=Kink(lambda a, alpha: at_zero(a), (1.0,), ((1.0, 1.0),), "celu at 0 (once differentiable, not twice)"),
       torch=lib("nn.functional.celu", alpha="alpha"), jax=lib("nn.celu", alpha="alpha"),
       tinygrad=lib(".celu", alpha="alpha"), ulps=LIBM + 1, partial_ulps=LIBM + 1, partial_abs=LIBM + 1, fuzz=None),
    Op("gelu", 1, _S.gelu, _S.f_gelu, method="gelu",
       keywords=(Keyword("approximate", "str", "none", choices=("none", "tanh")),),
       torch=lib("nn.functional.gelu", approximate="approximate"),
       jax=lambda j, a, kw: j.nn.gelu(a[0], approximate=kw["approximate"] == "tanh"),
       # gelu' = Phi + x*phi (or its tanh form): two library functions and a product, which cancel where
       # the slope crosses 0 (x = -0.75); the tanh form's 1 - t*t loses t's error absolutely, times x*u'
       # (up to about 5 before 1 - t*t is 0): absolute errors, as for tanh
       # erf of a rounded x/sqrt(2), tanh of a rounded c*(x + 0.044715*x**3): up to two ulps of x
       tinygrad=lib(".gelu", approximate="approximate"), ulps=LIBM + 2, partial_ulps=3 * LIBM, arg_ulps=2,
       rebuilt=_R.gelu, fuzz=None),
    Op("silu", 1, lambda x: x / (1 + sympy.exp(-x)), _S.f_silu, method="silu", torch=lib("nn.functional.silu"),
       jax=lib("nn.silu"), tinygrad=lib(".silu"), ulps=LIBM + 1, partial_ulps=2 * LIBM, rebuilt=_R.silu, fuzz=None),
    Op("mish", 1, lambda x: x * sympy.tanh(log1p(sympy.exp(x))), _S.f_mish, method="mish",
       torch=lib("nn.functional.mish"), jax=lib("nn.mish"), tinygrad=lib(".mish"),
       ulps=2 * LIBM, partial_ulps=3 * LIBM, rebuilt=_R.mish, fuzz=None),
    Op("tan", 1, sympy.tan, math.tan, method="tan", torch=lib("tan"), jax=lib("numpy.tan"), tinygrad=lib(".tan"),
       ulps=LIBM, partial_ulps=2 * LIBM + 1, fuzz=None),
    Op("atan", 1, sympy.atan, math.atan, method="atan", torch=lib("atan"), jax=lib("numpy.arctan"),
       tinygrad=lib(".atan"), ulps=LIBM, partial_ulps=2, fuzz=None),
    Op("asin", 1, sympy.asin, math.asin, method="asin", domain=_S.d_unit("asin", True), torch=lib("asin"),
       jax=lib("numpy.arcsin"), tinygrad=lib(".asin"), ulps=LIBM, partial_ulps=3, fuzz=None),
    Op("acos", 1, sympy.acos, math.acos, method="acos", domain=_S.d_unit("acos", True), torch=lib("acos"),
       jax=lib("numpy.arccos"), tinygrad=lib(".acos"), ulps=LIBM, partial_ulps=3, fuzz=None),
    Op("sinh", 1, sympy.sinh, math.sinh, method="sinh", torch=lib("sinh"), jax=lib("numpy.sinh"),
       tinygrad=lib(".sinh"), ulps=LIBM, partial_ulps=LIBM, fuzz=None),
    Op("cosh", 1, sympy.cosh, math.cosh, method="cosh", torch=lib("cosh"), jax=lib("numpy.cosh"),
       tinygrad=lib(".cosh"), ulps=LIBM, partial_ulps=LIBM, fuzz=None),
    Op("asinh", 1, sympy.asinh, math.asinh, method="asinh", torch=lib("asinh"), jax=lib("numpy.arcsinh"),
       tinygrad=lib(".asinh"), ulps=LIBM, partial_ulps=3, fuzz=None),
    Op("acosh", 1, sympy.acosh, math.acosh, method="acosh", domain=_S.d_acosh, torch=lib("acosh"),
       jax=lib("numpy.arccosh"), tinygrad=lib(".acosh"), ulps=LIBM, partial_ulps=3, fuzz=None),
    Op("atanh", 1, sympy.atanh, math.atanh, method="atanh", domain=_S.d_unit("atanh", False), torch=lib("atanh"),
       jax=lib("numpy.arctanh"), tinygrad=lib(".atanh"), ulps=LIBM, partial_ulps=2, rebuilt=_R.atanh, fuzz=None),
    Op("reciprocal", 1, lambda x: 1 / x, lambda x: 1 / x, method="reciprocal", domain=_S.d_nonzero("reciprocal"),
       torch=lib("reciprocal"), jax=lib("numpy.reciprocal"), tinygrad=lib(".reciprocal"),
       partial_ulps=1.5, fuzz=None),
    Op("rsqrt", 1, lambda x: x ** sympy.Rational(-1, 2), lambda x: 1 / math.sqrt(x), method="rsqrt",
       domain=_S.d_rsqrt, torch=lib("rsqrt"), jax=lib("lax.rsqrt"), tinygrad=lib(".rsqrt"),
       ulps=1.5, partial_ulps=3, fuzz=None),
    Op("square", 1, lambda x: x**2, lambda x: x * x, method="square", torch=lib("square"), jax=lib("numpy.square"),
       tinygrad=lib(".square"), partial_ulps=0.5, fuzz=None),
    Op("sign", 1, sympy.sign, lambda x: float((x > 0) - (x < 0)), method="sign",
       kink=Kink(at_zero, (0.0,), ((0.0, 0.0),), "sign at 0 (a jump; sign' = 0 on both sides)"),
       torch=lib("sign"), jax=lib("numpy.sign"), tinygrad=lib(".sign"), ulps=0, fuzz=None),
    Op("deg2rad", 1, lambda x: x * sympy.pi / 180, math.radians, method="deg2rad", torch=lib("deg2rad"),
       # x times pi/180 rounded (0.08 ulp off in float64) and the product's rounding; the slope is the constant
       jax=lib("numpy.deg2rad"), tinygrad_lacks="tinygrad has no deg2rad", ulps=1, partial_ulps=0.5, fuzz=None),
    Op("rad2deg", 1, lambda x: x * 180 / sympy.pi, math.degrees, method="rad2deg", torch=lib("rad2deg"),
       jax=lib("numpy.rad2deg"), tinygrad_lacks="tinygrad has no rad2deg", ulps=1, partial_ulps=0.5, fuzz=None),
    Op("leaky_relu", 1, lambda x, negative_slope: sympy.Piecewise((x, x > 0), (negative_slope * x, True)),
       lambda x, negative_slope: x if x > 0 else negative_slope * x, method="leaky_relu",
       keywords=(Keyword("negative_slope", _NUM, Fraction(1, 100)),),
       kink=Kink(lambda a, negative_slope: at_zero(a), (0.01,), _UNIT,
                 "leaky_relu at 0 (the negative slope, torch's)",
                 interval_at=lambda a, negative_slope: ((float(min(negative_slope, 1)), float(max(negative_slope, 1))),)),
       torch=lib("nn.functional.leaky_relu", negative_slope="negative_slope"),
       jax=lib("nn.leaky_relu", negative_slope="negative_slope"),
       tinygrad=lib(".leaky_relu", neg_slope="negative_slope"), fuzz=None),
    Op("relu6", 1, lambda x: _S.hardtanh(x, 0, 6), lambda x: min(max(x, 0.0), 6.0), method="relu6",
       kink=Kink(_S.at_points(0, 6), (0.0,), _UNIT, "relu6 at 0 or 6 (derivative 0 there, torch's and JAX's)"),
       torch=lib("nn.functional.relu6"), jax=lib("nn.relu6"), tinygrad=lib(".relu6"), ulps=0, fuzz=None),
    Op("hardtanh", 1, _S.hardtanh, lambda x, min_val, max_val: min(max(x, min_val), max_val), method="hardtanh",
       domain=lambda a, v, min_val, max_val: _S.d_hardtanh(a, v, min_val, max_val),
       keywords=(Keyword("min_val", _NUM, Fraction(-1)), Keyword("max_val", _NUM, Fraction(1))),
       kink=Kink(lambda a, min_val, max_val: _S.k_bounds(a, lo=min_val, hi=max_val), (0.0,), _UNIT,
                 "hardtanh at min_val or max_val (derivative 0 there, torch's)"),
       torch=lib("nn.functional.hardtanh", **same("min_val", "max_val")), jax=_sp.jax_hardtanh,
       tinygrad=lib(".hardtanh", **same("min_val", "max_val")), ulps=0, fuzz=None),
    Op("hardsigmoid", 1, lambda x: _S.hardtanh(x / 6 + sympy.Rational(1, 2), 0, 1),
       lambda x: min(max(x / 6 + 0.5, 0.0), 1.0), method="hardsigmoid",
       kink=Kink(_S.at_points(-3, 3), (0.0,), ((0.0, 1 / 6),), "hardsigmoid at -3 or 3 (derivative 0 there, torch's)"),
       torch=lib("nn.functional.hardsigmoid"), jax=lib("nn.hard_sigmoid"), tinygrad=lib(".hardsigmoid"),
       ulps=1.5, partial_ulps=0.5, fuzz=None),
    Op("hardswish", 1, _S.hardswish, _S.f_hardswish, method="hardswish",
       kink=Kink(_S.at_points(-3, 3), (0.0,), ((-0.5, 1.5),), "hardswish at -3 or 3 (the outer piece's slope, torch's)",
                 interval_at=_S.k_hardswish_interval),
       torch=lib("nn.functional.hardswish"), jax=lib("nn.hard_swish"), tinygrad=lib(".hardswish"),
       ulps=2, partial_ulps=2, partial_abs=1, fuzz=None),  # x/3 + 1/2 cancels near x = -3/2: absolute
    Op("clamp", 1, _S.clamp, _S.f_clamp, method="clamp", domain=_S.d_clamp,
       keywords=(Keyword("min", _NUM, None), Keyword("max", _NUM, None)),
       kink=Kink(lambda a, min, max: _S.k_bounds(a, lo=min, hi=max), (1.0,), _UNIT,
                 "clamp at min or max (derivative 1 there, torch's)"),
       torch=_sp.torch_clamp, jax=lib("numpy.clip", min="min", max="max"),
       tinygrad=lib(".clamp", min_="min", max_="max"), ulps=0, fuzz=None),
    Op("softsign", 1, lambda x: x / (1 + sympy.Abs(x)), lambda x: x / (1 + abs(x)), method="softsign",
       kink=Kink(at_zero, (1.0,), ((1.0, 1.0),), "softsign at 0 (once differentiable, not twice)"),
       torch=lib("nn.functional.softsign"), jax=lib("nn.soft_sign"), tinygrad=lib(".softsign"),
       # torch's and JAX's autograd form the slope as 1/(1 + |x|) - |x|/(1 + |x|)**2: terms below 1, each to
       # about an ulp, which cancel for large |x| (the slope is 1/(1 + |x|)**2): absolute
       ulps=1, partial_ulps=2, partial_abs=2, fuzz=None),
    Op("tanhshrink", 1, TanhShrink, _S.f_tanhshrink, method="tanhshrink", torch=lib("nn.functional.tanhshrink"),
       # x - tanh(x) away from 0: tanh's error and the difference; the slope tanh(x)**2. torch's autograd forms
       # it as 1 - (1 - t*t), tanh's rebuilt slope subtracted from 1: tanh's allowance, and one more eps
       jax=_sp.jax_tanhshrink, tinygrad_lacks="tinygrad has no tanhshrink", ulps=LIBM + 1, partial_ulps=2 * LIBM + 1,
       rebuilt=_R.tanhshrink, fuzz=None),
    Op("hardshrink", 1, _S.hardshrink, _S.f_hardshrink, method="hardshrink",
       keywords=(Keyword("lambd", _NUM, Fraction(1, 2)),),
       kink=Kink(_S.k_shrink, (0.0,), _UNIT, "hardshrink at -lambd or lambd (a jump; derivative 0 there, torch's)"),
       torch=lib("nn.functional.hardshrink", lambd="lambd"), jax=_sp.jax_hardshrink,
       tinygrad_lacks="tinygrad has no hardshrink", ulps=0, fuzz=None),
    Op("softshrink", 1, _S.softshrink, _S.f_softshrink, method="softshrink", domain=_S.d_softshrink,
       keywords=(Keyword("lambd", _NUM, Fraction(1, 2)),),
       kink=Kink(_S.k_shrink, (0.0,), _UNIT, "softshrink at -lambd or lambd (derivative 0 there, torch's)"),
       torch=lib("nn.functional.softshrink", lambd="lambd"), jax=_sp.jax_softshrink,
       tinygrad_lacks="tinygrad has no softshrink", fuzz=None),
    # torch's threshold has no defaults; gradspec's, 0 and 0, make it relu
    Op("threshold", 1, _S.threshold, _S.f_threshold, method="threshold",
       keywords=(Keyword("threshold", _NUM, Fraction(0)), Keyword("value", _NUM, Fraction(0))),
       kink=Kink(_S.k_threshold, (0.0,), _UNIT, "threshold at x = threshold (derivative 0 there, torch's; a jump "
                 "unless value = threshold)"),
       torch=lib("nn.functional.threshold", **same("threshold", "value")), jax=_sp.jax_threshold,
       tinygrad_lacks="tinygrad has no threshold", ulps=0, fuzz=None),
    Op("prelu", 2, _S.prelu, _S.f_prelu, method="prelu",
       kink=Kink(at_zero, (0.25, 0.0), (_UNIT[0], (0.0, 0.0)), "prelu at x = 0 (d/dx = w there, torch's; d/dw = x = 0)",
                 interval_at=_S.k_prelu_interval),
       # w*x: one rounding; the partials 1 or w and 0 or x are exact
       torch=_sp.torch_prelu, jax=_sp.jax_prelu, tinygrad_lacks="tinygrad has no prelu", ulps=0.5, fuzz=None),
    Op("maximum", 2, _S.maximum, max, method="maximum",
       kink=Kink(_S.k_tie, (0.5, 0.5), (_UNIT[0], _UNIT[0]), "maximum at a tie (1/2 each, torch's and JAX's)"),
       torch=lib("maximum"), jax=lib("numpy.maximum"), tinygrad=swapped(".maximum"), ulps=0, fuzz=None),
    Op("minimum", 2, _S.minimum, min, method="minimum",
       kink=Kink(_S.k_tie, (0.5, 0.5), (_UNIT[0], _UNIT[0]), "minimum at a tie (1/2 each, torch's and JAX's)"),
       torch=lib("minimum"), jax=lib("numpy.minimum"), tinygrad=swapped(".minimum"), ulps=0, fuzz=None),
    Op("atan2", 2, sympy.atan2, math.atan2, method="atan2", domain=_S.d_atan2, torch=lib("atan2"),
       jax=lib("numpy.arctan2"), tinygrad_lacks="tinygrad has no atan2", ulps=LIBM, partial_ulps=3, fuzz=None),
    Op("logaddexp", 2, lambda a, b: sympy.log(sympy.exp(a) + sympy.exp(b)), _S.f_logaddexp, method="logaddexp",
       # the partials are sigmoid(a - b): a - b's own rounding, times |a - b|, adds ulps far from a tie
       torch=lib("logaddexp"), jax=lib("numpy.logaddexp"), tinygrad=swapped(".logaddexp"),
       ulps=LIBM, partial_ulps=2 * LIBM + 1, rebuilt=_R.second_from, fuzz=None),
    Op("xlogy", 2, _S.xlogy, _S.f_xlogy, method="xlogy", domain=_S.d_xlogy, torch=lib("xlogy"),
       jax=_sp.jax_special("xlogy"), tinygrad_lacks="tinygrad has no xlogy", ulps=LIBM, partial_ulps=1, fuzz=None),
    Op("hypot", 2, lambda a, b: sympy.sqrt(a**2 + b**2), math.hypot, method="hypot", domain=_S.d_hypot,
       # the partials a/h and b/h divide by the rounded output
       torch=lib("hypot"), jax=lib("numpy.hypot"), tinygrad_lacks="tinygrad has no hypot", ulps=LIBM,
       partial_ulps=LIBM + 1, rebuilt=_R.hypot, fuzz=None),
    Op("logaddexp2", 2, _S.logaddexp2, _S.f_logaddexp2, method="logaddexp2",
       # as logaddexp's, in base 2: the partials are sigmoid((a - b)*log(2))
       torch=lib("logaddexp2"), jax=lib("numpy.logaddexp2"), tinygrad_lacks="tinygrad has no logaddexp2",
       ulps=LIBM, partial_ulps=2 * LIBM + 1, rebuilt=_R.logaddexp2, fuzz=None),
    Op("xlog1py", 2, _S.xlog1py, _S.f_xlog1py, method="xlog1py", domain=_S.d_xlog1py, torch=lib("special.xlog1py"),
       # the partials: log1p(y), a library function, and x/(1 + y)
       jax=_sp.jax_special("xlog1py"), tinygrad_lacks="tinygrad has no xlog1py", ulps=LIBM, partial_ulps=LIBM,
       fuzz=None),
    Op("where", 4, _S.where, _S.f_where, method="where",
       keywords=(Keyword("cmp", "str", ">", choices=tuple(_S.COMPARE), internal=True),),
       kink=Kink(lambda a, cmp: _S.k_tie(a), (0.0, 0.0, 1.0, 0.0), ((0.0, 0.0), (0.0, 0.0), _UNIT[0], _UNIT[0]),
                 "where at a comparison's tie (its operands equal)"),
       torch=_sp.torch_where, jax=_sp.jax_where, tinygrad=_sp.tinygrad_where, value_call=_sp.value_where, ulps=0, fuzz=None),
)
