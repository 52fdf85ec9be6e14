"""OpenTelemetry spans of real runs against the simulator over loopback HTTP (SPEC §13), caught
with the SDK's in-memory exporter: the tree run -> document -> call -> attempt, its attributes,
retries as several attempts, cache hits as calls without attempts, and never the API key."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import StatusCode

from dscall.simulator import SimulatorThread
from dscall.traces.setup import use_provider
from tests.conftest import TEST_API_KEY
from tests.integration.conftest import Workspace, invoke, read_rows, write_corpus

CALL_PREFIX = "chat "


@pytest.fixture
def spans(monkeypatch: pytest.MonkeyPatch) -> Iterator[InMemorySpanExporter]:
    """Traces on (as the environment asks), sent to an in-memory exporter."""
    monkeypatch.setenv("OTEL_TRACES_EXPORTER", "console")
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    use_provider(provider)
    yield exporter
    use_provider(None)
    provider.shutdown()


def by_kind(finished: tuple[ReadableSpan, ...]) -> dict[str, list[ReadableSpan]]:
    kinds: dict[str, list[ReadableSpan]] = {"run": [], "document": [], "call": [], "attempt": []}
    for span in finished:
        if span.name == "dscall.run":
            kinds["run"].append(span)
        elif span.name == "dscall.document":
            kinds["document"].append(span)
        elif span.name.startswith(CALL_PREFIX):
            kinds["call"].append(span)
        else:
            assert span.name == "POST", span.name
            kinds["attempt"].append(span)
    return kinds


def parent_id(span: ReadableSpan) -> int | None:
    return span.parent.span_id if span.parent is not None else None


def span_id(span: ReadableSpan) -> int:
    assert span.context is not None
    return span.context.span_id


def assert_tree(kinds: dict[str, list[ReadableSpan]], documents: int) -> dict[int, ReadableSpan]:
    """One run span at the root, documents under it, calls under their documents, attempts
    under their calls (as many as the call says it made); all in one trace. Returns the
    document spans by id."""
    (run,) = kinds["run"]
    assert run.parent is None
    trace_ids = {s.context.trace_id for spans in kinds.values() for s in spans if s.context}
    assert len(trace_ids) == 1
    docs = {span_id(doc): doc for doc in kinds["document"]}
    assert len(docs) == documents
    assert all(parent_id(doc) == span_id(run) for doc in docs.values())
    calls = {span_id(call): call for call in kinds["call"]}
    for call in calls.values():
        doc = docs[parent_id(call)]  # type: ignore[index]
        assert call.attributes is not None
        assert doc.attributes is not None
        assert call.attributes["dscall.doc.path"] == doc.attributes["dscall.doc.path"]
    made: dict[int, int] = {}
    for attempt in kinds["attempt"]:
        parent = parent_id(attempt)
        assert parent in calls
        made[parent] = made.get(parent, 0) + 1
    for key, call in calls.items():
        assert call.attributes is not None
        if call.attributes.get("dscall.stopped"):  # the run stopped before it had an outcome
            assert call.status.status_code is StatusCode.ERROR
        else:
            assert made.get(key, 0) == call.attributes["dscall.attempts"]
    return docs


def assert_no_key(finished: tuple[ReadableSpan, ...]) -> None:
    for span in finished:
        text = span.to_json()
        assert TEST_API_KEY not in text
        assert TEST_API_KEY[-12:] not in text


def test_spans_of_a_run_with_retries_then_its_cached_rerun(
    sim: SimulatorThread, workspace: Workspace, spans: InMemorySpanExporter
) -> None:
    write_corpus(workspace.corpus, docs=4)
    for extra in workspace.corpus.iterdir():
        if extra.name > "doc_0003.txt":
            extra.unlink()
    sim.config.seed = 11
    sim.config.fail = {503: 0.3}
    args = workspace.args(sim, "--max-retries", "8", "--quiet")
    result = invoke(args)
    assert result.exit_code == 0, result.stderr
    rows = read_rows(workspace.out)
    finished = spans.get_finished_spans()
    kinds = by_kind(finished)
    docs = assert_tree(kinds, documents=4)

    (run,) = kinds["run"]
    assert run.attributes is not None
    assert run.attributes["dscall.exit_code"] == 0
    assert run.attributes["dscall.chunks"] == len(rows)
    # Followers of an identical request in flight have 0 attempts (and no retries).
    assert run.attributes["dscall.retries"] == sum(max(0, r["attempts"] - 1) for r in rows) > 0
    assert run.attributes["dscall.requests"] == len(kinds["attempt"])
    assert run.status.status_code is StatusCode.UNSET
    assert sorted(str(d.attributes["dscall.doc.path"]) for d in docs.values() if d.attributes) == [
        f"doc_{i:04d}.txt" for i in range(4)
    ]

    # One call span per row, with the row's figures.
    calls = {
        (c.attributes["dscall.doc.path"], c.attributes["dscall.chunk.index"]): c
        for c in kinds["call"]
        if c.attributes is not None
    }
    assert len(calls) == len(kinds["call"]) == len(rows)
    for row in rows:
        attrs = calls[(row["doc_path"], row["chunk_index"])].attributes
        assert attrs is not None
        assert attrs["gen_ai.request.model"] == row["model"]
        assert attrs["gen_ai.response.model"] == row["response_model"]
        assert attrs["gen_ai.usage.input_tokens"] == row["prompt_tokens"]
        assert attrs["gen_ai.usage.output_tokens"] == row["completion_tokens"]
        assert attrs["gen_ai.usage.cache_read.input_tokens"] == row["cache_hit_tokens"]
        assert attrs["dscall.attempts"] == row["attempts"]
        assert attrs["dscall.retries"] == max(0, row["attempts"] - 1)
        assert attrs["dscall.cached"] is row["cached"]
        assert attrs["dscall.status"] == "ok"
        assert attrs["dscall.step"] == "map"
        assert attrs["dscall.endpoint"] == row["endpoint"]

    # Chunks with the same text as another one in flight are single-flight followers: call
    # spans with cached=true and no attempt under them (this corpus repeats a few chunks).
    followers = [c for c in kinds["call"] if c.attributes and c.attributes["dscall.cached"]]
    assert followers
    under = {parent_id(a) for a in kinds["attempt"]}
    assert all(span_id(c) not in under for c in followers)

    # Retries are several attempts: the failed ones say 503 with an ERROR status.
    failed = [a for a in kinds["attempt"] if a.status.status_code is StatusCode.ERROR]
    assert failed
    for attempt in failed:
        assert attempt.attributes is not None
        assert attempt.attributes["http.response.status_code"] == 503
        assert attempt.attributes["error.type"]
        assert attempt.status.description
        assert "\n" not in attempt.status.description
    for attempt in kinds["attempt"]:
        attrs = attempt.attributes
        assert attrs is not None
        assert attrs["server.address"] == "127.0.0.1"
        assert attrs["dscall.endpoint"]
        assert attrs.get("http.request.resend_count", 0) == attrs["dscall.attempt"] - 1
    assert any(a.attributes and a.attributes["dscall.attempt"] > 1 for a in kinds["attempt"])
    assert_no_key(finished)

    # The rerun is answered by the cache: calls with cached=true and no attempt at all.
    spans.clear()
    sim.config.fail = {}
    result = invoke(args)
    assert result.exit_code == 0, result.stderr
    kinds = by_kind(spans.get_finished_spans())
    assert_tree(kinds, documents=4)
    assert kinds["attempt"] == []
    assert len(kinds["call"]) == len(rows)
    for call in kinds["call"]:
        assert call.attributes is not None
        assert call.attributes["dscall.cached"] is True
        assert call.attributes["dscall.attempts"] == 0
        assert call.attributes["dscall.status"] == "ok"
    for doc in kinds["document"]:
        assert doc.attributes is not None
        assert doc.attributes["dscall.doc.calls_cached"] == doc.attributes["dscall.doc.calls"]


def test_the_reduce_call_is_under_its_document(
    sim: SimulatorThread, workspace: Workspace, spans: InMemorySpanExporter
) -> None:
    for extra in sorted(workspace.corpus.iterdir())[3:]:
        extra.unlink()
    args = workspace.args(sim, "--mode", "map-reduce", "--reduce-tokens", "100000", "--quiet")
    result = invoke(args)
    assert result.exit_code == 0, result.stderr
    kinds = by_kind(spans.get_finished_spans())
    docs = assert_tree(kinds, documents=3)
    reduces = [c for c in kinds["call"] if c.attributes and c.attributes["dscall.step"] == "reduce"]
    assert len(reduces) == 3
    for doc_id, doc in docs.items():
        assert doc.attributes is not None
        path = doc.attributes["dscall.doc.path"]
        mine = [c for c in kinds["call"] if parent_id(c) == doc_id]
        (reduce,) = [c for c in mine if c.attributes and c.attributes["dscall.step"] == "reduce"]
        assert reduce.attributes is not None
        assert reduce.attributes["dscall.doc.path"] == path
        assert "dscall.chunk.index" not in reduce.attributes
        maps = [c for c in mine if c.attributes and c.attributes["dscall.step"] == "map"]
        assert len(maps) == doc.attributes["dscall.doc.chunks"] > 1
        # The reduce starts once the last map answer is in; the document ends after it.
        assert reduce.start_time is not None
        assert doc.end_time is not None
        assert all(m.end_time is not None and m.end_time <= reduce.start_time for m in maps)
        assert reduce.end_time is not None
        assert reduce.end_time <= doc.end_time
        assert doc.attributes["dscall.doc.calls"] == len(maps) + 1


def test_a_document_that_cannot_be_read_is_an_error_span_without_calls(
    sim: SimulatorThread, workspace: Workspace, spans: InMemorySpanExporter
) -> None:
    for extra in sorted(workspace.corpus.iterdir())[1:]:
        extra.unlink()
    (workspace.corpus / "broken.pdf").write_bytes(b"%PDF-1.4 not really a pdf")
    result = invoke(workspace.args(sim, "--quiet"))
    assert result.exit_code == 1, result.stderr
    kinds = by_kind(spans.get_finished_spans())
    docs = assert_tree(kinds, documents=2)
    (broken,) = [
        d for d in docs.values() if d.attributes and d.attributes["dscall.doc.path"] == "broken.pdf"
    ]
    assert broken.status.status_code is StatusCode.ERROR
    assert broken.attributes is not None
    assert broken.attributes["error.type"]
    assert not [c for c in kinds["call"] if parent_id(c) == span_id(broken)]
    (run,) = kinds["run"]
    assert run.attributes is not None
    assert run.attributes["dscall.exit_code"] == 1
    assert run.status.status_code is StatusCode.ERROR


def test_a_run_stopped_part_way_ends_every_span_it_started(
    sim: SimulatorThread, workspace: Workspace, spans: InMemorySpanExporter
) -> None:
    write_corpus(workspace.corpus, docs=20)
    sim.config.balance_tokens = 3000
    args = workspace.args(sim, "--concurrency", "2", "--max-concurrency", "2", "--quiet")
    result = invoke(args)
    assert result.exit_code == 3
    finished = spans.get_finished_spans()
    kinds = by_kind(finished)
    (run,) = kinds["run"]
    assert run.attributes is not None
    assert run.attributes["dscall.exit_code"] == 3
    assert "balance" in str(run.attributes["dscall.stop_reason"])
    assert run.status.status_code is StatusCode.ERROR
    # Every document span that was started is ended (and exported), under the run.
    docs = assert_tree(kinds, documents=len(kinds["document"]))
    assert 0 < len(docs) <= 20
    stopped = [d for d in docs.values() if d.attributes and d.attributes.get("dscall.doc.stopped")]
    assert stopped
    refused = [
        a
        for a in kinds["attempt"]
        if a.attributes and a.attributes.get("http.response.status_code") == 402
    ]
    assert refused
    assert all(a.status.status_code is StatusCode.ERROR for a in refused)
    # The spans of the calls the 402 stopped say why.
    failed_calls = [c for c in kinds["call"] if c.status.status_code is StatusCode.ERROR]
    assert failed_calls
    for call in failed_calls:
        assert call.attributes is not None
        assert call.attributes["error.type"] == "InsufficientBalance"
        assert call.attributes["dscall.stopped"] is True
    assert_no_key(finished)
