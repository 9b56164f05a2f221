"""The YAML boundary: safe loading with marks, YAML 1.2 scalars, and the hostile corpus refused with located errors."""

from __future__ import annotations

import math
import subprocess
import sys
import time
from pathlib import Path

import pytest

from gradspec.casefile.source import MAX_BYTES, MAX_NODES, Mark, load
from gradspec.errors import CaseFileError

HOSTILE = Path(__file__).resolve().parent / "data" / "hostile"

# Time bounds use CPU time (time.process_time), so that a busy machine or parallel workers do not turn a fast
# refusal into a flaky failure; a refusal that really does blow up (an expanded alias bomb) is CPU-bound.


def data(text: str) -> object:
    return load("t.yaml", text.encode()).data


def refused(text: str | bytes) -> CaseFileError:
    raw = text if isinstance(text, bytes) else text.encode()
    with pytest.raises(CaseFileError) as info:
        load("t.yaml", raw)
    return info.value


# -- YAML 1.2 core schema ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("1e-6", 1e-6),
        ("1.0e+6", 1e6),
        ("-2.5E3", -2500.0),
        (".5", 0.5),
        ("1.", 1.0),
        ("42", 42),
        ("-7", -7),
        ("010", 10),  # YAML 1.2: decimal, not octal
        ("0o17", 15),
        ("0x1F", 31),
        ("true", True),
        ("False", False),
        ("~", None),
        ("null", None),
        ("", None),
    ],
)
def test_core_schema_scalars(text: str, value: object) -> None:
    got = data(f"a: {text}\n")["a"]  # type: ignore[index]
    assert got == value
    assert type(got) is type(value)


@pytest.mark.parametrize("text", ["on", "off", "yes", "no", "y", "n", "On", "NO", "1_000", "12:30", "2001-12-14", "0b101"])
def test_yaml11_specials_are_strings(text: str) -> None:
    assert data(f"a: {text}\n") == {"a": text}


def test_special_floats() -> None:
    got = data("a: .nan\nb: .inf\nc: -.inf\nd: +.Inf\n")
    assert isinstance(got, dict)
    assert math.isnan(got["a"])
    assert got["b"] == math.inf and got["c"] == -math.inf and got["d"] == math.inf


def test_quoted_numbers_stay_strings() -> None:
    assert data("a: '1e-6'\nb: \"3\"\n") == {"a": "1e-6", "b": "3"}


def test_marks_and_styles() -> None:
    doc = load("t.yaml", b"cases:\n  - id: a\n    expr: 'x'\n    body: |\n      x\n    at: {x: 1}\n")
    assert doc.marks[("cases", 0, "id")] == Mark(2, 9, None)
    assert doc.marks[("cases", 0, "expr")] == Mark(3, 11, "'")
    assert doc.marks[("cases", 0, "body")] == Mark(4, 11, "|")
    assert doc.marks[("cases", 0, "at", "x")] == Mark(6, 13, None)
    assert doc.key_marks[("cases", 0, "at")] == Mark(6, 5)
    # the nearest marked ancestor answers for a path that has no mark of its own
    assert doc.mark(("cases", 0, "at", "nothing")) == Mark(6, 9, None)
    assert doc.lines[2] == "    expr: 'x'"


def test_bom_is_accepted() -> None:
    assert data("\ufeffa: 1\n") == {"a": 1}
    assert load("t.yaml", b"\xef\xbb\xbfa: 1\n").data == {"a": 1}


# -- refusals, each located -----------------------------------------------------------------------------


def duplicate(text: str) -> CaseFileError:
    """The one duplicate key of ``text``: reported, located, while the document reads on (the first value kept)."""
    doc = load("t.yaml", text.encode())
    assert len(doc.duplicates) == 1
    return doc.duplicates[0]


def test_duplicate_key_refused_with_both_lines() -> None:
    assert load("t.yaml", b"a: 1\nb: 2\na: 3\n").data == {"a": 1, "b": 2}
    err = duplicate("a: 1\nb: 2\na: 3\n")
    assert (err.line, err.col) == (3, 1)
    assert err.message == "duplicate key 'a' (first at line 1)"
    assert str(err) == "t.yaml:3:1: duplicate key 'a' (first at line 1)"


def test_duplicate_key_nested() -> None:
    err = duplicate("cases:\n  - id: a\n    at: {x: 1, x: 2}\n")
    assert (err.line, err.col) == (3, 16)
    assert "duplicate key 'x'" in err.message


def test_duplicate_key_equal_after_resolution() -> None:
    # 1 and 0x1 are the same integer key
    err = duplicate("1: a\n0x1: b\n")
    assert (err.line, err.col, err.message) == (2, 1, "duplicate key 1 (first at line 1)")


@pytest.mark.parametrize(
    "text",
    [
        "!!python/object/apply:os.system ['touch SENTINEL']\n",
        "a: !!python/object/apply:os.system ['touch SENTINEL']\n",
        "a: !!python/object/new:os.system [touch SENTINEL]\n",
        "a: !!python/name:os.system\n",
        "a: !!python/tuple [1, 2]\n",
        "a: !!set {x, y}\n",
        "a: !!binary aGVsbG8=\n",
        "a: !!timestamp 2001-12-14\n",
        "a: !local thing\n",
        "!<tag:example.com,2000:app/foo> {a: 1}\n",
    ],
)
def test_non_core_tags_refused_without_running_anything(text: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    err = refused(text)
    assert "is not allowed" in err.message
    assert err.line == 1 and err.col in (1, 4)
    assert not (tmp_path / "SENTINEL").exists()


def test_core_tags_are_fine() -> None:
    assert data("a: !!str 12\nb: !!int '7'\nc: !!float '1'\n") == {"a": "12", "b": 7, "c": 1.0}


def test_alias_bomb_refused_quickly() -> None:
    text = (HOSTILE / "alias_bomb.yaml").read_text()
    start = time.process_time()
    err = refused(text)
    assert time.process_time() - start < 2.0
    assert (err.line, err.col) == (6, 4)
    assert err.message == f"the document expands to more than {MAX_NODES} values (alias bomb?)"


def test_modest_aliases_are_allowed() -> None:
    assert data("a: &p {x: 1}\nb: *p\nc: [*p, *p]\n") == {"a": {"x": 1}, "b": {"x": 1}, "c": [{"x": 1}, {"x": 1}]}


def test_ten_megabytes_refused_before_parsing() -> None:
    raw = b"cases:\n" + b"  - {id: a, expr: x, at: {x: 1}}\n" * 330_000
    assert len(raw) > 10_000_000
    start = time.process_time()
    err = refused(raw)
    assert time.process_time() - start < 2.0
    assert (err.line, err.col) == (1, 1)
    assert err.message == f"file is {len(raw)} bytes; the limit is {MAX_BYTES}"


def test_file_at_the_limit_is_parsed() -> None:
    raw = b"a: 1\n" + b"#" * (MAX_BYTES - 6) + b"\n"
    assert len(raw) == MAX_BYTES
    assert load("t.yaml", raw).data == {"a": 1}


def test_non_utf8_located_at_the_byte() -> None:
    err = refused(b"a: 1\nb: caf\xe9\n")
    assert (err.line, err.col) == (2, 7)
    assert err.message == "not UTF-8: byte 0xe9 cannot be decoded"


def test_nul_bytes_located() -> None:
    err = refused(b"a: 1\nbb: x\x00y\n")
    assert (err.line, err.col) == (2, 6)
    assert err.message == "binary data: the file contains NUL bytes"


def test_tab_indentation_explained() -> None:
    err = refused("a:\n  b: 1\n\tc: 2\n")
    assert (err.line, err.col) == (3, 1)
    assert err.message.startswith("invalid YAML: ")
    assert err.message.endswith("(YAML indentation must use spaces, not tabs)")


def test_deep_nesting_refused() -> None:
    start = time.process_time()
    err = refused("a: " + "[" * 100 + "]" * 100 + "\n")
    assert time.process_time() - start < 2.0
    assert err.message == "YAML nested deeper than 64 levels"
    assert err.line == 1


def test_very_deep_nesting_refused() -> None:
    start = time.process_time()
    err = refused("a: " + "[" * 20_000 + "]" * 20_000 + "\n")
    assert time.process_time() - start < 2.0
    assert "nested deeper than 64 levels" in err.message


def test_long_integer_refused() -> None:
    err = refused("a: " + "7" * 5000 + "\n")
    assert (err.line, err.col, err.message) == (1, 4, "integer literal is too long")


def test_empty_document() -> None:
    for text in ("", "# only a comment\n", "\n\n"):
        err = refused(text)
        assert (err.line, err.col) == (1, 1)
        assert err.message == "the file is empty; a case file is a mapping with a `cases` list"
    # an explicit empty document is a null, which the schema (not the YAML layer) refuses
    assert data("---\n") is None


def test_multiple_documents_refused() -> None:
    err = refused("a: 1\n---\nb: 2\n")
    assert err.message.startswith("invalid YAML: ")
    assert "another document" in err.message
    assert (err.line, err.col) == (2, 1)


def test_unclosed_flow_located() -> None:
    err = refused("cases:\n  - id: a\n    at: {x: 1, y: 2\n  - id: b\n")
    assert err.message == "invalid YAML: expected ',' or '}', but got ':'"
    assert (err.line, err.col) == (4, 7)


# -- the whole hostile corpus: nothing crashes, nothing runs, everything is located ---------------------


def test_gradspec_validate_on_the_hostile_corpus_in_a_subprocess(tmp_path: Path) -> None:
    """The console entry point over every hostile file at once: exit 2, one located line per file, no traceback."""
    files = sorted(HOSTILE.glob("*.yaml"))
    assert len(files) >= 40
    start = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-c", "import sys; from gradspec.cli import main; sys.exit(main(sys.argv[1:]))",
         "validate", *map(str, files)],
        cwd=tmp_path, capture_output=True, text=True, timeout=60,
    )
    assert time.perf_counter() - start < 30
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr + proc.stdout
    assert proc.stdout.strip().startswith("0 valid file(s), 0 cases, 0 points; ")
    reported = {line.split(":", 1)[0] for line in proc.stderr.splitlines()}
    assert reported == {str(f) for f in files}
    for line in proc.stderr.splitlines():
        _path, line_no, col, message = line.split(":", 3)
        assert int(line_no) >= 1 and int(col) >= 1 and message.strip(), line
    assert list(tmp_path.iterdir()) == []  # no SENTINEL, nothing else
