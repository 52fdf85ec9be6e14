"""What of a --cache-url may be shown (``public_url``) and what is a secret (``url_secrets``),
as a table; and that settings holding one register its password and keep it out of metadata."""

from __future__ import annotations

import pytest

from dscall.config import CacheSettings, settings_metadata
from dscall.errors import redact
from dscall.secret_urls import public_url, url_secrets


@pytest.mark.parametrize(
    ("url", "shown", "secrets"),
    [
        ("redis://127.0.0.1:6379/0", "redis://127.0.0.1:6379/0", []),
        ("redis://:pw1@h:1/2", "redis://:***@h:1/2", ["pw1"]),
        ("redis://bob:pw2@h/0", "redis://bob:***@h/0", ["pw2"]),
        ("rediss://:s3cr%40t@h:6380/0", "rediss://:***@h:6380/0", ["s3cr%40t", "s3cr@t"]),
        ("redis://h/0?password=zz9&db=1", "redis://h/0?password=***&db=1", ["zz9"]),
        ("unix:///run/redis.sock?db=3", "unix:///run/redis.sock?db=3", []),
        ("redis://bob@h/0", "redis://bob@h/0", []),  # a user name alone is no secret
    ],
)
def test_public_url_and_secrets(url: str, shown: str, secrets: list[str]) -> None:
    assert public_url(url) == shown
    assert sorted(url_secrets(url)) == sorted(secrets)
    for secret in secrets:
        assert secret not in shown.replace("***", "")


def test_settings_register_the_password_and_keep_it_out_of_metadata() -> None:
    settings = CacheSettings(cache_url="redis://:canary-pw-81@127.0.0.1:6379/0")
    assert redact("auth canary-pw-81 failed") == "auth [redacted] failed"
    metadata = settings_metadata(settings)
    assert metadata["cache_url"] == "redis://:***@127.0.0.1:6379/0"
    assert settings_metadata(CacheSettings())["cache_url"] is None
