"""JSON mode with a schema in the prompt: the answer follows it, and breaks it on purpose at
``schema_violations`` (first answers only, so a re-ask always mends the row)."""

from __future__ import annotations

import http.client
import json
from collections import Counter
from collections.abc import Iterator
from typing import Any

import jsonschema
import pytest
from typer.testing import CliRunner

from dscall.chunking.tokens import estimate_tokens
from dscall.cli import app
from dscall.errors import UsageError
from dscall.schema.prompt import REASK_INTRO, reask_message, with_schema
from dscall.simulator import (
    SimulatorConfig,
    SimulatorThread,
    count_prompt_tokens,
    expected_answer,
    expected_schema_answer,
)
from dscall.simulator.structured import (
    MISSING_REQUIRED,
    PROSE,
    PROSE_AFTER,
    PROSE_BEFORE,
    VIOLATIONS,
    WRONG_TYPE,
    broken,
    compile_schema,
)
from tests.simulator.conftest import KEY, SYSTEM

SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "title": {"type": "string"},
        "pages": {"type": "integer"},
        "score": {"type": "number"},
        "relevant": {"type": "boolean"},
        "sentiment": {"enum": ["positive", "neutral", "negative"]},
        "language": {"type": ["string", "null"]},
        "author": {
            "type": "object",
            "properties": {
                "name": {"type": "string"},
                "born": {"type": ["integer", "null"]},
                "tags": {"type": "array", "items": {"type": "string"}},
            },
            "required": ["name"],
        },
        "people": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "name": {"type": "string"},
                    "role": {"type": "string", "enum": ["author", "subject", "other"]},
                    "age": {"type": "integer"},
                },
                "required": ["name", "role"],
            },
        },
    },
    "required": ["title", "pages", "sentiment", "author", "people"],
}
COMPACT = json.dumps(SCHEMA, sort_keys=True, separators=(",", ":"))
VALIDATOR = jsonschema.Draft202012Validator(SCHEMA)
VOCABULARY = ["river", "stone", "market", "lantern", "orchard", "copper", "violet", "meadow"]


def chunk(index: int) -> str:
    """A distinct chunk per index, of varying length and words."""
    words = [VOCABULARY[(index * 7 + step * 3) % len(VOCABULARY)] for step in range(5 + index % 40)]
    return f"Chunk {index} reads: " + " ".join(words) + "."


def conversation(text: str, compact: str = COMPACT) -> list[dict[str, Any]]:
    return [
        {"role": "system", "content": with_schema(SYSTEM, compact)},
        {"role": "user", "content": f"Extract the fields.\n\n{text}"},
    ]


def reask(first: list[dict[str, Any]], bad: str) -> list[dict[str, Any]]:
    errors = ["'title' is a required property"]
    return [
        *first,
        {"role": "assistant", "content": bad},
        {"role": "user", "content": reask_message(errors)},
    ]


def kind_of(content: str) -> str | None:
    """How a first answer breaks the schema, or None when it follows it."""
    try:
        answer = json.loads(content)
    except ValueError:
        assert content.startswith(PROSE_BEFORE)
        assert content.endswith(PROSE_AFTER)
        return PROSE
    validators = {error.validator for error in VALIDATOR.iter_errors(answer)}
    if not validators:
        return None
    assert len(validators) == 1, validators
    return MISSING_REQUIRED if validators == {"required"} else WRONG_TYPE


class Client:
    """One kept-alive connection to a simulator thread."""

    def __init__(self, base_url: str) -> None:
        host, port = base_url.removeprefix("http://").rsplit(":", 1)
        self.connection = http.client.HTTPConnection(host, int(port), timeout=10)

    def send(self, messages: list[dict[str, Any]], **extra: Any) -> bytes:
        payload = {"model": "deepseek-flash", "messages": messages, **extra}
        payload.setdefault("response_format", {"type": "json_object"})
        self.connection.request(
            "POST",
            "/chat/completions",
            body=json.dumps(payload),
            headers={"Authorization": f"Bearer {KEY}", "Content-Type": "application/json"},
        )
        response = self.connection.getresponse()
        body = response.read()
        assert response.status == 200, body
        return body

    def chat(self, messages: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
        reply: dict[str, Any] = json.loads(self.send(messages, **extra))
        return reply

    def content(self, messages: list[dict[str, Any]], **extra: Any) -> str:
        text: str = self.chat(messages, **extra)["choices"][0]["message"]["content"]
        return text


@pytest.fixture
def sim() -> Iterator[SimulatorThread]:
    with SimulatorThread(SimulatorConfig(seed=7)) as running:
        yield running


@pytest.fixture
def client(sim: SimulatorThread) -> Iterator[Client]:
    client = Client(sim.base_url)
    yield client
    client.connection.close()


# --- the valid answer ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text", ["", "one", "  spaced\tout \n words ", "中文 内容 测试", "x" * 5000]
)
def test_expected_answer_follows_the_schema_for_any_chunk(text: str) -> None:
    answer = expected_schema_answer(conversation(text), COMPACT)
    VALIDATOR.validate(answer)
    assert set(answer) == set(SCHEMA["properties"])  # optional fields are filled too
    assert answer["language"] is not None
    assert answer["author"]["born"] is not None
    assert 1 <= len(answer["people"]) <= 3


def test_expected_answer_is_deterministic_and_differs_between_chunks() -> None:
    def every() -> list[str]:
        return [
            json.dumps(expected_schema_answer(conversation(chunk(i)), COMPACT)) for i in range(60)
        ]

    texts = every()
    assert texts == every()
    assert len(set(texts)) == 60
    parsed = [json.loads(text) for text in texts]
    assert len({answer["title"] for answer in parsed}) > 10
    assert {answer["sentiment"] for answer in parsed} == {"positive", "neutral", "negative"}
    assert {answer["relevant"] for answer in parsed} == {True, False}
    assert {len(answer["people"]) for answer in parsed} == {1, 2, 3}
    for answer in parsed:
        VALIDATOR.validate(answer)
    # Fields of one answer differ from each other, and come from the chunk's words.
    assert sum(answer["title"] != answer["author"]["name"] for answer in parsed) > 40
    assert sum(answer["pages"] != answer["author"]["born"] for answer in parsed) > 40
    assert all(word in chunk(0) for word in parsed[0]["title"].split())


def test_answer_is_about_the_first_user_message_not_the_reask() -> None:
    first = conversation(chunk(3))
    assert expected_schema_answer(reask(first, "{}"), COMPACT) == expected_schema_answer(
        first, COMPACT
    )


def test_parsed_schemas_are_cached_by_their_text() -> None:
    assert compile_schema(COMPACT) is compile_schema(COMPACT)
    assert compile_schema("not json") is None
    assert compile_schema('{"items":' * 5000 + "{}" + "}" * 5000) is None  # too deep: no crash
    with pytest.raises(ValueError, match="not a JSON Schema"):
        expected_schema_answer(conversation("text"), "[1, 2]")


def test_simulator_answers_the_expected_object_billed_as_usual(client: Client) -> None:
    for index in range(5):
        msgs = conversation(chunk(index))
        reply = client.chat(msgs)
        content = reply["choices"][0]["message"]["content"]
        assert json.loads(content) == expected_schema_answer(msgs, COMPACT)
        assert reply["choices"][0]["finish_reason"] == "stop"
        assert reply["usage"]["completion_tokens"] == estimate_tokens(content)
        assert reply["usage"]["prompt_tokens"] == count_prompt_tokens(msgs)
    events = client.send(conversation(chunk(0)), stream=True).split(b"\n\n")
    deltas = [json.loads(e[6:])["choices"][0]["delta"] for e in events if e[6:7] == b"{"]
    streamed = "".join(delta.get("content", "") for delta in deltas)
    assert json.loads(streamed) == expected_schema_answer(conversation(chunk(0)), COMPACT)


def test_schema_needs_json_mode_and_json_mode_without_schema_is_unchanged(
    client: Client,
) -> None:
    msgs = conversation(chunk(1))
    assert client.content(msgs, response_format={"type": "text"}) == expected_answer(msgs)
    plain = [{"role": "system", "content": SYSTEM}, msgs[1]]
    assert client.content(plain) == expected_answer(plain, json_mode=True)


# --- violations ---------------------------------------------------------------------------------


def test_every_first_answer_breaks_and_every_reask_mends(
    sim: SimulatorThread, client: Client
) -> None:
    sim.config.schema_violations = 1.0
    kinds: Counter[str] = Counter()
    completion = 0
    for index in range(40):
        first = conversation(chunk(index))
        reply = client.chat(first)
        bad = reply["choices"][0]["message"]["content"]
        kind = kind_of(bad)
        assert kind is not None, bad
        kinds[kind] += 1
        assert reply["usage"]["completion_tokens"] == estimate_tokens(bad)  # billed all the same
        completion += reply["usage"]["completion_tokens"]
        again = reask(first, bad)
        assert again[-1]["content"].startswith(REASK_INTRO)
        mended = client.content(again)
        assert kind_of(mended) is None
        assert json.loads(mended) == expected_schema_answer(first, COMPACT)
        assert client.content(first) == bad  # the same body breaks the same way
    assert set(kinds) == set(VIOLATIONS), kinds
    stats = sim.stats()
    assert stats["schema_violations"] == {kind: 2 * count for kind, count in kinds.items()}
    assert stats["schema_answers"] == 3 * 40
    assert stats["tokens"]["completion"] > completion


def test_violation_rate_is_about_the_configured_share(sim: SimulatorThread, client: Client) -> None:
    sim.config.schema_violations = 0.3
    total = 300
    contents = [client.content(conversation(chunk(index))) for index in range(total)]
    invalid = sum(kind_of(content) is not None for content in contents)
    assert 0.22 <= invalid / total <= 0.38, invalid
    assert sum(sim.stats()["schema_violations"].values()) == invalid


def test_violations_are_seeded_and_leave_the_other_faults_alone() -> None:
    bodies = [conversation(chunk(index)) for index in range(60)]

    def run(config: SimulatorConfig) -> list[tuple[str, str]]:
        """(finish_reason, content) per body, from a fresh simulator: first attempts only."""
        with SimulatorThread(config) as sim:
            client = Client(sim.base_url)
            try:
                choices = [client.chat(msgs)["choices"][0] for msgs in bodies]
            finally:
                client.connection.close()
        return [(choice["finish_reason"], choice["message"]["content"]) for choice in choices]

    seven = run(SimulatorConfig(seed=7, schema_violations=0.5))
    assert run(SimulatorConfig(seed=7, schema_violations=0.5)) == seven
    assert run(SimulatorConfig(seed=8, schema_violations=0.5)) != seven
    faulty = run(SimulatorConfig(seed=3, insufficient_rate=0.5))
    both = run(SimulatorConfig(seed=3, insufficient_rate=0.5, schema_violations=0.5))
    assert [reason for reason, _ in both] == [reason for reason, _ in faulty]
    assert 10 < [reason for reason, _ in both].count("insufficient_system_resource") < 50
    assert any(kind_of(content) for reason, content in both if reason == "stop")


def test_a_kind_that_does_not_apply_falls_through_to_the_next() -> None:
    free = compile_schema('{"properties":{"anything":{}}}')  # nothing required, no type to break
    assert free is not None
    for pick in (0.0, 0.34, 0.67, 0.99):
        content, kind = broken(free, {"anything": "x"}, pick)
        assert kind == PROSE
        assert content == PROSE_BEFORE + '{"anything":"x"}' + PROSE_AFTER
    typed = compile_schema('{"properties":{"n":{"type":"integer"},"s":{"type":"string"}}}')
    assert typed is not None
    seen = {broken(typed, {"n": 12, "s": "two words"}, pick / 30) for pick in range(30)}
    assert ('{"n":"12","s":"two words"}', WRONG_TYPE) in seen  # an integer as a string
    assert ('{"n":12,"s":9}', WRONG_TYPE) in seen  # a string as a number
    assert {kind for _, kind in seen} == {WRONG_TYPE, PROSE}


def test_config_and_cli_flag() -> None:
    with pytest.raises(UsageError, match="--schema-violations"):
        SimulatorConfig(schema_violations=1.5).validate()
    # Not part of the fault sum: every fault at its rate, and every answer broken on top.
    SimulatorConfig(fail={503: 1.0}, schema_violations=1.0).validate()
    result = CliRunner().invoke(app, ["mock-server", "--help"], env={"COLUMNS": "200"})
    assert "--schema-violations" in result.output
