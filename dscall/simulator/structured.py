"""Answers that follow a JSON Schema, and the three ways the simulator breaks one (SPEC §8, §10).

In JSON mode with a schema in the system prompt (``dscall.schema.prompt``) the answer is one
object built from the schema and the chunk of the *first* user message: a re-ask (the same
conversation plus the bad answer and the validation errors) is about the same chunk and gets
the same object, so a test knows the valid answer ahead (``expected_schema_answer``).

Values come from the chunk's first words and its length, each property salted by its name (and
its parent's salt), so fields differ from each other and from chunk to chunk: a string is a
slice of the first words, an integer or a number the length scaled, a boolean a parity, an enum
value a stable hash's pick, an array 1-3 items; nullable types are filled, never null. JSON
mode answers an object, so the root is read as an object schema whatever its ``type``.

A schema is compiled once into a tree of small functions, cached by its compact text (bounded):
a request only walks the tree, with no JSON parse and no words past the first ``HEAD_CHARS``
characters of the chunk.
"""

from __future__ import annotations

import functools
import json
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from dscall.schema.prompt import schema_of
from dscall.simulator import faults
from dscall.simulator.answers import chunk_of, first_user_text, message_text
from dscall.simulator.protocol import dumps

HEAD_CHARS = 512  # of the chunk, read for words: the rest of a long chunk is never split
HEAD_WORDS = 48
SCHEMA_CACHE_SIZE = 128  # compiled schemas kept (a run uses one per step)
MAX_STRING_WORDS = 4
MAX_ITEMS = 3
EMPTY_STRING = "(empty)"  # a string field's value for a chunk without words

# The kinds of violation, as counted in the stats' ``schema_violations``.
MISSING_REQUIRED = "missing_required"
WRONG_TYPE = "wrong_type"
PROSE = "prose"
VIOLATIONS = (MISSING_REQUIRED, WRONG_TYPE, PROSE)
PROSE_BEFORE = "Here is the JSON: "
PROSE_AFTER = "\nI hope this helps!"

_M32 = 0xFFFFFFFF
_GOLDEN = 0x9E3779B97F4A7C15
_PICKS = 1 << 30


@dataclass(slots=True)
class Source:
    """What values are made of: the chunk's first words, its length, a hash of its head."""

    words: list[str]
    length: int
    key: int


Build = Callable[[Source, int], Any]  # (source, salt) -> a value
Breaker = Callable[[Any], Any]  # a valid value -> one of a type the schema does not allow


@dataclass(frozen=True, slots=True)
class CompiledSchema:
    build: Build  # the root object
    required: tuple[str, ...]  # the root's required properties (all present in an answer)
    breakers: tuple[tuple[str, Breaker], ...]  # root properties whose type can be made wrong


def source(messages: Sequence[dict[str, Any]]) -> Source:
    """The chunk of the first user message (found as ``answers.chunk_text`` finds it)."""
    text = chunk_of(first_user_text(messages))
    head = text[:HEAD_CHARS]
    words = head.split()
    if len(text) > HEAD_CHARS and len(words) > 1 and not text[HEAD_CHARS].isspace():
        words.pop()  # cut in the middle by HEAD_CHARS
    del words[HEAD_WORDS:]
    key = zlib.crc32(head.encode("utf-8", "surrogatepass"), len(text) & _M32)
    return Source(words, len(text), key)


def request_schema(messages: Sequence[dict[str, Any]]) -> str | None:
    """The compact schema a system message asks for, or None."""
    for message in messages:
        if message.get("role") == "system":
            compact = schema_of(message_text(message.get("content")))
            if compact is not None:
                return compact
    return None


@functools.lru_cache(maxsize=SCHEMA_CACHE_SIZE)
def compile_schema(compact_schema: str) -> CompiledSchema | None:
    """The schema as builders, or None when the text is not a JSON object (or is nested past
    the recursion limit: any schema can reach the simulator, not only dscall's checked ones)."""
    try:
        schema = json.loads(compact_schema)
        if not isinstance(schema, dict):
            return None
        build = _object(schema)
    except (ValueError, RecursionError):
        return None
    breakers = []
    for name, sub in _properties(schema).items():
        breaker = _breaker(sub)
        if breaker is not None:
            breakers.append((name, breaker))
    return CompiledSchema(build, tuple(_required(schema)), tuple(breakers))


def expected_schema_answer(
    messages: Sequence[dict[str, Any]], compact_schema: str
) -> dict[str, Any]:
    """The valid object the simulator answers to ``messages`` asking for ``compact_schema``."""
    compiled = compile_schema(compact_schema)
    if compiled is None:
        raise ValueError(f"not a JSON Schema object: {compact_schema[:80]!r}")
    answer: dict[str, Any] = compiled.build(source(messages), 0)
    return answer


def schema_answer(
    messages: Sequence[dict[str, Any]], rate: float, seed: int, digest: bytes
) -> tuple[str, str | None] | None:
    """The content of a JSON-mode answer and the violation it carries (None: it is valid), or
    None when the request asks for no schema (or an unreadable one). Only the first answer of
    a conversation breaks, at ``rate``: a re-ask (an assistant message in the request) always
    gets the valid object, so one re-ask is enough for every row."""
    compact = request_schema(messages)
    if compact is None:
        return None
    compiled = compile_schema(compact)
    if compiled is None:
        return None
    answer = compiled.build(source(messages), 0)
    if rate > 0.0 and not any(message.get("role") == "assistant" for message in messages):
        whether, which = faults.schema_draws(seed, digest)
        if whether < rate:
            return broken(compiled, answer, which)
    return _dumps(answer), None


def broken(compiled: CompiledSchema, answer: dict[str, Any], pick: float) -> tuple[str, str]:
    """``answer`` broken in the way ``pick`` (uniform in [0, 1)) selects, or the next one that
    applies (a schema without required fields has none to drop; prose always applies)."""
    number = int(pick * _PICKS)
    first = number % len(VIOLATIONS)
    number //= len(VIOLATIONS)
    for step in range(len(VIOLATIONS)):
        kind = VIOLATIONS[(first + step) % len(VIOLATIONS)]
        if kind == MISSING_REQUIRED and compiled.required:
            del answer[compiled.required[number % len(compiled.required)]]
            return _dumps(answer), kind
        if kind == WRONG_TYPE and compiled.breakers:
            name, breaker = compiled.breakers[number % len(compiled.breakers)]
            answer[name] = breaker(answer[name])
            return _dumps(answer), kind
        if kind == PROSE:
            return PROSE_BEFORE + _dumps(answer) + PROSE_AFTER, kind
    raise AssertionError("unreachable: prose always applies")


# --- compiling a schema into builders ---------------------------------------------------------


def _node(schema: Any) -> Build:
    if not isinstance(schema, dict):
        return _string  # `true` or something unreadable: anything goes
    if "const" in schema:
        const = schema["const"]
        return lambda src, salt: const
    enum = schema.get("enum")
    if isinstance(enum, list) and enum:
        return _enum(enum)
    for word in ("anyOf", "oneOf"):  # beyond the subset dscall writes; the first real option
        options = schema.get(word)
        if isinstance(options, list) and options:
            usable = [o for o in options if not (isinstance(o, dict) and o.get("type") == "null")]
            return _node(usable[0] if usable else options[0])
    kind = _main_type(schema)
    if kind == "object":
        return _object(schema)
    if kind == "array":
        return _array(schema)
    return _SCALARS.get(kind, _string)


def _type_names(schema: dict[str, Any]) -> list[str]:
    kind = schema.get("type")
    if isinstance(kind, str):
        return [kind]
    if isinstance(kind, list):
        return [k for k in kind if isinstance(k, str)]
    return []


def _main_type(schema: dict[str, Any]) -> str:
    """The type an answer fills: the first one listed that is not "null" (nullable types are
    filled), else what the keywords suggest."""
    names = _type_names(schema)
    for name in names:
        if name != "null":
            return name
    if names:
        return "null"
    if "properties" in schema:
        return "object"
    if "items" in schema:
        return "array"
    return "string"


def _properties(schema: dict[str, Any]) -> dict[str, Any]:
    properties = schema.get("properties")
    return properties if isinstance(properties, dict) else {}


def _required(schema: dict[str, Any]) -> list[str]:
    required = schema.get("required")
    if not isinstance(required, list):
        return []
    return [name for name in required if isinstance(name, str)]


def _object(schema: dict[str, Any]) -> Build:
    properties = _properties(schema)
    fields = [(name, _name_salt(name), _node(sub)) for name, sub in properties.items()]
    # A required name without a definition still has to be there; any value will do.
    fields += [
        (name, _name_salt(name), _string) for name in _required(schema) if name not in properties
    ]

    def build(src: Source, salt: int) -> dict[str, Any]:
        # _spread inlined: this line runs once per property of every answer.
        return {
            name: child(src, ((salt ^ own) * _GOLDEN) >> 32 & _M32) for name, own, child in fields
        }

    return build


def _array(schema: dict[str, Any]) -> Build:
    item = _node(schema.get("items", {}))
    low = schema.get("minItems")
    high = schema.get("maxItems")
    low = low if type(low) is int and low > 0 else 0
    high = high if type(high) is int and high >= low else None

    def build(src: Source, salt: int) -> list[Any]:
        count = max(1 + _spread(src.key ^ salt) % MAX_ITEMS, low)
        if high is not None:
            count = min(count, high)
        return [item(src, _spread(salt + index + 1)) for index in range(count)]

    return build


def _enum(values: list[Any]) -> Build:
    # A nullable enum lists null among its values: filled, like other nullable types.
    choices = [value for value in values if value is not None] or values

    def build(src: Source, salt: int) -> Any:
        return choices[_spread(src.key ^ salt) % len(choices)]

    return build


def _string(src: Source, salt: int) -> str:
    words = src.words
    if not words:
        return EMPTY_STRING
    spread = _spread(salt ^ src.key)
    start = spread % len(words)
    return " ".join(words[start : start + 1 + (spread >> 8) % MAX_STRING_WORDS])


def _integer(src: Source, salt: int) -> int:
    return src.length // (1 + salt % 8)


def _number(src: Source, salt: int) -> float:
    return round(src.length / (1.5 + salt % 8), 2)


def _boolean(src: Source, salt: int) -> bool:
    return (src.length + salt) % 2 == 0


def _null(src: Source, salt: int) -> None:
    return None


_SCALARS: dict[str, Build] = {
    "string": _string,
    "integer": _integer,
    "number": _number,
    "boolean": _boolean,
    "null": _null,
}

_KIND_OF_VALUE: dict[type, str] = {
    str: "string",
    bool: "boolean",
    int: "integer",
    float: "number",
    list: "array",
    dict: "object",
    type(None): "null",
}


def _breaker(schema: Any) -> Breaker | None:
    """How to give a property a value of a type it does not allow: a string for a field that
    allows none (an integer 12 becomes "12"), else a number for one that allows no number (a
    string becomes its length); None when the schema allows both, or says no type at all."""
    if not isinstance(schema, dict):
        return None
    enum = schema.get("enum")
    if isinstance(enum, list) and enum:
        allowed = {_KIND_OF_VALUE.get(type(value), "") for value in enum}
    else:
        allowed = set(_type_names(schema))
        if not allowed:
            return None
    if "string" not in allowed:
        return _as_text
    if not allowed & {"integer", "number"}:
        return _as_length
    return None


def _as_text(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)


def _as_length(value: Any) -> int:
    return len(value) if isinstance(value, (str, list, dict)) else 0


def _name_salt(name: str) -> int:
    return zlib.crc32(name.encode("utf-8", "surrogatepass"))


def _spread(x: int) -> int:
    """32 well-mixed bits of ``x`` (Fibonacci hashing: the high half of a product with 2**64
    over the golden ratio), so that ``% n`` picks evenly; one multiplication, as this runs a
    few times per field of every answer."""
    return (x * _GOLDEN) >> 32 & _M32


def _dumps(answer: dict[str, Any]) -> str:
    # The wire's JSON encoder (orjson when installed: 10x json.dumps here); compact, as a
    # model in json_object mode mostly writes it.
    return dumps(answer).decode()
