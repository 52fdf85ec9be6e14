"""The simulator speaks the real protocol: the official openai SDK is the client."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator

import openai
import pytest

from dscall.simulator import Simulator, SimulatorConfig, expected_answer, start_simulator
from dscall.simulator.answers import expected_reasoning
from tests.simulator.conftest import KEY, messages

TEXT = "The quarterly report shows revenue in the region grew by fourteen percent year over year."


def client(sim: Simulator, api_key: str = KEY, base_url: str | None = None) -> openai.AsyncOpenAI:
    """The SDK against the simulator, without retries: every status reaches the test."""
    return openai.AsyncOpenAI(api_key=api_key, base_url=base_url or sim.base_url, max_retries=0)


@pytest.fixture
async def sdk(sim: Simulator) -> AsyncIterator[openai.AsyncOpenAI]:
    async with client(sim) as opened:
        yield opened


async def test_plain_completion(sdk: openai.AsyncOpenAI) -> None:
    msgs = messages(TEXT)
    result = await sdk.chat.completions.create(model="deepseek-flash", messages=msgs)
    choice = result.choices[0]
    assert choice.message.content == expected_answer(msgs)
    assert choice.message.content.startswith(f"Summary ({len(TEXT)} chars): The quarterly")
    assert choice.finish_reason == "stop"
    assert result.model == "deepseek-flash"
    assert result.object == "chat.completion"
    usage = result.usage
    assert usage is not None
    assert usage.prompt_tokens > 0
    assert usage.completion_tokens > 0
    assert usage.total_tokens == usage.prompt_tokens + usage.completion_tokens
    extra = usage.model_extra or {}
    assert extra["prompt_cache_hit_tokens"] + extra["prompt_cache_miss_tokens"] == (
        usage.prompt_tokens
    )


async def test_same_request_same_answer_and_different_chunks_differ(
    sdk: openai.AsyncOpenAI,
) -> None:
    first = await sdk.chat.completions.create(model="deepseek-flash", messages=messages(TEXT))
    again = await sdk.chat.completions.create(model="deepseek-flash", messages=messages(TEXT))
    other = await sdk.chat.completions.create(
        model="deepseek-flash",
        messages=messages("A different chunk entirely."),
    )
    assert first.choices[0].message.content == again.choices[0].message.content
    assert other.choices[0].message.content != first.choices[0].message.content


async def test_streaming_with_usage(sdk: openai.AsyncOpenAI) -> None:
    msgs = messages(TEXT)
    stream = await sdk.chat.completions.create(
        model="deepseek-flash",
        messages=msgs,
        stream=True,
        stream_options={"include_usage": True},
    )
    pieces: list[str] = []
    finish = None
    usage = None
    async for chunk in stream:
        for choice in chunk.choices:
            pieces.append(choice.delta.content or "")
            finish = choice.finish_reason or finish
        usage = chunk.usage or usage
    assert "".join(pieces) == expected_answer(msgs)
    assert len(pieces) > 3  # really streamed, not one event
    assert finish == "stop"
    assert usage is not None
    assert usage.completion_tokens > 0


async def test_streaming_without_usage_sends_none(sdk: openai.AsyncOpenAI) -> None:
    stream = await sdk.chat.completions.create(
        model="deepseek-flash",
        messages=messages(TEXT),
        stream=True,
    )
    usages = [chunk.usage async for chunk in stream]
    assert usages
    assert all(u is None for u in usages)


async def test_json_mode(sdk: openai.AsyncOpenAI) -> None:
    msgs = messages(TEXT)
    result = await sdk.chat.completions.create(
        model="deepseek-flash",
        messages=msgs,
        response_format={"type": "json_object"},
    )
    content = result.choices[0].message.content
    assert content is not None
    parsed = json.loads(content)
    assert parsed["chars"] == len(TEXT)
    assert parsed["summary"] == expected_answer(msgs)
    assert content == expected_answer(msgs, json_mode=True)


async def test_models_list_with_and_without_v1(sim: Simulator) -> None:
    for base in (sim.base_url, sim.base_url + "/v1"):
        async with client(sim, base_url=base) as sdk:
            models = await sdk.models.list()
            ids = [model.id async for model in models]
        assert "deepseek-flash" in ids
        assert "deepseek-v4-pro" in ids


async def test_v1_prefix_completion(sim: Simulator) -> None:
    async with client(sim, base_url=sim.base_url + "/v1") as sdk:
        result = await sdk.chat.completions.create(model="deepseek-flash", messages=messages(TEXT))
    assert result.choices[0].message.content == expected_answer(messages(TEXT))


async def test_401_wrong_key() -> None:
    async with start_simulator(SimulatorConfig(api_key="sk-the-right-one")) as sim:
        async with client(sim, api_key="sk-the-wrong-one") as sdk:
            with pytest.raises(openai.AuthenticationError) as caught:
                await sdk.chat.completions.create(model="deepseek-flash", messages=messages(TEXT))
            with pytest.raises(openai.AuthenticationError):
                await sdk.models.list()
        async with client(sim, api_key="sk-the-right-one") as sdk:
            ok = await sdk.chat.completions.create(model="deepseek-flash", messages=messages(TEXT))
    assert caught.value.status_code == 401
    body = caught.value.body
    assert isinstance(body, dict)
    assert body["type"] == "authentication_error"
    assert "sk-the" not in json.dumps(body)  # the key is never echoed
    assert ok.choices[0].message.content


async def test_402_once_balance_is_billed() -> None:
    async with start_simulator(SimulatorConfig(balance_tokens=50)) as sim, client(sim) as sdk:
        first = await sdk.chat.completions.create(model="deepseek-flash", messages=messages(TEXT))
        assert first.usage is not None
        assert first.usage.total_tokens >= 50
        with pytest.raises(openai.APIStatusError) as caught:
            await sdk.chat.completions.create(model="deepseek-flash", messages=messages(TEXT))
        assert caught.value.status_code == 402
        balance = await sdk.get("/user/balance", cast_to=object)
    assert isinstance(balance, dict)
    assert balance["is_available"] is False
    assert balance["balance_infos"][0]["total_balance"] == "0.00"
    assert sim.stats()["responses_by_status"] == {"200": 1, "402": 1}


async def test_429_with_retry_after_from_max_concurrency() -> None:
    # A stall holds the one allowed slot for as long as the test needs it, however slow the
    # machine: the limit is checked before any fault is drawn, so the second request gets 429.
    config = SimulatorConfig(max_concurrency=1, stall_rate=1.0, retry_after_s=3)
    async with start_simulator(config) as sim, client(sim) as sdk:
        held = asyncio.create_task(
            sdk.chat.completions.create(model="deepseek-flash", messages=messages(TEXT))
        )
        while sim.stats()["in_flight"] < 1:
            await asyncio.sleep(0.01)
        with pytest.raises(openai.RateLimitError) as caught:
            await sdk.chat.completions.create(model="deepseek-flash", messages=messages("x"))
        held.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await held
    assert caught.value.status_code == 429
    assert caught.value.response.headers["retry-after"] == "3"
    body = caught.value.body
    assert isinstance(body, dict)
    assert body["type"] == "rate_limit_error"


async def test_422_invalid_parameter(sdk: openai.AsyncOpenAI) -> None:
    with pytest.raises(openai.UnprocessableEntityError) as caught:
        await sdk.chat.completions.create(
            model="deepseek-flash",
            messages=messages(TEXT),
            max_tokens=-5,
        )
    assert "max_tokens" in str(caught.value)
    with pytest.raises(openai.UnprocessableEntityError):
        await sdk.chat.completions.create(
            model="deepseek-flash",
            messages=messages(TEXT),
            temperature=3.5,
        )


async def test_balance_shape(sdk: openai.AsyncOpenAI) -> None:
    balance = await sdk.get("/user/balance", cast_to=object)
    assert isinstance(balance, dict)
    assert balance["is_available"] is True
    info = balance["balance_infos"][0]
    assert info["currency"] == "USD"
    assert float(info["total_balance"]) > 0


async def test_thinking_adds_reasoning_billed_as_output(sdk: openai.AsyncOpenAI) -> None:
    msgs = messages(TEXT)
    plain = await sdk.chat.completions.create(model="deepseek-flash", messages=msgs)
    thought = await sdk.chat.completions.create(
        model="deepseek-flash",
        messages=msgs,
        extra_body={"thinking": {"type": "enabled"}},
    )
    message = thought.choices[0].message
    assert (message.model_extra or {}).get("reasoning_content") == expected_reasoning(msgs)
    assert "reasoning_content" not in (plain.choices[0].message.model_extra or {})
    assert message.content == plain.choices[0].message.content
    assert thought.usage is not None
    assert plain.usage is not None
    details = thought.usage.completion_tokens_details
    assert details is not None
    assert details.reasoning_tokens
    assert thought.usage.completion_tokens == (
        plain.usage.completion_tokens + details.reasoning_tokens
    )


async def test_streamed_thinking_sends_reasoning_deltas(sdk: openai.AsyncOpenAI) -> None:
    msgs = messages(TEXT)
    stream = await sdk.chat.completions.create(
        model="deepseek-flash",
        messages=msgs,
        stream=True,
        extra_body={"thinking": {"type": "enabled"}},
    )
    reasoning = []
    content = []
    async for chunk in stream:
        for choice in chunk.choices:
            reasoning.append((choice.delta.model_extra or {}).get("reasoning_content") or "")
            content.append(choice.delta.content or "")
    assert "".join(reasoning) == expected_reasoning(msgs)
    assert "".join(content) == expected_answer(msgs)


async def test_finish_reason_length(sdk: openai.AsyncOpenAI) -> None:
    msgs = messages(TEXT)
    result = await sdk.chat.completions.create(
        model="deepseek-flash",
        messages=msgs,
        max_tokens=5,
    )
    choice = result.choices[0]
    assert choice.finish_reason == "length"
    assert choice.message.content
    assert expected_answer(msgs).startswith(choice.message.content)
    assert len(choice.message.content) < len(expected_answer(msgs))
    assert result.usage is not None
    assert 0 < result.usage.completion_tokens <= 5


async def test_prefix_cache_hits_on_repeated_system_prompt(sdk: openai.AsyncOpenAI) -> None:
    system = "Follow these house rules for every summary. " * 40  # about 530 tokens
    first = await sdk.chat.completions.create(
        model="deepseek-flash",
        messages=messages("First chunk of a document.", system=system),
    )
    second = await sdk.chat.completions.create(
        model="deepseek-flash",
        messages=messages("Second, different chunk.", system=system),
    )
    hit_first = (first.usage.model_extra or {})["prompt_cache_hit_tokens"]  # type: ignore[union-attr]
    extra = second.usage.model_extra or {}  # type: ignore[union-attr]
    assert hit_first == 0
    assert extra["prompt_cache_hit_tokens"] >= 6 * 64  # the shared system prompt, in 64s
    assert extra["prompt_cache_hit_tokens"] % 64 == 0
    assert extra["prompt_cache_hit_tokens"] + extra["prompt_cache_miss_tokens"] == (
        second.usage.prompt_tokens  # type: ignore[union-attr]
    )
    details = second.usage.prompt_tokens_details  # type: ignore[union-attr]
    assert details is not None
    assert details.cached_tokens == extra["prompt_cache_hit_tokens"]
