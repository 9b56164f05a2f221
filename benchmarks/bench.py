"""gradspec's benchmarks: medians and ratios, each measured against its baseline in the same run.

    python benchmarks/bench.py [overhead gradcheck cache scale sweep tensors reference rounding rounding-tensors
                                 functions secondorder modes-reference rounding-tensor-modes]   (default: all)

Each section prints what it compares, the median of several repetitions of each side, the ratio and the
target. Nothing here is a test: timings vary with the machine, ratios much less.
"""

from __future__ import annotations

import contextlib
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # the sections timed in this process import this checkout's gradspec
GRADSPEC = [sys.executable, "-m", "gradspec.cli"]


def median_time(fn: Callable[[], object], repeat: int = 5) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def median_cpu(fn: Callable[[], object], repeat: int = 5) -> float:
    """The median CPU time of this process: on a machine shared with other work, a few milliseconds of
    wall time mostly measure the scheduler; CPU time measures the work (the same on a quiet machine)."""
    times = []
    for _ in range(repeat):
        start = time.process_time()
        fn()
        times.append(time.process_time() - start)
    return statistics.median(times)


def row(label: str, value: str) -> None:
    print(f"  {label:<58} {value}")


def verdict(ratio: float, target: float, better: str) -> str:
    ok = ratio <= target if better == "lower" else ratio >= target
    return f"{ratio:.2f}x (target {'<=' if better == 'lower' else '>='} {target:g}x: {'met' if ok else 'NOT met'})"


# -- 1. overhead over the engine itself ---------------------------------------------------------------


def overhead() -> None:
    """The built-in library's scalar cases (the bare side has no tensor machinery) on the built-in engine:
    first order against the bare forward + backward, then with forward mode, checked by default."""
    from gradspec.casefile.loader import load_file
    from gradspec.casefile.model import Overrides, data_dir, discover
    from gradspec.checks.training import initial_params, mlp_loss
    from gradspec.engines.resolve import resolve
    from gradspec.modes import Mode
    from gradspec.run.runner import run_case

    def scalar(f: Any) -> list[Any]:
        return [c for c in f.cases if c.kind not in ("tensor", "function")]

    first = Overrides(modes=(Mode.VALUE, Mode.VJP))
    cases = [c for p in discover([data_dir("cases")]) for c in scalar(load_file(p).with_overrides(first))]
    engine = resolve("builtin")
    for case in cases:  # warm every cache: disk and memory
        run_case(case, engine)

    def bare() -> None:
        for case in cases:
            if case.spec is not None and case.kind == "training":
                spec = case.spec
                params = initial_params(spec)  # type: ignore[arg-type]
                for _ in range(spec.steps + 1):  # type: ignore[union-attr]
                    leaves = [engine.leaf(p) for p in params]
                    loss = mlp_loss(engine, leaves, spec)  # type: ignore[arg-type]
                    grads = engine.gradients(loss, leaves)
                    params = [p - spec.lr * g for p, g in zip(params, grads, strict=True)]  # type: ignore[union-attr, operator]
                continue
            assert case.graph is not None
            for point in case.points:
                with contextlib.suppress(Exception):  # the domain-error cases: the engine may raise
                    engine.run(case.graph, point.floats())

    def gradspec_run(overrides: Any) -> Callable[[], None]:
        def go() -> None:
            for p in discover([data_dir("cases")]):
                for case in scalar(load_file(p).with_overrides(overrides)):
                    run_case(case, engine)
        return go

    for case in (c for p in discover([data_dir("cases")]) for c in scalar(load_file(p))):
        run_case(case, engine)  # warm the forward-mode references too
    checks = sum(max(1, len(c.points)) for c in cases)
    t_bare, t_run, t_modes = median_cpu(bare, 3), median_cpu(gradspec_run(first), 3), median_cpu(gradspec_run(None), 3)
    print(f"overhead: the built-in library's scalar cases ({len(cases)} cases, {checks} checks) on the built-in engine")
    row("bare forward + backward of the same graphs (CPU, median of 3)", f"{t_bare:.2f} s")
    row("warm gradspec run --check value,vjp: load, check, compare (CPU, median of 3)", f"{t_run:.2f} s")
    row("ratio", verdict(t_run / t_bare, 1.2, "lower"))
    row("warm gradspec run with the default modes (forward mode and the library's own check: lists)", f"{t_modes:.2f} s")


# -- 2. against torch.autograd.gradcheck ---------------------------------------------------------------


def gradcheck() -> None:
    import torch

    from gradspec.casefile.loader import load_file
    from gradspec.casefile.model import data_dir
    from gradspec.checks.check import check_graph
    from gradspec.engines.resolve import resolve
    from gradspec.results import Tolerance

    torch.set_num_threads(1)
    engine = resolve("torch")
    cases = [c for c in load_file(data_dir("cases") / "compositions.gradspec.yaml").cases if c.kind == "gradient"]
    work = [(c.graph, p) for c in cases for p in c.points[:10] if c.graph is not None]
    tol = Tolerance()
    for graph, point in work:  # warm: exact references cached
        check_graph(graph, point.exact(), engine, tol)

    def ours() -> None:
        for graph, point in work:
            check_graph(graph, point.exact(), engine, tol)

    def function(graph):  # type: ignore[no-untyped-def]
        names = [n for n, _ in graph.inputs]

        def f(*tensors):  # type: ignore[no-untyped-def]
            return engine.build(graph, dict(zip(names, tensors, strict=True)))[graph.output]

        return f

    def theirs() -> None:
        for graph, point in work:
            inputs = tuple(torch.tensor(v, dtype=torch.float64, requires_grad=True) for v in point.floats().values())
            torch.autograd.gradcheck(function(graph), inputs)

    t_ours, t_theirs = median_cpu(ours), median_cpu(theirs)
    n = len(work)
    print(f"gradcheck: {n} checks of the composition cases, torch float64, CPU time of this process (median of 5)")
    row("torch.autograd.gradcheck (numerical Jacobian), per check", f"{t_theirs / n * 1e3:.3f} ms")
    row("gradspec torch adapter against the cached exact reference", f"{t_ours / n * 1e3:.3f} ms")
    row("speed-up", verdict(t_theirs / t_ours, 3, "higher"))


# -- 3. cold against warm --------------------------------------------------------------------------------


def cache() -> None:
    def timed(args: list[str], env: dict[str, str]) -> float:
        start = time.perf_counter()
        subprocess.run(GRADSPEC + args, env=env, check=True, capture_output=True)
        return time.perf_counter() - start

    print("cache: a cold run (empty disk cache) against a warm one, each a fresh process")
    for label, args in (("built-in library", ["run", "-q"]), ("symbolic-heavy library", ["run", "-q", str(_heavy())])):
        colds, warms = [], []
        for _ in range(3):
            folder = tempfile.mkdtemp()
            env = _env(GRADSPEC_CACHE_DIR=folder)
            colds.append(timed(args, env))
            warms.append(timed(args, env))
        cold, warm = statistics.median(colds), statistics.median(warms)
        row(f"{label}: cold / warm (median of 3)", f"{cold:.2f} s / {warm:.2f} s")
        row(f"{label}: speed-up", verdict(cold / warm, 10, "higher"))


def _heavy() -> Path:
    """Cases whose cost is the SymPy derivation: long compositions, a few points each."""
    folder = Path(tempfile.mkdtemp())
    lines = ["cases:"]
    for k in range(40):
        steps = [f"t0 = x*{k + 1}"] + [f"t{i} = sin(t{i - 1}*y) * cos(t{i - 1} + y) + t{i - 1}*0.1" for i in range(1, 6)]
        lines += [f"  - id: heavy-{k}", f"    expr: \"{'; '.join(steps)}; t5\"", "    at: [{x: 0.3, y: 0.7}, {x: -0.2, y: 0.4}]"]
    path = folder / "heavy.gradspec.yaml"
    path.write_text("\n".join(lines) + "\n")
    return path


# -- 4. scale ----------------------------------------------------------------------------------------------


def scale() -> None:
    folder = Path(tempfile.mkdtemp())
    ops = ["x * y", "tanh(x) * y", "exp(x) - y", "sigmoid(x*y)", "log(x*x + 1) + y", "sin(x) * cos(y)",
           "sqrt(x*x + y*y)", "x ** 3 - y", "relu(x) + abs(y) * 0.5", "(x + y) / (y*y + 1)"]
    per_file = 1000
    for f in range(10):
        lines = ["cases:"]
        for k in range(per_file):
            i = f * per_file + k
            lines += [f"  - id: c{i}", f"    expr: {ops[i % len(ops)]}",
                      f"    at: {{x: {0.1 + (i % 97) / 50:.2f}, y: {1.31 - (i % 89) / 40:.3f}}}"]
        (folder / f"gen{f}.gradspec.yaml").write_text("\n".join(lines) + "\n")
    print("scale: a generated library of 10,000 cases in 10 files")

    def pytest_run(where: Path, cache: str, *extra: str) -> float:
        start = time.perf_counter()
        subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--rootdir", str(where),
                        str(where), *extra], env=_env(GRADSPEC_CACHE_DIR=cache), check=True, capture_output=True)
        return time.perf_counter() - start

    colds = [pytest_run(folder, tempfile.mkdtemp(), "--collect-only") for _ in range(3)]
    row("pytest --collect-only, empty cache (median of 3)", f"{statistics.median(colds):.2f} s")
    cache = tempfile.mkdtemp()
    subprocess.run([*GRADSPEC, "run", "-q", str(folder)], env=_env(GRADSPEC_CACHE_DIR=cache), check=True,
                   capture_output=True)  # warm the cache
    collect = statistics.median(pytest_run(folder, cache, "--collect-only") for _ in range(3))
    row("pytest --collect-only, warm (median of 3; target < 3 s)", f"{collect:.2f} s")
    start = time.perf_counter()
    child = subprocess.run([sys.executable, "-c", "import resource, subprocess, sys; "
                            f"subprocess.run({[*GRADSPEC, 'run', '-q', str(folder)]!r}); "
                            "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)"],
                           env=_env(GRADSPEC_CACHE_DIR=cache), check=True, capture_output=True, text=True)
    warm = time.perf_counter() - start
    peak_mb = int(child.stdout.strip().splitlines()[-1]) / 1024
    row("warm gradspec run (target < 30 s)", f"{warm:.2f} s")
    row("peak memory of that run (target < 500 MB)", f"{peak_mb:.0f} MB")
    serial = statistics.median(pytest_run(folder, cache) for _ in range(3))
    parallel = statistics.median(pytest_run(folder, cache, "-n", "2") for _ in range(3))
    row("pytest serial / pytest -n 2 (median of 3)", f"{serial:.2f} s / {parallel:.2f} s")
    row("speed-up on 2 cores", verdict(serial / parallel, 1.7, "higher"))
    # The baseline: pytest-xdist's own cost per test, with tests that do nothing at all.
    empty = Path(tempfile.mkdtemp())
    (empty / "test_empty.py").write_text(
        "import pytest\n\n@pytest.mark.parametrize('i', range(10_000))\ndef test_nothing(i):\n    pass\n")
    serial = statistics.median(pytest_run(empty, cache) for _ in range(3))
    parallel = statistics.median(pytest_run(empty, cache, "-n", "2") for _ in range(3))
    row("baseline, 10,000 empty tests: serial / -n 2", f"{serial:.2f} s / {parallel:.2f} s ({serial / parallel:.2f}x)")
    print("scale: gradspec's own workers, one process against `gradspec run --jobs 2` (median of 3)")
    for label, target in (("the 10,000 generated cases", [str(folder)]), ("the built-in library", [])):
        def timed(*extra: str, target: list[str] = target) -> float:
            start = time.perf_counter()
            subprocess.run([*GRADSPEC, "run", "-q", *target, *extra], env=_env(GRADSPEC_CACHE_DIR=cache), check=True,
                           capture_output=True)
            return time.perf_counter() - start

        timed()  # warm the cache
        serial = statistics.median(timed() for _ in range(3))
        parallel = statistics.median(timed("--jobs", "2") for _ in range(3))
        row(f"{label}: serial / --jobs 2", f"{serial:.2f} s / {parallel:.2f} s ({serial / parallel:.2f}x)")


def _env(**extra: str) -> dict[str, str]:
    """The environment of a measured child: as given, plus ``extra``, with bytecode caching on.

    ``PYTHONDONTWRITEBYTECODE`` would make every child compile, and pytest rewrite, every plugin module
    from source on each start: not what a user's machine does.
    """
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    return {**env, **extra}


# -- 5. sweeps -------------------------------------------------------------------------------------------


def sweep() -> None:
    from gradspec.checks.check import prepare
    from gradspec.engines.resolve import resolve

    graph = prepare("exp(x) * tanh(x) + x*x", ["x"])
    n = 1_000_000
    xs = [-5 + 10 * i / (n - 1) for i in range(n)]
    print(f"sweep: {n:,} points of d/dx (exp(x)*tanh(x) + x*x) in one batched call")
    for spec in ("torch", "jax"):
        engine = resolve(spec)
        batch = getattr(engine, "run_batch", None)
        if batch is None:
            row(spec, "skipped: " + (getattr(engine, "reason", "") or "no batched evaluation"))
            continue
        batch(graph, {"x": xs[:1000]})  # warm up
        t = median_time(lambda batch=batch: batch(graph, {"x": xs}), 3)
        row(f"{spec}: engine values and gradients (median of 3; target < 2 s)", f"{t:.2f} s")
    with tempfile.TemporaryDirectory():
        start = time.perf_counter()
        subprocess.run([*GRADSPEC, "sweep", "exp(x)", "--var", "x", "--range", "-800", "800", "--points", "10000", "--engine", "torch"], env=_env(), check=True, capture_output=True)
        row("gradspec sweep exp(x), 10,000 points incl. exact references", f"{time.perf_counter() - start:.2f} s")


# -- 6. tensor cases against gradcheck ----------------------------------------------------------------

TENSOR_CASES = [
    ("softmax n=64", "softmax(x, axis=-1)", {"x": (64,)}, ()),
    ("layer norm n=64", "layer_norm(x, eps=1e-5)", {"x": (64,)}, ()),
    ("matmul 16x16", "a @ b", {"a": (16, 16), "b": (16, 16)}, ()),
    ("cross-entropy 32x40", "cross_entropy(z, t)", {"z": (32, 40), "t": (32,)}, ("t",)),
    ("conv2d x(1,3,8,8) w(4,3,3,3)", "conv2d(x, w)", {"x": (1, 3, 8, 8), "w": (4, 3, 3, 3)}, ()),
    ("attention 4x4", "softmax((q @ transpose(k)) / 2, axis=-1) @ v", {"q": (4, 4), "k": (4, 4), "v": (4, 4)}, ()),
]


def tensors() -> None:
    import random
    from fractions import Fraction

    import numpy as np
    import torch

    from gradspec.checks.tensor import check_tensor
    from gradspec.engines.resolve import resolve
    from gradspec.graph.tensor import build_tensor
    from gradspec.lang.expr import parse
    from gradspec.reference.store import STORE
    from gradspec.results import Tolerance

    torch.set_num_threads(1)  # as the research figures were measured; tiny tensors gain nothing from threads
    engine = resolve("torch")
    print("tensors: one draw per case, torch float64; gradspec cold (exact reference computed) and warm (cached)")
    print(f"  {'case':<30} {'cold':>9} {'warm':>9} {'slow gc':>9} {'fast gc':>9}  cold/slow  fast/warm")
    for label, text, shapes, data in TENSOR_CASES:
        rng = random.Random(label)
        graph = build_tensor(parse(text), shapes, frozenset(data))
        point = {}
        for name, shape in shapes.items():
            arr = np.empty(shape, dtype=object)
            for index in np.ndindex(shape):
                arr[index] = Fraction(rng.randrange(40)) if name in data else Fraction(rng.randint(-2000, 2000), 1000)
            point[name] = arr

        def ours(point: dict = point, graph: object = graph) -> None:
            assert check_tensor(graph, point, engine, Tolerance()).verdict.value == "pass"  # type: ignore[arg-type]

        def cold(ours: Callable[[], None] = ours) -> None:
            STORE.tensors.clear()
            STORE.modes.clear()
            ours()

        floats = {n: torch.tensor(np.asarray(v, dtype=float), dtype=torch.float64, requires_grad=n not in data)
                  for n, v in point.items()}
        names = [n for n in shapes if n not in data]

        def f(*tensors: object, graph: object = graph, floats: dict = floats, names: list = names) -> object:
            from gradspec.ops.table import OPS, TENSOR_OPS

            env = {**floats, **dict(zip(names, tensors, strict=True))}
            nodes: list = []
            for step in graph.steps:  # type: ignore[attr-defined]
                if step.name is not None:
                    nodes.append(env[step.name])
                elif step.op is None:
                    nodes.append(torch.tensor(float(step.const), dtype=torch.float64))
                elif step.op in OPS:
                    nodes.append(engine.apply(OPS[step.op], [nodes[a] for a in step.args]))
                else:
                    nodes.append(TENSOR_OPS[step.op].torch(torch, [nodes[a] for a in step.args], step.kw))
            return nodes[graph.output]  # type: ignore[attr-defined]

        inputs = tuple(floats[n] for n in names)
        t_cold = median_time(cold, 3)
        ours()
        t_warm = median_time(ours, 5)
        t_slow = median_time(lambda f=f, inputs=inputs: torch.autograd.gradcheck(f, inputs), 3)
        t_fast = median_time(lambda f=f, inputs=inputs: torch.autograd.gradcheck(f, inputs, fast_mode=True), 5)
        print(f"  {label:<30} {t_cold * 1e3:7.1f}ms {t_warm * 1e3:7.2f}ms {t_slow * 1e3:7.1f}ms {t_fast * 1e3:7.2f}ms"
              f"  {t_cold / t_slow:8.2f}x  {t_fast / t_warm:8.2f}x")
    print("  targets: cold/slow at most 1x; fast/warm at least 10x")


# -- 6b. the exact tensor reference in ball arithmetic, through the public API --------------------------

REFERENCE_CASES: list[tuple[str, str, dict[str, tuple[int, ...]], Callable[..., Any]]] = [
    ("softmax n=64", "softmax(x, axis=-1)", {"x": (64,)}, lambda t, x: t.softmax(x, -1)),
    ("layer norm n=64", "layer_norm(x, eps=1e-5)", {"x": (64,)},
     lambda t, x: t.nn.functional.layer_norm(x, (64,), eps=1e-5)),
    ("matmul 16x16", "a @ b", {"a": (16, 16), "b": (16, 16)}, lambda t, a, b: a @ b),
    ("conv2d 1x3x8x8 * 4x3x3x3", "conv2d(x, w)", {"x": (1, 3, 8, 8), "w": (4, 3, 3, 3)},
     lambda t, x, w: t.nn.functional.conv2d(x, w)),
    ("attention 4x4", "softmax((q @ transpose(k)) / 2, axis=-1) @ v", {"q": (4, 4), "k": (4, 4), "v": (4, 4)},
     lambda t, q, k, v: t.softmax(q @ k.T / 2, -1) @ v),
    ("tanh MLP 8x32x32", "tanh(tanh(x @ w1) @ w2)", {"x": (8, 32), "w1": (32, 32), "w2": (32, 32)},
     lambda t, x, w1, w2: t.tanh(t.tanh(x @ w1) @ w2)),
]
CHAIN = "layer_norm(softmax(x @ w, axis=-1))"


def _decimals(shapes: dict[str, tuple[int, ...]], seed: str) -> dict[str, Any]:
    """Three-digit decimals in [-2, 2] as nested lists, as a user passes them to ``gradspec.check``."""
    import random

    import numpy as np

    rng = random.Random(seed)
    return {n: (np.array([rng.randint(-2000, 2000) for _ in range(int(np.prod(s)))]) / 1000).reshape(s).tolist()
            for n, s in shapes.items()}


def reference() -> None:
    """``gradspec.check(expr, point, engine="torch")`` cold (exact reference computed) and warm (cached),
    against ``torch.autograd.gradcheck`` on the torch function a user would write, default and fast_mode;
    then the chain at growing sizes (``_chain``)."""
    import torch

    import gradspec
    from gradspec.reference.store import STORE

    torch.set_num_threads(1)

    def ours(text: str, point: dict[str, Any]) -> Any:
        result = gradspec.check(text, point, engine="torch")
        assert result.verdict.value == "pass", result.table()
        return result

    def cold(text: str, point: dict[str, Any]) -> None:
        STORE.tensors.clear()
        STORE.points.clear()  # the point's exact decimals too: cold converts the point again
        ours(text, point)

    print("reference: gradspec.check(..., engine='torch') against torch.autograd.gradcheck, float64, one thread;")
    print("  CPU time of this process, medians of 5 (cold, default gradcheck) and 9 (warm, fast_mode)")
    print(f"  {'case':<28} {'cold':>9} {'warm':>9} {'gc':>9} {'gc fast':>9}  cold/gc (<=0.5)  warm/fast (<=1)  radius")
    for label, text, shapes, fn in REFERENCE_CASES:
        point = _decimals(shapes, label)
        inputs = tuple(torch.tensor(point[n], dtype=torch.float64, requires_grad=True) for n in shapes)
        f = partial(fn, torch)
        ours(text, point)  # every op's first call in the process (imports, torch's own warm-up) is not timed
        t_cold = median_cpu(partial(cold, text, point), 5)
        t_warm = median_cpu(partial(ours, text, point), 9)
        t_gc = median_cpu(lambda f=f, inputs=inputs: torch.autograd.gradcheck(f, inputs), 5)
        t_fast = median_cpu(lambda f=f, inputs=inputs: torch.autograd.gradcheck(f, inputs, fast_mode=True), 9)
        radius = ours(text, point).radius  # None where the check ran on the scalar tape (tanh, sigmoid)
        radius_text = "-" if radius is None else f"{radius:.1e}"
        print(f"  {label:<28} {t_cold * 1e3:7.2f}ms {t_warm * 1e3:7.2f}ms {t_gc * 1e3:7.2f}ms {t_fast * 1e3:7.2f}ms"
              f"  {t_cold / t_gc:6.2f}x {'met' if t_cold <= 0.5 * t_gc else 'NOT met':>7}"
              f"  {t_warm / t_fast:6.2f}x {'met' if t_warm <= t_fast else 'NOT met':>7}  {radius_text}")
    _chain(cold)


def _chain(cold: Callable[[str, dict[str, Any]], None]) -> None:
    """The chain ``CHAIN`` cold at growing sizes: CPU time, wall time and how much peak memory grew."""
    import resource as _resource

    from gradspec.reference.store import STORE

    print(f"  {CHAIN}, cold (value, two VJPs), n x n inputs:")
    for n in (16, 32, 64, 128, 256, 512):
        point = _decimals({"x": (n, n), "w": (n, n)}, f"chain {n}")
        before = _resource.getrusage(_resource.RUSAGE_SELF).ru_maxrss
        repeat = 3 if n <= 128 else 1
        wall = time.perf_counter()
        t = median_cpu(partial(cold, CHAIN, point), repeat)
        wall = (time.perf_counter() - wall) / repeat
        grown = (_resource.getrusage(_resource.RUSAGE_SELF).ru_maxrss - before) / 1024
        target = "  (target <= 5 s: " + ("met)" if t <= 5 else "NOT met)") if n == 256 else ""
        print(f"    n={n:<4} {t:8.3f} s CPU ({wall:.3f} s wall)  peak memory grew {grown:6.0f} MB{target}")
        STORE.tensors.clear()


# -- 7. the rounding allowance on correct float32 engines ---------------------------------------------------


def rounding(points: int = 100_000) -> None:
    """False alarms of the rounding allowance over sampled points of every op on correct float32
    engines (want 0); tests/test_rounding.py runs a smaller sweep, and the planted-bug engines."""
    os.environ["GRADSPEC_CACHE"] = "0"  # 100,000 one-off points: nothing worth keeping on disk
    sys.path.insert(0, str(ROOT / "benchmarks"))
    from rounding_sweep import FORMS, sweep

    from gradspec.engines.resolve import resolve

    per_form = -(-points // len(FORMS))
    print(f"rounding: {per_form * len(FORMS):,} sampled points ({len(FORMS)} forms covering every op) per engine, "
          "default tolerance; a correct engine must raise no false alarm")
    for spec in ("torch:float32", "jax:float32"):
        engine = resolve(spec)
        if not hasattr(engine, "run_batch"):
            row(spec, "skipped: " + (getattr(engine, "reason", "") or "no batched evaluation"))
            continue
        start = time.perf_counter()
        tallies = sweep(engine, per_form, seed=2026)
        alarms = sum(t.false_alarms for t in tallies.values())
        checked = sum(t.points for t in tallies.values())
        row(f"{spec}: false alarms (target 0) in {time.perf_counter() - start:.0f} s", f"{alarms} of {checked:,}")
        for form, t in tallies.items():
            if t.false_alarms:
                row(f"  {form}", f"{t.false_alarms}: {t.first}")



def rounding_tensors(per_form: int = 100) -> None:
    """False alarms of the tensor rounding bound (computed one tensor op at a time beside the ball
    reference) on correct float32 engines: each tensor form at ``per_form`` draws (want 0)."""
    _tensor_sweep("rounding-tensors", "sweep_tensors", per_form, "value, two VJPs, the Jacobian where small")


def _tensor_sweep(name: str, sweep: str, per_form: int, what: str) -> None:
    """One of the tensor forms' sweeps (``sweep``, a function of rounding_sweep.py) on both float32 engines:
    false alarms per form (want 0), and the quantities judged imprecise."""
    sys.path.insert(0, str(ROOT / "benchmarks"))
    import rounding_sweep

    from gradspec.engines.resolve import resolve

    print(f"{name}: {per_form} draws of each of {len(rounding_sweep.TENSOR_FORMS)} tensor forms per engine ({what}), "
          "default tolerance; a correct engine must raise no false alarm")
    for spec in ("torch:float32", "jax:float32"):
        start = time.perf_counter()
        tallies = getattr(rounding_sweep, sweep)(resolve(spec), per_form, seed=2026)
        alarms = sum(t.false_alarms for t in tallies.values())
        imprecise = sum(t.imprecise for t in tallies.values())
        row(f"{spec}: false alarms (target 0), imprecise, in {time.perf_counter() - start:.0f} s",
            f"{alarms} of {sum(t.points for t in tallies.values()):,} checks, {imprecise}")
        for form, t in tallies.items():
            if t.false_alarms:
                row(f"  {form}", f"{t.false_alarms}: {t.first}")
            if t.imprecise:
                row(f"  {form}: imprecise", ", ".join(f"{name} {count}" for name, count in t.where.most_common()))


def rounding_modes(points: int = 10_000) -> None:
    """False alarms of the forward-mode and second-order rounding bound over sampled points of every op
    on correct float32 engines (want 0)."""
    os.environ["GRADSPEC_CACHE"] = "0"
    sys.path.insert(0, str(ROOT / "benchmarks"))
    from rounding_sweep import FORMS, sweep_modes

    from gradspec.engines.resolve import resolve

    per_form = -(-points // len(FORMS))
    print(f"rounding-modes: {per_form * len(FORMS):,} sampled points ({len(FORMS)} forms covering every op) per "
          "engine, jvp, mode consistency, hvp (both ways) and jvp-of-jvp, default tolerance; want no false alarm")
    for spec in ("torch:float32", "jax:float32"):
        engine = resolve(spec)
        start = time.perf_counter()
        tallies = sweep_modes(engine, per_form, seed=2026)
        alarms = sum(t.false_alarms for t in tallies.values())
        lacks = sum(t.lacks for t in tallies.values())
        checked = sum(t.points for t in tallies.values())
        row(f"{spec}: false alarms (target 0), and elements the library does not implement, in "
            f"{time.perf_counter() - start:.0f} s", f"{alarms} of {checked:,}; {lacks}")
        for form, t in tallies.items():
            if t.false_alarms:
                row(f"  {form}", f"{t.false_alarms}: {t.first}")
            if t.lacks:
                row(f"  {form}: not implemented", f"{t.lacks}: {t.lacking}")


def rounding_tensor_modes(per_form: int = 100) -> None:
    """False alarms of the forward-mode and second-order rounding bound on the tensor forms (the ball tape
    for jvp and hvp where it takes the graph, nested duals otherwise) on correct float32 engines (want 0)."""
    _tensor_sweep("rounding-tensor-modes", "sweep_tensor_modes", per_form, "jvp, mode consistency, hvp both ways")


def precision(points: int = 100_000, mode_points: int = 10_000) -> None:
    """Over the rounding sweeps' sampled points: how many quantities of correct float32 engines are
    imprecise (digits lost beyond the precision bound, within what a derivative rebuilt from a rounded
    output loses), and where; the false alarms beside them (want 0)."""
    os.environ["GRADSPEC_CACHE"] = "0"
    sys.path.insert(0, str(ROOT / "benchmarks"))
    from rounding_sweep import FORMS, sweep, sweep_modes

    from gradspec.engines.resolve import resolve

    per_form, per_mode = -(-points // len(FORMS)), -(-mode_points // len(FORMS))
    print(f"precision: {per_form * len(FORMS):,} points (value and gradient) and {per_mode * len(FORMS):,} points "
          "(jvp, mode consistency, hvp both ways, jvp-of-jvp) per engine, the rounding sweeps' draws")
    for spec in ("torch:float32", "jax:float32"):
        engine = resolve(spec)
        for what, run, n in (("first order", sweep, per_form), ("modes", sweep_modes, per_mode)):
            start = time.perf_counter()
            tallies = run(engine, n, seed=2026)
            imprecise = sum(t.imprecise for t in tallies.values())
            alarms = sum(t.false_alarms for t in tallies.values())
            checked = sum(t.points for t in tallies.values())
            row(f"{spec} {what}: imprecise quantities, false alarms, points ({time.perf_counter() - start:.0f} s)",
                f"{imprecise}, {alarms}, {checked:,}")
            for form, t in tallies.items():
                if t.imprecise:
                    where = ", ".join(f"{name} {count}" for name, count in t.where.most_common())
                    row(f"  {form}", f"{t.imprecise} ({where}); e.g. {t.example}")


# -- 8. functions under test against gradcheck ----------------------------------------------------------


def functions() -> None:
    """Hand-written torch Functions (the test suite's: one correct per op, and single-bug ones), judged by
    gradspec.check_function and by torch.autograd.gradcheck at its default tolerances, in float64 and
    float32: which verdicts are right, and the median time per check (gradspec after its first call, with
    the exact reference cached)."""
    import numpy as np
    import torch

    import gradspec

    sys.path.insert(0, str(ROOT))
    from tests import functions_under_test as fut

    rng = np.random.default_rng(7)
    x = rng.uniform(-2, 2, (3, 4))
    square = {"x": rng.uniform(-1, 1, (3, 3)), "w": rng.uniform(-1, 1, (3, 3))}
    bias = {"x": rng.uniform(-1, 1, (3, 4)), "b": rng.uniform(-1, 1, (4,))}
    cases = [  # (label, function, reference, inputs, has a bug)
        ("softmax", fut.softmax, "softmax(x, axis=-1)", {"x": x}, False),
        ("sin", fut.sin, "sin(x)", {"x": x}, False),
        ("matmul", fut.matmul, "x @ w", square, False),
        ("add bias", fut.add_bias, "x + b", bias, False),
        ("row mean", fut.row_mean, "mean(x, axis=-1)", {"x": x}, False),
        ("softmax, sign flipped", fut.softmax_sign_flipped, "softmax(x, axis=-1)", {"x": x}, True),
        ("sin, ignores cotangent", fut.sin_ignores_cotangent, "sin(x)", {"x": x}, True),
        ("softmax, dropped term", fut.softmax_dropped_term, "softmax(x, axis=-1)", {"x": x}, True),
        ("matmul, transposed dw", fut.matmul_transposed, "x @ w", square, True),
        ("add bias, unsummed axis", fut.add_bias_unsummed, "x + b", bias, True),
        ("row mean, missing mean", fut.row_mean_missing_mean, "mean(x, axis=-1)", {"x": x}, True),
        ("sin, wrong argument", fut.sin_wrong_argument, "sin(x)", {"x": x}, True),
    ]
    torch.set_num_threads(1)
    print("functions: gradspec.check_function against torch.autograd.gradcheck (default eps, atol, rtol)")
    print(f"  {'function':<26} {'dtype':<8} {'gradspec':<9} {'gradcheck':<10} {'gradspec':>9} {'gradcheck':>9}")
    right = {("gradspec", d): 0 for d in ("float64", "float32")} | {("gradcheck", d): 0 for d in ("float64", "float32")}
    for label, fn, reference, inputs, buggy in cases:
        for dtype in ("float64", "float32"):
            engine = "torch" if dtype == "float64" else "torch:float32"
            tensors = {n: torch.tensor(v, dtype=getattr(torch, dtype)) for n, v in inputs.items()}

            def ours(fn: object = fn, reference: str = reference, tensors: dict = tensors, engine: str = engine) -> bool:
                return gradspec.check_function(fn, reference, tensors, engine=engine).ok  # type: ignore[arg-type]

            def theirs(fn: object = fn, tensors: dict = tensors) -> bool:
                leaves = tuple(t.clone().requires_grad_() for t in tensors.values())
                with contextlib.redirect_stderr(None), __import__("warnings").catch_warnings():
                    __import__("warnings").simplefilter("ignore")
                    try:
                        return bool(torch.autograd.gradcheck(fn, leaves, raise_exception=False))  # type: ignore[arg-type]
                    except RuntimeError:
                        return False

            ok_ours, ok_theirs = ours(), theirs()
            t_ours, t_theirs = median_time(ours, 3), median_time(theirs, 3)
            right[("gradspec", dtype)] += ok_ours != buggy
            right[("gradcheck", dtype)] += ok_theirs != buggy
            say = {True: "pass", False: "FAIL"}
            print(f"  {label:<26} {dtype:<8} {say[ok_ours]:<9} {say[ok_theirs]:<10} {t_ours * 1e3:7.1f}ms "
                  f"{t_theirs * 1e3:7.1f}ms")
    for who in ("gradspec", "gradcheck"):
        row(f"{who}: right verdicts (float64, float32) of {len(cases)}",
            f"{right[(who, 'float64')]}, {right[(who, 'float32')]}")


# -- 9. second order against gradgradcheck ----------------------------------------------------------------

#: (label, expression, shapes, data inputs, a fixed point or None for a seeded draw)
SECOND_ORDER_CASES: list[tuple[str, str, dict[str, tuple[int, ...]], tuple[str, ...], dict[str, Any] | None]] = [
    ("layer_norm x[2,4]", "layer_norm(x)", {"x": (2, 4)}, (),
     {"x": [["1", "2", "3", "5"], ["0.5", "-1.5", "2.25", "0.125"]]}),
    ("softmax(x) @ w", "softmax(x, axis=-1) @ w", {"x": (2, 4), "w": (4,)}, (), None),
    ("sum(tanh(a @ b))", "sum(tanh(a @ b))", {"a": (2, 3), "b": (3, 2)}, (), None),
    ("log_softmax(x)*c + logsumexp(x)", "log_softmax(x, axis=-1) * c + logsumexp(x, axis=0)",
     {"x": (3, 3), "c": (3, 3)}, (), None),
    ("cross_entropy(z, y), y labels", "cross_entropy(z, y)", {"z": (2, 3), "y": (2,)}, ("y",),
     {"z": [["1.5", "-0.5", "0.25"], ["0", "2", "-1"]], "y": ["0", "2"]}),
    ("every smooth scalar op", "tanh(x * y) + exp(x) * sin(y) - log(x * x + 1) * cos(x) + sqrt(y * y + 2) "
     "/ sigmoid(-x) + x ** y", {"x": (), "y": ()}, (), {"x": "0.75", "y": "1.25"}),
]


def _custom_functions(torch: Any) -> list[tuple[str, Callable[..., Any], str, bool]]:
    """torch.autograd.Functions, each with a forward-mode rule so that forward over reverse can run on it:
    a correct tanh (the control), and three whose value, VJP and JVP are right and whose nested
    derivatives are not, the ways a hand-written backward loses its own derivative. Returns
    (label, function, reference, has a bug)."""
    Function: Any = torch.autograd.Function

    class Tanh(Function):
        """Correct: the saved output stays on the graph, so the backward is differentiable again."""

        @staticmethod
        def forward(x):  # type: ignore[no-untyped-def]
            return torch.tanh(x)

        @staticmethod
        def setup_context(ctx, inputs, output):  # type: ignore[no-untyped-def]
            ctx.save_for_backward(output)
            ctx.save_for_forward(output)

        @staticmethod
        def backward(ctx, g):  # type: ignore[no-untyped-def]
            (y,) = ctx.saved_tensors
            return g * (1 - y * y)

        @staticmethod
        def jvp(ctx, t):  # type: ignore[no-untyped-def]
            (y,) = ctx.saved_tensors
            return t * (1 - y * y)

    class SoftmaxDetachedBackward(Function):
        """The backward detaches the saved output: its result no longer depends on x (Hessian zero)."""

        @staticmethod
        def forward(x):  # type: ignore[no-untyped-def]
            return torch.softmax(x, -1)

        @staticmethod
        def setup_context(ctx, inputs, output):  # type: ignore[no-untyped-def]
            ctx.save_for_backward(output)
            ctx.save_for_forward(output)

        @staticmethod
        def backward(ctx, g):  # type: ignore[no-untyped-def]
            y = ctx.saved_tensors[0].detach()
            return y * (g - (g * y).sum(-1, keepdim=True))

        @staticmethod
        def jvp(ctx, t):  # type: ignore[no-untyped-def]
            (y,) = ctx.saved_tensors
            return y * (t - (t * y).sum(-1, keepdim=True))

    class TanhDetachedOutput(Function):
        """tanh' = 1 - y*y with y detached: right at first order, no second derivative."""

        @staticmethod
        def forward(x):  # type: ignore[no-untyped-def]
            return torch.tanh(x)

        @staticmethod
        def setup_context(ctx, inputs, output):  # type: ignore[no-untyped-def]
            ctx.save_for_backward(output)
            ctx.save_for_forward(output)

        @staticmethod
        def backward(ctx, g):  # type: ignore[no-untyped-def]
            y = ctx.saved_tensors[0].detach()
            return g * (1 - y * y)

        @staticmethod
        def jvp(ctx, t):  # type: ignore[no-untyped-def]
            (y,) = ctx.saved_tensors
            return t * (1 - y * y)

    class LayerNormSavedStats(Function):
        """Layer norm whose backward reads 1/std saved from the forward as a non-differentiable
        output: the normalised output stays on the graph, the statistics do not, so the Hessian
        misses every term through the variance (wrong, not zero)."""

        @staticmethod
        def forward(x):  # type: ignore[no-untyped-def]
            mean = x.mean(-1, keepdim=True)
            rstd = torch.rsqrt(x.var(-1, unbiased=False, keepdim=True) + 1e-5)
            return (x - mean) * rstd, rstd

        @staticmethod
        def setup_context(ctx, inputs, output):  # type: ignore[no-untyped-def]
            xhat, rstd = output
            ctx.mark_non_differentiable(rstd)
            ctx.save_for_backward(xhat, rstd)
            ctx.save_for_forward(xhat, rstd)

        @staticmethod
        def backward(ctx, g, _):  # type: ignore[no-untyped-def]
            xhat, rstd = ctx.saved_tensors
            return rstd * (g - g.mean(-1, keepdim=True) - xhat * (g * xhat).mean(-1, keepdim=True))

        @staticmethod
        def jvp(ctx, t):  # type: ignore[no-untyped-def]
            xhat, rstd = ctx.saved_tensors
            return rstd * (t - t.mean(-1, keepdim=True) - xhat * (t * xhat).mean(-1, keepdim=True)), None

    def layer_norm_saved_stats(x):  # type: ignore[no-untyped-def]
        return LayerNormSavedStats.apply(x)[0]

    return [("tanh Function, correct (control)", Tanh.apply, "tanh(x)", False),
            ("softmax, backward detaches y", SoftmaxDetachedBackward.apply, "softmax(x, axis=-1)", True),
            ("tanh, 1 - y*y with y detached", TanhDetachedOutput.apply, "tanh(x)", True),
            ("layer norm, 1/std saved as constant", layer_norm_saved_stats, "layer_norm(x)", True)]


def secondorder() -> None:
    """torch.autograd.gradgradcheck (reverse over reverse; with check_fwd_over_rev, forward over reverse
    too) against gradspec's Hessian-vector-product check of the same function on the torch adapter,
    in float64: the time per check, and which second-order bugs each finds."""
    import random
    import warnings
    from fractions import Fraction

    import numpy as np
    import torch

    import gradspec
    from gradspec.checks.modes import mode_quantities
    from gradspec.checks.tensor import check_tensor
    from gradspec.engines.resolve import resolve
    from gradspec.graph.tensor import build_tensor
    from gradspec.lang.expr import parse
    from gradspec.modes import Mode
    from gradspec.reference.store import STORE
    from gradspec.results import Tolerance, Verdict

    torch.set_num_threads(1)
    engine: Any = resolve("torch")
    tol = Tolerance()
    hvp = frozenset({Mode.HVP})
    with_fwd = frozenset({Mode.HVP, Mode.JVP})  # adds forward over reverse (and the JVP, and its consistency)
    nested = frozenset({Mode.HVP, Mode.JVP, Mode.JVP_OF_JVP})

    def draw(label: str, shapes: dict, fixed: dict | None) -> dict:
        rng = random.Random(label)
        point = {}
        for name, shape in shapes.items():
            if fixed is not None:
                point[name] = np.vectorize(Fraction, otypes=[object])(np.asarray(fixed[name], dtype=object))
                continue
            arr = np.empty(shape, dtype=object)
            for index in np.ndindex(shape):
                arr[index] = Fraction(rng.randint(-2000, 2000), 1000)
            point[name] = arr
        return point

    def floats(point: dict) -> dict:
        return {n: np.vectorize(float, otypes=[float])(v) for n, v in point.items()}

    def quiet(fn: Callable[[], object]) -> object:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return fn()

    def gradgrad(f: Any, inputs: tuple, **kw: Any) -> object:
        return quiet(lambda: torch.autograd.gradgradcheck(f, inputs, **kw))

    def torch_verdict(check: Callable[..., object], f: object, inputs: tuple, **kw: object) -> str:
        try:
            ok = quiet(lambda: check(f, inputs, raise_exception=False, **kw))
        except Exception as exc:  # an unsupported mode raises rather than failing
            return f"error: {type(exc).__name__}"
        return "pass" if ok else "FAIL"

    def gradspec_verdicts(graph: Any, point: dict, fn: Any = None, eng: Any = engine) -> dict[str, str]:
        """Per quantity group: hvp (reverse over reverse), fwd-rev, jvp-of-jvp, order 3."""
        qs, *_ = mode_quantities(graph, point, eng, tol, nested, 3, 0, (), fn=fn)
        groups = {"hvp": lambda n: n.startswith("hvp") and "fwd-rev" not in n,
                  "fwd-rev": lambda n: "fwd-rev" in n, "jvp-of-jvp": lambda n: n == "jvp-of-jvp",
                  "order 3": lambda n: n == "order 3"}
        out = {}
        for group, member in groups.items():
            verdicts = [q.verdict for q in qs if member(q.name)]
            if not verdicts:
                out[group] = "n/a"
            elif Verdict.FAIL in verdicts or Verdict.ERROR in verdicts:
                out[group] = "FAIL"
            elif all(v is Verdict.PASS for v in verdicts):
                out[group] = "pass"
            else:
                out[group] = "skip"
        return out

    print("secondorder: torch.autograd.gradgradcheck (default args) against gradspec's hvp check "
          "(mode_quantities, modes {hvp}) of the same function, torch float64, one intra-op thread")
    print(f"  {'case':<32} {'gs 1st':>9} {'gs cold':>9} {'gs warm':>9} {'gs +fwd':>9} {'ggc':>9} {'ggc +fwd':>9}  ggc/warm"
          "  ggc+fwd/+fwd")
    table: list[tuple[str, str, dict[str, str]]] = []  # (row, group, verdicts)
    prepared = []
    for label, text, shapes, data, fixed in SECOND_ORDER_CASES:
        graph = build_tensor(parse(text), shapes, frozenset(data))
        point = draw(label, shapes, fixed)
        names = [n for n, _ in graph.differentiable]
        f = engine.function_of(graph, {n: v for n, v in floats(point).items() if n in data})
        inputs = tuple(torch.tensor(floats(point)[n], dtype=torch.float64, requires_grad=True) for n in names)
        prepared.append((label, graph, point, f, inputs))

        def ours(modes: frozenset = hvp, graph: Any = graph, point: dict = point) -> None:
            qs, *_ = mode_quantities(graph, point, engine, tol, modes, 1, 0, ())
            assert qs and all(q.verdict is Verdict.PASS for q in qs), [(q.name, q.verdict) for q in qs]

        def cold(ours: Callable[[], None] = ours) -> None:
            STORE.tensors.clear()
            STORE.modes.clear()
            ours()

        STORE.tensors.clear()
        STORE.modes.clear()
        t_first = median_time(ours, 1)  # the first call for this case in this process
        t_cold = median_time(cold, 5)
        ours()
        t_warm = median_time(ours, 15)
        ours(with_fwd)
        t_fwd = median_time(partial(ours, with_fwd), 9)
        t_gg = median_time(partial(gradgrad, f, inputs), 9)
        try:
            gradgrad(f, inputs, check_fwd_over_rev=True)
            t_ggf: float | None = median_time(partial(gradgrad, f, inputs, check_fwd_over_rev=True), 9)
        except Exception:  # forward over reverse unsupported for this function
            t_ggf = None
        ggf = f"{t_ggf * 1e3:7.2f}ms" if t_ggf is not None else "      n/a"
        ratio = f"{t_ggf / t_fwd:9.2f}x" if t_ggf is not None else "      n/a"
        print(f"  {label:<32} {t_first * 1e3:7.1f}ms {t_cold * 1e3:7.1f}ms {t_warm * 1e3:7.2f}ms "
              f"{t_fwd * 1e3:7.2f}ms {t_gg * 1e3:7.2f}ms {ggf}  {t_gg / t_warm:7.2f}x  {ratio}")
    print("  gs 1st: the first call in this process (SymPy derives the ops' partials not derived before); gs cold:")
    print("  the mode-reference memo cleared before each call, the partials kept (median of 5); gs warm: cached;")
    print("  gs +fwd: modes {hvp, jvp}, which adds forward over reverse, the JVP and their consistency")

    # -- which bugs each finds -------------------------------------------------------------------
    for label, graph, point, f, inputs in prepared:
        checked = check_tensor(graph, point, engine, tol).verdict
        got = {"gradcheck": torch_verdict(torch.autograd.gradcheck, f, inputs),
               "ggc": torch_verdict(torch.autograd.gradgradcheck, f, inputs),
               "ggc fwd": torch_verdict(torch.autograd.gradgradcheck, f, inputs, check_fwd_over_rev=True),
               "first": "pass" if checked is Verdict.PASS else "FAIL"} | gradspec_verdicts(graph, point)
        table.append((f"torch {label}", "bug" if label.startswith("layer_norm") else "correct", got))
    ln_point = prepared[0][2]
    x = torch.tensor(floats(ln_point)["x"], dtype=torch.float64)
    for label, fn, text, buggy in _custom_functions(torch):
        graph = build_tensor(parse(text), {"x": tuple(x.shape)}, frozenset())
        leaf = (x.clone().requires_grad_(),)
        got = {"gradcheck": torch_verdict(torch.autograd.gradcheck, fn, leaf),
               "ggc": torch_verdict(torch.autograd.gradgradcheck, fn, leaf),
               "ggc fwd": torch_verdict(torch.autograd.gradgradcheck, fn, leaf, check_fwd_over_rev=True),
               "first": "pass" if gradspec.check_function(fn, text, {"x": x}, engine="torch").ok else "FAIL"}
        table.append((label, "bug" if buggy else "function", got | gradspec_verdicts(graph, ln_point, fn)))
    jax = resolve("jax")
    if hasattr(jax, "derivatives"):  # the control: the same layer norm on JAX against the same reference
        graph = prepared[0][1]
        table.append(("jax layer_norm x[2,4] (control)", "control",
                      {"gradcheck": "", "ggc": "", "ggc fwd": "", "first": ""} | gradspec_verdicts(graph, ln_point, eng=jax)))
    print("secondorder: which tool flags what (ggc: gradgradcheck; gradspec: mode_quantities on the torch adapter "
          "with modes {hvp, jvp, jvp-of-jvp}, order 3;")
    print("  first order: gradcheck / gradspec's tensor check, check_function for the Functions)")
    cols = ("first order", "ggc", "ggc fwd-rev", "gs hvp", "gs fwd-rev", "gs jvp-of-jvp", "gs order 3")
    print(f"  {'function':<38} " + " ".join(f"{c:>13}" for c in cols))
    for label, _, got in table:
        first = f"{got['gradcheck']}/{got['first']}" if got["gradcheck"] else ""
        cells = [first, got["ggc"], got["ggc fwd"], got["hvp"], got["fwd-rev"], got["jvp-of-jvp"], got["order 3"]]
        print(f"  {label:<38} " + " ".join(f"{c:>13}" for c in cells))

    def flags(got: dict, keys: tuple[str, ...]) -> bool:
        return any(got[k] == "FAIL" or got[k].startswith("error") for k in keys)

    ggc, ours_keys = ("ggc", "ggc fwd"), ("hvp", "fwd-rev", "jvp-of-jvp", "order 3")
    for group, what in (("bug", "bugs found of {} (3 injected, torch's layer_norm)"),
                        ("correct", "flags on the {} other torch cases (no known bug)"),
                        ("function", "flags on the {} correct custom Function")):
        rows = [got for _, g, got in table if g == group]
        row(what.format(len(rows)) + ": gradgradcheck, gradspec",
            f"{sum(flags(g, ggc) for g in rows)}, {sum(flags(g, ours_keys) for g in rows)}")
    print("  the correct Function's jvp-of-jvp: torch.func.jvp nested over an autograd.Function's jvp returns zeros")


def modes_reference(repeat: int = 3) -> None:
    """``check: [jvp, hvp]`` on the six cases of :func:`reference`, cold (the exact references computed),
    against ``torch.autograd.gradgradcheck`` on the torch function a user would write; CPU time."""
    import warnings
    from fractions import Fraction

    import numpy as np
    import torch

    from gradspec.checks.modes import directions, mode_quantities
    from gradspec.engines.resolve import resolve
    from gradspec.graph.tensor import build_tensor
    from gradspec.lang.expr import parse
    from gradspec.modes import Mode
    from gradspec.reference.modes import mode_reference
    from gradspec.reference.store import STORE
    from gradspec.results import Tolerance, Verdict

    torch.set_num_threads(1)
    engine: Any = resolve("torch")
    modes = frozenset({Mode.JVP, Mode.HVP})

    def ours(graph: Any, point: dict[str, Any]) -> list[Any]:
        qs, *_ = mode_quantities(graph, point, engine, Tolerance(), modes, 1, 0, ())
        # imprecise: digits lost within what partials rebuilt from rounded outputs lose (tanh' as 1 - t*t)
        assert qs and all(q.verdict in (Verdict.PASS, Verdict.IMPRECISE) for q in qs), [(q.name, q.verdict) for q in qs]
        return qs

    def cold(graph: Any, point: dict[str, Any]) -> None:
        STORE.tensors.clear()
        STORE.modes.clear()
        ours(graph, point)

    def gradgrad(f: Any, inputs: tuple[Any, ...]) -> None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            assert torch.autograd.gradgradcheck(f, inputs)

    print("modes-reference: mode_quantities with check [jvp, hvp] on the torch adapter (float64, one thread), cold,")
    print(f"  against torch.autograd.gradgradcheck (default arguments); CPU time of this process, medians of {repeat}")
    print(f"  {'case':<28} {'cold':>10} {'ggc':>10}  cold/ggc (<=0.5)  radius")
    for label, text, shapes, fn in REFERENCE_CASES:
        decimals = _decimals(shapes, label)
        point = {n: np.vectorize(lambda v: Fraction(str(v)), otypes=[object])(np.asarray(decimals[n], dtype=float))
                 for n in shapes}
        graph = build_tensor(parse(text), shapes, frozenset())
        inputs = tuple(torch.tensor(decimals[n], dtype=torch.float64, requires_grad=True) for n in shapes)
        f = partial(fn, torch)
        ours(graph, point)  # every op's first call in the process (imports, SymPy's partials) is not timed
        t_cold = median_cpu(partial(cold, graph, point), repeat)
        t_gg = median_cpu(partial(gradgrad, f, inputs), repeat)
        radius = getattr(mode_reference(graph, point, directions(graph, modes, 1, 0), engine.eps), "radius", None)
        print(f"  {label:<28} {t_cold * 1e3:8.1f}ms {t_gg * 1e3:8.1f}ms  {t_cold / t_gg:6.2f}x "
              f"{'met' if t_cold <= 0.5 * t_gg else 'NOT met':>7}  {'n/a' if radius is None else f'{radius:.1e}'}")


def library_tails() -> None:
    """Correct library ops at wide ranges on torch and JAX, float32 and float64: fail (want 0) and imprecise."""
    sys.path.insert(0, str(ROOT / "benchmarks"))
    import library_tails as tails

    tails.run()


SECTIONS = {"overhead": overhead, "gradcheck": gradcheck, "cache": cache, "scale": scale, "sweep": sweep,
            "tensors": tensors, "reference": reference, "rounding": rounding, "functions": functions,
            "secondorder": secondorder, "rounding-modes": rounding_modes, "precision": precision,
            "rounding-tensors": rounding_tensors, "library-tails": library_tails,
            "modes-reference": modes_reference, "rounding-tensor-modes": rounding_tensor_modes}

if __name__ == "__main__":
    chosen = sys.argv[1:] or list(SECTIONS)
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} cores, {json.dumps(chosen)}")
    for name in chosen:
        SECTIONS[name]()
        print()
    print(f"peak memory of this process: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB")
