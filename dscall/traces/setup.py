"""The tracer provider of a run, built from the standard ``OTEL_*`` environment variables.

``OTEL_TRACES_EXPORTER`` names the exporters (comma-separated; default ``otlp`` when only an
OTLP endpoint is set), each found under the SDK's ``opentelemetry_traces_exporter`` entry
points as ``opentelemetry-instrument`` would find it. ``otlp`` means OTLP over HTTP/protobuf
(the extra ships that exporter; the OpenTelemetry specification's default protocol) unless
``OTEL_EXPORTER_OTLP[_TRACES]_PROTOCOL`` says ``grpc``. Everything else (endpoint, headers,
timeout, sampler, batch sizes, ``OTEL_SERVICE_NAME``, ``OTEL_RESOURCE_ATTRIBUTES``) is read by
the SDK and the exporters themselves. The provider is the run's own, not the global one, and
is shut down (its spans flushed) when the run ends.
"""

from __future__ import annotations

import os
from importlib.metadata import entry_points

from opentelemetry.sdk.resources import SERVICE_NAME, SERVICE_VERSION, Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter

from dscall import __version__
from dscall.errors import UsageError

EXPORTER_GROUP = "opentelemetry_traces_exporter"
_BY_PROTOCOL = {"http/protobuf": "otlp_proto_http", "grpc": "otlp_proto_grpc"}
_PACKAGES = {
    "otlp_proto_http": "opentelemetry-exporter-otlp-proto-http",
    "otlp_proto_grpc": "opentelemetry-exporter-otlp-proto-grpc",
}

# A provider to use instead of one built from the environment (tests: an in-memory exporter;
# a program embedding dscall: its own). Still only used when the environment asks for traces.
_installed: TracerProvider | None = None


def use_provider(provider: TracerProvider | None) -> None:
    """Send the spans of the next runs to ``provider`` (None: build one from ``OTEL_*``)."""
    global _installed
    _installed = provider


def run_provider() -> tuple[TracerProvider, bool]:
    """The provider for a run, and whether the run owns it (and shuts it down at its end)."""
    if _installed is not None:
        return _installed, False
    resource = Resource.create({SERVICE_VERSION: __version__})
    if str(resource.attributes.get(SERVICE_NAME, "")).startswith("unknown_service"):
        resource = resource.merge(Resource({SERVICE_NAME: "dscall"}))
    provider = TracerProvider(resource=resource)
    for exporter in exporters():
        provider.add_span_processor(BatchSpanProcessor(exporter))
    return provider, True


def exporter_names(environ: dict[str, str] | None = None) -> list[str]:
    """The entry-point names of the exporters ``OTEL_TRACES_EXPORTER`` asks for."""
    env = os.environ if environ is None else environ
    names = [n.strip() for n in env.get("OTEL_TRACES_EXPORTER", "otlp").split(",") if n.strip()]
    protocol = (
        env.get("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL") or env.get("OTEL_EXPORTER_OTLP_PROTOCOL")
    ) or "http/protobuf"
    resolved = []
    for name in names or ["otlp"]:
        if name == "otlp":
            found = _BY_PROTOCOL.get(protocol.strip())
            if found is None:
                choices = ", ".join(_BY_PROTOCOL)
                raise UsageError(f"OTEL_EXPORTER_OTLP_PROTOCOL={protocol!r}: choose {choices}")
            name = found
        if name != "none":
            resolved.append(name)
    return resolved


def exporters() -> list[SpanExporter]:
    """The exporters of ``OTEL_TRACES_EXPORTER``, each built with its own env settings."""
    available = {point.name: point for point in entry_points(group=EXPORTER_GROUP)}
    built: list[SpanExporter] = []
    for name in exporter_names():
        point = available.get(name)
        if point is None:
            hint = f": pip install {_PACKAGES[name]}" if name in _PACKAGES else ""
            choices = ", ".join(sorted({"otlp", "none", *available}))
            raise UsageError(
                f"OTEL_TRACES_EXPORTER: no trace exporter {name!r} is installed{hint} "
                f"(installed: {choices})"
            )
        built.append(point.load()())
    return built
