"""Provider profiles: detection from the host (table-tested), ``--provider`` overriding it, the
two usage readers, the body each profile gets, and the 400 that names an unsupported field."""

from __future__ import annotations

import json
from typing import Any

import pytest

from dscall.calls.backend import status_error
from dscall.calls.http import _StreamAccumulator, parse_completion
from dscall.calls.providers import (
    DEEPSEEK,
    OPENAI,
    Provider,
    by_name,
    detect,
    resolve,
    unsupported_parameter,
)
from dscall.calls.request import RequestBuilder
from dscall.config import CallSettings, PromptSettings
from dscall.errors import EXIT_STOPPED, PermanentCallError, UnsupportedParameter, UsageError
from dscall.types import Chunk, Usage

CHUNK = Chunk(1, 4, "Revenue rose by 12%.", 100, 120, 2, 3, 7)
PROMPT = PromptSettings(system="Be brief.", template="Summarise: {text}")
# The hash of this request before provider profiles existed: deepseek bodies must not change,
# or every cached answer would be asked (and paid for) again.
DEEPSEEK_HASH = "bf7b24605606ea5137c8eade12d6a20e99f0aecd9e5cf71c9ae44e8df143cd3a"


@pytest.mark.parametrize(
    ("base_url", "mock", "expected"),
    [
        ("https://api.deepseek.com", False, DEEPSEEK),
        ("https://API.DeepSeek.com:443/v1/", False, DEEPSEEK),
        ("https://eu.api.deepseek.com", False, DEEPSEEK),
        ("https://deepseek.com", False, DEEPSEEK),
        ("http://127.0.0.1:8089", False, DEEPSEEK),  # dscall mock-server
        ("http://localhost:8089", False, DEEPSEEK),
        ("http://[::1]:8089", False, DEEPSEEK),
        ("https://api.openai.com/v1", False, OPENAI),
        ("https://litellm.internal.example:4000", False, OPENAI),
        ("https://deepseek.com.evil.example", False, OPENAI),
        ("https://notdeepseek.com", False, OPENAI),
        ("http://10.0.0.5:4000", False, OPENAI),
        ("https://api.openai.com/v1", True, DEEPSEEK),  # --mock: the simulator answers
    ],
)
def test_detect(base_url: str, mock: bool, expected: Provider) -> None:
    assert detect(base_url, mock) is expected


def test_provider_overrides_detection() -> None:
    assert resolve(CallSettings(provider="openai"), mock=False) is OPENAI
    assert resolve(CallSettings(base_url="https://x.example", provider="deepseek"), False) is (
        DEEPSEEK
    )
    assert resolve(CallSettings(base_url="https://x.example"), mock=False) is OPENAI
    assert resolve(CallSettings(), mock=False) is DEEPSEEK  # the default base URL
    with pytest.raises(UsageError, match="--provider"):
        by_name("anthropic", "https://x.example", False)


def body(provider: Provider, prompt: PromptSettings = PROMPT) -> dict[str, Any]:
    request = RequestBuilder(prompt, "default", "https://x", provider=provider).build(CHUNK, "p")
    parsed = json.loads(request.body)
    assert isinstance(parsed, dict)
    return parsed


def test_only_deepseek_gets_thinking() -> None:
    assert body(DEEPSEEK)["thinking"] == {"type": "disabled"}
    assert body(DEEPSEEK, PromptSettings(thinking=True))["thinking"] == {"type": "enabled"}
    assert "thinking" not in body(OPENAI)
    assert "thinking" not in body(OPENAI, PromptSettings(thinking=True))
    assert set(body(OPENAI)) == {"model", "messages", "max_tokens"}


def test_a_deepseek_request_hashes_as_before() -> None:
    source = "https://api.deepseek.com"
    default = RequestBuilder(PROMPT, "default", source).build(CHUNK, "reports/q3.pdf")
    explicit = RequestBuilder(PROMPT, "default", source, provider=DEEPSEEK).build(CHUNK, "x")
    assert default.request_hash == explicit.request_hash == DEEPSEEK_HASH
    other = RequestBuilder(PROMPT, "default", source, provider=OPENAI).build(CHUNK, "x")
    assert other.request_hash != DEEPSEEK_HASH  # a different body is a different request


def completion(usage: dict[str, Any]) -> dict[str, Any]:
    return {
        "model": "gpt-4o-mini",
        "choices": [{"message": {"role": "assistant", "content": "hi"}, "finish_reason": "stop"}],
        "usage": usage,
    }


OPENAI_USAGE = {
    "prompt_tokens": 1200,
    "completion_tokens": 40,
    "total_tokens": 1240,
    "prompt_tokens_details": {"cached_tokens": 1024, "audio_tokens": 0},
}


def test_openai_usage_reads_cached_tokens() -> None:
    usage = parse_completion(completion(OPENAI_USAGE), OPENAI).usage
    assert usage == Usage(1200, 40, cache_hit_tokens=1024, cache_miss_tokens=176)
    # A reply without details (many proxies) is all misses.
    plain = parse_completion(completion({"prompt_tokens": 9, "completion_tokens": 2}), OPENAI)
    assert plain.usage == Usage(9, 2, 0, 9)
    # The deepseek reader does not look there.
    assert parse_completion(completion(OPENAI_USAGE), DEEPSEEK).usage == Usage(1200, 40, 0, 1200)


def test_deepseek_usage_reads_its_own_fields() -> None:
    raw = {"prompt_tokens": 100, "completion_tokens": 5, "prompt_cache_hit_tokens": 64}
    assert parse_completion(completion({**raw, "prompt_cache_miss_tokens": 36})).usage == Usage(
        100, 5, 64, 36
    )
    assert DEEPSEEK.read_usage(raw) == Usage(100, 5, 64, 36)


def test_streamed_usage_follows_the_provider() -> None:
    stream = _StreamAccumulator(OPENAI)
    event = {"choices": [{"delta": {"content": "hi"}, "finish_reason": "stop"}]}
    stream.feed(b"data: " + json.dumps({**event, "usage": OPENAI_USAGE}).encode())
    stream.feed(b"data: [DONE]")
    assert stream.result().usage.cache_hit_tokens == 1024


@pytest.mark.parametrize(
    ("message", "parameter"),
    [
        (
            "litellm.UnsupportedParamsError: openai does not support parameters: ['thinking'], "
            "for model=gpt-4o. To drop these, set `litellm.drop_params=True`",
            "thinking",
        ),
        ("does not support parameters: ['response_format', 'thinking']", "response_format"),
        ("Unrecognized request argument supplied: thinking", "thinking"),
        ("Unrecognized request arguments supplied: thinking, foo", "thinking"),
        ("Unknown parameter: 'thinking'.", "thinking"),
        ("Unsupported parameter: 'max_tokens' is not supported with this model.", "max_tokens"),
        ("Model Not Exist", None),
        ("Invalid Format: request body is not valid JSON", None),
    ],
)
def test_unsupported_parameter(message: str, parameter: str | None) -> None:
    assert unsupported_parameter(message) == parameter


@pytest.mark.parametrize(
    ("message", "hint"),
    [
        ("openai does not support parameters: ['thinking']", "--provider openai"),
        ("Unrecognized request argument supplied: response_format", "drop --json/--schema"),
        ("Unsupported parameter: 'max_tokens' is not supported", "'max_tokens'"),
    ],
)
def test_a_400_naming_a_field_stops_the_run_saying_how_to_turn_it_off(
    message: str, hint: str
) -> None:
    error = status_error(400, message)
    assert isinstance(error, UnsupportedParameter)
    assert error.exit_code == EXIT_STOPPED
    assert error.status == 400
    assert hint in error.message
    assert "\n" not in error.message


def test_other_400s_stay_row_errors() -> None:
    assert type(status_error(400, "Model Not Exist")) is PermanentCallError
    # Only a 400: a 422 that happens to use the words is about a value, not a field.
    assert type(status_error(422, "Unknown parameter: 'x'")) is PermanentCallError
