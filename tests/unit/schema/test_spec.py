"""The schema subset: what is accepted, and a UsageError naming each keyword that is not."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from dscall.errors import UsageError
from dscall.schema.spec import OutputSchema, compact_json, load_schema, parse_schema


def _top(**properties: Any) -> dict[str, Any]:
    return {"type": "object", "properties": properties}


CONTRACT: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "contract",
    "type": "object",
    "properties": {
        "title": {"type": "string", "description": "as written on the first page"},
        "year": {"type": "integer"},
        "amount": {"type": ["number", "null"]},
        "signed": {"type": "boolean"},
        "currency": {"type": "string", "enum": ["EUR", "USD"]},
        "tags": {"type": "array", "items": {"type": "string"}},
        "address": {
            "type": "object",
            "properties": {"city": {"type": "string"}, "zip": {"type": ["string", "null"]}},
            "required": ["city"],
        },
        "parties": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {"name": {"type": "string"}, "share": {"type": "number"}},
                "required": ["name"],
                "additionalProperties": False,
            },
        },
        "extra": {"type": "object"},
        "anything": {},
    },
    "required": ["title", "year", "parties"],
    "additionalProperties": False,
}


def test_a_nested_schema_gives_typed_columns_in_property_order() -> None:
    spec = parse_schema(CONTRACT, "test")
    assert spec.columns == (
        ("title", pa.string()),
        ("year", pa.int64()),
        ("amount", pa.float64()),
        ("signed", pa.bool_()),
        ("currency", pa.string()),
        ("tags", pa.list_(pa.string())),
        ("address", pa.struct([("city", pa.string()), ("zip", pa.string())])),
        ("parties", pa.list_(pa.struct([("name", pa.string()), ("share", pa.float64())]))),
        ("extra", pa.string()),  # an object without properties: JSON text
        ("anything", pa.string()),
    )
    assert spec.required == ("title", "year", "parties")
    assert spec.schema == CONTRACT
    assert spec.schema is not CONTRACT


def test_compact_is_canonical_json_of_the_schema_as_given() -> None:
    spec = parse_schema(CONTRACT, "test")
    assert spec.compact == json.dumps(
        CONTRACT, sort_keys=True, separators=(",", ":"), ensure_ascii=False
    )
    assert spec.compact == compact_json(CONTRACT)
    assert '"$schema"' in spec.compact
    assert json.loads(spec.compact) == CONTRACT
    assert hash(spec) == hash(parse_schema(json.loads(spec.compact), "again"))


@pytest.mark.parametrize(
    ("keyword", "value", "where"),
    [
        ("oneOf", [{"type": "string"}], "at properties.a"),
        ("anyOf", [{"type": "string"}], "at properties.a"),
        ("allOf", [{"type": "string"}], "at properties.a"),
        ("not", {"type": "string"}, "at properties.a"),
        ("pattern", "^x", "at properties.a"),
        ("minimum", 0, "at properties.a"),
        ("maximum", 9, "at properties.a"),
        ("minLength", 1, "at properties.a"),
        ("format", "date", "at properties.a"),
        ("$ref", "#/$defs/x", "at properties.a"),
        ("const", "x", "at properties.a"),
        ("default", "x", "at properties.a"),
        ("$schema", "x", "at properties.a"),
    ],
)
def test_an_unsupported_keyword_is_named_with_where_it_is(
    keyword: str, value: object, where: str
) -> None:
    schema = _top(a={"type": "string", keyword: value})
    with pytest.raises(UsageError, match="unsupported JSON Schema keyword") as caught:
        parse_schema(schema, "s.json")
    assert f"{keyword!r} {where}" in caught.value.message
    assert caught.value.message.startswith("s.json: ")


@pytest.mark.parametrize(
    ("keyword", "value"),
    [("$defs", {}), ("patternProperties", {}), ("minProperties", 1), ("if", {})],
)
def test_an_unsupported_keyword_at_the_top_level(keyword: str, value: object) -> None:
    with pytest.raises(UsageError, match=re.escape(f"'{keyword}' at the top level")):
        parse_schema({**_top(a={"type": "string"}), keyword: value}, "s.json")


def test_the_path_of_a_keyword_deep_inside() -> None:
    name: dict[str, Any] = {"type": "string", "maxLength": 9}
    party: dict[str, Any] = {"type": "object", "properties": {"name": name}}
    schema = _top(parties={"type": "array", "items": party, "minItems": 1})
    with pytest.raises(UsageError, match=re.escape("'minItems' at properties.parties")):
        parse_schema(schema, "s")
    del schema["properties"]["parties"]["minItems"]
    with pytest.raises(
        UsageError, match=re.escape("'maxLength' at properties.parties.items.properties.name")
    ):
        parse_schema(schema, "s")
    del name["maxLength"]
    party["oneOf"] = []
    with pytest.raises(UsageError, match=re.escape("'oneOf' at properties.parties.items")):
        parse_schema(schema, "s")


@pytest.mark.parametrize(
    ("schema", "message"),
    [
        ([], "a schema is a JSON object, not a list"),
        ({"type": "array", "items": {"type": "string"}}, 'top level must be "type": "object"'),
        ({"type": "object"}, "at least one property"),
        ({"type": "object", "properties": {}}, "at least one property"),
        ({"type": ["object", "null"], "properties": {"a": {}}}, "cannot be nullable"),
        (_top(a={"type": "date"}), 'at properties.a: unsupported type "date"'),
        (_top(a={"type": "null"}), 'unsupported type "null"'),
        (_top(a={"type": ["string", "integer"]}), 'one type and "null"'),
        (_top(a={"type": ["string", "null", "integer"]}), 'one type and "null"'),
        (_top(a={"type": ["null", "null"]}), 'one type and "null"'),
        (_top(a={"type": "string", "additionalProperties": {}}), 'needs "type": "object"'),
        (_top(a={"type": "string", "items": {}}), 'items needs "type": "array"'),
        (_top(a={"type": "object", "additionalProperties": {"type": "string"}}), "true or false"),
        (_top(a={"type": "array", "items": [{"type": "string"}]}), "not a list"),
        (_top(a={"type": "string", "enum": []}), "enum must be a non-empty list"),
        (_top(a={"type": "string", "enum": ["x", 1]}), "enum value 1 is not of type string"),
        (_top(a={"type": "integer", "enum": [True]}), "enum value true is not of type integer"),
        (_top(a={"type": "string", "enum": [None]}), "enum value null is not of type string"),
        ({**_top(a={}), "required": ["b"]}, "required names 'b', not in properties"),
        ({**_top(a={}), "required": "a"}, "required must be a list"),
        ({**_top(a={}), "required": ["a", "a"]}, "required lists a name twice"),
        (_top(a={"type": "string", "title": 3}), "title must be a string"),
        (_top(a={"type": "object", "properties": []}), "properties must be an object"),
        (_top(a="string"), "at properties.a: a schema is a JSON object, not a string"),
        ({**_top(a={}), "$schema": 7}, "$schema must be a string"),
        (_top(**{" ": {}}), "a top-level property needs a name"),
    ],
)
def test_what_is_outside_the_subset(schema: object, message: str) -> None:
    with pytest.raises(UsageError) as caught:
        parse_schema(schema, "s.json")
    assert message in caught.value.message
    assert "\n" not in caught.value.message


@pytest.mark.parametrize(
    ("kind", "values"),
    [
        ("integer", [1, 2.0]),
        ("number", [1, 2.5]),
        ("boolean", [True]),
        ("array", [[1], []]),
        ("object", [{"a": 1}]),
    ],
)
def test_enum_values_of_each_type(kind: str, values: list[object]) -> None:
    parse_schema(_top(a={"type": kind, "enum": values}), "s")
    with pytest.raises(UsageError, match=f"is not of type {kind}"):
        parse_schema(_top(a={"type": kind, "enum": [*values, "x"]}), "s")


def test_nullable_enum_may_list_null() -> None:
    spec = parse_schema(_top(a={"type": ["string", "null"], "enum": ["x", None]}), "s")
    assert spec.columns == (("a", pa.string()),)


def test_nesting_is_capped() -> None:
    deep: dict[str, Any] = {"type": "string"}
    for _ in range(40):
        deep = {"type": "array", "items": deep}
    with pytest.raises(UsageError, match="nested deeper than 32"):
        parse_schema(_top(a=deep), "s")


def test_load_schema_reads_a_file(tmp_path: Path) -> None:
    path = tmp_path / "schema.json"
    path.write_text(json.dumps(CONTRACT, ensure_ascii=False), encoding="utf-8")
    assert isinstance(load_schema(path), OutputSchema)
    assert load_schema(path).compact == parse_schema(CONTRACT, "x").compact


def test_an_unreadable_or_invalid_file_is_one_line(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="cannot read it: No such file"):
        load_schema(tmp_path / "missing.json")
    bad = tmp_path / "bad.json"
    bad.write_text('{"type": "object",\n "properties": }', encoding="utf-8")
    with pytest.raises(UsageError, match=r"not valid JSON: Expecting value \(line 2, column 16\)"):
        load_schema(bad)
    binary = tmp_path / "binary.json"
    binary.write_bytes(b"\xff\xfe{")
    with pytest.raises(UsageError, match="cannot read it"):
        load_schema(binary)
    with pytest.raises(UsageError, match="cannot read it"):
        load_schema(tmp_path)
