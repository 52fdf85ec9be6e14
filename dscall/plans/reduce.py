"""The tree of a reduce: a document's answers, in chunk order, in groups that fit one call.

When the answers do not fit one reduce call (``reduce_tokens`` of answers per call), they are
reduced in consecutive groups and the group answers again, level after level, until one answer
remains. A group has at least two answers (otherwise a long answer would never shrink), so
every level is shorter than the one before; a group of one at the end of a level goes up as it
is, without a call. A single answer (a one-chunk document) needs no call at all.
"""

from __future__ import annotations

from dscall.chunking.tokens import estimate_tokens


def group_answers(answers: list[str], budget_tokens: int) -> list[list[str]]:
    """Consecutive groups of ``answers``, each within ``budget_tokens`` (estimated) or of two."""
    groups: list[list[str]] = []
    current: list[str] = []
    used = 0
    for answer in answers:
        tokens = estimate_tokens(answer)
        if current and len(current) >= 2 and used + tokens > budget_tokens:
            groups.append(current)
            current, used = [], 0
        current.append(answer)
        used += tokens
    if current:
        groups.append(current)
    return groups


class ReduceLevel:
    """One level of a document's reduce in progress: which groups still wait for their call."""

    def __init__(self, answers: list[str], budget_tokens: int, depth: int) -> None:
        self.depth = depth
        self.groups = group_answers(answers, budget_tokens)
        # A lone answer goes up as it is; the others wait for their reduce call.
        self.results: list[str | None] = [g[0] if len(g) == 1 else None for g in self.groups]
        self.waiting = sum(1 for group in self.groups if len(group) > 1)
        self.failed = False

    def calls(self) -> list[tuple[int, list[str]]]:
        """The groups that need a call, with their position in the level."""
        return [(i, group) for i, group in enumerate(self.groups) if len(group) > 1]

    def answer(self, position: int, output: str | None) -> bool:
        """Record a group's answer (None: its call failed); True when the level is complete."""
        if output is None:
            self.failed = True
        self.results[position] = output
        self.waiting -= 1
        return self.waiting == 0

    def next_answers(self) -> list[str]:
        return [result for result in self.results if result is not None]
