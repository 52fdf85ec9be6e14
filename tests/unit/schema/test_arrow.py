"""Typed columns: values for pyarrow, a Parquet round trip, and DuckDB reading the columns."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from dscall.schema.arrow import column_value, row_values
from dscall.schema.spec import parse_schema
from tests.unit.schema.test_spec import CONTRACT

ANSWER: dict[str, Any] = {
    "title": "Lease",
    "year": 2024,
    "amount": 1250,
    "signed": True,
    "currency": "EUR",
    "tags": ["lease", "london"],
    "address": {"city": "London"},
    "parties": [{"name": "Acme", "share": 0.5}, {"name": "Widget"}],
    "extra": {"k": [1, "二"]},
    "anything": [1, 2],
}


def test_row_values_give_each_top_level_column() -> None:
    spec = parse_schema(CONTRACT, "test")
    assert row_values(spec, ANSWER) == {
        "title": "Lease",
        "year": 2024,
        "amount": 1250.0,
        "signed": True,
        "currency": "EUR",
        "tags": ["lease", "london"],
        "address": {"city": "London", "zip": None},
        "parties": [{"name": "Acme", "share": 0.5}, {"name": "Widget", "share": None}],
        "extra": '{"k": [1, "二"]}',
        "anything": "[1, 2]",
    }
    assert isinstance(row_values(spec, ANSWER)["amount"], float)


def test_absent_and_no_answer_are_null() -> None:
    spec = parse_schema(CONTRACT, "test")
    values = row_values(spec, {"title": "x"})
    assert values["title"] == "x"
    assert all(values[name] is None for name, _ in spec.columns if name != "title")
    assert row_values(spec, None) == dict.fromkeys(values)


@pytest.mark.parametrize(
    ("sub", "value", "expected"),
    [
        ({"type": "integer"}, 2024.0, 2024),
        ({"type": "integer"}, "2024", None),
        ({"type": "integer"}, True, None),
        ({"type": "integer"}, 2**63, None),
        ({"type": "integer"}, 1.5, None),
        ({"type": "number"}, 10**400, None),
        ({"type": "number"}, False, None),
        ({"type": "boolean"}, 1, None),
        ({"type": "string"}, 3, None),
        ({"type": "array", "items": {"type": "integer"}}, "x", None),
        ({"type": "array", "items": {"type": "integer"}}, [1, "2", None], [1, None, None]),
        ({"type": "object", "properties": {"a": {"type": "string"}}}, [1], None),
        ({"enum": ["a", "b"]}, "a", "a"),
        ({"enum": [1, "b"]}, 1, "1"),
        ({"type": "array"}, ["x"], '["x"]'),
    ],
)
def test_a_value_that_does_not_fit_its_column_is_null(
    sub: dict[str, Any], value: object, expected: object
) -> None:
    assert column_value(sub, value) == expected


def test_a_table_round_trips_through_parquet(tmp_path: Path) -> None:
    spec = parse_schema(CONTRACT, "test")
    schema = pa.schema(list(spec.columns))
    rows = [row_values(spec, ANSWER), row_values(spec, {"title": "only"}), row_values(spec, None)]
    table = pa.Table.from_pylist(rows, schema=schema)
    path = tmp_path / "out.parquet"
    pq.write_table(table, path)
    back = pq.read_table(path)
    assert back.schema.equals(schema)
    assert back.to_pylist() == rows
    assert json.loads(back.column("extra")[0].as_py()) == ANSWER["extra"]


@pytest.mark.skipif(importlib.util.find_spec("duckdb") is None, reason="duckdb not installed")
def test_duckdb_queries_the_typed_columns(tmp_path: Path) -> None:
    import duckdb

    spec = parse_schema(CONTRACT, "test")
    rows = [row_values(spec, ANSWER), row_values(spec, {"title": "only", "year": 1999})]
    path = tmp_path / "out.parquet"
    pq.write_table(pa.Table.from_pylist(rows, schema=pa.schema(list(spec.columns))), path)
    table = duckdb.connect().read_parquet(str(path))
    # DuckDB quotes field names that are keywords, and which those are varies by version.
    types = {
        name: str(kind).replace('"', "")
        for name, kind in zip(table.columns, table.types, strict=True)
    }
    assert types["year"] == "BIGINT"
    assert types["amount"] == "DOUBLE"
    assert types["signed"] == "BOOLEAN"
    assert types["tags"] == "VARCHAR[]"
    assert types["address"] == "STRUCT(city VARCHAR, zip VARCHAR)"
    assert types["parties"] == "STRUCT(name VARCHAR, share DOUBLE)[]"
    query = "SELECT title, year + 1, address.city, parties[1].name, len(tags) FROM t"
    result = table.query("t", query + " ORDER BY year DESC")
    assert result is not None
    assert result.fetchall() == [
        ("Lease", 2025, "London", "Acme", 2),
        ("only", 2000, None, None, None),
    ]
