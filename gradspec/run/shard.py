"""Splitting a run across machines: ``--shard K/N`` keeps the K-th of N parts of the picked cases.

The split is by case (every point and engine of a case stays in one shard, so its first failure is
shrunk once), balanced by cost (:func:`gradspec.run.plan.case_cost`): the costliest case first, each
to the shard with the least work so far (ties: the lower shard, then the case's key). It depends only on
the cases, their keys and costs, never on the machine, the clock or hash seeds, so N jobs given the same
case files and options split them the same way, with every case in exactly one shard.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Sequence
from pathlib import Path

from gradspec.errors import GradspecError

__all__ = ["case_key", "parse_shard", "shard"]

_SHARD = re.compile(r"^\s*(\d+)\s*/\s*(\d+)\s*$")


def parse_shard(text: str) -> tuple[int, int]:
    """``"K/N"`` as (K, N), 1 <= K <= N; a :class:`GradspecError` says what was expected otherwise."""
    match = _SHARD.match(text)
    if match is None or not 1 <= int(match[1]) <= int(match[2]):
        raise GradspecError(f"expected a shard K/N with 1 <= K <= N (e.g. 2/4), got {text!r}")
    return int(match[1]), int(match[2])


def case_key(path: str, case_id: str) -> tuple[str, str]:
    """A case's key, the same on every machine: its file relative to the current folder where it is
    inside it (a checkout's location differs between CI machines), and its id."""
    p = Path(path)
    with contextlib.suppress(ValueError, OSError):  # outside the current folder: the path as given
        p = p.resolve().relative_to(Path.cwd().resolve())
    return p.as_posix(), case_id


def shard(keys: Sequence[tuple[str, str]], costs: Sequence[int], k: int, n: int) -> list[int]:
    """The indices (in their given order) of the items in shard ``k`` of ``n`` (greedy by cost)."""
    loads = [0] * n
    owner = [0] * len(keys)
    for i in sorted(range(len(keys)), key=lambda i: (-costs[i], keys[i])):
        target = min(range(n), key=lambda s: (loads[s], s))
        owner[i] = target
        loads[target] += costs[i]
    return [i for i in range(len(keys)) if owner[i] == k - 1]
