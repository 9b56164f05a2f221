"""The expression tree: what the parser produces and the graph builder lays out.

Nodes are small frozen values; a :class:`Program` is identified by its source text.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from fractions import Fraction

from gradspec.ops.table import OPS, TENSOR_OPS

__all__ = ["Apply", "KwValue", "Name", "Node", "Num", "Program"]

KwValue = int | Fraction | tuple[int, ...] | str  # a number keyword is the exact decimal written


@dataclass(frozen=True)
class Num:
    value: Fraction
    text: str = field(compare=False)
    col: int = field(default=0, compare=False)

    def __str__(self) -> str:
        return f"({self.text})" if self.value < 0 else self.text


@dataclass(frozen=True)
class Name:
    name: str
    col: int = field(default=0, compare=False)

    def __str__(self) -> str:
        return self.name


@dataclass(frozen=True)
class Apply:
    op: str
    args: tuple[Node, ...]
    col: int = field(default=0, compare=False)
    kwargs: tuple[tuple[str, KwValue], ...] = ()  # a tensor op's keyword values, every keyword filled in

    def __str__(self) -> str:
        t = TENSOR_OPS.get(self.op)
        if t is not None:
            if t.symbol:
                return f"({self.args[0]} {t.symbol} {self.args[1]})"
            kws = [f"{k}={_kw_text(v)}" for k, v in self.kwargs if v is not None and k != "output"]
            # A multi-output op's internal keyword is its subscript: slogdet(a)[1].
            pick = f"[{dict(self.kwargs)['output']}]" if t.outputs else ""
            return f"{self.op}({', '.join([*map(str, self.args), *kws])}){pick}"
        return OPS[self.op].render([str(a) for a in self.args])


Node = Num | Name | Apply


def _kw_text(v: KwValue) -> str:
    if isinstance(v, str):
        return f'"{v}"'
    if isinstance(v, tuple):
        return "[" + ", ".join(map(str, v)) + "]"
    return repr(float(v)) if isinstance(v, Fraction) else str(v)


@dataclass(frozen=True)
class Program:
    """A parsed expression: named intermediates in order, then the output.

    ``inputs`` are the free names in order of first use; ``intermediates`` the assigned names.
    """

    source: str
    # A program is identified by its text: equal texts are the same program, and neither hashing nor
    # comparing walks the tree (which may be thousands of nodes deep for a long flat sum).
    assignments: tuple[tuple[str, Node], ...] = field(compare=False)
    output: Node = field(compare=False)
    inputs: tuple[str, ...] = field(compare=False)
    input_cols: tuple[int, ...] = field(default=(), compare=False)  # where each input is first used

    def column_of(self, name: str) -> int | None:
        """The column where input ``name`` is first used."""
        if name in self.inputs and len(self.input_cols) == len(self.inputs):
            return self.input_cols[self.inputs.index(name)]
        return None

    @property
    def intermediates(self) -> tuple[str, ...]:
        return tuple(name for name, _ in self.assignments)

    def __str__(self) -> str:
        parts = [f"{n} = {e}" for n, e in self.assignments] + [str(self.output)]
        return "; ".join(parts)
