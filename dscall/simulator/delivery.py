"""Delivering a ``Plan`` over aiohttp: the waits, the keep-alive lines, the paced stream, the
dropped connection, the stall.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from aiohttp import web
from aiohttp.web_request import BaseRequest

from dscall.simulator.config import SimulatorConfig
from dscall.simulator.plan import Plan
from dscall.simulator.protocol import SSE_KEEPALIVE

JSON_HEADERS = {"Content-Type": "application/json"}
SSE_HEADERS = {"Content-Type": "text/event-stream", "Cache-Control": "no-cache"}

# Called when the status line is committed: (status, Retry-After or None).
OnStatus = Callable[[int, "int | None"], None]


async def deliver(
    request: BaseRequest, plan: Plan, config: SimulatorConfig, on_status: OnStatus
) -> tuple[web.StreamResponse, bool]:
    """Carry out ``plan``; returns the response for aiohttp and whether all of it was sent."""
    if plan.stall:
        return await _stall(request, config.stall_max_s), False
    keepalive = config.keepalive_ms / 1000.0 if plan.status == 200 else 0.0
    if not (plan.stream or plan.drop or keepalive):  # the common case: one plain response
        wait = plan.delay + plan.generation
        if wait > 0:
            await asyncio.sleep(wait)
        headers = JSON_HEADERS
        if plan.retry_after is not None:
            headers = {**JSON_HEADERS, "Retry-After": str(plan.retry_after)}
        on_status(plan.status, plan.retry_after)
        return web.Response(status=plan.status, body=plan.chunks[0], headers=headers), True
    return await _send_stream(request, plan, config, keepalive, on_status)


async def _send_stream(
    request: BaseRequest,
    plan: Plan,
    config: SimulatorConfig,
    keepalive: float,
    on_status: OnStatus,
) -> tuple[web.StreamResponse, bool]:
    chunks = plan.chunks
    response = web.StreamResponse(status=200, headers=SSE_HEADERS if plan.stream else JSON_HEADERS)
    if plan.drop and not plan.stream and not keepalive:
        # A declared length the body never reaches: the client sees a truncated payload.
        response.content_length = sum(map(len, chunks))
    try:
        if keepalive:
            await response.prepare(request)
            on_status(200, None)
            await _keepalive(response, plan.stream, keepalive, config.keepalive_interval_ms)
        if plan.delay:
            await asyncio.sleep(plan.delay)
        if not response.prepared:
            await response.prepare(request)
            on_status(200, None)
        if plan.drop:
            await response.write(b"".join(chunks[:-1]))
            if request.transport is not None:
                request.transport.close()  # flushes what was written, then FIN
            return response, False
        if plan.generation and len(chunks) > 1:
            pause = plan.generation / len(chunks)
            for chunk in chunks:
                await asyncio.sleep(pause)
                await response.write(chunk)
        else:
            await response.write(b"".join(chunks))
        await response.write_eof()
    except ConnectionError:  # the client went away mid-answer: nothing left to do
        return response, False
    return response, True


async def _keepalive(
    response: web.StreamResponse, stream: bool, duration: float, interval_ms: float
) -> None:
    """DeepSeek commits to 200 while a request waits in its queue and sends blank lines
    (``: keep-alive`` comments when streaming) so that proxies keep the connection open."""
    loop = asyncio.get_running_loop()
    line = SSE_KEEPALIVE if stream else b"\n"
    interval = interval_ms / 1000.0
    deadline = loop.time() + duration
    while True:
        await response.write(line)
        left = deadline - loop.time()
        if left <= 0:
            return
        await asyncio.sleep(min(interval, left))


async def _stall(request: BaseRequest, cap_s: float) -> web.StreamResponse:
    """Say nothing until the client gives up (its disconnect cancels this handler) or the cap
    passes; then drop the connection without a word."""
    await asyncio.sleep(cap_s)
    if request.transport is not None:
        request.transport.close()
    return web.StreamResponse()
