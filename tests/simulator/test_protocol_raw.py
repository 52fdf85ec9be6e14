"""Protocol corners the SDK does not reach: raw bodies, unknown paths, pacing, strict models."""

from __future__ import annotations

import json

import aiohttp

from dscall.simulator import Simulator, SimulatorConfig, expected_answer, start_simulator
from tests.simulator.conftest import encoded, messages


async def test_400_for_a_body_that_is_not_json(
    sim: Simulator, session: aiohttp.ClientSession
) -> None:
    for path in ("/chat/completions", "/v1/chat/completions"):
        async with session.post(sim.base_url + path, data=b'{"model": "x", "messa') as reply:
            body = await reply.json()
            assert reply.status == 400
        assert body["error"]["type"] == "invalid_request_error"
        assert "not valid JSON" in body["error"]["message"]


async def test_unknown_path_and_wrong_method(
    sim: Simulator, session: aiohttp.ClientSession
) -> None:
    async with session.get(sim.base_url + "/chat/completions") as reply:
        assert reply.status == 405
    async with session.get(sim.base_url + "/v2/nothing") as reply:
        assert reply.status == 404
        assert (await reply.json())["error"]["message"] == "Not Found"


async def test_missing_bearer_is_401_everywhere(sim: Simulator) -> None:
    async with aiohttp.ClientSession() as anonymous:
        for method, path in (("POST", "/chat/completions"), ("GET", "/models")):
            async with anonymous.request(method, sim.base_url + path, data=encoded("x")) as reply:
                assert reply.status == 401
        async with anonymous.get(sim.base_url + "/stats") as reply:  # a test hook, not the API
            assert reply.status == 200


async def test_strict_models_rejects_an_unknown_model(session: aiohttp.ClientSession) -> None:
    async with start_simulator(SimulatorConfig(strict_models=True)) as sim:
        url = sim.base_url + "/chat/completions"
        body = {"model": "gpt-nothing", "messages": messages("x")}
        async with session.post(url, json=body) as reply:
            assert reply.status == 400
            assert (await reply.json())["error"]["message"] == "Model Not Exist"
        async with session.post(url, data=encoded("x")) as reply:
            assert reply.status == 200


async def test_paced_stream_arrives_whole(session: aiohttp.ClientSession) -> None:
    async with start_simulator(SimulatorConfig(tokens_per_second=2000)) as sim:
        body = encoded("A paced stream of several words to send.", stream=True)
        async with session.post(sim.base_url + "/chat/completions", data=body) as reply:
            lines = [line.strip() async for line in reply.content if line.strip()]
        plain = encoded("A paced stream of several words to send.")
        async with session.post(sim.base_url + "/chat/completions", data=plain) as reply:
            answer = await reply.json()
    content = "".join(
        json.loads(line[6:])["choices"][0]["delta"].get("content") or "" for line in lines[:-1]
    )
    expected = expected_answer(messages("A paced stream of several words to send."))
    assert content == expected
    assert lines[-1] == b"data: [DONE]"
    assert answer["choices"][0]["message"]["content"] == expected
