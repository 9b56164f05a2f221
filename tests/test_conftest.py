"""The test run's own scheduling (tests/conftest.py): the long tests dealt out between xdist's workers."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from tests.conftest import pytest_collection_modifyitems


@dataclass
class Item:
    nodeid: str


def collection() -> list[Item]:
    short = [Item(f"tests/test_a.py::test_{k}") for k in range(10)]
    jax = [Item(f"tests/test_conformance.py::test_jax_x[{p}]") for p in "abcd"]
    tinygrad = [Item(f"tests/test_conformance.py::test_tinygrad_x[{p}]") for p in "ab"]
    return short[:5] + tinygrad + short[5:] + jax + [Item("tests/test_cli_run.py::test_run_builtin_library")]


def test_each_workers_share_begins_with_its_part_of_the_long_tests(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PYTEST_XDIST_WORKER_COUNT", "2")
    items = collection()
    before = list(items)
    pytest_collection_modifyitems(items)  # type: ignore[arg-type]
    assert sorted(i.nodeid for i in items) == sorted(i.nodeid for i in before)
    first, second = items[:len(items) // 2], items[len(items) // 2:]  # xdist's two shares
    assert [i.nodeid.split("::")[1] for i in first[:4]] == \
        ["test_jax_x[a]", "test_jax_x[c]", "test_tinygrad_x[a]", "test_run_builtin_library"]
    assert [i.nodeid.split("::")[1] for i in second[:3]] == ["test_jax_x[b]", "test_jax_x[d]", "test_tinygrad_x[b]"]
    assert [i.nodeid for i in first[4:] + second[3:]] == [f"tests/test_a.py::test_{k}" for k in range(10)]


def test_without_workers_the_order_is_the_collections(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PYTEST_XDIST_WORKER_COUNT", raising=False)
    items = collection()
    before = list(items)
    pytest_collection_modifyitems(items)  # type: ignore[arg-type]
    assert items == before
