"""The simulator's pure parts: answers, token counts, prefix cache, fault draws, config."""

from __future__ import annotations

import json
import statistics
from typing import Any

import pytest

from dscall.chunking.tokens import estimate_tokens
from dscall.errors import UsageError
from dscall.simulator import SimulatorConfig, build_answer, count_prompt_tokens, parse_fail
from dscall.simulator.answers import cut_to_tokens, expected_answer, prompt_text
from dscall.simulator.faults import (
    EMPTY,
    INSUFFICIENT,
    MALFORMED,
    RESET,
    STALL,
    RpmWindow,
    choose_fault,
    draws,
    latency_s,
)
from dscall.simulator.prefix_cache import UNIT_CHARS, UNIT_TOKENS, PrefixCache
from dscall.simulator.protocol import ProtocolError, parse_request
from tests.simulator.conftest import messages

LONG = " ".join(f"w{i}" for i in range(40))


@pytest.mark.parametrize(
    ("text", "quoted"),
    [
        ("", ""),
        ("one two three", "one two three"),
        (LONG, "w0 w1 w2 w3 w4 w5 w6 w7 ... w32 w33 w34 w35 w36 w37 w38 w39"),
        ("  spaced\tout \n  words ", "spaced out words"),
    ],
)
def test_expected_answer_quotes_the_chunk_ends(text: str, quoted: str) -> None:
    assert expected_answer(messages(text)) == f"Summary ({len(text)} chars): {quoted}"


def test_answer_is_about_the_chunk_after_the_instruction() -> None:
    chunk = "First words of the chunk.\n\nIts second paragraph ends here."
    answer = expected_answer(messages("Summarise this excerpt.\n\n" + chunk))
    assert answer == (
        f"Summary ({len(chunk)} chars): First words of the chunk. Its second paragraph ends here."
    )


def test_answer_uses_the_last_user_message_and_text_parts() -> None:
    msgs: list[dict[str, Any]] = [
        {"role": "user", "content": "an earlier turn"},
        {"role": "assistant", "content": "ok"},
        {
            "role": "user",
            "content": [{"type": "text", "text": "alpha "}, {"type": "text", "text": "beta"}],
        },
    ]
    assert expected_answer(msgs) == "Summary (10 chars): alpha beta"
    parsed = json.loads(expected_answer(msgs, json_mode=True))
    assert parsed == {"summary": "Summary (10 chars): alpha beta", "chars": 10}


def test_prompt_tokens_are_the_estimate_of_the_prompt_text() -> None:
    msgs = messages("Some chunk text, with 中文 too.")
    assert count_prompt_tokens(msgs) == estimate_tokens(prompt_text(msgs))
    assert count_prompt_tokens(msgs) > estimate_tokens("Some chunk text, with 中文 too.")


@pytest.mark.parametrize("budget", [1, 3, 7, 12])
def test_cut_to_tokens_fits_the_budget(budget: int) -> None:
    text = expected_answer(messages(LONG))
    cut, tokens, was_cut = cut_to_tokens(text, budget)
    assert was_cut
    assert text.startswith(cut)
    assert tokens == estimate_tokens(cut) <= budget
    assert estimate_tokens(text[: len(cut) + 1]) > budget  # the longest prefix that fits


def test_no_cut_without_budget_or_when_it_fits() -> None:
    assert cut_to_tokens("short", None) == ("short", estimate_tokens("short"), False)
    assert cut_to_tokens("short", 100)[2] is False


def test_thinking_counts_against_max_tokens() -> None:
    msgs = messages(LONG)
    full = build_answer(msgs, thinking=True)
    assert full.finish_reason == "stop"
    assert full.completion_tokens == full.reasoning_tokens + estimate_tokens(full.content)
    starved = build_answer(msgs, thinking=True, max_tokens=full.reasoning_tokens - 1)
    assert starved.finish_reason == "length"
    assert starved.content == ""
    assert starved.completion_tokens <= full.reasoning_tokens - 1


def test_prefix_cache_counts_whole_shared_units() -> None:
    cache = PrefixCache(1000)
    shared = "s" * (UNIT_CHARS * 3 + 50)
    first = shared + "first chunk " * 100
    second = shared + "other chunk " * 100
    assert cache.hit_tokens(first, 10_000) == 0
    assert cache.hit_tokens(second, 10_000) == 3 * UNIT_TOKENS
    assert cache.hit_tokens(first, 10_000) == (len(first) // UNIT_CHARS) * UNIT_TOKENS
    assert cache.hit_tokens(first, 100) == 100  # never more than the prompt


def test_prefix_cache_is_order_sensitive_and_bounded() -> None:
    cache = PrefixCache(40)
    a, b = "a" * UNIT_CHARS, "b" * UNIT_CHARS
    cache.hit_tokens(a + b, 10_000)
    assert cache.hit_tokens(b + a, 10_000) == 0
    for index in range(100):
        cache.hit_tokens(f"{index:>{UNIT_CHARS * 3}}", 10_000)
    assert len(cache) <= 40 + 3
    assert PrefixCache(0).hit_tokens(a + a, 10_000) == 0


def test_prefix_cache_handles_non_ascii() -> None:
    cache = PrefixCache(1000)
    text = "中文内容" * UNIT_CHARS
    cache.hit_tokens(text, 10**6)
    assert cache.hit_tokens(text + "more", 10**6) == 4 * UNIT_TOKENS


def test_fault_bands_are_laid_end_to_end() -> None:
    config = SimulatorConfig(
        fail={503: 0.1, 500: 0.1},
        reset_rate=0.1,
        stall_rate=0.1,
        empty_rate=0.1,
        malformed_rate=0.1,
        insufficient_rate=0.1,
    )
    table = [(0.05, 500), (0.15, 503), (0.25, RESET), (0.35, STALL), (0.45, EMPTY)]
    table += [(0.55, MALFORMED), (0.65, INSUFFICIENT), (0.75, None), (0.999, None)]
    for draw, fault in table:
        assert choose_fault(config, draw) == fault, draw
    assert choose_fault(SimulatorConfig(), 0.0) is None


def test_draws_are_uniform_deterministic_and_seeded() -> None:
    digest = bytes(range(32))
    assert draws(1, digest, 1) == draws(1, digest, 1)
    assert draws(1, digest, 1) != draws(2, digest, 1)
    assert draws(1, digest, 1) != draws(1, digest, 2)
    values = [draws(9, digest, attempt)[0] for attempt in range(1, 20_001)]
    assert all(0.0 <= v < 1.0 for v in values)
    assert 0.49 < statistics.mean(values) < 0.51


def test_jitter_is_log_normal_around_the_base() -> None:
    config = SimulatorConfig(latency_ms=1000, jitter=0.3)
    samples = [latency_s(config, draws(0, b"x" * 32, i)[1]) for i in range(1, 20_001)]
    assert 0.97 < statistics.mean(samples) < 1.03  # mean-preserving
    assert min(samples) > 0
    assert statistics.stdev(samples) > 0.2
    assert latency_s(SimulatorConfig(latency_ms=250), 0.9) == 0.25


def test_rpm_window_with_a_synthetic_clock() -> None:
    window = RpmWindow()
    assert window.admit(0.0, None) is None  # no limit: nothing counted
    assert [window.admit(t, 2) for t in (1.0, 2.0)] == [None, None]
    assert window.admit(30.0, 2) == pytest.approx(31.0)  # until t=1 leaves the minute
    assert window.admit(61.5, 2) is None


@pytest.mark.parametrize(
    ("spec", "expected"), [("503=0.05", (503, 0.05)), (" 500 = 1 ", (500, 1.0))]
)
def test_parse_fail(spec: str, expected: tuple[int, float]) -> None:
    assert parse_fail(spec) == expected


@pytest.mark.parametrize("spec", ["503", "503=x", "200=0.1", "503=1.5", "=0.1"])
def test_parse_fail_rejects(spec: str) -> None:
    with pytest.raises(UsageError):
        parse_fail(spec)


@pytest.mark.parametrize(
    "config",
    [
        SimulatorConfig(reset_rate=0.6, stall_rate=0.6),
        SimulatorConfig(fail={503: 0.5}, empty_rate=0.6),
        SimulatorConfig(latency_ms=-1),
        SimulatorConfig(max_concurrency=-1),
        SimulatorConfig(api_key=""),
        SimulatorConfig(keepalive_interval_ms=0),
    ],
)
def test_config_validation(config: SimulatorConfig) -> None:
    with pytest.raises(UsageError):
        config.validate()


@pytest.mark.parametrize(
    ("body", "status"),
    [
        (b"{oops", 400),
        (b"[1, 2]", 400),
        (b"{}", 422),
        (b'{"model": "m", "messages": []}', 422),
        (b'{"model": "m", "messages": [{"role": "robot", "content": "x"}]}', 422),
        (b'{"model": "m", "messages": [{"role": "user", "content": 5}]}', 422),
        (b'{"model": "m", "messages": [{"role": "user", "content": "x"}], "max_tokens": 0}', 422),
        (b'{"model": "m", "messages": [{"role": "user", "content": "x"}], "top_p": 2}', 422),
        (b'{"model": "m", "messages": [{"role": "user", "content": "x"}], "stream": 1}', 422),
        (
            b'{"model": "m", "messages": [{"role": "user", "content": "x"}], '
            b'"response_format": {"type": "xml"}}',
            422,
        ),
    ],
)
def test_request_validation(body: bytes, status: int) -> None:
    with pytest.raises(ProtocolError) as caught:
        parse_request(body)
    assert caught.value.status == status


def test_valid_request_options() -> None:
    chat = parse_request(
        b'{"model": "m", "messages": [{"role": "user", "content": "x"}], "stream": true,'
        b' "stream_options": {"include_usage": true}, "thinking": {"type": "enabled"},'
        b' "response_format": {"type": "json_object"}, "max_tokens": 9, "temperature": 0}'
    )
    assert (chat.stream, chat.include_usage, chat.thinking, chat.json_mode) == (True,) * 4
    assert chat.max_tokens == 9
