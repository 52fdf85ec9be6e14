"""Validation cost per answer (``--schema``): jsonschema beside fastjsonschema, the one dscall
uses (dscall/schema/validate.py) marked.

    .venv/bin/python -m bench.bench_schema

A 10-property schema with a nested list of objects, a struct, enums and nullable fields; a
valid answer of ~1 KB and an invalid one (a string for an integer, a value outside an enum, a
required property missing: three errors). Each figure is µs per answer, ``json.loads`` of the
answer's text included (the validator gets text, as dscall's does), best of 5 repeats on one
core. No target: the figures are what the choice in validate.py's docstring rests on.
"""

from __future__ import annotations

import copy
import json
import timeit
from collections.abc import Callable
from typing import Any

import fastjsonschema

from dscall.schema.spec import parse_schema
from dscall.schema.validate import Validator

REPEATS = 5
NUMBER = 2000
CHOSEN = "fastjsonschema"

_PARTY = {
    "type": "object",
    "properties": {
        "name": {"type": "string"},
        "role": {"type": "string", "enum": ["buyer", "seller", "agent"]},
        "share": {"type": "number"},
    },
    "required": ["name", "role"],
    "additionalProperties": False,
}
SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "title": {"type": "string"},
        "year": {"type": "integer"},
        "amount": {"type": ["number", "null"]},
        "currency": {"type": "string", "enum": ["EUR", "USD", "GBP", "CNY"]},
        "signed": {"type": "boolean"},
        "tags": {"type": "array", "items": {"type": "string"}},
        "parties": {"type": "array", "items": _PARTY},
        "address": {
            "type": "object",
            "properties": {
                "street": {"type": "string"},
                "city": {"type": "string"},
                "country": {"type": "string"},
            },
            "required": ["city"],
        },
        "summary": {"type": "string"},
        "pages": {"type": ["integer", "null"]},
    },
    "required": ["title", "year", "currency", "signed", "tags", "parties", "summary"],
    "additionalProperties": False,
}
VALID: dict[str, Any] = {
    "title": "Lease agreement between Acme Ltd and Widget GmbH for the premises at 12 High Street",
    "year": 2024,
    "amount": 125000.5,
    "currency": "EUR",
    "signed": True,
    "tags": ["lease", "commercial", "england", "ten-year", "break-clause"],
    "parties": [
        {"name": "Acme Ltd", "role": "seller", "share": 0.5},
        {"name": "Widget GmbH", "role": "buyer", "share": 0.5},
        {"name": "Smith & Co", "role": "agent"},
    ],
    "address": {"street": "12 High Street", "city": "London", "country": "UK"},
    "summary": (
        "The tenant leases the premises for ten years with a break clause after five; rent is "
        "reviewed every three years against RPI; the tenant keeps the premises in good repair "
        "and may not make structural alterations without the landlord's written consent. "
    )
    * 2,
    "pages": 14,
}


def invalid_answer() -> dict[str, Any]:
    answer = copy.deepcopy(VALID)
    answer["year"] = "2024"
    answer["parties"][1]["role"] = "tenant"
    del answer["summary"]
    return answer


def _jsonschema() -> Callable[[str], int] | None:
    try:
        import jsonschema  # type: ignore[import-untyped]  # not a dependency: only compared
    except ImportError:
        return None
    validator = jsonschema.Draft202012Validator(SCHEMA)
    return lambda text: sum(1 for _ in validator.iter_errors(json.loads(text)))


def _fastjsonschema() -> Callable[[str], int]:
    validator = Validator(parse_schema(SCHEMA, "bench"))
    return lambda text: len(validator.check(text)[1])


def _first_error_only() -> Callable[[str], int]:
    validate = fastjsonschema.compile(SCHEMA, use_default=False, use_formats=False)

    def check(text: str) -> int:
        try:
            validate(json.loads(text))
        except fastjsonschema.JsonSchemaValueException:
            return 1
        return 0

    return check


def _us(check: Callable[[str], int], text: str) -> float:
    best = min(timeit.repeat(lambda: check(text), number=NUMBER, repeat=REPEATS))
    return round(best / NUMBER * 1e6, 1)


def main() -> dict[str, Any]:
    texts = {"valid": json.dumps(VALID), "invalid": json.dumps(invalid_answer())}
    validators = {
        "jsonschema": _jsonschema(),
        "fastjsonschema": _fastjsonschema(),
        "fastjsonschema_first_error": _first_error_only(),
    }
    figures: dict[str, Any] = {
        "answer_bytes": {k: len(v.encode()) for k, v in texts.items()},
        "chosen": CHOSEN,
        "us_per_answer": {},
        "errors_found": {},
    }
    print("validation cost per answer (µs, json.loads included, best of 5):")
    for name, check in validators.items():
        if check is None:
            print(f"  {name:28} not installed")
            continue
        cost = {kind: _us(check, text) for kind, text in texts.items()}
        figures["us_per_answer"][name] = cost
        figures["errors_found"][name] = check(texts["invalid"])
        mark = "  <- dscall" if name == CHOSEN else ""
        print(
            f"  {name:28} valid {cost['valid']:7.1f}   invalid {cost['invalid']:7.1f}"
            f"   ({figures['errors_found'][name]} errors reported){mark}",
            flush=True,
        )
    return figures


if __name__ == "__main__":
    main()
