"""The one result model every runner, report and plugin reads."""

from __future__ import annotations

import math
import re
from collections import Counter
from dataclasses import dataclass
from enum import StrEnum

__all__ = ["COMPARED", "OVERFLOW_POLICY", "CheckResult", "Culprit", "CulpritKind", "ElementErrors", "Quantity", "Role", "Run",
           "Tolerance", "Verdict", "mode_skip_reason", "not_computed", "overflow_policy", "quantity_label", "skip_reason",
           "verdict_reason", "worst"]


class Verdict(StrEnum):
    PASS = "pass"
    FAIL = "fail"
    CONVENTION = "convention"  # an engine took another valid subgradient at a kink
    IMPRECISE = "imprecise"  # beyond what rounding allows the quantity, within a formula rebuilt from a rounded intermediate
    SKIP = "skip"
    XFAIL = "xfail"  # failed, and the case says it is expected to
    ERROR = "error"  # the check itself is invalid (a point outside an op's domain)

    def __str__(self) -> str:
        return self.value


class Role(StrEnum):
    """What a compared quantity is."""

    VALUE = "value"  # the output's value
    INPUT = "input"  # the gradient of an input
    INTERMEDIATE = "intermediate"  # the gradient of a named intermediate
    PROPERTY = "property"  # the engine against itself (linearity, chain rule, a training step)
    DERIVATIVE = "derivative"  # forward mode or higher order (jvp, hvp, jvp-of-jvp, a Jacobian, order N)

    def __str__(self) -> str:
        return self.value


class CulpritKind(StrEnum):
    """How an engine's gradient first goes wrong."""

    RULE = "rule"  # an op's derivative rule is wrong
    ACCUMULATION = "accumulation"  # an op assigns its gradient where it should add to it
    TRAVERSAL = "traversal"  # every rule is right alone: backward visits or sums nodes wrongly
    FORWARD = "forward"  # an op computes the wrong value
    NONDETERMINISM = "nondeterminism"  # two runs of the same graph disagree

    def __str__(self) -> str:
        return self.value


# A ``convention`` verdict is one of two things: another valid subgradient at a kink, or an engine that
# raised OverflowError where the exact value is beyond its float range and IEEE 754 gives inf. The
# second is an overflow policy, and its message starts with this so that reports can say so.
OVERFLOW_POLICY = "overflow policy"


def overflow_policy(result: CheckResult) -> bool:
    """Whether a ``convention`` verdict is an overflow policy (raised where IEEE 754 gives inf), not a kink."""
    return result.verdict is Verdict.CONVENTION and result.message.startswith(OVERFLOW_POLICY)


_SEVERITY = [Verdict.PASS, Verdict.SKIP, Verdict.XFAIL, Verdict.CONVENTION, Verdict.IMPRECISE, Verdict.FAIL, Verdict.ERROR]


COMPARED: frozenset[Verdict] = frozenset({Verdict.PASS, Verdict.FAIL, Verdict.CONVENTION, Verdict.IMPRECISE, Verdict.XFAIL})
_NUMBER = re.compile(r"(?<![\w.])[-+]?(?:\d+\.?\d*|\.\d+)(?:e[-+]?\d+)?")


def worst(verdicts: list[Verdict] | tuple[Verdict, ...]) -> Verdict:
    return max(verdicts, key=_SEVERITY.index, default=Verdict.PASS)


@dataclass(frozen=True)
class Tolerance:
    """A check passes when ``|engine - exact| <= atol + rtol * |exact|`` (plus the rounding allowance
    of the engine's precision, :mod:`gradspec.reference.rounding`).

    ``atol`` defaults to 0, so a tiny value is judged relatively: tanh(1e-12) off by 2e-5 of itself
    fails. What rounding legitimately does near zero (cancellation, an input that is not a float) is
    the rounding allowance's to allow, point by point, not a blanket absolute tolerance's; an exact
    zero must come out zero or within that allowance. ``h`` is the numerical reference's step (scaled
    by ``max(1, |x|)``). ``nondet`` is how far two runs of the
    same check on the same engine may differ: None (the default) judges the difference against
    rounding (:mod:`gradspec.checks.nondet`), 0 asks for bitwise agreement, anything else is an
    explicit absolute bound.
    """

    rtol: float = 1e-7
    atol: float = 0.0
    h: float = 1e-4
    nondet: float | None = None

    def bound(self, exact: float) -> float:
        return self.atol + self.rtol * abs(exact) if math.isfinite(exact) else 0.0


@dataclass(frozen=True)
class ElementErrors:
    """A failing tensor quantity's relative error per element, as a 2-D grid: what the HTML report's
    heat map draws, carried here so that no report has to re-run the check.

    ``shape`` is the quantity's own shape (a Jacobian's: the output's axes, then the input's); its first
    ``rows`` axes index the grid's rows, the others its columns, so a Jacobian of a matrix-valued output
    is drawn output element by input element.
    """

    shape: tuple[int, ...]
    rows: int
    errors: tuple[float, ...]  # |engine - exact| / max(|engine|, |exact|, 1e-8), row-major; inf where nan
    over: tuple[bool, ...]  # per element: whether it is over its tolerance

    @property
    def grid(self) -> tuple[int, int]:
        """(rows, columns) of the grid."""
        return math.prod(self.shape[:self.rows]), math.prod(self.shape[self.rows:])


@dataclass(frozen=True)
class Quantity:
    """One compared number: the output value, or the gradient of one input or intermediate."""

    name: str  # "value", or the input or intermediate it is the gradient of
    role: Role
    engine: float | None
    exact: float | None
    numerical: float | None
    abs_error: float | None
    rel_error: float | None  # the classic |a - b| / max(|a|, |b|, 1e-8)
    tolerance: float | None
    verdict: Verdict
    exact_text: str = ""  # the exact value to 30 significant digits
    symbolic: str = ""  # the derivative as SymPy writes it
    note: str = ""
    index: tuple[int, ...] | None = None  # tensor quantities: the worst element's index
    elements: ElementErrors | None = None  # failing tensor quantities that map onto a grid: every element's error


@dataclass(frozen=True)
class Culprit:
    """Where an engine's gradient first goes wrong, and why."""

    op: str  # an op-table name, or "backward" for traversal and accumulation bugs
    kind: CulpritKind
    node: str  # the node whose gradient (or value) is first wrong
    argument: str = ""  # which input of the op: "left", "right", "x"
    exact: float | None = None
    engine: float | None = None
    message: str = ""

    def as_dict(self) -> dict[str, object]:
        return {"op": self.op, "kind": self.kind, "node": self.node, "argument": self.argument,
                "exact": self.exact, "engine": self.engine, "message": self.message}


@dataclass(frozen=True)
class CheckResult:
    """One expression checked on one engine at one point."""

    expression: str
    point: dict[str, float]
    engine: str
    verdict: Verdict
    quantities: tuple[Quantity, ...] = ()
    message: str = ""
    kinks: tuple[str, ...] = ()
    case_id: str = ""
    path: str = ""
    line: int = 0
    kind: str = "gradient"
    step_errors: tuple[tuple[int, float], ...] = ()  # (log10 h, central-difference error) for step_input
    step_input: str = ""  # the input whose gradient the step-size series is of
    culprit: Culprit | None = None  # where a failing engine first goes wrong
    shrunk: str = ""  # the smallest failing sub-expression, as a ready-to-paste YAML case
    # The exact reference in ball arithmetic certifies itself: the largest radius of any of its values
    # relative to the value's magnitude. None where the reference is not computed in balls.
    radius: float | None = None
    inputs: str = ""  # a tensor or function check's inputs and their shapes: "x[3, 4], w[4]"

    @property
    def ok(self) -> bool:
        return self.verdict in (Verdict.PASS, Verdict.CONVENTION, Verdict.IMPRECISE, Verdict.SKIP, Verdict.XFAIL)

    @property
    def point_text(self) -> str:
        """``x=2,y=3``; for a tensor or function check, its inputs' shapes (``x[3, 4]``)."""
        return ",".join(f"{k}={v:g}" for k, v in self.point.items()) or self.inputs

    def failures(self) -> list[Quantity]:
        return [q for q in self.quantities if q.verdict in (Verdict.FAIL, Verdict.CONVENTION, Verdict.IMPRECISE)]

    def table(self) -> str:
        """The comparison as a small plain-text table."""
        at = f"  at {self.point_text}" if self.point_text else ""
        head = f"{self.verdict.value.upper()}  {self.expression}{at}  on {self.engine}"
        lines = [head]
        if self.message:
            lines.append(f"  {self.message}")
        if self.kinks:
            lines.append(f"  at a kink: {', '.join(self.kinks)}")
        if self.quantities:
            rows = [("", "engine", "exact", "numerical", "abs err", "rel err", "tol", "verdict")]
            for q in self.quantities:
                label = _label(q)
                rows.append((label, _num(q.engine), _num(q.exact), _num(q.numerical), _num(q.abs_error, 2),
                             _num(q.rel_error, 2), _num(q.tolerance, 2), q.verdict.value))
            widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
            for r in rows:
                lines.append("  " + "  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip())
            for q in self.quantities:
                if q.symbolic and q.verdict is not Verdict.PASS:
                    lines.append(f"  {_label(q)} = {q.symbolic}")
                if q.note:
                    lines.append(f"  {q.name}: {q.note}")
        if self.culprit is not None:
            lines.append(f"  culprit: {self.culprit.message}")
        if self.shrunk:
            lines.append("  smallest failing case:")
            lines.extend(f"    {line}" for line in self.shrunk.splitlines())
        return "\n".join(lines)


def quantity_label(q: Quantity) -> str:
    """``value``, ``d/dx`` for a gradient (``float32: d/dx (vjp0)`` for a function case's float32 run),
    or the property's or derivative's own name."""
    return _label(q)


_DTYPE = re.compile(r"^(float\d+: )")  # a function case run in several dtypes prefixes its quantities


def _label(q: Quantity) -> str:
    if q.role == "value":
        return q.name  # "value", or "value via __abs__" for a second spelling
    if q.role in ("property", "derivative"):
        return q.name
    return _DTYPE.sub(r"\1d/d", q.name) if _DTYPE.match(q.name) else f"d/d{q.name}"  # float32: d/dx (vjp0)


def _num(x: float | None, digits: int = 10) -> str:
    if x is None:
        return "-"
    return f"{x:.{digits}g}"


@dataclass(frozen=True)
class Run:
    """Everything one ``gradspec run`` produced: what every report renders."""

    results: tuple[CheckResult, ...]
    engines: tuple[str, ...]
    files: tuple[str, ...]
    errors: tuple[str, ...] = ()  # invalid input, each ``path:line:col: message``
    seconds: float = 0.0
    version: str = ""
    strict: bool = False  # ``--strict``: an imprecise quantity fails the run

    def counts(self, engine: str | None = None, path: str | None = None) -> dict[Verdict, int]:
        out = dict.fromkeys(Verdict, 0)
        for r in self.results:
            if (engine is None or r.engine == engine) and (path is None or r.path == path):
                out[r.verdict] += 1
        return out

    def skips(self) -> list[tuple[str, int]]:
        """Skipped checks by reason, the commonest first."""
        counts = Counter(skip_reason(r) for r in self.results if r.verdict is Verdict.SKIP)
        return sorted(counts.items(), key=lambda item: (-item[1], item[0]))

    def mode_skips(self) -> list[tuple[str, int]]:
        """The modes cases asked for that their engine cannot compute (a skipped jvp, hvp or order N
        inside a check that compared its gradients), by reason, the commonest first: one per check."""
        counts = Counter(mode_skip_reason(q) for r in self.results if r.verdict is not Verdict.SKIP
                         for q in r.quantities if not_computed(q))
        return sorted(counts.items(), key=lambda item: (-item[1], item[0]))

    def reasons(self, verdict: Verdict) -> list[tuple[str, int]]:
        """The checks of one verdict (convention, xfail) by reason, the commonest first, as :meth:`skips`."""
        counts = Counter(verdict_reason(r, verdict) for r in self.results if r.verdict is verdict)
        return sorted(counts.items(), key=lambda item: (-item[1], item[0]))

    @property
    def complete(self) -> bool:
        """Whether everything asked was compared: no check skipped, no mode left uncomputed."""
        return not any(r.verdict is Verdict.SKIP for r in self.results) and not self.mode_skips()

    def idle_engines(self) -> list[str]:
        """Engines of the run that compared nothing: every check of theirs skipped (or there were none)."""
        compared = {r.engine for r in self.results if r.verdict in COMPARED}
        # a function case run in another dtype than its engine's compares for that engine (torch's case in
        # float32 reports as torch:float32 in a run of torch)
        compared |= {without_dtype(c) for c in compared if c not in self.engines}
        return [e for e in self.engines if e not in compared]

    @property
    def exit_code(self) -> int:
        """0 all passed, 1 a check failed (or was imprecise under ``strict``) or an engine compared
        nothing, 2 invalid input. Like a convention difference, ``imprecise`` alone leaves it 0."""
        if self.errors or any(r.verdict is Verdict.ERROR for r in self.results):
            return 2
        failing = (Verdict.FAIL, Verdict.IMPRECISE) if self.strict else (Verdict.FAIL,)
        return 1 if any(r.verdict in failing for r in self.results) or self.idle_engines() else 0


def skip_reason(result: CheckResult) -> str:
    """Why a check was skipped, in words shared by every check skipped for that reason: the engine's
    own detail (after the first ``": "``) and the numbers are left out, so reasons can be counted."""
    return verdict_reason(result, Verdict.SKIP)


def verdict_reason(result: CheckResult, verdict: Verdict) -> str:
    """Why a check has ``verdict`` (skip, convention, xfail), in words shared by every check with it for
    that reason, as :func:`skip_reason`; an xfail's reason is the case's own."""
    note = next((q.note for q in result.quantities if q.verdict is verdict and q.note), "")
    # a tensor check's message is its header (inputs, seeds): a convention's reason is its quantity's note
    text = note if verdict is Verdict.CONVENTION and note else result.message or note
    if verdict is Verdict.XFAIL:
        return text.removeprefix("expected failure: ") or "no reason given"
    if verdict is Verdict.CONVENTION:  # the detail in parentheses (which quantities, the engine's words) varies
        return text.split(" (", 1)[0].split(": ", 1)[0].strip() or "no reason given"
    head = text.split(": ", 1)[0] if not text.startswith("case is only for") else text
    return _NUMBER.sub("N", head).strip() or "no reason given"


# Mode quantities gradspec itself leaves unjudged, whatever the engine (checks/modes.py): at a kink, where
# forward-mode and higher derivatives are not defined; past the Jacobian size limit; without an exact
# reference. The others are modes the engine cannot compute (a capability it lacks, or refused).
_NOT_JUDGED = ("at a kink", "the Jacobian has", "no exact reference")


def not_computed(q: Quantity) -> bool:
    """Whether ``q`` is a mode the case asked for that the engine cannot compute (a counted skip)."""
    return q.role is Role.DERIVATIVE and q.verdict is Verdict.SKIP and not q.note.startswith(_NOT_JUDGED)


def mode_skip_reason(q: Quantity) -> str:
    """A skipped mode quantity as it is counted: the mode, then why the engine cannot compute it."""
    return f"{q.name}: {q.note or 'no reason given'}"


def without_dtype(engine: str) -> str:
    """An engine's name without its dtype option: ``torch:float32`` -> ``torch``."""
    return ":".join(p for p in engine.split(":") if p not in ("float32", "float64"))
