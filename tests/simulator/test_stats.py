"""GET /stats and POST /stats/reset: the counters a client test relies on."""

from __future__ import annotations

import asyncio
import hashlib

import aiohttp

from dscall.simulator import SimulatorConfig, start_simulator
from dscall.simulator.stats import Stats
from tests.simulator.conftest import AUTH, encoded


async def test_stats_counts_and_reset_over_http() -> None:
    async with (
        start_simulator(SimulatorConfig()) as sim,
        aiohttp.ClientSession(headers=AUTH) as session,
    ):
        url = sim.base_url + "/chat/completions"
        body = encoded("Count me.")
        for _ in range(2):
            async with session.post(url, data=body) as reply:
                assert reply.status == 200
        async with session.post(url, data=b"{not json") as reply:
            assert reply.status == 400
        async with session.post(url, data=body, headers={"Authorization": "Bearer "}) as reply:
            assert reply.status == 401
        async with session.get(sim.base_url + "/stats") as reply:
            stats = await reply.json()
        async with session.get(sim.base_url + "/stats?bodies=1") as reply:
            detailed = await reply.json()
        async with session.post(sim.base_url + "/stats/reset") as reply:
            assert reply.status == 200
        async with session.get(sim.base_url + "/stats") as reply:
            after = await reply.json()
    assert stats["requests_received"] == 4
    assert stats["responses_by_status"] == {"200": 2, "400": 1, "401": 1}
    assert stats["tokens"]["prompt"] > 0
    assert stats["tokens_billed"] == stats["tokens"]["prompt"] + stats["tokens"]["completion"]
    assert stats["attempts_histogram"] == {"1": 1, "3": 1}  # the bad body once, ours 3 times
    assert stats["max_attempts_per_body"] == 3
    assert stats["bodies_paid_more_than_once"] == 1  # the same chunk billed twice: visible
    assert stats["max_in_flight"] == 1
    assert "bodies" not in stats
    record = detailed["bodies"][hashlib.sha256(body).hexdigest()]
    assert record["attempts"] == 3
    assert record["paid"] == 2
    assert record["statuses"] == [200, 200, 401]
    assert len(record["gaps_s"]) == 2
    assert after["requests_received"] == 0
    assert after["responses_by_status"] == {}
    assert after["tokens_billed"] == 0
    assert after["attempts_histogram"] == {}


async def test_retry_after_violations_are_counted() -> None:
    config = SimulatorConfig(fail={429: 1.0}, retry_after_s=1)
    async with (
        start_simulator(config) as sim,
        aiohttp.ClientSession(headers=AUTH) as session,
    ):
        url = sim.base_url + "/chat/completions"
        hasty, patient = encoded("Hasty client."), encoded("Patient client.")
        for body in (hasty, patient):
            async with session.post(url, data=body) as reply:
                assert reply.status == 429
                assert reply.headers["Retry-After"] == "1"
        sim.config.fail = {}
        async with session.post(url, data=hasty) as reply:  # at once: too soon
            assert reply.status == 200
        await asyncio.sleep(1.1)
        async with session.post(url, data=patient) as reply:  # after the Retry-After
            assert reply.status == 200
        stats = sim.stats(bodies=True)
    assert stats["retries_after_retry_after"] == 2
    assert stats["retry_after_violations"] == 1
    assert stats["min_retry_after_margin_s"] < -0.5
    record = stats["bodies"][hashlib.sha256(patient).hexdigest()]
    assert record["statuses"] == [429, 200]
    assert record["retry_after_s"] == [1, None]
    assert record["gaps_s"][0] >= 1.0


def test_histogram_and_violations_with_a_synthetic_clock() -> None:
    stats = Stats(clock_origin=100.0, max_tracked_bodies=10, tolerance_s=0.05)
    body = b"a" * 32
    record, attempt = stats.arrive(body, 100.0)
    stats.respond(record, attempt, 503, 100.1, retry_after=2)
    stats.done(got_status=True)
    record, attempt = stats.arrive(body, 102.06)  # 0.04 s early: within the tolerance
    stats.respond(record, attempt, 429, 102.1, retry_after=1)
    stats.done(got_status=True)
    record, attempt = stats.arrive(body, 102.5)  # 0.6 s early: a violation
    stats.done(got_status=False)
    snap = stats.snapshot(103.0, balance_tokens=None)
    assert attempt == 3
    assert snap["retry_after_violations"] == 1
    assert snap["retries_after_retry_after"] == 2
    assert snap["min_retry_after_margin_s"] == -0.6
    assert snap["attempts_histogram"] == {"3": 1}
    assert snap["no_response"] == 1
    assert snap["in_flight"] == 0


def test_tracking_cap_counts_untracked_bodies() -> None:
    stats = Stats(clock_origin=0.0, max_tracked_bodies=2, tolerance_s=0.05)
    for index in range(5):
        record, _ = stats.arrive(bytes([index]) * 32, 1.0)
        stats.respond(record, 1, 200, 1.0)
        stats.done(got_status=True)
    snap = stats.snapshot(2.0, balance_tokens=None, bodies=True)
    assert snap["distinct_bodies"] == 5
    assert snap["untracked_bodies"] == 3
    assert len(snap["bodies"]) == 2
    assert snap["responses_by_status"] == {"200": 5}
