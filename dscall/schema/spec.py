"""The output schema (SPEC §10): the JSON Schema subset dscall accepts, checked once at start.

The subset is what a typed Parquet column can hold and what the model can follow: ``type``
(string, integer, number, boolean, array, object, or a list of one of those plus "null"),
``properties``, ``required``, ``items``, ``enum``, ``additionalProperties`` (true or false),
and the annotations ``description`` and ``title``; ``$schema`` is allowed at the top level and
ignored (validation is draft 2020-12 whatever it says). Anything else (``oneOf``, ``pattern``,
``minimum``, ``$ref``, ``format``, ...) is a ``UsageError`` naming the keyword and where it is,
as a dotted path such as ``properties.parties.items``: a keyword dscall silently skipped would
be a constraint the user believes in and nobody checks.

The top level must be ``"type": "object"`` with at least one property: each top-level property
becomes a column (``columns``, in the schema's property order).
"""

from __future__ import annotations

import copy
import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa

from dscall.errors import UsageError
from dscall.schema.arrow import JSON_TYPES, arrow_type, base_type

ALLOWED = (
    "type",
    "properties",
    "required",
    "items",
    "enum",
    "description",
    "title",
    "additionalProperties",
)
# Deeper than this is a mistake (or a generated schema no model follows); the cap also keeps
# the recursive walks here and in arrow.py far from Python's recursion limit.
MAX_DEPTH = 32


@dataclass(frozen=True)
class OutputSchema:
    """A checked schema: as given, in canonical compact form, and as typed columns."""

    schema: dict[str, Any]
    compact: str
    columns: tuple[tuple[str, pa.DataType], ...]
    required: tuple[str, ...]

    # A dict field makes the generated __hash__ fail; the compact form identifies the schema.
    def __hash__(self) -> int:
        return hash(self.compact)


def compact_json(schema: Mapping[str, Any]) -> str:
    """The canonical compact JSON of a schema (what the prompt carries and the hash covers)."""
    return json.dumps(schema, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def load_schema(path: Path) -> OutputSchema:
    """Read and check a ``--schema`` file."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise UsageError(f"--schema {path}: cannot read it: {reason}") from exc
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise UsageError(
            f"--schema {path}: not valid JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})"
        ) from exc
    return parse_schema(data, f"--schema {path}")


def parse_schema(data: object, where: str) -> OutputSchema:
    """Check ``data`` against the subset; ``where`` names its source in error messages."""
    if not isinstance(data, dict):
        raise UsageError(f"{where}: a schema is a JSON object, not {json_kind(data)}")
    top = {k: v for k, v in data.items() if k != "$schema"}
    if "$schema" in data and not isinstance(data["$schema"], str):
        raise UsageError(f"{where}: $schema must be a string")
    _check(top, "", where, 0)
    if base_type(top) != "object" or not top.get("properties"):
        raise UsageError(
            f'{where}: the top level must be "type": "object" with at least one property '
            "(each top-level property becomes a column)"
        )
    if isinstance(top["type"], list):
        raise UsageError(f"{where}: the top level cannot be nullable: it is the whole answer")
    properties: dict[str, Any] = top["properties"]
    if any(not name.strip() for name in properties):
        raise UsageError(f"{where}: a top-level property needs a name: it names a column")
    columns = tuple((name, arrow_type(sub)) for name, sub in properties.items())
    return OutputSchema(
        # A copy: the caller's dict changing later must not change a frozen schema.
        schema=copy.deepcopy(data),
        compact=compact_json(data),
        columns=columns,
        required=tuple(top.get("required", ())),
    )


def _at(path: str) -> str:
    return f"at {path}" if path else "at the top level"


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _check(node: object, path: str, where: str, depth: int) -> None:
    """Raise a UsageError for the first thing outside the subset, depth first, in key order."""
    if not isinstance(node, dict):
        raise UsageError(f"{where}: {_at(path)}: a schema is a JSON object, not {json_kind(node)}")
    if depth > MAX_DEPTH:
        raise UsageError(f"{where}: {_at(path)}: nested deeper than {MAX_DEPTH} levels")
    for key in node:
        if key not in ALLOWED:
            raise UsageError(
                f"{where}: unsupported JSON Schema keyword {key!r} {_at(path)} "
                f"(dscall supports {', '.join(ALLOWED)})"
            )
    kind = _check_type(node, path, where)
    for key in ("description", "title"):
        if key in node and not isinstance(node[key], str):
            raise UsageError(f"{where}: {_at(path)}: {key} must be a string")
    for key in ("properties", "required", "additionalProperties"):
        if key in node and kind != "object":
            raise UsageError(f'{where}: {_at(path)}: {key} needs "type": "object"')
    if "items" in node and kind != "array":
        raise UsageError(f'{where}: {_at(path)}: items needs "type": "array"')
    if "additionalProperties" in node and not isinstance(node["additionalProperties"], bool):
        raise UsageError(
            f"{where}: {_at(path)}: additionalProperties must be true or false "
            "(a schema for extra properties is not supported)"
        )
    if "enum" in node:
        _check_enum(node, path, where)
    properties = node.get("properties", {})
    if not isinstance(properties, dict):
        raise UsageError(f"{where}: {_at(path)}: properties must be an object")
    if "required" in node:
        _check_required(node["required"], properties, path, where)
    for name, sub in properties.items():
        _check(sub, _join(_join(path, "properties"), name), where, depth + 1)
    if "items" in node:
        _check(node["items"], _join(path, "items"), where, depth + 1)


def _check_type(node: dict[str, Any], path: str, where: str) -> str | None:
    declared = node.get("type")
    if declared is None:
        return None
    if isinstance(declared, list):
        rest = [t for t in declared if t != "null"]
        if len(declared) != 2 or len(rest) != 1:
            raise UsageError(
                f'{where}: {_at(path)}: a type list must be one type and "null" '
                f'(["string", "null"]), not {json.dumps(declared, ensure_ascii=False)}'
            )
        declared = rest[0]
    if declared not in JSON_TYPES:
        raise UsageError(
            f"{where}: {_at(path)}: unsupported type {json.dumps(declared)} "
            f'(dscall supports {", ".join(JSON_TYPES)}, or one of them and "null")'
        )
    return str(declared)


def _check_enum(node: dict[str, Any], path: str, where: str) -> None:
    values = node["enum"]
    if not isinstance(values, list) or not values:
        raise UsageError(f"{where}: {_at(path)}: enum must be a non-empty list")
    kind = base_type(node)
    nullable = isinstance(node.get("type"), list)
    for value in values:
        if kind is not None and not matches(kind, value) and not (nullable and value is None):
            raise UsageError(
                f"{where}: {_at(path)}: enum value {json.dumps(value, ensure_ascii=False)} "
                f"is not of type {kind}"
            )


def _check_required(required: object, properties: dict[str, Any], path: str, where: str) -> None:
    if not isinstance(required, list) or not all(isinstance(n, str) for n in required):
        raise UsageError(f"{where}: {_at(path)}: required must be a list of property names")
    for name in required:
        if name not in properties:
            raise UsageError(f"{where}: {_at(path)}: required names {name!r}, not in properties")
    if len(set(required)) != len(required):
        raise UsageError(f"{where}: {_at(path)}: required lists a name twice")


def matches(kind: str, value: object) -> bool:
    """Whether a JSON value is of a JSON Schema type (bool is not a number; 2.0 is an integer)."""
    if kind == "string":
        return isinstance(value, str)
    if kind == "boolean":
        return isinstance(value, bool)
    if kind == "integer":
        return (isinstance(value, int) and not isinstance(value, bool)) or (
            isinstance(value, float) and value.is_integer()
        )
    if kind == "number":
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if kind == "array":
        return isinstance(value, list)
    return isinstance(value, dict)


def json_kind(value: object) -> str:
    """What a non-object JSON value is, for messages ("a list")."""
    if isinstance(value, list):
        return "a list"
    if isinstance(value, str):
        return "a string"
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    return "a number"
