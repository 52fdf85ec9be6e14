"""``--schema-inline``: a schema in one line, for when a JSON Schema file is more than needed.

    --schema-inline 'title str, year int, tags list[str]'

Comma-separated fields, each a name and a type:

    str  int  float  bool       string, integer, number, boolean
    list[T]                     an array of T
    {name T, ...}               an object with those fields
    str(a|b|c)                  one of these strings (an enum; values cannot hold | ( ) )
    T?                          T or null; such a field may also be left out

Every field is required unless its type ends in ``?``. Names are letters, digits and ``_``
(not starting with a digit). Nesting works as expected:

    'parties list[{name str, role str(buyer|seller)}], signed bool, amount float?'

The result is the equivalent JSON Schema (what ``--schema`` would read), checked like one.
"""

from __future__ import annotations

import re
from typing import Any

from dscall.errors import UsageError
from dscall.schema.spec import MAX_DEPTH, OutputSchema, parse_schema

SCALARS = {
    "str": "string",
    "int": "integer",
    "float": "number",
    "bool": "boolean",
    "string": "string",
    "integer": "integer",
    "number": "number",
    "boolean": "boolean",
}
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
# The short form for --help.
HELP = (
    "fields 'name type, ...': str, int, float, bool, list[T], {name T, ...}, str(a|b|c) "
    "(one of), T? (nullable, may be absent; all else is required). "
    "Example: 'title str, year int, tags list[str]'"
)
_WHERE = "--schema-inline"
_EXPECTED_TYPE = "a type (str, int, float, bool, str(a|b), list[T], {name T, ...})"


def inline_schema(text: str) -> OutputSchema:
    """The schema a ``--schema-inline`` text describes."""
    parser = _Parser(text)
    schema = parser.fields(end="")
    return parse_schema(schema, _WHERE)


class _Parser:
    """Recursive descent over the text; ``pos`` is where the next token starts."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0
        self.depth = 0  # of lists and objects, capped before Python's recursion limit

    def fail(self, what: str, at: int | None = None) -> UsageError:
        at = self.pos if at is None else at
        found = self.text[at : at + 20].split(",")[0].strip() or self.text[at : at + 1]
        shown = repr(found) if found else "the end"
        text = self.text if len(self.text) <= 80 else self.text[:79] + "…"  # the column says where
        return UsageError(f"{_WHERE} {text!r}: at column {at + 1} ({shown}): {what}")

    def skip(self) -> None:
        while self.pos < len(self.text) and self.text[self.pos].isspace():
            self.pos += 1

    def here(self) -> int:
        self.skip()
        return self.pos

    def peek(self) -> str:
        self.skip()
        return self.text[self.pos : self.pos + 1]

    def expect(self, char: str, what: str) -> None:
        if self.peek() != char:
            raise self.fail(f"expected {what}")
        self.pos += 1

    def name(self, what: str) -> str:
        self.skip()
        match = _NAME.match(self.text, self.pos)
        if not match:
            raise self.fail(f"expected {what}")
        self.pos = match.end()
        return match.group()

    def fields(self, end: str) -> dict[str, Any]:
        """``name T, ...`` up to ``end`` ("}" or the end of the text), as an object schema."""
        properties: dict[str, Any] = {}
        required: list[str] = []
        while True:
            start = self.here()
            if self.peek() == end:
                raise self.fail("expected a field (name and type)")
            field = self.name("a field name (letters, digits, _)")
            if field in properties:
                raise self.fail(f"field {field!r} given twice", start)
            if self.peek() in (",", end):
                raise self.fail(f"field {field!r} has no type; expected {_EXPECTED_TYPE}")
            sub, nullable = self.type()
            properties[field] = _nullable(sub) if nullable else sub
            if not nullable:
                required.append(field)
            if self.peek() == end:
                break
            self.expect(",", "',' between fields" if end == "" else "',' or '}'")
        schema: dict[str, Any] = {"type": "object", "properties": properties}
        if required:
            schema["required"] = required
        return schema

    def type(self) -> tuple[dict[str, Any], bool]:
        """One type, and whether it ends in ``?``."""
        start = self.here()
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise self.fail(f"nested deeper than {MAX_DEPTH} levels")
        if self.peek() == "{":
            self.pos += 1
            sub = self.fields(end="}")
            self.pos += 1
        else:
            word = self.name(_EXPECTED_TYPE)
            if word == "list":
                self.expect("[", "'[' after list (list[T])")
                item, item_nullable = self.type()
                if item_nullable:
                    _nullable(item)
                self.expect("]", "']' closing list[")
                sub = {"type": "array", "items": item}
            elif word in SCALARS:
                sub = {"type": SCALARS[word]}
                if self.peek() == "(":
                    if word not in ("str", "string"):
                        raise self.fail("only str can list values: str(a|b)")
                    sub["enum"] = self.values()
            else:
                raise self.fail(f"unknown type {word!r}; expected {_EXPECTED_TYPE}", start)
        self.depth -= 1
        if self.peek() != "?":
            return sub, False
        self.pos += 1
        if self.peek() == "?":
            raise self.fail("one '?' is enough")
        return sub, True

    def values(self) -> list[Any]:
        """``(a|b|c)``: the values of an enum, each stripped and not empty."""
        self.pos += 1  # "("
        close = self.text.find(")", self.pos)
        if close < 0:
            raise self.fail("')' missing after the enum values")
        values: list[Any] = []
        at = self.pos
        for raw in self.text[self.pos : close].split("|"):
            value = raw.strip()
            if not value or "(" in value:
                raise self.fail("an enum value cannot be empty or hold '('", at)
            if value in values:
                raise self.fail(f"enum value {value!r} given twice", at)
            values.append(value)
            at += len(raw) + 1
        self.pos = close + 1
        return values


def _nullable(sub: dict[str, Any]) -> dict[str, Any]:
    """``T?``: the type or null (an enum must list null too, or null would fail it)."""
    sub["type"] = [sub["type"], "null"]
    if "enum" in sub:
        sub["enum"].append(None)
    return sub
