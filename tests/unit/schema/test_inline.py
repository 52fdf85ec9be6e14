"""``--schema-inline``: the compact syntax and its one-line errors."""

from __future__ import annotations

import re
from typing import Any

import pyarrow as pa
import pytest

from dscall.errors import UsageError
from dscall.schema.inline import HELP, inline_schema
from dscall.schema.spec import parse_schema


def test_the_example_of_the_issue() -> None:
    spec = inline_schema("title str, year int, tags list[str]")
    assert spec.schema == {
        "type": "object",
        "properties": {
            "title": {"type": "string"},
            "year": {"type": "integer"},
            "tags": {"type": "array", "items": {"type": "string"}},
        },
        "required": ["title", "year", "tags"],
    }
    assert spec.columns == (
        ("title", pa.string()),
        ("year", pa.int64()),
        ("tags", pa.list_(pa.string())),
    )


def test_nested_objects_enums_and_nullables() -> None:
    text = (
        " parties list[{name str, role str( buyer | seller|real estate agent )}] ,"
        "address {city str, zip str?}?, amount float?, signed bool, kind str(a|b)?,"
        "scores list[int?], long_name_2 string"
    )
    spec = inline_schema(text)
    party = {
        "type": "object",
        "properties": {
            "name": {"type": "string"},
            "role": {"type": "string", "enum": ["buyer", "seller", "real estate agent"]},
        },
        "required": ["name", "role"],
    }
    expected: dict[str, Any] = {
        "type": "object",
        "properties": {
            "parties": {"type": "array", "items": party},
            "address": {
                "type": ["object", "null"],
                "properties": {"city": {"type": "string"}, "zip": {"type": ["string", "null"]}},
                "required": ["city"],
            },
            "amount": {"type": ["number", "null"]},
            "signed": {"type": "boolean"},
            "kind": {"type": ["string", "null"], "enum": ["a", "b", None]},
            "scores": {"type": "array", "items": {"type": ["integer", "null"]}},
            "long_name_2": {"type": "string"},
        },
        "required": ["parties", "signed", "scores", "long_name_2"],
    }
    assert spec.schema == expected
    assert spec.compact == parse_schema(expected, "file").compact
    assert dict(spec.columns)["parties"] == pa.list_(
        pa.struct([("name", pa.string()), ("role", pa.string())])
    )
    assert dict(spec.columns)["address"] == pa.struct([("city", pa.string()), ("zip", pa.string())])


def test_an_object_of_only_nullable_fields_has_no_required() -> None:
    spec = inline_schema("a int?")
    assert spec.schema == {"type": "object", "properties": {"a": {"type": ["integer", "null"]}}}
    assert spec.required == ()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "at column 1 (the end): expected a field (name and type)"),
        ("   ", "at column 4 (the end): expected a field (name and type)"),
        ("title", "field 'title' has no type"),
        ("title, year int", "field 'title' has no type"),
        ("title str,", "at column 11 (the end): expected a field (name and type)"),
        ("title str,, year int", "at column 11 (','): expected a field name (letters, digits, _)"),
        ("title strr", "unknown type 'strr'; expected a type"),
        ("title str, year innt", "unknown type 'innt'; expected a type (str, int, float"),
        ("title str year int", "at column 11 ('year int'): expected ',' between fields"),
        ("2title str", "at column 1 ('2title str'): expected a field name (letters, digits, _)"),
        ("a str, a int", "at column 8 ('a int'): field 'a' given twice"),
        ("a list", "at column 7 (the end): expected '[' after list (list[T])"),
        ("a list[str", "at column 11 (the end): expected ']' closing list["),
        ("a list[]", "expected a type"),
        ("a {b str", "at column 9 (the end): expected ',' or '}'"),
        ("a {}", "at column 4 ('}'): expected a field (name and type)"),
        ("a {b str}}", "at column 10 ('}'): expected ',' between fields"),
        ("a int(1|2)", "only str can list values: str(a|b)"),
        ("a str(x|y", "')' missing after the enum values"),
        ("a str(x||y)", "an enum value cannot be empty"),
        ("a str(x|x)", "enum value 'x' given twice"),
        ("a str??", "one '?' is enough"),
        ("a " + "list[" * 40 + "str" + "]" * 40, "nested deeper than 32 levels"),
        ("a str]", "at column 6 (']'): expected ',' between fields"),
    ],
)
def test_each_error_points_at_its_token(text: str, message: str) -> None:
    with pytest.raises(UsageError, match=re.escape(message)) as caught:
        inline_schema(text)
    assert caught.value.message.startswith("--schema-inline '")
    assert "\n" not in caught.value.message


def test_the_help_text_example_parses() -> None:
    example = HELP.split("Example: ")[1].strip("'")
    assert inline_schema(example).required == ("title", "year", "tags")
