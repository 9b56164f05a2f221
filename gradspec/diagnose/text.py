"""Nodes of a graph as a person wrote them: sub-expressions, sub-programs and labels."""

from __future__ import annotations

from fractions import Fraction

from gradspec.graph.ir import Graph
from gradspec.ops.table import OPS

__all__ = ["subexpression", "subprogram"]


def subexpression(graph: Graph, index: int) -> str:
    """The text of the sub-expression rooted at ``index``, intermediates written inline."""
    memo: dict[int, str] = {}
    for i in range(index + 1):
        step = graph.steps[i]
        if step.name is not None:
            memo[i] = step.name
        elif step.op is None:
            memo[i] = _number(step.const)
        else:
            op = OPS[step.op]
            args = [memo[a] for a in step.args]
            if op.symbol is None:
                memo[i] = f"{op.name}({', '.join(args)})"
            elif op.arity == 1:
                memo[i] = f"(-{args[0]})"
            else:
                memo[i] = f"({args[0]} {op.symbol} {args[1]})"
    text = memo[index]
    return text[1:-1] if text.startswith("(") and _balanced(text[1:-1]) else text


def subprogram(graph: Graph, index: int) -> str:
    """The sub-graph rooted at ``index`` as a program that keeps its sharing.

    Named intermediates, and unnamed nodes used more than once, become assignments, so that the
    program builds the same graph (an engine that fails to accumulate fails on it too).
    """
    nodes = sorted(_ancestors(graph, index))
    uses: dict[int, int] = {}
    for i in nodes:
        for a in graph.steps[i].args:
            uses[a] = uses.get(a, 0) + 1
    taken = {n for n, _ in graph.inputs}
    names: dict[int, str] = {}
    for name, i in graph.intermediates:
        if i in nodes and graph.steps[i].op is not None:
            names.setdefault(i, name)
            taken.add(name)
    for i in nodes:
        if graph.steps[i].op is not None and uses.get(i, 0) > 1 and i not in names:
            name = f"t{i}"
            while name in taken:
                name += "_"
            names[i] = name
            taken.add(name)
    text: dict[int, str] = {}
    lines = []
    for i in nodes:
        step = graph.steps[i]
        if step.name is not None:
            text[i] = step.name
            continue
        if step.op is None:
            text[i] = _number(step.const)
            continue
        op = OPS[step.op]
        args = [text[a] for a in step.args]
        if op.symbol is None:
            body = f"{op.name}({', '.join(args)})"
        elif op.arity == 1:
            body = f"(-{args[0]})"
        else:
            body = f"({args[0]} {op.symbol} {args[1]})"
        if i in names and i != index:
            lines.append(f"{names[i]} = {_strip(body)}")
            text[i] = names[i]
        else:
            text[i] = body
    lines.append(_strip(text[index]))
    return "; ".join(lines)


def _strip(text: str) -> str:
    return text[1:-1] if text.startswith("(") and text.endswith(")") and _balanced(text[1:-1]) else text


def _balanced(text: str) -> bool:
    depth = 0
    for ch in text:
        depth += {"(": 1, ")": -1}.get(ch, 0)
        if depth < 0:
            return False
    return depth == 0


def _number(value: Fraction | None) -> str:
    assert value is not None
    if value.denominator == 1:
        return str(value.numerator)
    text = repr(float(value))
    return text if Fraction(text) == value else f"({value.numerator}/{value.denominator})"


def _short(graph: Graph, index: int) -> str:
    """A node's name where it has one, else its sub-expression."""
    for name, i in graph.intermediates + graph.inputs:
        if i == index:
            return name
    return f"({subexpression(graph, index)})"


def _label(graph: Graph, index: int) -> str:
    """A node as a person wrote it: ``a = x * y``, or its expression with intermediates by name."""
    named = {i: n for n, i in graph.intermediates + graph.inputs}

    def text(i: int, top: bool) -> str:
        step = graph.steps[i]
        if (i in named and not top) or step.name is not None:
            return named.get(i, step.name or "")
        if step.op is None:
            return _number(step.const)
        op = OPS[step.op]
        args = [text(a, False) for a in step.args]
        if op.symbol is None:
            return f"{op.name}({', '.join(args)})"
        return f"(-{args[0]})" if op.arity == 1 else f"({args[0]} {op.symbol} {args[1]})"

    body = _strip(text(index, True)) if len(_ancestors(graph, index)) < 60 else f"step {index}"
    return f"{named[index]} = {body}" if index in named and graph.steps[index].op else body


def _ancestors(graph: Graph, index: int) -> set[int]:
    seen = {index}
    stack = [index]
    while stack:
        for a in graph.steps[stack.pop()].args:
            if a not in seen:
                seen.add(a)
                stack.append(a)
    return seen
