"""OpenTelemetry traces of a run (SPEC §13): the ``otel`` extra, configured only by the standard
``OTEL_*`` environment variables.

    dscall.run ─> dscall.document ─> chat {model} (a call) ─> POST (an HTTP attempt)

``dscall compare`` makes the same tree: its run span says ``dscall.command = compare`` and
names the variants, each call says its variant as its step (``dscall.step``, or ``judge``),
and only the documents the sample drew a chunk from have a span.

Tracing is on when ``OTEL_TRACES_EXPORTER`` or an OTLP endpoint variable is set (and neither
``OTEL_SDK_DISABLED=true`` nor ``OTEL_TRACES_EXPORTER=none`` says otherwise) and the extra is
installed. This module is the switch and imports no OpenTelemetry: off, a run reads a few
environment variables once and the call path checks one attribute per call
(``dscall.traces.spans`` and ``dscall.traces.setup`` hold the SDK side).
"""

from __future__ import annotations

import os
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Protocol, TypeVar

if TYPE_CHECKING:
    from dscall.stats import RunStats
    from dscall.traces.spans import RunTraces

# Any one of these asks for traces (the OTLP exporter reads the endpoints itself).
TRACES_ENV = (
    "OTEL_TRACES_EXPORTER",
    "OTEL_EXPORTER_OTLP_ENDPOINT",
    "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
)
MISSING = "OpenTelemetry is not installed: pip install 'dscall[otel]'"


class Ended(Protocol):
    """How a run ended, as its run span records it."""

    @property
    def exit_code(self) -> int: ...

    @property
    def stop_reason(self) -> object | None: ...


R = TypeVar("R", bound=Ended)


async def traced(traces: RunTraces | None, body: Callable[[RunTraces | None], Awaitable[R]]) -> R:
    """``body(traces)`` inside the run span of ``traces``, which ends (and its spans are
    flushed) after the body's outputs; without traces, just ``body(None)``."""
    if traces is None:
        return await body(None)
    async with traces:
        result = await body(traces)
        traces.ended(result.exit_code, result.stop_reason)
        return result


def tracing_requested(environ: Mapping[str, str] = os.environ) -> bool:
    """Whether the environment asks for traces (cheap: no import)."""
    if environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return False
    exporter = environ.get("OTEL_TRACES_EXPORTER", "").strip().lower()
    if exporter == "none":
        return False
    return any(environ.get(name, "").strip() for name in TRACES_ENV)


def open_traces(
    run_id: str,
    model: str,
    stats: RunStats,
    notify: Callable[[str], None],
    command: str = "process",
    variants: Sequence[str] = (),
) -> RunTraces | None:
    """The traces of one run (of ``process``, or of ``compare`` and its ``variants``), or
    None when tracing is off (or the extra is missing: a note says so and the run goes on
    without traces)."""
    if not tracing_requested():
        return None
    try:
        from dscall.traces.spans import RunTraces
    except ImportError as exc:
        if not (exc.name or "").startswith("opentelemetry"):
            raise  # a bug of ours, not a missing extra
        names = ", ".join(name for name in TRACES_ENV if os.environ.get(name))
        notify(f"note: {names} set but {MISSING}; no traces")
        return None
    return RunTraces(run_id, model, stats, command, variants)
