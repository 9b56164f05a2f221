"""The rebuilt allowance of tensor-op rows (gradspec.ops.rebuilt_tensor): what a dense linear-algebra
kernel and logcumsumexp's weights lose where engines' spellings cancel, derived from the op's operands,
output and directions; read by the tensor and mode checks (gradspec.checks.elements.Kernels). A correct
torch is imprecise there, never failing; a planted wrong digit beyond the allowance still fails."""

from __future__ import annotations

import dataclasses
import math
from fractions import Fraction
from typing import Any

import numpy as np
import pytest

from gradspec.checks.elements import Kernels
from gradspec.engines.protocol import FLOAT64_EPS
from gradspec.graph.tensor import build_tensor
from gradspec.lang.expr import parse
from gradspec.modes import Mode
from gradspec.ops.forms import LIBM
from gradspec.ops.rebuilt_tensor import Site, dense, scan_weights
from gradspec.ops.table import TENSOR_OPS
from gradspec.results import Tolerance, Verdict

EPS = FLOAT64_EPS
QR = TENSOR_OPS["qr"].rebuilt
assert QR is not None


def _exact(values: Any) -> Any:
    return np.vectorize(Fraction, otypes=[object])(np.asarray(values, dtype=float))


# -- a dense kernel -----------------------------------------------------------------------------------


def test_a_dense_kernels_allowance_is_its_condition_times_the_terms_of_the_quantity() -> None:
    # A = 2I: |A|_F = 2 sqrt(2), |A^-1|_F = sqrt(2)/2, K = 2; Q = I: |F|_F = sqrt(2); |v|_F = |u|_F = 1.
    # An HVP element (degree 2, with respect to A): T = |F| |v| (K/|A|) (K |u|/|A|) = 1/sqrt(2), and the
    # allowance n eps (2K + 2d + 1) T = 2 eps * 9 / sqrt(2), though the quantity itself is 0 everywhere
    a, half = 2 * np.eye(2), np.full((2, 2), 0.5)
    site = Site({"output": 0}, ((2, 2),), np.zeros((2, 2)), 2, EPS, (a,), np.eye(2), half, ((half,),), 0)
    assert QR(site) == pytest.approx(9 * math.sqrt(2) * EPS)
    # the value: n eps (2K + 1) |F|; a JVP: one tangent slot, K |u|/|A| = 1/sqrt(2)
    value = dataclasses.replace(site, degree=0, cotangent=None, tangents=(), wrt=None)
    assert QR(value) == pytest.approx(2 * EPS * 5 * math.sqrt(2))
    jvp = dataclasses.replace(site, degree=1, cotangent=None, wrt=None)
    assert QR(jvp) == pytest.approx(2 * EPS * 7 * math.sqrt(2) / math.sqrt(2))
    # an ill-conditioned A widens it by its condition, once per slot and once for the backward error
    worse = dataclasses.replace(site, operands=(np.diag([2.0, 2e-3]),))
    assert QR(worse) > 1e5 * QR(site)


def test_inside_a_larger_graph_or_without_a_derivation_only_the_quantitys_largest_element() -> None:
    exact = np.array([[0.0, -2.0], [1.0, 0.5]])
    inside = Site({"output": 0}, ((3, 3),), exact, 1, EPS)  # no operands: the op is not the graph
    assert QR(inside) == 4 * 3 * EPS * 2.0
    spectral = TENSOR_OPS["eigh"].rebuilt
    assert spectral is not None
    direct = Site({"output": 1, "uplo": "L"}, ((2, 2),), exact, 1, EPS, (np.eye(2),), np.eye(2), exact, (), 0)
    assert spectral(direct) == 4 * 2 * EPS * 2.0  # eigh: no derivation, the largest element
    singular = dataclasses.replace(direct, operands=(np.zeros((2, 2)),))
    assert dense(singular, lambda a, kw: a[0]) == 4 * 2 * EPS * 2.0  # no inverse: nothing more than that


def test_the_kernels_of_a_graph_see_their_directions_only_where_they_are_the_graph() -> None:
    x = _exact([[2.0, 0.0], [0.0, 2.0]])
    direct = Kernels(build_tensor(parse("qr(x)[0]"), {"x": (2, 2)}), {"x": x}, np.eye(2), EPS)
    half = np.full((2, 2), 0.5)
    assert direct.lost(np.zeros((2, 2)), 2, cotangent=half, tangents=((half,),), wrt="x") == \
        pytest.approx(9 * math.sqrt(2) * EPS)

    def never() -> Any:
        raise AssertionError("the value is needed only for an op that is the graph")

    graph = build_tensor(parse("cholesky(a) @ b"), {"a": (3, 3), "b": (3, 2)})
    inside = Kernels(graph, {"a": _exact(np.eye(3)), "b": _exact(np.ones((3, 2)))}, never, EPS)
    assert inside and inside.lost(np.array([[0.0, -2.0]]), 1, cotangent=np.ones((3, 2)), wrt="a") == 4 * 3 * EPS * 2.0
    assert not Kernels(build_tensor(parse("a @ b"), {"a": (3, 3), "b": (3, 2)}), {}, never, EPS)  # a product: none


# -- logcumsumexp's weights ---------------------------------------------------------------------------


def test_logcumsumexps_weights_lose_the_outputs_magnitude_in_eps_times_the_terms_they_multiply() -> None:
    # x = [L, 0]: y = [L, L + log(1 + e^-L)] rounds to [L, L]; W = [[1, 0], [1, e^-L]]
    big = 1e4
    x, y = np.array([big, 0.0]), np.array([big, big])
    v, u = np.array([1.0, 1.0]), np.array([1.0, 0.5])
    r = big + big + 0 + LIBM + 2  # |x_0| + |y_i| + |log|v_i|| + the exp's ulps + the scan's terms
    hvp = Site({"axis": 0}, ((2,),), np.zeros(2), 2, EPS, (x,), y, v, ((u,),), 0)
    # element 0: sum_i |v_i| W_i0 (|u_0| + sum_l W_il |u_l|), terms (1 + 1) per i; each off by W_i0's error
    # (r) times 2, plus W_i0 times the error of the sum in brackets (r |u_0|): 3r per i, 6r in all; element
    # 1: W_i1 ~ e^-L
    got = scan_weights(hvp)
    assert got[0] == pytest.approx(4 * 2 * EPS * 6 * r)
    assert got[1] < 1e-300
    # torch's forward mode subtracts the line's largest element, exactly here: only the exp's and the scan's
    jvp = dataclasses.replace(hvp, degree=1, cotangent=None, wrt=None)
    assert scan_weights(jvp) == pytest.approx(4 * EPS * (LIBM + 2) * np.ones(2))
    jacobian = dataclasses.replace(hvp, degree=1, cotangent=None, tangents=(), whole=True)
    assert scan_weights(jacobian) == pytest.approx(4 * r * EPS * np.array([[1.0, 0.0], [1.0, 0.0]]))
    assert scan_weights(dataclasses.replace(hvp, degree=0)) == 0.0  # the value rounds as the lowering does
    assert scan_weights(dataclasses.replace(hvp, operands=None)) == 0.0  # inside a larger graph: nothing


# -- on torch: the two false alarms, and planted bugs that still fail -----------------------------------


_DEFAULT = Tolerance()


def _check(text: str, shapes: dict[str, tuple[int, ...]], point: dict[str, Any], modes: frozenset[Mode],
           tol: Tolerance = _DEFAULT) -> Any:
    from gradspec.checks.tensor import check_tensor
    from gradspec.engines.resolve import resolve

    return check_tensor(build_tensor(parse(text), shapes), {n: _exact(v) for n, v in point.items()}, resolve("torch"),
                        tol, modes=modes, localise=False)


def _verdicts(result: Any) -> dict[str, Verdict]:
    return {q.name: q.verdict for q in result.quantities}


def _planted(monkeypatch: pytest.MonkeyPatch, name: str, spelling: Any, by: float) -> None:
    """torch's op with every derivative (not the value) off by ``by`` relatively: y + by*(y - y.detach())."""
    row = TENSOR_OPS[name]
    monkeypatch.setitem(TENSOR_OPS, name, dataclasses.replace(
        row, torch=lambda t, a, kw: (lambda y: y + by * (y - y.detach()))(spelling(t, a, kw))))


_SAMPLE_4 = {"x": [[-0.885474232740681, -1.1868737694414002], [0.4135009662116109, -0.5750890661026113]]}


def test_torchs_qr_at_opinfos_2x2_sample_is_imprecise_and_a_planted_bug_fails(monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("torch")
    modes = frozenset({Mode.JVP, Mode.HVP, Mode.JVP_OF_JVP})
    # Q depends on x's first column only: its HVP's second column is exactly 0, and torch's matrix formulas
    # (terms of Q, R^-1 and the directions, of size 1, that cancel) return -1.5e-16 there
    result = _check("qr(x)[0]", {"x": (2, 2)}, _SAMPLE_4, modes)
    assert result.verdict is Verdict.IMPRECISE, result.table()
    assert _verdicts(result)["hvp x (fwd-rev)"] is Verdict.IMPRECISE
    _planted(monkeypatch, "qr", TENSOR_OPS["qr"].torch, 1e-6)
    planted = _verdicts(_check("qr(x)[0]", {"x": (2, 2)}, _SAMPLE_4, modes))
    assert {planted[q] for q in ("x (vjp0)", "jvp", "hvp x", "hvp x (fwd-rev)", "jvp-of-jvp")} == {Verdict.FAIL}


def test_torchs_logcumsumexp_at_large_inputs_is_imprecise_and_planted_bugs_fail(monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("torch")
    # OpInfo's sample 0 in small: the first element 1e4 dominates every prefix; the HVP there is s(1 - s)
    # with s = 1 - 1e-4343, and torch's weights from y rounded at 1e4 leave 1e4 eps of terms of size 1
    x = np.array([[1e4, 1e4, 1e4], [-1.5, 2.25, 0.5], [0.75, -3.0, 1.25], [2.0, -0.5, -2.75]])
    result = _check("logcumsumexp(x, axis=0)", {"x": (4, 3)}, {"x": x}, frozenset({Mode.HVP}))
    assert result.verdict is Verdict.IMPRECISE, result.table()
    assert _verdicts(result)["hvp x"] is Verdict.IMPRECISE
    # where the HVP is not 0 (two elements near 1e4 share a prefix), derivatives off by 1e-6 still fail
    near = x.copy()
    near[1, :2] = [1e4 - 0.5, 1e4 + 0.25]
    spelling = TENSOR_OPS["logcumsumexp"].torch
    with monkeypatch.context() as patch:
        _planted(patch, "logcumsumexp", spelling, 1e-6)
        planted = _verdicts(_check("logcumsumexp(x, axis=0)", {"x": (4, 3)}, {"x": near}, frozenset({Mode.HVP})))
        assert planted["hvp x"] is Verdict.FAIL and planted["x (vjp0)"] is Verdict.FAIL
    # at moderate inputs, judged without a tolerance: torch's gradient passes, one off by 1e-9 fails
    moderate = {"x": [[0.5, -1.25, 2.0, 0.75, -2.5], [1.5, 2.75, -0.5, 0.25, 1.0]]}
    exact = _verdicts(_check("logcumsumexp(x, axis=1)", {"x": (2, 5)}, moderate, frozenset(), Tolerance(rtol=0.0)))
    assert exact["x (vjp0)"] is Verdict.PASS and exact["x (jacobian)"] is Verdict.PASS
    _planted(monkeypatch, "logcumsumexp", spelling, 1e-9)
    planted = _verdicts(_check("logcumsumexp(x, axis=1)", {"x": (2, 5)}, moderate, frozenset(), Tolerance(rtol=0.0)))
    assert planted["x (vjp0)"] is Verdict.FAIL and planted["x (jacobian)"] is Verdict.FAIL
