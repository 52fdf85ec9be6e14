"""Is an answer one JSON object that follows the schema? The errors say what to fix, in a form
the re-ask (``prompt.reask_message``) can send back to the model.

An answer is valid only if the whole stripped text is one JSON object: prose or a Markdown fence
around it is an error, since ``json_object`` mode promises bare JSON and a lenient extractor
would hide a prompt that does not work. ``NaN`` and ``Infinity`` are not JSON and are errors
too. No value is coerced: ``"2024"`` is not an integer; ``2024`` is a number and ``2024.0`` an
integer, as JSON Schema has it.

The validator: fastjsonschema, compiled once per schema to a Python function, with
``fast_fail=False`` (2.22) so it reports every error, as jsonschema does, and a re-ask can fix
them all at once instead of one per round trip. Measured (bench/bench_schema.py, Python 3.11,
one core, best of 5) on a 10-property schema with a nested list of objects, answers of ~1 KB,
``json.loads`` included:

    validator                               valid answer    invalid answer (3 errors)
    jsonschema 4.26 Draft202012Validator       122 µs           134 µs
    fastjsonschema 2.22, all errors             10 µs            25 µs (messages included)
    fastjsonschema, first error only             9 µs             7 µs

fastjsonschema is 12x faster on a valid answer, the common case, and 5x on an invalid one (the
validation alone, without ``json.loads``: ~5 µs against ~120 µs). jsonschema would be no
bottleneck at the API's pace, but at the simulator's target of 3,000 answers per second it
would take over a third of a core on the engine's one event loop (fastjsonschema: 3%).
fastjsonschema's default first-error-only mode was not taken: the µs it saves on an invalid
answer are nothing next to a re-ask round trip it may cost. Compiling takes ~3 ms, once per
run. fastjsonschema implements draft-07; on dscall's subset (spec.py) that means what draft
2020-12 means.

Error messages are one line, ``path: what is wrong`` (``year: '2024' is not of type
'integer'``, ``parties[1]: 'name' is a required property``), at most ``MAX_ERRORS``, in the
order of the schema, so the same answer always gets the same re-ask (and the same cache key).
"""

from __future__ import annotations

import json
import math
from typing import Any

import fastjsonschema

from dscall.errors import one_line
from dscall.schema.spec import OutputSchema, json_kind

MAX_ERRORS = 5
_VALUE_CHARS = 60  # a value quoted in an error; the model knows its own answer
_ERROR_CHARS = 200


class Validator:
    """The answer checker of one schema, built once per run (compiling is the costly part)."""

    def __init__(self, schema: OutputSchema) -> None:
        self.schema = schema
        # $schema is dropped: fastjsonschema picks its draft from it and knows none past 2019;
        # use_default=False so validation never writes defaults into the answer.
        definition = {k: v for k, v in schema.schema.items() if k != "$schema"}
        self._validate = fastjsonschema.compile(
            definition, use_default=False, use_formats=False, fast_fail=False
        )
        # One decoder for the run: json.loads with hooks builds a new one per call.
        self._decode = json.JSONDecoder(parse_constant=_reject_constant, parse_float=_finite).decode

    def check(self, text: str) -> tuple[dict[str, Any] | None, list[str]]:
        """The answer's object and no errors, or None and at most ``MAX_ERRORS`` errors."""
        try:
            obj = self._decode(text.strip())
        except json.JSONDecodeError as exc:
            return None, [f"not a JSON object: {exc.msg} at line {exc.lineno} column {exc.colno}"]
        except ValueError as exc:  # NaN, Infinity, 1e400
            return None, [f"not a JSON object: {exc}"]
        except RecursionError:
            return None, ["not a JSON object: nested too deeply"]
        if not isinstance(obj, dict):
            return None, [f"not a JSON object: the answer is {json_kind(obj)}"]
        try:
            self._validate(obj)
        except fastjsonschema.JsonSchemaValuesException as exc:
            return None, _messages(exc.errors)
        except fastjsonschema.JsonSchemaValueException as exc:  # raised alone by some rules
            return None, _messages([exc])
        return obj, []


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON value")


def _finite(text: str) -> float:
    value = float(text)
    if math.isinf(value):  # float("1e400"): not the number the model wrote
        raise ValueError(f"{text} is out of range for a float")
    return value


def _messages(errors: list[fastjsonschema.JsonSchemaValueException]) -> list[str]:
    messages: list[str] = []
    for error in errors:
        for message in _describe(error):
            line = one_line(message, _ERROR_CHARS)
            if line not in messages:
                messages.append(line)
        if len(messages) >= MAX_ERRORS:
            break
    return messages[:MAX_ERRORS]


def _describe(error: fastjsonschema.JsonSchemaValueException) -> list[str]:
    """jsonschema's wording (what models have seen most), with dscall's paths."""
    name = error.name or "data"
    path = name[len("data") :].lstrip(".") if name.startswith("data") else name
    prefix = f"{path}: " if path else ""
    value, rule, wanted = error.value, error.rule, error.rule_definition
    if rule == "type":
        types = wanted if isinstance(wanted, list) else [wanted]
        return [f"{prefix}{_show(value)} is not of type {', '.join(map(repr, types))}"]
    if rule == "enum":
        return [f"{prefix}{_show(value)} is not one of {_show(wanted, 160)}"]
    if rule == "required" and isinstance(value, dict) and isinstance(wanted, list):
        return [f"{prefix}{n!r} is a required property" for n in wanted if n not in value]
    if rule == "additionalProperties" and isinstance(value, dict):
        known = (error.definition or {}).get("properties", {})
        extra = ", ".join(repr(k) for k in value if k not in known)
        return [f"{prefix}additional properties are not allowed ({extra} unexpected)"]
    return [f"{prefix}{error.message.removeprefix(name).strip()}"]


def _show(value: object, limit: int = _VALUE_CHARS) -> str:
    text = repr(value)
    if isinstance(value, (dict, list)) and len(text) > limit:
        return "an object" if isinstance(value, dict) else "a list"
    return text if len(text) <= limit else text[: limit - 1] + "…"
