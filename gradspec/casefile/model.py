"""What a case is: the frozen, validated objects every other module works with, and where files live.

:mod:`gradspec.casefile.loader` is the only place these are made from YAML; the runner, the reports and the
pytest plugin only read them.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from fractions import Fraction
from pathlib import Path
from typing import Any, Protocol

from gradspec.errors import CaseFileError, ExpressionError
from gradspec.graph.ir import Graph
from gradspec.graph.tensor import TensorGraph
from gradspec.lang.expr import Program
from gradspec.modes import Mode
from gradspec.results import Tolerance

__all__ = ["SUFFIXES", "Bounds", "Case", "CaseFile", "ChainRule", "Expect", "FunctionSpec", "Linearity", "Point", "Reader",
           "TensorPoint", "TensorSpec", "Training", "data_dir", "discover"]

SUFFIXES = (".gradspec.yaml", ".gradspec.yml")


def data_dir(name: str) -> Path:
    """A data folder shipped with gradspec (``cases``, ``schemas``): in the wheel, or in a checkout."""
    package = Path(__file__).resolve().parent.parent  # gradspec/
    for candidate in (package / name, package.parent / name):
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError(name)


# -- the frozen objects -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Point:
    values: tuple[tuple[str, Fraction], ...]
    line: int = 0

    def exact(self) -> dict[str, Fraction]:
        return dict(self.values)

    def floats(self) -> dict[str, float]:
        return {k: float(v) for k, v in self.values}

    @property
    def label(self) -> str:
        return ",".join(f"{k}={float(v):g}" for k, v in self.values)


@dataclass(frozen=True)
class TensorPoint:
    """One draw (or listed point) of a tensor case: each input's shape and its elements, row-major."""

    values: tuple[tuple[str, tuple[int, ...], tuple[Fraction, ...]], ...]
    line: int = 0
    seed: int = 0  # seeds this draw's cotangents

    def arrays(self) -> dict[str, Any]:
        """Input -> NumPy object array of Fractions."""
        import numpy as np  # only tensor cases need NumPy; importing it starts BLAS threads

        out = {}
        for name, shape, flat in self.values:
            arr = np.empty(len(flat), dtype=object)
            arr[:] = list(flat)
            out[name] = arr.reshape(shape)
        return out

    def floats(self) -> dict[str, float]:
        return {}

    @property
    def label(self) -> str:
        return ",".join(f"{n}={'x'.join(map(str, s)) or 'scalar'}" for n, s, _ in self.values)


@dataclass(frozen=True)
class TensorSpec:
    graph: TensorGraph
    points: tuple[TensorPoint, ...] = ()


@dataclass(frozen=True)
class FunctionSpec(TensorSpec):
    """A function case: the reference graph, its points, and the function under test per engine."""

    functions: tuple[tuple[str, str], ...] = ()  # (engine family, "module:attribute")
    dtypes: tuple[str, ...] = ("float64",)
    base: str = "."  # the directory the modules are imported from


@dataclass(frozen=True)
class Bounds:
    """Where a sampled variable lives: an interval, minus its exclusions."""

    name: str
    low: float
    high: float
    exclude: tuple[tuple[float, float], ...] = ()

    def allows(self, v: float) -> bool:
        return self.low <= v <= self.high and not any(lo <= v <= hi for lo, hi in self.exclude)


@dataclass(frozen=True)
class Expect:
    value: float | None = None
    grad: tuple[tuple[str, float], ...] = ()
    finite: bool = False
    error: str | None = None
    ieee: bool = False  # an overflow must give inf; raising OverflowError is then a failure


@dataclass(frozen=True)
class Linearity:
    f: Graph
    g: Graph


@dataclass(frozen=True)
class ChainRule:
    inner: Graph
    via: str


@dataclass(frozen=True)
class Training:
    sizes: tuple[int, ...]
    activation: str
    seed: int
    x: tuple[tuple[float, ...], ...]
    y: tuple[float, ...]
    steps: int
    lr: float
    loss_ratio: float


@dataclass(frozen=True)
class Case:
    """One validated case, ready to run on any engine."""

    id: str
    kind: str
    path: str
    line: int
    description: str = ""
    graph: Graph | None = None  # what the engine builds (linearity: a*f + b*g; chain-rule: outer(inner))
    points: tuple[Point | TensorPoint, ...] = ()  # TensorPoints for a tensor case
    tolerance: Tolerance = field(default_factory=Tolerance)
    expect: Expect = field(default_factory=Expect)
    kink: str | None = None
    tags: tuple[str, ...] = ()
    skip: str | None = None
    xfail: str | None = None
    precision: str = "default"  # "strict": an imprecise check of the case fails
    engines: tuple[str, ...] = ()
    sampled: bool = False  # points drawn from a sampled domain rather than listed
    domain: tuple[Bounds, ...] = ()  # for sampled cases: where each variable may be drawn
    modes: tuple[Mode, ...] | None = None  # the case's `check:` list (None: the default of gradspec.modes)
    order: int = 1  # nested derivatives up to this order
    spec: object = None  # the kind's own frozen spec (Linearity, ChainRule, Training, TensorSpec), read by its run

    @property
    def expression(self) -> str:
        if isinstance(self.spec, TensorSpec):
            return self.spec.graph.program.source
        return self.graph.program.source if self.graph else ""


class Reader(Protocol):
    """What a kind's loader may ask of the case being read: its raw mapping, and located parsing."""

    raw: dict[str, Any]
    id: str
    defaults: Mapping[str, Any]

    def line(self, key: tuple[Hashable, ...]) -> int:
        """The file line of a key path inside the case."""
        ...

    def fail(self, message: str, *key: Hashable, is_key: bool = False) -> CaseFileError: ...

    def parse(self, key: str) -> Program: ...

    def single(self, key: str) -> Program: ...

    def layout(self, key: str, program: Program, names: list[str]) -> Graph: ...

    def expression_error(self, exc: ExpressionError, key: str) -> CaseFileError: ...


@dataclass(frozen=True)
class CaseFile:
    path: str
    description: str
    cases: tuple[Case, ...]

    def with_overrides(self, overrides: Overrides | None) -> CaseFile:
        """The file with the command line's overrides applied to every case that takes them."""
        if overrides is None or overrides == Overrides():
            return self
        cases = []
        for c in self.cases:
            if overrides.nondet is not None:
                c = replace(c, tolerance=replace(c.tolerance, nondet=overrides.nondet))
            if c.kind in MODAL and overrides.modes is not None:
                c = replace(c, modes=overrides.modes)
            if c.kind in MODAL and overrides.order is not None:
                c = replace(c, order=overrides.order)
            cases.append(c)
        return replace(self, cases=tuple(cases))


#: The kinds that take `check:` and `order:` (they compare an engine's derivatives of one function).
MODAL = frozenset({"gradient", "stationary", "tensor", "function"})


@dataclass(frozen=True)
class Overrides:
    """What the command line sets for every case: ``--nondet-tol`` (``--deterministic`` is 0), ``--check`` and ``--order`` (None: as
    each case says). Plain data, so a worker process applies it again to the files it loads."""

    nondet: float | None = None
    modes: tuple[Mode, ...] | None = None
    order: int | None = None


# -- discovery ------------------------------------------------------------------------------------------


def is_case_file(path: Path, suffixes: Iterable[str] = SUFFIXES) -> bool:
    return path.is_file() and any(path.name.endswith(s) for s in suffixes)


def discover(paths: Iterable[str | Path], suffixes: Iterable[str] = SUFFIXES) -> list[Path]:
    """Case files named by ``paths`` (files as given; directories searched recursively), sorted."""
    suffixes = tuple(suffixes)
    found: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            found.extend(sorted(f for f in p.rglob("*") if is_case_file(f, suffixes)))
        else:
            found.append(p)
    return found
