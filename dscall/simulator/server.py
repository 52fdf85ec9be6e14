"""The HTTP server: aiohttp's low-level server (no router, no middleware: one dispatch by path)
and the life of one chat request: count it, plan it (``plan.py``), deliver it
(``delivery.py``), bill it.

    async with start_simulator(SimulatorConfig(latency_ms=50)) as sim:
        ... POST sim.base_url + "/chat/completions" ...
        assert sim.stats()["requests_received"] == 1
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import socket
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from aiohttp import web
from aiohttp.web_request import BaseRequest

from dscall.simulator.config import DEFAULT_HOST, SimulatorConfig
from dscall.simulator.delivery import JSON_HEADERS, deliver
from dscall.simulator.plan import Planner
from dscall.simulator.protocol import balance_body, dumps, error_body, models_body
from dscall.simulator.stats import Stats

# DeepSeek accepts long contexts; aiohttp's default 1 MiB body cap would reject them.
MAX_BODY_BYTES = 64 * 1024 * 1024
LISTEN_BACKLOG = 4096
# Handlers still running at close get this long before aiohttp cancels them (ours are
# cancelled first, so this only bounds a handler stuck in a write).
SHUTDOWN_TIMEOUT_S = 1.0


class Simulator:
    """One simulated DeepSeek endpoint. ``config`` may be changed while it runs."""

    def __init__(self, config: SimulatorConfig | None = None) -> None:
        self.config = (config if config is not None else SimulatorConfig()).validate()
        self.base_url = ""
        self._stats = Stats(time.monotonic(), self.config.max_tracked_bodies, 0.0)
        self._planner = Planner(self._stats, self.config.prefix_cache_entries)
        self._admitted = 0
        self._handlers: set[asyncio.Task[Any]] = set()
        # The first ``config.keep_requests`` request bodies, parsed, in arrival order (tests).
        self.requests: list[Any] = []
        self._runner: web.ServerRunner | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    # --- life cycle --------------------------------------------------------------------------
    async def start(self, host: str = DEFAULT_HOST, port: int = 0) -> None:
        loop = self._loop = asyncio.get_running_loop()
        self._stats.reset(loop.time())

        server = web.Server(
            self._dispatch,
            handler_cancellation=True,  # a client that gives up frees its handler at once
            access_log=None,
        )
        runner = web.ServerRunner(server, handle_signals=False, shutdown_timeout=SHUTDOWN_TIMEOUT_S)
        await runner.setup()
        try:
            sock = _listen(host, port)
            site = web.SockSite(runner, sock, backlog=LISTEN_BACKLOG)
            await site.start()
        except BaseException:
            await runner.cleanup()
            raise
        self._runner = runner
        bound = sock.getsockname()[1]
        self.base_url = f"http://{f'[{host}]' if ':' in host else host}:{bound}"

    async def close(self) -> None:
        """Stop listening, drop requests still held (stalls, latency), close connections."""
        for task in list(self._handlers):
            task.cancel()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    def stats(self, bodies: bool = False) -> dict[str, Any]:
        """The counters, as GET /stats returns them (``bodies``: with per-body logs)."""
        now = self._loop.time() if self._loop is not None else time.monotonic()
        return self._stats.snapshot(now, self.config.balance_tokens, bodies)

    def reset_stats(self) -> None:
        """Zero the counters and the billed-token balance (not the prefix cache)."""
        self._stats.reset(self._loop.time() if self._loop is not None else time.monotonic())

    # --- dispatch ----------------------------------------------------------------------------
    async def _dispatch(self, request: BaseRequest) -> web.StreamResponse:
        path = request.path
        if path.startswith("/v1/"):
            path = path[3:]
        method = request.method
        if path == "/chat/completions":
            if method == "POST":
                return await self._chat(request)
            return _error(405)
        self._stats.other_requests += 1
        if path == "/stats" and method == "GET":
            bodies = request.query.get("bodies", "") not in ("", "0", "false")
            return _json(dumps(self.stats(bodies)))
        if path == "/stats/reset" and method == "POST":
            self.reset_stats()
            return _json(dumps(self.stats()))
        if path in ("/models", "/user/balance") and method == "GET":
            if not self._authorized(request):
                return _error(401)
            if path == "/models":
                return _json(models_body(self.config.models))
            return _json(balance_body(self._remaining()))
        return _error(404)

    def _authorized(self, request: BaseRequest) -> bool:
        header = request.headers.get("Authorization", "")
        scheme, _, key = header.partition(" ")
        if scheme.lower() != "bearer" or not key.strip():
            return False
        expected = self.config.api_key
        return expected is None or key.strip() == expected

    def _remaining(self) -> int | None:
        balance = self.config.balance_tokens
        return None if balance is None else max(balance - self._stats.tokens_billed, 0)

    # --- one chat request --------------------------------------------------------------------
    async def _chat(self, request: BaseRequest) -> web.StreamResponse:
        length = request.content_length
        if length is not None and length > MAX_BODY_BYTES:
            return _error(413)
        # Read from the stream rather than request.read(), which would keep a copy of the body
        # on the request for as long as the request is held.
        body = await request.content.read()
        if len(body) > MAX_BODY_BYTES:
            return _error(413)
        assert self._loop is not None
        stats = self._stats
        config = self.config
        stats.tolerance_s = config.retry_after_tolerance_s
        digest = hashlib.sha256(body).digest()
        if len(self.requests) < config.keep_requests:
            with contextlib.suppress(ValueError):
                self.requests.append(json.loads(body))
        now = self._loop.time()
        record, attempt = stats.arrive(digest, now)
        status_sent = False

        def on_status(status: int, retry_after: int | None) -> None:
            nonlocal status_sent
            status_sent = True
            assert self._loop is not None
            stats.respond(record, attempt, status, self._loop.time(), retry_after)

        task = asyncio.current_task()
        if task is not None:
            self._handlers.add(task)
        try:
            plan = self._planner.plan(
                config, self._authorized(request), body, digest, attempt, self._admitted, now
            )
            del body  # held requests keep only their answer (see plan.py)
            if not plan.admitted:
                response, _ = await deliver(request, plan, config, on_status)
                return response
            self._admitted += 1
            try:
                response, complete = await deliver(request, plan, config, on_status)
            finally:
                self._admitted -= 1
            if complete and plan.billing is not None:
                stats.bill(record, *plan.billing)
            return response
        finally:
            stats.done(status_sent)
            if task is not None:
                self._handlers.discard(task)


def _json(body: bytes, status: int = 200) -> web.Response:
    return web.Response(status=status, body=body, headers=JSON_HEADERS)


def _error(status: int) -> web.Response:
    return _json(error_body(status), status)


def _listen(host: str, port: int) -> socket.socket:
    """A bound listening socket, so the real port is known when ``port`` is 0."""
    family, kind, proto, _, address = socket.getaddrinfo(
        host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
    )[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.setblocking(False)
    except OSError:
        sock.close()
        raise
    return sock


@asynccontextmanager
async def start_simulator(
    config: SimulatorConfig | None = None, host: str = DEFAULT_HOST, port: int = 0
) -> AsyncIterator[Simulator]:
    """Run a simulator on ``host:port`` (0 = a free port) for the duration of the block."""
    sim = Simulator(config)
    await sim.start(host, port)
    try:
        yield sim
    finally:
        await sim.close()
