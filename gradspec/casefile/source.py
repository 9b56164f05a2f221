"""Safe YAML with line marks.

PyYAML composes the node tree; gradspec builds plain Python values from it itself, so that only the
core tags are accepted (``!!python/...`` and every other tag is refused), duplicate keys are errors
rather than last-wins, scalars follow YAML 1.2's core schema (``1e-6`` is a number, ``on`` and ``no``
are strings), aliases cannot expand past a budget, and every value keeps the line and column it came
from.
"""

from __future__ import annotations

import math
import re
from collections.abc import Hashable
from dataclasses import dataclass
from typing import Any

import yaml

from gradspec.errors import CaseFileError

__all__ = ["MAX_BYTES", "MAX_NODES", "Document", "Mark", "decode_text", "load"]

MAX_BYTES = 1_000_000
MAX_NODES = 200_000  # nodes after expanding aliases
MAX_DEPTH = 64

Path = tuple[Hashable, ...]


@dataclass(frozen=True)
class Mark:
    line: int  # 1-based
    col: int  # 1-based
    style: str | None = None  # scalar style: None plain, "'" '"' "|" ">"


@dataclass
class Document:
    """A loaded file: its data, the mark of every value and every mapping key, and its text."""

    path: str
    data: Any
    marks: dict[Path, Mark]
    key_marks: dict[Path, Mark]
    lines: list[str]
    # Duplicate mapping keys, each a located error: the first value is kept and the file reads on, so
    # that its other errors (a duplicate case id, a bad value) are reported with them in one pass.
    duplicates: tuple[CaseFileError, ...] = ()

    def mark(self, path: Path) -> Mark:
        """The mark of the value at ``path``, or of its nearest marked ancestor."""
        path = tuple(path)
        while path not in self.marks and path:
            path = path[:-1]
        return self.marks.get(path, Mark(1, 1))

    def position(self, path: Path, offset: int) -> tuple[int, int]:
        """Line and column in the file of character ``offset`` of the string scalar at ``path``.

        Follows YAML's layouts: block scalars (``|``, ``>``) line by line after their indentation,
        plain and quoted scalars folded across lines, and escapes inside quotes.
        """
        mark = self.mark(path)
        if mark.style in ("|", ">"):
            return self._in_block(mark, offset)
        return self._in_flow(mark, offset)

    def _in_block(self, mark: Mark, offset: int) -> tuple[int, int]:
        remaining, indent = offset, None
        for i in range(mark.line, len(self.lines)):  # mark.line is the header; content follows it
            src = self.lines[i]
            if not src.strip():
                if remaining == 0:
                    return i + 1, 1
                remaining -= 1
                continue
            if indent is None:
                indent = len(src) - len(src.lstrip(" "))
            content = src[indent:]
            if remaining <= len(content):
                return i + 1, indent + remaining + 1
            remaining -= len(content) + 1
        return mark.line, mark.col

    def _in_flow(self, mark: Mark, offset: int) -> tuple[int, int]:
        quote = mark.style if mark.style in ("'", '"') else None
        remaining = offset
        for i in range(mark.line - 1, len(self.lines)):
            src = self.lines[i]
            j = mark.col - 1 + (1 if quote else 0) if i == mark.line - 1 else len(src) - len(src.lstrip())
            while j < len(src):
                if remaining == 0:
                    return i + 1, j + 1
                if (quote == '"' and src[j] == "\\") or (quote == "'" and src[j : j + 2] == "''"):
                    j += 2  # an escape: two characters in the file, one in the text
                else:
                    j += 1
                remaining -= 1
            if remaining == 0:
                return i + 1, j + 1
            remaining -= 1  # a line break folds into one space
        return mark.line, mark.col

    def error(self, message: str, path: Path = (), *, key: bool = False, case_id: str | None = None) -> CaseFileError:
        mark = self.key_marks.get(tuple(path)) if key else None
        mark = mark or self.mark(path)
        return CaseFileError(message, path=self.path, line=mark.line, col=mark.col, case_id=case_id)


class _Resolver(yaml.resolver.BaseResolver):
    """YAML 1.2 core schema: no yes/no/on/off booleans, no sexagesimals or timestamps, 1e-6 is a float."""


_Resolver.add_implicit_resolver("tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF"))
_Resolver.add_implicit_resolver(
    "tag:yaml.org,2002:int", re.compile(r"^(?:[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+)$"), list("-+0123456789")
)
_Resolver.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^(?:[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$"),
    list("-+0123456789."),
)
_Resolver.add_implicit_resolver("tag:yaml.org,2002:null", re.compile(r"^(?:~|null|Null|NULL|)$"), ["~", "n", "N", ""])


class _PyComposer(yaml.reader.Reader, yaml.scanner.Scanner, yaml.parser.Parser, yaml.composer.Composer, _Resolver):
    def __init__(self, stream: str) -> None:
        yaml.reader.Reader.__init__(self, stream)
        yaml.scanner.Scanner.__init__(self)
        yaml.parser.Parser.__init__(self)
        yaml.composer.Composer.__init__(self)
        _Resolver.__init__(self)


_FAST: type | None = None
if getattr(yaml, "__with_libyaml__", False):
    # libyaml scans and parses (the slow part in pure Python); the composer stays PyYAML's own, in
    # Python, so nesting is bounded by the recursion limit rather than the C stack.
    # types-PyYAML declares CParser as a whole loader, not as the parser part it also is: the stub forces
    # the two ignores below.
    class _CComposer(yaml.composer.Composer, yaml.cyaml.CParser, _Resolver):  # type: ignore[misc, name-defined]
        def __init__(self, stream: str) -> None:
            yaml.cyaml.CParser.__init__(self, stream)  # type: ignore[attr-defined]
            yaml.composer.Composer.__init__(self)
            _Resolver.__init__(self)

    _FAST = _CComposer


def _compose(text: str) -> yaml.Node | None:
    if _FAST is not None:
        try:
            node: yaml.Node | None = _FAST(text).get_single_node()
            return node
        except yaml.YAMLError:
            pass  # parse again in Python for PyYAML's own, fuller error message
    composed: yaml.Node | None = _PyComposer(text).get_single_node()
    return composed


_CORE = "tag:yaml.org,2002:"


def load(path: str, raw: bytes) -> Document:
    """Parse ``raw`` (the bytes of ``path``) into a :class:`Document`; raises :class:`CaseFileError`."""
    if len(raw) > MAX_BYTES:
        raise CaseFileError(f"file is {len(raw)} bytes; the limit is {MAX_BYTES}", path=path, line=1, col=1)
    text = decode_text(path, raw)
    lines = text.splitlines()
    try:
        node = _compose(text)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        problem = exc.problem or exc.context or "invalid YAML"
        if exc.problem and exc.context and "document" in exc.problem:
            problem = f"{exc.context}, {exc.problem}"  # "expected a single document ..., but found another"
        if "\\t" in problem or "\t" in problem or "tab" in problem.lower():
            problem += " (YAML indentation must use spaces, not tabs)"
        line, col = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        raise CaseFileError(f"invalid YAML: {problem}", path=path, line=line, col=col) from None
    except yaml.YAMLError as exc:
        raise CaseFileError(f"invalid YAML: {exc}", path=path, line=1, col=1) from None
    except RecursionError:
        raise CaseFileError(f"YAML nested deeper than {MAX_DEPTH} levels", path=path, line=1, col=1) from None
    if node is None:
        raise CaseFileError("the file is empty; a case file is a mapping with a `cases` list", path=path, line=1, col=1)
    builder = _Builder(path)
    builder.check_size(node)
    data = builder.build(node, (), 0)
    return Document(path, data, builder.marks, builder.key_marks, lines, tuple(builder.duplicates))


def decode_text(path: str, raw: bytes) -> str:
    """The text of a file: UTF-8, an optional BOM dropped; binary data or other encodings are errors."""
    if raw.startswith(b"\xef\xbb\xbf"):
        raw = raw[3:]
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        before = raw[: exc.start]
        line = before.count(b"\n") + 1
        col = exc.start - (before.rfind(b"\n") + 1) + 1
        raise CaseFileError(f"not UTF-8: byte 0x{raw[exc.start]:02x} cannot be decoded", path=path, line=line, col=col) from None
    if "\x00" in text:
        at = text.index("\x00")
        line = text.count("\n", 0, at) + 1
        raise CaseFileError("binary data: the file contains NUL bytes", path=path, line=line, col=at - text.rfind("\n", 0, at))
    return text


class _Builder:
    def __init__(self, path: str) -> None:
        self.path = path
        self.marks: dict[Path, Mark] = {}
        self.key_marks: dict[Path, Mark] = {}
        self.duplicates: list[CaseFileError] = []

    def fail(self, message: str, node: yaml.Node) -> CaseFileError:
        m = node.start_mark
        return CaseFileError(message, path=self.path, line=m.line + 1, col=m.column + 1)

    def check_size(self, root: yaml.Node) -> None:
        """Refuse alias bombs: count nodes as if aliases were expanded, without expanding them."""
        sizes: dict[int, int] = {}
        stack: list[tuple[yaml.Node, bool]] = [(root, False)]
        while stack:
            node, done = stack.pop()
            if id(node) in sizes:
                continue
            children = _children(node)
            if not done:
                stack.append((node, True))
                stack.extend((c, False) for c in children if id(c) not in sizes)
                continue
            total = 1 + sum(sizes.get(id(c), 0) for c in children)
            if total > MAX_NODES:
                raise self.fail(f"the document expands to more than {MAX_NODES} values (alias bomb?)", node)
            sizes[id(node)] = total

    def build(self, node: yaml.Node, path: Path, depth: int) -> Any:
        if depth > MAX_DEPTH:
            raise self.fail(f"YAML nested deeper than {MAX_DEPTH} levels", node)
        m = node.start_mark
        style = getattr(node, "style", None) or None  # libyaml says "" for plain scalars
        self.marks[path] = Mark(m.line + 1, m.column + 1, style if isinstance(node, yaml.ScalarNode) else None)
        if isinstance(node, yaml.MappingNode):
            if node.tag != _CORE + "map":
                raise self.fail(f"tag {node.tag!r} is not allowed", node)
            out: dict[Any, Any] = {}
            for key_node, value_node in node.value:
                key = self.build(key_node, (*path, "\0key"), depth + 1)
                if not isinstance(key, str | int | float | bool) or key is None:
                    raise self.fail("mapping keys must be plain scalars", key_node)
                if key in out:
                    first = self.key_marks[(*path, key)]
                    self.duplicates.append(self.fail(f"duplicate key {key!r} (first at line {first.line})", key_node))
                    continue
                km = key_node.start_mark
                self.key_marks[(*path, key)] = Mark(km.line + 1, km.column + 1)
                out[key] = self.build(value_node, (*path, key), depth + 1)
            self.marks.pop((*path, "\0key"), None)
            return out
        if isinstance(node, yaml.SequenceNode):
            if node.tag != _CORE + "seq":
                raise self.fail(f"tag {node.tag!r} is not allowed", node)
            return [self.build(item, (*path, i), depth + 1) for i, item in enumerate(node.value)]
        return self.scalar(node)

    def scalar(self, node: yaml.Node) -> Any:
        tag, text = node.tag, node.value
        if tag == _CORE + "str":
            return text
        if tag == _CORE + "null":
            return None
        if tag == _CORE + "bool":
            return text.lower() == "true"
        if tag == _CORE + "int":
            base = 16 if text.startswith("0x") else 8 if text.startswith("0o") else 10
            digits = text[2:] if base != 10 else text
            if len(digits) > 400:
                raise self.fail("integer literal is too long", node)
            return int(digits, base)
        if tag == _CORE + "float":
            low = text.lower()
            if low.endswith(".nan"):
                return math.nan
            if low.endswith(".inf"):
                return -math.inf if low.startswith("-") else math.inf
            return float(text)
        raise self.fail(f"tag {tag!r} is not allowed; case files use plain YAML values only", node)


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.MappingNode):
        return [n for pair in node.value for n in pair]
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    return []
