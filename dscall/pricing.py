"""Model prices and the cost of a call. Prices are data, not code.

The bundled ``dscall/data/prices.json`` says when and where its prices were read; a user file
in the same format (``--prices FILE``) adds models or replaces them, entry by entry, and may
replace the off-peak window. An unknown model has no price: its cost is ``None`` (shown as
unknown), never a guess.

File format (prices in USD per million tokens; ``off_peak`` may be ``null`` for none, and a
model may carry its own ``off_peak_factor``, e.g. 1.0 for a self-hosted model; a model entry
takes no other fields, so a misspelt one is an error, not a silently ignored price)::

    {"checked": "2026-11", "source": "https://...",
     "off_peak": {"start_utc": "16:30", "end_utc": "00:30", "price_factor": 0.5},
     "models": {"deepseek-flash": {"input_cache_hit": 0.006, "input_cache_miss": 0.30,
                                   "output": 1.20}}}
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from datetime import datetime, timezone
from importlib import resources
from pathlib import Path
from typing import Any

from dscall.errors import UsageError
from dscall.types import Usage

_PER_MILLION = 1_000_000.0
_PRICE_FIELDS = ("input_cache_hit", "input_cache_miss", "output")
_HH_MM = re.compile(r"(\d{1,2}):(\d{2})")


@dataclass(frozen=True, slots=True)
class ModelPrice:
    """USD per million tokens at peak hours, and the factor applied off-peak."""

    input_cache_hit: float
    input_cache_miss: float
    output: float
    off_peak_factor: float | None = None  # None: the table's off-peak factor


@dataclass(frozen=True, slots=True)
class OffPeak:
    """A daily UTC window (it may wrap midnight) in which prices are multiplied by a factor."""

    start_s: int  # seconds after 00:00 UTC
    end_s: int
    price_factor: float

    def contains(self, at: datetime) -> bool:
        # A naive datetime is taken as UTC: dscall keeps every timestamp in UTC.
        if at.tzinfo is not None and at.tzinfo is not timezone.utc:
            at = at.astimezone(timezone.utc)
        second = at.hour * 3600 + at.minute * 60 + at.second
        if self.start_s <= self.end_s:
            return self.start_s <= second < self.end_s
        return second >= self.start_s or second < self.end_s


class PriceTable:
    """Prices per model; ``cost`` runs once per output row, so rates are pre-divided."""

    def __init__(
        self,
        models: dict[str, ModelPrice],
        off_peak: OffPeak | None,
        checked: str | None = None,
        source: str | None = None,
    ) -> None:
        self.models = dict(models)
        self.off_peak = off_peak
        self.checked = checked
        self.source = source
        default_factor = off_peak.price_factor if off_peak is not None else 1.0
        # model -> (hit, miss, output) USD per token at peak, off-peak factor
        self._rates: dict[str, tuple[float, float, float, float]] = {
            name: (
                p.input_cache_hit / _PER_MILLION,
                p.input_cache_miss / _PER_MILLION,
                p.output / _PER_MILLION,
                p.off_peak_factor if p.off_peak_factor is not None else default_factor,
            )
            for name, p in models.items()
        }

    def is_off_peak(self, at: datetime) -> bool:
        return self.off_peak is not None and self.off_peak.contains(at)

    def _factor(self, rates: tuple[float, float, float, float], at: datetime) -> float:
        return rates[3] if self.off_peak is not None and self.off_peak.contains(at) else 1.0

    def cost(self, model: str, usage: Usage, at: datetime) -> float | None:
        """USD for one call's ``usage``, at the price in force at ``at``; None if unpriced.

        Endpoints that do not report the cache split (vLLM, llama.cpp) bill every prompt
        token as a miss: prompt tokens not reported as hits are priced as misses.
        """
        rates = self._rates.get(model)
        if rates is None:
            return None
        hit = usage.cache_hit_tokens
        miss = max(usage.cache_miss_tokens, usage.prompt_tokens - hit)
        peak = hit * rates[0] + miss * rates[1] + usage.completion_tokens * rates[2]
        return peak * self._factor(rates, at)

    def estimate(
        self, model: str, prompt_tokens: int, completion_tokens: int, at: datetime
    ) -> float | None:
        """Conservative USD for a call not made yet: every prompt token a cache miss."""
        rates = self._rates.get(model)
        if rates is None:
            return None
        peak = prompt_tokens * rates[1] + completion_tokens * rates[2]
        return peak * self._factor(rates, at)


def load_prices(path: Path | None = None) -> PriceTable:
    """The bundled prices, with ``path`` (same format) adding or replacing models."""
    bundled = resources.files("dscall") / "data" / "prices.json"
    name = "bundled prices.json"
    base = _parse(_read_json(bundled.read_text(encoding="utf-8"), name), name, True)
    if path is None:
        return base
    where = f"prices file {path}"
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"{where}: cannot read it ({exc})") from exc
    raw = _read_json(text, where)
    user = _parse(raw, where, False)
    return PriceTable(
        {**base.models, **user.models},  # a user entry replaces the bundled one whole
        user.off_peak if "off_peak" in raw else base.off_peak,
        user.checked or base.checked,
        user.source or base.source,
    )


def _read_json(text: str, where: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise UsageError(
            f"{where}: not valid JSON ({exc.msg} at line {exc.lineno} column {exc.colno})"
        ) from exc


def _parse(data: Any, where: str, require_models: bool) -> PriceTable:
    if not isinstance(data, dict):
        raise UsageError(f"{where}: expected a JSON object at the top level")
    models_data = data.get("models", {} if not require_models else None)
    if not isinstance(models_data, dict) or (require_models and not models_data):
        raise UsageError(f'{where}: "models" must be an object of model name -> prices')
    models = {name: _model(name, entry, where) for name, entry in models_data.items()}
    off_peak = _off_peak(data.get("off_peak"), where)
    checked, source = data.get("checked"), data.get("source")
    for key, value in (("checked", checked), ("source", source)):
        if value is not None and not isinstance(value, str):
            raise UsageError(f'{where}: "{key}" must be a string')
    return PriceTable(models, off_peak, checked, source)


def _number(value: Any, what: str, where: str) -> float:
    # bool is an int in Python; "true" is not a price.
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise UsageError(f"{where}: {what} must be a number, got {json.dumps(value)}")
    if value < 0:
        raise UsageError(f"{where}: {what} must not be negative, got {value}")
    return float(value)


def _model(name: str, entry: Any, where: str) -> ModelPrice:
    if not isinstance(entry, dict):
        raise UsageError(
            f"{where}: model {name!r} must be an object with {', '.join(_PRICE_FIELDS)}"
        )
    missing = [key for key in _PRICE_FIELDS if key not in entry]
    if missing:
        raise UsageError(f"{where}: model {name!r} lacks {', '.join(missing)}")
    unknown = set(entry) - {*_PRICE_FIELDS, "off_peak_factor"}
    if unknown:
        raise UsageError(
            f"{where}: model {name!r} has unknown field(s) {', '.join(sorted(unknown))}"
        )
    hit, miss, output = (
        _number(entry[key], f"model {name!r} {key}", where) for key in _PRICE_FIELDS
    )
    factor = entry.get("off_peak_factor")
    if factor is not None:
        factor = _number(factor, f"model {name!r} off_peak_factor", where)
    return ModelPrice(hit, miss, output, factor)


def _clock_time(value: Any, what: str, where: str) -> int:
    match = _HH_MM.fullmatch(value) if isinstance(value, str) else None
    if match is None or int(match[1]) > 23 or int(match[2]) > 59:
        raise UsageError(f'{where}: off_peak {what} must be "HH:MM" (UTC), got {json.dumps(value)}')
    return int(match[1]) * 3600 + int(match[2]) * 60


def _off_peak(data: Any, where: str) -> OffPeak | None:
    if data is None:
        return None
    if not isinstance(data, dict):
        raise UsageError(f'{where}: "off_peak" must be an object or null')
    factor = _number(data.get("price_factor"), "off_peak price_factor", where)
    return OffPeak(
        _clock_time(data.get("start_utc"), "start_utc", where),
        _clock_time(data.get("end_utc"), "end_utc", where),
        factor,
    )
