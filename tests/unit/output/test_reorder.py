"""``ReorderBuffer``: rows come out in sequence order whatever order they finish in, holes are
skipped or drained over, and the window bounds how far dispatch may run ahead.

Only the buffer's interface is used (assign, full, wait_for_room, put, skip, drain, and the
sink); the rows are plain strings, since the buffer never looks inside them."""

from __future__ import annotations

import asyncio
import random
from typing import Any

import pytest

from dscall.output.rows import ReorderBuffer


def make_buffer(window: int = 100) -> tuple[ReorderBuffer, list[Any]]:
    out: list[Any] = []
    return ReorderBuffer(out.append, window), out


async def settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


def test_sequence_numbers_are_assigned_in_dispatch_order() -> None:
    buffer, _ = make_buffer()
    assert [buffer.assign() for _ in range(4)] == [0, 1, 2, 3]


def test_rows_put_in_order_go_straight_out() -> None:
    buffer, out = make_buffer()
    for name in ("a", "b", "c"):
        buffer.put(buffer.assign(), name)
        assert out[-1] == name
    assert out == ["a", "b", "c"]


def test_rows_put_out_of_order_are_held_until_the_earlier_ones_are_in() -> None:
    buffer, out = make_buffer()
    seqs = [buffer.assign() for _ in range(4)]
    buffer.put(seqs[2], "row2")
    buffer.put(seqs[1], "row1")
    assert out == []
    buffer.put(seqs[0], "row0")
    assert out == ["row0", "row1", "row2"]
    buffer.put(seqs[3], "row3")
    assert out == ["row0", "row1", "row2", "row3"]


@pytest.mark.parametrize("seed", range(5))
def test_any_arrival_order_comes_out_in_sequence_order(seed: int) -> None:
    buffer, out = make_buffer()
    seqs = [buffer.assign() for _ in range(50)]
    arrival = seqs[:]
    random.Random(seed).shuffle(arrival)
    for seq in arrival:
        buffer.put(seq, f"row{seq}")
    assert out == [f"row{seq}" for seq in seqs]


def test_a_skipped_number_lets_the_later_rows_out() -> None:
    buffer, out = make_buffer()
    seqs = [buffer.assign() for _ in range(3)]
    buffer.put(seqs[2], "row2")
    buffer.skip(seqs[0])
    assert out == []  # row1 is still outstanding
    buffer.put(seqs[1], None)  # a row of None is a skip too
    assert out == ["row2"]


def test_the_window_bounds_the_numbers_outstanding() -> None:
    buffer, _ = make_buffer(window=2)
    assert not buffer.full
    first = buffer.assign()
    assert not buffer.full
    second = buffer.assign()
    assert buffer.full
    buffer.put(second, "row1")  # held: it does not free the window
    assert buffer.full
    buffer.put(first, "row0")
    assert not buffer.full


async def test_wait_for_room_returns_at_once_when_there_is_room() -> None:
    buffer, _ = make_buffer(window=2)
    buffer.assign()
    await asyncio.wait_for(buffer.wait_for_room(), timeout=5)


async def test_wait_for_room_wakes_when_the_oldest_row_is_released() -> None:
    buffer, out = make_buffer(window=2)
    first, second = buffer.assign(), buffer.assign()
    waiter = asyncio.ensure_future(buffer.wait_for_room())
    await settle()
    assert not waiter.done()
    buffer.put(second, "row1")  # out of order: still full, the waiter keeps waiting
    await settle()
    assert not waiter.done()
    buffer.put(first, "row0")
    await asyncio.wait_for(waiter, timeout=5)
    assert out == ["row0", "row1"]
    assert not buffer.full


async def test_wait_for_room_wakes_on_a_skip() -> None:
    buffer, _ = make_buffer(window=1)
    seq = buffer.assign()
    waiter = asyncio.ensure_future(buffer.wait_for_room())
    await settle()
    assert not waiter.done()
    buffer.skip(seq)
    await asyncio.wait_for(waiter, timeout=5)


async def test_wait_for_room_keeps_waiting_while_the_window_is_full_again() -> None:
    # Room that another dispatch takes first is no room: the waiter goes back to waiting.
    buffer, _ = make_buffer(window=1)
    first = buffer.assign()
    waiter = asyncio.ensure_future(buffer.wait_for_room())
    await settle()
    buffer.put(first, "row0")
    second = buffer.assign()  # before the waiter runs
    await settle()
    assert not waiter.done()
    buffer.put(second, "row1")
    await asyncio.wait_for(waiter, timeout=5)


def test_drain_releases_what_is_held_in_order_passing_over_holes() -> None:
    buffer, out = make_buffer(window=10)
    seqs = [buffer.assign() for _ in range(6)]
    buffer.put(seqs[4], "row4")
    buffer.put(seqs[2], "row2")
    buffer.put(seqs[3], None)
    buffer.put(seqs[5], "row5")
    assert out == []
    buffer.drain()  # 0 and 1 never came
    assert out == ["row2", "row4", "row5"]
    assert not buffer.full
    buffer.put(buffer.assign(), "row6")  # numbering goes on after the drain
    assert out == ["row2", "row4", "row5", "row6"]
