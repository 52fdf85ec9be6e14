"""Each fault flag does what it says, at about the rate it says (raw aiohttp as the client)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

import aiohttp
import pytest

from dscall.simulator import SimulatorConfig, expected_answer, start_simulator
from tests.simulator.conftest import AUTH, encoded, messages

RATE_REQUESTS = 1000


async def outcome(
    session: aiohttp.ClientSession, url: str, body: bytes, timeout: float = 10.0
) -> str:
    """What one request got, as the name of a fault (or "ok")."""
    try:
        async with session.post(
            url, data=body, timeout=aiohttp.ClientTimeout(total=timeout)
        ) as response:
            raw = await response.read()
            if response.status != 200:
                return f"status_{response.status}"
    except aiohttp.ClientPayloadError:
        return "reset"
    except asyncio.TimeoutError:
        return "stall"
    if not raw.strip():
        return "empty"
    try:
        payload = json.loads(raw)
    except ValueError:
        return "malformed"
    if payload["choices"][0]["finish_reason"] == "insufficient_system_resource":
        return "insufficient"
    return "ok"


async def outcomes(
    url: str, bodies: list[bytes], concurrency: int = 64, timeout: float = 10.0
) -> list[str]:
    gate = asyncio.Semaphore(concurrency)
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector, headers=AUTH) as session:

        async def one(body: bytes) -> str:
            async with gate:
                return await outcome(session, url, body, timeout)

        return list(await asyncio.gather(*(one(body) for body in bodies)))


def distinct_bodies(count: int, **extra: object) -> list[bytes]:
    return [
        encoded(f"Chunk number {index} of the test document.", **extra) for index in range(count)
    ]


async def test_every_fault_at_its_rate_and_counted() -> None:
    config = SimulatorConfig(
        fail={503: 0.2},
        reset_rate=0.2,
        empty_rate=0.2,
        malformed_rate=0.2,
        insufficient_rate=0.1,
        seed=11,
    )
    async with start_simulator(config) as sim:
        got = await outcomes(sim.base_url + "/chat/completions", distinct_bodies(RATE_REQUESTS))
        stats = sim.stats()
    share = {kind: got.count(kind) / RATE_REQUESTS for kind in set(got)}
    for kind in ("status_503", "reset", "empty", "malformed"):
        assert 0.14 <= share[kind] <= 0.26, (kind, share)
    assert 0.06 <= share["insufficient"] <= 0.14, share
    assert 0.06 <= share["ok"] <= 0.14, share
    # The server's own counters agree with what the client saw, one for one.
    faults = stats["faults"]
    for kind in ("status_503", "reset", "empty", "malformed", "insufficient"):
        assert faults[kind] == got.count(kind), kind
    assert stats["requests_received"] == RATE_REQUESTS
    # Only complete, usable answers are billed.
    assert stats["attempts_histogram"] == {"1": RATE_REQUESTS}
    assert stats["tokens"]["completion"] > 0


async def test_stall_rate_holds_until_the_client_gives_up() -> None:
    async with start_simulator(SimulatorConfig(stall_rate=0.2, seed=5)) as sim:
        bodies = distinct_bodies(RATE_REQUESTS)
        # A client timeout well above any real answer's time, so that only stalls reach it.
        got = await outcomes(sim.base_url + "/chat/completions", bodies, 250, timeout=2.0)
        for _ in range(200):  # the server notices each disconnect and frees the handler
            if sim.stats()["in_flight"] == 0:
                break
            await asyncio.sleep(0.02)
        stats = sim.stats()
    stalled = got.count("stall")
    assert 0.14 <= stalled / RATE_REQUESTS <= 0.26
    assert got.count("ok") == RATE_REQUESTS - stalled
    assert stats["faults"]["stall"] == stalled
    assert stats["no_response"] == stalled
    assert stats["in_flight"] == 0


async def test_same_seed_same_faults_other_seed_other_faults() -> None:
    bodies = distinct_bodies(200)

    async def run(seed: int) -> list[str]:
        config = SimulatorConfig(fail={500: 0.3}, empty_rate=0.2, seed=seed)
        async with start_simulator(config) as sim:
            # One at a time and then again: the n-th attempt of a body gets the same fault.
            url = sim.base_url + "/chat/completions"
            return await outcomes(url, bodies, 1) + await outcomes(url, bodies, 8)

    first, again, other = await run(3), await run(3), await run(4)
    assert first == again
    assert first != other
    assert first[:200] != first[200:]  # a retry of a body draws afresh


async def test_keepalive_blank_lines_come_before_the_body(sim_keepalive_url: str) -> None:
    async with (
        aiohttp.ClientSession(headers=AUTH) as session,
        session.post(sim_keepalive_url, data=encoded("Keep me alive.")) as response,
    ):
        assert response.status == 200
        first = await response.content.readline()
        rest = await response.read()
    assert first == b"\n"  # sent before the answer was ready
    body = first + rest
    blank = len(body) - len(body.lstrip(b"\n"))
    assert blank >= 2  # 200 ms of keep-alive at one line per 50 ms: at the start and the end
    payload = json.loads(body)  # leading whitespace is valid JSON, as DeepSeek relies on
    assert payload["choices"][0]["message"]["content"] == expected_answer(
        messages("Keep me alive.")
    )


@pytest.fixture
async def sim_keepalive_url() -> AsyncIterator[str]:
    config = SimulatorConfig(keepalive_ms=200, keepalive_interval_ms=50, latency_ms=50)
    async with start_simulator(config) as sim:
        yield sim.base_url + "/chat/completions"


async def test_streaming_keepalive_comments_before_data(sim_keepalive_url: str) -> None:
    body = encoded("Stream me.", stream=True)
    async with (
        aiohttp.ClientSession(headers=AUTH) as session,
        session.post(sim_keepalive_url, data=body) as response,
    ):
        assert response.headers["Content-Type"].startswith("text/event-stream")
        lines = [line async for line in response.content]
    events = [line for line in lines if line.strip()]
    assert events[0] == b": keep-alive\n"
    first_data = next(i for i, line in enumerate(events) if line.startswith(b"data:"))
    assert first_data >= 2
    assert all(line == b": keep-alive\n" for line in events[:first_data])
    assert events[-1] == b"data: [DONE]\n"


async def _read_lines(
    session: aiohttp.ClientSession, url: str, body: bytes, into: list[bytes]
) -> None:
    async with session.post(url, data=body) as response:
        into.append(str(response.status).encode())  # the status line and headers did arrive
        async for line in response.content:
            into.append(line)


async def test_reset_breaks_the_read_plain_and_streaming() -> None:
    plain: list[bytes] = []
    received: list[bytes] = []
    async with (
        start_simulator(SimulatorConfig(reset_rate=1.0)) as sim,
        aiohttp.ClientSession(headers=AUTH) as session,
    ):
        url = sim.base_url + "/chat/completions"
        with pytest.raises(aiohttp.ClientPayloadError):
            await _read_lines(session, url, encoded("Reset me."), plain)
        with pytest.raises(aiohttp.ClientPayloadError):
            await _read_lines(session, url, encoded("Reset me.", stream=True), received)
        stats = sim.stats()
    assert plain[0] == b"200"
    assert received[0] == b"200"
    assert any(line.startswith(b"data: {") for line in received)  # part of the stream came
    assert b"data: [DONE]\n" not in received
    assert stats["faults"]["reset"] == 2
    assert stats["tokens_billed"] == 0


async def test_empty_malformed_insufficient_bodies() -> None:
    async with aiohttp.ClientSession(headers=AUTH) as session:
        for flag, check in (
            ("empty_rate", lambda raw: raw.strip() == b"" and len(raw) > 0),
            ("malformed_rate", lambda raw: raw.startswith(b'{"id"') and not _parses(raw)),
            ("insufficient_rate", _insufficient),
        ):
            config = SimulatorConfig()
            setattr(config, flag, 1.0)
            async with start_simulator(config) as sim:
                url = sim.base_url + "/chat/completions"
                async with session.post(url, data=encoded("Fault me.")) as response:
                    assert response.status == 200
                    raw = await response.read()
            assert check(raw), (flag, raw)


def _parses(raw: bytes) -> bool:
    try:
        json.loads(raw)
    except ValueError:
        return False
    return True


def _insufficient(raw: bytes) -> bool:
    return bool(json.loads(raw)["choices"][0]["finish_reason"] == "insufficient_system_resource")


async def test_streamed_malformed_and_insufficient() -> None:
    async with aiohttp.ClientSession(headers=AUTH) as session:
        async with start_simulator(SimulatorConfig(malformed_rate=1.0)) as sim:
            url = sim.base_url + "/chat/completions"
            async with session.post(url, data=encoded("x", stream=True)) as response:
                data = [line[6:] for line in await _lines(response) if line.startswith(b"data: ")]
        assert not _parses(data[-1])
        async with start_simulator(SimulatorConfig(insufficient_rate=1.0)) as sim:
            url = sim.base_url + "/chat/completions"
            async with session.post(url, data=encoded("x", stream=True)) as response:
                lines = await _lines(response)
        assert b"insufficient_system_resource" in b"".join(lines)
        assert lines[-1] == b"data: [DONE]"


async def _lines(response: aiohttp.ClientResponse) -> list[bytes]:
    return [line.strip() async for line in response.content if line.strip()]


async def test_injected_503_can_carry_retry_after() -> None:
    config = SimulatorConfig(fail={503: 1.0}, fail_retry_after_s=7)
    async with start_simulator(config) as sim, aiohttp.ClientSession(headers=AUTH) as session:
        async with session.post(sim.base_url + "/chat/completions", data=encoded("x")) as reply:
            body = await reply.json()
            assert reply.status == 503
            assert reply.headers["Retry-After"] == "7"
        sim.config.fail_retry_after_s = None
        async with session.post(sim.base_url + "/chat/completions", data=encoded("y")) as reply:
            assert reply.status == 503
            assert "Retry-After" not in reply.headers
    assert body["error"]["type"] == "service_unavailable_error"


async def test_max_concurrency_answers_429_with_retry_after() -> None:
    # Long enough that the rejected requests surely arrive while the first two are held.
    config = SimulatorConfig(max_concurrency=2, latency_ms=1500)
    async with start_simulator(config) as sim, aiohttp.ClientSession(headers=AUTH) as session:
        url = sim.base_url + "/chat/completions"

        async def send(index: int) -> tuple[int, str | None]:
            async with session.post(url, data=encoded(f"chunk {index}")) as reply:
                await reply.read()
                return reply.status, reply.headers.get("Retry-After")

        slow = [asyncio.create_task(send(i)) for i in range(2)]
        while sim.stats()["in_flight"] < 2:
            await asyncio.sleep(0.01)
        rejected = await asyncio.gather(*(send(i) for i in range(2, 5)))
        admitted = await asyncio.gather(*slow)
        stats = sim.stats()
    assert admitted == [(200, None), (200, None)]
    assert rejected == [(429, "1")] * 3
    assert stats["faults"]["concurrency_429"] == 3
    assert stats["max_in_flight"] >= 3


async def test_rpm_limit() -> None:
    async with start_simulator(SimulatorConfig(rpm=3)) as sim:
        async with aiohttp.ClientSession(headers=AUTH) as session:
            statuses = []
            for index in range(5):
                url = sim.base_url + "/chat/completions"
                async with session.post(url, data=encoded(f"chunk {index}")) as reply:
                    statuses.append((reply.status, reply.headers.get("Retry-After")))
        stats = sim.stats()
    assert [status for status, _ in statuses] == [200, 200, 200, 429, 429]
    waits = [int(ra) for _, ra in statuses[3:] if ra is not None]
    assert len(waits) == 2
    assert all(55 <= wait <= 60 for wait in waits)  # until the first admission leaves the minute
    assert stats["faults"]["rpm_429"] == 2


async def test_latency_holds_the_request_in_flight() -> None:
    async with (
        start_simulator(SimulatorConfig(latency_ms=300)) as sim,
        aiohttp.ClientSession(headers=AUTH) as session,
    ):
        task = asyncio.create_task(
            session.post(sim.base_url + "/chat/completions", data=encoded("wait"))
        )
        seen_in_flight = 0
        while not task.done():
            seen_in_flight = max(seen_in_flight, sim.stats()["in_flight"])
            await asyncio.sleep(0.01)
        reply = await task
        assert reply.status == 200
        reply.release()
    assert seen_in_flight == 1
