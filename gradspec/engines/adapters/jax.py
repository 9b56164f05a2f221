"""JAX: ``jax`` (float64, with x64 enabled) and ``jax:float32``.

JAX differentiates functions, not objects, so the adapter records the graph on a small tape while
gradspec builds it, then replays the tape as a function of the leaves and of one zero offset per
requested intermediate, and takes ``jax.value_and_grad`` of that: the gradient with respect to an
intermediate's offset is d output / d intermediate.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from gradspec.engines.function import Probe, output_shape, referenced
from gradspec.engines.protocol import Engine, Unavailable, Unsupported
from gradspec.engines.tensor import build_steps
from gradspec.errors import EngineError
from gradspec.graph.ir import Graph
from gradspec.graph.tensor import TensorGraph
from gradspec.modes import Capability, Mode, rows
from gradspec.ops.table import REVERSE_AND_TENSOR, Op, TensorOp


def create(options: str) -> Engine:
    dtype = options or "float64"
    if dtype not in ("float32", "float64"):
        raise EngineError(f"unknown jax option {options!r}; use float32 or float64")
    name = "jax" if dtype == "float64" else "jax:float32"
    try:
        import jax
        import jax.numpy as jnp
    except ImportError:
        return Unavailable(name, "jax is not installed (pip install 'gradspec[jax]')")
    if dtype == "float64":
        jax.config.update("jax_enable_x64", True)
    return JaxEngine(jax, jnp, name, getattr(jnp, dtype))


class _Node:
    __slots__ = ("index",)

    def __init__(self, index: int) -> None:
        self.index = index


class JaxEngine(Engine):
    family = "jax"  # a function case's function for this engine is listed under this name
    capabilities = REVERSE_AND_TENSOR | {Capability.JVP, Capability.HVP}
    max_order = 4

    def __init__(self, jax: Any, jnp: Any, name: str, dtype: Any) -> None:
        self.jax = jax
        self.jnp = jnp
        self.name = name
        self.dtype = dtype
        self.eps = float(jnp.finfo(dtype).eps)
        self.tape: list[tuple[Any, ...]] = []
        self._seen: Counter[Any] = Counter()  # eager runs of each small graph shape
        self._jitted: dict[Any, Any] = {}
        self._spelled: dict[str, Any] = {}

    def begin(self) -> None:
        self.tape = []

    def _fn(self, op: Op) -> Any:
        if op.jax is not None:
            # One function per op (the tape's compiled graphs are keyed on it), with the keyword values bound.
            spelled = self._spelled.get(op.name)
            if spelled is None:
                spell, kw = op.jax, op.kwargs
                spelled = self._spelled[op.name] = lambda *a: spell(self.jax, a, kw)
            return spelled
        if op.method is None:
            return op.pyop
        return getattr(self.jnp, op.method, None) or getattr(self.jax.nn, op.method, None)

    def missing(self, op: Op, value_left: bool) -> str | None:
        return None if self._fn(op) is not None else f"jax has no {op.method}"

    def leaf(self, x: float) -> Any:
        self.tape.append(("leaf", x))
        return _Node(len(self.tape) - 1)

    def apply(self, op: Op, args: Sequence[Any]) -> Any:
        self.tape.append(("op", self._fn(op), tuple(args)))
        return _Node(len(self.tape) - 1)

    def _replay(self, leaves: Any, offsets: Any, offset_at: dict[int, int], upto: int) -> Any:
        vals: list[Any] = []
        k = 0
        for i, entry in enumerate(self.tape[: upto + 1]):
            if entry[0] == "leaf":
                v = leaves[k]
                k += 1
            else:
                _, fn, args = entry
                v = fn(*(vals[a.index] if isinstance(a, _Node) else a for a in args))
            if i in offset_at:
                v = v + offsets[offset_at[i]]
            vals.append(v)
        return vals[upto]

    def _leaves(self) -> Any:
        return self.jnp.asarray([e[1] for e in self.tape if e[0] == "leaf"], dtype=self.dtype)

    def gradients(self, out: Any, nodes: Sequence[Any]) -> list[float | None]:
        leaf_pos: dict[int, int] = {}
        for i, e in enumerate(self.tape):
            if e[0] == "leaf":
                leaf_pos[i] = len(leaf_pos)
        offset_at: dict[int, int] = {}
        for n in nodes:
            if n.index not in leaf_pos and n.index not in offset_at:
                offset_at[n.index] = len(offset_at)
        offsets = self.jnp.zeros(len(offset_at), dtype=self.dtype)
        grad_fn = self._compiled(out.index, offset_at)
        value, (g_leaves, g_offsets) = grad_fn(self._leaves(), offsets)
        self._last = (out.index, float(value))
        # read on the host once: indexing a JAX array element by element dispatches an op per element
        on_leaves, on_offsets = (self.jax.device_get(g).tolist() for g in (g_leaves, g_offsets))
        return [on_leaves[leaf_pos[n.index]] if n.index in leaf_pos else on_offsets[offset_at[n.index]] for n in nodes]

    def _compiled(self, out: int, offset_at: dict[int, int]) -> Any:
        """value_and_grad of the replayed tape; jitted once the same graph shape comes back.

        A training loop rebuilds the same graph every step: a shape seen twice before, or a large one, is
        compiled with ``jax.jit`` and reused. Small one-off graphs run eagerly (compiling costs more),
        and so do huge ones (XLA compiles a 10,000-op chain slower than it runs it). Twice, not once: a
        check runs its graph twice in a row to see whether the engine is deterministic, and eager and
        jitted XLA round differently in the last bit, so both runs of a check must take the same path.
        """
        tape = tuple(self.tape)
        shape = (out, tuple(offset_at.items()), tuple(
            ("leaf",) if e[0] == "leaf" else (e[1], tuple(a.index if isinstance(a, _Node) else ("c", a) for a in e[2]))
            for e in tape))

        def f(leaves: Any, offs: Any) -> Any:
            saved, self.tape = self.tape, list(tape)
            try:
                return self._replay(leaves, offs, offset_at, out)
            finally:
                self.tape = saved

        fn = self._jitted.get(shape)
        if fn is not None:
            return fn
        grad_fn = self.jax.value_and_grad(f, argnums=(0, 1))
        if (self._seen[shape] >= 2 or len(tape) > 200) and len(tape) <= 5000:
            fn = self._jitted[shape] = self.jax.jit(grad_fn)
            return fn
        if len(self._seen) > 256:
            self._seen.clear()
        self._seen[shape] += 1
        return grad_fn

    def run_batch(self, graph: Graph, columns: Mapping[str, Sequence[float]]) -> tuple[list[float], dict[str, list[float]]]:
        """Every point at once: the replay acts elementwise on vectors; one vjp gives every gradient."""
        self.begin()
        nodes = self.build(graph, {n: self.leaf(0.0) for n, _ in graph.inputs})  # leaf values: the columns below
        names = [n for n, _ in graph.inputs]
        leaves = self.jnp.asarray([list(columns[n]) for n in names], dtype=self.dtype)
        out = nodes[graph.output]

        def f(vectors: Any) -> Any:
            return self._replay(vectors, None, {}, out.index)

        values, pullback = self.jax.vjp(f, leaves)
        (grads,) = pullback(self.jnp.ones_like(values))
        host_grads = self.jax.device_get(grads).tolist()  # one transfer, not a million scalar reads
        return self.jax.device_get(values).tolist(), {n: host_grads[k] for k, n in enumerate(names)}

    def value(self, node: Any) -> float:
        last = getattr(self, "_last", None)
        if last is not None and last[0] == node.index:
            return last[1]
        cached = getattr(self, "_values", None)
        if cached is None or cached[0] is not self.tape:  # one replay serves every node of this tape
            leaves = iter(self._leaves())
            vals: list[Any] = []
            for entry in self.tape:
                if entry[0] == "leaf":
                    vals.append(next(leaves))
                else:
                    vals.append(entry[1](*(vals[a.index] if isinstance(a, _Node) else a for a in entry[2])))
            cached = self._values = (self.tape, vals)
        return float(cached[1][node.index])

    def function_of(self, graph: TensorGraph, data: Mapping[str, Any]) -> Callable[..., Any]:
        """The case as a function of its differentiable inputs' arrays, from JAX's own ops
        (``jax.nn.softmax``, ``lax.conv_general_dilated``, ...); ``data`` holds the other inputs."""
        jnp = self.jnp
        names = [n for n, _ in graph.differentiable]
        fixed = {n: jnp.asarray(v, dtype=self.dtype) for n, v in data.items()}

        def f(*arrays: Any) -> Any:
            return build_steps(graph, dict(zip(names, arrays, strict=True)) | fixed,
                               lambda c: jnp.asarray(c, dtype=self.dtype), lambda op, args: self._fn(op)(*args),
                               lambda row, args, kw: self._tensor_op(row, args, kw))

        return f

    def _tensor_op(self, row: TensorOp, args: Sequence[Any], kw: dict[str, Any]) -> Any:
        if row.jax is None:
            raise Unsupported(f"JAX has no {row.name}")
        return row.jax(self.jax, args, kw)

    def run_tensor(self, graph: TensorGraph, inputs: Mapping[str, Any], cotangents: Sequence[Any]) -> tuple[Any, list[dict[str, Any]]]:
        """A tensor case: one ``jax.vjp`` of the case as a function of its differentiable inputs, pulled
        back per cotangent."""
        jnp = self.jnp
        names = [n for n, _ in graph.differentiable]
        f = self.function_of(graph, {n: inputs[n] for n in graph.data})
        value, pullback = self.jax.vjp(f, *(jnp.asarray(inputs[n], dtype=self.dtype) for n in names))
        grads = []
        for cotangent in cotangents:
            got = pullback(jnp.asarray(cotangent, dtype=value.dtype))
            grads.append({n: self._array(g) for n, g in zip(names, got, strict=True)})
        return self._array(value), grads

    def _array(self, x: Any) -> Any:
        return self.jax.device_get(x).astype("float64")

    def primitives(self, f: Callable[..., Any], primals: Sequence[Any], function: Any = None,
                   label: str = "") -> _Primitives:
        """``jax.vjp`` (reverse), ``jax.grad`` of a gradient contracted with a direction (reverse over
        reverse), ``jax.jvp`` (forward, and nested over ``jax.jvp`` or ``jax.grad``) and ``jax.jacfwd``.
        ``function`` is a user's callable that ``f`` calls: a ``jax.custom_vjp`` (or a function written with
        one) defines reverse mode only."""
        refused: dict[str, str] = {}
        if function is not None and referenced(function, lambda c: isinstance(c, self.jax.custom_vjp)):
            refused = {row.key: f"{label} has no forward mode: a jax.custom_vjp defines reverse mode only"
                       for row in rows(frozenset(Mode), 2) if row.forward}
        return _Primitives(self, f, primals, refused)

    # -- a user's function under test (gradspec.engines.function) -------------------------------
    def function_input(self, graph: TensorGraph, name: str, values: Any, *, grad: bool = False) -> Any:
        """One input as a user's function receives it: an integer-valued data input as int32, else the
        engine's dtype."""
        arr = np.asarray(values, dtype=float)
        integral = name in graph.data and np.all(arr == np.round(arr))
        return self.jnp.asarray(arr.astype(np.int32)) if integral else self.jnp.asarray(arr, dtype=self.dtype)

    def probe_function(self, fn: Callable[..., Any], graph: TensorGraph, inputs: Mapping[str, Any],
                       cotangents: Sequence[Any]) -> Probe:
        """One ``jax.vjp`` of ``fn``, pulled back per cotangent, as JAX returned them."""
        jax, jnp = self.jax, self.jnp
        names = [n for n, _ in graph.differentiable]
        arrays = {n: self.function_input(graph, n, inputs[n]) for n, _ in graph.inputs}
        before = {n: np.asarray(a).copy() for n, a in arrays.items()}

        def f(*diff: Any) -> Any:
            env = arrays | dict(zip(names, diff, strict=True))
            return fn(*(env[n] for n, _ in graph.inputs))

        value, pullback = jax.vjp(f, *(arrays[n] for n in names))
        output_shape(graph, tuple(np.shape(value)))
        probe = Probe(np.asarray(jax.device_get(value), dtype=float), [],
                      dtypes={n: str(arrays[n].dtype) for n in names})
        for cotangent in cotangents:
            got = pullback(jnp.asarray(cotangent, dtype=value.dtype))
            probe.grads.append({n: np.asarray(jax.device_get(g), dtype=float) for n, g in zip(names, got, strict=True)})
            probe.kinds.append({n: (tuple(g.shape), str(g.dtype)) for n, g in zip(names, got, strict=True)})
        probe.mutated = [n for n, a in arrays.items() if not np.array_equal(np.asarray(a), before[n])]
        return probe


class _Primitives:
    """JAX's primitives for one function at one point (:class:`gradspec.engines.modes.Primitives`). A
    gradient is held as the scalar function it is the gradient of, so that it can be differentiated again."""

    def __init__(self, engine: JaxEngine, f: Callable[..., Any], primals: Sequence[Any], refused: dict[str, str]) -> None:
        self.jax, self.jnp, self.dtype, self._array = engine.jax, engine.jnp, engine.dtype, engine._array
        self.function, self.refused = f, refused
        self.xs = tuple(self.jnp.asarray(p, dtype=self.dtype) for p in primals)
        self.every = tuple(range(len(self.xs)))

    def _arrays(self, arrays: Sequence[Any]) -> tuple[Any, ...]:
        return tuple(self.jnp.asarray(a, dtype=self.dtype) for a in arrays)

    def reverse(self, v: Any, again: bool) -> tuple[Any, list[Any], Any]:
        cotangent = self.jnp.asarray(v, dtype=self.dtype)
        out, pullback = self.jax.vjp(self.function, *self.xs)
        return self._array(out), [self._array(g) for g in pullback(cotangent)], self._contracted(v)

    def _contracted(self, v: Any) -> Callable[..., Any]:
        f, jnp, cotangent = self.function, self.jnp, self.jnp.asarray(v, dtype=self.dtype)
        return lambda *a: jnp.sum(f(*a) * cotangent)  # v·f, a scalar

    def again(self, grads: Any, u: Sequence[Any]) -> Any:
        jax, jnp, tangents = self.jax, self.jnp, self._arrays(u)
        return lambda *a: sum(jnp.sum(d * t) for d, t in zip(jax.grad(grads, argnums=self.every)(*a), tangents, strict=True))

    def along(self, grads: Any, u: Sequence[Any]) -> float:
        return float(self.again(grads, u)(*self.xs))

    def arrays(self, grads: Any) -> list[Any]:
        return [self._array(h) for h in self.jax.grad(grads, argnums=self.every)(*self.xs)]

    def jvp(self, fn: Any, u: Sequence[Any]) -> Any:
        out = self.jax.jvp(fn, self.xs, self._arrays(u))[1]
        return [self._array(o) for o in out] if isinstance(out, tuple) else self._array(out)

    def jvp_of(self, fn: Any, u: Sequence[Any]) -> Any:
        tangents = self._arrays(u)
        return lambda *a: self.jax.jvp(fn, a, tangents)[1]

    def vjp_of(self, v: Any) -> Any:
        return self.jax.grad(self._contracted(v), argnums=self.every)

    def jacobian(self) -> list[Any] | None:
        return [self._array(j) for j in self.jax.jacfwd(self.function, argnums=self.every)(*self.xs)]
