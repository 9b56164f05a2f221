"""The case-file schema: valid Draft 2020-12, readable by draft-07 editors, described and closed."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from gradspec.casefile.loader import schema
from gradspec.casefile.model import data_dir, discover

ROOT = Path(__file__).resolve().parent.parent
# Keywords that draft-07 editors (the YAML language server among them) do not know.
NEWER_THAN_DRAFT7 = {"$defs", "prefixItems", "dependentRequired", "dependentSchemas", "unevaluatedProperties",
                     "unevaluatedItems", "$anchor", "$dynamicRef", "$dynamicAnchor", "minContains", "maxContains"}


def subschemas(node: Any, path: str = "#") -> Iterator[tuple[str, dict[str, Any]]]:
    if isinstance(node, dict):
        yield path, node
        for key, value in node.items():
            if key == "properties":
                for name, sub in value.items():
                    yield from subschemas(sub, f"{path}/properties/{name}")
            elif key in ("items", "additionalProperties", "propertyNames") and isinstance(value, dict):
                yield from subschemas(value, f"{path}/{key}")
            elif key in ("anyOf", "oneOf", "allOf"):
                for i, sub in enumerate(value):
                    yield from subschemas(sub, f"{path}/{key}/{i}")


def test_the_schema_is_valid_in_both_drafts() -> None:
    s = schema()
    assert s["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    jsonschema.Draft202012Validator.check_schema(s)
    jsonschema.Draft7Validator.check_schema(s)


def test_the_schema_uses_no_keyword_newer_than_draft7() -> None:
    used = {key for _, node in subschemas(schema()) for key in node}
    assert used & NEWER_THAN_DRAFT7 == set()


def test_every_property_has_a_description() -> None:
    missing = [f"{path}/properties/{name}" for path, node in subschemas(schema())
               for name, sub in node.get("properties", {}).items() if "description" not in sub]
    assert missing == []


def test_every_object_with_properties_is_closed() -> None:
    open_objects = [path for path, node in subschemas(schema())
                    if "properties" in node and node.get("additionalProperties") is not False]
    assert open_objects == []


def test_the_shipped_schema_is_the_one_in_schemas() -> None:
    shipped = data_dir("schemas") / "case-file.schema.json"
    assert json.loads(shipped.read_text()) == json.loads((ROOT / "schemas" / "case-file.schema.json").read_text())


@pytest.mark.parametrize("path", discover([ROOT / "cases"]), ids=lambda p: p.name)
def test_every_library_file_names_the_schema_for_editors(path: Path) -> None:
    first = path.read_text(encoding="utf-8").splitlines()[0]
    assert first == "# yaml-language-server: $schema=../schemas/case-file.schema.json"


def test_expect_ieee_is_a_boolean() -> None:
    validator = jsonschema.Draft202012Validator(schema())
    case = {"id": "e", "expr": "exp(x)", "at": {"x": 800}}
    assert not list(validator.iter_errors({"cases": [case | {"expect": {"ieee": True}}]}))
    errors = list(validator.iter_errors({"cases": [case | {"expect": {"ieee": "yes"}}]}))
    assert [list(e.absolute_path) for e in errors] == [["cases", 0, "expect", "ieee"]]
