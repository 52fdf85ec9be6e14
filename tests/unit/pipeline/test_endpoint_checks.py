"""How a run with several endpoints prices its calls, and what the budget reserves with."""

from __future__ import annotations

from datetime import datetime, timezone

from dscall.calls.endpoint_plan import plan_endpoints
from dscall.config import CallSettings, EndpointSettings
from dscall.pipeline.endpoint_checks import dearest_prices, endpoint_prices
from dscall.pricing import load_prices
from dscall.types import Usage

SATURDAY = datetime(2026, 12, 5, 12, tzinfo=timezone.utc)  # off-peak all day
TUESDAY_PEAK = datetime(2026, 12, 8, 2, tzinfo=timezone.utc)
MILLION = Usage(prompt_tokens=1_000_000, completion_tokens=0, cache_miss_tokens=1_000_000)


def test_an_endpoints_own_prices_and_renamed_model() -> None:
    prices = load_prices()
    run = plan_endpoints(
        CallSettings(
            endpoints=(
                EndpointSettings("ds", "https://api.deepseek.com"),
                EndpointSettings("box", "https://box.example/v1", prices=(0.0, 0.1, 0.2)),
                EndpointSettings("pro", "https://other.example", model="deepseek-v4-pro"),
            )
        ),
        mock=False,
    )
    special = endpoint_prices(run, prices, "deepseek-flash")
    assert set(special) == {"box", "pro"}  # "ds" is priced by the run's table
    table, renamed = special["box"]
    assert renamed is None
    # Not a deepseek endpoint: its own prices hold at peak and off-peak alike.
    assert table.cost("deepseek-flash", MILLION, TUESDAY_PEAK) == 0.1
    assert table.cost("deepseek-flash", MILLION, SATURDAY) == 0.1
    table, renamed = special["pro"]
    assert renamed == "deepseek-v4-pro"
    assert table.cost(renamed, MILLION, TUESDAY_PEAK) == 1.32


def test_the_budget_reserves_at_the_dearest_endpoint() -> None:
    prices = load_prices()
    run = plan_endpoints(
        CallSettings(
            endpoints=(
                EndpointSettings("ds", "https://api.deepseek.com"),
                EndpointSettings("dear", "https://dear.example", prices=(0.0, 9.0, 0.5)),
            )
        ),
        mock=False,
    )
    dearest = dearest_prices(run, prices, "deepseek-flash")
    flash = dearest.models["deepseek-flash"]
    assert (flash.input_cache_miss, flash.output) == (9.0, 1.2)  # the dearer of each
    one = plan_endpoints(CallSettings(), mock=False)
    assert dearest_prices(one, prices, "deepseek-flash") is prices
