"""Counters a test reads to prove how a client behaved (GET /stats), O(1) per request.

Beyond totals, every distinct request body (by sha256) keeps a short log of its attempts:
when each arrived, what it got, and the Retry-After it was told. That is what proves that no
chunk was paid for twice (``bodies_paid_more_than_once``) and that retries waited as told
(``retry_after_violations``: an attempt that arrived sooner than the previous answer's
Retry-After allowed, beyond a small tolerance).
"""

from __future__ import annotations

import itertools
from collections import Counter
from typing import Any

NO_RESPONSE = 0  # status logged for an attempt that got no status line (stall, client gone)


class BodyRecord:
    """The attempts at one distinct request body."""

    __slots__ = ("attempts", "log", "not_before", "paid")

    def __init__(self) -> None:
        self.attempts = 0
        self.paid = 0  # attempts billed (a complete answer was sent)
        self.not_before = 0.0  # a Retry-After deadline the next attempt must respect, or 0
        # One (arrival_s, status, retry_after_s | None) per attempt, arrival on the loop clock.
        # Tuples of plain numbers, so the garbage collector stops tracking them.
        self.log: list[tuple[float, int, float | None]] = []


class Stats:
    """All counters of one simulator. ``clock_origin`` is the loop time the counters start."""

    def __init__(self, clock_origin: float, max_tracked_bodies: int, tolerance_s: float) -> None:
        self.max_tracked_bodies = max_tracked_bodies
        self.tolerance_s = tolerance_s
        self.in_flight = 0
        self.reset(clock_origin)

    def reset(self, clock_origin: float) -> None:
        """Zero every counter. Requests in flight stay counted as in flight."""
        self.origin = clock_origin
        self.requests_received = 0
        self.other_requests = 0
        self.streams = 0
        self.responses_by_status: Counter[int] = Counter()
        self.no_response = 0
        self.faults: Counter[str] = Counter()
        self.schema_answers = 0  # JSON-mode answers to a schema, sent without a fault
        self.schema_violations: Counter[str] = Counter()  # of those, broken on purpose, by kind
        self.prompt_tokens = 0
        self.completion_tokens = 0
        self.reasoning_tokens = 0
        self.cache_hit_tokens = 0
        self.cache_miss_tokens = 0
        self.max_in_flight = self.in_flight
        self.bodies: dict[bytes, BodyRecord] = {}
        self.attempts_histogram: Counter[int] = Counter()
        self.max_attempts_per_body = 0
        self.bodies_paid_more_than_once = 0
        self.untracked_bodies = 0
        self.retries_after_retry_after = 0
        self.retry_after_violations = 0
        self.min_retry_after_margin_s: float | None = None

    @property
    def tokens_billed(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    def arrive(self, digest: bytes, now: float) -> tuple[BodyRecord | None, int]:
        """Count a chat request; return its body record (None past the tracking cap) and its
        attempt number (1 for the first time this body is seen)."""
        self.requests_received += 1
        self.in_flight += 1
        if self.in_flight > self.max_in_flight:
            self.max_in_flight = self.in_flight
        record = self.bodies.get(digest)
        if record is None:
            if len(self.bodies) >= self.max_tracked_bodies:
                self.untracked_bodies += 1
                return None, 1
            record = self.bodies[digest] = BodyRecord()
        attempts = record.attempts
        if attempts:
            histogram = self.attempts_histogram
            histogram[attempts] -= 1
            if not histogram[attempts]:
                del histogram[attempts]
        attempts += 1
        record.attempts = attempts
        self.attempts_histogram[attempts] += 1
        if attempts > self.max_attempts_per_body:
            self.max_attempts_per_body = attempts
        if record.not_before:
            margin = now - record.not_before
            self.retries_after_retry_after += 1
            if self.min_retry_after_margin_s is None or margin < self.min_retry_after_margin_s:
                self.min_retry_after_margin_s = margin
            if margin < -self.tolerance_s:
                self.retry_after_violations += 1
            record.not_before = 0.0
        record.log.append((now, NO_RESPONSE, None))
        return record, attempts

    def respond(
        self,
        record: BodyRecord | None,
        attempt: int,
        status: int,
        now: float,
        retry_after: float | None = None,
    ) -> None:
        """Count the status line sent to an attempt (and the Retry-After it carried)."""
        self.responses_by_status[status] += 1
        if record is not None:
            log = record.log
            log[attempt - 1] = (log[attempt - 1][0], status, retry_after)
            if retry_after is not None:
                record.not_before = max(record.not_before, now + retry_after)

    def done(self, got_status: bool) -> None:
        """An attempt left the server (answered, dropped, or abandoned by its client)."""
        self.in_flight -= 1
        if not got_status:
            self.no_response += 1

    def bill(
        self, record: BodyRecord | None, prompt: int, completion: int, hit: int, reasoning: int
    ) -> None:
        self.prompt_tokens += prompt
        self.completion_tokens += completion
        self.reasoning_tokens += reasoning
        self.cache_hit_tokens += hit
        self.cache_miss_tokens += prompt - hit
        if record is not None:
            record.paid += 1
            if record.paid == 2:
                self.bodies_paid_more_than_once += 1

    def snapshot(
        self, now: float, balance_tokens: int | None, bodies: bool = False
    ) -> dict[str, Any]:
        """The JSON-able counters; with ``bodies``, the per-body attempt logs too."""
        remaining = None if balance_tokens is None else max(balance_tokens - self.tokens_billed, 0)
        snap: dict[str, Any] = {
            "uptime_s": round(now - self.origin, 3),
            "requests_received": self.requests_received,
            "other_requests": self.other_requests,
            "streams": self.streams,
            "responses_by_status": {str(k): v for k, v in sorted(self.responses_by_status.items())},
            "no_response": self.no_response,
            "in_flight": self.in_flight,
            "max_in_flight": self.max_in_flight,
            "faults": dict(sorted(self.faults.items())),
            "schema_answers": self.schema_answers,
            "schema_violations": dict(sorted(self.schema_violations.items())),
            "tokens": {
                "prompt": self.prompt_tokens,
                "completion": self.completion_tokens,
                "reasoning": self.reasoning_tokens,
                "cache_hit": self.cache_hit_tokens,
                "cache_miss": self.cache_miss_tokens,
                "total": self.tokens_billed,
            },
            "tokens_billed": self.tokens_billed,
            "balance_tokens_remaining": remaining,
            "distinct_bodies": len(self.bodies) + self.untracked_bodies,
            "untracked_bodies": self.untracked_bodies,
            "attempts_histogram": {str(k): v for k, v in sorted(self.attempts_histogram.items())},
            "max_attempts_per_body": self.max_attempts_per_body,
            "bodies_paid_more_than_once": self.bodies_paid_more_than_once,
            "retries_after_retry_after": self.retries_after_retry_after,
            "retry_after_violations": self.retry_after_violations,
            "min_retry_after_margin_s": (
                None
                if self.min_retry_after_margin_s is None
                else round(self.min_retry_after_margin_s, 4)
            ),
        }
        if bodies:
            snap["bodies"] = {
                digest.hex(): self._body_json(record) for digest, record in self.bodies.items()
            }
        return snap

    def _body_json(self, record: BodyRecord) -> dict[str, Any]:
        arrivals = [entry[0] for entry in record.log]
        return {
            "attempts": record.attempts,
            "paid": record.paid,
            "statuses": [entry[1] for entry in record.log],
            "retry_after_s": [entry[2] for entry in record.log],
            "arrived_s": [round(t - self.origin, 4) for t in arrivals],
            "gaps_s": [round(b - a, 4) for a, b in itertools.pairwise(arrivals)],
        }
