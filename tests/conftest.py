"""Shared fixtures. Every test runs with HOME, the cache dir and the API key pointed into its
own tmp_path, so no test reads or writes the developer's real files or key."""

from __future__ import annotations

from pathlib import Path

import pytest

TEST_API_KEY = "sk-test-canary-0123456789abcdef"


@pytest.fixture(autouse=True)
def isolated_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("XDG_CACHE_HOME", str(home / ".cache"))
    monkeypatch.setenv("DEEPSEEK_API_KEY", TEST_API_KEY)
    monkeypatch.delenv("DSCALL_DEBUG", raising=False)
    monkeypatch.delenv("NO_COLOR", raising=False)
    return home


@pytest.fixture
def samples_dir() -> Path:
    return Path(__file__).resolve().parent.parent / "samples"
