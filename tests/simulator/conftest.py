"""Fixtures for the simulator's tests: a running simulator and a raw aiohttp session."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from dscall.simulator import Simulator, SimulatorConfig, start_simulator

KEY = "sk-sim-test-0123456789"
AUTH = {"Authorization": f"Bearer {KEY}"}
SYSTEM = "You are a careful assistant that summarises documents faithfully."


def messages(text: str, system: str = SYSTEM) -> list[Any]:
    return [{"role": "system", "content": system}, {"role": "user", "content": text}]


def chat_body(text: str, **extra: Any) -> dict[str, Any]:
    return {"model": "deepseek-flash", "messages": messages(text), **extra}


def encoded(text: str, **extra: Any) -> bytes:
    return json.dumps(chat_body(text, **extra)).encode()


@pytest.fixture
async def sim() -> AsyncIterator[Simulator]:
    async with start_simulator(SimulatorConfig()) as running:
        yield running


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    connector = aiohttp.TCPConnector(limit=200)
    async with aiohttp.ClientSession(connector=connector, headers=AUTH) as client:
        yield client
