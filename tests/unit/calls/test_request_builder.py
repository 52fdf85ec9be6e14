"""``RequestBuilder``: the canonical body and its hash (the cache key), what changes the hash and
what does not, placeholders filled, the system prompt first, and the parameters sent."""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

import pytest

from dscall.calls.request import RequestBuilder
from dscall.config import PromptSettings
from dscall.errors import UsageError
from dscall.types import CallRequest, Chunk

SOURCE = "https://api.deepseek.com"
CHUNK = Chunk(1, 4, "Revenue rose by 12%.", 100, 120, 2, 3, 7)
PROMPT = PromptSettings(system="Be brief.", template="Summarise: {text}")


def build(
    prompt: PromptSettings = PROMPT,
    namespace: str = "default",
    source: str = SOURCE,
    chunk: Chunk = CHUNK,
    path: str = "reports/q3.pdf",
) -> CallRequest:
    return RequestBuilder(prompt, namespace, source).build(chunk, path)


def body(request: CallRequest) -> dict[str, Any]:
    parsed = json.loads(request.body)
    assert isinstance(parsed, dict)
    return parsed


def test_the_body_is_canonical_json_and_the_same_every_time() -> None:
    first, second = build(), build()
    assert first == second
    assert first.body == json.dumps(
        body(first), sort_keys=True, separators=(",", ":"), ensure_ascii=False
    ).encode("utf-8")
    assert len(first.request_hash) == 64
    int(first.request_hash, 16)  # hex


def test_non_ascii_text_is_sent_as_utf8() -> None:
    request = build(chunk=replace(CHUNK, text="Umsatz stieg um 12 % – gut."))
    assert "Umsatz stieg um 12 % – gut.".encode() in request.body


@pytest.mark.parametrize(
    "changed",
    [
        {"namespace": "team-b"},
        {"source": "http://127.0.0.1:8080"},
        {"chunk": replace(CHUNK, text="Revenue fell by 12%.")},
        {"prompt": replace(PROMPT, model="deepseek-pro")},
        {"prompt": replace(PROMPT, system="Be thorough.")},
        {"prompt": replace(PROMPT, template="Translate: {text}")},
        {"prompt": replace(PROMPT, max_tokens=2048)},
        {"prompt": replace(PROMPT, temperature=0.3)},
        {"prompt": replace(PROMPT, json_mode=True)},
        {"prompt": replace(PROMPT, thinking=True)},
    ],
)
def test_what_changes_the_answer_changes_the_hash(changed: dict[str, Any]) -> None:
    assert build(**changed).request_hash != build().request_hash


@pytest.mark.parametrize("changed", [{"namespace": "team-b"}, {"source": "http://127.0.0.1:8080"}])
def test_namespace_and_answer_source_change_the_hash_not_the_body(changed: dict[str, Any]) -> None:
    assert build(**changed).body == build().body


@pytest.mark.parametrize(
    "changed",
    [
        {"path": "elsewhere/q3.pdf"},  # the template does not use the path
        {"chunk": replace(CHUNK, index=0, count=9, char_start=0, page_start=None, tokens=99)},
    ],
)
def test_what_the_template_does_not_use_leaves_the_hash(changed: dict[str, Any]) -> None:
    assert build(**changed).request_hash == build().request_hash


def test_a_streamed_request_shares_the_hash_of_a_plain_one() -> None:
    plain, streamed = build(), build(prompt=replace(PROMPT, stream=True))
    assert streamed.stream is True
    assert body(streamed)["stream"] is True
    assert body(streamed)["stream_options"] == {"include_usage": True}
    assert "stream" not in body(plain)
    assert streamed.request_hash == plain.request_hash


def test_the_system_prompt_comes_first_then_the_filled_template() -> None:
    template = "{path} pages {page_start}-{page_end}, chunk {chunk_index} of {chunk_count}: {text}"
    request = build(prompt=replace(PROMPT, template=template))
    assert body(request)["messages"] == [
        {"role": "system", "content": "Be brief."},
        {
            "role": "user",
            "content": "reports/q3.pdf pages 2-3, chunk 1 of 4: Revenue rose by 12%.",
        },
    ]


def test_pages_unknown_are_left_empty_and_the_path_changes_the_hash_when_used() -> None:
    prompt = replace(PROMPT, template="{path} p{page_start}-{page_end}: {text}")
    no_pages = replace(CHUNK, page_start=None, page_end=None)
    request = build(prompt=prompt, chunk=no_pages)
    assert body(request)["messages"][1]["content"] == "reports/q3.pdf p-: Revenue rose by 12%."
    assert build(prompt=prompt, path="other.pdf").request_hash != build(prompt=prompt).request_hash


def test_the_parameters_sent() -> None:
    prompt = replace(PROMPT, max_tokens=256, temperature=0.2, json_mode=True, thinking=True)
    sent = body(build(prompt=prompt))
    assert sent["model"] == "deepseek-flash"
    assert sent["max_tokens"] == 256
    assert sent["temperature"] == 0.2
    assert sent["response_format"] == {"type": "json_object"}
    assert sent["thinking"] == {"type": "enabled"}
    plain = body(build(prompt=replace(PROMPT, max_tokens=None)))
    assert "max_tokens" not in plain
    assert "temperature" not in plain
    assert "response_format" not in plain
    assert plain["thinking"] == {"type": "disabled"}


def test_the_request_carries_what_the_limits_need() -> None:
    request = build(prompt=replace(PROMPT, max_tokens=300))
    assert (request.model, request.max_tokens, request.stream) == ("deepseek-flash", 300, False)
    # The chunk's tokens plus a fixed part for the system prompt, template and framing.
    bigger = build(prompt=replace(PROMPT, max_tokens=300), chunk=replace(CHUNK, tokens=1007))
    assert bigger.estimated_prompt_tokens - request.estimated_prompt_tokens == 1000
    assert request.estimated_prompt_tokens > CHUNK.tokens


@pytest.mark.parametrize(
    ("changed", "option"),
    [({"max_tokens": 0}, "--max-tokens"), ({"temperature": 2.5}, "--temperature")],
)
def test_out_of_range_parameters_are_usage_errors(changed: dict[str, Any], option: str) -> None:
    with pytest.raises(UsageError, match=option):
        RequestBuilder(replace(PROMPT, **changed), "default", SOURCE)
