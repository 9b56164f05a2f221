"""Graphs back to text: a step, a sub-expression, a sub-program that keeps its sharing, a node's label.

Ops are spelled by their op table row (:meth:`gradspec.ops.table.Op.render`), so the text of every
graph reads as the expression language writes it and parses back to the same graph.
"""

from __future__ import annotations

from fractions import Fraction

from gradspec.graph.ir import Apply, Const, Graph, Leaf
from gradspec.ops.table import OPS

__all__ = ["ancestors", "label", "number", "short", "step_text", "strip", "subexpression", "subprogram"]


def number(value: Fraction) -> str:
    """A constant as the shortest text that parses back to it exactly."""
    if value.denominator == 1:
        return str(value.numerator)
    text = repr(float(value))
    return text if Fraction(text) == value else f"({value.numerator}/{value.denominator})"


def step_text(graph: Graph, index: int) -> str:
    """``op(arg, ...)`` with each argument by its label, for messages."""
    step = graph.steps[index]
    assert isinstance(step, Apply)
    return f"{step.op}({', '.join(graph.label(a) for a in step.args)})"


def ancestors(graph: Graph, index: int) -> set[int]:
    """Step ``index`` and every step it depends on."""
    seen = {index}
    stack = [index]
    while stack:
        for a in graph.steps[stack.pop()].args:
            if a not in seen:
                seen.add(a)
                stack.append(a)
    return seen


def subexpression(graph: Graph, index: int) -> str:
    """The text of the sub-expression rooted at ``index``, intermediates written inline."""
    memo: dict[int, str] = {}
    for i in range(index + 1):
        step = graph.steps[i]
        match step:
            case Leaf():
                memo[i] = step.name
            case Const():
                memo[i] = number(step.value)
            case Apply():
                memo[i] = OPS[step.op].render([memo[a] for a in step.args])
    return strip(memo[index])


def subprogram(graph: Graph, index: int) -> str:
    """The sub-graph rooted at ``index`` as a program that keeps its sharing.

    Named intermediates, and unnamed nodes used more than once, become assignments, so that the
    program builds the same graph (an engine that fails to accumulate fails on it too).
    """
    nodes = sorted(ancestors(graph, index))
    uses: dict[int, int] = {}
    for i in nodes:
        for a in graph.steps[i].args:
            uses[a] = uses.get(a, 0) + 1
    taken = {n for n, _ in graph.inputs}
    names: dict[int, str] = {}
    for name, i in graph.intermediates:
        if i in nodes and isinstance(graph.steps[i], Apply):
            names.setdefault(i, name)
            taken.add(name)
    for i in nodes:
        if isinstance(graph.steps[i], Apply) and uses.get(i, 0) > 1 and i not in names:
            name = f"t{i}"
            while name in taken:
                name += "_"
            names[i] = name
            taken.add(name)
    text: dict[int, str] = {}
    lines = []
    for i in nodes:
        step = graph.steps[i]
        match step:
            case Leaf():
                text[i] = step.name
            case Const():
                text[i] = number(step.value)
            case Apply():
                body = OPS[step.op].render([text[a] for a in step.args])
                if i in names and i != index:
                    lines.append(f"{names[i]} = {strip(body)}")
                    text[i] = names[i]
                else:
                    text[i] = body
    lines.append(strip(text[index]))
    return "; ".join(lines)


def short(graph: Graph, index: int) -> str:
    """A node's name where it has one, else its sub-expression."""
    for name, i in graph.intermediates + graph.inputs:
        if i == index:
            return name
    return f"({subexpression(graph, index)})"


def label(graph: Graph, index: int) -> str:
    """A node as a person wrote it: ``a = x * y``, or its expression with intermediates by name."""
    named = {i: n for n, i in graph.intermediates + graph.inputs}

    def text(i: int, top: bool) -> str:
        step = graph.steps[i]
        if isinstance(step, Leaf) or (i in named and not top):
            return named.get(i, step.name if isinstance(step, Leaf) else "")
        if isinstance(step, Const):
            return number(step.value)
        return OPS[step.op].render([text(a, False) for a in step.args])

    body = strip(text(index, True)) if len(ancestors(graph, index)) < 60 else f"step {index}"
    return f"{named[index]} = {body}" if index in named and isinstance(graph.steps[index], Apply) else body


def strip(text: str) -> str:
    """``text`` without one pair of enclosing parentheses, where they enclose all of it."""
    return text[1:-1] if text.startswith("(") and text.endswith(")") and _balanced(text[1:-1]) else text


def _balanced(text: str) -> bool:
    depth = 0
    for ch in text:
        depth += {"(": 1, ")": -1}.get(ch, 0)
        if depth < 0:
            return False
    return depth == 0
