"""Model prices and the cost of a call. Prices are data, not code.

The bundled ``dscall/data/prices.json`` says when and where its prices were read; a user file
in the same format (``--prices FILE``) adds models or replaces them, entry by entry, and may
replace the peak hours. An unknown model has no price: its cost is ``None`` (shown as
unknown), never a guess.

File format (prices in USD per million tokens, at peak)::

    {"checked": "2026-12", "source": "https://...",
     "peak_hours": {
       "windows_utc": [
         {"days": ["mon", "tue", "wed", "thu", "fri"], "start": "01:00", "end": "04:00"},
         {"days": ["mon", "tue", "wed", "thu", "fri"], "start": "06:00", "end": "10:00"}],
       "off_peak_factor": 0.5},
     "models": {"deepseek-flash": {"input_cache_hit": 0.006, "input_cache_miss": 0.30,
                                   "output": 1.20}}}

``peak_hours`` lists the PEAK windows, as DeepSeek states them; every other instant is
off-peak and prices are multiplied by ``off_peak_factor`` (``"peak_hours": null``: no
off-peak prices at all; ``"windows_utc": []``: off-peak all the time). A window runs from
``start`` (inclusive) to ``end`` (exclusive), "HH:MM" UTC, on each of its ``days`` (mon ...
sun, any case; left out: every day). ``days`` name the day a window STARTS on: an ``end``
before ``start`` wraps midnight, so ``{"days": ["fri"], "start": "22:00", "end": "02:00"}``
is Friday 22:00 to Saturday 02:00 (and a Sunday window wraps into Monday). ``end`` may be
"24:00"; ``start`` equal to ``end`` is refused as ambiguous (a whole day is "00:00" to
"24:00"). Windows may overlap. A model may carry its own ``off_peak_factor``, e.g. 1.0 for
a self-hosted model.

``currency``, if given, must be "USD" (costs are shown in dollars); ``unit`` is a note for
readers. Unknown keys are errors, not silently ignored settings: a misspelt price or ``peak_hours``
would otherwise leave the bundled value in force. The format before 2026-12 (``"off_peak":
{"start_utc", "end_utc", "price_factor"}``, one daily off-peak window) is refused with a
message saying what to write: such a file is most likely a copy of the old bundled prices,
whose hours are wrong since DeepSeek moved them on 16 Aug 2026.
"""

from __future__ import annotations

import bisect
import json
import math
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from importlib import resources
from pathlib import Path
from typing import Any

from dscall.errors import UsageError
from dscall.types import Usage

_PER_MILLION = 1_000_000.0
_PRICE_FIELDS = ("input_cache_hit", "input_cache_miss", "output")
_TOP_LEVEL = {"checked", "source", "currency", "unit", "peak_hours", "models"}
_DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")  # index = datetime.weekday()
_HH_MM = re.compile(r"(\d{1,2}):(\d{2})")
_DAY_S = 24 * 3600
_WEEK_S = 7 * _DAY_S
_OLD_FORMAT = (
    '"off_peak" is the format before 2026-12 (one daily off-peak window, and DeepSeek\'s '
    'hours have changed since); give the PEAK hours instead, e.g. "peak_hours": '
    '{"windows_utc": [{"days": ["mon", "tue", "wed", "thu", "fri"], "start": "01:00", '
    '"end": "04:00"}], "off_peak_factor": 0.5}, or "peak_hours": null for no off-peak prices'
)


@dataclass(frozen=True, slots=True)
class ModelPrice:
    """USD per million tokens at peak hours, and the factor applied off-peak."""

    input_cache_hit: float
    input_cache_miss: float
    output: float
    off_peak_factor: float | None = None  # None: the table's off-peak factor


@dataclass(frozen=True, slots=True)
class PeakWindow:
    """Peak hours on some weekdays: ``start_s`` to ``end_s`` seconds after 00:00 UTC, end
    exclusive; an end at or before the start is on the next day."""

    days: frozenset[int]  # the days it starts on, 0 = Monday as in datetime.weekday()
    start_s: int
    end_s: int


def _utc(at: datetime) -> datetime:
    # A naive datetime is taken as UTC: dscall keeps every timestamp in UTC.
    if at.tzinfo is None:
        return at.replace(tzinfo=timezone.utc)
    return at.astimezone(timezone.utc)


class PeakHours:
    """A weekly UTC schedule of peak windows; every other instant is off-peak."""

    def __init__(self, windows: Iterable[PeakWindow], off_peak_factor: float) -> None:
        self.windows = tuple(windows)
        self.off_peak_factor = off_peak_factor
        # The windows laid on one week as merged [start, end) seconds after Monday 00:00, so
        # a lookup is one bisect and every span edge is a real change of price.
        spans: list[tuple[int, int]] = []
        for window in self.windows:
            length = (window.end_s - window.start_s) % _DAY_S or _DAY_S
            for day in window.days:
                start = day * _DAY_S + window.start_s
                end = start + length
                # Sunday's window runs on into Monday: the week repeats.
                spans.extend(
                    [(start, end)] if end <= _WEEK_S else [(start, _WEEK_S), (0, end - _WEEK_S)]
                )
        merged: list[tuple[int, int]] = []
        for start, end in sorted(spans):
            if merged and start <= merged[-1][1]:
                merged[-1] = (merged[-1][0], max(merged[-1][1], end))
            else:
                merged.append((start, end))
        self._spans = merged
        self._starts = [start for start, _ in merged]
        edges = {edge % _WEEK_S for span in merged for edge in span}
        if merged and merged[0][0] == 0 and merged[-1][1] == _WEEK_S:
            edges.discard(0)  # peak runs on across Sunday -> Monday: no change there
        self._edges = sorted(edges)

    def is_peak(self, at: datetime) -> bool:
        _, second = _week_second(at)
        i = bisect.bisect_right(self._starts, second) - 1
        return i >= 0 and second < self._spans[i][1]

    def next_change(self, at: datetime) -> datetime | None:
        """The first instant after ``at`` (aware, UTC) at which peak starts or ends; None if
        it never does (no windows, or peak all week)."""
        if not self._edges:
            return None
        week_start, second = _week_second(at)
        i = bisect.bisect_right(self._edges, second)
        edge = self._edges[i] if i < len(self._edges) else self._edges[0] + _WEEK_S
        return week_start + timedelta(seconds=edge)


def _week_second(at: datetime) -> tuple[datetime, int]:
    """Monday 00:00 UTC of ``at``'s week, and the whole seconds from then to ``at``.

    Whole seconds suffice: every window edge is a whole minute, so ``at`` is before an edge
    exactly when its whole second is.
    """
    at = _utc(at)
    day = at.replace(hour=0, minute=0, second=0, microsecond=0)
    week_start = day - timedelta(days=at.weekday())
    return week_start, (at - week_start) // timedelta(seconds=1)


class PriceTable:
    """Prices per model; ``cost`` runs once per output row, so rates are pre-divided."""

    def __init__(
        self,
        models: dict[str, ModelPrice],
        peak_hours: PeakHours | None,
        checked: str | None = None,
        source: str | None = None,
    ) -> None:
        self.models = dict(models)
        self.peak_hours = peak_hours
        self.checked = checked
        self.source = source
        default_factor = peak_hours.off_peak_factor if peak_hours is not None else 1.0
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
        return self.peak_hours is not None and not self.peak_hours.is_peak(at)

    def next_change(self, at: datetime) -> datetime | None:
        """The first instant after ``at`` (aware, UTC) at which off-peak starts or ends; None
        if it never does. A model whose factor is 1.0 pays the same on both sides."""
        return None if self.peak_hours is None else self.peak_hours.next_change(at)

    def _factor(self, rates: tuple[float, float, float, float], at: datetime) -> float:
        return rates[3] if self.is_off_peak(at) else 1.0

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
        user.peak_hours if "peak_hours" in raw else base.peak_hours,
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
    if "off_peak" in data:
        raise UsageError(f"{where}: {_OLD_FORMAT}")
    _no_unknown_keys(data, _TOP_LEVEL, "the top level", where)
    models_data = data.get("models", {} if not require_models else None)
    if not isinstance(models_data, dict) or (require_models and not models_data):
        raise UsageError(f'{where}: "models" must be an object of model name -> prices')
    models = {name: _model(name, entry, where) for name, entry in models_data.items()}
    peak_hours = _peak_hours(data.get("peak_hours"), where)
    checked, source = data.get("checked"), data.get("source")
    for key, value in (("checked", checked), ("source", source)):
        if value is not None and not isinstance(value, str):
            raise UsageError(f'{where}: "{key}" must be a string')
    # The prices are shown with "$"; a file in another currency would be shown wrong.
    if data.get("currency", "USD") != "USD":
        raise UsageError(f'{where}: "currency" must be "USD", got {json.dumps(data["currency"])}')
    return PriceTable(models, peak_hours, checked, source)


def _no_unknown_keys(data: dict[str, Any], known: Iterable[str], what: str, where: str) -> None:
    unknown = set(data) - set(known)
    if unknown:
        raise UsageError(
            f"{where}: {what} has unknown field(s) {', '.join(sorted(unknown))} "
            f"(known: {', '.join(sorted(known))})"
        )


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
    _no_unknown_keys(entry, (*_PRICE_FIELDS, "off_peak_factor"), f"model {name!r}", where)
    hit, miss, output = (
        _number(entry[key], f"model {name!r} {key}", where) for key in _PRICE_FIELDS
    )
    factor = entry.get("off_peak_factor")
    if factor is not None:
        factor = _number(factor, f"model {name!r} off_peak_factor", where)
    return ModelPrice(hit, miss, output, factor)


def _peak_hours(data: Any, where: str) -> PeakHours | None:
    if data is None:
        return None
    if not isinstance(data, dict):
        raise UsageError(f'{where}: "peak_hours" must be an object or null')
    _no_unknown_keys(data, ("windows_utc", "off_peak_factor"), "peak_hours", where)
    factor = _number(data.get("off_peak_factor"), "peak_hours off_peak_factor", where)
    windows = data.get("windows_utc")
    if not isinstance(windows, list):
        raise UsageError(f"{where}: peak_hours windows_utc must be a list of windows")
    return PeakHours(
        (_window(entry, f"peak_hours windows_utc[{i}]", where) for i, entry in enumerate(windows)),
        factor,
    )


def _window(data: Any, what: str, where: str) -> PeakWindow:
    if not isinstance(data, dict):
        raise UsageError(f'{where}: {what} must be an object with "start", "end" and "days"')
    _no_unknown_keys(data, ("days", "start", "end"), what, where)
    start = _clock_time(data.get("start"), f"{what} start", where, is_end=False)
    end = _clock_time(data.get("end"), f"{what} end", where, is_end=True)
    if start == end:
        raise UsageError(
            f'{where}: {what} starts and ends at the same time; a whole day is "00:00" to "24:00"'
        )
    return PeakWindow(_days(data.get("days", list(_DAYS)), f"{what} days", where), start, end)


def _days(value: Any, what: str, where: str) -> frozenset[int]:
    if not isinstance(value, list) or not value:
        raise UsageError(f'{where}: {what} must be a non-empty list such as ["mon", "tue"]')
    days: set[int] = set()
    for day in value:
        name = day.lower() if isinstance(day, str) else None
        if name not in _DAYS:
            raise UsageError(
                f"{where}: {what}: unknown day {json.dumps(day)} (use {', '.join(_DAYS)})"
            )
        days.add(_DAYS.index(name))
    return frozenset(days)


def _clock_time(value: Any, what: str, where: str, *, is_end: bool) -> int:
    """Seconds after 00:00 of "HH:MM"; a window's end may be "24:00" (to midnight)."""
    latest = "24:00" if is_end else "23:59"
    match = _HH_MM.fullmatch(value) if isinstance(value, str) else None
    if match is not None and int(match[2]) <= 59:
        seconds = int(match[1]) * 3600 + int(match[2]) * 60
        if seconds <= (_DAY_S if is_end else _DAY_S - 60):
            return seconds
    raise UsageError(
        f'{where}: {what} must be "HH:MM" (UTC, up to {latest}), got {json.dumps(value)}'
    )
