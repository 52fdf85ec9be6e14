"""The pure parts of `dscall compare`: the sample, verdicts, their combination, the interval."""

from __future__ import annotations

import pytest

from dscall.compare.judge import combine, parse_verdict, preference, wilson
from dscall.compare.report import percentile
from dscall.compare.sample import draw_sample

COUNTS = [("a.txt", 5), ("b.txt", 1), ("c.txt", 3), ("empty.txt", 0)]


def test_the_sample_is_stable_spread_and_bounded() -> None:
    first = draw_sample(COUNTS, 4, seed=7)
    assert draw_sample(list(reversed(COUNTS)), 4, seed=7) == first  # not the input order
    assert len(first.picked) == 4
    assert first.documents == 3  # round robin: every document before a second chunk of one
    assert first.available == 9
    assert draw_sample(COUNTS, 100, seed=7).picked == {
        (path, i) for path, count in COUNTS for i in range(count)
    }
    seeds = {draw_sample(COUNTS, 4, seed=seed).order for seed in range(10)}
    assert len(seeds) > 1


def test_adding_a_document_keeps_the_chunks_picked_inside_the_others() -> None:
    before = draw_sample(COUNTS, 9, seed=1)
    after = draw_sample([*COUNTS, ("d.txt", 2)], 11, seed=1)
    assert before.picked <= after.picked


@pytest.mark.parametrize(
    ("answer", "verdict"),
    [
        ("A", "A"),
        ("b", "B"),
        ("Tie.", "tie"),
        ("**A**", "A"),
        ("Both are fine, but the second is more exact.\nVerdict: B", "B"),
        ("A is better because B omits the year.", None),
        ("", None),
        ("Summary (120 chars): ...", None),
    ],
)
def test_verdicts_are_read_from_the_whole_answer_or_its_last_line(
    answer: str, verdict: str | None
) -> None:
    assert parse_verdict(answer) == verdict


@pytest.mark.parametrize(
    ("ab", "ba", "outcome"),
    [
        ("A", "B", "win"),  # X preferred in both orders
        ("B", "A", "loss"),
        ("A", "A", "tie"),  # the position won both times: it cancels
        ("A", "tie", "win"),
        ("tie", "tie", "tie"),
        ("A", None, None),  # an unreadable verdict: not a tie
    ],
)
def test_both_orders_make_one_judgement(ab: str, ba: str | None, outcome: str | None) -> None:
    first = preference(ab, first_is_a=True)  # type: ignore[arg-type]
    second = preference(ba, first_is_a=False)  # type: ignore[arg-type]
    assert combine(first, second) == outcome


def test_wilson_interval() -> None:
    assert wilson(0, 0) is None
    low, high = wilson(8, 10)  # type: ignore[misc]
    assert low == pytest.approx(0.4902, abs=1e-4)
    assert high == pytest.approx(0.9433, abs=1e-4)
    low, high = wilson(0, 5)  # type: ignore[misc]
    assert low == 0.0
    assert 0 < high < 0.5


def test_nearest_rank_percentiles() -> None:
    assert percentile([], 0.5) is None
    assert percentile([3.0, 1.0, 2.0], 0.5) == 2.0
    assert percentile([float(i) for i in range(1, 101)], 0.95) == 95.0
