"""Traces as the ``OTEL_*`` variables configure them: OTLP over HTTP to a collector on
loopback, the console exporter, a bad exporter name, and off (not configured, disabled, or the
extra missing), where OpenTelemetry is never even imported (checked in a fresh process)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from dscall.simulator import SimulatorThread
from tests.conftest import TEST_API_KEY
from tests.integration.conftest import Workspace, invoke, write_corpus

REPO = Path(__file__).resolve().parents[2]


class Collector(ThreadingHTTPServer):
    bodies: list[bytes]
    paths: list[str]


class _Handler(BaseHTTPRequestHandler):
    server: Collector

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length", "0"))
        self.server.bodies.append(self.rfile.read(length))
        self.server.paths.append(self.path)
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def collector() -> Iterator[Collector]:
    server = Collector(("127.0.0.1", 0), _Handler)
    server.bodies, server.paths = [], []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()
    thread.join()


def test_spans_reach_an_otlp_collector_over_http(
    sim: SimulatorThread,
    workspace: Workspace,
    collector: Collector,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for extra in sorted(workspace.corpus.iterdir())[2:]:
        extra.unlink()
    host, port = collector.server_address[:2]
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", f"http://{host!s}:{port}")
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    monkeypatch.delenv("OTEL_SERVICE_NAME", raising=False)
    result = invoke(workspace.args(sim, "--quiet"))
    assert result.exit_code == 0, result.stderr
    # The run's provider was shut down at its end: every span is at the collector by now.
    assert collector.paths
    assert set(collector.paths) == {"/v1/traces"}
    names: list[str] = []
    services = set()
    for body in collector.bodies:
        assert TEST_API_KEY.encode() not in body
        request = ExportTraceServiceRequest.FromString(body)
        for resource_spans in request.resource_spans:
            for attribute in resource_spans.resource.attributes:
                if attribute.key == "service.name":
                    services.add(attribute.value.string_value)
            for scope in resource_spans.scope_spans:
                assert scope.scope.name == "dscall"
                names += [span.name for span in scope.spans]
    assert services == {"dscall"}
    assert names.count("dscall.run") == 1
    assert names.count("dscall.document") == 2
    assert names.count("POST") == sum(1 for n in names if n.startswith("chat ")) > 2


def test_an_unknown_exporter_is_a_one_line_usage_error(
    sim: SimulatorThread, workspace: Workspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OTEL_TRACES_EXPORTER", "zipkin_json")
    result = invoke(workspace.args(sim, "--quiet"))
    assert result.exit_code == 2
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1
    assert "OTEL_TRACES_EXPORTER" in lines[0]
    assert "zipkin_json" in lines[0]
    assert sim.stats()["responses_by_status"] == {}  # stopped before the pre-flight check


# Runs `dscall process --mock` in a fresh interpreter, then reports which opentelemetry modules
# were imported. argv[1]: "block" hides the extra (as if it were not installed).
SCRIPT = """
import json, sys
if sys.argv[1] == "block":
    class Block:
        def find_spec(self, name, path=None, target=None):
            if name == "opentelemetry" or name.startswith("opentelemetry."):
                raise ModuleNotFoundError(f"No module named {name!r}", name=name)
    sys.meta_path.insert(0, Block())
sys.argv = ["dscall"] + sys.argv[2:]
from dscall.cli import main
try:
    main()
except SystemExit as exc:
    code = exc.code
loaded = sorted(m for m in sys.modules if m.split(".")[0] == "opentelemetry")
print("\\n" + json.dumps({"exit": code, "otel": loaded}))
"""


def run_fresh(tmp_path: Path, env: dict[str, str], block: bool = False) -> tuple[dict, str, str]:
    corpus = write_corpus(tmp_path / "fresh", docs=2)
    clean = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    clean["PYTHONPATH"] = str(REPO)
    args = ["process", str(corpus), "--mock", "--out", str(tmp_path / "f.parquet")]
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT, "block" if block else "-", *args],
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    report = json.loads(done.stdout.strip().splitlines()[-1])
    return report, done.stdout, done.stderr


@pytest.mark.parametrize(
    "env",
    [
        {},
        {"OTEL_SERVICE_NAME": "dscall-cron"},  # not a request for traces on its own
        {"OTEL_TRACES_EXPORTER": "console", "OTEL_SDK_DISABLED": "true"},
        {"OTEL_TRACES_EXPORTER": "none"},
    ],
    ids=["unset", "service-name-only", "sdk-disabled", "exporter-none"],
)
def test_off_no_span_and_no_import(tmp_path: Path, env: dict[str, str]) -> None:
    report, stdout, stderr = run_fresh(tmp_path, env)
    assert report == {"exit": 0, "otel": []}, stderr
    assert "dscall.run" not in stdout


def test_console_exporter_prints_the_spans_in_a_fresh_process(tmp_path: Path) -> None:
    report, stdout, stderr = run_fresh(tmp_path, {"OTEL_TRACES_EXPORTER": "console"})
    assert report["exit"] == 0, stderr
    assert "opentelemetry.sdk.trace" in report["otel"]
    assert stdout.count('"name": "dscall.run"') == 1
    assert stdout.count('"name": "dscall.document"') == 2


def test_without_the_extra_a_note_and_the_run_goes_on(tmp_path: Path) -> None:
    report, _, stderr = run_fresh(tmp_path, {"OTEL_TRACES_EXPORTER": "console"}, block=True)
    assert report == {"exit": 0, "otel": []}
    assert "pip install 'dscall[otel]'" in stderr
    assert "OTEL_TRACES_EXPORTER" in stderr
