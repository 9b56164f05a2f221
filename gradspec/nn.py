"""A small multilayer perceptron built only from engine ops.

The classes take the Value class to build with (gradspec's own by default), so the same network runs
on any micrograd-style engine, and a ``random.Random`` for reproducible weights.

>>> import random
>>> model = MLP(2, [4, 1], rng=random.Random(0))
>>> out = model([1.0, -2.0])
>>> len(model.parameters())
17
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import Any

from gradspec.engine import Value

__all__ = ["MLP", "Layer", "Module", "Neuron"]


class Module:
    """Something with parameters whose gradients can be reset."""

    def parameters(self) -> list[Any]:
        return []

    def zero_grad(self) -> None:
        for p in self.parameters():
            p.grad = 0.0


class Neuron(Module):
    """``act(w . x + b)``; ``activation`` is a Value method name (``"relu"``, ``"tanh"``) or None."""

    def __init__(
        self,
        nin: int,
        activation: str | None = "relu",
        *,
        value: type = Value,
        rng: random.Random | None = None,
    ) -> None:
        uniform = (rng or random).uniform  # the module's by default, so random.seed() repeats weights
        self.w = [value(uniform(-1.0, 1.0)) for _ in range(nin)]
        self.b = value(0.0)
        self.activation = activation

    def __call__(self, x: Sequence[Any]) -> Any:
        act = self.b
        for wi, xi in zip(self.w, x, strict=True):
            act = act + wi * xi
        return getattr(act, self.activation)() if self.activation else act

    def parameters(self) -> list[Any]:
        return [*self.w, self.b]

    def __repr__(self) -> str:
        return f"{self.activation or 'linear'}Neuron({len(self.w)})"


class Layer(Module):
    def __init__(self, nin: int, nout: int, **kwargs: Any) -> None:
        self.neurons = [Neuron(nin, **kwargs) for _ in range(nout)]

    def __call__(self, x: Sequence[Any]) -> Any:
        out = [n(x) for n in self.neurons]
        return out[0] if len(out) == 1 else out

    def parameters(self) -> list[Any]:
        return [p for n in self.neurons for p in n.parameters()]

    def __repr__(self) -> str:
        return f"Layer of [{', '.join(map(repr, self.neurons))}]"


class MLP(Module):
    """``MLP(nin, nouts)``: hidden layers use ``activation``, the last layer is linear."""

    def __init__(
        self,
        nin: int,
        nouts: Sequence[int],
        *,
        activation: str = "relu",
        value: type = Value,
        rng: random.Random | None = None,
    ) -> None:
        sizes = [nin, *nouts]
        self.layers = [
            Layer(sizes[i], sizes[i + 1], activation=activation if i < len(nouts) - 1 else None, value=value, rng=rng)
            for i in range(len(nouts))
        ]

    def __call__(self, x: Sequence[Any]) -> Any:
        out: Any = x
        for layer in self.layers:
            out = layer(out if isinstance(out, list) else [out])
        return out

    def parameters(self) -> list[Any]:
        return [p for layer in self.layers for p in layer.parameters()]

    def __repr__(self) -> str:
        return f"MLP of [{', '.join(map(repr, self.layers))}]"
