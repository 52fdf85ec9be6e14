"""The key stays a secret: not in help, not over plain http to a remote host, not in files."""

from __future__ import annotations

import stat

import pytest

from dscall.calls.http import check_endpoint
from dscall.errors import UsageError, redact, register_secret
from dscall.simulator import SimulatorThread
from tests.conftest import TEST_API_KEY
from tests.integration.conftest import Workspace, invoke


@pytest.mark.parametrize("command", [[], ["process"], ["chunks"], ["mock-server"], ["cache"]])
def test_help_never_shows_the_key(command: list[str]) -> None:
    result = invoke([*command, "--help"])
    assert result.exit_code == 0
    assert TEST_API_KEY not in result.stdout + result.stderr


@pytest.mark.parametrize(
    ("url", "allowed"),
    [
        ("https://api.deepseek.com", True),
        ("http://127.0.0.1:8089", True),
        ("http://localhost:8000/v1", True),
        ("http://[::1]:8000", True),
        ("http://api.deepseek.com", False),
        ("http://10.0.0.5:8000", False),
        ("ftp://api.deepseek.com", False),
        ("api.deepseek.com", False),
    ],
)
def test_plain_http_only_to_loopback(url: str, allowed: bool) -> None:
    if allowed:
        assert check_endpoint(url, allow_insecure_http=False) == url.rstrip("/")
    else:
        with pytest.raises(UsageError):
            check_endpoint(url, allow_insecure_http=False)


def test_remote_plain_http_is_refused_before_any_connection(workspace: Workspace) -> None:
    result = invoke(
        [
            "process",
            str(workspace.corpus),
            "--out",
            str(workspace.out),
            "--base-url",
            "http://api.deepseek.com",
        ]
    )
    assert result.exit_code == 2
    assert "--allow-insecure-http" in result.stderr
    assert not workspace.out.exists()


def test_redact_removes_registered_and_key_shaped_secrets() -> None:
    register_secret("custom-secret-value-1234")
    text = "failed with Bearer abc.def and sk-live-0123456789 and custom-secret-value-1234"
    cleaned = redact(text)
    assert "abc.def" not in cleaned
    assert "sk-live-0123456789" not in cleaned
    assert "custom-secret-value-1234" not in cleaned


def test_cache_and_audit_are_owner_only(sim: SimulatorThread, workspace: Workspace) -> None:
    audit = workspace.root / "audit.jsonl"
    result = invoke(workspace.args(sim, "--audit-log", str(audit)))
    assert result.exit_code == 0, result.stderr
    assert stat.S_IMODE(audit.stat().st_mode) == 0o600
    files = [p for p in workspace.cache.rglob("*") if p.is_file()]
    assert files
    for path in files:
        assert stat.S_IMODE(path.stat().st_mode) & 0o077 == 0, path
    for path in [workspace.cache, *(p for p in workspace.cache.rglob("*") if p.is_dir())]:
        assert stat.S_IMODE(path.stat().st_mode) & 0o077 == 0, path
