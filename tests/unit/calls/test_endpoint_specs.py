"""``--endpoint NAME=URL`` and ``[[endpoints]]`` tables: what is accepted, one-line errors."""

from __future__ import annotations

from typing import Any

import pytest

from dscall.calls.endpoint_plan import plan_endpoints
from dscall.calls.endpoint_specs import check_endpoints, parse_endpoint_flag, parse_endpoint_table
from dscall.config import CallSettings, EndpointSettings
from dscall.errors import UsageError


def test_flag() -> None:
    spec = parse_endpoint_flag("vllm=http://127.0.0.1:8000/v1")
    assert (spec.name, spec.base_url, spec.priority, spec.weight) == (
        "vllm",
        "http://127.0.0.1:8000/v1",
        "primary",
        1.0,
    )


@pytest.mark.parametrize("value", ["vllm", "=http://x", "vllm=", "bad name=http://x"])
def test_bad_flag(value: str) -> None:
    with pytest.raises(UsageError):
        parse_endpoint_flag(value)


def test_table_with_every_key() -> None:
    spec = parse_endpoint_table(
        {
            "name": "spare",
            "base_url": "https://spare.example/v1",
            "api_key_env": "SPARE_KEY",
            "model": "deepseek-ai/DeepSeek-V3",
            "provider": "openai",
            "weight": 2,
            "priority": "fallback",
            "max_concurrency": 64,
            "rpm": 600,
            "tpm": 100000,
            "prices": {"hit": 0, "miss": 0.1, "output": 0.2},
            "cache_group": "v3",
        },
        "dscall.toml:7",
    )
    assert spec.prices == (0.0, 0.1, 0.2)
    assert (spec.weight, spec.priority, spec.cache_group, spec.where) == (
        2.0,
        "fallback",
        "v3",
        "dscall.toml:7",
    )


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ({"name": "a", "base_url": "http://x", "wieght": 2}, "did you mean 'weight'"),
        ({"name": "a", "base_url": "http://x", "api_key": "sk-1"}, "never read from files"),
        ({"name": "a"}, "needs 'base_url'"),
        ({"name": "a", "base_url": "http://x", "weight": 0}, "above 0"),
        ({"name": "a", "base_url": "http://x", "priority": "backup"}, "primary, fallback"),
        ({"name": "a", "base_url": "http://x", "provider": "anthropic"}, "auto, deepseek"),
        ({"name": "a", "base_url": "http://x", "rpm": 1.5}, "whole number"),
        ({"name": "a", "base_url": "http://x", "prices": {"hit": 1}}, "missing: miss, output"),
        ({"name": "a", "base_url": "http://x", "api_key_env": "not a var"}, "environment var"),
    ],
)
def test_bad_tables_are_one_line_errors_with_where(table: dict[str, Any], message: str) -> None:
    with pytest.raises(UsageError) as raised:
        parse_endpoint_table(table, "dscall.toml:3", {"wieght": "dscall.toml:5"})
    text = str(raised.value)
    assert message in text
    assert "\n" not in text
    assert text.startswith("dscall.toml:")
    assert "sk-1" not in text


def test_the_set_is_checked() -> None:
    a = EndpointSettings("a", "http://127.0.0.1:1")
    with pytest.raises(UsageError, match="used twice"):
        check_endpoints([a, a])
    with pytest.raises(UsageError, match="primary"):
        check_endpoints([EndpointSettings("a", "http://x", priority="fallback")])


def test_limits_are_shared_by_weight_and_groups_decide_sources() -> None:
    call = CallSettings(
        concurrency=16,
        max_concurrency=100,
        endpoints=(
            EndpointSettings("a", "https://api.deepseek.com", weight=3),
            EndpointSettings("b", "https://other.example/v1", cache_group="ds"),
            EndpointSettings("c", "https://third.example/v1", cache_group="ds"),
            EndpointSettings("d", "https://spare.example/v1", priority="fallback"),
        ),
    )
    planned = plan_endpoints(call, mock=False)
    maxima = [e.max_concurrency for e in planned.endpoints]
    assert maxima == [60, 20, 20, 100]  # primaries share by weight; a fallback may use all
    assert planned.sources == (
        "https://api.deepseek.com",
        "group:ds",
        "https://spare.example/v1",
    )
    assert [e.source_index for e in planned.endpoints] == [0, 1, 1, 2]
    assert [e.provider.name for e in planned.endpoints] == [
        "deepseek",
        "openai",
        "openai",
        "openai",
    ]


def test_one_endpoint_is_the_run_it_always_was() -> None:
    planned = plan_endpoints(CallSettings(), mock=False)
    assert [e.name for e in planned.endpoints] == ["api.deepseek.com"]
    assert planned.sources == ("https://api.deepseek.com",)
    assert plan_endpoints(CallSettings(), mock=True).endpoints[0].name == "simulator"
