"""Sampled inputs: a case's ``sample`` block becomes a fixed, reproducible list of points.

Each variable has one distribution (``uniform``, ``loguniform``, ``normal`` or ``choice``) and optional
excluded intervals. Draws come from a :class:`random.Random` seeded by the block's ``seed``, or else by
the file's default seed and the case id, so a case draws the same points on every machine and run,
and adding a case never moves another case's points.
"""

from __future__ import annotations

import math
import random
import zlib
from collections.abc import Callable
from typing import Any

from gradspec.casefile.model import Bounds, Point
from gradspec.errors import CaseFileError
from gradspec.lang.numbers import exact_number

__all__ = ["domain", "points"]

Fail = Callable[..., CaseFileError]  # fail(message, *key path inside the case) -> a located error


def points(spec: dict[str, Any], case_id: str, default_seed: int, line: int, fail: Fail) -> tuple[Point, ...]:
    """The points a schema-valid ``sample`` block draws; ``line`` is where the block starts."""
    seed = spec.get("seed")
    if seed is None:
        seed = zlib.crc32(f"{default_seed}:{case_id}".encode())
    rng = random.Random(seed)
    count = int(spec["count"])
    draws = {name: _draw(name, dist, rng, count, fail) for name, dist in spec["vars"].items()}
    return tuple(Point(tuple((n, exact_number(draws[n][i])) for n in draws), line) for i in range(count))


def domain(spec: dict[str, Any]) -> tuple[Bounds, ...]:
    """Where each variable of a ``sample`` block may be drawn (a normal: within six deviations)."""
    out = []
    for name, dist in spec["vars"].items():
        exclude = tuple((float(lo), float(hi)) for lo, hi in dist.get("exclude", []))
        if "normal" in dist:
            mean, sd = dist["normal"]
            low, high = mean - 6 * sd, mean + 6 * sd
        else:
            values = dist.get("uniform") or dist.get("loguniform") or dist["choice"]
            low, high = min(values), max(values)
        out.append(Bounds(name, float(low), float(high), exclude))
    return tuple(out)


def _draw(name: str, dist: dict[str, Any], rng: random.Random, count: int, fail: Fail) -> list[float]:
    kinds = [k for k in ("uniform", "loguniform", "normal", "choice") if k in dist]
    where = ("sample", "vars", name)
    if len(kinds) != 1:
        raise fail(f"variable {name!r} needs exactly one of uniform, loguniform, normal, choice", *where)
    kind, args = kinds[0], dist[kinds[0]]
    if kind in ("uniform", "loguniform") and not args[0] < args[1]:
        raise fail(f"{kind} needs low < high, got {args}", *where, kind)
    if kind == "normal" and args[1] <= 0:
        raise fail("normal needs a standard deviation > 0", *where, kind)
    exclude = [tuple(e) for e in dist.get("exclude", [])]
    out: list[float] = []
    tries = 0
    while len(out) < count:
        tries += 1
        if tries > 100 * count + 1000:
            raise fail(f"variable {name!r}: the exclusions leave almost nothing to sample", *where, "exclude")
        if kind == "uniform":
            v = rng.uniform(*args)
        elif kind == "loguniform":
            v = math.exp(rng.uniform(math.log(args[0]), math.log(args[1])))
        elif kind == "normal":
            v = rng.gauss(*args)
        else:
            v = float(rng.choice(args))
        if not any(lo <= v <= hi for lo, hi in exclude):
            out.append(v)
    return out
