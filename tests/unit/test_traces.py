"""The switch and the configuration of traces (dscall.traces): which variables turn them on,
which exporters ``OTEL_TRACES_EXPORTER`` names, and error statuses that never hold a key."""

from __future__ import annotations

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import ConsoleSpanExporter, SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import StatusCode

from dscall.errors import UsageError
from dscall.traces import tracing_requested
from dscall.traces.setup import exporter_names, exporters
from dscall.traces.spans import fail
from tests.conftest import TEST_API_KEY


@pytest.mark.parametrize(
    ("env", "on"),
    [
        ({}, False),
        ({"OTEL_SERVICE_NAME": "x"}, False),
        ({"OTEL_TRACES_EXPORTER": "console"}, True),
        ({"OTEL_TRACES_EXPORTER": " "}, False),
        ({"OTEL_TRACES_EXPORTER": "none"}, False),
        ({"OTEL_TRACES_EXPORTER": "None"}, False),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318"}, True),
        ({"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://127.0.0.1:4318/v1/traces"}, True),
        ({"OTEL_TRACES_EXPORTER": "console", "OTEL_SDK_DISABLED": "true"}, False),
        ({"OTEL_TRACES_EXPORTER": "console", "OTEL_SDK_DISABLED": "TRUE"}, False),
        ({"OTEL_TRACES_EXPORTER": "console", "OTEL_SDK_DISABLED": "false"}, True),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://h:4318", "OTEL_TRACES_EXPORTER": "none"}, False),
    ],
)
def test_which_variables_turn_traces_on(env: dict[str, str], on: bool) -> None:
    assert tracing_requested(env) is on


@pytest.mark.parametrize(
    ("env", "names"),
    [
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://h:4318"}, ["otlp_proto_http"]),
        ({"OTEL_TRACES_EXPORTER": "otlp"}, ["otlp_proto_http"]),
        (
            {"OTEL_TRACES_EXPORTER": "otlp", "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"},
            ["otlp_proto_grpc"],
        ),
        (
            {
                "OTEL_TRACES_EXPORTER": "otlp",
                "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc",
                "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL": "http/protobuf",
            },
            ["otlp_proto_http"],
        ),
        ({"OTEL_TRACES_EXPORTER": "console, otlp"}, ["console", "otlp_proto_http"]),
        ({"OTEL_TRACES_EXPORTER": "console,none"}, ["console"]),
        ({"OTEL_TRACES_EXPORTER": "otlp_proto_http"}, ["otlp_proto_http"]),
    ],
)
def test_exporter_names(env: dict[str, str], names: list[str]) -> None:
    assert exporter_names(env) == names


def test_an_unknown_otlp_protocol_names_the_choices() -> None:
    with pytest.raises(UsageError, match=r"http/json.*http/protobuf, grpc"):
        exporter_names({"OTEL_TRACES_EXPORTER": "otlp", "OTEL_EXPORTER_OTLP_PROTOCOL": "http/json"})


def test_exporters_are_built_from_their_entry_points(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTEL_TRACES_EXPORTER", "console")
    (built,) = exporters()
    assert isinstance(built, ConsoleSpanExporter)


def test_a_missing_grpc_exporter_says_which_package(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTEL_TRACES_EXPORTER", "otlp")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc")
    with pytest.raises(UsageError) as caught:
        exporters()
    message = str(caught.value)
    assert "pip install opentelemetry-exporter-otlp-proto-grpc" in message
    assert "\n" not in message


def test_an_error_status_never_holds_the_key() -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    span = provider.get_tracer("test").start_span("x")
    fail(span, "AuthError", f"401 from the API:\n  key {TEST_API_KEY} refused")
    span.end()
    (finished,) = exporter.get_finished_spans()
    assert finished.status.status_code is StatusCode.ERROR
    description = finished.status.description or ""
    assert description.startswith("AuthError: 401 from the API: key ")
    assert TEST_API_KEY not in finished.to_json()
    assert "\n" not in description
    assert finished.attributes is not None
    assert finished.attributes["error.type"] == "AuthError"
    provider.shutdown()
