"""One stored answer of the result cache: a ``CallResponse`` as JSON bytes, and back.

JSON, never pickle (see ``cache_store``). Every value carries a format number ``v``: a value
written by a newer dscall (a higher ``v``) is left alone and read as a miss, while anything else
that does not decode to exactly the fields below is ``CorruptEntry``, which the cache deletes.
"""

from __future__ import annotations

from typing import Any

from dscall import jsonio
from dscall.types import CallResponse, Usage

_FORMAT = 1  # the "v" of every stored value; a newer dscall may write a higher one


class CorruptEntry(Exception):
    """A stored value that is not a response of this format (the field that gave it away)."""


def encode_entry(response: CallResponse) -> bytes:
    usage = response.usage
    return jsonio.dumps(
        {
            "v": _FORMAT,
            "output": response.output,
            "finish_reason": response.finish_reason,
            "response_model": response.response_model,
            "usage": {
                "prompt_tokens": usage.prompt_tokens,
                "completion_tokens": usage.completion_tokens,
                "cache_hit_tokens": usage.cache_hit_tokens,
                "cache_miss_tokens": usage.cache_miss_tokens,
            },
            "reasoning": response.reasoning,
            "status": response.status,
        }
    )


def _field(doc: dict[str, Any], key: str, kind: type) -> Any:
    value = doc.get(key)
    if type(value) is not kind:
        raise CorruptEntry(key)
    return value


def decode_entry(data: object) -> CallResponse | None:
    """The stored response; None for a format from a newer dscall; ``CorruptEntry`` otherwise."""
    if type(data) is not bytes:
        raise CorruptEntry("not bytes")
    try:
        doc = jsonio.loads(data)
    except ValueError as exc:
        raise CorruptEntry("not JSON") from exc
    if type(doc) is not dict:
        raise CorruptEntry("not an object")
    version = doc.get("v")
    if type(version) is int and version > _FORMAT:
        return None
    if version != _FORMAT:
        raise CorruptEntry("version")
    usage = _field(doc, "usage", dict)
    reasoning = doc.get("reasoning")
    if reasoning is not None and type(reasoning) is not str:
        raise CorruptEntry("reasoning")
    return CallResponse(
        output=_field(doc, "output", str),
        finish_reason=_field(doc, "finish_reason", str),
        response_model=_field(doc, "response_model", str),
        usage=Usage(
            _field(usage, "prompt_tokens", int),
            _field(usage, "completion_tokens", int),
            _field(usage, "cache_hit_tokens", int),
            _field(usage, "cache_miss_tokens", int),
        ),
        reasoning=reasoning,
        status=_field(doc, "status", int),
    )
