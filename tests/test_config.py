"""[tool.gradspec] in pyproject.toml: found from the current folder upwards, checked against its schema
(a bad key is exit 2 naming the file, the key and what was expected), and named engines whose Value
class spells its attributes and methods its own way (tests/data/renamed.py: ``.value``,
``.derivative``, ``ReLU()``, ``backprop()``)."""

from __future__ import annotations

import io
import json
import re
import shutil
import sys
import textwrap
from pathlib import Path

import pytest

from gradspec import check
from gradspec.cli import main
from gradspec.config import Config, find, importable, load
from gradspec.engines.protocol import NamedEngine, ValueClassEngine
from gradspec.engines.resolve import resolve
from gradspec.errors import ConfigError, EngineError, GradspecError
from gradspec.results import Verdict

DATA = Path(__file__).resolve().parent / "data"

RENAMED = {"data": "value", "grad": "derivative",
           "methods": (("backward", "backprop"), ("exp", "Exp"), ("relu", "ReLU"), ("tanh", "Tanh"))}

PYPROJECT = """
[project]
name = "mypkg"

[tool.gradspec]
engines = ["builtin", "mine"]
paths = ["grad_cases"]
time-limit = 30

[tool.gradspec.engine.mine]
class = "renamed_cfg:Value"
data = "value"
grad = "derivative"
methods = { relu = "ReLU", tanh = "Tanh", exp = "Exp", backward = "backprop" }

[tool.gradspec.engine.wrong]
class = "renamed_cfg:TanhWrong"
data = "value"
grad = "derivative"
methods = { relu = "ReLU", tanh = "Tanh", exp = "Exp", backward = "backprop" }
"""

CASES = """
cases:
  - id: mixed
    expr: |
      a = x * y
      tanh(a) - relu(y) + exp(x) * 2 - 3 * x
    at: [{x: 0.5, y: 3}, {x: -1.25, y: 0.75}]
  - id: plain
    expr: x * y + x - y
    at: {x: 2, y: -3}
"""


def project(root: Path, pyproject: str = PYPROJECT) -> Path:
    """A project folder: pyproject.toml, the renamed engine as a module of its own, and a case folder."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "pyproject.toml").write_text(textwrap.dedent(pyproject).lstrip(), encoding="utf-8")
    shutil.copyfile(DATA / "renamed.py", root / "renamed_cfg.py")
    (root / "grad_cases").mkdir(exist_ok=True)
    (root / "grad_cases" / "a.gradspec.yaml").write_text(textwrap.dedent(CASES).lstrip(), encoding="utf-8")
    return root


def run(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(list(argv), out, err)
    return code, out.getvalue(), err.getvalue()


@pytest.fixture
def renamed(monkeypatch: pytest.MonkeyPatch) -> object:
    monkeypatch.syspath_prepend(str(DATA))
    import renamed  # type: ignore[import-not-found]

    return renamed


# -- finding and reading -------------------------------------------------------------------------------


def test_no_pyproject_means_the_defaults(tmp_path: Path) -> None:
    assert find(tmp_path) is None
    config = load(tmp_path)
    assert config == Config()
    assert config.specs(None) == ["builtin"]
    assert config.specs(["torch"]) == ["torch"]
    assert config.case_paths == [] and config.root is None


def test_the_nearest_pyproject_with_the_table_is_found_from_below(tmp_path: Path) -> None:
    root = project(tmp_path)
    deep = root / "grad_cases" / "sub" / "deeper"
    deep.mkdir(parents=True)
    # a pyproject.toml without [tool.gradspec] on the way up is passed over, as ruff passes over one without [tool.ruff]
    (root / "grad_cases" / "sub" / "pyproject.toml").write_text('[project]\nname = "other"\n', encoding="utf-8")
    config = load(deep)
    assert config.path == root / "pyproject.toml" and config.root == root
    assert config.engines == ("builtin", "mine")
    assert config.case_paths == [str(root / "grad_cases")]
    assert config.time_limit == 30
    assert sorted(config.named) == ["mine", "wrong"]
    mine = config.named["mine"]
    assert (mine.name, mine.target, mine.data, mine.grad, mine.methods) == ("mine", "renamed_cfg:Value", *RENAMED.values())
    assert mine.where == str(root / "pyproject.toml")
    assert config.specs(None) == ["builtin", mine]
    assert config.specs(["mine", "torch:float32"]) == [mine, "torch:float32"]


# -- bad configuration: file, key, what was expected ------------------------------------------------------

BAD = [
    ('engines = "builtin"', "tool.gradspec.engines", "expected a list of engine specs or names"),
    ('engines = ["builtin", 3]', "tool.gradspec.engines.1", "expected an engine spec or name, found 3"),
    ('paths = [""]', "tool.gradspec.paths.0", "expected a case file or folder, found ''"),
    ("time-limit = 0", "tool.gradspec.time-limit", "expected a number of seconds above 0, found 0"),
    ('time-limit = "30"', "tool.gradspec.time-limit", "expected a number of seconds above 0, found '30'"),
    ("timelimit = 30", "tool.gradspec.timelimit", "unknown key; expected one of engine, engines, max-elements, paths, time-limit"),
    ('[tool.gradspec.engine.mine]\ndata = "value"', "tool.gradspec.engine.mine.class",
     "missing; expected 'module.path:Value', an engine factory or an adapter spec"),
    ('[tool.gradspec.engine.mine]\nclass = "m:V"\ndata = "the value"', "tool.gradspec.engine.mine.data",
     "expected a Python attribute name, found 'the value'"),
    ('[tool.gradspec.engine.mine]\nclass = "m:V"\nmethods = { softmax = "Softmax" }',
     "tool.gradspec.engine.mine.methods.softmax", "not allowed; expected one of abs, acos, acosh, asin, asinh, atan, atan2, "
     "atanh, backward, celu, clamp, cos, cosh, deg2rad, digamma, elu, entr, erf, erfc, exp"),
    ('[tool.gradspec.engine.mine]\nclass = "m:V"\nmethods = { relu = 1 }', "tool.gradspec.engine.mine.methods.relu",
     "expected a Python attribute name, found 1"),
    ('[tool.gradspec.engine.mine]\nclass = "m:V"\ngradient = "g"', "tool.gradspec.engine.mine.gradient",
     "unknown key; expected one of class, data, grad, methods"),
    ('[tool.gradspec.engine.builtin]\nclass = "m:V"', "tool.gradspec.engine.builtin", "other than builtin"),
    ('[tool.gradspec.engine]\nmine = "m:V"', "tool.gradspec.engine.mine", "expected a table, found 'm:V'"),
    ('[tool.gradspec.engines.mine]\nclass = "m:V"', "tool.gradspec.engines",
     "(named engines go under [tool.gradspec.engine.NAME])"),
]


@pytest.mark.parametrize(("body", "key", "fragment"), BAD)
def test_bad_configuration_names_the_file_the_key_and_what_was_expected(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, body: str, key: str, fragment: str,
) -> None:
    path = tmp_path / "pyproject.toml"
    path.write_text(f"[tool.gradspec]\n{body}\n", encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load(tmp_path)
    assert isinstance(caught.value, GradspecError)
    assert (caught.value.path, caught.value.key) == (str(path), key)
    assert str(caught.value).startswith(f"{path}: {key}: ")
    assert fragment in caught.value.message
    monkeypatch.chdir(tmp_path)
    code, out, err = run("run")
    assert (code, out) == (2, "")
    assert err == f"gradspec: {caught.value}\n"


def test_toml_that_does_not_parse_is_a_config_error_with_its_position(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # the shape the list-and-tables mix-up gives: TOML cannot hold both, and the message says where names go
    path = tmp_path / "pyproject.toml"
    path.write_text('[tool.gradspec]\nengines = ["mine"]\n[tool.gradspec.engines.mine]\nclass = "m:V"\n', encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    code, _, err = run("validate")
    assert code == 2
    assert err.startswith(f"gradspec: {path}: not valid TOML: Cannot declare ('tool', 'gradspec', 'engines', 'mine') twice (at line 3")
    assert err.rstrip().endswith("named engines go under [tool.gradspec.engine.NAME] (singular), since "
                                 "tool.gradspec.engines is the list of default engines")
    path.write_text("[tool.gradspec\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"not valid TOML: .*\(at line 1, column 15\)$"):
        load(tmp_path)


# -- named engines through the value-class engine ------------------------------------------------------------


def test_a_renamed_engine_runs_clean_through_the_mapping(renamed: object) -> None:
    engine = resolve(NamedEngine("mine", "renamed:Value", **RENAMED))  # type: ignore[arg-type]
    assert isinstance(engine, ValueClassEngine) and engine.name == "mine"
    result = check("a = x * y; tanh(a) - relu(y) + exp(x) * 2 - 3 * x", {"x": 0.5, "y": 3}, engine=engine)
    assert result.verdict is Verdict.PASS, result.table()
    by_name = {q.name: q for q in result.quantities}
    assert set(by_name) == {"value", "x", "y", "a"}
    for q in by_name.values():
        assert q.engine == pytest.approx(q.exact, rel=1e-12, abs=1e-15)
    # the numbers themselves: d/dx = y(1 - tanh(xy)^2) + 2 e^x - 3 at x = 0.5, y = 3
    t = 0.9051482536448664  # tanh(1.5)
    assert by_name["x"].engine == pytest.approx(3 * (1 - t * t) + 2 * 1.6487212707001282 - 3, rel=1e-12)


def test_a_wrong_rule_still_fails_through_the_mapping(renamed: object) -> None:
    engine = resolve(NamedEngine("wrong", "renamed:TanhWrong", "value", "derivative", (("backward", "backprop"), ("tanh", "Tanh"))))
    result = check("tanh(x) * y", {"x": 0.5, "y": 2}, engine=engine)
    assert result.verdict is Verdict.FAIL
    (dx,) = [q for q in result.quantities if q.name == "x"]
    assert dx.verdict is Verdict.FAIL
    t = 0.46211715726000974  # tanh(0.5)
    assert (dx.engine, dx.exact) == (pytest.approx(2 * (1 + t * t)), pytest.approx(2 * (1 - t * t)))


def test_an_op_the_class_does_not_have_under_any_name_skips_with_its_name(renamed: object) -> None:
    engine = resolve(NamedEngine("mine", "renamed:Value", **RENAMED))  # type: ignore[arg-type]
    result = check("sin(x)", {"x": 0.5}, engine=engine)
    assert (result.verdict, result.message) == (Verdict.SKIP, "engine has no sin")
    unmapped = resolve(NamedEngine("half", "renamed:Value", "value", "derivative", (("backward", "backprop"),)))
    result = check("tanh(x)", {"x": 0.5}, engine=unmapped)
    assert (result.verdict, result.message) == (Verdict.SKIP, "engine has no tanh")


def test_without_the_mapping_the_class_is_not_an_engine(renamed: object) -> None:
    with pytest.raises(EngineError, match=r"'renamed:Value' is not a Value class: it needs backward\(\), \+ and \*"):
        resolve("renamed:Value")


def test_a_named_adapter_is_renamed_only_in_reports() -> None:
    engine = resolve(NamedEngine("mine", "builtin"))
    assert engine.name == "mine"
    assert check("x * y", {"x": 2, "y": 3}, engine=engine).verdict is Verdict.PASS


def test_renaming_applies_only_to_a_value_class(renamed: object, tmp_path: Path) -> None:
    with pytest.raises(EngineError) as caught:
        resolve(NamedEngine("fast", "gradspec.engines.protocol:Engine", data="value", where=str(tmp_path / "pyproject.toml")))
    assert str(caught.value) == (f"{tmp_path / 'pyproject.toml'}: tool.gradspec.engine.fast.class: "
                                 "'gradspec.engines.protocol:Engine' is not a Value class: it needs backward(), + and *")
    with pytest.raises(EngineError, match=r"^tool.gradspec.engine.gone.class: cannot import engine module 'no_such_mod'"):
        resolve(NamedEngine("gone", "no_such_mod:Value"))


def test_importable_adds_folders_after_the_installed_packages_and_takes_only_them_away(tmp_path: Path) -> None:
    before = list(sys.path)
    with importable(tmp_path, None, tmp_path):
        assert sys.path == [*before, str(tmp_path)]
    assert sys.path == before
    with importable(Path(before[-1])):  # already there: nothing added, nothing removed
        assert sys.path == before
    assert sys.path == before


# -- the command line ---------------------------------------------------------------------------------------


def test_the_command_line_uses_the_configured_engines_paths_and_names(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = project(tmp_path / "proj")
    sub = root / "grad_cases"
    monkeypatch.chdir(sub)  # found from below, paths relative to the project root
    report = tmp_path / "out.json"
    code, out, err = run("run", "--report", str(report))
    assert code == 0, out + err
    data = json.loads(report.read_text(encoding="utf-8"))
    results = data["checks"]
    assert sorted({r["engine"] for r in results}) == ["builtin", "mine"]
    assert {r["engine"]: r["verdict"] for r in results if r["case"] == "plain"} == {"builtin": "pass", "mine": "pass"}
    assert all(r["verdict"] == "pass" for r in results), [r for r in results if r["verdict"] != "pass"]
    assert len(results) == 2 * 3
    # --engine picks a named engine; the wrong one fails, exit 1
    code, out, _ = run("run", "--engine", "wrong", "-q")
    assert code == 1
    assert out.splitlines()[1].split() == ["wrong", "1", "2", "0", "0", "0", "0", "0", "3"]  # tanh's rule: mixed fails
    code, out, _ = run("check", "tanh(x) * y", "--at", "x=0.5,y=2", "--engine", "mine")
    assert code == 0 and "on mine" in out
    assert root.as_posix() not in sys.path and str(root) not in sys.path


def test_a_renamed_method_the_class_lacks_is_a_configuration_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = project(tmp_path / "proj", PYPROJECT.replace('relu = "ReLU", tanh = "Tanh", exp = "Exp", backward',
                                                        'relu = "Relu", tanh = "Tanh", exp = "Exp", backward', 1))
    monkeypatch.chdir(root)
    code, out, err = run("run", "--engine", "mine", "-q")
    assert code == 2 and out == ""
    assert err.startswith('gradspec: engine mine: methods = { relu = "Relu" } under [tool.gradspec.engine.mine] in '
                          "pyproject.toml names what Value does not have (no Relu)"), err
    assert run("run", "--engine", "wrong", "-q")[0] == 1  # the other table is right: its tanh bug fails checks


def test_the_time_limit_comes_from_the_configuration_unless_given(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from gradspec.limits import LIMITS

    seen: list[float] = []
    import gradspec.cli as cli

    monkeypatch.setattr(cli, "_run", lambda args, out, err: seen.append(LIMITS.engine) or 0)
    monkeypatch.chdir(project(tmp_path))
    assert run("run")[0] == 0
    assert run("run", "--time-limit", "5")[0] == 0
    assert seen == [30.0, 5.0]


def test_docs_name_the_table_the_tool_reads() -> None:
    # named engines live under [tool.gradspec.engine.NAME]; a page that says "engines." sends users to
    # a table the loader refuses (the list of default engines cannot also hold tables)
    root = Path(__file__).resolve().parent.parent
    pages = [root / "README.md", *sorted((root / "docs").glob("*.md"))]
    wrong = [f"{p.name}:{n}" for p in pages for n, line in enumerate(p.read_text(encoding="utf-8").splitlines(), 1)
             if re.search(r"tool\.gradspec\.engines\.[A-Za-z]", line)]
    assert wrong == []
    assert "[tool.gradspec.engine.NAME]" in (root / "README.md").read_text(encoding="utf-8")
