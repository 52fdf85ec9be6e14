"""The thread runner for synchronous callers, and `dscall mock-server` as a process."""

from __future__ import annotations

import http.client
import json
import os
import signal
import socket
import subprocess
import sys
from typing import Any

import pytest
from typer.testing import CliRunner

from dscall.cli import app
from dscall.simulator import SimulatorConfig, SimulatorThread, expected_answer
from tests.simulator.conftest import KEY, chat_body, messages


def post(base_url: str, payload: dict[str, Any], key: str = KEY) -> tuple[int, dict[str, Any]]:
    """A plain synchronous request (http.client: no proxy settings, no event loop)."""
    host, port = base_url.removeprefix("http://").rsplit(":", 1)
    connection = http.client.HTTPConnection(host, int(port), timeout=10)
    try:
        connection.request(
            "POST",
            "/chat/completions",
            body=json.dumps(payload),
            headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"},
        )
        response = connection.getresponse()
        return response.status, json.loads(response.read())
    finally:
        connection.close()


def test_thread_runner_serves_sync_callers_and_changes_live() -> None:
    with SimulatorThread(SimulatorConfig()) as sim:
        assert sim.base_url.startswith("http://127.0.0.1:")
        status, body = post(sim.base_url, chat_body("From a thread."))
        assert status == 200
        assert body["choices"][0]["message"]["content"] == expected_answer(
            messages("From a thread.")
        )
        sim.config.fail = {503: 1.0}  # an outage, switched on live ...
        assert post(sim.base_url, chat_body("During the outage."))[0] == 503
        sim.config.fail = {}  # ... and off again
        assert post(sim.base_url, chat_body("After the outage."))[0] == 200
        stats = sim.stats()
        sim.reset_stats()
        assert sim.stats()["requests_received"] == 0
        url = sim.base_url
    assert stats["responses_by_status"] == {"200": 2, "503": 1}
    with pytest.raises(ConnectionRefusedError):  # stopped: the port no longer answers
        socket.create_connection(("127.0.0.1", int(url.rsplit(":", 1)[1])), timeout=2).close()


def test_thread_runner_reports_a_port_in_use() -> None:
    with SimulatorThread() as first:
        port = int(first.base_url.rsplit(":", 1)[1])
        with pytest.raises(OSError, match="in use"):
            SimulatorThread(port=port).start()


def _start_server(*flags: str) -> tuple[subprocess.Popen[str], str]:
    process = subprocess.Popen(
        [sys.executable, "-m", "dscall", "mock-server", "--port", "0", *flags],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "COLUMNS": "200"},
    )
    assert process.stdout is not None
    first_line = process.stdout.readline()
    return process, first_line


@pytest.mark.parametrize("stop", [signal.SIGINT, signal.SIGTERM])
def test_cli_prints_its_address_serves_and_stops_cleanly(stop: signal.Signals) -> None:
    process, first_line = _start_server("--api-key", KEY, "--latency-ms", "1")
    try:
        assert first_line.startswith("dscall mock-server listening on http://127.0.0.1:")
        base_url = first_line.split()[-1]
        status, body = post(base_url, chat_body("Over the wire."))
        assert status == 200
        assert body["usage"]["prompt_tokens"] > 0
        assert post(base_url, chat_body("x"), key="sk-wrong")[0] == 401
        process.send_signal(stop)
        _, stderr = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == 0
    assert "Traceback" not in stderr
    assert "stopped after 2 chat requests" in stderr
    assert KEY not in stderr


def test_cli_rejects_bad_flags_with_one_line() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "dscall", "mock-server", "--port", "0", "--fail", "503=2"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert "probability" in result.stderr
    assert "Traceback" not in result.stderr
    assert result.stdout == ""


def test_cli_port_in_use_is_a_usage_error() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = subprocess.run(
            [sys.executable, "-m", "dscall", "mock-server", "--port", str(port)],
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert result.returncode == 2
    assert "cannot listen" in result.stderr
    assert "Traceback" not in result.stderr


def test_help_lists_every_flag() -> None:
    result = CliRunner().invoke(app, ["mock-server", "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0
    flags = [
        "--host", "--port", "--latency-ms", "--jitter", "--tokens-per-second",
        "--max-concurrency", "--rpm", "--retry-after", "--fail", "--fail-retry-after",
        "--reset-rate", "--stall-rate", "--stall-max-s", "--empty-rate", "--malformed-rate",
        "--insufficient-rate", "--keepalive-ms", "--keepalive-interval-ms", "--balance-tokens",
        "--schema-violations", "--api-key", "--seed", "--strict-models",
        "--reject-unknown-fields",
    ]  # fmt: skip
    for flag in flags:
        assert flag in result.output, flag


def test_cli_rejects_unknown_fields_like_a_litellm_proxy() -> None:
    process, first_line = _start_server("--api-key", KEY, "--reject-unknown-fields")
    try:
        base_url = first_line.split()[-1]
        status, body = post(base_url, chat_body("x", thinking={"type": "disabled"}))
        assert status == 400
        assert "does not support parameters: ['thinking']" in body["error"]["message"]
        assert post(base_url, chat_body("x", temperature=0.5, stream=False))[0] == 200
        process.send_signal(signal.SIGTERM)
        process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == 0


def test_unknown_fields_pass_unless_asked_and_the_switch_is_live() -> None:
    with SimulatorThread(SimulatorConfig()) as sim:
        assert post(sim.base_url, chat_body("x", thinking={"type": "enabled"}))[0] == 200
        sim.config.reject_unknown_fields = True
        status, body = post(sim.base_url, chat_body("x", thinking={"type": "enabled"}, foo=1))
        assert status == 400
        assert "['foo', 'thinking']" in body["error"]["message"]
