"""gradspec.nn: a small MLP built only from engine ops."""

from __future__ import annotations

import math
import random

import pytest

from gradspec.engine import Value
from gradspec.nn import MLP, Layer, Module, Neuron


def test_neuron_shape_and_forward() -> None:
    n = Neuron(3, rng=random.Random(0))
    assert len(n.w) == 3
    assert len(n.parameters()) == 4
    assert n.parameters()[-1] is n.b
    assert n.b.data == 0.0
    assert all(-1.0 <= w.data <= 1.0 for w in n.w)
    x = [1.0, -2.0, 0.5]
    pre = sum(w.data * xi for w, xi in zip(n.w, x, strict=True)) + n.b.data
    assert n(x).data == pytest.approx(max(0.0, pre), rel=1e-15)
    assert repr(n) == "reluNeuron(3)"


def test_linear_and_tanh_neurons() -> None:
    lin = Neuron(2, activation=None, rng=random.Random(1))
    x = [0.25, -4.0]
    pre = sum(w.data * xi for w, xi in zip(lin.w, x, strict=True))
    assert lin(x).data == pytest.approx(pre, rel=1e-15)
    assert repr(lin) == "linearNeuron(2)"
    th = Neuron(2, activation="tanh", rng=random.Random(1))
    assert th(x).data == pytest.approx(math.tanh(pre), rel=1e-15)


def test_neuron_rejects_wrong_input_length() -> None:
    with pytest.raises(ValueError):
        Neuron(3, rng=random.Random(0))([1.0, 2.0])


def test_layer_shapes() -> None:
    layer = Layer(3, 4, rng=random.Random(0))
    assert len(layer.neurons) == 4
    assert len(layer.parameters()) == 4 * (3 + 1)
    out = layer([1.0, 2.0, 3.0])
    assert isinstance(out, list) and len(out) == 4
    single = Layer(3, 1, rng=random.Random(0))([1.0, 2.0, 3.0])
    assert isinstance(single, Value)


def test_mlp_shapes_and_parameter_count() -> None:
    model = MLP(3, [4, 4, 1], rng=random.Random(0))
    assert [len(layer.neurons) for layer in model.layers] == [4, 4, 1]
    assert [len(layer.neurons[0].w) for layer in model.layers] == [3, 4, 4]
    assert len(model.parameters()) == (3 * 4 + 4) + (4 * 4 + 4) + (4 * 1 + 1) == 41
    assert len({id(p) for p in model.parameters()}) == 41
    assert isinstance(model([1.0, 2.0, 3.0]), Value)
    wide = MLP(2, [5, 3], rng=random.Random(0))
    out = wide([1.0, -1.0])
    assert isinstance(out, list) and len(out) == 3
    assert len(MLP(2, [4, 1], rng=random.Random(0)).parameters()) == 17


def test_hidden_layers_use_activation_last_is_linear() -> None:
    model = MLP(2, [3, 3, 2], rng=random.Random(0))
    assert [n.activation for n in model.layers[0].neurons] == ["relu"] * 3
    assert [n.activation for n in model.layers[1].neurons] == ["relu"] * 3
    assert [n.activation for n in model.layers[2].neurons] == [None, None]
    th = MLP(2, [3, 1], activation="tanh", rng=random.Random(0))
    assert th.layers[0].neurons[0].activation == "tanh"
    assert repr(th) == "MLP of [Layer of [tanhNeuron(2), tanhNeuron(2), tanhNeuron(2)], Layer of [linearNeuron(3)]]"


def test_deterministic_with_rng() -> None:
    a = MLP(2, [4, 1], rng=random.Random(123))
    b = MLP(2, [4, 1], rng=random.Random(123))
    c = MLP(2, [4, 1], rng=random.Random(124))
    assert [p.data for p in a.parameters()] == [p.data for p in b.parameters()]
    assert [p.data for p in a.parameters()] != [p.data for p in c.parameters()]
    assert a([0.3, -0.7]).data == b([0.3, -0.7]).data


def test_deterministic_under_random_seed() -> None:
    # The classic recipe: seeding the global generator makes the network reproducible.
    random.seed(42)
    a = [p.data for p in MLP(2, [4, 1]).parameters()]
    random.seed(42)
    b = [p.data for p in MLP(2, [4, 1]).parameters()]
    assert a == b


def test_zero_grad() -> None:
    model = MLP(2, [3, 1], rng=random.Random(5))
    out = model([1.0, 2.0])
    out.backward()
    assert any(p.grad != 0.0 for p in model.parameters())
    model.zero_grad()
    assert all(p.grad == 0.0 for p in model.parameters())
    assert Module().parameters() == []


def test_gradients_match_central_difference() -> None:
    model = MLP(2, [3, 1], activation="tanh", rng=random.Random(7))
    x = [0.4, -1.1]

    def loss() -> Value:
        return (model(x) - 0.5) ** 2

    model.zero_grad()
    loss().backward()
    for p in model.parameters():
        saved, h = p.data, 1e-6
        p.data = saved + h
        up = loss().data
        p.data = saved - h
        down = loss().data
        p.data = saved
        assert p.grad == pytest.approx((up - down) / (2 * h), rel=1e-5, abs=1e-9)


XS = [0.0, 0.5, 1.0, 1.5, 2.0]
YS = [x * x for x in XS]


def _train(model: MLP, steps: int = 200, lr: float = 0.01) -> list[float]:
    losses = []
    for _ in range(steps):
        loss = sum(((model([x]) - y) ** 2 for x, y in zip(XS, YS, strict=True)), start=0.0)
        model.zero_grad()
        loss.backward()
        for p in model.parameters():
            p.data -= lr * p.grad
        losses.append(loss.data)
    return losses


def test_learns_x_squared() -> None:
    random.seed(42)
    model = MLP(1, [8, 1], rng=random.Random(42))
    losses = _train(model)
    assert losses[0] > 1.0
    assert losses[-1] < 0.1 * losses[0]
    assert all(math.isfinite(v) for v in losses)


class Scalar:
    """A minimal, independent micrograd-style Value class (not a subclass of gradspec's)."""

    def __init__(self, data: float, parents: tuple = (), backward=None) -> None:
        self.data = float(data)
        self.grad = 0.0
        self._parents = parents
        self._backward = backward or (lambda: None)

    @staticmethod
    def lift(x) -> Scalar:
        return x if isinstance(x, Scalar) else Scalar(x)

    def __add__(self, other) -> Scalar:
        other = Scalar.lift(other)
        out = Scalar(self.data + other.data, (self, other))

        def bw() -> None:
            self.grad += out.grad
            other.grad += out.grad

        out._backward = bw
        return out

    __radd__ = __add__

    def __mul__(self, other) -> Scalar:
        other = Scalar.lift(other)
        out = Scalar(self.data * other.data, (self, other))

        def bw() -> None:
            self.grad += other.data * out.grad
            other.grad += self.data * out.grad

        out._backward = bw
        return out

    __rmul__ = __mul__

    def __neg__(self) -> Scalar:
        return self * -1

    def __sub__(self, other) -> Scalar:
        return self + (-Scalar.lift(other))

    def __pow__(self, n: float) -> Scalar:
        out = Scalar(self.data**n, (self,))

        def bw() -> None:
            self.grad += n * self.data ** (n - 1) * out.grad

        out._backward = bw
        return out

    def relu(self) -> Scalar:
        out = Scalar(self.data if self.data > 0 else 0.0, (self,))

        def bw() -> None:
            self.grad += (1.0 if self.data > 0 else 0.0) * out.grad

        out._backward = bw
        return out

    def backward(self) -> None:
        order, seen = [], set()

        def visit(v: Scalar) -> None:
            if id(v) not in seen:
                seen.add(id(v))
                for p in v._parents:
                    visit(p)
                order.append(v)

        visit(self)
        self.grad = 1.0
        for v in reversed(order):
            v._backward()


def test_works_with_another_value_class() -> None:
    ours = MLP(1, [8, 1], rng=random.Random(42))
    theirs = MLP(1, [8, 1], value=Scalar, rng=random.Random(42))
    assert all(isinstance(p, Scalar) for p in theirs.parameters())
    assert [p.data for p in ours.parameters()] == [p.data for p in theirs.parameters()]
    out = theirs([1.5])
    assert isinstance(out, Scalar)
    assert out.data == pytest.approx(ours([1.5]).data, rel=1e-15)
    lo, lt = _train(ours, steps=20), _train(theirs, steps=20)
    assert lt == pytest.approx(lo, rel=1e-12)
    assert lt[-1] < lt[0]
    for p, q in zip(ours.parameters(), theirs.parameters(), strict=True):
        assert q.data == pytest.approx(p.data, rel=1e-12, abs=1e-15)
