"""The function kind in forward mode and to higher order: a case's ``check:`` list and ``order:``.

A Function with a right jvp and a differentiable backward passes every mode; a backward that detaches
passes its VJPs and fails ``hvp``; a wrong jvp fails ``jvp`` and ``mode consistency`` while its VJPs pass;
a Function without jvp (or a jax.custom_vjp) has its forward-mode quantities skipped with the library's
reason, and the reverse-mode ones still judged. By default a function case checks the value and VJPs only."""

from __future__ import annotations

import io
import json
import textwrap
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from gradspec.checks.function import check_function
from gradspec.cli import main
from gradspec.results import CheckResult, Quantity, Role, Verdict

torch = pytest.importorskip("torch")
fut = pytest.importorskip("tests.functions_under_test")

X = {"x": torch.tensor(np.random.default_rng(11).uniform(-2, 2, (3, 4)))}
EVERY = ["value", "vjp", "jvp", "hvp"]
EXAMPLES = Path(__file__).parent.parent / "examples" / "functions"


def quantity(result: CheckResult, name: str) -> Quantity:
    found = [q for q in result.quantities if q.name == name]
    assert found, f"no quantity {name!r} in {[q.name for q in result.quantities]}"
    return found[0]


def verdicts(result: CheckResult) -> dict[str, Verdict]:
    return {q.name: q.verdict for q in result.quantities}


def xsin(engine: str = "torch", **kw: Any) -> Any:
    def run(fn: Any) -> CheckResult:
        return check_function(fn, "x * sin(x)", X, engine=engine, **kw)
    return run


# -- a correct Function --------------------------------------------------------------------------------
@pytest.mark.parametrize("engine", ["torch", "torch:float32"])
@pytest.mark.parametrize("fn", [fut.xsin, fut.old_xsin], ids=["setup_context", "ctx-in-forward"])
def test_a_function_with_a_right_jvp_and_a_differentiable_backward_passes_every_mode(fn: Any, engine: str) -> None:
    result = xsin(engine, check=EVERY, order=3)(fn)
    assert result.verdict is Verdict.PASS, result.table()
    for name in ("jvp", "mode consistency", "hvp x", "order 2", "order 3"):
        assert quantity(result, name).verdict is Verdict.PASS
    # the engine's numbers are the function's own, compared with the exact ones
    jvp = quantity(result, "jvp")
    assert jvp.engine is not None and jvp.exact is not None and jvp.engine != 0
    assert jvp.tolerance is not None and abs(jvp.engine - jvp.exact) <= jvp.tolerance
    hvp = quantity(result, "hvp x")
    assert hvp.engine is not None and hvp.exact is not None and abs(hvp.exact) > 1e-3
    assert {q.role for q in result.quantities if q.name.startswith(("jvp", "hvp", "order", "mode"))} == {Role.DERIVATIVE}


def test_forward_over_reverse_is_compared_where_torch_func_can_transform_the_function() -> None:
    result = xsin(check=EVERY)(fut.xsin)
    assert quantity(result, "hvp x (fwd-rev)").verdict is Verdict.PASS
    old = xsin(check=EVERY)(fut.old_xsin)  # forward AD of an old-style Function: no forward over reverse
    assert "hvp x (fwd-rev)" not in verdicts(old) and verdicts(old)["hvp x"] is Verdict.PASS


def test_the_jacobian_by_forward_mode_is_taken_column_by_column_when_the_function_cannot_be_vmapped() -> None:
    for fn in (fut.xsin, fut.old_xsin):  # jacfwd vmaps, and neither Function has a vmap rule
        result = xsin(check=["value", "vjp", "jacobian"])(fn)
        assert quantity(result, "jacobian x (fwd)").verdict is Verdict.PASS, result.table()
    wrong = xsin(check=["value", "vjp", "jacobian"])(fut.xsin_wrong_jvp)
    assert quantity(wrong, "jacobian x (fwd)").verdict is Verdict.FAIL


def test_an_old_style_function_is_not_nested_in_forward_mode_and_says_why() -> None:
    result = xsin(check=["value", "vjp", "jvp", "jvp-of-jvp"])(fut.old_xsin)
    assert result.verdict is Verdict.PASS
    q = quantity(result, "jvp-of-jvp")
    assert q.verdict is Verdict.SKIP and "setup_context" in q.note and "one level" in q.note
    assert "jvp-of-jvp not checked: OldXSin.apply has no setup_context" in result.message


def test_forward_over_forward_through_a_torch_function_reads_zero_and_says_why() -> None:
    plain = check_function(lambda x: x * torch.sin(x), "x * sin(x)", X, check=["value", "vjp", "jvp-of-jvp"])
    assert quantity(plain, "jvp-of-jvp").verdict is Verdict.PASS
    q = quantity(xsin(check=["value", "vjp", "jvp-of-jvp"])(fut.xsin), "jvp-of-jvp")
    if q.verdict is Verdict.FAIL:  # torch.func does not differentiate a Function's jvp rule a second time
        assert "all zeros" in q.note and "torch.func does not differentiate its jvp rule" in q.note
    else:
        assert q.verdict is Verdict.PASS


# -- planted bugs ----------------------------------------------------------------------------------
@pytest.mark.parametrize("engine", ["torch", "torch:float32"])
def test_a_backward_that_detaches_passes_its_vjps_and_fails_hvp(engine: str) -> None:
    result = xsin(engine, check=EVERY, order=2)(fut.xsin_detached)
    assert result.verdict is Verdict.FAIL
    got = verdicts(result)
    assert got["x (vjp0)"] is got["x (vjp1)"] is got["x (jacobian)"] is Verdict.PASS
    assert got["jvp"] is got["mode consistency"] is Verdict.PASS
    assert got["linear in the cotangent"] is got["zero cotangent"] is Verdict.PASS
    for name in ("hvp x", "hvp x (fwd-rev)", "order 2"):
        q = quantity(result, name)
        assert q.verdict is Verdict.FAIL
        assert q.engine == 0 and q.exact is not None and abs(q.exact) > 1e-3  # the exact product is not zero
        assert "all zeros where the exact gradient is not" in q.note
        assert "the backward is not differentiable (a .detach()" in q.note
    assert result.culprit is not None and result.culprit.message.startswith("XSinDetached.apply is wrong: hvp x:")


@pytest.mark.parametrize("fn", [fut.xsin_wrong_jvp, fut.old_xsin_wrong_jvp], ids=["sign", "factors swapped"])
def test_a_wrong_jvp_fails_jvp_and_mode_consistency_while_its_vjps_pass(fn: Any) -> None:
    result = xsin(check=["value", "vjp", "jvp", "hvp"])(fn)
    got = verdicts(result)
    assert result.verdict is Verdict.FAIL
    assert got["x (vjp0)"] is got["x (vjp1)"] is got["x (jacobian)"] is got["hvp x"] is Verdict.PASS
    assert got["jvp"] is Verdict.FAIL and "elements over tolerance" in quantity(result, "jvp").note
    consistency = quantity(result, "mode consistency")
    assert consistency.verdict is Verdict.FAIL and "by forward mode" in consistency.note
    assert consistency.abs_error is not None and consistency.tolerance is not None
    assert consistency.abs_error > consistency.tolerance
    assert result.culprit is not None and ": jvp: " in result.culprit.message


def test_a_jvp_that_raises_fails_the_forward_modes_rather_than_skipping_them() -> None:
    from tests.functions_under_test import XSin

    class Raises(XSin):
        @staticmethod
        def jvp(ctx: Any, t: Any) -> Any:
            raise ValueError("jvp is broken")

    result = xsin(check=["value", "vjp", "jvp"])(Raises.apply)
    assert result.verdict is Verdict.FAIL
    q = quantity(result, "jvp")
    assert q.verdict is Verdict.FAIL and "engine raised ValueError: jvp is broken" in q.note


# -- no forward mode -----------------------------------------------------------------------------------
@pytest.mark.parametrize("fn", [fut.xsin_no_jvp, fut.old_xsin_no_jvp], ids=["setup_context", "ctx-in-forward"])
def test_a_function_without_jvp_skips_forward_mode_with_the_reason_and_is_still_judged_in_reverse(fn: Any) -> None:
    result = xsin(check=["value", "vjp", "jvp", "hvp", "jacobian"], order=2)(fn)
    assert result.verdict is Verdict.PASS, result.table()
    for name in ("jvp", "mode consistency", "jacobian x (fwd)"):
        q = quantity(result, name)
        assert q.verdict is Verdict.SKIP and "has no forward mode: it does not implement jvp" in q.note
    assert quantity(result, "hvp x").verdict is Verdict.PASS and quantity(result, "order 2").verdict is Verdict.PASS
    assert "jvp, mode consistency, jacobian x (fwd) not checked: " in result.message
    assert result.message.count("does not implement jvp") == 1


def test_a_function_without_jvp_and_with_a_wrong_backward_still_fails() -> None:
    result = check_function(fut.sin_wrong_argument, "sin(x)", X, check=["value", "vjp", "jvp"])
    assert result.verdict is Verdict.FAIL
    assert quantity(result, "jvp").verdict is Verdict.SKIP


# -- the default -----------------------------------------------------------------------------------
def test_a_function_check_compares_the_value_and_vjps_only_unless_asked() -> None:
    result = check_function(fut.xsin_no_jvp, "x * sin(x)", X)  # torch has forward mode; the Function need not
    assert result.verdict is Verdict.PASS
    assert not [q for q in result.quantities if q.role is Role.DERIVATIVE]
    assert "not checked" not in result.message


def test_a_function_over_values_is_checked_in_reverse_mode_only() -> None:
    from examples.functions import scalar_ops

    result = check_function(scalar_ops.smooth_abs, "sqrt(x*x + y*y + 1)", {"x": 0.5, "y": -1.25}, engine="builtin",
                            check=EVERY, order=2)
    assert result.verdict is Verdict.PASS
    for name in ("jvp", "hvp", "order 2"):
        q = quantity(result, name)
        assert q.verdict is Verdict.SKIP and "Value class" in q.note


# -- JAX -----------------------------------------------------------------------------------------------
SOFTPLUS = {"x": np.linspace(-2, 2, 5), "w": np.linspace(-1, 1.5, 5)}


@pytest.mark.parametrize("engine", ["jax", "jax:float32"])
def test_a_jax_custom_vjp_has_hvp_where_its_bwd_is_differentiable_and_no_forward_mode(engine: str) -> None:
    pytest.importorskip("jax")
    from examples.functions import jax_ops

    result = check_function(jax_ops.scaled_softplus, "w * log(1 + exp(x))", SOFTPLUS, engine=engine, check=EVERY,
                            order=2)
    assert result.verdict is Verdict.PASS, result.table()
    assert quantity(result, "hvp x").verdict is quantity(result, "hvp w").verdict is Verdict.PASS
    assert quantity(result, "order 2").verdict is Verdict.PASS
    q = quantity(result, "jvp")
    assert q.verdict is Verdict.SKIP and "a jax.custom_vjp defines reverse mode only" in q.note


def test_a_jax_custom_vjp_whose_bwd_stops_the_gradient_fails_hvp() -> None:
    jax = pytest.importorskip("jax")
    jnp = jax.numpy

    @jax.custom_vjp
    def f(x: Any) -> Any:
        return x * jnp.sin(x)

    def bwd(x: Any, g: Any) -> tuple[Any]:
        x = jax.lax.stop_gradient(x)
        return (g * (jnp.sin(x) + x * jnp.cos(x)),)

    f.defvjp(lambda x: (f(x), x), bwd)
    result = check_function(f, "x * sin(x)", {"x": X["x"].numpy()}, engine="jax", check=["value", "vjp", "hvp"])
    assert result.verdict is Verdict.FAIL
    assert verdicts(result)["x (vjp0)"] is Verdict.PASS
    q = quantity(result, "hvp x")
    assert q.verdict is Verdict.FAIL and "stop_gradient" in q.note


def test_a_jax_custom_jvp_passes_every_mode_and_a_wrong_rule_fails_jvp() -> None:
    pytest.importorskip("jax")
    from examples.functions import jax_ops

    x = {"x": SOFTPLUS["x"]}
    good = check_function(jax_ops.softplus, "log(1 + exp(x))", x, engine="jax", check=[*EVERY, "jvp-of-jvp", "jacobian"],
                          order=3)
    assert good.verdict is Verdict.PASS, good.table()
    assert {"jvp", "mode consistency", "hvp x", "hvp x (fwd-rev)", "jvp-of-jvp", "jacobian x (fwd)", "order 3"} <= \
        set(verdicts(good))
    bad = check_function(jax_ops.softplus_wrong_jvp, "log(1 + exp(x))", x, engine="jax", check=EVERY)
    assert bad.verdict is Verdict.FAIL
    assert quantity(bad, "jvp").verdict is Verdict.FAIL
    # JAX transposes the one rule for reverse mode: the VJPs are as wrong, and the two modes agree
    assert quantity(bad, "x (vjp0)").verdict is Verdict.FAIL
    assert quantity(bad, "mode consistency").verdict is Verdict.PASS


# -- case files ------------------------------------------------------------------------------------
CASES = """
cases:
- id: xsin-modes
  kind: function
  function: {torch: "fut_modes:xsin"}
  reference: x * sin(x)
  check: [value, vjp, jvp, hvp]
  order: 2
  dtype: [float64, float32]
  sample:
    count: 2
    vars:
      x: {shape: [3, 4], uniform: [-2, 2]}
- id: xsin-default
  kind: function
  function: {torch: "fut_modes:xsin"}
  reference: x * sin(x)
  sample:
    count: 1
    vars:
      x: {shape: [4], uniform: [-2, 2]}
- id: xsin-no-jvp
  kind: function
  function: {torch: "fut_modes:xsin_no_jvp"}
  reference: x * sin(x)
  check: [value, vjp, jvp]
  sample:
    count: 1
    vars:
      x: {shape: [4], uniform: [-2, 2]}
- id: cross-entropy-modes
  kind: function
  function: {torch: "fut_modes:cross_entropy"}
  reference: cross_entropy(logits, target)
  check: [value, vjp, jvp, hvp]
  sample:
    count: 1
    vars:
      logits: {shape: [3, 4], normal: [0, 1]}
      target: {shape: [3], integers: [0, 4], differentiable: false}
"""

MODULE = '''
import torch
from tests.functions_under_test import xsin, xsin_no_jvp, xsin_detached

def cross_entropy(logits, target):
    assert target.dtype == torch.int64, target.dtype  # class targets arrive as integers in every mode
    return torch.nn.functional.cross_entropy(logits, target)
'''


def run_cases(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, text: str) -> tuple[int, dict[str, Any]]:
    (tmp_path / "fut_modes.py").write_text(MODULE, encoding="utf-8")
    (tmp_path / "m.gradspec.yaml").write_text(textwrap.dedent(text), encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    code = main(["run", "m.gradspec.yaml", "--engine", "torch", "--in-process", "--report", "r.json"],
                stdout=io.StringIO(), stderr=io.StringIO())
    return code, json.loads((tmp_path / "r.json").read_text(encoding="utf-8"))


def by_case(report: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = {}
    for check in report["checks"]:
        out.setdefault(check["case"], []).append(check)
    return out


def test_a_case_file_chooses_the_modes_of_a_function_case(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    code, report = run_cases(tmp_path, monkeypatch, CASES)
    checks = by_case(report)
    assert code == 0, json.dumps(report["checks"], indent=1)[:3000]
    names = [q["name"] for q in checks["xsin-modes"][0]["quantities"]]
    for dtype in ("float64", "float32"):  # the mode quantities carry the dtype prefix like the others
        assert {f"{dtype}: jvp", f"{dtype}: mode consistency", f"{dtype}: hvp x", f"{dtype}: order 2"} <= set(names)
    assert all(q["verdict"] == "pass" for c in checks["xsin-modes"] for q in c["quantities"])
    default = [q["name"] for q in checks["xsin-default"][0]["quantities"]]
    assert not [n for n in default if n.startswith(("jvp", "hvp", "mode", "order"))]
    skipped = {q["name"]: q for q in checks["xsin-no-jvp"][0]["quantities"]}
    assert checks["xsin-no-jvp"][0]["verdict"] == "pass"
    assert skipped["jvp"]["verdict"] == "skip" and "does not implement jvp" in skipped["jvp"]["note"]
    ce = {q["name"]: q["verdict"] for q in checks["cross-entropy-modes"][0]["quantities"]}
    assert ce["jvp"] == ce["hvp logits"] == "pass" and "hvp target" not in ce


def test_a_case_file_with_a_detached_backward_fails_hvp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    text = CASES.split("- id: xsin-default")[0].replace("fut_modes:xsin", "fut_modes:xsin_detached")
    code, report = run_cases(tmp_path, monkeypatch, text)
    assert code == 1
    check = by_case(report)["xsin-modes"][0]
    bad = {q["name"] for q in check["quantities"] if q["verdict"] == "fail"}
    assert bad == {f"{d}: {n}" for d in ("float64", "float32") for n in ("hvp x", "hvp x (fwd-rev)", "order 2")}


def test_the_modes_examples_run_as_documented(monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("jax")
    monkeypatch.chdir(EXAMPLES)
    monkeypatch.syspath_prepend(str(EXAMPLES))
    out = io.StringIO()
    code = main(["run", "modes.gradspec.yaml", "--engine", "torch", "--engine", "jax", "--in-process"], stdout=out,
                stderr=io.StringIO())
    assert code == 0, out.getvalue()
    assert "2 xfail" in out.getvalue()  # each planted bug fails, as its case declares


def test_a_function_written_with_a_function_without_jvp_is_read_through_its_code() -> None:
    # what the wrapper calls decides its modes: no call is made to find out, and no error text is read
    def doubled(x: Any) -> Any:
        return 2 * fut.old_xsin_no_jvp(x)

    result = check_function(doubled, "2 * x * sin(x)", X, check=["value", "vjp", "jvp", "hvp", "jvp-of-jvp"], order=2)
    assert result.verdict is Verdict.PASS, result.table()
    assert quantity(result, "hvp x").verdict is quantity(result, "order 2").verdict is Verdict.PASS
    jvp, nested = quantity(result, "jvp"), quantity(result, "jvp-of-jvp")
    assert jvp.verdict is nested.verdict is Verdict.SKIP
    assert "doubled (through OldXSinNoJvp) has no forward mode: it does not implement jvp" in jvp.note
    assert "(through OldXSinNoJvp) has no setup_context" in nested.note
