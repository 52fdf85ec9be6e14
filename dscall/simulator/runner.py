"""A simulator on its own event loop in a daemon thread, for synchronous callers (tests that
drive the CLI through a subprocess or Typer's CliRunner).

    with SimulatorThread(SimulatorConfig(latency_ms=10)) as sim:
        subprocess.run(["dscall", "process", ..., "--base-url", sim.base_url])
        assert sim.stats()["retry_after_violations"] == 0
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from types import TracebackType
from typing import Any

from dscall.simulator.config import DEFAULT_HOST, SimulatorConfig
from dscall.simulator.server import Simulator

START_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 30.0


class SimulatorThread:
    """Starts on ``__enter__`` (or ``start()``), stops on ``__exit__`` (or ``stop()``).

    ``config`` is the live config of the running simulator: assigning its fields from this
    thread takes effect on the next request (each field is read once per request)."""

    def __init__(
        self, config: SimulatorConfig | None = None, host: str = DEFAULT_HOST, port: int = 0
    ) -> None:
        self._sim = Simulator(config)
        self._host = host
        self._port = port
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._thread: threading.Thread | None = None

    @property
    def config(self) -> SimulatorConfig:
        return self._sim.config

    @property
    def base_url(self) -> str:
        return self._sim.base_url

    def start(self) -> SimulatorThread:
        if self._thread is not None:
            raise RuntimeError("SimulatorThread already started")
        self._thread = threading.Thread(target=self._main, name="dscall-simulator", daemon=True)
        self._thread.start()
        if not self._ready.wait(START_TIMEOUT_S):
            raise RuntimeError("the simulator thread did not start in time")
        if self._error is not None:
            self._thread.join(STOP_TIMEOUT_S)
            raise self._error
        return self

    def stop(self) -> None:
        thread, loop, stop = self._thread, self._loop, self._stop
        if thread is None:
            return
        if loop is not None and stop is not None and not loop.is_closed():
            # The loop may close between the check and the call.
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(stop.set)
        thread.join(STOP_TIMEOUT_S)
        self._thread = None

    def stats(self, bodies: bool = False) -> dict[str, Any]:
        """A consistent snapshot, taken on the simulator's own loop."""
        snapshot: dict[str, Any] = self._call(lambda: self._sim.stats(bodies))
        return snapshot

    def requests(self) -> list[Any]:
        """The request bodies kept (``SimulatorConfig.keep_requests``), parsed, in order."""
        kept: list[Any] = self._call(lambda: list(self._sim.requests))
        return kept

    def reset_stats(self) -> None:
        self._call(self._sim.reset_stats)

    def _call(self, func: Any) -> Any:
        loop = self._loop
        if loop is None or self._thread is None:
            raise RuntimeError("the simulator thread is not running")

        async def on_loop() -> Any:
            return func()

        return asyncio.run_coroutine_threadsafe(on_loop(), loop).result(STOP_TIMEOUT_S)

    def _main(self) -> None:
        loop = asyncio.new_event_loop()
        try:
            loop.run_until_complete(self._serve(loop))
        except BaseException as exc:  # reported to the starting thread, not lost in this one
            if not self._ready.is_set():
                self._error = exc
                self._ready.set()
        finally:
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()

    async def _serve(self, loop: asyncio.AbstractEventLoop) -> None:
        self._stop = asyncio.Event()
        await self._sim.start(self._host, self._port)
        self._loop = loop
        self._ready.set()
        try:
            await self._stop.wait()
        finally:
            await self._sim.close()

    def __enter__(self) -> SimulatorThread:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
