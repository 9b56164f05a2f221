"""PyTorch's own OpInfo samples judged exactly: ``gradspec opinfo``.

torch tests its derivatives with OpInfo (``torch.testing._internal.common_methods_invocations.op_db``):
each entry gives sample inputs and the modes torch claims for the op (``supports_autograd``,
``supports_forward_ad``, ``supports_gradgrad``, ``supports_fwgrad_bwgrad``), and torch's suite judges
them with finite differences. Here every sample of an entry the mapping table
(:mod:`gradspec.tools.opinfo_map`) covers becomes a tensor case in a generated case file, loaded by the
ordinary loader (so shapes, domains and kinks are validated as in a user's file: a sample outside a
domain or on a kink is skipped with the loader's reason), and run on the torch engine by the ordinary
runner in every mode the entry claims: vjp; jvp where it supports forward AD; hvp where it supports
gradgrad; jvp-of-jvp (forward over forward) where it supports forward over reverse.

The helpers import ``expecttest`` and more: they come with the ``gradspec[opinfo]`` extra.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gradspec.casefile.loader import errors_of, load_file
from gradspec.casefile.model import CaseFile
from gradspec.errors import CaseFileError, GradspecError
from gradspec.modes import Mode
from gradspec.ops.table import OPS, TENSOR_OPS
from gradspec.results import CheckResult, Verdict
from gradspec.tools.opinfo_map import NOT_COVERED, TABLE, Entry, Keyword

__all__ = ["CONDITIONS", "Converted", "Coverage", "MissingExtra", "Prepared", "claimed_modes", "convert",
           "coverage", "entry_name", "load_op_db", "prepare"]

_INSTALL = "pip install 'gradspec[opinfo]'"


class MissingExtra(GradspecError):
    """torch's OpInfo database cannot be imported: torch or its test helpers are not installed."""


def load_op_db() -> list[Any]:
    """torch's OpInfo entries (importing them takes seconds)."""
    try:
        from torch.testing._internal.common_methods_invocations import op_db
    except ImportError as exc:  # ModuleNotFoundError for torch, expecttest, ...
        missing = getattr(exc, "name", None) or str(exc)
        raise MissingExtra(f"opinfo needs torch's OpInfo test helpers, which import {missing!r}: {_INSTALL}") from None
    return list(op_db)


def entry_name(info: Any) -> str:
    """An OpInfo entry's name as its test names spell it: ``div.no_rounding_mode``."""
    return info.name + (f".{info.variant_test_name}" if info.variant_test_name else "")


def _has_row(op: str) -> bool:
    return op in TENSOR_OPS or op in OPS


@dataclass(frozen=True)
class Coverage:
    """The differentiable OpInfo entries: those covered (name, entry) and the others (name, reason)."""

    covered: tuple[tuple[str, Entry], ...]
    uncovered: tuple[tuple[str, str], ...]

    @property
    def total(self) -> int:
        return len(self.covered) + len(self.uncovered)


def coverage(op_db: Iterable[Any]) -> Coverage:
    covered, uncovered = [], []
    for info in op_db:
        if not info.supports_autograd:
            continue
        name = entry_name(info)
        entry = TABLE.get(name)
        if entry is None:
            uncovered.append((name, NOT_COVERED.get(name, "no gradspec op is this function")))
        elif not _has_row(entry.op):
            uncovered.append((name, f"gradspec has no row for {entry.op}"))
        elif _wrapper(info) != entry.wrapper:
            uncovered.append((name, f"OpInfo differentiates it through {_wrapper(info)}, which the table does not model"))
        else:
            covered.append((name, entry))
    return Coverage(tuple(covered), tuple(uncovered))


def _wrapper(info: Any) -> str:
    name = getattr(info.gradcheck_wrapper, "__name__", "")
    return "" if name == "<lambda>" else name  # OpInfo's default wrapper is a plain lambda


# -- modes -------------------------------------------------------------------------------------------------

# The claims each mode needs: value needs none; reverse mode supports_autograd; forward over forward both
# forward AD and its derivative (OpInfo has no flag of its own for it).
_CLAIMS = {Mode.VJP: ("supports_autograd",), Mode.JVP: ("supports_forward_ad",),
           Mode.JACOBIAN: ("supports_forward_ad",), Mode.HVP: ("supports_gradgrad",),
           Mode.JVP_OF_JVP: ("supports_forward_ad", "supports_fwgrad_bwgrad")}


def claimed_modes(info: Any, asked: Sequence[Mode] | None, order: int) -> tuple[list[Mode], int, list[str]]:
    """The modes to judge ``info``'s samples in (those asked for, else every one it claims), the order,
    and what was asked for but is not claimed (not judged: torch does not promise it)."""
    wanted = list(asked) if asked else [Mode.VALUE, Mode.VJP, Mode.JVP, Mode.HVP, Mode.JVP_OF_JVP]
    lacking = {m: [c for c in _CLAIMS.get(m, ()) if not getattr(info, c)] for m in wanted}
    kept = [m for m in wanted if not lacking[m]]
    dropped = [f"{m} (OpInfo's {' and '.join(lacking[m])} is False)" for m in wanted if lacking[m]] if asked else []
    if order >= 2 and not info.supports_gradgrad:
        dropped.append(f"order {order} (OpInfo's supports_gradgrad is False)")
        order = 1
    return kept, order, dropped


# -- one sample -------------------------------------------------------------------------------------------


def _last_two_axes(values: Mapping[str, Any]) -> str | None:
    n = values["input"].dim()
    dims = {d % n for d in (values.get("dim0", 0), values.get("dim1", 0))} if n else {-1}
    return None if n >= 2 and dims == {n - 2, n - 1} else "gradspec's transpose swaps the last two axes only"


def _last_axis_normalized(values: Mapping[str, Any]) -> str | None:
    shape, x = tuple(values.get("normalized_shape", ())), values["input"]
    if x.dim() and shape == (x.shape[-1],):
        return None
    return f"normalized_shape={shape}: gradspec normalises over the last axis only"


def _reduced_or_square(said: str, full: bool, x: Any) -> str | None:
    shape = list(x.shape)
    if not full or len(shape) < 2 or shape[-1] == shape[-2]:
        return None
    return f"{said} on a {shape} matrix: gradspec's svd is the reduced one, the same function only when square"


def _full_matrices(values: Mapping[str, Any]) -> str | None:
    """torch.linalg.svd's full_matrices, True by default."""
    full = values.get("full_matrices", True)
    return _reduced_or_square(f"full_matrices={full}", full, values["input"])


def _some(values: Mapping[str, Any]) -> str | None:
    """torch.svd's some, True (reduced) by default."""
    some = values.get("some", True)
    return _reduced_or_square(f"some={some}", not some, values["input"])


def _prelu_weight(values: Mapping[str, Any]) -> str | None:
    """torch's prelu applies a weight of C elements along axis 1 and keeps the input's shape; gradspec's
    broadcasts it against the trailing axes, as every binary op: the same function for one weight that adds
    no axis, or a [C] weight on an [N, C] input."""
    x, w = values["input"], values.get("weight")
    if w is None or not hasattr(w, "shape"):
        return None  # not a tensor: the operand check says why
    if (w.numel() == 1 and w.dim() <= x.dim()) or (x.dim() == 2 and list(w.shape) == [x.shape[1]]):
        return None
    return (f"weight {list(w.shape)} on an input {list(x.shape)}: torch applies a weight along axis 1 and keeps the "
            "input's shape, gradspec's prelu broadcasts it against the trailing axes")


#: Named conditions an entry may put on a sample (``when=``): None when the sample fits, else why not.
CONDITIONS: dict[str, Callable[[Mapping[str, Any]], str | None]] = {
    "last-two-axes": _last_two_axes,
    "last-axis-normalized": _last_axis_normalized,
    "reduced-or-square": _full_matrices,
    "some-or-square": _some,
    "prelu-weight": _prelu_weight,
}

_NAMES = ["x", "y", "z", "w", "v", "u", "s", "r", "q", "p"]


class _Skip(Exception):
    pass


@dataclass
class Converted:
    """One sample as case-file data (one case per judged output), or why it cannot be."""

    cases: list[dict[str, Any]] = field(default_factory=list)
    skipped: str = ""


def convert(name: str, entry: Entry, sample: Any, index: int, modes: Sequence[Mode], order: int = 1) -> Converted:
    """OpInfo ``sample`` (number ``index`` of entry ``name``) as tensor cases of gradspec's ``entry.op``."""
    try:
        return Converted(_cases(name, entry, sample, index, modes, order))
    except _Skip as exc:
        return Converted(skipped=str(exc))


def _cases(name: str, entry: Entry, sample: Any, index: int, modes: Sequence[Mode], order: int) -> list[dict[str, Any]]:
    if len(sample.args) > len(entry.params):
        raise _Skip(f"{len(sample.args)} positional arguments; the table names {len(entry.params)}")
    values: dict[str, Any] = {"input": sample.input, **dict(zip(entry.params, sample.args, strict=False))}
    for key, value in sample.kwargs.items():
        values[key] = value
    if entry.when and (why := CONDITIONS[entry.when](values)):
        raise _Skip(why)
    known = {k.name.partition(".")[0] for k in entry.keywords} | {o.lstrip("*") for o in entry.operands}
    for key, value in values.items():
        if key not in known:
            raise _Skip(f"{key}={_show(value)}: gradspec's {entry.op} has no such argument")
    at: dict[str, Any] = {}
    data: list[str] = []
    texts = _operands(entry, values, at, data)
    kw = _keywords(entry, values)
    if entry.form == "einsum":
        expr = f"einsum({json.dumps(str(values['equation']))}, {', '.join(texts.values())})"
    elif entry.form:
        expr = entry.form.format(**texts)
    else:
        expr = f"{entry.op}({', '.join([*texts.values(), *kw])})"
    check = [str(m) for m in modes]
    out = []
    for k in entry.outputs or (None,):
        case: dict[str, Any] = {"id": f"{name}-{index}" + ("" if k is None or len(entry.outputs) < 2 else f"-out{k}"),
                                "description": f"OpInfo {name}, sample {index}" + (f" ({sample.name})" if sample.name else ""),
                                "expr": expr if k is None else dict(entry.forms).get(k, "{out}").format(out=f"{expr}[{k}]"),
                                "at": at, "check": check}
        if data:
            case["data_inputs"] = data
        if order >= 2:
            case["order"] = order
        out.append(case)
    return out


def _operands(entry: Entry, values: Mapping[str, Any], at: dict[str, Any], data: list[str]) -> dict[str, str]:
    """The operands' texts by parameter name (an input's name, or a constant's literal); their values go
    to ``at`` and the names of data inputs to ``data``."""
    import torch

    scalar_op = entry.op not in TENSOR_OPS
    texts: dict[str, str] = {}
    absent = ""
    names = iter(_NAMES)
    for slot in entry.operands:
        spread = slot.startswith("*")
        slot = slot.lstrip("*")
        value = values.get(slot)
        items = list(value) if spread and isinstance(value, list | tuple) else [value]
        for i, item in enumerate(items):
            label = f"{slot}[{i}]" if spread else slot
            if item is None:
                absent = absent or label
                continue
            if absent:
                raise _Skip(f"{absent} is None but {label} is given")
            if isinstance(item, bool) or not isinstance(item, int | float | torch.Tensor):
                raise _Skip(f"{label} is {_show(item)}, not a tensor or a number")
            if not isinstance(item, torch.Tensor):
                if not scalar_op:
                    raise _Skip(f"{label} is a Python number; gradspec's {entry.op} takes a tensor there")
                if not math.isfinite(item):
                    raise _Skip(f"{label} is {item}")
                texts[label] = f"({_number(item)})" if item < 0 else _number(item)
                continue
            name = next(names)
            at[name] = _tensor(label, item, slot in entry.data)
            if slot in entry.data or not item.requires_grad:
                data.append(name)  # an operand torch does not differentiate is data here too
            texts[label] = f"({name} + transpose({name}))" if entry.wrap == "sym" and slot == "input" else name
    return texts


def _tensor(label: str, t: Any, is_data: bool) -> Any:
    import torch

    if t.numel() == 0:
        raise _Skip(f"{label} is a 0-size tensor (shape {list(t.shape)})")
    if t.is_complex():
        raise _Skip(f"{label} is a complex tensor")
    if not t.is_floating_point() and not is_data:
        raise _Skip(f"{label} is a {str(t.dtype).removeprefix('torch.')} tensor in a slot gradspec differentiates")
    values = t.detach().to(torch.int64 if t.dtype is torch.bool else t.dtype).tolist()
    if t.is_floating_point() and not bool(torch.isfinite(t).all()):
        raise _Skip(f"{label} has a non-finite element")
    return values


def _keywords(entry: Entry, values: Mapping[str, Any]) -> list[str]:
    row = TENSOR_OPS.get(entry.op) or OPS[entry.op]
    kinds = {k.name: k for k in row.keywords if not k.internal}
    out = []
    for spec in entry.keywords:
        base, _, attribute = spec.name.partition(".")
        if base not in values or spec.default == Keyword.ANY:
            continue
        value = values[base] if not attribute else tuple(getattr(values[base], attribute))
        if spec.default is not Keyword.NONE and _same(value, spec.default):
            continue  # torch's default: the row's own default means the same
        if spec.to is None:
            raise _Skip(f"{spec.name}={_show(value)}: gradspec's {entry.op} takes only {spec.name}={_show(spec.default)}")
        if value is None:
            continue
        keyword = kinds.get(spec.to)
        if keyword is None:
            raise _Skip(f"{spec.name}={_show(value)}: gradspec's {entry.op} has no keyword {spec.to}")
        out.append(f"{spec.to}={_keyword_text(entry.op, spec.name, keyword.kind, keyword.choices, value, spec.to)}")
    return out


def _keyword_text(op: str, name: str, kind: str, choices: Sequence[str], value: Any, to: str) -> str:
    """The keyword ``to``'s text for OpInfo's ``name=value``, as the row's keyword kind reads it."""
    import torch

    if isinstance(value, torch.Tensor):
        raise _Skip(f"{name} is a tensor; gradspec's {op} takes a {'number' if kind == 'number' else kind} there")
    if isinstance(value, bool):
        value = int(value)
    seq = list(value) if isinstance(value, list | tuple | torch.Size) else None
    if kind == "int":
        if seq is not None and (len(seq) == 1 or (seq and to != "axis" and len(set(seq)) == 1)):
            value = seq[0]
        if isinstance(value, int) and not isinstance(value, bool):
            return str(value)
        raise _Skip(f"{name}={_show(value)}: gradspec's {op} takes one integer")
    if kind == "ints":
        items = seq if seq is not None else [value]
        if all(isinstance(v, int) and not isinstance(v, bool) for v in items):
            return "[" + ", ".join(map(str, items)) + "]"
        raise _Skip(f"{name}={_show(value)}: gradspec's {op} takes a list of integers")
    if kind == "str":
        if isinstance(value, float) and math.isinf(value):
            value = "inf" if value > 0 else "-inf"  # a norm's order: the word, where the row takes it
        if isinstance(value, str) and (not choices or value in choices):
            return json.dumps(value)
        raise _Skip(f"{name}={_show(value)}: gradspec's {op} takes one of {', '.join(choices)}")
    if isinstance(value, int | float) and math.isfinite(value):
        return _number(value)
    raise _Skip(f"{name}={_show(value)}: gradspec's {op} takes a finite number")


def _same(value: Any, default: Any) -> bool:
    import torch

    if isinstance(value, torch.Tensor) or default is Keyword.NONE:
        return False  # a tensor is never a keyword's default here (and == would compare element-wise)
    if isinstance(value, list | tuple) and isinstance(default, list | tuple):
        return list(value) == list(default)
    return value is None if default is None else value is not None and bool(value == default)


def _number(x: int | float) -> str:
    return str(x) if isinstance(x, int) else repr(float(x))


def _show(value: Any) -> str:
    import torch

    if isinstance(value, torch.Tensor):
        return f"a {str(value.dtype).removeprefix('torch.')} tensor of shape {list(value.shape)}"
    return repr(value)


# -- whole entries -------------------------------------------------------------------------------------------


@dataclass
class Prepared:
    """The generated case files (loaded), the samples skipped (as SKIP results), and notes per entry."""

    files: list[CaseFile] = field(default_factory=list)
    skipped: list[CheckResult] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    samples: int = 0


def prepare(op_db: Sequence[Any], names: Sequence[str] | None, folder: Path, *, engine: str = "torch",
            dtype: str = "float64", asked: Sequence[Mode] | None = None, order: int = 1,
            on_entry: Callable[[str], None] = lambda _: None) -> Prepared:
    """Every sample of the covered entries named (all covered ones without ``names``) as case files
    under ``folder``, loaded; an unknown or uncovered name is a :class:`GradspecError`."""
    import torch

    cover = coverage(op_db)
    by_name = {entry_name(info): info for info in op_db}
    covered = dict(cover.covered)
    if names:
        why = dict(cover.uncovered)
        for n in names:
            if n not in covered:
                raise GradspecError(f"OpInfo entry {n!r} is not covered: {why[n]}" if n in why else
                                    f"no differentiable OpInfo entry is named {n!r} (see gradspec opinfo --list)")
    out = Prepared()
    for name in names or list(covered):
        info, entry = by_name[name], covered[name]
        on_entry(name)
        if getattr(torch, dtype) not in info.supported_dtypes("cpu"):
            out.notes.append(f"{name}: OpInfo does not list {dtype} on the CPU; not run")
            continue
        modes, depth, dropped = claimed_modes(info, asked, order)
        if dropped:
            out.notes.append(f"{name}: not judged, as torch does not claim it: {', '.join(dropped)}")
        cases = []
        for i, sample in enumerate(info.sample_inputs("cpu", getattr(torch, dtype), requires_grad=True)):
            out.samples += 1
            got = convert(name, entry, sample, i, modes, depth)
            if got.skipped:
                out.skipped.append(_skip(name, f"{name}-{i}", entry.op, got.skipped, engine))
            cases.extend(got.cases)
        if cases:
            loaded = _load(folder / f"{re.sub(r'[^A-Za-z0-9_.-]', '_', name)}.gradspec.yaml", name, cases, out, engine)
            if loaded is not None:
                out.files.append(loaded)
    return out


def _skip(name: str, case_id: str, expr: str, reason: str, engine: str) -> CheckResult:
    return CheckResult(expression=expr, point={}, engine=engine, verdict=Verdict.SKIP,
                       message=reason.replace(": ", "; "),  # the whole reason is what skips are counted by
                       case_id=case_id, path=f"opinfo:{name}", kind="tensor")


def _load(path: Path, name: str, cases: list[dict[str, Any]], out: Prepared, engine: str) -> CaseFile | None:
    """Write and load the cases of one entry; a case the loader refuses (a kink, a domain, a shape) is
    skipped with the loader's message, and the file is written again without it."""
    while cases:
        # JSON is YAML; json.dumps keeps every float's shortest repr, which the loader reads back exactly.
        path.write_text(json.dumps({"version": 1, "description": f"OpInfo samples of {name}", "cases": cases}, indent=1),
                        encoding="utf-8")
        try:
            return load_file(path)
        except CaseFileError as exc:
            errors = errors_of(exc)
        bad = {e.case_id: e.message for e in errors if e.case_id}
        if not bad:  # an error of the file itself: none of its cases can run
            bad = {c["id"]: errors[0].message for c in cases}
        for case in cases:
            if case["id"] in bad:
                out.skipped.append(_skip(name, case["id"], case["expr"], bad[case["id"]], engine))
        cases = [c for c in cases if c["id"] not in bad]
    return None
