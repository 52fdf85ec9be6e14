from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from dscall.errors import UsageError
from dscall.pricing import ModelPrice, PeakHours, PeakWindow, PriceTable, load_prices
from dscall.types import Usage

UTC = timezone.utc
BEIJING = timezone(timedelta(hours=8))
NEW_YORK = timezone(timedelta(hours=-5))
# The week of Monday 16 Nov 2026: DeepSeek's peak is 01:00-04:00 and 06:00-10:00 UTC, Mon-Fri.
MON, TUE, FRI, SAT, SUN, NEXT_MON = 16, 17, 20, 21, 22, 23
PEAK = datetime(2026, 11, MON, 2, 0, tzinfo=UTC)
OFF_PEAK = datetime(2026, 11, SAT, 12, 0, tzinfo=UTC)
MILLION = 1_000_000


def _at(day: int, hour: int, minute: int = 0, second: int = 0, micro: int = 0) -> datetime:
    return datetime(2026, 11, day, hour, minute, second, micro, tzinfo=UTC)


@pytest.fixture(scope="module")
def prices() -> PriceTable:
    return load_prices(None)


def test_bundled_file_says_when_and_where(prices: PriceTable) -> None:
    assert prices.checked == "2026-12"
    assert prices.source == "https://api-docs.deepseek.com/quick_start/pricing"
    assert set(prices.models) >= {"deepseek-flash", "deepseek-v4-pro"}


@pytest.mark.parametrize(
    ("at", "off_peak"),
    [
        (_at(SAT, 12), True),  # the weekend is off-peak all day
        (_at(SAT, 2), True),
        (_at(SUN, 2), True),
        (_at(SUN, 8), True),
        (_at(MON, 0, 59, 59, 999_999), True),
        (_at(MON, 1), False),
        (_at(MON, 2), False),
        (_at(MON, 3, 59, 59, 999_999), False),
        (_at(MON, 4), True),  # an end is exclusive
        (_at(MON, 5), True),  # between the two windows
        (_at(MON, 6), False),
        (_at(MON, 9, 59), False),
        (_at(MON, 10), True),
        (_at(MON, 16, 30), True),  # the old window's start: nothing special any more
        (_at(FRI, 3), False),
        (_at(FRI, 9, 59, 59), False),
        (_at(FRI, 23, 59), True),
        # another time zone is converted: 09:00 in Beijing is 01:00 UTC ...
        (datetime(2026, 11, MON, 9, 0, tzinfo=BEIJING), False),
        (datetime(2026, 11, MON, 8, 59, tzinfo=BEIJING), True),
        # ... 02:00 Tuesday in Beijing is 18:00 Monday UTC, and 22:00 Sunday in New York
        # is 03:00 Monday UTC: the weekday is the UTC one
        (datetime(2026, 11, TUE, 2, 0, tzinfo=BEIJING), True),
        (datetime(2026, 11, SUN, 22, 0, tzinfo=NEW_YORK), False),
        # a naive datetime is taken as UTC
        (datetime(2026, 11, MON, 2, 0), False),
        (datetime(2026, 11, SAT, 2, 0), True),
    ],
)
def test_bundled_peak_hours(prices: PriceTable, at: datetime, off_peak: bool) -> None:
    assert prices.is_off_peak(at) is off_peak
    full = prices.cost("deepseek-flash", Usage(0, MILLION, 0, 0), at)
    assert full == pytest.approx(0.60 if off_peak else 1.20)


@pytest.mark.parametrize(
    ("at", "change"),
    [
        (_at(SAT, 12), _at(NEXT_MON, 1)),
        (_at(MON, 0, 59, 59, 999_999), _at(MON, 1)),
        (_at(MON, 1), _at(MON, 4)),  # strictly after
        (_at(MON, 2), _at(MON, 4)),
        (_at(MON, 4), _at(MON, 6)),
        (_at(MON, 9, 59), _at(MON, 10)),
        (_at(MON, 10), _at(TUE, 1)),
        (_at(FRI, 9), _at(FRI, 10)),
        (_at(FRI, 10), _at(NEXT_MON, 1)),  # over the weekend, into the next week
        (_at(SUN, 23, 59, 59, 999_999), _at(NEXT_MON, 1)),
        (datetime(2026, 11, MON, 9, 30, tzinfo=BEIJING), _at(MON, 4)),
        (datetime(2026, 11, MON, 2, 0), _at(MON, 4)),  # naive in, aware UTC out
    ],
)
def test_next_change(prices: PriceTable, at: datetime, change: datetime) -> None:
    found = prices.next_change(at)
    assert found == change
    assert found is not None
    assert found.tzinfo is UTC
    assert prices.is_off_peak(found) is not prices.is_off_peak(at)


def _table(peak_hours: PeakHours | None) -> PriceTable:
    return PriceTable({"m": ModelPrice(0, 1, 0)}, peak_hours)


def test_a_window_may_wrap_midnight_and_the_week() -> None:
    table = _table(
        PeakHours(
            [
                PeakWindow(frozenset({4}), 22 * 3600, 2 * 3600),
                PeakWindow(frozenset({6}), 0, 24 * 3600),
            ],
            0.5,
        )
    )
    # "fri" 22:00-02:00 is Friday 22:00 to Saturday 02:00, and only that
    assert table.is_off_peak(_at(FRI, 21, 59))
    assert not table.is_off_peak(_at(FRI, 22))
    assert not table.is_off_peak(_at(SAT, 1, 59))
    assert table.is_off_peak(_at(SAT, 2))
    assert table.is_off_peak(_at(MON, 1))  # Sunday's window (a whole day, 00:00-24:00) ...
    assert not table.is_off_peak(_at(SUN, 0))
    assert table.is_off_peak(_at(NEXT_MON, 0))  # ... ends at Monday 00:00
    assert table.next_change(_at(SUN, 12)) == _at(NEXT_MON, 0)


def test_a_window_over_the_week_end_is_one_span() -> None:
    sunday_night = PeakWindow(frozenset({6}), 22 * 3600, 2 * 3600)
    monday_morning = PeakWindow(frozenset({0}), 2 * 3600, 4 * 3600)
    table = _table(PeakHours([sunday_night, monday_morning], 0.5))
    assert not table.is_off_peak(_at(MON, 1))  # last week's Sunday window runs on
    assert not table.is_off_peak(_at(SUN, 23))
    # Monday 00:00 and 02:00 are no changes: peak runs on from Sunday 22:00 to Monday 04:00
    assert table.next_change(_at(SUN, 23)) == _at(NEXT_MON, 4)
    assert table.next_change(_at(SUN, 21)) == _at(SUN, 22)


def test_no_change_without_off_peak_or_without_peak() -> None:
    every_day = frozenset(range(7))
    always_peak = _table(PeakHours([PeakWindow(every_day, 0, 24 * 3600)], 0.5))
    never_peak = _table(PeakHours([], 0.5))
    no_off_peak = _table(None)
    for table, off_peak in ((always_peak, False), (never_peak, True), (no_off_peak, False)):
        assert table.next_change(_at(MON, 2)) is None
        assert table.is_off_peak(_at(MON, 2)) is off_peak
        assert table.is_off_peak(_at(SAT, 12)) is off_peak


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


def test_user_file_can_move_or_drop_the_peak_hours(tmp_path: Path) -> None:
    # Saturday 22:00 to Sunday 02:00 is peak, everything else a quarter of the price
    window = {"days": ["Sat"], "start": "22:00", "end": "02:00"}
    moved = load_prices(
        _write(tmp_path, {"peak_hours": {"windows_utc": [window], "off_peak_factor": 0.25}})
    )
    miss = Usage(0, MILLION, 0, 0)
    for at, price in (
        (_at(SAT, 21, 59), 0.3),
        (_at(SAT, 22), 1.2),
        (_at(SUN, 1, 59), 1.2),
        (_at(SUN, 2), 0.3),
        (PEAK, 0.3),  # DeepSeek's peak no longer applies
    ):
        assert moved.cost("deepseek-flash", miss, at) == pytest.approx(price), at
    assert moved.next_change(_at(SUN, 0)) == _at(SUN, 2)

    every_day = {
        "peak_hours": {"windows_utc": [{"start": "23:00", "end": "24:00"}], "off_peak_factor": 0.5}
    }
    daily = load_prices(_write(tmp_path, every_day))
    assert [daily.is_off_peak(_at(day, 23, 30)) for day in range(MON, NEXT_MON)] == [False] * 7
    assert daily.is_off_peak(_at(TUE, 0))

    dropped = load_prices(_write(tmp_path, {"peak_hours": None}))
    assert not dropped.is_off_peak(OFF_PEAK)
    assert dropped.next_change(OFF_PEAK) is None
    assert dropped.cost("deepseek-flash", miss, OFF_PEAK) == pytest.approx(1.2)


def test_a_model_may_carry_its_own_off_peak_factor(tmp_path: Path) -> None:
    prices = {"input_cache_hit": 0, "input_cache_miss": 1, "output": 0}
    path = _write(
        tmp_path,
        {
            "models": {
                "self-hosted": {**prices, "off_peak_factor": 1.0},
                "night-owl": {**prices, "off_peak_factor": 0.2},
                "plain": prices,
            }
        },
    )
    table = load_prices(path)
    usage = Usage(MILLION, 0, 0, MILLION)
    for model, at_peak, off_peak in (
        ("self-hosted", 1.0, 1.0),
        ("night-owl", 1.0, 0.2),
        ("plain", 1.0, 0.5),  # the table's factor
    ):
        assert table.cost(model, usage, PEAK) == pytest.approx(at_peak), model
        assert table.cost(model, usage, OFF_PEAK) == pytest.approx(off_peak), model
        assert table.estimate(model, MILLION, 0, OFF_PEAK) == pytest.approx(off_peak), model


def _peak(window: object, factor: object = 0.5) -> dict[str, object]:
    return {"peak_hours": {"windows_utc": [window], "off_peak_factor": factor}}


WEEKDAYS_1_TO_4 = {"days": ["mon"], "start": "01:00", "end": "04:00"}


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
        ({"checked": 2026}, '"checked" must be a string'),
        ({"currency": "EUR"}, '"currency" must be "USD"'),
        ({"peak_hour": None}, "the top level has unknown field(s) peak_hour"),
        # the format before 2026-12 is refused, saying what to write instead
        (
            {"off_peak": {"start_utc": "16:30", "end_utc": "00:30", "price_factor": 0.5}},
            '"off_peak" is the format before 2026-12',
        ),
        ({"off_peak": None}, 'give the PEAK hours instead, e.g. "peak_hours": {"windows_utc"'),
        ({"peak_hours": "evenings"}, '"peak_hours" must be an object or null'),
        ({"peak_hours": {"off_peak_factor": 0.5}}, "peak_hours windows_utc must be a list"),
        (
            {"peak_hours": {"windows_utc": [], "off_peak_factor": 0.5, "tz": "UTC"}},
            "peak_hours has unknown field(s) tz",
        ),
        (_peak(WEEKDAYS_1_TO_4, "half"), 'peak_hours off_peak_factor must be a number, got "half"'),
        (_peak(WEEKDAYS_1_TO_4, -0.5), "peak_hours off_peak_factor must not be negative"),
        (_peak(WEEKDAYS_1_TO_4, None), "peak_hours off_peak_factor must be a number, got null"),
        (_peak("01:00-04:00"), "peak_hours windows_utc[0] must be an object"),
        (
            _peak({**WEEKDAYS_1_TO_4, "days": ["mon", "tues"]}),
            'windows_utc[0] days: unknown day "tues" (use mon, tue, wed, thu, fri, sat, sun)',
        ),
        (_peak({**WEEKDAYS_1_TO_4, "days": [1]}), "windows_utc[0] days: unknown day 1"),
        (_peak({**WEEKDAYS_1_TO_4, "days": "mon"}), "windows_utc[0] days must be a non-empty list"),
        (_peak({**WEEKDAYS_1_TO_4, "days": []}), "windows_utc[0] days must be a non-empty list"),
        (_peak({**WEEKDAYS_1_TO_4, "start": "25:00"}), 'windows_utc[0] start must be "HH:MM"'),
        (_peak({**WEEKDAYS_1_TO_4, "start": "24:00"}), '(UTC, up to 23:59), got "24:00"'),
        (_peak({**WEEKDAYS_1_TO_4, "end": "24:01"}), 'windows_utc[0] end must be "HH:MM"'),
        (_peak({**WEEKDAYS_1_TO_4, "end": "10:60"}), 'windows_utc[0] end must be "HH:MM"'),
        (_peak({**WEEKDAYS_1_TO_4, "end": "4pm"}), 'windows_utc[0] end must be "HH:MM"'),
        (_peak({**WEEKDAYS_1_TO_4, "end": 4}), 'windows_utc[0] end must be "HH:MM"'),
        (_peak({"days": ["mon"], "end": "04:00"}), "windows_utc[0] start must be"),
        (
            _peak({**WEEKDAYS_1_TO_4, "end": "01:00"}),
            'starts and ends at the same time; a whole day is "00:00" to "24:00"',
        ),
        (
            _peak({**WEEKDAYS_1_TO_4, "begin": "01:00"}),
            "windows_utc[0] has unknown field(s) begin",
        ),
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
