"""Forward-mode and higher-order references kept on disk (gradspec.reference.mode_records)."""

from __future__ import annotations

import json
from fractions import Fraction
from pathlib import Path
from typing import Any

import flint
import mpmath
import numpy as np
import pytest

from gradspec.graph.tensor import build_tensor
from gradspec.lang.expr import parse
from gradspec.modes import Ask, Mode
from gradspec.reference import mode_records, modes
from gradspec.reference.store import STORE

ASKED = frozenset({Mode.JVP, Mode.HVP, Mode.JVP_OF_JVP, Mode.JACOBIAN})


def scalar_case() -> tuple[Any, dict[str, Any], Ask]:
    graph = build_tensor(parse("x*y*y + tanh(x) + erf(y)"), {"x": (), "y": ()})
    point = {"x": np.asarray(Fraction(1, 2), dtype=object), "y": np.asarray(Fraction(3), dtype=object)}
    ask = Ask(ASKED, (np.asarray(0.25), np.asarray(-0.5)), (np.asarray(1.0), np.asarray(0.125)), np.asarray(1.0),
              order=3)
    return graph, point, ask


def same(a: Any, b: Any) -> None:
    """Two references hold the same numbers, exact to their last digit, in arrays of the same kind."""
    for name in ("jvp", "vjp", "hvp", "jvp_of_jvp", "jacobian", "orders", "radius"):
        x, y = getattr(a, name), getattr(b, name)
        if isinstance(x, dict):
            x, y = [x[k] for k in sorted(x)], [y[k] for k in sorted(y)]
        xs, ys = (list(v) if isinstance(v, list | tuple) else [v] for v in (x, y))
        assert len(xs) == len(ys), name
        for p, q in zip(xs, ys, strict=True):
            if p is None or isinstance(p, float):
                assert p == q, name
                continue
            for field in ("exact", "allowance", "peak", "low", "rebuilt"):
                u, v = getattr(p, field), getattr(q, field)
                assert type(u) is type(v) and np.shape(u) == np.shape(v), (name, field)
                if isinstance(u, np.ndarray):
                    assert u.dtype == v.dtype and all(map(exactly, u.flat, v.flat)), (name, field)
                else:
                    assert exactly(u, v), (name, field)


def exactly(e: Any, f: Any) -> bool:
    """The same number; for a ball, the same midpoint and a radius no smaller and at most 2^-29 of it larger."""
    if isinstance(e, flint.arb):
        return bool(e.mid().man_exp() == f.mid().man_exp() and e.rad() <= f.rad() <= e.rad() * (1 + 2.0**-28))
    return bool(e == f)


def ball_case() -> tuple[Any, dict[str, Any], Ask]:
    """A graph the ball tape takes: jvp and hvp in ball arithmetic, the rest in the duals."""
    graph = build_tensor(parse("softmax(x @ w, axis=-1)"), {"x": (2, 3), "w": (3, 3)})
    rng = np.random.default_rng(0)
    point = {n: np.vectorize(lambda v: Fraction(int(v), 64), otypes=[object])(rng.integers(-64, 64, s))
             for n, s in (("x", (2, 3)), ("w", (3, 3)))}
    u = tuple(rng.integers(-8, 8, s) / 8 for s in ((2, 3), (3, 3)))
    w = tuple(rng.integers(-8, 8, s) / 8 for s in ((2, 3), (3, 3)))
    return graph, point, Ask(frozenset({Mode.JVP, Mode.HVP, Mode.JVP_OF_JVP}), u, w, rng.integers(-8, 8, (2, 3)) / 8)


@pytest.mark.parametrize("case", [scalar_case, ball_case])
def test_a_record_reads_back_to_the_same_reference(case: Any) -> None:
    graph, point, ask = case()
    with mpmath.workdps(60):
        ref = modes._reference(graph, point, ask, 2.0**-52)
        back = mode_records.read(json.loads(json.dumps(mode_records.record(ref))), modes.Known, modes.ModeReference)
    assert ref.jvp is not None and ref.hvp and ref.jvp_of_jvp is not None
    if case is scalar_case:
        assert ref.orders is not None and ref.jacobian and ref.radius is None  # every kind of field, from the duals
    else:
        held = [e for k in (ref.jvp, *ref.hvp) for f in ("exact", "peak", "low") for e in np.asarray(getattr(k, f)).flat]
        assert ref.radius is not None and any(isinstance(e, flint.arb) for e in held)  # in balls
    same(ref, back)


def test_a_second_process_reads_the_reference_from_disk(cache_folder: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    graph, point, ask = scalar_case()
    first = modes.mode_reference(graph, point, ask, 2.0**-52)
    STORE.flush()
    STORE.clear_memory()  # as a new process: nothing in memory, the folder as the first one left it
    STORE.modes.clear()
    assert any(p.name.startswith("r") for p in cache_folder.iterdir())

    def refuse(*_: Any) -> Any:
        raise AssertionError("worked out again")

    monkeypatch.setattr(modes, "_reference", refuse)
    again = modes.mode_reference(graph, point, ask, 2.0**-52)
    same(first, again)


def test_a_record_of_other_versions_is_not_read(cache_folder: Path) -> None:
    STORE.disk.keep("k", {"a": 1})
    STORE.flush()
    STORE.clear_memory()
    assert STORE.disk.record("k") == {"a": 1}
    STORE.clear_memory()
    (path,) = [p for p in cache_folder.iterdir() if p.name.startswith("r")]
    data = json.loads(path.read_text(encoding="utf-8"))
    path.write_text(json.dumps({**data, "versions": {**data["versions"], "gradspec": "0.0.0"}}), encoding="utf-8")
    assert STORE.disk.record("k") is None
    path.write_text("{not json", encoding="utf-8")
    assert STORE.disk.record("k") is None


def test_a_large_reference_is_not_kept() -> None:
    small = modes.Known(np.asarray([mpmath.mpf(1)] * 10, dtype=object), np.zeros(10))
    large = modes.Known(np.asarray([mpmath.mpf(1)] * mode_records.LIMIT, dtype=object), np.zeros(mode_records.LIMIT))
    assert mode_records.record(modes.ModeReference(jvp=small)) is not None
    assert mode_records.record(modes.ModeReference(jvp=large)) is None
    unspellable = modes.Known(np.asarray([object()], dtype=object), np.zeros(1))
    assert mode_records.record(modes.ModeReference(jvp=unspellable)) is None


def test_records_are_held_only_until_written(cache_folder: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from gradspec.reference import cache

    for k in range(cache._PENDING):  # the last one writes them all
        STORE.disk.keep(f"k{k}", {"a": k})
    assert not STORE.disk._records and len([p for p in cache_folder.iterdir() if p.name.startswith("r")]) == cache._PENDING
    assert STORE.disk.record("k7") == {"a": 7}
    monkeypatch.setenv("GRADSPEC_CACHE", "0")  # no cache: nothing kept, in memory either
    STORE.disk.keep("other", {"a": 1})
    assert not STORE.disk._records and STORE.disk.record("other") is None
