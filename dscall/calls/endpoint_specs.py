"""Several endpoints (SPEC §11), as the user writes them: ``--endpoint NAME=URL`` or an
``[[endpoints]]`` table of the config file, read into ``EndpointSettings`` and checked as a
set before anything is opened.

A table's keys::

    name           required; letters, digits, ``-``, ``_``, ``.``: it labels rows, the audit
                   log, the summary and metrics
    base_url       required; http(s)
    api_key_env    the variable that holds its key (default DEEPSEEK_API_KEY); a key itself is
                   never read from a file
    model          the run's --model as this endpoint names it (a vLLM box: the HF repo id)
    provider       auto | deepseek | openai (auto: from the host, as --provider)
    weight         > 0 (default 1): its share of traffic and of --max-concurrency among the
                   primaries
    priority       primary (default) | fallback: fallbacks take calls only while no primary can
    max_concurrency, rpm, tpm   its own limits
    prices         {hit = USD, miss = USD, output = USD} per million tokens at peak
    cache_group    endpoints of one group share cached answers (default: its own URL)
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable, Mapping
from typing import Any

from dscall.config import EndpointSettings
from dscall.errors import UsageError

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
_KEYS = (
    "name",
    "base_url",
    "api_key_env",
    "model",
    "provider",
    "weight",
    "priority",
    "max_concurrency",
    "rpm",
    "tpm",
    "prices",
    "cache_group",
)
_SECRET_KEYS = frozenset({"api_key", "key", "token", "secret", "password", "api-key"})
_PRICE_KEYS = ("hit", "miss", "output")
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def parse_endpoint_flag(value: str) -> EndpointSettings:
    """``NAME=URL`` (``--endpoint``): an endpoint with every other setting at its default."""
    name, sep, url = value.partition("=")
    if not sep or not url.strip():
        raise UsageError(f"--endpoint takes NAME=URL, got {value!r}")
    return EndpointSettings(name=_check_name(name.strip(), "--endpoint"), base_url=url.strip())


def parse_endpoint_table(
    values: Mapping[str, Any], origin: str, key_origins: Mapping[str, str] | None = None
) -> EndpointSettings:
    """One ``[[endpoints]]`` table; ``origin`` ("FILE:LINE") prefixes every error."""
    where = dict(key_origins or {})

    def at(key: str) -> str:
        return where.get(key, origin)

    for key in values:
        if key.lower() in _SECRET_KEYS:
            raise UsageError(
                f"{at(key)}: {key!r}: keys are never read from files; name the variable that "
                f'holds it instead (api_key_env = "MY_KEY_VAR")'
            )
        if key not in _KEYS:
            close = difflib.get_close_matches(key, _KEYS, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else f"; known: {', '.join(_KEYS)}"
            raise UsageError(f"{at(key)}: unknown endpoint key {key!r}{hint}")
    for required in ("name", "base_url"):
        if required not in values:
            raise UsageError(f"{origin}: an endpoint needs {required!r}")
    settings: dict[str, Any] = {
        "name": _check_name(_text(values, "name", at), at("name")),
        "base_url": _text(values, "base_url", at),
        "where": origin,
    }
    for key in ("api_key_env", "model", "cache_group"):
        if key in values:
            settings[key] = _text(values, key, at)
    if "api_key_env" in settings and not _ENV_NAME.fullmatch(settings["api_key_env"]):
        raise UsageError(f"{at('api_key_env')}: api_key_env must name an environment variable")
    for key, choices in (("provider", ("auto", "deepseek", "openai")), ("priority", _PRIORITY)):
        if key in values:
            choice = _text(values, key, at)
            if choice not in choices:
                raise UsageError(
                    f"{at(key)}: {key} must be one of {', '.join(choices)}, got {choice!r}"
                )
            settings[key] = choice
    if "weight" in values:
        weight = values["weight"]
        if isinstance(weight, bool) or not isinstance(weight, (int, float)) or weight <= 0:
            raise UsageError(f"{at('weight')}: weight must be a number above 0, got {weight!r}")
        settings["weight"] = float(weight)
    for key in ("max_concurrency", "rpm", "tpm"):
        if key in values:
            number = values[key]
            if isinstance(number, bool) or not isinstance(number, int) or number < 1:
                raise UsageError(f"{at(key)}: {key} must be a whole number >= 1, got {number!r}")
            settings[key] = number
    if "prices" in values:
        settings["prices"] = _prices(values["prices"], at("prices"))
    return EndpointSettings(**settings)


_PRIORITY = ("primary", "fallback")


def check_endpoints(endpoints: Iterable[EndpointSettings]) -> tuple[EndpointSettings, ...]:
    """The set as a whole: names unique, at least one primary."""
    checked = tuple(endpoints)
    seen: dict[str, str] = {}
    for endpoint in checked:
        if endpoint.name in seen:
            raise UsageError(
                f"{endpoint.where or '--endpoint'}: endpoint name {endpoint.name!r} is used twice"
            )
        seen[endpoint.name] = endpoint.where or "--endpoint"
    if checked and not any(e.priority == "primary" for e in checked):
        raise UsageError('every endpoint is a fallback: mark at least one priority = "primary"')
    return checked


def _check_name(name: str, where: str) -> str:
    if not _NAME.fullmatch(name):
        raise UsageError(
            f"{where}: endpoint name {name!r} must be 1-64 letters, digits, '-', '_' or '.'"
        )
    return name


def _text(values: Mapping[str, Any], key: str, at: Any) -> str:
    value = values[key]
    if not isinstance(value, str) or not value.strip():
        raise UsageError(f"{at(key)}: {key} must be a non-empty string, got {value!r}")
    return value.strip()


def _prices(value: Any, where: str) -> tuple[float, float, float]:
    if not isinstance(value, Mapping):
        raise UsageError(f"{where}: prices must be a table {{hit = .., miss = .., output = ..}}")
    unknown = sorted(set(value) - set(_PRICE_KEYS))
    missing = [key for key in _PRICE_KEYS if key not in value]
    if unknown or missing:
        raise UsageError(
            f"{where}: prices takes hit, miss and output (USD per million tokens at peak)"
            + (f"; unknown: {', '.join(unknown)}" if unknown else "")
            + (f"; missing: {', '.join(missing)}" if missing else "")
        )
    numbers = []
    for key in _PRICE_KEYS:
        price = value[key]
        if isinstance(price, bool) or not isinstance(price, (int, float)) or price < 0:
            raise UsageError(f"{where}: prices.{key} must be a number >= 0, got {price!r}")
        numbers.append(float(price))
    return numbers[0], numbers[1], numbers[2]
