"""The precision verdict: how a quantity's error is judged against its two rounding bounds.

Every compared quantity carries two absolute bounds (:mod:`gradspec.reference.rounding` for scalar
graphs, the tape of :mod:`gradspec.reference.tensor` and the jets of :mod:`gradspec.reference.modes`):

- the *precision bound*: how far rounding in the engine's dtype can move the quantity when every
  input, every op's result and every local partial is off by its own few ulps (relative errors,
  propagated to first order through the quantity's sensitivities), plus how far the exact value is
  from the nearest number of the dtype (a value below the smallest normal number may come back 0);
- the *rebuilt allowance*: what a local partial recomputed from the op's rounded output (tanh' as
  ``1 - t*t``, sigmoid' as ``s*(1 - s)``) may lose on top of that, an absolute error of a few eps
  times the adjoint, which can be far larger than a small derivative (sigmoid'(40) = 4.2e-18).

Within the first: ``pass``. Beyond it, within both: ``imprecise``, printed with the digits kept.
Beyond both: ``fail``. ``docs/verdicts.md`` derives the bounds.
"""

from __future__ import annotations

import math
from typing import Any

from gradspec.reference.rounding import smallest_normal
from gradspec.results import Verdict

__all__ = ["CONDITIONED", "REBUILT", "digits", "precision_note", "representation", "split", "verdict_of"]


def representation(exact: Any, eps: float) -> Any:
    """How far the exact value (float or array) can be from what the engine's dtype holds: half an ulp
    of a normal number, all of a number below the smallest normal one (rounded to a subnormal, or
    flushed to 0: 1.8e-67 is 0 in float32). Never more than the value itself."""
    if isinstance(exact, float | int):  # a scalar check: no NumPy (a first-order scalar run never imports it)
        magnitude = abs(float(exact))
        if not math.isfinite(magnitude):
            return 0.0
        return magnitude if magnitude < smallest_normal(eps) else magnitude * eps / 2
    import numpy as np

    magnitude = np.abs(np.asarray(exact, dtype=float))
    out = magnitude * eps / 2
    small = magnitude < smallest_normal(eps)  # NaN compares False
    if small.any():
        out = np.where(small, magnitude, out)
    finite = np.isfinite(out)
    if not finite.all():
        out = np.where(finite, out, 0.0)
    return float(out) if np.ndim(out) == 0 else out


def split(err: Any, bound: Any, rebuilt: Any) -> tuple[Any, Any]:
    """Per element: (beyond both bounds: fails, beyond the precision bound alone: imprecise)."""
    import numpy as np  # array quantities only

    with np.errstate(invalid="ignore"):
        fails = err > bound + rebuilt
        imprecise = (err > bound) & ~fails
    return fails, imprecise


def digits(engine: float, exact: float, eps: float) -> str:
    """The significant decimal digits the engine kept of the exact value: "3 of 16 digits"."""
    total = round(-math.log10(eps / 2))
    if exact == 0 or not math.isfinite(exact) or not math.isfinite(engine):
        return f"0 of {total} digits"
    rel = abs(engine - exact) / abs(exact)
    kept = total if rel == 0 else max(0, min(total, math.floor(-math.log10(rel))))
    return f"{kept} of {total} digits"


REBUILT = "precision bound {bound:.2g}; within what a formula rebuilt from a rounded intermediate loses"
CONDITIONED = "conditioning bound {bound:.2g}; within what the reference's own spelling loses"


def precision_note(engine: float, exact: float, eps: float, bound: float, why: str = REBUILT) -> str:
    """Why a quantity is imprecise: "engine 0, exact 4.25e-18: 0 of 16 digits (precision bound 1.9e-33;
    ...)"; ``why`` names the two bounds (:data:`REBUILT`, or :data:`CONDITIONED` for a function judged by
    its conditioning)."""
    return f"engine {engine:.3g}, exact {exact:.3g}: {digits(engine, exact, eps)} ({why.format(bound=bound)})"


def verdict_of(fails: bool, imprecise: bool) -> Verdict:
    return Verdict.FAIL if fails else Verdict.IMPRECISE if imprecise else Verdict.PASS
