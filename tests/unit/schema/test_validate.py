"""Answers against the schema: one JSON object, validated, errors short and in a fixed order."""

from __future__ import annotations

import json
from typing import Any

import pytest

from dscall.schema.inline import inline_schema
from dscall.schema.spec import parse_schema
from dscall.schema.validate import MAX_ERRORS, Validator
from tests.unit.schema.test_spec import CONTRACT

VALID: dict[str, Any] = {
    "title": "Lease",
    "year": 2024,
    "amount": None,
    "currency": "EUR",
    "parties": [{"name": "Acme", "share": 0.5}],
}


@pytest.fixture(scope="module")
def validator() -> Validator:
    return Validator(parse_schema(CONTRACT, "test"))


def _errors(validator: Validator, answer: object) -> list[str]:
    obj, errors = validator.check(json.dumps(answer))
    assert obj is None
    return errors


def test_a_valid_answer_gives_its_object(validator: Validator) -> None:
    obj, errors = validator.check("\n  " + json.dumps(VALID) + "\n")
    assert (obj, errors) == (VALID, [])


def test_a_string_is_not_an_integer(validator: Validator) -> None:
    assert _errors(validator, {**VALID, "year": "2024"}) == [
        "year: '2024' is not of type 'integer'"
    ]
    assert _errors(validator, {**VALID, "year": True}) == ["year: True is not of type 'integer'"]


def test_an_integer_is_a_number_and_an_integral_float_an_integer(validator: Validator) -> None:
    answer = {**VALID, "year": 2024.0, "amount": 2024}
    assert validator.check(json.dumps(answer)) == (answer, [])
    assert _errors(validator, {**VALID, "year": 2024.5}) == [
        "year: 2024.5 is not of type 'integer'"
    ]


def test_missing_required_properties(validator: Validator) -> None:
    answer = {k: v for k, v in VALID.items() if k not in ("title", "year")}
    assert _errors(validator, answer) == [
        "'title' is a required property",
        "'year' is a required property",
    ]
    assert _errors(validator, {**VALID, "parties": [{"share": 1}]}) == [
        "parties[0]: 'name' is a required property"
    ]


@pytest.mark.parametrize(
    "text",
    [
        'Here is the answer: {"title": "x"}',
        '{"title": "x"} I hope this helps.',
        '```json\n{"title": "x"}\n```',
        '{"title": "x"}{"title": "y"}',
        "",
        '{"title": NaN}',
        '{"title": "x", "amount": 1e400}',
    ],
)
def test_prose_around_the_object_is_an_error(validator: Validator, text: str) -> None:
    obj, errors = validator.check(text)
    assert obj is None
    assert len(errors) == 1
    assert errors[0].startswith("not a JSON object: ")


@pytest.mark.parametrize(
    ("text", "kind"),
    [("[1, 2]", "a list"), ('"x"', "a string"), ("null", "null"), ("3", "a number")],
)
def test_json_that_is_not_an_object(validator: Validator, text: str, kind: str) -> None:
    assert validator.check(text) == (None, [f"not a JSON object: the answer is {kind}"])


def test_enum(validator: Validator) -> None:
    assert _errors(validator, {**VALID, "currency": "GBP"}) == [
        "currency: 'GBP' is not one of ['EUR', 'USD']"
    ]


def test_nullable(validator: Validator) -> None:
    assert validator.check(json.dumps({**VALID, "amount": 3.5}))[1] == []
    assert validator.check(json.dumps({**VALID, "amount": None}))[1] == []
    assert _errors(validator, {**VALID, "title": None}) == ["title: None is not of type 'string'"]
    assert _errors(validator, {**VALID, "amount": "3"}) == [
        "amount: '3' is not of type 'number', 'null'"
    ]


def test_additional_properties_false(validator: Validator) -> None:
    assert _errors(validator, {**VALID, "notes": "x", "more": 1}) == [
        "additional properties are not allowed ('notes', 'more' unexpected)"
    ]
    assert _errors(validator, {**VALID, "parties": [{"name": "A", "role": "x"}]}) == [
        "parties[0]: additional properties are not allowed ('role' unexpected)"
    ]
    # Without additionalProperties: false, extra properties pass (and stay only in `output`).
    lenient = Validator(inline_schema("a int"))
    assert lenient.check('{"a": 1, "b": 2}') == ({"a": 1, "b": 2}, [])


def test_errors_are_capped_short_and_in_a_fixed_order(validator: Validator) -> None:
    answer = {
        "title": 1,
        "year": "y",
        "signed": "no",
        "tags": [1, 2, 3],
        "address": {"city": "x" * 500},
        "parties": "all of them",
    }
    errors = _errors(validator, answer)
    assert len(errors) == MAX_ERRORS
    assert errors == _errors(validator, answer)
    assert errors[0] == "title: 1 is not of type 'string'"
    assert all("\n" not in e and len(e) <= 200 for e in errors)
    long = _errors(validator, {**VALID, "year": "9" * 500})
    assert long[0] == f"year: '{'9' * 58}… is not of type 'integer'"


def test_validation_does_not_change_the_answer(validator: Validator) -> None:
    text = json.dumps({**VALID, "address": {"city": "x"}})
    obj, _ = validator.check(text)
    assert obj == json.loads(text)


def test_the_schema_uri_does_not_change_the_draft() -> None:
    schema = {**CONTRACT, "$schema": "http://json-schema.org/draft-04/schema#"}
    validator = Validator(parse_schema(schema, "test"))
    assert validator.check(json.dumps({**VALID, "year": 2024.0}))[1] == []
