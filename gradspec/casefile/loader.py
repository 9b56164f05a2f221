"""Case files: the boundary where YAML becomes frozen, validated :class:`Case` objects.

Loading a file runs three passes and reports every error of the file at once, each as
``path:line:col: message``: YAML (safe, marked: :mod:`gradspec.casefile.source`), the JSON Schema in ``schemas/``,
and the meaning of each case (expressions parse, names are defined, points are inside every op's
domain, kinks are declared, and hand-written expectations agree with SymPy). Raw dicts never leave
this module; sampled inputs (:mod:`gradspec.casefile.sampling`) and training specs (:mod:`gradspec.checks.training`)
are read from them here. A file that once loaded without errors is remembered by its bytes
(:class:`gradspec.casefile.cache.DocumentCache`), and loading it again skips the YAML, the schema and the
exact checks.
"""

from __future__ import annotations

import copy
import json
import math
from collections.abc import Hashable, Iterable, Mapping
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
import mpmath
from jsonschema.exceptions import ValidationError, best_match, relevance

from gradspec.casefile import sampling as _sampling
from gradspec.casefile import tensors as _tensors
from gradspec.casefile.cache import DOCUMENTS
from gradspec.casefile.model import Case, CaseFile, Expect, Point, TensorSpec, data_dir
from gradspec.casefile.source import Document, load
from gradspec.checks.kinds import KINDS, CaseKind
from gradspec.errors import CaseFileError, DomainError, ExpressionError
from gradspec.graph.ir import Graph, build
from gradspec.lang.expr import Program, parse
from gradspec.lang.numbers import exact_number
from gradspec.modes import Mode
from gradspec.reference.exact import Exact
from gradspec.reference.store import exact
from gradspec.results import Tolerance

__all__ = ["errors_of", "load_file", "schema"]

@cache
def schema() -> dict[str, Any]:
    return json.loads((data_dir("schemas") / "case-file.schema.json").read_text(encoding="utf-8"))


def _validator() -> jsonschema.protocols.Validator:
    return _validator_for(tuple(KINDS))


@cache
def _validator_for(kinds: tuple[str, ...]) -> jsonschema.protocols.Validator:
    """The schema, with the kinds the kind table has (the file lists the same ones for editors)."""
    with_kinds = copy.deepcopy(schema())
    with_kinds["properties"]["cases"]["items"]["properties"]["kind"]["enum"] = list(kinds)
    return jsonschema.Draft202012Validator(with_kinds)


# -- loading --------------------------------------------------------------------------------------------


def load_file(path: str | Path) -> CaseFile:
    """Load and validate one case file; raises :class:`CaseFileError` whose ``errors`` lists them all."""
    name = str(path)
    try:
        raw = Path(path).read_bytes()
    except OSError as exc:
        raise _group(name, [CaseFileError(f"cannot read: {exc.strerror or exc}", path=name)]) from None
    doc = DOCUMENTS.get(name, raw)
    if doc is not None:
        try:
            return _Loader(doc, trusted=True).run()
        except Exception:  # a record that is not what it claims to be: load the long way
            pass
    try:
        doc = load(name, raw)
    except CaseFileError as exc:
        raise _group(name, [exc]) from None
    loaded = _Loader(doc).run()
    DOCUMENTS.put(raw, doc)
    return loaded


def _group(path: str, errors: list[CaseFileError]) -> CaseFileError:
    first = errors[0]
    group = CaseFileError(first.message, path=first.path or path, line=first.line, col=first.col, case_id=first.case_id)
    group.errors = tuple(errors)
    return group


def errors_of(exc: CaseFileError) -> tuple[CaseFileError, ...]:
    return exc.errors or (exc,)


class _Loader:
    """The schema and meaning passes over one document.

    A ``trusted`` document is one that already passed both, byte for byte, under the same schema and
    code (see :class:`gradspec.casefile.cache.DocumentCache`): only the cases are rebuilt.
    """

    def __init__(self, doc: Document, *, trusted: bool = False) -> None:
        self.doc = doc
        self.trusted = trusted
        self.errors: list[CaseFileError] = list(doc.duplicates)

    def run(self) -> CaseFile:
        doc = self.doc
        bad_cases = set() if self.trusted else self.schema_errors()
        data = doc.data
        if not isinstance(data, dict) or not isinstance(data.get("cases"), list):
            raise _group(doc.path, self.errors)
        defaults: dict[str, Any] = data["defaults"] if isinstance(data.get("defaults"), dict) else {}
        cases: list[Case] = []
        seen: dict[str, int] = {}
        for i, raw in enumerate(data["cases"]):
            if i in bad_cases or not isinstance(raw, dict):
                continue
            cid = raw["id"]
            if cid in seen:
                self.errors.append(doc.error(f"duplicate case id {cid!r} (first at line {seen[cid]})", ("cases", i, "id"),
                                             case_id=cid))
                continue
            seen[cid] = doc.mark(("cases", i)).line
            try:
                cases.append(_CaseLoader(doc, ("cases", i), raw, defaults, self.trusted).run())
            except CaseFileError as exc:
                self.errors.extend(errors_of(exc))
        if self.errors:
            raise _group(doc.path, self.errors)
        return CaseFile(doc.path, str(data.get("description", "")), tuple(cases))

    def schema_errors(self) -> set[int]:
        """Validate against the schema; returns the indices of cases with errors."""
        bad: set[int] = set()
        said = {str(e) for e in self.errors}
        errors = sorted(_validator().iter_errors(self.doc.data), key=relevance)
        for err in errors:
            err = _specific(err)
            path = tuple(err.absolute_path)
            if len(path) >= 2 and path[0] == "cases" and isinstance(path[1], int):
                bad.add(path[1])
            error = self._schema_error(err, path)
            if str(error) not in said:  # one tensor case's expect, however many of its values the schema refused
                said.add(str(error))
                self.errors.append(error)
        return bad

    def _schema_error(self, err: ValidationError, path: tuple[Hashable, ...]) -> CaseFileError:
        where = _dotted(path)
        case_id = _case_id(self.doc.data, path)
        if len(path) >= 3 and path[2] == "expect" and _tensor_at(self.doc.data, path):  # tensors in expect
            return self.doc.error("expect does not apply to a tensor case (the exact reference is the expectation)",
                                  path[:3], key=True, case_id=case_id)
        if err.validator == "additionalProperties" and isinstance(err.instance, dict):
            allowed = set(err.schema.get("properties", {})) if isinstance(err.schema, dict) else set()
            extra = [k for k in err.instance if k not in allowed]
            if extra:
                hint = _closest(str(extra[0]), allowed)
                message = f"unknown key {extra[0]!r}" + (f" in {where}" if where else "") + (f"; did you mean {hint!r}?" if hint else "")
                return self.doc.error(message, (*path, extra[0]), key=True, case_id=case_id)
        if err.validator == "required":
            return self.doc.error(f"{where or 'the file'}: {err.message}", path, case_id=case_id)
        return self.doc.error(f"{where}: {err.message}" if where else err.message, path, case_id=case_id)


def _specific(err: ValidationError) -> ValidationError:
    """The most specific error under an anyOf/oneOf failure (the deepest relevant one)."""
    return best_match([err]) or err


def _tensor_at(data: Any, path: tuple[Hashable, ...]) -> bool:
    """Whether the case at ``path`` (cases, i, ...) is a tensor case, as its loader will decide."""
    try:
        raw = data["cases"][path[1]]
    except (IndexError, TypeError, KeyError):
        return False
    return isinstance(raw, dict) and raw.get("kind", "gradient") in ("gradient", "tensor") and \
        _tensors.is_tensor_case(raw, _parsed(raw.get("expr")))


def _dotted(path: tuple[Hashable, ...]) -> str:
    out = ""
    for p in path:
        out += f"[{p}]" if isinstance(p, int) else (f".{p}" if out else str(p))
    return out


def _case_id(data: Any, path: tuple[Hashable, ...]) -> str | None:
    if len(path) >= 2 and path[0] == "cases" and isinstance(data, dict):
        try:
            cid = data["cases"][path[1]].get("id")
        except (IndexError, TypeError, AttributeError, KeyError):
            return None
        return cid if isinstance(cid, str) else None
    return None


def _closest(word: str, options: Iterable[str]) -> str | None:
    import difflib

    match = difflib.get_close_matches(word, list(options), n=1)
    return match[0] if match else None


# -- one case -------------------------------------------------------------------------------------------


class _CaseLoader:
    def __init__(self, doc: Document, path: tuple[Hashable, ...], raw: dict[str, Any], defaults: Mapping[str, Any],
                 trusted: bool = False) -> None:
        self.doc = doc
        self.trusted = trusted
        self.path = path
        self.raw = raw
        self.defaults = defaults
        self.id: str = raw["id"]
        self.kind: str = raw.get("kind", CaseKind.GRADIENT)
        if self.kind == CaseKind.GRADIENT and _tensors.is_tensor_case(raw, _parsed(raw.get("expr"))):
            self.kind = CaseKind.TENSOR  # inputs with shapes, nested lists or tensor ops: a tensor case
        self.errors: list[CaseFileError] = []

    def line(self, key: tuple[Hashable, ...]) -> int:
        return self.doc.mark((*self.path, *key)).line

    def fail(self, message: str, *key: Hashable, is_key: bool = False) -> CaseFileError:
        return self.doc.error(message, (*self.path, *key), key=is_key, case_id=self.id)

    def run(self) -> Case:
        raw, kind, row = self.raw, self.kind, KINDS[self.kind]
        for key in sorted(set().union(*(k.keys for k in KINDS.values())) - row.keys):
            if key in raw:
                self.errors.append(self.fail(f"{key!r} does not apply to a {kind} case", key, is_key=True))
        if raw.get("deterministic") and "nondet_tol" in raw:
            self.errors.append(self.fail("give `deterministic: true` (bitwise agreement) or `nondet_tol` (a bound), "
                                         "not both", "deterministic", is_key=True))
        for key in row.required:
            if key not in raw:
                self.errors.append(self.fail(f"a {kind} case needs {key!r}"))
        has_points = "at" in raw or "sample" in raw
        if row.points:
            if "at" in raw and "sample" in raw:
                self.errors.append(self.fail("give the inputs as `at` or as `sample`, not both", "sample", is_key=True))
            elif not has_points:
                self.errors.append(self.fail(f"a {kind} case needs inputs: `at` (points) or `sample` (a sampled domain)"))
        elif has_points:
            key = "at" if "at" in raw else "sample"
            self.errors.append(self.fail(f"{key!r} does not apply to a {kind} case", key, is_key=True))
        if self.errors:
            raise _group(self.doc.path, self.errors)
        tol = self.tolerance()
        common: dict[str, Any] = {
            "id": self.id, "kind": kind, "path": self.doc.path, "line": self.doc.mark(self.path).line,
            "description": str(raw.get("description", "")), "tolerance": tol,
            "tags": tuple(dict.fromkeys([*self.defaults.get("tags", []), *raw.get("tags", [])])),
            "skip": raw.get("skip"), "xfail": raw.get("xfail"), "precision": str(raw.get("precision", "default")),
            "engines": tuple(raw.get("engines", self.defaults.get("engines", []))),
            "modes": tuple(Mode(m) for m in raw["check"]) if "check" in raw else None,
            "order": int(raw.get("order", 1)),
        }
        if kind == CaseKind.FUNCTION and "engines" not in raw:
            common["engines"] = tuple(raw["function"])  # a function case runs where it has a function
        if kind in (CaseKind.TENSOR, CaseKind.FUNCTION):
            return self.tensor(common)
        if not row.points:
            graph, spec = row.load(self, [])
            return Case(**common, graph=graph, spec=spec)
        points = self.points()
        names = list(dict.fromkeys(n for p in points for n, _ in p.values))
        graph, spec = row.load(self, names)
        expect = self.expect()
        case = Case(**common, graph=graph, points=points, expect=expect, kink=raw.get("kink"), spec=spec,
                    sampled="sample" in raw,
                    domain=_sampling.domain(raw["sample"]) if "sample" in raw else ())
        if not self.trusted:
            self.check_points(case)
        if self.errors:
            raise _group(self.doc.path, self.errors)
        return case

    def tensor(self, common: dict[str, Any]) -> Case:
        """A tensor case (its row's loader reads points and shapes), with every point inside every op's
        domain, or on a declared kink."""
        _, spec = KINDS[self.kind].load(self, [])
        assert isinstance(spec, TensorSpec)
        case = Case(**common, points=spec.points, kink=self.raw.get("kink"), spec=spec, sampled="sample" in self.raw)
        problem = None if self.trusted else _tensors.check_points(spec, self.raw, self.fail)
        if problem is not None:
            raise _group(self.doc.path, [problem])
        return case

    def tolerance(self) -> Tolerance:
        merged = {**self.defaults.get("tolerance", {}), **self.raw.get("tolerance", {})}
        return Tolerance(**{k: float(v) for k, v in merged.items()},
                         nondet=_nondet(self.raw) if {"nondet_tol", "deterministic"} & self.raw.keys()
                         else _nondet(self.defaults))

    # -- expressions --------------------------------------------------------------------------------
    def parse(self, key: str) -> Program:
        text = self.raw[key]
        try:
            return parse(text)
        except ExpressionError as exc:
            raise self.expression_error(exc, key) from None

    def expression_error(self, exc: ExpressionError, key: str) -> CaseFileError:
        """Move an error's column inside the expression onto the file's own line and column."""
        line, col = self.doc.position((*self.path, key), (exc.expr_col or 1) - 1)
        return CaseFileError(f"{key}: {exc.message}", path=self.doc.path, line=line, col=col, case_id=self.id)

    def single(self, key: str) -> Program:
        prog = self.parse(key)
        if prog.assignments:
            raise self.fail(f"{key} must be a single expression, without assignments", key)
        return prog

    def layout(self, key: str, program: Program, names: list[str]) -> Graph:
        missing = [n for n in program.inputs if n not in names]
        if missing:
            col = program.column_of(missing[0])
            exc = ExpressionError(f"undefined variable {missing[0]!r} (inputs: {', '.join(names) or 'none'})", col=col)
            raise self.expression_error(exc, key)
        try:
            return build(program, tuple(n for n in names if n not in program.inputs and n not in program.intermediates))
        except ExpressionError as exc:
            raise self.expression_error(exc, key) from None

    # -- inputs -------------------------------------------------------------------------------------
    def points(self) -> tuple[Point, ...]:
        if "sample" in self.raw:
            line = self.doc.mark((*self.path, "sample")).line
            return _sampling.points(self.raw["sample"], self.id, self.defaults.get("seed", 0), line, self.fail)
        at = self.raw["at"]
        items = [at] if isinstance(at, dict) else at
        key_path = ("at",) if isinstance(at, dict) else None
        out = []
        names: tuple[str, ...] | None = None
        for i, item in enumerate(items):
            where = key_path or ("at", i)
            values = []
            for name, v in item.items():
                if isinstance(v, float) and not math.isfinite(v):
                    raise self.fail(f"input {name} is {v}; inputs must be finite numbers", *where, name)
                values.append((name, exact_number(v)))
            if names is not None and tuple(sorted(item)) != names:
                raise self.fail("every point must give the same variables", *where)
            names = tuple(sorted(item))
            out.append(Point(tuple(values), self.doc.mark((*self.path, *where)).line))
        return tuple(out)

    def expect(self) -> Expect:
        e = self.raw.get("expect", {})
        if e.get("error") and ({"value", "grad"} & set(e) or e.get("finite")):
            raise self.fail("expect.error cannot be combined with value, grad or finite", "expect", "error")
        return Expect(
            value=_special(e["value"]) if "value" in e else None,
            grad=tuple((k, _special(v)) for k, v in e.get("grad", {}).items()),
            finite=bool(e.get("finite", False)),
            error=e.get("error"),
            ieee=bool(e.get("ieee", False)),
        )

    # -- meaning: every fixed point against the exact reference ---------------------------------------
    def check_points(self, case: Case) -> None:
        assert case.graph is not None
        names = case.graph.names
        for name, _ in case.expect.grad:
            if name not in names:
                self.errors.append(self.fail(f"expect.grad names {name!r}, which is neither an input nor an intermediate",
                                             "expect", "grad", name, is_key=True))
        sampled = "sample" in self.raw
        for i, point in enumerate(case.points):
            assert isinstance(point, Point)  # tensor cases are checked in tensor()
            where = ("sample",) if sampled else (("at",) if isinstance(self.raw["at"], dict) else ("at", i))
            try:
                ref = exact(case.graph, point.exact())
            except DomainError as exc:
                if case.expect.error == "domain":
                    continue
                hint = "; narrow the sampled range or add an exclusion" if sampled else ""
                self.errors.append(self.fail(f"point {point.label} is outside the domain: {exc.message}{hint}", *where))
                if len(self.errors) > 20:
                    return
                continue
            if case.expect.error == "domain":
                self.errors.append(self.fail(f"expect.error is 'domain' but point {point.label} is inside every op's domain",
                                             "expect", "error"))
                continue
            if ref.kinks and case.kink is None:
                self.errors.append(self.fail(
                    f"point {point.label} lies on a kink ({', '.join(k.where for k in ref.kinks)}); declare "
                    "`kink: convention` or `kink: any`", *where))
            self.check_expect(case, point, ref)
            check_point = KINDS[case.kind].check_point
            if check_point is not None:
                self.errors.extend(self.fail(problem, *where) for problem in check_point(case, point, ref))

    def check_expect(self, case: Case, point: Point, ref: Exact) -> None:
        tol = case.tolerance
        checks: list[tuple[tuple[Hashable, ...], str, float, Any]] = []
        if case.expect.value is not None:
            checks.append((("expect", "value"), "value", case.expect.value, ref.value))
        for name, want in case.expect.grad:
            if name in ref.grads:
                checks.append((("expect", "grad", name), f"d/d{name}", want, ref.grads[name]))
        for key, label, want, got in checks:
            exact_f = float(got)
            if (math.isnan(want) and math.isnan(exact_f)) or want == exact_f:
                continue
            if math.isfinite(want) and math.isfinite(exact_f) and abs(want - exact_f) <= tol.bound(exact_f):
                continue
            if ref.kinks and label != "value" and case.kink:
                lo, hi = (float(v) for v in ref.subgradients.get(label[3:], (got, got)))
                if lo - tol.bound(lo) <= want <= hi + tol.bound(hi):
                    continue  # a declared convention: any subgradient may be the expected one
            self.errors.append(self.fail(
                f"{'.'.join(map(str, key))} = {want:g} contradicts the exact {label} = {mpmath.nstr(got, 17)} at {point.label}",
                *key))


def _parsed(text: Any) -> Program | None:
    """The expression when it parses (its errors are reported, located, where the case is read)."""
    try:
        return parse(text) if isinstance(text, str) else None
    except ExpressionError:
        return None


def _special(v: Any) -> float:
    return float(v) if not isinstance(v, str) else {"nan": math.nan, "inf": math.inf, "-inf": -math.inf}[v]


def _nondet(keys: Mapping[str, Any]) -> float | None:
    """How far two runs may differ, from one mapping's ``nondet_tol`` and ``deterministic`` (the schema
    lets a mapping hold only one): None judges the difference against rounding, 0 is bitwise."""
    if keys.get("deterministic"):
        return 0.0
    return None if keys.get("nondet_tol") is None else float(keys["nondet_tol"])
