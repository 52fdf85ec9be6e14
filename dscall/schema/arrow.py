"""Arrow types of a schema's properties, and the column values of one answer.

    string -> string        integer -> int64        number -> float64      boolean -> bool
    array with items -> list<item type>             object with properties -> struct<...>

Nullable types (``["integer", "null"]``) map to the same types: every Arrow field is nullable,
and absent means null too. What has no fixed shape (no ``type``, an array without ``items``, an
object without ``properties``) becomes a string column holding the value as JSON, so no answer
is lost and DuckDB's ``json`` functions still reach into it; a ``type``-less ``enum`` of strings
is a plain string column.

``row_values`` expects a validated answer, and is still total: a value that does not fit its
column (a wrong type, an integer beyond int64) becomes null rather than an error from pyarrow
in the middle of writing a row group. An integral float (``2024.0``, an integer to JSON Schema)
goes into an int64 column as 2024; an integer into a float64 column as a float. Nothing else
is coerced: ``"2024"`` is not an integer, and the validator says so before this runs.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

import pyarrow as pa

if TYPE_CHECKING:
    from dscall.schema.spec import OutputSchema

JSON_TYPES = ("string", "integer", "number", "boolean", "array", "object")
_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1
_SCALARS: dict[str, pa.DataType] = {
    "string": pa.string(),
    "integer": pa.int64(),
    "number": pa.float64(),
    "boolean": pa.bool_(),
}


def base_type(sub: Mapping[str, Any]) -> str | None:
    """The JSON type of a (checked) subschema without its "null", or None when it has none."""
    declared = sub.get("type")
    if isinstance(declared, list):
        rest = [t for t in declared if t != "null"]
        return str(rest[0]) if len(rest) == 1 else None
    return declared if isinstance(declared, str) else None


def _shape(sub: Mapping[str, Any]) -> str:
    """The column kind: a JSON type, or "json" for a value stored as JSON text."""
    kind = base_type(sub)
    if kind is None:
        enum = sub.get("enum")
        plain = isinstance(enum, list) and enum and all(isinstance(v, str) for v in enum)
        return "string" if plain else "json"
    if kind == "array" and not isinstance(sub.get("items"), Mapping):
        return "json"
    if kind == "object" and not sub.get("properties"):
        return "json"
    return kind


def arrow_type(sub: Mapping[str, Any]) -> pa.DataType:
    """The Arrow type of a column (or a struct field, or a list item) for a checked subschema."""
    shape = _shape(sub)
    if shape in _SCALARS:
        return _SCALARS[shape]
    if shape == "array":
        return pa.list_(arrow_type(sub["items"]))
    if shape == "object":
        return pa.struct(
            [pa.field(name, arrow_type(prop)) for name, prop in sub["properties"].items()]
        )
    return pa.string()


def row_values(schema: OutputSchema, obj: Mapping[str, Any] | None) -> dict[str, Any]:
    """The value of each top-level column for one answer (all None when there is none)."""
    if obj is None:
        return {name: None for name, _ in schema.columns}
    return {name: convert(obj.get(name)) for name, convert in _converters(schema)}


@functools.lru_cache(maxsize=16)
def _converters(schema: OutputSchema) -> tuple[tuple[str, Callable[[Any], Any]], ...]:
    """Per top-level column, ``column_value`` with the subschema's shape worked out once: a
    row's values are then converted without walking the schema again (it runs per answer)."""
    properties: Mapping[str, Any] = schema.schema["properties"]
    return tuple((name, _converter(properties[name])) for name, _ in schema.columns)


def _converter(sub: Mapping[str, Any]) -> Callable[[Any], Any]:
    shape = _shape(sub)
    if shape == "array":
        item = _converter(sub["items"])
        return lambda value: None if not isinstance(value, list) else [item(v) for v in value]
    if shape == "object":
        fields = tuple((name, _converter(prop)) for name, prop in sub["properties"].items())

        def struct(value: Any) -> Any:
            if not isinstance(value, Mapping):
                return None
            return {name: convert(value.get(name)) for name, convert in fields}

        return struct
    if shape == "string":
        return lambda value: value if isinstance(value, str) else None
    return functools.partial(column_value, sub)


def column_value(sub: Mapping[str, Any], value: Any) -> Any:
    """``value`` as its column (of type ``arrow_type(sub)``) takes it, or None if it cannot."""
    if value is None:
        return None
    shape = _shape(sub)
    if shape == "json":
        return json.dumps(value, ensure_ascii=False)
    if shape == "string":
        return value if isinstance(value, str) else None
    if shape == "boolean":
        return value if isinstance(value, bool) else None
    if shape == "integer":
        return _integer(value)
    if shape == "number":
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return None
        try:
            return float(value)
        except OverflowError:  # an integer of 400 digits
            return None
    if shape == "array":
        if not isinstance(value, list):
            return None
        return [column_value(sub["items"], item) for item in value]
    if not isinstance(value, Mapping):
        return None
    return {name: column_value(prop, value.get(name)) for name, prop in sub["properties"].items()}


def _integer(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, int) and _INT64_MIN <= value <= _INT64_MAX:
        return value
    return None
