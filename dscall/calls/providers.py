"""Provider profiles (SPEC §4, §11): what one kind of endpoint accepts and reports.

``deepseek`` gets DeepSeek's ``thinking`` field, reports cache hits as
``prompt_cache_hit_tokens``/``prompt_cache_miss_tokens`` and offers ``GET /user/balance``.
``openai`` is any other OpenAI-compatible endpoint (OpenAI itself, LiteLLM, vLLM, Ollama): only
standard fields are sent, since OpenAI and LiteLLM answer 400 to a field they do not know, and
cached tokens come from ``prompt_tokens_details.cached_tokens``; there is no balance call.

Detection (``resolve``, for ``--provider auto``) looks at the host only, so that the request
bodies, and with them the cache keys, never depend on a network answer (a dry run asks nothing):

    --mock                                  deepseek (the in-process simulator)
    api.deepseek.com, *.deepseek.com        deepseek
    loopback (127.0.0.0/8, ::1, localhost)  deepseek: ``dscall mock-server`` is the usual local
                                            endpoint; a local proxy needs --provider openai,
                                            and its first 400 says so (UnsupportedParameter)
    anything else                           openai
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from dscall.config import CallSettings, ProviderChoice
from dscall.errors import UsageError
from dscall.types import Usage


def is_loopback(host: str) -> bool:
    if host in ("localhost", "localhost."):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _deepseek_usage(raw: dict[str, Any]) -> Usage:
    prompt = int(raw.get("prompt_tokens") or 0)
    hit = int(raw.get("prompt_cache_hit_tokens") or 0)
    miss = raw.get("prompt_cache_miss_tokens")
    return Usage(
        prompt_tokens=prompt,
        completion_tokens=int(raw.get("completion_tokens") or 0),
        cache_hit_tokens=hit,
        cache_miss_tokens=int(miss) if miss is not None else max(prompt - hit, 0),
    )


def _openai_usage(raw: dict[str, Any]) -> Usage:
    prompt = int(raw.get("prompt_tokens") or 0)
    details = raw.get("prompt_tokens_details")
    hit = int(details.get("cached_tokens") or 0) if isinstance(details, dict) else 0
    return Usage(
        prompt_tokens=prompt,
        completion_tokens=int(raw.get("completion_tokens") or 0),
        cache_hit_tokens=hit,
        cache_miss_tokens=max(prompt - hit, 0),
    )


@dataclass(frozen=True, slots=True)
class Provider:
    """One kind of endpoint: which non-standard fields it gets and how its usage reads."""

    name: str
    sends_thinking: bool
    has_balance: bool
    read_usage: Callable[[dict[str, Any]], Usage]


DEEPSEEK = Provider("deepseek", sends_thinking=True, has_balance=True, read_usage=_deepseek_usage)
OPENAI = Provider("openai", sends_thinking=False, has_balance=False, read_usage=_openai_usage)
PROVIDERS: dict[str, Provider] = {p.name: p for p in (DEEPSEEK, OPENAI)}


def detect(base_url: str, mock: bool) -> Provider:
    """The profile ``--provider auto`` picks for ``base_url`` (see the module docstring)."""
    if mock:
        return DEEPSEEK
    host = (urlsplit(base_url.strip()).hostname or "").lower().rstrip(".")
    if host == "deepseek.com" or host.endswith(".deepseek.com") or is_loopback(host):
        return DEEPSEEK
    return OPENAI


def by_name(choice: ProviderChoice | str, base_url: str, mock: bool) -> Provider:
    if choice == "auto":
        return detect(base_url, mock)
    try:
        return PROVIDERS[choice]
    except KeyError:
        raise UsageError(f"--provider must be auto, deepseek or openai, got {choice!r}") from None


def resolve(call: CallSettings, mock: bool) -> Provider:
    """The run's profile: ``--provider`` when given, else detected from the base URL."""
    return by_name(call.provider, call.base_url, mock)


# How servers name a request field they do not accept, in a 400's message:
#   LiteLLM  "UnsupportedParamsError: openai does not support parameters: ['thinking'], ..."
#   OpenAI   "Unrecognized request argument supplied: thinking"
#            "Unknown parameter: 'thinking'." / "Unsupported parameter: 'max_tokens' is ..."
_LIST_OF_NAMES = re.compile(r"does not support param(?:eter)?s?:?\s*\[([^\]]*)\]", re.I)
_ONE_NAME = re.compile(
    r"(?:unrecognized request arguments? supplied|unknown parameter|unsupported parameter)"
    r":?\s*['\"`]?([A-Za-z_][A-Za-z0-9_.]*)",
    re.I,
)
# What turns each field dscall may send off.
_TURNED_OFF_BY = {
    "thinking": "send standard fields only with --provider openai",
    "response_format": "drop --json/--schema",
    "temperature": "drop --temperature",
}


def unsupported_parameter(message: str) -> str | None:
    """The request field a 400's ``message`` says the endpoint rejects, if it names one."""
    listed = _LIST_OF_NAMES.search(message)
    if listed is not None:
        names = re.findall(r"[A-Za-z_][A-Za-z0-9_.]*", listed.group(1))
        return names[0] if names else None
    one = _ONE_NAME.search(message)
    return one.group(1) if one is not None else None


def unsupported_hint(parameter: str) -> str:
    """How to stop sending ``parameter``, as the end of a one-line message."""
    top = parameter.split(".")[0]
    return _TURNED_OFF_BY.get(top, f"no dscall option leaves {top!r} out of the request")
