"""The graph walks of the built-in engine (:mod:`gradspec.engine`): the topological order, reverse
accumulation (:func:`grad`, and ``Value.backward`` built on it) and forward mode (:func:`jvp`).

They read a node's ``_parents``, its ``_partials`` (d(out)/d(parent), as nodes or numbers), its
``_hand_written`` float closure if a subclass gave one, and its ``data``; every node they build is made
with the nodes' own ops, a constant with the output's ``_constant``. Traversals are iterative, so graphs
of any depth work without RecursionError.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from gradspec.engine import Value

__all__ = ["grad", "jvp"]


# -- derivatives ----------------------------------------------------------------------------------------


def grad(output: Value, inputs: Iterable[Value], *, create_graph: bool = False) -> list[Value | float]:
    """d(output)/d(input) for each of ``inputs``, without touching any node's ``grad``.

    An input the output does not depend on gets 0.0. Without ``create_graph`` the gradients are floats;
    with it they are Values built from the partials with Value ops, so ``grad`` can be applied to them
    again, to any order. An input may be an intermediate node: its gradient counts the paths through it.

    >>> from gradspec.engine import Value
    >>> x, y = Value(2.0), Value(5.0)
    >>> grad(x * x * x, [x, y])
    [12.0, 0.0]
    >>> (d,) = grad(x * x * x, [x], create_graph=True)
    >>> grad(d, [x])
    [12.0]
    """
    inputs = list(inputs)
    order = _topological(output)
    wanted = {id(v) for v in inputs}
    needed: set[int] = set()  # the nodes on a path from an input to the output
    for node in order:
        if id(node) in wanted or any(id(p) in needed for p in node._parents):
            needed.add(id(node))
    if id(output) not in needed:
        return [0.0 for _ in inputs]
    grads = _reverse(output, order, needed, create_graph=create_graph)
    result: list[Value | float] = []
    for v in inputs:
        g = grads.get(id(v), 0.0)
        result.append(output._constant(g) if create_graph and id(v) in grads else g)
    return result


def jvp(output: Value, tangents: Mapping[Value, float | Value]) -> Value | float:
    """Forward mode: the derivative of ``output`` along ``tangents``, one tangent per input.

    Inputs not listed have tangent 0. The tangents are carried in one sweep over the graph in topological
    order (a node's tangent is the sum over its parents of the partial times the parent's tangent), and
    are built with Value ops, so the result can be differentiated again: ``jvp`` of a ``jvp`` is forward
    over forward, ``jvp`` of a gradient from ``grad(..., create_graph=True)`` forward over reverse.
    Returns 0.0 where no tangent reaches the output. A listed node that is not a leaf is perturbed by its
    tangent on top of what flows into it.

    >>> from gradspec.engine import Value
    >>> x, y = Value(2.0), Value(5.0)
    >>> jvp(x * y, {x: 1.0, y: 0.5}).data  # y * 1 + x * 0.5
    6.0
    >>> jvp(x * x, {y: 1.0})
    0.0
    """
    seeds = {id(v): t for v, t in tangents.items()}
    tangent: dict[int, Value | float] = {}
    for node in _topological(output):
        t: Value | float | None = None
        parents = node._parents
        if parents:
            incoming = [tangent.get(id(p)) for p in parents]
            if any(u is not None for u in incoming):
                partials = node._partials
                if node._hand_written is not None or partials is None:
                    raise _refused(node, "jvp")
                for d, u in zip(partials(node, 1.0), incoming, strict=True):
                    if d is not None and u is not None:
                        term = _times(d, u)
                        t = term if t is None else t + term
        seed = seeds.get(id(node))
        if seed is not None:
            t = seed if t is None else t + seed
        if t is not None:
            tangent[id(node)] = t
    result = tangent.get(id(output))
    return 0.0 if result is None else output._constant(result)


# -- traversals -----------------------------------------------------------------------------------------


def _topological(root: Value) -> list[Value]:
    """``root`` and every node it depends on, each after all of its parents."""
    order: list[Value] = []
    seen: set[int] = set()
    stack: list[tuple[Value, bool]] = [(root, False)]
    while stack:  # iterative post-order DFS: a node is emitted after all of its parents
        node, expanded = stack.pop()
        if expanded:
            order.append(node)
            continue
        if id(node) in seen:
            continue
        seen.add(id(node))
        stack.append((node, True))
        stack.extend((p, False) for p in node._parents if id(p) not in seen)
    return order


def _reverse(output: Value, order: list[Value], needed: set[int] | None, *,
             create_graph: bool) -> dict[int, Value | float]:
    """d(output)/d(node) by node id, for the nodes of ``order`` (only those in ``needed``, if given)."""
    grads: dict[int, Value | float] = {id(output): 1.0}
    for node in reversed(order):
        g = grads.get(id(node))
        if g is None:
            continue
        partials = node._partials
        if node._hand_written is not None:
            raise _refused(node, "backward(create_graph=True)" if create_graph else "grad")
        if partials is None:
            continue  # a leaf
        g_data = g if isinstance(g, float | int) else g.data
        for parent, d in zip(node._parents, partials(node, g_data), strict=True):
            if d is None or (needed is not None and id(parent) not in needed):
                continue
            term = _times(d, g) if create_graph else (d if isinstance(d, float | int) else d.data) * g_data
            before = grads.get(id(parent))
            grads[id(parent)] = term if before is None else before + term
    return grads


def _times(d: Value | float, g: Value | float) -> Value | float:
    """``d * g`` with Value ops, without a node for a factor of exactly 1 or -1 (the same value)."""
    if isinstance(d, float | int):
        if d == 1.0:
            return g
        if d == -1.0:
            return -g
    if isinstance(g, float | int):
        if g == 1.0:
            return d
        if g == -1.0:
            return -d
    return d * g


def _refused(node: Value, what: str) -> TypeError:
    return TypeError(f"{what} needs each op's partials, but this {node._op or 'node'} node of "
                     f"{type(node).__name__} has only a hand-written float _backward")


