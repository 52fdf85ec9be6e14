"""What the simulator will do with one chat request, decided at once and synchronously.

Deciding up front (auth, validation, balance, limits, fault draw, the answer's bytes) and only
then waiting (latency, keep-alive, generation) means a request held for seconds keeps nothing
but its answer: the request body, the parsed JSON and the prompt are freed before the wait.
With 10,000 requests in flight that is the difference between fitting in memory or not.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

from dscall.chunking.tokens import estimate_tokens
from dscall.simulator import faults, judge, structured
from dscall.simulator.answers import Answer, build_answer, prompt_text
from dscall.simulator.config import SimulatorConfig
from dscall.simulator.prefix_cache import PrefixCache
from dscall.simulator.protocol import (
    INSUFFICIENT_REASON,
    ProtocolError,
    completion_body,
    error_body,
    parse_request,
    stream_events,
    usage,
)
from dscall.simulator.stats import Stats


@dataclass(slots=True)
class Plan:
    """The answer to one request and how to deliver it."""

    status: int
    chunks: list[bytes]  # the body; one SSE event each when streaming; see ``drop``
    retry_after: int | None = None
    admitted: bool = False  # counts against --max-concurrency while it is delivered
    stream: bool = False
    drop: bool = False  # send all chunks but the last, then close the connection
    stall: bool = False  # send nothing at all
    delay: float = 0.0  # seconds before the first byte of the answer
    generation: float = 0.0  # seconds spread over the chunks (tokens at tokens_per_second)
    billing: tuple[int, int, int, int] | None = None  # prompt, completion, hit, reasoning


def error_plan(status: int, message: str | None = None, retry_after: int | None = None) -> Plan:
    return Plan(status, [error_body(status, message)], retry_after)


class Planner:
    """Turns a request into a ``Plan``, updating the prefix cache, the rpm window and the
    fault counters as it goes."""

    def __init__(self, stats: Stats, prefix_cache_entries: int) -> None:
        self.stats = stats
        self.prefix = PrefixCache(prefix_cache_entries)
        self.rpm = faults.RpmWindow()

    def plan(
        self,
        config: SimulatorConfig,
        authorized: bool,
        body: bytes,
        digest: bytes,
        attempt: int,
        admitted: int,
        now: float,
    ) -> Plan:
        """The plan for one attempt; ``admitted`` is how many requests are being served."""
        if not authorized:
            return error_plan(401)
        try:
            chat = parse_request(body, config.reject_unknown_fields)
        except ProtocolError as exc:
            return error_plan(exc.status, str(exc))
        if config.strict_models and chat.model not in config.models:
            return error_plan(400, "Model Not Exist")
        balance = config.balance_tokens
        if balance is not None and self.stats.tokens_billed >= balance:
            return error_plan(402)
        counted = self.stats.faults
        if config.max_concurrency is not None and admitted >= config.max_concurrency:
            counted["concurrency_429"] += 1
            return error_plan(429, retry_after=config.retry_after_s)
        wait = self.rpm.admit(now, config.rpm)
        if wait is not None:
            # An honest Retry-After: when a slot of the rolling minute frees (at least the
            # configured value).
            counted["rpm_429"] += 1
            return error_plan(429, retry_after=max(config.retry_after_s, math.ceil(wait)))

        fault_draw, jitter_draw = faults.draws(config.seed, digest, attempt)
        fault = faults.choose_fault(config, fault_draw)
        delay = faults.latency_s(config, jitter_draw)
        if fault is not None:
            counted[f"status_{fault}" if isinstance(fault, int) else fault] += 1
        if fault == faults.STALL:
            return Plan(0, [], admitted=True, stall=True)
        if isinstance(fault, int):
            retry_after = config.retry_after_s if fault == 429 else None
            if fault == 503:
                retry_after = config.fail_retry_after_s
            plan = error_plan(fault, retry_after=retry_after)
            plan.admitted, plan.delay = True, delay
            return plan

        text = prompt_text(chat.messages)
        prompt_tokens = estimate_tokens(text)
        hit = self.prefix.hit_tokens(text, prompt_tokens)
        if fault == faults.INSUFFICIENT:
            answer = Answer("", None, INSUFFICIENT_REASON, 0, 0)
        else:
            content = None
            if chat.json_mode:
                made = structured.schema_answer(
                    chat.messages, config.schema_violations, config.seed, digest
                )
                if made is not None:
                    content, violation = made
                    if fault is None:  # counted as answers the client can read, like billing
                        self.stats.schema_answers += 1
                        if violation is not None:
                            self.stats.schema_violations[violation] += 1
            if content is None:
                content = judge.judge_answer(chat.messages)
            answer = build_answer(
                chat.messages,
                json_mode=chat.json_mode,
                thinking=chat.thinking,
                max_tokens=chat.max_tokens,
                content=content,
            )
        ident = f"chatcmpl-{digest[:12].hex()}{attempt:02x}"
        created = int(time.time())
        usage_info = usage(prompt_tokens, hit, answer)
        if chat.stream:
            shown = usage_info if chat.include_usage else None
            self.stats.streams += 1
            chunks = _stream_fault(stream_events(ident, created, chat.model, answer, shown), fault)
        else:
            chunks = _body_fault(
                completion_body(ident, created, chat.model, answer, usage_info), fault
            )
        billing = None
        if fault is None:  # faults are never billed: the client got no usable answer
            billing = (prompt_tokens, answer.completion_tokens, hit, answer.reasoning_tokens)
        return Plan(
            200,
            chunks,
            admitted=True,
            stream=chat.stream,
            drop=fault == faults.RESET,
            delay=delay,
            generation=faults.generation_s(config, answer.completion_tokens),
            billing=billing,
        )


def _body_fault(body: bytes, fault: faults.Fault) -> list[bytes]:
    """The body as sent: whole, whitespace, broken JSON, or two halves (the second never sent)."""
    if fault == faults.EMPTY:
        return [b"\n\n  \n"]
    if fault == faults.MALFORMED:
        return [body[: len(body) // 2]]
    if fault == faults.RESET:
        return [body[: len(body) // 2], body[len(body) // 2 :]]
    return [body]


def _stream_fault(events: list[bytes], fault: faults.Fault) -> list[bytes]:
    """The SSE events as sent: all, whitespace only, a broken event, or the first half and then
    (as the last element, never sent) the rest."""
    if fault == faults.EMPTY:
        return [b"\n\n"]
    if fault == faults.MALFORMED:
        return [events[0], events[1][: len(events[1]) // 2] + b"\n\n"]
    if fault == faults.RESET:
        half = max(len(events) // 2, 1)
        return events[:half] + [b"".join(events[half:])]
    return events
