"""The engine with the real map plan, row builder, reorder buffer, ledger and call path (limits,
breaker, result cache, audit log) over a handler backend: rows in input order, document errors
in their place, cache hits and single flight, budget and 401 stops, an internal error costing
one row, the output window bounding what is sent, further jobs, and what each row cost."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path

import pytest

from dscall.calls.backend import Handler, HandlerBackend, status_error
from dscall.calls.breaker import CircuitBreaker
from dscall.calls.cache import ResultCache
from dscall.calls.caller import CallOutcome, ChunkCaller, RequestContext
from dscall.calls.limits import CallLimits
from dscall.calls.request import RequestBuilder
from dscall.calls.router import one_endpoint
from dscall.config import PromptSettings
from dscall.errors import (
    AuthenticationFailed,
    BudgetExhausted,
    Interrupted,
    RunStopped,
    UnreadableFile,
)
from dscall.output.audit import AuditLog
from dscall.output.rows import ReorderBuffer, RowBuilder
from dscall.pipeline.budget import Budget
from dscall.pipeline.engine import Engine
from dscall.pipeline.ledger import Ledger
from dscall.plans.base import NO_JOBS, Cost, Job, Plan
from dscall.plans.map import MapPlan
from dscall.pricing import PriceTable, load_prices
from dscall.stats import RunStats
from dscall.types import (
    CallRequest,
    CallResponse,
    Chunk,
    ChunkedDocument,
    ChunkRow,
    ExtractOutcome,
    FailedDocument,
    SourceFile,
    Usage,
)

MODEL = "deepseek-flash"
MONDAY_2AM = datetime(2026, 11, 16, 2, 0, tzinfo=timezone.utc)  # peak hours


# --- documents, built in memory ------------------------------------------------------------------


def document(name: str, *texts: str) -> ChunkedDocument:
    """A text file ``name`` whose chunks are ``texts``, one after the other."""
    chunks = []
    offset = 0
    for index, text in enumerate(texts):
        chunks.append(
            Chunk(index, len(texts), text, offset, offset + len(text), None, None, len(text))
        )
        offset += len(text)
    return ChunkedDocument(
        SourceFile(Path("/corpus") / name, name, "txt", offset),
        f"id-{name}",
        page_count=0,
        char_count=offset,
        no_text_pages=(),
        warnings=(),
        chunks=tuple(chunks),
    )


def unreadable(name: str) -> FailedDocument:
    return FailedDocument(
        SourceFile(Path("/corpus") / name, name, "pdf", 10), None, "UnreadableFile", "denied"
    )


async def feed(documents: tuple[ExtractOutcome, ...]) -> AsyncIterator[ExtractOutcome]:
    for outcome in documents:
        yield outcome


# --- the endpoint ---------------------------------------------------------------------------------


def text_of(request: CallRequest) -> str:
    """The chunk text of a request: the default template ends with it, after a blank line."""
    content: str = json.loads(request.body)["messages"][1]["content"]
    return content.rsplit("\n\n", 1)[1]


def usage_for(text: str) -> Usage:
    return Usage(100 + len(text), 20 + len(text), 64, 36 + len(text))


def answer(request: CallRequest) -> CallResponse:
    text = text_of(request)
    return CallResponse(f"summary of {text}", "stop", MODEL, usage_for(text))


@dataclass
class Rig:
    engine: Engine
    plan: Plan
    backend: HandlerBackend
    stats: RunStats
    rows: list[ChunkRow] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def sent(self) -> list[str]:
        return [text_of(request) for request in self.backend.requests]

    @property
    def placed(self) -> list[tuple[str, int | None]]:
        return [(row.doc_path, row.chunk_index) for row in self.rows]

    async def run(self, *documents: ExtractOutcome) -> None:
        await self.engine.run(feed(documents))
        self.plan.close()


@pytest.fixture
def requests() -> RequestBuilder:
    return RequestBuilder(PromptSettings(), "default", "https://handler.invalid")


@pytest.fixture
def prices() -> PriceTable:
    return load_prices(None)


@pytest.fixture
def cache(tmp_path: Path) -> Iterator[ResultCache]:
    with ResultCache(tmp_path / "cache", "default") as opened:
        yield opened


@pytest.fixture
def rig(
    tmp_path: Path, requests: RequestBuilder, prices: PriceTable, cache: ResultCache
) -> Iterator[Callable[..., Rig]]:
    """Builds the run's wiring as ``pipeline.run._run`` does, over ``HandlerBackend(handler)``."""
    with AuditLog(tmp_path / "audit.jsonl", "run-1", "ann@host", "default", "handler.invalid") as a:

        def build(
            handler: Handler,
            *,
            window: int = 64,
            concurrency: int = 8,
            budget: Budget | None = None,
            plan: Plan | None = None,
        ) -> Rig:
            async def no_wait(delay: float) -> None:
                return None

            stats = RunStats()
            backend = HandlerBackend(handler)
            engine: Engine | None = None

            def stop_requested() -> RunStopped | None:
                return engine.halts_attempts() if engine is not None else None

            caller = ChunkCaller(
                one_endpoint(
                    backend,
                    CallLimits(concurrency, concurrency),
                    CircuitBreaker(asyncio.get_running_loop().time),
                ),
                stats,
                max_retries=2,
                cache=cache,
                audit=a,
                stop_requested=stop_requested,
                sleep=no_wait,
            )
            rows: list[ChunkRow] = []
            notes: list[str] = []
            if plan is None:
                reorder: ReorderBuffer[ChunkRow] = ReorderBuffer(rows.append, window)
                builder = RowBuilder("run-1", False, stats)
                plan = MapPlan(requests, builder, reorder, stats, notes.append)
            ledger = Ledger(prices, stats, budget)
            engine = Engine(caller, plan, ledger, budget, notify=notes.append)
            return Rig(engine, plan, backend, stats, rows, notes)

        yield build


async def spin(until: Callable[[], bool] = lambda: False, turns: int = 200) -> None:
    """Let the loop run until ``until()`` holds, or for ``turns`` iterations."""
    for _ in range(turns):
        if until():
            return
        await asyncio.sleep(0)


# --- order ----------------------------------------------------------------------------------------


async def test_rows_come_out_in_input_order_whatever_order_calls_finish_in(
    rig: Callable[..., Rig],
) -> None:
    texts = ["a0", "a1", "a2", "c0", "c1"]
    finished: list[str] = []

    async def handler(request: CallRequest) -> CallResponse:
        text = text_of(request)
        # Earlier chunks take longer: calls finish in about the reverse of the input order.
        await asyncio.sleep(0.008 * (len(texts) - texts.index(text)))
        finished.append(text)
        return answer(request)

    r = rig(handler)
    await r.run(document("a.txt", *texts[:3]), unreadable("b.pdf"), document("c.txt", *texts[3:]))
    assert finished != texts  # the premise: the calls did finish out of order
    assert sorted(finished) == sorted(texts)
    assert r.placed == [
        ("a.txt", 0),
        ("a.txt", 1),
        ("a.txt", 2),
        ("b.pdf", None),
        ("c.txt", 0),
        ("c.txt", 1),
    ]
    assert [row.output for row in r.rows if row.status == "ok"] == [
        f"summary of {t}" for t in texts
    ]
    assert r.engine.stop_reason is None


async def test_a_failed_document_and_one_without_chunks_are_one_error_row_each_in_place(
    rig: Callable[..., Rig],
) -> None:
    async def handler(request: CallRequest) -> CallResponse:
        await asyncio.sleep(0.005)  # the error rows are ready long before this row
        return answer(request)

    r = rig(handler)
    empty = document("empty.txt")
    await r.run(document("a.txt", "a0"), unreadable("b.pdf"), empty, document("d.txt", "d0"))
    assert r.placed == [("a.txt", 0), ("b.pdf", None), ("empty.txt", None), ("d.txt", 0)]
    assert [(row.status, row.error_type) for row in r.rows] == [
        ("ok", None),
        ("error", "UnreadableFile"),
        ("error", "NoTextFound"),
        ("ok", None),
    ]
    assert r.rows[1].error_message == "denied"
    assert (r.rows[2].doc_id, r.rows[2].error_message) == ("id-empty.txt", "no extractable text")
    assert r.stats.documents_failed == 2
    assert r.stats.chunks_done == 2
    assert r.sent == ["a0", "d0"]
    assert any("b.pdf: UnreadableFile: denied" in note for note in r.notes)


# --- cache and single flight ------------------------------------------------------------------


async def test_a_cached_request_is_a_cached_row_without_a_send(
    rig: Callable[..., Rig], cache: ResultCache, requests: RequestBuilder
) -> None:
    doc = document("a.txt", "a0", "a1")
    stored = CallResponse("from an earlier run", "stop", MODEL, usage_for("a1"))
    cache.put(requests.build(doc.chunks[1], "a.txt").request_hash, stored)
    r = rig(answer)
    await r.run(doc)
    assert r.sent == ["a0"]
    first, second = r.rows
    assert (first.cached, first.attempts, first.output) == (False, 1, "summary of a0")
    assert (second.cached, second.attempts, second.output) == (True, 0, "from an earlier run")
    assert second.status == "ok"
    assert r.stats.chunks_cached == 1
    assert r.stats.requests_sent == 1


async def test_identical_chunks_are_sent_once_and_both_rows_are_written(
    rig: Callable[..., Rig],
) -> None:
    async def handler(request: CallRequest) -> CallResponse:
        await asyncio.sleep(0)  # still in flight when the identical chunk is dispatched
        return answer(request)

    r = rig(handler)
    await r.run(document("a.txt", "same", "other"), document("b.txt", "same"))
    assert sorted(r.sent) == ["other", "same"]
    assert r.placed == [("a.txt", 0), ("a.txt", 1), ("b.txt", 0)]
    leader, _, follower = r.rows
    assert leader.output == follower.output == "summary of same"
    assert leader.request_hash == follower.request_hash
    assert (leader.cached, leader.attempts) == (False, 1)
    assert (follower.cached, follower.attempts, follower.cost_usd) == (True, 0, 0.0)


# --- stops ----------------------------------------------------------------------------------------


async def test_a_budget_stops_dispatch_and_the_dispatched_calls_are_written(
    rig: Callable[..., Rig], requests: RequestBuilder, prices: PriceTable
) -> None:
    doc = document("a.txt", *(f"c{i}" for i in range(5)))  # same length: same reservation
    worst = prices.estimate(
        MODEL, requests.build(doc.chunks[0], "a.txt").estimated_prompt_tokens, 1024, MONDAY_2AM
    )
    assert worst is not None
    # Room for two worst cases, not three; every price at peak, whenever the test runs.
    budget = Budget(2.5 * worst, prices, MODEL, clock=lambda: MONDAY_2AM, lookahead_s=0)
    r = rig(answer, budget=budget)
    await r.run(doc, document("b.txt", "b0"))
    assert isinstance(r.engine.stop_reason, BudgetExhausted)
    assert r.sent == ["c0", "c1"]
    assert r.placed == [("a.txt", 0), ("a.txt", 1)]
    assert all(row.status == "ok" for row in r.rows)
    assert budget.reserved_usd == pytest.approx(0.0)
    assert budget.spent_usd == pytest.approx(sum(row.cost_usd or 0.0 for row in r.rows))
    assert any(note.startswith("stopping: budget of $") for note in r.notes)


async def test_a_401_stops_the_run_and_its_chunk_has_no_row(rig: Callable[..., Rig]) -> None:
    on_wire = asyncio.Event()
    rejected = asyncio.Event()

    async def handler(request: CallRequest) -> CallResponse:
        if text_of(request) == "a0":
            await on_wire.wait()
            rejected.set()
            raise status_error(401, "invalid key")
        # On the wire when the 401 arrives: allowed to finish, and written.
        on_wire.set()
        await rejected.wait()
        return answer(request)

    # Two slots: a2 is dispatched but waits for a0's slot, so it is due to go out just after
    # the 401. A window of 3: a3 waits for a row, and none comes before the 401.
    r = rig(handler, window=3, concurrency=2)
    await r.engine.run(feed((document("a.txt", "a0", "a1", "a2", "a3"), document("b.txt", "b0"))))
    assert isinstance(r.engine.stop_reason, AuthenticationFailed)
    assert "HTTP 401: invalid key" in str(r.engine.stop_reason)
    assert r.sent == ["a0", "a1"]
    assert r.stats.requests_sent == 2
    # a0 gave up its place at once: a1's row did not wait for the end of the run.
    assert r.placed == [("a.txt", 1)]
    r.plan.close()
    assert r.placed == [("a.txt", 1)]
    assert r.rows[0].status == "ok"


async def test_an_unexpected_error_costs_one_internal_error_row_and_the_run_goes_on(
    rig: Callable[..., Rig],
) -> None:
    def handler(request: CallRequest) -> CallResponse:
        if text_of(request) == "a1":
            raise ValueError("a bug in the transport")
        return answer(request)

    r = rig(handler)
    await r.run(document("a.txt", "a0", "a1", "a2"), document("b.txt", "b0"))
    assert r.engine.stop_reason is None
    assert r.placed == [("a.txt", 0), ("a.txt", 1), ("a.txt", 2), ("b.txt", 0)]
    assert [row.status for row in r.rows] == ["ok", "error", "ok", "ok"]
    broken = r.rows[1]
    assert broken.error_type == "InternalError"
    assert broken.error_message == "internal error: ValueError: a bug in the transport"
    assert broken.cost_usd == 0.0
    assert r.stats.chunks_failed == 1
    assert sorted(r.sent) == ["a0", "a1", "a2", "b0"]  # not retried


async def test_an_identical_chunk_of_a_call_that_broke_gets_an_error_row_too(
    rig: Callable[..., Rig],
) -> None:
    async def handler(request: CallRequest) -> CallResponse:
        await asyncio.sleep(0)  # the identical chunk follows this call
        raise ValueError("a bug in the transport")

    r = rig(handler)
    await r.run(document("a.txt", "same"), document("b.txt", "same"))
    assert r.engine.stop_reason is None
    assert r.sent == ["same"]
    assert [(row.doc_path, row.error_type) for row in r.rows] == [
        ("a.txt", "InternalError"),
        ("b.txt", "InternalError"),
    ]


async def test_a_document_whose_file_changes_mid_read_ends_with_an_error_row(
    rig: Callable[..., Rig],
) -> None:
    whole = document("a.txt", "a0", "a1", "a2")

    class Changing(tuple[Chunk, ...]):
        """Chunks read from the file as they are taken (``StreamedChunks``): it changed
        after the first."""

        def __iter__(self) -> Iterator[Chunk]:
            yield self[0]
            raise UnreadableFile("a.txt changed since it was chunked")

    changing = replace(whole, chunks=Changing(whole.chunks))
    r = rig(answer)
    await r.run(changing, document("b.txt", "b0"))
    assert r.placed == [("a.txt", 0), ("a.txt", None), ("b.txt", 0)]
    changed = r.rows[1]
    assert changed.error_type == "FileChanged"
    assert changed.error_message == (
        "a.txt changed since it was chunked (after 1 of 3 chunks were sent)"
    )
    assert r.sent == ["a0", "b0"]
    assert r.stats.documents_failed == 1
    assert r.engine.stop_reason is None


async def test_a_stop_abandons_the_wait_for_the_next_document(rig: Callable[..., Rig]) -> None:
    closed: list[str] = []

    async def inputs() -> AsyncIterator[ExtractOutcome]:
        try:
            yield document("a.txt", "a0")
            await asyncio.Event().wait()  # the next file's extraction never ends
            yield document("b.txt", "b0")
        finally:
            closed.append("inputs")

    r: Rig

    def handler(request: CallRequest) -> CallResponse:
        r.engine.request_stop(Interrupted("interrupted by SIGINT"))
        return answer(request)

    r = rig(handler)
    await r.engine.run(inputs())
    r.plan.close()
    assert isinstance(r.engine.stop_reason, Interrupted)
    assert closed == ["inputs"]
    assert r.sent == ["a0"]
    assert r.placed == [("a.txt", 0)]  # on the wire when the stop came: written


# --- the window -----------------------------------------------------------------------------------


async def test_no_more_requests_are_sent_than_the_output_window_holds(
    rig: Callable[..., Rig],
) -> None:
    release = asyncio.Event()

    async def handler(request: CallRequest) -> CallResponse:
        await release.wait()
        return answer(request)

    texts = [f"c{i}" for i in range(10)]
    r = rig(handler, window=4, concurrency=16)
    running = asyncio.ensure_future(
        r.run(document("a.txt", *texts[:6]), document("b.txt", *texts[6:]))
    )
    await spin(lambda: len(r.backend.requests) >= 4)
    await spin()  # time for any request beyond the window to go out
    assert r.sent == texts[:4]
    assert not running.done()
    release.set()
    await running
    assert sorted(r.sent) == texts
    assert [row.output for row in r.rows] == [f"summary of {t}" for t in texts]


# --- further jobs ---------------------------------------------------------------------------------


class FollowUpPlan:
    """A plan of two steps: each document's one job leads to a second job (a reduce, say),
    which leads to nothing."""

    full = False

    def __init__(self, requests: RequestBuilder) -> None:
        self._requests = requests
        self.finished: list[tuple[str, CallOutcome]] = []
        self.dropped: list[str] = []

    async def wait_for_room(self) -> None:
        return None

    def close(self) -> None:
        return None

    def start(self, document: ExtractOutcome) -> Iterator[Job]:
        assert isinstance(document, ChunkedDocument)
        path = document.source.rel_path
        first = document.chunks[0]
        second = Chunk(1, 2, f"reduce of {first.text}", 0, 0, None, None, 1)
        yield self._job(path, first, then=self._job(path, second))

    def _job(self, path: str, chunk: Chunk, then: Job | None = None) -> Job:
        def done(outcome: CallOutcome, cost: Cost) -> tuple[Job, ...]:
            self.finished.append((chunk.text, outcome))
            return NO_JOBS if then is None else (then,)

        return Job(
            self._requests.build(chunk, path),
            RequestContext(path, chunk.index),
            done,
            lambda: self.dropped.append(chunk.text),
        )


async def test_a_further_job_is_dispatched_and_the_run_waits_for_it(
    rig: Callable[..., Rig], requests: RequestBuilder
) -> None:
    async def handler(request: CallRequest) -> CallResponse:
        if text_of(request).startswith("reduce"):
            await asyncio.sleep(0.01)  # still running when the first job's task has ended
        return answer(request)

    plan = FollowUpPlan(requests)
    r = rig(handler, plan=plan)
    await r.run(document("a.txt", "a0"))
    assert r.sent == ["a0", "reduce of a0"]
    assert [(text, outcome.response is not None) for text, outcome in plan.finished] == [
        ("a0", True),
        ("reduce of a0", True),
    ]
    assert plan.dropped == []


@pytest.mark.parametrize("cached", [False, True], ids=["to-send", "cached"])
async def test_a_further_job_after_a_stop_is_dropped(
    rig: Callable[..., Rig], requests: RequestBuilder, cache: ResultCache, cached: bool
) -> None:
    if cached:  # even an answer at hand is not taken: dispatch has ended
        reduce = Chunk(1, 2, "reduce of a0", 0, 0, None, None, 1)
        stored = CallResponse("stored", "stop", MODEL, usage_for("reduce of a0"))
        cache.put(requests.build(reduce, "a.txt").request_hash, stored)
    r: Rig

    def handler(request: CallRequest) -> CallResponse:
        # An interrupt arrives while the first call is on the wire.
        r.engine.request_stop(Interrupted("interrupted by SIGINT"))
        return answer(request)

    plan = FollowUpPlan(requests)
    r = rig(handler, plan=plan)
    await r.run(document("a.txt", "a0"))
    assert isinstance(r.engine.stop_reason, Interrupted)
    assert r.sent == ["a0"]
    assert [text for text, _ in plan.finished] == ["a0"]  # on the wire: it finished
    assert plan.dropped == ["reduce of a0"]


# --- the ledger -----------------------------------------------------------------------------------


async def test_a_rows_cost_is_the_price_of_its_usage_and_the_run_cost_their_sum(
    rig: Callable[..., Rig], cache: ResultCache, requests: RequestBuilder, prices: PriceTable
) -> None:
    docs = (document("a.txt", "a0", "a longer chunk"), document("b.txt", "b0"))
    cache.put(
        requests.build(docs[1].chunks[0], "b.txt").request_hash,
        CallResponse("from an earlier run", "stop", MODEL, usage_for("b0")),
    )
    r = rig(answer)
    await r.run(*docs)
    paid, longer, cached = r.rows
    for row in (paid, longer):
        usage = Usage(
            row.prompt_tokens or 0,
            row.completion_tokens or 0,
            row.cache_hit_tokens or 0,
            row.cache_miss_tokens or 0,
        )
        assert usage == usage_for(row.output.removeprefix("summary of ") if row.output else "")
        assert row.finished_at is not None
        expected = prices.cost(MODEL, usage, row.finished_at)
        assert expected is not None
        assert expected > 0
        assert row.cost_usd == expected
    assert paid.cost_usd != longer.cost_usd
    assert (cached.cached, cached.cost_usd) == (True, 0.0)
    assert r.stats.cost_usd == pytest.approx((paid.cost_usd or 0.0) + (longer.cost_usd or 0.0))
    assert (
        r.stats.prompt_tokens
        == usage_for("a0").prompt_tokens + usage_for("a longer chunk").prompt_tokens
    )
    assert r.stats.cost_unknown is False
