from __future__ import annotations

from datetime import datetime, timezone

import pytest

from dscall.errors import BudgetExhausted, UsageError
from dscall.pipeline.budget import BalanceWatch, Budget
from dscall.pricing import PriceTable, load_prices
from dscall.types import CallRequest

UTC = timezone.utc
MILLION = 1_000_000
SATURDAY_NOON = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)  # off-peak
MONDAY_2AM = datetime(2026, 11, 16, 2, 0, tzinfo=UTC)  # peak
# deepseek-flash, a million prompt tokens (all cache misses) and a million of output
AT_PEAK = 0.30 + 1.20
OFF_PEAK = AT_PEAK / 2


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture(scope="module")
def prices() -> PriceTable:
    return load_prices(None)


def _request(prompt_tokens: int = MILLION, max_tokens: int | None = MILLION) -> CallRequest:
    return CallRequest(b"{}", "hash", "deepseek-flash", prompt_tokens, max_tokens, False)


@pytest.mark.parametrize(
    ("now", "lookahead_s", "reserved"),
    [
        (SATURDAY_NOON, 900, OFF_PEAK),
        (MONDAY_2AM, 900, AT_PEAK),
        (datetime(2026, 11, 16, 5, 0, tzinfo=UTC), 900, OFF_PEAK),  # between the windows
        # peak begins at 01:00 on Monday: a request sent at 00:50 may be billed at peak ...
        (datetime(2026, 11, 16, 0, 50, tzinfo=UTC), 900, AT_PEAK),
        (datetime(2026, 11, 16, 0, 45, tzinfo=UTC), 900, AT_PEAK),
        # ... one sent at 00:40 is answered before, and without a lookahead only now counts
        (datetime(2026, 11, 16, 0, 40, tzinfo=UTC), 900, OFF_PEAK),
        (datetime(2026, 11, 16, 0, 50, tzinfo=UTC), 0, OFF_PEAK),
        # just before peak ends, the dearer price now is the one reserved
        (datetime(2026, 11, 16, 3, 55, tzinfo=UTC), 900, AT_PEAK),
        (datetime(2026, 11, 16, 4, 0, tzinfo=UTC), 3 * 3600, AT_PEAK),
        (datetime(2026, 11, 16, 10, 0, tzinfo=UTC), 3 * 3600, OFF_PEAK),
    ],
)
def test_reservation_is_priced_at_the_current_time(
    prices: PriceTable, now: datetime, lookahead_s: float, reserved: float
) -> None:
    budget = Budget(10.0, prices, "deepseek-flash", clock=Clock(now), lookahead_s=lookahead_s)
    assert budget.reserve(_request()) == pytest.approx(reserved)
    assert budget.reserved_usd == pytest.approx(reserved)


def test_the_same_request_fits_off_peak_but_not_at_peak(prices: PriceTable) -> None:
    clock = Clock(SATURDAY_NOON)
    budget = Budget(1.0, prices, "deepseek-flash", clock=clock)
    amount = budget.reserve(_request())
    assert amount == pytest.approx(OFF_PEAK)
    budget.release(amount)
    budget.spend(0.1)
    clock.now = MONDAY_2AM
    with pytest.raises(BudgetExhausted, match=r"\$0\.1000 spent, \$0\.0000 in flight"):
        budget.reserve(_request())
    assert budget.reserved_usd == 0.0


def test_no_max_tokens_reserves_the_default_allowance(prices: PriceTable) -> None:
    budget = Budget(10.0, prices, "deepseek-flash", clock=Clock(MONDAY_2AM))
    assert budget.reserve(_request(0, None)) == pytest.approx(8192 * 1.20 / MILLION)


def test_a_budget_needs_a_priced_model(prices: PriceTable) -> None:
    with pytest.raises(UsageError, match="needs a price for model 'local'"):
        Budget(1.0, prices, "local", clock=Clock(SATURDAY_NOON))


@pytest.mark.parametrize(("now", "warned"), [(SATURDAY_NOON, False), (MONDAY_2AM, True)])
def test_balance_watch_prices_input_at_the_current_time(
    prices: PriceTable, now: datetime, warned: bool
) -> None:
    warnings: list[str] = []
    # a million prompt tokens: $0.15 off-peak, $0.30 at peak, against a $0.20 balance
    watch = BalanceWatch(0.20, prices, warnings.append, clock=Clock(now))
    watch.add(_request(MILLION, 0))
    assert bool(warnings) is warned


def test_a_hold_past_the_limit_asks_for_more_first(prices: PriceTable) -> None:
    budget = Budget(1.0, prices, "deepseek-flash", clock=Clock(SATURDAY_NOON))
    asked: list[float] = []

    def top_up(need: float) -> float:
        asked.append(need)
        if len(asked) > 1:
            raise BudgetExhausted("the run's budget is reached")
        return need + 0.5

    budget.top_up = top_up
    budget.hold(0.8, "first")
    budget.hold(0.5, "second")  # 0.3 over: granted 0.8 more
    assert asked == [pytest.approx(0.3)]
    assert budget.limit_usd == pytest.approx(1.8)
    budget.hold(0.4, "third")  # fits the new limit: nothing asked
    with pytest.raises(BudgetExhausted, match="run's budget"):
        budget.hold(0.5, "fourth")
    assert budget.reserved_usd == pytest.approx(1.7)
