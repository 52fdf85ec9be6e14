"""Prompt templates and the answer source: pure functions, table-tested."""

from __future__ import annotations

import pytest

from dscall.calls.request import PromptTemplate, RequestBuilder, answer_source, normalise_base_url
from dscall.config import MOCK_ANSWER_SOURCE, CallSettings, PromptSettings
from dscall.errors import UsageError
from dscall.types import Chunk

_VALUES = {
    "text": "TEXT",
    "path": "a.pdf",
    "page_start": "1",
    "page_end": "2",
    "chunk_index": "0",
    "chunk_count": "3",
}


@pytest.mark.parametrize(
    ("template", "rendered"),
    [
        ("Summarise: {text}", "Summarise: TEXT"),
        ("Summarise this", "Summarise this\n\nTEXT"),
        ("{path} p{page_start}-{page_end}: {text}", "a.pdf p1-2: TEXT"),
        ('As {"a": 1}: {text}', 'As {"a": 1}: TEXT'),
        ("Keep {{txt}} and {{text}}: {text}", "Keep {txt} and {text}: TEXT"),
        ("{ text } {}", "{ text } {}\n\nTEXT"),
        ("chunk {chunk_index}/{chunk_count}", "chunk 0/3\n\nTEXT"),
    ],
)
def test_templates_render(template: str, rendered: str) -> None:
    assert PromptTemplate.parse(template).render(_VALUES) == rendered


@pytest.mark.parametrize("template", ["Summarise: {txt}", "{text} {steps.summary}", "{Text}"])
def test_an_unknown_placeholder_is_a_usage_error_naming_it(template: str) -> None:
    with pytest.raises(UsageError) as caught:
        PromptTemplate.parse(template, "--prompt-file p.txt")
    message = str(caught.value)
    assert "--prompt-file p.txt" in message
    assert "{text}" in message
    assert "\n" not in message


@pytest.mark.parametrize(
    ("url", "normal"),
    [
        ("https://api.deepseek.com", "https://api.deepseek.com"),
        ("HTTPS://API.DeepSeek.com:443/", "https://api.deepseek.com"),
        ("https://api.deepseek.com/v1/", "https://api.deepseek.com/v1"),
        ("http://127.0.0.1:8080", "http://127.0.0.1:8080"),
        ("http://127.0.0.1:80/", "http://127.0.0.1"),
        ("http://[::1]:9000/x", "http://[::1]:9000/x"),
    ],
)
def test_base_urls_are_normalised(url: str, normal: str) -> None:
    assert normalise_base_url(url) == normal


def test_the_answer_source_is_part_of_the_request_hash() -> None:
    chunk = Chunk(0, 1, "Some text.", 0, 10, None, None, 4)
    prompt = PromptSettings()
    hashes = {
        RequestBuilder(prompt, "default", source).build(chunk, "a.txt").request_hash
        for source in (
            answer_source(CallSettings(), mock=False),
            answer_source(CallSettings(), mock=True),
            answer_source(CallSettings(base_url="http://127.0.0.1:9"), mock=False),
        )
    }
    assert len(hashes) == 3
    assert answer_source(CallSettings(base_url="http://127.0.0.1:9"), mock=True) == (
        MOCK_ANSWER_SOURCE
    )
    same = RequestBuilder(prompt, "default", "https://api.deepseek.com").build(chunk, "a.txt")
    spelt = answer_source(CallSettings(base_url="https://API.deepseek.com/"), mock=False)
    other = RequestBuilder(prompt, "default", spelt).build(chunk, "a.txt")
    assert same.request_hash == other.request_hash
