"""What a wrong tensor looks like: a guess at the pattern of an engine's error, element by element.

Each rule compares the engine's array with a transform of the exact one, within the element-wise
bound: a flipped sign, one constant scale, a transpose of the last two axes, all zeros, or, for an
input that an op broadcast, one slice (or the mean) of the per-copy gradients instead of their sum.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

__all__ = ["guess", "unsummed_shape"]


def _close(engine: Any, candidate: Any, bound: Any) -> bool:
    return bool(candidate.shape == engine.shape and np.all(np.abs(engine - candidate) <= bound))


def guess(engine: Any, exact: Any, bound: Any, copies: Sequence[tuple[tuple[int, ...], Any]] = (),
          output: Any = None) -> str:
    """A short description of how ``engine`` relates to ``exact`` (float arrays), or "". ``output`` is
    the op's exact output when it has the gradient's shape (one op checked alone)."""
    if not np.all(np.isfinite(engine)) or exact.size == 0:
        return ""
    with np.errstate(over="ignore", invalid="ignore"):  # near the top of the float range, a product overflows
        return _guess(engine, exact, bound, copies, output)


def _guess(engine: Any, exact: Any, bound: Any, copies: Sequence[tuple[tuple[int, ...], Any]], output: Any) -> str:
    # A pattern must explain the elements well beyond rounding, so bound generously but not loosely.
    loose = bound + 1e-9 * np.maximum(np.abs(exact), np.abs(engine))
    if np.any(exact != 0) and _close(engine, -exact, loose):
        return "sign flipped: engine = -exact"
    if np.any(exact != 0) and not np.any(engine):
        return "all zeros where the exact gradient is not"
    if exact.ndim >= 2 and exact.shape[-1] == exact.shape[-2] and _close(engine, np.swapaxes(exact, -1, -2), loose) \
            and not _close(engine, exact, loose):
        return "transposed: engine = exact with its last two axes swapped"
    for _shape, per_copy in copies:
        found = _one_slice(engine, per_copy, exact.shape, loose)
        if found:
            return found
    # a lane of one element is always a multiple of the output: it says nothing
    if output is not None and output.shape == exact.shape and exact.ndim >= 1 and exact.shape[-1] > 1 \
            and _along_output(engine, exact, output, loose):
        return ("a term along the output is missing: in every lane of the last axis, engine - exact is a "
                "multiple of the op's output (a dropped normaliser or variance term)")
    # one nonzero number is always some multiple of another: a scale explains something only across several
    scale = _scale(engine, exact) if np.count_nonzero(exact) > 1 else None
    if scale is not None and abs(scale - 1) > 1e-6 and _close(engine, scale * exact, loose + 1e-6 * np.abs(exact)):
        return f"scaled by a constant: engine = {_fraction(scale)} * exact"
    return ""


def _along_output(engine: Any, exact: Any, output: Any, bound: Any) -> bool:
    diff = (engine - exact).reshape(-1, exact.shape[-1])
    y = output.reshape(diff.shape)
    norms = np.sum(y * y, axis=1, keepdims=True)
    c = np.where(norms > 0, np.sum(diff * y, axis=1, keepdims=True) / np.where(norms > 0, norms, 1), 0.0)
    return bool(np.any(np.abs(diff) > bound.reshape(diff.shape)) and np.all(np.abs(diff - c * y) <= bound.reshape(diff.shape)))


def _scale(engine: Any, exact: Any) -> float | None:
    norm = float(np.sum(exact * exact))
    return None if norm == 0 else float(np.sum(engine * exact)) / norm


def _fraction(k: float) -> str:
    for n in range(2, 65):
        if abs(k * n - 1) < 1e-9:
            return f"1/{n}"
        if abs(k - n) < 1e-9:
            return str(n)
    return f"{k:.6g}"


def _broadcast_axes(source: tuple[int, ...], target: tuple[int, ...]) -> list[int]:
    """The axes of ``target`` along which ``source`` was repeated."""
    pad = len(target) - len(source)
    return [k for k in range(len(target)) if k < pad or (source[k - pad] == 1 and target[k] != 1)]


def _one_slice(engine: Any, per_copy: Any, shape: tuple[int, ...], bound: Any) -> str:
    axes = _broadcast_axes(shape, per_copy.shape)
    for axis in axes:
        others = tuple(a for a in axes if a != axis)
        reduced = per_copy.sum(axis=others, keepdims=True) if others else per_copy
        for j in range(per_copy.shape[axis]):
            candidate = np.take(reduced, [j], axis=axis).reshape(shape)
            if _close(engine, candidate, bound):
                return (f"an axis left unsummed after broadcasting: the gradient is only slice {j} of broadcast "
                        f"axis {axis - per_copy.ndim} (size {per_copy.shape[axis]}), not the sum over it")
        mean = reduced.mean(axis=axis).reshape(shape)
        if per_copy.shape[axis] > 1 and _close(engine, mean, bound):
            return f"broadcast axis {axis - per_copy.ndim} averaged instead of summed (size {per_copy.shape[axis]})"
    return ""


def unsummed_shape(engine_shape: tuple[int, ...], shape: tuple[int, ...]) -> str:
    """The message for an engine gradient whose shape is the broadcast shape, not the input's."""
    return (f"an axis left unsummed after broadcasting: the gradient has shape {list(engine_shape)}, "
            f"the input has shape {list(shape)}")
