"""The linear-algebra rows: exact values and derivatives against mpmath at high precision, the built-in
engine through the lowering, the structure an input is read through, and every bad input refused where
it is (singular, not positive definite, rank deficient, not square, shapes that do not fit)."""

from __future__ import annotations

from collections.abc import Callable
from fractions import Fraction
from pathlib import Path
from typing import Any

import mpmath
import numpy as np
import pytest

from gradspec.engines.resolve import resolve
from gradspec.errors import DomainError, ExpressionError
from gradspec.graph.tensor import build_tensor
from gradspec.lang.expr import parse
from gradspec.ops.linalg_rows import project, structures
from gradspec.reference.tensor import exact_tensor
from gradspec.results import Tolerance, Verdict

SPD: list[list[float]] = [[2, 1, 0.5], [1, 3, -0.75], [0.5, -0.75, 1.5]]
GENERAL: list[list[float]] = [[1, 2, 0.5], [0.5, -1, 2], [2, 0.25, 1]]  # det < 0; LAPACK's QR gives R a negative diagonal
B: list[list[float]] = [[1, 0.5], [-1, 2], [0.25, 1]]
LOWER: list[list[float]] = [[2, 0, 0], [1, 3, 0], [0.5, 0.25, 1.5]]


def exact(x: Any) -> Any:
    return np.vectorize(lambda v: Fraction(str(v)), otypes=[object])(np.asarray(x, dtype=float))


def M(x: Any) -> Any:
    return mpmath.matrix(np.asarray(x, dtype=float).tolist())


def reference(text: str, **point: Any) -> Any:
    arrays = {k: exact(v) for k, v in point.items()}
    graph = build_tensor(parse(text), {k: v.shape for k, v in arrays.items()})
    return exact_tensor(graph, arrays)


def close(got: Any, want: Any, digits: int = 40) -> None:
    got = np.asarray(got, dtype=object)
    want = np.asarray(want.tolist() if isinstance(want, mpmath.matrix) else want, dtype=object).reshape(got.shape)
    for g, w in zip(got.flat, want.flat, strict=True):
        assert abs(mpmath.mpf(g) - mpmath.mpf(w)) <= mpmath.mpf(10) ** -digits * (1 + abs(mpmath.mpf(w))), (g, w)


def _cholesky(a: Any) -> Any:
    return mpmath.cholesky(a)


VALUES: list[tuple[str, dict[str, Any], Callable[..., Any]]] = [
    ("det(a)", {"a": GENERAL}, lambda a: mpmath.det(M(a))),
    ("slogdet(a)[1]", {"a": GENERAL}, lambda a: mpmath.log(abs(mpmath.det(M(a))))),
    ("slogdet(a)[0]", {"a": GENERAL}, lambda a: mpmath.sign(mpmath.det(M(a)))),
    ("inv(a)", {"a": GENERAL}, lambda a: mpmath.inverse(M(a))),
    ("solve(a, b)", {"a": SPD, "b": B}, lambda a, b: mpmath.inverse(M(a)) * M(b)),
    ("matrix_power(a, n=-2)", {"a": GENERAL}, lambda a: mpmath.inverse(M(a)) ** 2),
    ("matrix_power(a, n=5)", {"a": GENERAL}, lambda a: M(a) ** 5),
    ("cholesky(a)", {"a": SPD}, lambda a: _cholesky(M(a))),
    ("cholesky_inverse(l)", {"l": LOWER}, lambda f: mpmath.inverse(M(f) * M(f).T)),
    ("cholesky_solve(b, l)", {"b": B, "l": LOWER}, lambda b, f: mpmath.inverse(M(f) * M(f).T) * M(b)),
    ("pinv(a)", {"a": [[1, 2], [0.5, -1], [2, 0.25]]},
     lambda a: mpmath.inverse(M(a).T * M(a)) * M(a).T),
]


@pytest.mark.parametrize(("text", "point", "want"), VALUES, ids=[v[0] for v in VALUES])
def test_the_exact_value_is_mpmaths(text: str, point: dict[str, Any], want: Callable[..., Any]) -> None:
    mpmath.mp.dps = 60
    try:
        close(reference(text, **point).value, want(*point.values()))
    finally:
        mpmath.mp.dps = 15


def test_a_factor_is_read_through_its_triangle_and_lu_solve_through_its_packing() -> None:
    mpmath.mp.dps = 60
    try:
        junk = np.asarray(SPD, dtype=float) * 7  # the other triangle: never read
        mixed = np.where(np.tril(np.ones((3, 3), dtype=bool)), LOWER, junk)
        close(reference("cholesky_inverse(l)", l=mixed).value, mpmath.inverse(M(LOWER) * M(LOWER).T))
        upper = np.where(np.triu(np.ones((3, 3), dtype=bool)), SPD, junk)
        close(reference("solve_triangular(a, b, upper=1)", a=upper, b=B).value,
              mpmath.inverse(M(np.triu(SPD))) * M(B))
        packed = [[2, 1, 0.5], [0.5, 3, 0.25], [0.25, -0.5, 1.5]]
        low = np.tril(packed, -1) + np.eye(3)
        close(reference("lu_solve(lu, b)", lu=packed, b=B).value,
              mpmath.inverse(M(low) * M(np.triu(packed))) * M(B))
    finally:
        mpmath.mp.dps = 15


def test_qr_has_lapacks_signs_and_its_factors_multiply_back() -> None:
    ref_q = reference("qr(a)[0]", a=GENERAL).value_floats
    ref_r = reference("qr(a)[1]", a=GENERAL).value_floats
    q, r = np.linalg.qr(np.asarray(GENERAL, dtype=float))  # LAPACK's geqrf and orgqr
    assert np.allclose(ref_q, q, rtol=0, atol=1e-14) and np.allclose(ref_r, r, rtol=0, atol=1e-14)
    assert np.sign(np.diag(ref_r)).tolist() == [-1.0, 1.0, -1.0]  # not what Gram-Schmidt gives
    tall = reference("qr(a)[0]", a=[[1, 2], [0.5, -1], [2, 0.25]])
    assert tall.value.shape == (3, 2)


def test_the_batched_det_exchanges_rows_at_a_zero_pivot_and_its_gradient_is_the_cofactors() -> None:
    a = [[[0, 2], [3, 1]], [[1.5, -0.5], [0.25, 2]]]
    ref = reference("det(a)", a=a)
    assert [float(v) for v in ref.value] == [-6.0, 3.125]
    grad = ref.vjp(np.array([1.0, 1.0])).floats["a"]
    # d det / d a = det * inv(a)^T, the cofactor matrix
    assert grad.tolist() == [[[1.0, -3.0], [-2.0, 0.0]], [[2.0, -0.25], [0.5, 1.5]]]


def test_the_second_derivative_of_det_is_mpmaths() -> None:
    from gradspec.modes import Ask, Mode
    from gradspec.reference.modes import mode_reference

    a = exact(GENERAL)
    u = np.array([[0.5, -0.25, 0.125], [0.75, 0.5, -0.5], [-0.375, 0.25, 1]])
    graph = build_tensor(parse("det(a)"), {"a": (3, 3)})
    ask = Ask(frozenset({Mode.JVP_OF_JVP}), (u,), (u,), np.asarray(1.0))
    got = mode_reference(graph, {"a": a}, ask, 2.0**-52).jvp_of_jvp
    assert got is not None
    mpmath.mp.dps = 40
    try:
        want = mpmath.diff(lambda t: mpmath.det(M(GENERAL) + t * M(u)), 0, 2)
        assert abs(float(got.exact[()]) - float(want)) < 1e-14
    finally:
        mpmath.mp.dps = 15


@pytest.mark.parametrize("text", ["det(a) + sum(inv(a))", "sum(cholesky(s))", "sum(solve(s, b))",
                                  "sum(qr(a)[1] ** 2)", "sum(pinv(a))"])
def test_the_builtin_engine_runs_them_through_the_lowering(text: str) -> None:
    from gradspec.checks.tensor import check_tensor
    from gradspec.modes import Mode

    arrays = {"a": exact(GENERAL), "s": exact(SPD), "b": exact(B)}
    program = parse(text)
    shapes = {n: arrays[n].shape for n in program.inputs}
    graph = build_tensor(program, shapes)
    result = check_tensor(graph, {n: arrays[n] for n in shapes}, resolve("builtin"), Tolerance(),
                          modes=frozenset({Mode.JVP, Mode.HVP}))
    assert result.verdict is Verdict.PASS, result


def test_a_matrix_beyond_the_precision_is_reported_with_its_condition_number() -> None:
    from gradspec.checks.tensor import check_tensor

    graph = build_tensor(parse("det(a)"), {"a": (2, 2)})
    near = {"a": np.array([[Fraction(1), Fraction(1)], [Fraction(1), Fraction(1) + Fraction(2) ** -52]], dtype=object)}
    result = check_tensor(graph, near, resolve("builtin"), Tolerance())
    assert result.verdict is Verdict.SKIP
    assert "condition number 1.8e+16 (1-norm) beyond 1/eps = 4.5e+15" in result.message
    fine = {"a": exact([[1, 1], [1, 1.001]])}
    assert check_tensor(graph, fine, resolve("builtin"), Tolerance()).verdict is Verdict.PASS


def test_structures_name_the_inputs_read_through_one() -> None:
    def found(text: str, shapes: dict[str, tuple[int, ...]]) -> dict[str, str]:
        graph = build_tensor(parse(text), shapes)
        return structures(graph.steps, graph.differentiable)

    assert found("cholesky(a)", {"a": (3, 3)}) == {"a": "symmetric"}
    assert found("cholesky((a + transpose(a)) / 2)", {"a": (3, 3)}) == {}  # any tangent: it symmetrises first
    assert found("eigvalsh(a) + eigh(b)[0] + svdvals(c)", {"a": (2, 2), "b": (2, 2), "c": (2, 2)}) == \
        {"a": "symmetric", "b": "symmetric"}
    assert found("matrix_exp(a)", {"a": (2, 2)}) == {}
    assert found("cholesky_solve(b, l, upper=1) + cholesky_inverse(m)", {"b": (2, 1), "l": (2, 2), "m": (2, 2)}) == \
        {"l": "upper", "m": "lower"}
    assert found("solve_triangular(a, b, upper=0)", {"a": (2, 2), "b": (2, 2)}) == {"a": "lower"}
    x = np.array([[1.0, 2.0], [4.0, 3.0]])
    assert project("symmetric", x).tolist() == [[1.0, 3.0], [3.0, 3.0]]
    assert project("lower", x).tolist() == [[1.0, 0.0], [4.0, 3.0]]
    assert project("upper", x).tolist() == [[1.0, 2.0], [0.0, 3.0]]


def test_uplo_u_reads_the_upper_triangle_on_every_side() -> None:
    """eigvalsh and eigh with uplo="U" at a matrix with junk below the diagonal are the lower-triangle ops at
    the symmetric matrix, exactly; the lower triangle's gradient is 0, and torch's spelling reads the same."""
    junk = np.tril(np.full((3, 3), 9.0), -1) + np.triu(SPD)
    for text in ("eigvalsh(a{})", "eigh(a{})[1]", "eigh(a{})[0]"):
        assert (reference(text.format(', uplo="U"'), a=junk).value == reference(text.format(""), a=SPD).value).all()
    grad = reference('eigvalsh(a, uplo="U")', a=junk).vjp(np.array([1.0, -0.5, 0.25])).exact["a"]
    assert all(grad[r][c] == 0 for r in range(3) for c in range(r))
    assert all(grad[r][c] != 0 for r in range(3) for c in range(r, 3))
    graph = build_tensor(parse('eigh(a, uplo="U")[1]'), {"a": (3, 3)})
    assert str(graph.program.output) == 'eigh(a, uplo="U")[1]'
    assert structures(graph.steps, graph.differentiable) == {"a": "symmetric"}
    torch = pytest.importorskip("torch")
    from gradspec.ops.table import TENSOR_OPS

    got = TENSOR_OPS["eigh"].torch(torch, [torch.tensor(junk)], {"output": 1, "uplo": "U"}).numpy()
    assert np.allclose(got, reference("eigh(a)[1]", a=SPD).value_floats, rtol=0, atol=1e-14)
    with pytest.raises(ExpressionError, match='eigvalsh: uplo= takes one of "L", "U", found \'"X"\''):
        parse('eigvalsh(a, uplo="X")')


def test_a_subscripted_call_prints_and_parses_back() -> None:
    for text in ("slogdet(a)[1]", "qr(a)[0]", "cholesky_solve(b, l, upper=1)"):
        assert str(parse(text).output).replace(", upper=0", "") == text
    # a second subscript indexes the selected output; one on anything else is indexing
    assert str(parse("slogdet(a)[1][0]").output) == "slogdet(a)[1][0]"
    assert str(parse("(a + b)[0]").output) == "(a + b)[0]"


@pytest.mark.parametrize(("text", "shapes", "message"), [
    ("det(a)", {"a": (2, 3)}, "det: a must be square (its last two axes equal), got [2, 3]"),
    ("det(a)", {"a": (3,)}, "det: a needs at least two axes"),
    ("solve(a, b)", {"a": (3, 3), "b": (2, 1)}, "solve: a [3, 3] needs b with 3 rows, got [2, 1]"),
    ("solve(a, b)", {"a": (2, 3, 3), "b": (2, 3)}, "ambiguous"),
    ("solve(a, b)", {"a": (2, 3, 3), "b": (3, 3, 1)}, "batch axes of [2, 3, 3] and [3, 3, 1] do not broadcast"),
    ("solve_triangular(a, b, upper=2)", {"a": (2, 2), "b": (2, 1)}, "upper must be 0 (lower triangle) or 1"),
    ("cholesky_solve(b, l)", {"b": (3, 1), "l": (2, 2)}, "cholesky_solve: a [2, 2] needs b with 2 rows"),
    ("qr(a)", {"a": (2, 2)}, "qr returns a tuple (Q, R); subscript it"),
    ("slogdet(a)[2]", {"a": (2, 2)}, "slogdet returns 2 outputs (sign, logabsdet)"),
    ("solve_triangular(a, b)", {"a": (2, 2), "b": (2, 1)}, "upper"),
])
def test_operands_that_do_not_fit_are_refused_at_the_call(text: str, shapes: dict[str, tuple[int, ...]],
                                                          message: str) -> None:
    with pytest.raises(ExpressionError, match=None) as info:
        build_tensor(parse(text), shapes)
    assert message in str(info.value)


@pytest.mark.parametrize(("text", "point", "message"), [
    ("det(a)", {"a": [[1, 2], [2, 4]]}, "det: the matrix is singular (no nonzero pivot in column 2"),
    ("inv(a)", {"a": [[0, 0], [0, 0]]}, "inv: the matrix is singular"),
    ("cholesky(a)", {"a": [[1, 2], [2, 1]]}, "cholesky: the matrix is not positive definite (pivot 2 is -3"),
    ("cholesky_inverse(l)", {"l": [[1, 0], [1, 0]]}, "cholesky_inverse: the triangular matrix is singular"),
    ("pinv(a)", {"a": [[1, 2], [2, 4], [3, 6]]}, "pinv: the matrix is rank deficient"),
    ("qr(a)[0]", {"a": [[1, 2], [2, 4]]}, "qr: the matrix is rank deficient"),
])
def test_a_point_that_breaks_an_ops_condition_says_which_and_why(text: str, point: dict[str, Any], message: str) -> None:
    with pytest.raises(DomainError) as info:
        reference(text, **point)
    assert message in info.value.message


def test_a_singular_point_in_a_case_file_is_a_located_load_error(write_case: Callable[..., Path],
                                                                  assert_invalid: Callable[..., list[str]]) -> None:
    assert_invalid(write_case("""
        cases:
          - id: a
            expr: det(a) + sum(cholesky(s))
            at: {a: [[1, 2], [2, 4]], s: [[1, 0], [0, 1]]}
        """), [(4, 9, "point 0 is outside the domain: det: the matrix is singular")])
    assert_invalid(write_case("""
        cases:
          - id: a
            expr: sum(cholesky(s))
            at: {s: [[1, 2], [2, 1]]}
        """), [(4, 9, "point 0 is outside the domain: cholesky: the matrix is not positive definite")])
    assert_invalid(write_case("""
        cases:
          - id: a
            expr: det(a)
            at: {a: [[1, 2, 3], [4, 5, 6]]}
        """), [(3, 11, "expr: det: a must be square")])
