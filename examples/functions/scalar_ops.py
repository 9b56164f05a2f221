"""Scalar functions over Values (gradspec's built-in Value, or any micrograd-style class)."""

from __future__ import annotations

from typing import Any


def smooth_abs(x: Any, y: Any) -> Any:
    """sqrt(x*x + y*y + 1), built from the Value's own ops."""
    return (x * x + y * y + 1) ** 0.5


class _Leaky:
    """A hand-written op on Values with a planted bug: its local derivative ignores the upstream gradient."""

    def __init__(self, value_class: type) -> None:
        self.cls = value_class

    def __call__(self, x: Any, y: Any) -> Any:
        inner = x * x + y * y + 1
        out = self.cls(inner.data ** 0.5, (inner,), "sqrt")

        def _backward() -> None:
            inner.grad += 0.5 / out.data  # the planted bug: should be 0.5 / out.data * out.grad

        out._backward = _backward
        return out


def smooth_abs_ignores_upstream(x: Any, y: Any) -> Any:
    return _Leaky(type(x))(x, y)
