"""The judge of ``dscall compare``, simulated: a verdict instead of a summary.

A request whose system prompt is dscall's judge prompt (``config.JUDGE_SYSTEM_PROMPT``) gets
a short reasoning line and a last line with a verdict, A, B or tie, drawn from a hash of the
user message: deterministic (the same request, the same verdict), and unrelated to which
answer is where, so it is a judge with no taste at all and whatever position bias the hash
happens to have; both orders asked is what cancels it. Tests predict it with
``judge_verdict``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Any

from dscall.config import JUDGE_SYSTEM_PROMPT
from dscall.simulator.answers import last_user_text, message_text

VERDICTS = ("A", "B", "tie")


def is_judge(messages: Sequence[dict[str, Any]]) -> bool:
    return bool(messages) and (
        messages[0].get("role") == "system"
        and message_text(messages[0].get("content")) == JUDGE_SYSTEM_PROMPT
    )


def judge_verdict(messages: Sequence[dict[str, Any]]) -> str:
    digest = hashlib.sha256(last_user_text(messages).encode("utf-8", "surrogatepass")).digest()
    return VERDICTS[digest[0] % len(VERDICTS)]


def judge_answer(messages: Sequence[dict[str, Any]]) -> str | None:
    """The judge's answer, or None when ``messages`` are not a judge's."""
    if not is_judge(messages):
        return None
    return f"Both answers address the request.\n{judge_verdict(messages)}"
