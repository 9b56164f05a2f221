"""gradspec opinfo: torch's OpInfo samples converted into tensor cases through the mapping table, their
skip reasons, the listing and its count line, exit codes, and the message without the extra."""

from __future__ import annotations

import io
import re
import sys
from types import SimpleNamespace
from typing import Any

import pytest

from gradspec.cli import main
from gradspec.modes import Mode
from gradspec.ops.table import OPS, TENSOR_OPS
from gradspec.results import Verdict
from gradspec.tools.opinfo import claimed_modes, convert, coverage, prepare
from gradspec.tools.opinfo_map import TABLE, E

torch = pytest.importorskip("torch")
_ALL = [Mode.VALUE, Mode.VJP, Mode.JVP, Mode.HVP, Mode.JVP_OF_JVP]


def _run(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(list(argv), stdout=out, stderr=err)
    return code, out.getvalue(), err.getvalue()


@pytest.fixture(scope="module")
def op_db() -> list[Any]:
    """torch's OpInfo database, imported once for the module (it takes seconds)."""
    pytest.importorskip("expecttest", reason="the gradspec[opinfo] extra is not installed")
    from gradspec.tools.opinfo import load_op_db

    return load_op_db()


def _info(op_db: list[Any], name: str) -> Any:
    return next(i for i in op_db if i.name + (f".{i.variant_test_name}" if i.variant_test_name else "") == name)


def _sample(x: Any, *args: Any, **kwargs: Any) -> Any:
    pytest.importorskip("expecttest", reason="the gradspec[opinfo] extra is not installed")  # torch's helpers need it
    from torch.testing._internal.opinfo.core import SampleInput

    return SampleInput(x, args=args, kwargs=kwargs)


def _t(values: Any, grad: bool = True, dtype: Any = None) -> Any:
    return torch.tensor(values, dtype=dtype or torch.float64, requires_grad=grad and dtype is None)


# -- the missing extra --------------------------------------------------------------------------------


def test_without_the_extra_opinfo_says_what_to_install_and_exits_2(monkeypatch: pytest.MonkeyPatch) -> None:
    # None in sys.modules makes the import fail as a missing module does.
    monkeypatch.setitem(sys.modules, "torch.testing._internal.common_methods_invocations", None)
    code, out, err = _run("opinfo", "--list")
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and "pip install 'gradspec[opinfo]'" in err and err.startswith("gradspec: opinfo needs")


# -- converting real samples ----------------------------------------------------------------------------


def test_a_unary_sample_becomes_a_tensor_case_with_the_samples_values(op_db: list[Any]) -> None:
    sample = next(iter(_info(op_db, "erf").sample_inputs("cpu", torch.float64, requires_grad=True)))
    got = convert("erf", TABLE["erf"], sample, 0, _ALL)
    assert not got.skipped and len(got.cases) == 1
    case = got.cases[0]
    assert case["expr"] == "erf(x)" and case["id"] == "erf-0"
    assert case["at"]["x"] == sample.input.tolist() and case["check"] == ["value", "vjp", "jvp", "hvp", "jvp-of-jvp"]
    assert "data_inputs" not in case


def test_keywords_follow_the_row_and_dim_becomes_axis(op_db: list[Any]) -> None:
    softplus = next(iter(_info(op_db, "nn.functional.softplus").sample_inputs("cpu", torch.float64, requires_grad=True)))
    assert convert("sp", TABLE["nn.functional.softplus"], softplus, 0, _ALL).cases[0]["expr"] == \
        "softplus(x, beta=3, threshold=0.2)"
    x = _t([[1.0, 2.0], [3.0, 4.0]])
    assert convert("sum", TABLE["sum"], _sample(x, dim=(-1,), keepdim=False), 0, _ALL).cases[0]["expr"] == "sum(x, axis=-1)"
    gelu = convert("g", TABLE["nn.functional.gelu"], _sample(x, approximate="tanh"), 0, _ALL).cases[0]
    assert gelu["expr"] == 'gelu(x, approximate="tanh")'
    neg = convert("c", TABLE["nn.functional.leaky_relu"], _sample(x, negative_slope=-0.5), 0, _ALL).cases[0]
    assert neg["expr"] == "leaky_relu(x, negative_slope=-0.5)"
    both = convert("sub", TABLE["sub"], _sample(x, _t([1.5, -2.0])), 3, _ALL).cases[0]
    assert both["expr"] == "x - y" and both["at"]["y"] == [1.5, -2.0]
    constant = convert("mul", TABLE["mul"], _sample(x, -2.5), 0, _ALL).cases[0]
    assert constant["expr"] == "x * (-2.5)" and list(constant["at"]) == ["x"]


def test_the_special_and_shrinking_entries_pass_their_keywords(op_db: list[Any]) -> None:
    def first(name: str, index: int = 0) -> dict[str, Any]:
        sample = list(_info(op_db, name).sample_inputs("cpu", torch.float64, requires_grad=True))[index]
        got = convert(name, TABLE[name], sample, index, _ALL)
        assert not got.skipped, got.skipped
        return got.cases[0]

    assert first("logit")["expr"] == "logit(x)" and first("logit", 1)["expr"] == "logit(x, eps=0.2)"
    assert first("nn.functional.threshold")["expr"] == "threshold(x, threshold=-7.582430495695129, value=-0.6046891126565539)"
    assert first("nn.functional.hardshrink")["expr"] == "hardshrink(x, lambd=-0.5)"  # torch's takes any lambd
    assert first("nn.functional.softshrink")["expr"] == "softshrink(x, lambd=0.0)"
    assert first("special.xlog1py")["expr"] == "xlog1py(x, y)" and first("hypot")["expr"] == "hypot(x, y)"
    assert [first(n)["expr"] for n in ("special.entr", "special.ndtr", "log2", "exp2", "deg2rad", "sinc")] == [
        "entr(x)", "ndtr(x)", "log2(x)", "exp2(x)", "deg2rad(x)", "sinc(x)"]
    inplace = convert("t", TABLE["nn.functional.threshold"], _sample(_t([1.0]), 0.5, -1.0, True), 0, _ALL)
    assert inplace.cases == [] and inplace.skipped == "inplace=True: gradspec's threshold takes only inplace=False"


def test_a_boolean_condition_and_a_class_target_are_data_inputs() -> None:
    x, y = _t([[1.0, 2.0]]), _t([[3.0, 4.0]])
    where = convert("where", TABLE["where"], _sample(x, _t([[True, False]], dtype=torch.bool), y), 0, _ALL).cases[0]
    assert where["expr"] == "where(y > 0.5, x, z)" and where["data_inputs"] == ["y"] and where["at"]["y"] == [[1, 0]]
    target = _t([2, 0], dtype=torch.int64)
    ce = convert("ce", TABLE["nn.functional.cross_entropy"], _sample(_t([[0.1, 0.2, 0.3]] * 2), target), 0, _ALL).cases[0]
    assert ce["expr"] == "cross_entropy(x, y)" and ce["data_inputs"] == ["y"] and ce["at"]["y"] == [2, 0]


def test_an_operand_torch_does_not_differentiate_is_data() -> None:
    got = convert("add", TABLE["add"], _sample(_t([1.0, 2.0]), _t([3.0, 4.0], grad=False)), 0, _ALL).cases[0]
    assert got["data_inputs"] == ["y"]


@pytest.mark.parametrize(("name", "sample", "reason"), [
    ("add", lambda: _sample(_t([1.0]), _t([2.0]), alpha=2), "alpha=2; gradspec's add takes only alpha=1"),
    ("sum", lambda: _sample(_t([[1.0]]), dim=0, keepdim=True), "keepdim=True; gradspec's sum takes only keepdim=False"),
    ("sum", lambda: _sample(_t([[1.0]]), dim=(0, 1)), "dim=(0, 1); gradspec's sum takes one integer"),
    ("erf", lambda: _sample(torch.zeros(1, 0, 3, dtype=torch.float64)), "input is a 0-size tensor (shape [1, 0, 3])"),
    ("erf", lambda: _sample(torch.ones(2, dtype=torch.complex128)), "input is a complex tensor"),
    ("add", lambda: _sample(_t([1.0]), _t([2], dtype=torch.int64)),
     "other is a int64 tensor in a slot gradspec differentiates"),
    ("clamp", lambda: _sample(_t([1.0]), _t([0.0]), None), "min is a tensor; gradspec's clamp takes a number there"),
    ("erf", lambda: _sample(_t([1.0, float("inf")])), "input has a non-finite element"),
    ("matmul", lambda: _sample(_t([1.0]), 2.0), "other is a Python number; gradspec's matmul takes a tensor there"),
    ("transpose", lambda: _sample(_t([[[1.0]]]), 0, 1), "gradspec's transpose swaps the last two axes only"),
    ("softmax", lambda: _sample(_t([1.0]), 0, dtype=torch.float32),
     "dtype=torch.float32; gradspec's softmax takes only dtype=None"),
])
def test_a_sample_gradspec_cannot_express_is_skipped_with_the_reason(name: str, sample: Any, reason: str) -> None:
    got = convert(name, TABLE[name], sample(), 0, _ALL)
    assert got.cases == [] and got.skipped.replace(": ", "; ") == reason


def test_multi_output_entries_judge_each_output_in_a_case_of_its_own() -> None:
    # Any row renders so; the table's multi-output entries (linalg.qr, sort) name rows that land later.
    entry = E("max", outputs=(0, 1))
    cases = convert("linalg.qr", entry, _sample(_t([[2.0, 1.0], [1.0, 3.0]])), 4, _ALL).cases
    assert [c["expr"] for c in cases] == ["max(x)[0]", "max(x)[1]"]
    assert [c["id"] for c in cases] == ["linalg.qr-4-out0", "linalg.qr-4-out1"]
    hermitian = convert("eigvalsh", E("sum", wrap="sym"), _sample(_t([[2.0, 1.0], [0.0, 3.0]])), 0, _ALL)
    assert hermitian.cases[0]["expr"] == "sum((x + transpose(x)))"


def test_svd_entries_judge_u_s_and_vh_and_take_full_matrices_only_when_square() -> None:
    tall, square = _t([[1.0, 2.0], [0.5, -1.0], [2.0, 0.25]]), _t([[1.0, 2.0], [0.5, -1.0]])
    linalg = convert("linalg.svd", TABLE["linalg.svd"], _sample(tall, full_matrices=False), 0, _ALL).cases
    assert [c["expr"] for c in linalg] == ["svd(x)[0]", "svd(x)[1]", "svd(x)[2]"]
    full = convert("linalg.svd", TABLE["linalg.svd"], _sample(square, full_matrices=True), 0, _ALL).cases
    assert [c["expr"] for c in full] == ["svd(x)[0]", "svd(x)[1]", "svd(x)[2]"]  # the same function when square
    old = convert("svd", TABLE["svd"], _sample(tall, some=True), 0, _ALL).cases
    assert [c["expr"] for c in old] == ["svd(x)[0]", "svd(x)[1]", "transpose(svd(x)[2])"]  # torch.svd returns V
    for name, kwargs, reason in [
        ("linalg.svd", {"full_matrices": True}, "full_matrices=True on a [3, 2] matrix; gradspec's svd is the reduced "
                                                "one, the same function only when square"),
        ("linalg.svd", {}, "full_matrices=True on a [3, 2] matrix"),  # torch's default
        ("svd", {"some": False}, "some=False on a [3, 2] matrix"),
        ("svd", {"compute_uv": False}, "compute_uv=False; gradspec's svd takes only compute_uv=True"),
    ]:
        got = convert(name, TABLE[name], _sample(tall, **kwargs), 0, _ALL)
        assert got.cases == [] and got.skipped.replace(": ", "; ").startswith(reason), got.skipped


def test_prelu_samples_run_where_torchs_weight_broadcasts_as_gradspecs() -> None:
    entry = TABLE["nn.functional.prelu"]
    one = convert("p", entry, _sample(_t([[1.0, -2.0]]), _t(0.25)), 0, _ALL).cases
    assert [c["expr"] for c in one] == ["prelu(x, y)"] and one[0]["at"]["y"] == 0.25
    per_channel = convert("p", entry, _sample(_t([[1.0, -2.0]]), weight=_t([0.25, 0.5])), 0, _ALL).cases
    assert [c["expr"] for c in per_channel] == ["prelu(x, y)"]  # [N, C]: the channels are the last axis
    for x, w in (([[[1.0, -2.0], [3.0, -1.0]]], [0.25, 0.5]), (1.0, [0.25])):
        got = convert("p", entry, _sample(_t(x), _t(w)), 0, _ALL)
        assert got.cases == [] and "torch applies a weight along axis 1 and keeps the input's shape" in got.skipped


def test_eigh_samples_with_uplo_u_read_the_upper_triangle() -> None:
    a = _t([[2.0, 1.0], [0.0, 3.0]])
    upper = convert("linalg.eigh", TABLE["linalg.eigh"], _sample(a, UPLO="U"), 0, _ALL).cases
    assert [c["expr"] for c in upper] == ['eigh((x + transpose(x)), uplo="U")[0]', 'eigh((x + transpose(x)), uplo="U")[1]']
    lower = convert("linalg.eigvalsh", TABLE["linalg.eigvalsh"], _sample(a, UPLO="L"), 0, _ALL).cases
    assert [c["expr"] for c in lower] == ["eigvalsh((x + transpose(x)))"]


# -- modes ------------------------------------------------------------------------------------------------


def _claims(forward: bool = True, gradgrad: bool = True, fwbw: bool = True) -> Any:
    return SimpleNamespace(supports_autograd=True, supports_forward_ad=forward, supports_gradgrad=gradgrad,
                           supports_fwgrad_bwgrad=fwbw)


def test_every_claimed_mode_is_judged_and_an_unclaimed_one_asked_for_is_named() -> None:
    assert claimed_modes(_claims(), None, 1) == (_ALL, 1, [])
    assert claimed_modes(_claims(forward=False, fwbw=False), None, 1)[0] == [Mode.VALUE, Mode.VJP, Mode.HVP]
    # native_layer_norm claims forward over reverse but no forward AD: forward over forward is not claimed
    assert claimed_modes(_claims(forward=False), None, 1)[0] == [Mode.VALUE, Mode.VJP, Mode.HVP]
    modes, order, dropped = claimed_modes(_claims(fwbw=False, gradgrad=False), [Mode.VALUE, Mode.JVP_OF_JVP], 3)
    assert modes == [Mode.VALUE] and order == 1
    assert dropped == ["jvp-of-jvp (OpInfo's supports_fwgrad_bwgrad is False)",
                       "order 3 (OpInfo's supports_gradgrad is False)"]


# -- loading: the loader's reasons ------------------------------------------------------------------------


class _FakeInfo(SimpleNamespace):
    """An OpInfo entry with samples of the test's choosing."""

    def sample_inputs(self, device: str, dtype: Any, requires_grad: bool = False) -> list[Any]:
        return list(self.samples)

    def supported_dtypes(self, device: str) -> set[Any]:
        return {torch.float64, torch.float32}


def _fake(name: str, *samples: Any, variant: str = "") -> _FakeInfo:
    return _FakeInfo(name=name, variant_test_name=variant, samples=samples, gradcheck_wrapper=lambda op, *a, **k: op(*a, **k),
                     **vars(_claims()))


def test_a_sample_on_a_kink_or_outside_a_domain_is_skipped_with_the_loaders_reason(tmp_path: Any) -> None:
    relu = _fake("nn.functional.relu", _sample(_t([0.0, 1.0])), _sample(_t([2.0, 1.0])))
    log = _fake("log", _sample(_t([-1.0, 2.0])))
    got = prepare([relu, log], None, tmp_path)
    reasons = {r.case_id: r.message for r in got.skipped}
    assert set(reasons) == {"nn.functional.relu-0", "log-0"}
    assert "lies on a kink" in reasons["nn.functional.relu-0"] and "outside the domain" in reasons["log-0"]
    assert all(r.verdict is Verdict.SKIP for r in got.skipped)
    assert [[c.id for c in f.cases] for f in got.files] == [["nn.functional.relu-1"]] and got.samples == 3


def test_an_unknown_or_uncovered_name_is_an_error(tmp_path: Any, op_db: list[Any]) -> None:
    code, _, err = _run("opinfo", "--ops", "no_such_op")
    assert code == 2 and "no differentiable OpInfo entry is named 'no_such_op'" in err
    code, _, err = _run("opinfo", "--ops", "max.reduction_with_dim")
    assert code == 2 and "is not covered: torch.max(x, dim) returns indices too" in err
    assert _run("opinfo", "--check", "nope")[0] == 2 and _run("opinfo", "--uncovered")[0] == 2


# -- listing -------------------------------------------------------------------------------------------------


def test_the_listing_names_each_covered_entry_and_ends_with_the_count(op_db: list[Any]) -> None:
    code, out, _ = _run("opinfo", "--list")
    lines = out.splitlines()
    last = re.fullmatch(r"(\d+) of (\d+) differentiable OpInfo entries covered", lines[-1])
    assert code == 0 and last is not None
    assert int(last[1]) == len(lines) - 1 and int(last[2]) == sum(i.supports_autograd for i in op_db)
    listed = dict(line.split()[:2] for line in lines[:-1])
    assert listed["erf"] == "erf" and listed["nn.functional.gelu"] == "gelu" and listed["amax"] == "max"
    assert listed["special.ndtr"] == "ndtr" and listed["nn.functional.softshrink"] == "softshrink"
    assert listed["logaddexp2"] == "logaddexp2" and listed["sinc"] == "sinc" and int(last[1]) >= 163
    assert listed["linalg.svd"] == listed["svd"] == "svd" and listed["nn.functional.prelu"] == "prelu"
    assert (listed["lgamma"], listed["digamma"], listed["special.log_ndtr"]) == ("lgamma", "digamma", "log_ndtr")
    assert all(op in OPS or op in TENSOR_OPS for op in listed.values())
    code, out, _ = _run("opinfo", "--list", "--uncovered")
    lines = out.splitlines()
    counts = [int(re.match(r"not covered \((\d+)\): ", line)[1]) for line in lines[:-1]]  # type: ignore[index]
    assert sum(counts) + int(last[1]) == int(last[2]) and lines[-1] == last[0]
    assert any(line.startswith("not covered (1): torch.rsub has a derivative of its own") for line in lines)
    assert {name for name, _ in coverage(op_db).covered} == set(listed)


# -- a run ---------------------------------------------------------------------------------------------------


def test_a_run_judges_the_samples_on_torch_and_exits_0(op_db: list[Any], tmp_path: Any) -> None:
    report = tmp_path / "r.json"
    code, out, _ = _run("opinfo", "--ops", "nn.functional.softplus,sum", "--check", "value,vjp,jvp",
                        "--report", str(report), "--out", str(tmp_path / "cases"))
    assert code == 0, out
    assert "OpInfo: 2 entries, 23 samples, 10 cases run, 13 samples not run" in out
    assert "10 pass, 13 skip" in out and report.exists()
    assert sorted(p.name for p in (tmp_path / "cases").iterdir()) == ["nn.functional.softplus.gradspec.yaml",
                                                                       "sum.gradspec.yaml"]


def test_torchs_ndtr_is_imprecise_on_its_own_sample_in_the_left_tail(op_db: list[Any], tmp_path: Any) -> None:
    # torch.special.ndtr is (1 + erf(x/sqrt(2)))/2: at OpInfo's own sample element x = -8.3157 it returns
    # 5.55e-17 (one ulp of 1, halved) where Phi(x) = 4.56e-17, the loss of a sum that cancels (imprecise, not a
    # failure); its derivatives, exp(-x*x/2)/sqrt(2*pi), are right
    code, out, _ = _run("opinfo", "--ops", "special.ndtr", "--check", "value,vjp", "--out", str(tmp_path))
    assert code == 0
    assert "value imprecise: 2 of 20 elements beyond the precision bound; worst at [11]: engine 5.55e-17, exact 4.56e-17" in out
    assert "1 imprecise" in out and "NO FAILURES" in out


def test_a_failing_mode_exits_1_torchs_layer_norm_forward_over_forward(monkeypatch: pytest.MonkeyPatch) -> None:
    # OpInfo's own layer_norm sample 5 (x[1, 2], no affine): torch's forward over forward is wrong there
    # (checked with mpmath: element 0 is -9.7577e-7 exactly, and reverse over reverse agrees; torch's
    # jvp of jvp gives -0.2099 for the directions of the hand check), while value and vjp pass.
    sample = _sample(_t([[-4.826984902407649, -7.582430495695129]]), (2,))
    monkeypatch.setattr("gradspec.tools.opinfo.load_op_db", lambda: [_fake("nn.functional.layer_norm", sample)])
    code, out, _ = _run("opinfo", "--check", "value,vjp,jvp-of-jvp")
    assert code == 1
    assert "FAIL  layer_norm(x)  at x[1, 2]  on torch" in out and re.search(r"jvp-of-jvp .* fail", out)
    assert re.search(r"d/dx \(vjp0\) .* pass", out) and "1 fail" in out
