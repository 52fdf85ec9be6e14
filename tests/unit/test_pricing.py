from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from dscall.errors import UsageError
from dscall.pricing import PriceTable, load_prices
from dscall.types import Usage

UTC = timezone.utc
PEAK = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
OFF_PEAK = datetime(2026, 11, 20, 20, 0, tzinfo=UTC)
MILLION = 1_000_000


@pytest.fixture(scope="module")
def prices() -> PriceTable:
    return load_prices(None)


def test_bundled_file_says_when_and_where(prices: PriceTable) -> None:
    assert prices.checked == "2026-11"
    assert prices.source == "https://api-docs.deepseek.com/quick_start/pricing"
    assert set(prices.models) >= {"deepseek-flash", "deepseek-v4-pro"}


@pytest.mark.parametrize(
    ("at", "off_peak"),
    [
        (datetime(2026, 11, 20, 12, 0, tzinfo=UTC), False),
        (datetime(2026, 11, 20, 16, 29, 59, tzinfo=UTC), False),
        (datetime(2026, 11, 20, 16, 29, 59, 999_999, tzinfo=UTC), False),
        (datetime(2026, 11, 20, 16, 30, tzinfo=UTC), True),
        (datetime(2026, 11, 20, 23, 59, 59, tzinfo=UTC), True),
        (datetime(2026, 11, 21, 0, 0, tzinfo=UTC), True),
        (datetime(2026, 11, 21, 0, 29, 59, tzinfo=UTC), True),
        (datetime(2026, 11, 21, 0, 30, tzinfo=UTC), False),
        (datetime(2026, 11, 21, 0, 30, 1, tzinfo=UTC), False),
        # Beijing time (UTC+8): 00:30 there is 16:30 UTC
        (datetime(2026, 11, 21, 0, 30, tzinfo=timezone(timedelta(hours=8))), True),
        (datetime(2026, 11, 21, 0, 29, tzinfo=timezone(timedelta(hours=8))), False),
        # a naive datetime is taken as UTC
        (datetime(2026, 11, 20, 16, 30), True),
        (datetime(2026, 11, 20, 16, 29, 59), False),
    ],
)
def test_off_peak_boundaries(prices: PriceTable, at: datetime, off_peak: bool) -> None:
    assert prices.is_off_peak(at) is off_peak
    full = prices.cost("deepseek-flash", Usage(0, MILLION, 0, 0), at)
    assert full == pytest.approx(0.60 if off_peak else 1.20)


@pytest.mark.parametrize(
    ("model", "usage", "at", "expected"),
    [
        # one million of each: hit + miss + output
        ("deepseek-flash", Usage(2 * MILLION, MILLION, MILLION, MILLION), PEAK, 1.506),
        ("deepseek-flash", Usage(2 * MILLION, MILLION, MILLION, MILLION), OFF_PEAK, 0.753),
        ("deepseek-v4-pro", Usage(2 * MILLION, MILLION, MILLION, MILLION), PEAK, 5.324),
        ("deepseek-v4-pro", Usage(2 * MILLION, MILLION, MILLION, MILLION), OFF_PEAK, 2.662),
        # the hit/miss split is priced separately
        ("deepseek-flash", Usage(1000, 0, 600, 400), PEAK, (600 * 0.006 + 400 * 0.30) / MILLION),
        ("deepseek-flash", Usage(1000, 0, 1000, 0), PEAK, 1000 * 0.006 / MILLION),
        ("deepseek-flash", Usage(1000, 0, 0, 1000), PEAK, 1000 * 0.30 / MILLION),
        # no split reported (vLLM, llama.cpp): every prompt token is a miss
        ("deepseek-flash", Usage(1000, 0, 0, 0), PEAK, 1000 * 0.30 / MILLION),
        (
            "deepseek-flash",
            Usage(1000, 50, 200, 0),
            PEAK,
            (200 * 0.006 + 800 * 0.30 + 50 * 1.2) / MILLION,
        ),
        ("deepseek-v4-pro", Usage(0, 1000, 0, 0), PEAK, 1000 * 3.96 / MILLION),
        ("deepseek-flash", Usage(), PEAK, 0.0),
    ],
)
def test_cost_table(
    prices: PriceTable, model: str, usage: Usage, at: datetime, expected: float
) -> None:
    assert prices.cost(model, usage, at) == pytest.approx(expected)


@pytest.mark.parametrize("model", ["deepseek-chat", "DEEPSEEK-FLASH", "gpt-4o", ""])
def test_unknown_model_has_no_price(prices: PriceTable, model: str) -> None:
    assert prices.cost(model, Usage(100, 100, 0, 100), PEAK) is None
    assert prices.estimate(model, 100, 100, PEAK) is None


@pytest.mark.parametrize(
    ("model", "prompt", "completion", "at", "expected"),
    [
        ("deepseek-flash", MILLION, MILLION, PEAK, 0.30 + 1.20),  # all prompt tokens miss
        ("deepseek-flash", MILLION, 0, OFF_PEAK, 0.15),
        ("deepseek-v4-pro", 2000, 1024, PEAK, (2000 * 1.32 + 1024 * 3.96) / MILLION),
        ("deepseek-v4-pro", 0, 0, PEAK, 0.0),
    ],
)
def test_estimate_is_conservative(
    prices: PriceTable, model: str, prompt: int, completion: int, at: datetime, expected: float
) -> None:
    assert prices.estimate(model, prompt, completion, at) == pytest.approx(expected)
    # never below what the same tokens cost with any cache hits
    actual = prices.cost(model, Usage(prompt, completion, prompt // 2, prompt - prompt // 2), at)
    assert actual is not None
    assert actual <= expected + 1e-12


def _write(tmp_path: Path, data: object) -> Path:
    path = tmp_path / "prices.json"
    path.write_text(data if isinstance(data, str) else json.dumps(data), encoding="utf-8")
    return path


def test_user_file_adds_and_overrides(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        {
            "checked": "2027-01",
            "models": {
                "deepseek-flash": {"input_cache_hit": 0.01, "input_cache_miss": 0.5, "output": 2},
                "local-qwen": {
                    "input_cache_hit": 0,
                    "input_cache_miss": 0.1,
                    "output": 0.2,
                    "off_peak_factor": 1.0,
                },
            },
        },
    )
    prices = load_prices(path)
    usage = Usage(MILLION, MILLION, 0, MILLION)
    assert prices.cost("deepseek-flash", usage, PEAK) == pytest.approx(2.5)  # overridden
    assert prices.cost("deepseek-flash", usage, OFF_PEAK) == pytest.approx(1.25)
    assert prices.cost("local-qwen", usage, PEAK) == pytest.approx(0.3)  # added
    assert prices.cost("local-qwen", usage, OFF_PEAK) == pytest.approx(0.3)  # no discount
    assert prices.cost("deepseek-v4-pro", usage, PEAK) == pytest.approx(5.28)  # kept
    assert prices.checked == "2027-01"
    assert prices.source == "https://api-docs.deepseek.com/quick_start/pricing"


def test_user_file_can_move_or_drop_the_off_peak_window(tmp_path: Path) -> None:
    moved = load_prices(
        _write(
            tmp_path,
            {"off_peak": {"start_utc": "01:00", "end_utc": "02:00", "price_factor": 0.25}},
        )
    )
    one_am = datetime(2026, 11, 20, 1, 30, tzinfo=UTC)
    assert moved.is_off_peak(one_am)
    assert not moved.is_off_peak(OFF_PEAK)
    assert moved.cost("deepseek-flash", Usage(0, MILLION, 0, 0), one_am) == pytest.approx(0.3)
    dropped = load_prices(_write(tmp_path, {"off_peak": None}))
    assert not dropped.is_off_peak(OFF_PEAK)
    assert dropped.cost("deepseek-flash", Usage(0, MILLION, 0, 0), OFF_PEAK) == pytest.approx(1.2)


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        ("{not json", "not valid JSON"),
        ("", "not valid JSON"),
        ("[1, 2]", "JSON object at the top level"),
        ({"models": []}, '"models" must be an object'),
        ({"models": {"m": 3}}, "model 'm' must be an object"),
        (
            {"models": {"m": {"input_cache_hit": 1, "output": 1}}},
            "model 'm' lacks input_cache_miss",
        ),
        (
            {"models": {"m": {"input_cache_hit": 1, "input_cache_miss": "1", "output": 1}}},
            "model 'm' input_cache_miss must be a number",
        ),
        (
            {"models": {"m": {"input_cache_hit": 1, "input_cache_miss": True, "output": 1}}},
            "must be a number",
        ),
        (
            {"models": {"m": {"input_cache_hit": -1, "input_cache_miss": 1, "output": 1}}},
            "must not be negative",
        ),
        (
            {"models": {"m": {"input_cache_hit": 1, "input_cache_miss": 1, "ouptut": 1}}},
            "lacks output",
        ),
        (
            {
                "models": {
                    "m": {"input_cache_hit": 1, "input_cache_miss": 1, "output": 1, "currency": 1}
                }
            },
            "unknown field(s) currency",
        ),
        ({"off_peak": "evenings"}, '"off_peak" must be an object or null'),
        (
            {"off_peak": {"start_utc": "25:00", "end_utc": "01:00", "price_factor": 0.5}},
            'off_peak start_utc must be "HH:MM"',
        ),
        (
            {"off_peak": {"start_utc": "16:30", "end_utc": 30, "price_factor": 0.5}},
            'off_peak end_utc must be "HH:MM"',
        ),
        (
            {"off_peak": {"start_utc": "16:30", "end_utc": "00:30"}},
            "off_peak price_factor must be a number",
        ),
        ({"checked": 2026}, '"checked" must be a string'),
    ],
)
def test_malformed_user_file(tmp_path: Path, content: object, problem: str) -> None:
    path = _write(tmp_path, content)
    with pytest.raises(UsageError) as info:
        load_prices(path)
    message = str(info.value)
    assert str(path) in message
    assert problem in message
    assert "\n" not in message


def test_missing_user_file(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="cannot read it"):
        load_prices(tmp_path / "nope.json")
