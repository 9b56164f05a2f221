"""The reference store: one :class:`Reference` per (graph, point), and the only memo of reference work.

Everything the checks ask of the references goes through here: the exact value and gradients, the
numerical references, the rounding allowance of each precision, the symbolic formulas and
whether the graph's derivation ran over its time budget. The store keeps what it has worked out in
memory (keyed by graph content, never by ``id``) and on disk (:mod:`gradspec.reference.cache`), so a
warm run needs no SymPy at all. The modules it calls (``exact``, ``chain``, ``numerical``) compute and
remember nothing. The tensor and mode references (:mod:`gradspec.reference.tensor`,
:mod:`gradspec.reference.modes`) keep theirs here too, in :class:`Bounded` memos of the store, in memory
only (arrays of exact numbers per draw: cheap to recompute, large to write).
"""

from __future__ import annotations

import atexit
import contextlib
from collections.abc import Callable, Mapping
from fractions import Fraction
from typing import Any, Generic, TypeVar

import mpmath

from gradspec.graph.ir import Graph
from gradspec.lang.numbers import exact_float
from gradspec.limits import LIMITS, TimeLimit, deadline
from gradspec.reference.cache import DiskCache, decode, encode
from gradspec.reference.exact import DPS, Derivation, Exact, Kinked, derive, exact_at, small
from gradspec.reference.mpeval import Scalar
from gradspec.reference.numerical import numerical
from gradspec.reference.rounding import bounds

__all__ = ["STORE", "Bounded", "Reference", "Store", "exact", "reference"]

Point = tuple[tuple[str, Fraction], ...]  # the graph's inputs, in the graph's order
K = TypeVar("K")
V = TypeVar("V")


class _Memo:
    """What has been worked out for one (graph content, point)."""

    __slots__ = ("exact", "numerical", "rounding")

    def __init__(self) -> None:
        self.exact: Exact | None = None
        self.numerical: dict[float, dict[str, float | None]] = {}
        self.rounding: dict[float, tuple[dict[str, float], dict[str, float]]] = {}  # by machine epsilon: full, precision


class Reference:
    """The references of one graph at one point, each worked out on first use and then remembered.

    Equal graphs share what is remembered; errors are not remembered, so a domain error names the
    column in the caller's own spelling of the expression.
    """

    def __init__(self, store: Store, graph: Graph, point: Point, memo: _Memo) -> None:
        self.store = store
        self.graph = graph
        self.point = point
        self._memo = memo

    def exact(self) -> Exact:
        """Exact value and gradients; raises :class:`~gradspec.errors.DomainError` outside an op's domain."""
        if self._memo.exact is None:
            self._memo.exact = self.store._exact(self.graph, dict(self.point))
        return self._memo.exact

    def numerical(self, h: float) -> dict[str, float | None]:
        """The central-difference reference with step ``h`` for every input and intermediate."""
        found = self._memo.numerical.get(h)
        if found is None:
            found = self._memo.numerical[h] = self.store._numerical(self.graph, dict(self.point), h)
        return found

    def rounding(self, eps: float) -> dict[str, float]:
        """How far rounding in a precision of machine epsilon ``eps`` can move each quantity ("" is the
        value); see :func:`gradspec.reference.rounding.allowances`."""
        return self._bounds(eps)[0]

    def precision(self, eps: float) -> dict[str, float]:
        """The precision bound of each quantity: :meth:`rounding` without what a partial rebuilt from a
        rounded output may lose (see :func:`gradspec.reference.rounding.bounds`)."""
        return self._bounds(eps)[1]

    def _bounds(self, eps: float) -> tuple[dict[str, float], dict[str, float]]:
        found = self._memo.rounding.get(eps)
        if found is None:
            tight, rebuilt = bounds(self.graph, self.point, eps)
            found = self._memo.rounding[eps] = ({n: tight[n] + rebuilt[n] for n in tight}, tight)
        return found

    @property
    def formulas(self) -> dict[str, str]:
        return self.store.formulas(self.graph)

    @property
    def over_budget(self) -> str:
        return self.store.over_budget(self.graph)


class Bounded(Generic[K, V]):
    """A memo of reference work keyed by what it is (a graph's text, a point's exact elements), holding at
    most ``limit`` results and, where ``budget`` is given, results of at most that total size (what a
    result holds grows with its graph: one reference of a 256x256 chain holds hundreds of thousands of
    exact numbers): the oldest goes first."""

    def __init__(self, limit: int, budget: int | None = None) -> None:
        self.limit = limit
        self.budget = budget
        self._items: dict[K, V] = {}
        self._sizes: dict[K, int] = {}

    def get(self, key: K, compute: Callable[[], V], size: int = 0) -> V:
        """The result remembered for ``key``, else ``compute()``, remembered (an exception is not);
        ``size`` is what the result counts against the budget."""
        found = self._items.get(key)
        if found is None:
            found = compute()
            while self._items and (len(self._items) >= self.limit
                                   or (self.budget is not None and sum(self._sizes.values()) + size > self.budget)):
                oldest = next(iter(self._items))
                del self._items[oldest]
                self._sizes.pop(oldest, None)
            self._items[key] = found
            self._sizes[key] = size
        return found

    def __len__(self) -> int:
        return len(self._items)

    def clear(self) -> None:
        self._items.clear()
        self._sizes.clear()


class Store:
    """References by (graph, point) in memory, graph-wide facts by graph, both backed by ``disk``; the
    tensor and mode references in bounded memos."""

    MAX_REFERENCES = 100_000
    MAX_GRAPHS = 2048  # derivations and formulas (SymPy expressions can be large)

    def __init__(self, disk: DiskCache) -> None:
        self.disk = disk
        self._memos: dict[tuple[Graph, Point], _Memo] = {}
        self._derivations: dict[Graph, Derivation] = {}
        self._formulas: dict[Graph, dict[str, str]] = {}
        self._over_budget: set[Graph] = set()  # derivations that ran out of time; small, never evicted
        # Per draw, the exact tensor tape (loading a case computes it, every engine's check reuses it),
        # the mode references (every engine of one precision at one draw shares them), and a scalar
        # graph laid out as a tensor graph over 0-d inputs (for its modes).
        self.tensors: Bounded[Any, Any] = Bounded(64, budget=2_000_000)  # elements over all steps
        # The exact decimals of a float input, by its bytes: a user's point checked again (gradspec.check
        # in a loop, every engine of a comparison) is converted once.
        self.points: Bounded[Any, Any] = Bounded(64, budget=2_000_000)  # elements
        self.modes: Bounded[Any, Any] = Bounded(256)
        self.lowered: Bounded[Any, Any] = Bounded(512)

    def at(self, graph: Graph, point: Mapping[str, Fraction]) -> Reference:
        """The reference of ``graph`` at ``point`` (names the graph does not take are ignored)."""
        key = (graph, tuple((name, point[name]) for name, _ in graph.inputs))
        memo = self._memos.get(key)
        if memo is None:
            if len(self._memos) >= self.MAX_REFERENCES:
                self._memos.clear()
            memo = self._memos[key] = _Memo()
        return Reference(self, graph, key[1], memo)

    def decimals(self, floats: Any) -> Any:
        """The shortest decimal of each element of ``floats`` (a finite float64 array), as an object array
        of Fractions of the same shape (:func:`gradspec.lang.numbers.exact_float`); remembered by bytes."""
        import numpy as np  # tensor inputs only

        def convert() -> Any:
            exact = np.empty(floats.shape, dtype=object)
            exact.reshape(-1)[:] = [exact_float(v) for v in floats.flat]
            return exact

        return self.points.get((floats.shape, floats.tobytes()), convert, size=floats.size)

    # -- graph-wide facts ------------------------------------------------------------------------------
    def derivation(self, graph: Graph) -> Derivation:
        """The graph's SymPy derivation, derived once (no time limit here: callers set their own)."""
        found = self._derivations.get(graph)
        if found is None:
            found = derive(graph)
            _bounded(self._derivations, self.MAX_GRAPHS)[graph] = found
        return found

    def symbolic(self, graph: Graph) -> bool:
        """Whether ``graph`` is differentiated as one SymPy expression: small, shallow, and within budget."""
        return small(graph) and graph not in self._over_budget

    def over_budget(self, graph: Graph) -> str:
        """A note for a graph whose SymPy derivation ran out of time, else ""."""
        if graph in self._over_budget or self.disk.over_budget(graph):
            return (f"the symbolic derivative is too large (SymPy needed over {LIMITS.derivation:g} s); "
                    "exact values come from the chain rule, step by step")
        return ""

    def formulas(self, graph: Graph) -> dict[str, str]:
        """The symbolic value and derivatives as text; empty for graphs differentiated step by step."""
        found = self._formulas.get(graph)
        if found is None:
            found = _bounded(self._formulas, self.MAX_GRAPHS)[graph] = self._formulas_of(graph)
        return found

    def _formulas_of(self, graph: Graph) -> dict[str, str]:
        if not self.symbolic(graph):
            return {}
        cached = self.disk.formulas(graph)
        if cached is not None:
            return cached
        try:
            with deadline(LIMITS.derivation):
                d = self.derivation(graph)
                formulas = {"": str(d.value)} | {n: str(g) for n, g in d.grads.items()}
        except TimeLimit:  # a derivative too large to print is left out, not waited for
            return {}
        self.disk.put_formulas(graph, formulas)
        return formulas

    # -- per point ---------------------------------------------------------------------------------------
    def _exact(self, graph: Graph, point: dict[str, Fraction]) -> Exact:
        record = self.disk.get(graph, point)
        if record is not None:
            with contextlib.suppress(KeyError, ValueError, TypeError):  # a damaged record is recomputed
                return _decode(record)
        symbolic = (lambda env: self._symbolic(graph, env)) if self.symbolic(graph) else None
        result = exact_at(graph, point, symbolic)
        self.disk.put(graph, point, _encode(result))
        if graph in self._over_budget:
            self.disk.mark_over_budget(graph)
        return result

    def _symbolic(self, graph: Graph, env: Mapping[str, Scalar]) -> tuple[Scalar, dict[str, Scalar]] | None:
        """Value and gradients from the SymPy derivatives, or None when the derivation or its evaluation
        exploded past the time budget (the graph is then differentiated step by step from now on)."""
        try:
            with deadline(LIMITS.derivation):
                d = self.derivation(graph)
                sym_env = {d.symbols[n]: v for n, v in env.items()}
                return d.evaluate("", sym_env), {n: d.evaluate(n, sym_env) for n in d.grads}
        except (TimeLimit, RecursionError):
            self._over_budget.add(graph)
            return None

    def _numerical(self, graph: Graph, point: dict[str, Fraction], h: float) -> dict[str, float | None]:
        field = f"n{h!r}"  # remembered on disk beside the exact record of the same point
        record = self.disk.get(graph, point)
        if record is not None and isinstance(record.get(field), dict):
            return {n: (None if v is None else float(v)) for n, v in record[field].items()}
        floats = {k: float(v) for k, v in point.items()}
        result = {n: numerical(graph, floats, n, h) for n, _ in graph.inputs + graph.intermediates}
        self.disk.note(graph, point, field, result)
        return result

    # -- housekeeping --------------------------------------------------------------------------------------
    def flush(self) -> None:
        """Write what is new to disk."""
        self.disk.flush()

    def clear_memory(self) -> None:
        """Forget everything held in memory (the disk cache stays)."""
        self.disk.clear_memory()
        self._memos.clear()
        self._derivations.clear()
        self._formulas.clear()
        self._over_budget.clear()
        for memo in (self.tensors, self.modes, self.lowered):
            memo.clear()


def _bounded(memo: dict[Any, Any], limit: int) -> dict[Any, Any]:
    """``memo`` with room for one more entry: the oldest goes first."""
    while len(memo) >= limit:
        del memo[next(iter(memo))]
    return memo


def _encode(e: Exact) -> dict[str, object]:
    return {"v": encode(e.value), "g": {n: encode(g) for n, g in e.grads.items()},
            "k": [[k.step, k.where] for k in e.kinks],
            "s": {n: [encode(lo), encode(hi)] for n, (lo, hi) in e.subgradients.items()}}


def _decode(r: dict[str, Any]) -> Exact:
    with mpmath.workdps(DPS):
        return Exact(decode(r["v"]), {n: decode(g) for n, g in r["g"].items()},
                     tuple(Kinked(int(s), str(w)) for s, w in r["k"]),
                     {n: (decode(lo), decode(hi)) for n, (lo, hi) in r["s"].items()})


STORE = Store(DiskCache())
atexit.register(STORE.flush)


def reference(graph: Graph, point: Mapping[str, Fraction]) -> Reference:
    """The reference of ``graph`` at ``point``, from the one store."""
    return STORE.at(graph, point)


def exact(graph: Graph, point: Mapping[str, Fraction]) -> Exact:
    """Exact value and gradients of ``graph`` at ``point`` (see :meth:`Reference.exact`)."""
    return STORE.at(graph, point).exact()
