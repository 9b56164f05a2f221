"""Correct library ops over wide ranges: every element-wise row of the op table that torch and JAX both
spell, sampled at 60 points over a range that reaches its tails (x up to +-30 where the row saturates), in
every mode (value, VJP, both Hessian-vector products, forward over forward), on torch and JAX in float32 and
float64. A correct library must never fail; where its spelling cancels, the precision verdict says
``imprecise`` (docs/verdicts.md). Run by ``python benchmarks/bench.py library-tails``.
"""

from __future__ import annotations

import contextlib
import io
import json
import tempfile
import time
from collections import Counter
from pathlib import Path

RANGES = {
    "tanh": (-12, 12), "sigmoid": (-30, 30), "exp": (-80, 80), "erf": (-5, 5), "erfc": (-5, 12),
    "log1p": (-0.99, 40), "expm1": (-20, 20), "ndtr": (-12, 12), "softplus": (-30, 30), "logsigmoid": (-30, 30),
    "elu": (-30, 5), "selu": (-30, 5), "celu": (-30, 5), "gelu": (-8, 8), "silu": (-30, 30), "mish": (-30, 30),
    "tanhshrink": (-3, 3), "softsign": (-30, 30), "atan": (-1e4, 1e4), "sinh": (-20, 20), "cosh": (-20, 20),
    "asinh": (-1e4, 1e4), "atanh": (-0.999, 0.999), "hardswish": (-4, 4), "hardsigmoid": (-4, 4), "sinc": (-5, 5),
    "entr": (0.001, 5), "logit": (0.0001, 0.9999), "tan": (-1.5, 1.5), "rsqrt": (0.001, 100), "exp2": (-80, 80),
    "log2": (0.001, 100),
}
BINARY = ("logaddexp", "xlogy", "hypot", "logaddexp2", "xlog1py", "atan2")
ENGINES = ("torch:float32", "jax:float32", "torch", "jax")
# torch has no second derivative of hardsigmoid, nor forward mode over its backward: it raises, by design of
# torch ("derivative for aten::hardsigmoid_backward is not implemented", "forward AD with
# aten::hardsigmoid_backward that does not support it")
TORCH_LACKS = "aten::hardsigmoid_backward"


def case_file(count: int = 60) -> str:
    modes = "    check: [value, vjp, hvp, jvp-of-jvp]\n"
    out = ["cases:"]
    for name, (lo, hi) in RANGES.items():
        out.append(f"  - id: {name}-wide\n    expr: {name}(x)\n{modes}"
                   f"    sample: {{count: {count}, vars: {{x: {{uniform: [{lo}, {hi}]}}}}}}")
    out.append(f"  - id: gelu-tanh-wide\n    expr: gelu(x, approximate=\"tanh\")\n{modes}"
               f"    sample: {{count: {count}, vars: {{x: {{uniform: [-8, 8]}}}}}}")
    for name in BINARY:
        out.append(f"  - id: {name}-wide\n    expr: {name}(x, y)\n{modes}    sample: {{count: {count}, vars: "
                   f"{{x: {{uniform: [-30, 30]}}, y: {{uniform: [0.01, 30]}}}}}}")
    return "\n".join(out) + "\n"


def run(count: int = 60) -> None:
    from gradspec.cli import main

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "wide.gradspec.yaml"
        path.write_text(case_file(count))
        print(f"library-tails: {len(RANGES) + 1 + len(BINARY)} element-wise rows, {count} points each, "
              "value, VJP, hvp both ways, jvp-of-jvp")
        for spec in ENGINES:
            report = Path(tmp) / "report.json"
            start = time.perf_counter()
            with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
                main(["run", str(path), "--engine", spec, "-q", "--report", str(report)])
            checks = json.loads(report.read_text())["checks"]
            verdicts = Counter(c["verdict"] for c in checks)
            lacks = sum(1 for c in checks if c["verdict"] == "fail"
                        and all(TORCH_LACKS in q["note"] for q in c["quantities"] if q["verdict"] == "fail"))
            where = Counter(c["case"].removesuffix("-wide") for c in checks if c["verdict"] == "imprecise")
            print(f"  {spec:<14} {len(checks)} checks: {verdicts['pass']} pass, {verdicts['fail'] - lacks} fail "
                  f"(want 0; and {lacks} where torch lacks hardsigmoid's second derivative), {verdicts['imprecise']} "
                  f"imprecise ({time.perf_counter() - start:.0f} s)")
            print("    imprecise by row: " + ", ".join(f"{n} {k}" for n, k in where.most_common()))
