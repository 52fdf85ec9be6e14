"""The wire format: request validation, and every body the simulator sends, as bytes.

Shapes follow DeepSeek's documented API (itself OpenAI's chat-completions format plus
``reasoning_content`` and the ``prompt_cache_hit_tokens``/``prompt_cache_miss_tokens`` usage
fields). Errors use the OpenAI-style ``{"error": {"message", "type", "param", "code"}}``.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from dscall.simulator.answers import Answer

_orjson: Any
try:
    import orjson as _orjson
except ImportError:  # pragma: no cover - the `fast` extra is not installed
    _orjson = None

dumps: Callable[[Any], bytes]
loads: Callable[[bytes], Any]
if _orjson is not None:
    dumps = _orjson.dumps
    loads = _orjson.loads
else:  # pragma: no cover

    def dumps(value: Any) -> bytes:
        return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()

    def loads(data: bytes) -> Any:
        return json.loads(data)


ROLES = frozenset({"system", "user", "assistant", "tool"})
FINGERPRINT = "fp_dscall_sim"
INSUFFICIENT_REASON = "insufficient_system_resource"
SSE_DONE = b"data: [DONE]\n\n"
SSE_KEEPALIVE = b": keep-alive\n\n"
# The simulator prices every billed token at this rate when it reports its balance in USD: high
# enough that a test's balance of a few thousand tokens does not show as $0.00.
USD_PER_1K_TOKENS = 1.0
UNLIMITED_BALANCE_USD = "100.00"

# The request fields of OpenAI's chat-completions API. With ``reject_unknown_fields`` any other
# (DeepSeek's ``thinking``, say) gets the 400 OpenAI and LiteLLM give it.
STANDARD_FIELDS = frozenset(
    {
        "model", "messages", "stream", "stream_options", "max_tokens", "max_completion_tokens",
        "temperature", "top_p", "n", "stop", "presence_penalty", "frequency_penalty",
        "logit_bias", "logprobs", "top_logprobs", "response_format", "seed", "tools",
        "tool_choice", "parallel_tool_calls", "user", "metadata", "store", "modalities",
        "audio", "prediction", "reasoning_effort", "service_tier", "functions", "function_call",
    }
)  # fmt: skip

_ERROR_TYPES = {
    400: ("invalid_request_error", "Invalid Format"),
    401: ("authentication_error", "Authentication Fails (no such user)"),
    402: ("unknown_error", "Insufficient Balance"),
    404: ("invalid_request_error", "Not Found"),
    405: ("invalid_request_error", "Method Not Allowed"),
    413: ("invalid_request_error", "Request Entity Too Large"),
    422: ("invalid_request_error", "Invalid Parameters"),
    429: ("rate_limit_error", "Rate Limit Reached"),
    500: ("api_error", "Server Error"),
    503: ("service_unavailable_error", "Server Overloaded"),
}


class ProtocolError(Exception):
    """A request the API rejects: ``status`` (400 or 422) and a message for the client."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


@dataclass(slots=True)
class ChatRequest:
    model: str
    messages: list[dict[str, Any]]
    stream: bool
    include_usage: bool
    json_mode: bool
    thinking: bool
    max_tokens: int | None


def parse_request(body: bytes, reject_unknown: bool = False) -> ChatRequest:
    """Validate a chat-completions body: 400 when it is not a JSON object (or, with
    ``reject_unknown``, carries a field outside ``STANDARD_FIELDS``), 422 when a parameter is
    missing, of the wrong type, or out of range."""
    try:
        payload = loads(body)
    except ValueError as exc:
        raise ProtocolError(400, f"Invalid Format: request body is not valid JSON ({exc})") from exc
    if not isinstance(payload, dict):
        raise ProtocolError(400, "Invalid Format: request body must be a JSON object")
    unknown = sorted(set(payload) - STANDARD_FIELDS) if reject_unknown else []
    if unknown:
        # LiteLLM's wording; OpenAI's ("Unrecognized request argument supplied: thinking")
        # names the field the same way.
        raise ProtocolError(
            400,
            f"litellm.UnsupportedParamsError: openai does not support parameters: {unknown}, "
            f"for model={payload.get('model')}. To drop these, set `litellm.drop_params=True`",
        )
    model = payload.get("model")
    if not isinstance(model, str) or not model:
        raise ProtocolError(422, "Invalid Parameters: `model` is required (a string)")
    messages = payload.get("messages")
    if not isinstance(messages, list) or not messages:
        raise ProtocolError(422, "Invalid Parameters: `messages` must be a non-empty list")
    for message in messages:
        if not isinstance(message, dict) or message.get("role") not in ROLES:
            raise ProtocolError(422, "Invalid Parameters: each message needs a valid `role`")
        content = message.get("content")
        if not isinstance(content, (str, list)) and not (
            content is None and message["role"] == "assistant"
        ):
            raise ProtocolError(422, "Invalid Parameters: message `content` must be a string")
    max_tokens = payload.get("max_tokens")
    if max_tokens is not None and (type(max_tokens) is not int or max_tokens < 1):
        raise ProtocolError(422, "Invalid Parameters: `max_tokens` must be an integer >= 1")
    _check_number(payload, "temperature", 0.0, 2.0)
    _check_number(payload, "top_p", 0.0, 1.0)
    _check_number(payload, "presence_penalty", -2.0, 2.0)
    _check_number(payload, "frequency_penalty", -2.0, 2.0)
    stream = payload.get("stream", False)
    if not isinstance(stream, bool):
        raise ProtocolError(422, "Invalid Parameters: `stream` must be a boolean")
    options = payload.get("stream_options") or {}
    if not isinstance(options, dict):
        raise ProtocolError(422, "Invalid Parameters: `stream_options` must be an object")
    return ChatRequest(
        model=model,
        messages=messages,
        stream=stream,
        include_usage=bool(options.get("include_usage")),
        json_mode=_choice(payload, "response_format", ("text", "json_object")) == "json_object",
        # V4 models think by default on DeepSeek; the simulator thinks only when asked, so that
        # a client's default bill is predictable.
        thinking=_choice(payload, "thinking", ("enabled", "disabled")) == "enabled",
        max_tokens=max_tokens,
    )


def _check_number(payload: dict[str, Any], name: str, low: float, high: float) -> None:
    value = payload.get(name)
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not low <= value <= high:
        raise ProtocolError(422, f"Invalid Parameters: `{name}` must be in [{low:g}, {high:g}]")


def _choice(payload: dict[str, Any], name: str, allowed: tuple[str, ...]) -> str | None:
    value = payload.get(name)
    if value is None:
        return None
    kind = value.get("type") if isinstance(value, dict) else None
    if kind not in allowed:
        raise ProtocolError(
            422, f"Invalid Parameters: `{name}.type` must be one of {', '.join(allowed)}"
        )
    return str(kind)


def error_body(status: int, message: str | None = None) -> bytes:
    kind, default = _ERROR_TYPES.get(status, ("api_error", f"HTTP {status}"))
    return dumps(
        {
            "error": {
                "message": message or default,
                "type": kind,
                "param": None,
                "code": "invalid_request_error" if status < 500 else kind,
            }
        }
    )


def usage(prompt: int, hit: int, answer: Answer) -> dict[str, Any]:
    completion = answer.completion_tokens
    result: dict[str, Any] = {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
        "prompt_tokens_details": {"cached_tokens": hit},
        "prompt_cache_hit_tokens": hit,
        "prompt_cache_miss_tokens": prompt - hit,
    }
    if answer.reasoning is not None:
        result["completion_tokens_details"] = {"reasoning_tokens": answer.reasoning_tokens}
    return result


def completion_body(
    ident: str, created: int, model: str, answer: Answer, usage_info: dict[str, Any]
) -> bytes:
    message: dict[str, Any] = {"role": "assistant", "content": answer.content}
    if answer.reasoning is not None:
        message["reasoning_content"] = answer.reasoning
    return dumps(
        {
            "id": ident,
            "object": "chat.completion",
            "created": created,
            "model": model,
            "choices": [
                {
                    "index": 0,
                    "message": message,
                    "logprobs": None,
                    "finish_reason": answer.finish_reason,
                }
            ],
            "usage": usage_info,
            "system_fingerprint": FINGERPRINT,
        }
    )


def stream_events(
    ident: str, created: int, model: str, answer: Answer, usage_info: dict[str, Any] | None
) -> list[bytes]:
    """The SSE events of a streamed answer, ``data: [DONE]`` included. Usage rides on the
    chunk that carries finish_reason, as DeepSeek sends it."""
    head = {"id": ident, "object": "chat.completion.chunk", "created": created, "model": model}

    def event(delta: dict[str, Any], finish: str | None = None, **extra: Any) -> bytes:
        choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}
        return b"data: " + dumps({**head, "choices": [choice], **extra}) + b"\n\n"

    events = [event({"role": "assistant", "content": ""})]
    if answer.reasoning is not None:
        events.extend(event({"reasoning_content": p}) for p in _pieces(answer.reasoning))
    events.extend(event({"content": p}) for p in _pieces(answer.content))
    extra = {"usage": usage_info} if usage_info is not None else {}
    events.append(event({"content": ""}, answer.finish_reason, **extra))
    events.append(SSE_DONE)
    return events


def _pieces(text: str) -> Iterator[str]:
    """A word (with its following space) per event, roughly a token or two as a model sends."""
    words = text.split(" ")
    for word in words[:-1]:
        yield word + " "
    if words[-1]:
        yield words[-1]


def models_body(models: tuple[str, ...]) -> bytes:
    return dumps(
        {
            "object": "list",
            "data": [{"id": m, "object": "model", "owned_by": "deepseek"} for m in models],
        }
    )


def balance_body(remaining_tokens: int | None) -> bytes:
    """DeepSeek's GET /user/balance shape; an unlimited simulator reports a fixed sum."""
    if remaining_tokens is None:
        total, available = UNLIMITED_BALANCE_USD, True
    else:
        total, available = (
            f"{remaining_tokens / 1000 * USD_PER_1K_TOKENS:.2f}",
            remaining_tokens > 0,
        )
    return dumps(
        {
            "is_available": available,
            "balance_infos": [
                {
                    "currency": "USD",
                    "total_balance": total,
                    "granted_balance": "0.00",
                    "topped_up_balance": total,
                }
            ],
        }
    )
