"""The spectral lowerings (eigvalsh, eigh, svdvals, svd, matrix_exp): their values and derivatives, to every
order the modes ask for, against closed forms and mpmath at high precision; the conditions they refuse
(repeated eigenvalues, zero or repeated singular values, an unreadable sign) and the spectra they report
instead of judging; the built-in engine and torch through the same conventions."""

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
from gradspec.modes import Ask, Mode
from gradspec.ops.linalg_rows import project
from gradspec.reference.modes import ModeReference, mode_reference
from gradspec.reference.tensor import exact_tensor
from gradspec.results import Tolerance, Verdict

SYM: list[list[float]] = [[2, 1, -0.5], [1, -3, 0.75], [-0.5, 0.75, 1.5]]
U3: list[list[float]] = [[0.5, 0.25, -0.75], [0.25, -1, 0.5], [-0.75, 0.5, 0.125]]  # a symmetric direction
GENERAL: list[list[float]] = [[1, 2, 0.5], [0.5, -1, 2], [2, 0.25, 1]]


def exact(x: Any) -> Any:
    return np.vectorize(lambda v: Fraction(str(v)), otypes=[object])(np.asarray(x, dtype=float))


def reference(text: str, **point: Any) -> Any:
    arrays = {k: exact(v) for k, v in point.items()}
    return exact_tensor(build_tensor(parse(text), {k: v.shape for k, v in arrays.items()}), arrays)


def modes(text: str, point: dict[str, Any], u: dict[str, Any], v: Any, order: int = 1,
          asked: frozenset[Mode] = frozenset({Mode.JVP, Mode.JVP_OF_JVP})) -> ModeReference:
    """The exact JVP, JVP of JVP (both along u) and orders 2..order of v·f along u."""
    arrays = {k: exact(x) for k, x in point.items()}
    graph = build_tensor(parse(text), {k: x.shape for k, x in arrays.items()})
    names = [n for n, _ in graph.differentiable]
    tangents = tuple(np.asarray(u[n], dtype=float) for n in names)
    ask = Ask(asked, tangents, tangents, np.asarray(v, dtype=float), order=order)
    return mode_reference(graph, arrays, ask, 2.0**-52)


def mp(x: Any) -> Any:
    return mpmath.matrix(np.asarray(x, dtype=float).tolist())


def near(got: Any, want: Any, digits: int = 45) -> None:
    got = np.asarray(got, dtype=object)
    want = np.asarray(want.tolist() if isinstance(want, mpmath.matrix) else want, dtype=object).reshape(got.shape)
    for g, w in zip(got.flat, want.flat, strict=True):
        assert abs(mpmath.mpf(g) - mpmath.mpf(w)) <= mpmath.mpf(10) ** -digits * (1 + abs(mpmath.mpf(w))), (g, w)


@pytest.fixture
def digits60() -> Any:
    with mpmath.workdps(60):
        yield


def _signed(vectors: Any) -> Any:
    """Columns with the first entry at least half the largest made positive (the lowering's convention)."""
    out = mpmath.matrix(vectors)
    for k in range(out.cols):
        column = [out[i, k] for i in range(out.rows)]
        top = max(abs(x) for x in column)
        first = next(x for x in column if abs(x) >= top / 2)
        if first < 0:
            for i in range(out.rows):
                out[i, k] = -out[i, k]
    return out


def _eigsy(a: Any) -> tuple[list[Any], Any]:
    values, vectors = mpmath.eigsy(mpmath.matrix(a))
    order = sorted(range(len(values)), key=lambda k: values[k])
    return [values[k] for k in order], _signed(mpmath.matrix([[vectors[i, k] for k in order]
                                                               for i in range(vectors.rows)]))


# -- eigvalsh ---------------------------------------------------------------------------------------


def _two_by_two(a: Any, b: Any, c: Any) -> list[Any]:
    mid, r = (a + c) / 2, mpmath.sqrt(((a - c) / 2) ** 2 + b**2)
    return [mid - r, mid + r]


@pytest.mark.parametrize("point", [[[1.5, -0.75], [-0.75, 0.25]], [[1, 0.5], [0.5, 1]], [[1, 0], [0, 2]]],
                         ids=["general", "equal-diagonal", "diagonal"])
def test_the_eigenvalues_of_a_2x2_and_their_derivatives_are_the_closed_forms(point: Any, digits60: Any) -> None:
    """(a + c)/2 -+ sqrt(((a - c)/2)^2 + b^2), and its first and second derivatives along a symmetric u, from
    the same lowering: at a diagonal matrix no rotation is needed at the point, and the second derivative
    (which divides by the spacing) comes from the sweeps past convergence."""
    u = [[0.5, -1.25], [-1.25, 0.75]]
    v = [1, -0.5]
    ref = modes("eigvalsh(a)", {"a": point}, {"a": u}, v)
    (a, b), (_, c) = point

    def along(t: Any) -> Any:
        lo, hi = _two_by_two(a + t * u[0][0], b + t * u[1][0], c + t * u[1][1])
        return [lo, hi]

    assert ref.jvp is not None and ref.jvp_of_jvp is not None
    near(reference("eigvalsh(a)", a=point).value, along(0))
    near(ref.jvp.exact, [mpmath.diff(lambda t, k=k: along(t)[k], 0) for k in range(2)])
    near(ref.jvp_of_jvp.exact, [mpmath.diff(lambda t, k=k: along(t)[k], 0, 2) for k in range(2)], digits=40)


def test_every_order_the_modes_reach_is_the_limits_even_at_a_diagonal_matrix(digits60: Any) -> None:
    """Orders 2..6 of v·eigvalsh along u: at diag(1, 2), where the point needs no rotation at all, the three
    sweeps past convergence carry every derivative up to order 7."""
    u = [[0.5, -1.25], [-1.25, 0.75]]
    v = [1, -0.5]
    ref = modes("eigvalsh(a)", {"a": [[1, 0], [0, 2]]}, {"a": u}, v, order=6, asked=frozenset())

    def along(t: Any) -> Any:
        lo, hi = _two_by_two(1 + t * u[0][0], t * u[1][0], 2 + t * u[1][1])
        return lo - hi / 2

    assert ref.orders is not None
    for k in range(2, 7):
        near(ref.orders[k].exact, mpmath.diff(along, 0, k), digits=35)


def test_the_gradient_of_an_eigenvalue_is_its_eigenvector_squared(digits60: Any) -> None:
    """d lambda_i = v_iᵀ dA v_i: the one-hot VJP, projected on symmetric matrices, is v_i v_iᵀ (and the upper
    triangle, never read, gets 0)."""
    ref = reference("eigvalsh(a)", a=SYM)
    values, vectors = _eigsy(SYM)
    near(ref.value, values)
    for i in range(3):
        grad = ref.vjp(np.eye(3)[i]).exact["a"]
        assert all(grad[r][c] == 0 for r in range(3) for c in range(r + 1, 3))
        v = vectors.column(i)
        near(project("symmetric", grad), v * v.T)


def test_the_lower_triangle_is_what_eigvalsh_reads(digits60: Any) -> None:
    junk = np.triu(np.full((3, 3), 9.0), 1) + np.tril(SYM)
    near(reference("eigvalsh(a)", a=junk).value, _eigsy(SYM)[0])


# -- eigh ---------------------------------------------------------------------------------------------


def test_eigenvectors_and_their_jvp_are_the_perturbation_formula(digits60: Any) -> None:
    """eigh(a)[1] under the sign convention, and dv_i = sum_j v_j (v_jᵀ U v_i) / (lambda_i - lambda_j)."""
    values, vectors = _eigsy(SYM)
    near(reference("eigh(a)[1]", a=SYM).value, vectors)
    near(reference("eigh(a)[0]", a=SYM).value, values)
    ref = modes("eigh(a)[1]", {"a": SYM}, {"a": U3}, np.ones((3, 3)), asked=frozenset({Mode.JVP}))
    u = mp(U3)
    want = mpmath.zeros(3, 3)
    for i in range(3):
        for j in range(3):
            if i != j:
                vj = vectors.column(j)
                want[:, i] += vj * ((vj.T * u * vectors.column(i))[0] / (values[i] - values[j]))
    assert ref.jvp is not None
    near(ref.jvp.exact, want, digits=40)


def test_a_sign_that_cannot_be_read_reliably_is_refused() -> None:
    # [[2, -1], [-1, 0.25]] is fine; [[2, -1], [-1, 0.5]] has the eigenvector (1, 2)/sqrt(5): 1 is half of 2
    reference("eigh(a)[1]", a=[[2, -1], [-1, 0.25]])
    with pytest.raises(DomainError, match="eigh: eigenvector 1 has an entry at half its largest"):
        reference("eigh(a)[1]", a=[[2, -1], [-1, 0.5]])


def test_torch_and_jax_spellings_take_the_same_signs() -> None:
    torch = pytest.importorskip("torch")
    from gradspec.ops.table import TENSOR_OPS

    row = TENSOR_OPS["eigh"]
    want = reference("eigh(a)[1]", a=[SYM, GENERAL]).value_floats  # the second is read through its lower triangle
    got = row.torch(torch, [torch.tensor([SYM, GENERAL], dtype=torch.float64)], {"output": 1, "uplo": "L"}).numpy()
    assert np.allclose(got, want, rtol=0, atol=1e-14)
    jax = pytest.importorskip("jax")
    jax.config.update("jax_enable_x64", True)
    lower = np.tril(GENERAL) + np.tril(GENERAL, -1).T  # JAX symmetrises its input: give it the symmetric one
    got = np.asarray(row.jax(jax, [jax.numpy.asarray([SYM, lower])], {"output": 1, "uplo": "L"}))
    assert np.allclose(got, want, rtol=0, atol=1e-14)


# -- svdvals -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("a", [[[1, 2], [0.5, -1], [2, 0.25]], [[1, 2, 0.5], [0.5, -1, 2]], GENERAL],
                         ids=["tall", "wide", "square"])
def test_singular_values_and_their_jvp_are_mpmaths(a: Any, digits60: Any) -> None:
    """Descending, and d sigma_i = u_iᵀ dA v_i."""
    uu, sigma, vt = mpmath.svd_r(mp(a), full_matrices=False)
    near(reference("svdvals(a)", a=a).value, [sigma[k] for k in range(len(sigma))])
    direction = np.linspace(-1, 1, np.size(a)).reshape(np.shape(a))
    ref = modes("svdvals(a)", {"a": a}, {"a": direction}, np.ones(len(sigma)), asked=frozenset({Mode.JVP}))
    want = [(uu.column(k).T * mp(direction) * vt.T.column(k))[0] for k in range(len(sigma))]
    assert ref.jvp is not None
    near(ref.jvp.exact, want, digits=40)


@pytest.mark.parametrize(("a", "message"), [
    ([[1, 2], [2, 4]], "svdvals: singular value 2 is zero: the singular values are not differentiable there"),
    ([[0, 0], [0, 0]], "svdvals: singular value 2 is zero"),
    ([[3, 0], [0, -3]], "svdvals: singular values 1 and 2 are repeated (both 3)"),
])
def test_a_zero_or_repeated_singular_value_says_which(a: Any, message: str) -> None:
    with pytest.raises(DomainError) as info:
        reference("svdvals(a)", a=a)
    assert message in info.value.message


# -- svd -------------------------------------------------------------------------------------------------

TALL: list[list[float]] = [[1, 2], [0.5, -1], [2, 0.25]]
WIDE: list[list[float]] = [[1, 2, 0.5], [0.5, -1, 2]]


def _svd(a: Any) -> tuple[Any, Any, Any]:
    """mpmath's reduced SVD with each pair's sign read on U's column by the lowering's rule."""
    uu, sigma, vt = mpmath.svd_r(a if isinstance(a, mpmath.matrix) else mp(a), full_matrices=False)
    u = _signed(uu)
    for k in range(u.cols):
        if any(u[i, k] != uu[i, k] for i in range(u.rows)):
            for j in range(vt.cols):
                vt[k, j] = -vt[k, j]
    return u, [sigma[k] for k in range(len(sigma))], vt


@pytest.mark.parametrize("a", [TALL, WIDE, GENERAL], ids=["tall", "wide", "square"])
def test_the_svd_is_mpmaths_with_the_sign_of_each_pair_read_on_u(a: Any, digits60: Any) -> None:
    u, sigma, vt = _svd(a)
    got = [reference(f"svd(a)[{k}]", a=a).value for k in range(3)]
    near(got[0], u)
    near(got[1], sigma)
    near(got[2], vt)
    rebuilt = mpmath.matrix(got[0].tolist()) * mpmath.diag(list(got[1])) * mpmath.matrix(got[2].tolist())
    near(np.asarray(rebuilt.tolist(), dtype=object), mp(a))


@pytest.mark.parametrize("a", [TALL, WIDE], ids=["tall", "wide"])
def test_the_derivatives_of_u_and_vh_are_those_of_mpmaths_svd(a: Any, digits60: Any) -> None:
    """The JVP and the JVP of JVP of U and Vh along a direction, against mpmath's own SVD differentiated at 60
    digits (its signs fixed by the same rule, which holds near the point)."""
    direction = np.linspace(-1, 1, np.size(a)).reshape(np.shape(a))
    for k in (0, 2):
        ref = modes(f"svd(a)[{k}]", {"a": a}, {"a": direction}, np.ones(np.shape(reference(f"svd(a)[{k}]", a=a).value)))

        def derivative(order: int, shape: tuple[int, int], k: int = k) -> list[list[Any]]:
            return [[mpmath.diff(lambda t, i=i, j=j: _svd(mp(a) + t * mp(direction))[k][i, j], 0, order)
                     for j in range(shape[1])] for i in range(shape[0])]

        assert ref.jvp is not None and ref.jvp_of_jvp is not None
        near(ref.jvp.exact, derivative(1, ref.jvp.exact.shape), digits=35)
        near(ref.jvp_of_jvp.exact, derivative(2, ref.jvp.exact.shape), digits=30)


def test_svd_refuses_what_svdvals_refuses_and_an_unreadable_sign() -> None:
    with pytest.raises(DomainError, match="svd: singular value 2 is zero"):
        reference("svd(a)[0]", a=[[1, 2], [2, 4]])
    with pytest.raises(DomainError) as info:
        reference("svd(a)[2]", a=[[3, 0], [0, -3]])
    assert "svd: singular values 1 and 2 are repeated (both 3): the singular vectors are not determined where " \
        "two singular values meet" in info.value.message
    # [[3, -2], [6, 1]] has orthogonal columns: u_1 = (1, 2)/sqrt(5), whose 1 is half its 2
    with pytest.raises(DomainError, match="svd: left singular vector 1 has an entry at half its largest"):
        reference("svd(a)[0]", a=[[3, -2], [6, 1]])
    reference("svd(a)[1]", a=[[3, -2], [6, 1]])  # S alone has no sign to read


def test_torch_and_jax_spellings_take_the_same_signs_of_singular_pairs() -> None:
    torch = pytest.importorskip("torch")
    from gradspec.ops.table import TENSOR_OPS

    row = TENSOR_OPS["svd"]
    batch = [TALL, [[-2, 0.25], [1, 1.5], [0.5, -0.75]]]
    for a in (batch, WIDE, GENERAL):
        for k in range(3):
            want = reference(f"svd(a)[{k}]", a=a).value_floats
            got = row.torch(torch, [torch.tensor(a, dtype=torch.float64)], {"output": k}).numpy()
            assert np.allclose(got, want, rtol=0, atol=1e-14), (a, k)
    jax = pytest.importorskip("jax")
    jax.config.update("jax_enable_x64", True)
    for k in range(3):
        got = np.asarray(row.jax(jax, [jax.numpy.asarray(batch)], {"output": k}))
        assert np.allclose(got, reference(f"svd(a)[{k}]", a=batch).value_floats, rtol=0, atol=1e-14)


def test_a_check_says_where_signs_were_fixed() -> None:
    from gradspec.checks.tensor import check_tensor
    from gradspec.ops.linalg_rows import sign_notes

    def steps(text: str) -> Any:
        return build_tensor(parse(text), {"a": (3, 2), "s": (2, 2)}).steps

    singular, eigen = ("signs of singular vectors fixed by gradspec's rule (docs/linalg.md)",
                       "signs of eigenvectors fixed by gradspec's rule (docs/linalg.md)")
    assert sign_notes(steps("svd(a)[0]")) == sign_notes(steps("svd(a)[2]")) == [singular]
    assert sign_notes(steps("svd(a)[1]")) == sign_notes(steps("eigh(s)[0] + svdvals(a)")) == []
    assert sign_notes(steps("sum(eigh(s)[1]) + sum(svd(a)[0] ** 2)")) == [eigen, singular]
    graph = build_tensor(parse("svd(a)[0] ** 2"), {"a": (3, 2)})
    result = check_tensor(graph, {"a": exact(TALL)}, resolve("builtin"), Tolerance())
    assert result.verdict is Verdict.PASS and result.message.endswith("; " + singular)


# -- matrix_exp ----------------------------------------------------------------------------------------


def test_exp_of_a_diagonal_and_of_a_nilpotent_matrix(digits60: Any) -> None:
    near(reference("matrix_exp(a)", a=[[0.5, 0], [0, -3]]).value, [[mpmath.exp(0.5), 0], [0, mpmath.exp(-3)]])
    n = mp([[0, 1, 2], [0, 0, 3], [0, 0, 0]])
    near(reference("matrix_exp(a)", a=n.tolist()).value, mpmath.eye(3) + n + n * n / 2)
    near(reference("matrix_exp(a)", a=GENERAL).value, mpmath.expm(mp(GENERAL)))  # |A| = 3.5: scaled by 1/8


def test_the_derivatives_of_exp_ta_in_t_are_a_and_a_squared_times_it(digits60: Any) -> None:
    a = [[0, 1], [-1, 0.5]]
    ref = modes("matrix_exp(a * t)", {"a": a, "t": 1.5}, {"a": np.zeros((2, 2)), "t": 1.0}, np.ones((2, 2)))
    e = mpmath.expm(mp(a) * mpmath.mpf(1.5))
    assert ref.jvp is not None and ref.jvp_of_jvp is not None
    near(ref.jvp.exact, mp(a) * e)
    near(ref.jvp_of_jvp.exact, mp(a) * mp(a) * e)


def test_the_jvp_of_matrix_exp_is_the_block_formula(digits60: Any) -> None:
    """d exp(A)[U] is the upper right block of exp([[A, U], [0, A]]) (Najfeld and Havel), by mpmath."""
    ref = modes("matrix_exp(a)", {"a": GENERAL}, {"a": U3}, np.ones((3, 3)), asked=frozenset({Mode.JVP}))
    block = mpmath.zeros(6, 6)
    for i in range(3):
        for j in range(3):
            block[i, j] = block[i + 3, j + 3] = GENERAL[i][j]
            block[i, j + 3] = U3[i][j]
    whole = mpmath.expm(block)
    assert ref.jvp is not None
    near(ref.jvp.exact, [[whole[i, j + 3] for j in range(3)] for i in range(3)])


# -- conditions, shapes and engines ---------------------------------------------------------------------


@pytest.mark.parametrize(("text", "point", "message"), [
    ("eigvalsh(a)", [[2, 0], [0, 2]], "eigvalsh: eigenvalues 1 and 2 are repeated (both 2): the sorted eigenvalues "
                                      "are not differentiable where two meet"),
    ("eigh(a)[0]", [[1, 0, 0], [0, 3, 0], [0, 0, 3]], "eigh: eigenvalues 2 and 3 are repeated (both 3): the "
                                                       "eigenvectors are not determined"),
    ("eigvalsh(a)", [[0, 0], [0, 0]], "eigvalsh: eigenvalues 1 and 2 are repeated (both 0)"),
])
def test_repeated_eigenvalues_say_which_and_why(text: str, point: Any, message: str) -> None:
    with pytest.raises(DomainError) as info:
        reference(text, a=point)
    assert message in info.value.message


def test_a_repeated_eigenvalue_in_a_case_file_is_a_located_load_error(write_case: Callable[..., Path],
                                                                       assert_invalid: Callable[..., list[str]]) -> None:
    assert_invalid(write_case("""
        cases:
          - id: a
            expr: sum(eigvalsh(s))
            at: {s: [[1, 0], [0, 1]]}
          - id: b
            expr: svdvals(a)
            at: {a: [[1, 2], [2, 4]]}
          - id: c
            expr: svd(a)[2]
            at: {a: [[3, 0], [0, -3]]}
        """), [(4, 9, "point 0 is outside the domain: eigvalsh: eigenvalues 1 and 2 are repeated"),
               (7, 9, "point 0 is outside the domain: svdvals: singular value 2 is zero"),
               (10, 9, "point 0 is outside the domain: svd: singular values 1 and 2 are repeated (both 3)")])


def test_a_spectrum_closer_than_the_precision_is_reported_with_its_spacing() -> None:
    from gradspec.checks.tensor import check_tensor

    graph = build_tensor(parse("eigvalsh(a)"), {"a": (2, 2)})
    tiny = Fraction(1, 10**17)
    close = {"a": np.array([[Fraction(1), tiny], [tiny, Fraction(1)]], dtype=object)}
    result = check_tensor(graph, close, resolve("builtin"), Tolerance())
    assert result.verdict is Verdict.SKIP
    assert result.message.startswith("eigenvalue spacing 2e-17 against a largest magnitude of 1 (ratio 5e+16) "
                                     "beyond 1/eps = 4.5e+15 of the engine's precision, in eigvalsh (eigvalsh(a))")
    resolved = {"a": exact([[1, 1e-9], [1e-9, 1]])}
    assert check_tensor(graph, resolved, resolve("builtin"), Tolerance()).verdict is Verdict.PASS
    graph = build_tensor(parse("svdvals(a)"), {"a": (2, 2)})
    flat = {"a": np.array([[Fraction(1)] * 2, [Fraction(1), Fraction(1) + Fraction(2) ** -52]], dtype=object)}
    assert "smallest singular value 1.11e-16 against a largest magnitude of 2 (ratio 1.8e+16)" in \
        check_tensor(graph, flat, resolve("builtin"), Tolerance()).message
    graph = build_tensor(parse("svd(a)[0]"), {"a": (2, 2)})  # svd reports its spectrum as svdvals does
    assert "smallest singular value 1.11e-16 against a largest magnitude of 2 (ratio 1.8e+16) beyond 1/eps = " \
        "4.5e+15 of the engine's precision, in svd" in check_tensor(graph, flat, resolve("builtin"), Tolerance()).message


@pytest.mark.parametrize("text", ["sum(eigvalsh(s))", "sum(eigh(s)[1] * eigh(s)[0])", "sum(svdvals(a))",
                                  "sum(matrix_exp(a))", "sum(svd(a)[0] * svd(a)[1]) + sum(svd(a)[2])"])
def test_the_builtin_engine_runs_them_through_the_lowering(text: str) -> None:
    from gradspec.checks.tensor import check_tensor

    arrays = {"a": exact(GENERAL), "s": exact(SYM)}
    program = parse(text)
    shapes = {n: arrays[n].shape for n in program.inputs}
    result = check_tensor(build_tensor(program, shapes), {n: arrays[n] for n in shapes}, resolve("builtin"),
                          Tolerance(), modes=frozenset({Mode.JVP, Mode.HVP}))
    assert result.verdict is Verdict.PASS, result


def test_tinygrad_has_no_svd_and_says_so() -> None:
    from gradspec.checks.tensor import check_tensor

    engine = resolve("tinygrad")
    if getattr(engine, "reason", None):
        pytest.skip(str(engine.reason))
    result = check_tensor(build_tensor(parse("svd(a)[0]"), {"a": (3, 2)}), {"a": exact(TALL)}, engine, Tolerance())
    assert (result.verdict, result.message) == (Verdict.SKIP, "tinygrad has no svd")


@pytest.mark.parametrize(("text", "shapes", "message"), [
    ("eigvalsh(a)", {"a": (2, 3)}, "eigvalsh: a must be square (its last two axes equal), got [2, 3]"),
    ("eigh(a)", {"a": (2, 2)}, "eigh returns a tuple (eigenvalues, eigenvectors); subscript it"),
    ("eigh(a)[2]", {"a": (2, 2)}, "eigh returns 2 outputs (eigenvalues, eigenvectors)"),
    ("svdvals(a)", {"a": (3,)}, "svdvals: a needs at least two axes"),
    ("svd(a)", {"a": (3, 2)}, "svd returns a tuple (U, S, Vh); subscript it"),
    ("svd(a)[3]", {"a": (3, 2)}, "svd returns 3 outputs (U, S, Vh)"),
    ("svd(a)[0]", {"a": (3,)}, "svd: a needs at least two axes"),
    ("matrix_exp(a)", {"a": (4, 2, 3)}, "matrix_exp: a must be square"),
])
def test_operands_that_do_not_fit_are_refused_at_the_call(text: str, shapes: dict[str, tuple[int, ...]],
                                                          message: str) -> None:
    with pytest.raises(ExpressionError) as info:
        build_tensor(parse(text), shapes)
    assert message in str(info.value)


def test_shapes_follow_the_batch() -> None:
    for text, shape in [("eigvalsh(a)", (2, 3)), ("eigh(a)[1]", (2, 3, 3)), ("eigh(a)[0]", (2, 3)),
                        ("matrix_exp(a)", (2, 3, 3))]:
        assert build_tensor(parse(text), {"a": (2, 3, 3)}).shape == shape
    assert build_tensor(parse("svdvals(a)"), {"a": (4, 2, 3)}).shape == (4, 2)
    for shape, want in [((4, 3, 2), [(4, 3, 2), (4, 2), (4, 2, 2)]), ((2, 3), [(2, 2), (2,), (2, 3)])]:
        assert [build_tensor(parse(f"svd(a)[{k}]"), {"a": shape}).shape for k in range(3)] == want
