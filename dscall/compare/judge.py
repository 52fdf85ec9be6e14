"""The LLM judge: its prompt, its verdicts, and win/tie/loss with a 95% interval.

For each pair of variants (X, Y) and each sampled chunk the judge is asked twice, with X's
answer as A and Y's as B, then the other way round, so that a judge that favours a position
favours both variants alike. The two verdicts make one judgement of the chunk: +1 for each
verdict that prefers X, -1 for each that prefers Y, 0 for a tie; a positive sum is a win for
X, a negative one a loss, zero a tie (so a judge that says "A" both times, contradicting
itself, gives a tie). A verdict that cannot be read (``parse_verdict`` gives None), or a
judge call that failed, leaves the chunk out of the pair's counts: it is counted as
``invalid``, never as a tie, so a judge that does not follow its instructions shows.

The interval is Wilson's score interval for the win share among decisive judgements (wins
over wins plus losses; ties left out), at 95% (z = 1.96): unlike the normal approximation it
stays inside [0, 1] and is usable for the small samples a comparison runs on.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Literal

from dscall.calls.request import PromptTemplate
from dscall.errors import UsageError

Verdict = Literal["A", "B", "tie"]
JUDGE_PLACEHOLDERS = ("question", "answer_a", "answer_b")
Z_95 = 1.96
# The whole answer, or its last line: "A", "b.", "Verdict: tie", "**A**".
_VERDICT = re.compile(r"^[\W_]*(?:verdict\s*[:=-]?\s*)?[\W_]*(a|b|tie)[\W_]*$", re.IGNORECASE)


def judge_template(text: str, where: str) -> PromptTemplate:
    """The judge's template; each of {question} {answer_a} {answer_b} must be in it."""
    template = PromptTemplate.parse(text, where, known=JUDGE_PLACEHOLDERS, body=None)
    missing = [name for name in JUDGE_PLACEHOLDERS if name not in template.names]
    if missing:
        shown = " ".join("{" + name + "}" for name in missing)
        raise UsageError(f"{where} lacks {shown}: the judge must see the question and both answers")
    return template


def parse_verdict(answer: str) -> Verdict | None:
    """ "A", "B" or "tie" from the judge's answer (the whole of it, or its last line)."""
    lines = [line for line in answer.strip().splitlines() if line.strip()]
    for candidate in (answer.strip(), lines[-1] if lines else ""):
        match = _VERDICT.match(candidate.strip())
        if match is not None:
            word = match.group(1).lower()
            return "tie" if word == "tie" else ("A" if word == "a" else "B")
    return None


def preference(verdict: Verdict | None, first_is_a: bool) -> int | None:
    """+1 when the verdict prefers the pair's first variant, -1 its second, 0 a tie."""
    if verdict is None:
        return None
    if verdict == "tie":
        return 0
    return 1 if (verdict == "A") == first_is_a else -1


def combine(ab: int | None, ba: int | None) -> Literal["win", "tie", "loss"] | None:
    """One chunk's judgement from both orders (see the module docstring)."""
    if ab is None or ba is None:
        return None
    total = ab + ba
    return "win" if total > 0 else ("loss" if total < 0 else "tie")


def wilson(successes: int, trials: int, z: float = Z_95) -> tuple[float, float] | None:
    """Wilson's score interval for ``successes`` of ``trials``; None without trials."""
    if trials <= 0:
        return None
    p = successes / trials
    denominator = 1 + z * z / trials
    centre = (p + z * z / (2 * trials)) / denominator
    half = z * math.sqrt(p * (1 - p) / trials + z * z / (4 * trials * trials)) / denominator
    return max(0.0, centre - half), min(1.0, centre + half)


@dataclass(slots=True)
class PairTally:
    """Win/tie/loss of ``first`` against ``second`` over the judged chunks."""

    first: str
    second: str
    win: int = 0
    tie: int = 0
    loss: int = 0
    invalid: int = 0

    def add(self, outcome: Literal["win", "tie", "loss"] | None) -> None:
        if outcome is None:
            self.invalid += 1
        elif outcome == "win":
            self.win += 1
        elif outcome == "tie":
            self.tie += 1
        else:
            self.loss += 1

    def as_dict(self) -> dict[str, object]:
        decisive = self.win + self.loss
        interval = wilson(self.win, decisive)
        return {
            "a": self.first,
            "b": self.second,
            "win": self.win,
            "tie": self.tie,
            "loss": self.loss,
            "invalid": self.invalid,
            "win_share": self.win / decisive if decisive else None,
            "win_share_95": list(interval) if interval is not None else None,
        }
