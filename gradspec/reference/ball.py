"""The exact reference of a tensor graph one tensor op at a time, in ball arithmetic (python-flint's ``arb``).

The scalar tape of :mod:`gradspec.reference.tensor` lowers every tensor op to scalar nodes and evaluates
each in mpmath; a 256x256 matmul is 33 million nodes. Here each op of the graph is one node of an array
tape: a matmul or a convolution is one ``arb_mat`` product, an element-wise op one C-level call per
element. Every number is a rigorous midpoint-radius ball at ``PREC`` bits, so the reference certifies
itself: :attr:`BallExact.radius` is the largest radius of any value or gradient element relative to
its magnitude. The array tape and its sums and products are in :mod:`gradspec.reference.ball_ops`, the
element-wise kernels in :mod:`gradspec.reference.ball_scalar`, the tensor ops in
:mod:`gradspec.reference.kernels`.

The lowering (:mod:`gradspec.ops.lowering`) stays the definition of every op: each kernel here computes
the same function, and the composite ops (softmax, layer norm, ...) are written as the lowering writes
them, in the same scalar ops and the same pairwise sums. The rounding bound of the tape is computed
beside the values with NumPy, per op: the same formulas, summed over an op's scalar nodes (exactly for
sums, matrix products up to 2 million terms and element-wise ops of one argument; for a larger product,
the partial sums of each pairwise tree are bounded by the depth-weighted sum of the terms' magnitudes;
for a partial of two moving arguments, by the sum of its second partials' magnitudes; never below the
tape's figure, which a test checks on every kernel).

Inputs that are decimals also travel as integers over their common denominator, so that a matrix
product with an input is a product of integer matrices (many times faster than one of 128-bit balls).

A graph this module cannot take as a whole raises :class:`Unsupported` (an op without a kernel, an
element on a kink or within a ball of a domain's edge), and the caller runs the scalar tape instead.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from fractions import Fraction
from functools import cached_property
from typing import Any

import numpy as np
from flint import ctx

from gradspec.graph.tensor import TensorGraph
from gradspec.ops.table import OPS
from gradspec.reference import ball_ops
from gradspec.reference.ball_ops import Unsupported
from gradspec.reference.ball_scalar import REBUILT, SCALAR, elementwise
from gradspec.reference.kernels import TENSOR

__all__ = ["PREC", "BallExact", "Unsupported", "ball_tensor", "supported"]

PREC = 128  # bits: every input and constant is a ball of relative radius about 2**-128 (3e-39)
_SAFETY = 2  # as the scalar tape's: the allowance is twice the running bound


def supported(graph: TensorGraph, rebuilt: bool = False) -> bool:
    """Does every op of ``graph`` have a kernel here? ``rebuilt``: on a tape that keeps what a partial
    rebuilt from a rounded output loses (:data:`REBUILT`)."""
    return all(s.op is None or s.op in SCALAR or s.op in TENSOR or (rebuilt and s.op in REBUILT) for s in graph.steps)


@dataclass(frozen=True)
class Grad:
    """One exact vector-Jacobian product (the scalar tape's :class:`~gradspec.reference.tensor.Grad`)."""

    exact: dict[str, Any]
    rounding: dict[str, Any]
    copies: dict[str, list[tuple[tuple[int, ...], Any]]]
    floats: dict[str, Any]
    rebuilt: dict[str, Any] = field(default_factory=dict)  # what partials rebuilt from rounded outputs add (eps)
    radius: dict[str, Any] = field(default_factory=dict)  # name -> float array: each exact element's radius


@dataclass(frozen=True, eq=False)
class BallExact:
    """The exact value of a tensor graph at one point (balls), and reverse sweeps from any cotangent."""

    graph: TensorGraph
    tape: ball_ops.Tape
    output: ball_ops.Arr
    leaves: dict[str, ball_ops.Arr]
    value: Any  # object array of arb
    value_rounding: Any  # float array: the forward allowance in units of eps
    arrays: list[ball_ops.Arr]
    kinks: tuple[str, ...] = ()
    value_lost: Any = 0.0  # none here: no op of a supported graph forms its value by cancelling terms
    grads: dict[tuple[Any, ...], Grad] = field(default_factory=dict, repr=False)
    radii: list[float] = field(default_factory=list, repr=False)
    # A graph with an op whose partial engines rebuild from its rounded output (tanh): this tape leaves
    # what that loses out of its bound, ``wide`` counts it; the difference is the rebuilt allowance.
    wide: BallExact | None = field(default=None, repr=False)

    @cached_property
    def value_floats(self) -> Any:
        return _read_only(ball_ops.floats(self.value))

    @cached_property
    def value_radius(self) -> Any:
        """Each exact element's radius (absolute): what no comparison may claim to know better."""
        return _read_only(ball_ops.radii(self.value))

    @property
    def radius(self) -> float:
        """The largest radius of any value or gradient computed so far, relative to the element's magnitude
        (absolute where the element is zero): how far from exact this reference can be."""
        return max(self.radii, default=0.0)

    def values_of(self, step: int) -> Any:
        """The exact values of one step (an object array of arb balls)."""
        return self.arrays[step].value

    def vjp(self, cotangent: Any, override: Mapping[tuple[int, int], Any] | None = None) -> Grad:
        assert override is None, "kinks run on the scalar tape"
        arr = np.asarray(cotangent)
        # Float cotangents are exact binary fractions: their bytes identify them; Fractions are their own key.
        key = (arr.shape, arr.tobytes()) if arr.dtype.kind == "f" else (arr.shape, *arr.flat)
        found = self.grads.get(key)
        if found is not None:
            return found
        with ctx.workprec(PREC):
            seed = ball_ops.to_balls(arr)
            adj, err, copies = self.tape.sweep(self.output.node, seed)
            exact: dict[str, Any] = {}
            rounding: dict[str, Any] = {}
            for name, leaf in self.leaves.items():
                assert leaf.node is not None
                got = adj.get(leaf.node)
                # an object array even for a 0-d leaf (NumPy arithmetic returns the lone ball itself)
                exact[name] = ball_ops.objects(got) if got is not None else ball_ops.zeros(leaf.value.shape)
                rounding[name] = err.get(leaf.node, np.zeros(leaf.value.shape)) * _SAFETY
            shown = {name: [(shape, ball_ops.floats(g)) for shape, g in copies.get(leaf.node, [])]
                     for name, leaf in self.leaves.items() if leaf.node in copies}
            floats = {n: ball_ops.floats(a) for n, a in exact.items()}
            radius = {n: ball_ops.radii(a) for n, a in exact.items()}
            self.radii.extend(ball_ops.relative_radius(radius[n], floats[n]) for n in exact)
        if self.wide is None:
            rebuilt = {n: np.zeros(np.shape(a)) for n, a in exact.items()}
        else:  # the wider bound counts every source the narrower does, each with a coefficient as large
            wide = self.wide.vjp(cotangent).rounding
            rebuilt = {n: np.maximum(np.asarray(wide[n], dtype=float) - rounding[n], 0.0) for n in exact}
        grad = Grad(exact, rounding, shown, floats, rebuilt, radius)
        if len(self.grads) >= 64:  # one-hot Jacobian rows of a large output would otherwise pile up
            self.grads.clear()
        self.grads[key] = grad
        return grad

    def subgradient_range(self, cotangent: Any) -> None:
        return None  # a graph with kinks runs on the scalar tape


PROGRESS_FROM = 1_000_000  # elements over all steps: a reference this large shows its progress on a terminal


@contextmanager
def _progress(graph: TensorGraph) -> Iterator[Callable[[int], object] | None]:
    """A progress bar over the graph's steps on standard error, for a large graph on a terminal."""
    work = sum(math.prod(s.shape) for s in graph.steps)
    if work < PROGRESS_FROM or not sys.stderr.isatty():
        yield None
        return
    from rich.console import Console
    from rich.progress import Progress

    with Progress(console=Console(stderr=True), transient=True) as bar:
        task = bar.add_task(f"exact reference of {graph.program.source}", total=len(graph.steps))
        yield lambda i: bar.update(task, completed=i)


def ball_tensor(graph: TensorGraph, point: Mapping[str, Any],
                progress: Callable[[int], object] | None = None, rebuilt: bool | None = None) -> BallExact:
    """The exact value of ``graph`` at ``point`` (input -> array of Fractions); raises :class:`Unsupported`
    where the scalar tape must run instead. ``progress`` hears each step's index as it starts (by default
    a progress bar, for a large graph on a terminal); ``rebuilt``: see :class:`ball_ops.Tape`."""
    if not supported(graph, rebuilt is not None):
        raise Unsupported("an op without a ball kernel")
    if progress is None:
        with _progress(graph) as shown:
            if shown is not None:
                return ball_tensor(graph, point, shown, rebuilt)
    with ctx.workprec(PREC), np.errstate(over="ignore"):  # a bound beyond the float range is refused below
        tape = ball_ops.Tape(rebuilt)
        arrays: list[ball_ops.Arr] = []
        leaves: dict[str, ball_ops.Arr] = {}
        for i, step in enumerate(graph.steps):
            if progress is not None:
                progress(i)
            if step.name is not None:
                values = np.asarray(point[step.name], dtype=object).reshape(step.shape)
                arr = ball_ops.constant(values)
                if step.name not in graph.data:
                    arr = tape.leaf(arr)
                    leaves[step.name] = arr
            elif step.op is None:
                assert step.const is not None
                arr = ball_ops.constant(_obj(step.const))
            elif step.op in OPS:
                arr = elementwise(tape, step.op, [arrays[a] for a in step.args], step.shape, expand=True)
            else:
                arr = TENSOR[step.op](tape, [arrays[a] for a in step.args], step.kw, step.shape)
            if not np.isfinite(arr.err).all():  # an intermediate beyond the float range: its bound is kept as an
                raise Unsupported("an intermediate beyond the float range")  # mpf on the scalar tape
            arrays.append(arr)
        out = arrays[graph.output]
        value = np.asarray(out.value, dtype=object).reshape(graph.shape)
        ref = BallExact(graph, tape, out, leaves, value, np.asarray(out.err * _SAFETY, dtype=float).reshape(graph.shape),
                        arrays)
        ref.radii.append(ball_ops.relative_radius(ref.value_radius, ref.value_floats))
    return ref


def _read_only(a: Any) -> Any:
    """An array worked out once and handed to every check of the draw: no check may change it."""
    a.setflags(write=False)
    return a


def _obj(x: Fraction) -> Any:
    out = np.empty((), dtype=object)
    out[()] = x
    return out

