"""JSON in one place: orjson when installed (the ``fast`` extra), the standard library otherwise.

``dumps_canonical`` is what request hashes are computed over: sorted keys, no insignificant
whitespace, non-ASCII kept as UTF-8. Both back ends produce the same bytes for the values dscall
hashes (strings, ints, bools, None, and short decimal floats).
"""

from __future__ import annotations

import json
from typing import Any

_orjson: Any
try:
    import orjson as _orjson
except ImportError:  # pragma: no cover - exercised only without the fast extra
    _orjson = None

JSONDecodeError: tuple[type[Exception], ...] = (ValueError,)  # orjson and json both subclass it


if _orjson is not None:
    _SORT = _orjson.OPT_SORT_KEYS

    def dumps_canonical(value: Any) -> bytes:
        # orjson's bytes keep the capacity it grew to (64 KB for a 4.6 KB request body, seen
        # with orjson 3.13 under tracemalloc); a request body lives until its answer, and
        # thousands wait for a slot at once, so it is copied to its size (~0.7 us).
        return bytes(memoryview(_orjson.dumps(value, option=_SORT)))

    def dumps(value: Any) -> bytes:
        data: bytes = _orjson.dumps(value)
        return data

    def loads(data: bytes | str) -> Any:
        return _orjson.loads(data)

else:  # pragma: no cover

    def dumps_canonical(value: Any) -> bytes:
        return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()

    def dumps(value: Any) -> bytes:
        return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()

    def loads(data: bytes | str) -> Any:
        return json.loads(data)
