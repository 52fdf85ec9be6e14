"""A simulated DeepSeek prefix cache (context caching on disk, in DeepSeek's words).

DeepSeek caches prompts in 64-token units: the leading units a request shares with an earlier
request are billed as cache hits. Here a unit is a fixed run of characters (64 tokens at the
rule of thumb's 0.3 token per Latin character) and each unit is keyed by a hash combining it with
every unit before it, so a key stands for a whole prefix. Only full units count, as on
DeepSeek.

Memory is bounded with two generations instead of an exact LRU: keys go into the young
generation; when it is full it becomes the old one and the previous old one is dropped. A key
used in either survives into the young one. That keeps every step a bulk set operation in C
(a per-key ``move_to_end`` cost more than the rest of the request).
"""

from __future__ import annotations

import struct
from itertools import accumulate, count
from operator import xor

UNIT_TOKENS = 64
# 64 tokens at 0.3 token per Latin character. CJK text (0.6 per character) gets units of twice
# the tokens; the hit count is capped at the prompt size so it never exceeds what is billed.
UNIT_CHARS = 213


class PrefixCache:
    """Remembers prompt prefixes; ``hit_tokens`` answers and records in one pass."""

    __slots__ = ("_generation", "_old", "_young")

    def __init__(self, capacity: int) -> None:
        self._generation = max(capacity // 2, 0)
        self._young: set[int] = set()
        self._old: set[int] = set()

    def __len__(self) -> int:
        return len(self._young) + len(self._old)

    def hit_tokens(self, text: str, prompt_tokens: int) -> int:
        """Tokens of ``text``'s prefix already seen (in whole units, at most
        ``prompt_tokens``); every full-unit prefix of ``text`` is remembered afterwards."""
        if not self._generation:
            return 0
        # Key of the prefix ending with unit k: the XOR of hash((position, unit)) over units up
        # to k; the position makes it order-sensitive. Every step runs in C (one struct unpack
        # cuts all the units, no Python-level loop): this was the costliest part of a request
        # after aiohttp's own work. Python's hash is salted per process, which is fine for a
        # cache that lives in one process.
        keys = list(accumulate(map(hash, zip(count(), _units(text))), xor))
        young, old = self._young, self._old
        hits = 0
        for key in keys:
            if key not in young and key not in old:
                break
            hits += 1
        young.update(keys)
        if len(young) >= self._generation:
            self._old, self._young = young, set()
        return min(hits * UNIT_TOKENS, prompt_tokens)

    def clear(self) -> None:
        self._young = set()
        self._old = set()


_UNPACKERS: dict[tuple[int, int], struct.Struct] = {}


def _units(text: str) -> tuple[bytes, ...]:
    """The full units of ``text`` as bytes: ASCII as is, anything else as UTF-32 so that a unit
    is still exactly UNIT_CHARS characters."""
    if text.isascii():
        data, width = text.encode("ascii"), 1
    else:
        data, width = text.encode("utf-32-le"), 4
    shape = (len(text) // UNIT_CHARS, width)
    unpacker = _UNPACKERS.get(shape)
    if unpacker is None:
        unpacker = _UNPACKERS[shape] = struct.Struct(f"{UNIT_CHARS * width}s" * shape[0])
    units: tuple[bytes, ...] = unpacker.unpack_from(data)
    return units
