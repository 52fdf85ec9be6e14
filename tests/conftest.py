"""Shared fixtures. Every test runs with HOME, the cache and config dirs and the API key pointed
into its own tmp_path, so no test reads or writes the developer's real files or key; no
DSCALL_* variable of the developer's shell reaches a test, and DSCALL_NO_CONFIG keeps a stray
./dscall.toml (in the repository, or wherever a test runs) out of every run: the tests of
settings files (tests/integration/test_config*.py) turn it off."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

TEST_API_KEY = "sk-test-canary-0123456789abcdef"


@pytest.fixture(autouse=True)
def isolated_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("XDG_CACHE_HOME", str(home / ".cache"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home / ".config"))
    for name in [name for name in os.environ if name.startswith("DSCALL_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("DSCALL_NO_CONFIG", "1")
    monkeypatch.setenv("DEEPSEEK_API_KEY", TEST_API_KEY)
    monkeypatch.delenv("NO_COLOR", raising=False)
    return home


@pytest.fixture
def samples_dir() -> Path:
    return Path(__file__).resolve().parent.parent / "samples"
