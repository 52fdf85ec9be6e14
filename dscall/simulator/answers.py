"""Deterministic answers and token counts: pure functions of the request.

The answer to a chat request is built from the chunk in the last user message (see
``chunk_text``): its length in characters and its first and last words. So a test, or a user
looking at a demo's output, can tell which chunk an output belongs to, and the same request
always gets the same answer. Tests call ``expected_answer(messages)`` to know what the
simulator says before asking it. (Characters rather than a word count: counting words means
splitting the whole chunk, which costs more than everything else the simulator does for a
request.) In JSON mode with a schema in the prompt, ``structured`` builds the answer instead.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from dscall.chunking.tokens import estimate_tokens

EDGE_WORDS = 8  # words quoted from each end of the chunk
# ASCII on purpose: the token estimate of an ASCII answer takes a fast path.
ELLIPSIS = " ... "


@dataclass(slots=True)
class Answer:
    """What the model "generated", already cut to ``max_tokens``."""

    content: str
    reasoning: str | None
    finish_reason: str  # "stop" or "length"
    completion_tokens: int  # content + reasoning tokens, as billed
    reasoning_tokens: int


def message_text(content: Any) -> str:
    """The text of a message's ``content``: a string, or the text parts of a parts list."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(
            part.get("text", "") for part in content if isinstance(part, dict)
        )  # image or audio parts carry no text the simulator could summarise
    return ""


def last_user_text(messages: Sequence[dict[str, Any]]) -> str:
    """The last user message's text, or "" when there is none."""
    for message in reversed(messages):
        if message.get("role") == "user":
            return message_text(message.get("content"))
    return ""


def first_user_text(messages: Sequence[dict[str, Any]]) -> str:
    """The first user message's text, or "" when there is none."""
    for message in messages:
        if message.get("role") == "user":
            return message_text(message.get("content"))
    return ""


def chunk_text(messages: Sequence[dict[str, Any]]) -> str:
    """The chunk the answer is about: the last user message after its first blank line, when
    it has one. Prompt templates put the instruction first and the chunk last (dscall's
    default does, for the prefix cache's sake), so quoting the message's first words would
    quote the instruction, the same for every chunk."""
    return chunk_of(last_user_text(messages))


def chunk_of(text: str) -> str:
    """The chunk in a user message's text (see ``chunk_text``)."""
    _, blank, rest = text.partition("\n\n")
    return rest if blank and rest.strip() else text


def prompt_text(messages: Sequence[dict[str, Any]]) -> str:
    """The prompt as one string: role, newline, content, newline per message. Its token
    estimate is the prompt size (the role lines are the per-message overhead) and the prefix
    cache hashes it by position, so a shared leading system prompt is a shared prefix."""
    parts: list[str] = []
    for message in messages:
        parts.append(str(message.get("role", "")))
        parts.append("\n")
        parts.append(message_text(message.get("content")))
        parts.append("\n")
    return "".join(parts)


def count_prompt_tokens(messages: Sequence[dict[str, Any]]) -> int:
    """prompt_tokens as the simulator bills them."""
    return estimate_tokens(prompt_text(messages))


def summary(text: str) -> tuple[str, int]:
    """``("Summary (N chars): first words … last words", N)`` for a chunk's text."""
    count = len(text)
    head = text.split(None, EDGE_WORDS)
    if len(head) <= EDGE_WORDS:  # the whole text is at most EDGE_WORDS words
        quoted = " ".join(head)
    else:
        tail = head[EDGE_WORDS].rsplit(None, EDGE_WORDS)
        if len(tail) <= EDGE_WORDS:  # at most 2 * EDGE_WORDS words: no ellipsis
            quoted = " ".join(head[:EDGE_WORDS] + tail)
        else:
            quoted = " ".join(head[:EDGE_WORDS]) + ELLIPSIS + " ".join(tail[1:])
    return f"Summary ({count} chars): {quoted}", count


def expected_answer(messages: Sequence[dict[str, Any]], *, json_mode: bool = False) -> str:
    """The full answer content for ``messages`` (before any ``max_tokens`` cut)."""
    text, count = summary(chunk_text(messages))
    if json_mode:
        return json.dumps({"summary": text, "chars": count}, ensure_ascii=False)
    return text


def expected_reasoning(messages: Sequence[dict[str, Any]]) -> str:
    """The reasoning_content sent when thinking is enabled (before any ``max_tokens`` cut)."""
    text, count = summary(chunk_text(messages))
    return (
        f"The user wants a summary of an excerpt of {count} characters. "
        f"I will state its length and quote how it begins and ends. {text}"
    )


def build_answer(
    messages: Sequence[dict[str, Any]],
    *,
    json_mode: bool = False,
    thinking: bool = False,
    max_tokens: int | None = None,
    content: str | None = None,
) -> Answer:
    """The answer, with reasoning when ``thinking``, cut to ``max_tokens`` (which, as on
    DeepSeek, covers reasoning and content together). ``content``: the full answer when the
    caller built it (one that follows a schema), instead of ``expected_answer``'s."""
    budget = max_tokens
    reasoning: str | None = None
    reasoning_tokens = 0
    finish = "stop"
    if thinking:
        reasoning, reasoning_tokens, cut = cut_to_tokens(expected_reasoning(messages), budget)
        if cut:
            return Answer("", reasoning, "length", reasoning_tokens, reasoning_tokens)
        if budget is not None:
            budget -= reasoning_tokens
    if content is None:
        content = expected_answer(messages, json_mode=json_mode)
    content, content_tokens, cut = cut_to_tokens(content, budget)
    if cut:
        finish = "length"
    return Answer(content, reasoning, finish, content_tokens + reasoning_tokens, reasoning_tokens)


def cut_to_tokens(text: str, budget: int | None) -> tuple[str, int, bool]:
    """``(text, tokens, was_cut)``: the longest prefix of ``text`` within ``budget`` tokens."""
    tokens = estimate_tokens(text)
    if budget is None or tokens <= budget:
        return text, tokens, False
    if budget <= 0:
        return "", 0, True
    # Start from the proportional length, then step to the longest prefix that fits: estimates
    # are monotone in length, and mixed scripts make the proportion only a first guess.
    end = min(len(text), len(text) * budget // tokens + 1)
    while end > 0 and estimate_tokens(text[:end]) > budget:
        end -= 1
    while end < len(text) and estimate_tokens(text[: end + 1]) <= budget:
        end += 1
    cut = text[:end]
    return cut, estimate_tokens(cut), True
