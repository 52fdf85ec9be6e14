"""OpenTelemetry spans of `dscall compare` against the simulator (SPEC §13), caught with the SDK's
in-memory exporter: the same tree as `process` (run -> document -> call -> attempt), a run span
that says it is a comparison and of which variants, each call named by its variant (or as the
judge's), and a document span only for the documents the sample drew from."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import StatusCode

from dscall.simulator import SimulatorThread
from tests.integration import test_compare, test_traces
from tests.integration.conftest import Workspace, invoke, read_rows
from tests.integration.test_traces import assert_no_key, assert_tree, by_kind, parent_id

# The fixtures of those modules, shared (pytest finds a fixture by its name here).
spans = test_traces.spans
prompts = test_compare.prompts


def test_compare_spans_run_document_call_attempt_with_the_variants(
    sim: SimulatorThread,
    workspace: Workspace,
    prompts: dict[str, Path],
    spans: InMemorySpanExporter,
) -> None:
    judge = ("--judge-prompt", str(prompts["judge"]))
    args = test_compare.compare_args(workspace, sim, prompts, *judge, "--quiet")
    result = invoke(args)
    assert result.exit_code == 0, result.output
    rows = read_rows(workspace.out)
    answers = [row for row in rows if row["kind"] == "answer"]
    sampled = {row["doc_path"] for row in answers}
    finished = spans.get_finished_spans()
    kinds = by_kind(finished)
    # 12 documents in the corpus, 7 sampled (one chunk each): only those have a span.
    docs = assert_tree(kinds, documents=len(sampled))
    assert len(sampled) == 7
    assert {d.attributes["dscall.doc.path"] for d in docs.values() if d.attributes} == sampled

    (run,) = kinds["run"]
    assert run.attributes is not None
    assert run.attributes["dscall.command"] == "compare"
    assert list(run.attributes["dscall.compare.variants"]) == ["short", "strict"]  # type: ignore[arg-type]
    assert run.attributes["dscall.exit_code"] == 0
    assert run.status.status_code is not StatusCode.ERROR

    steps = Counter(c.attributes["dscall.step"] for c in kinds["call"] if c.attributes)
    # One answer per variant and chunk, the judge asked both orders of the one pair.
    assert steps == {"short": 7, "strict": 7, "judge": 14}
    for call in kinds["call"]:
        assert call.attributes is not None
        doc = docs[parent_id(call)]  # type: ignore[index]
        assert doc.attributes is not None
        assert doc.attributes["dscall.doc.calls"] == 4  # two answers, two verdicts
        assert call.attributes["dscall.status"] == "ok"
    assert len(kinds["attempt"]) == sum(
        c.attributes["dscall.attempts"]  # type: ignore[misc]
        for c in kinds["call"]
        if c.attributes
    )
    assert_no_key(finished)


def test_compare_without_otel_env_makes_no_spans(
    sim: SimulatorThread,
    workspace: Workspace,
    prompts: dict[str, Path],
    spans: InMemorySpanExporter,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("OTEL_TRACES_EXPORTER")
    result = invoke(test_compare.compare_args(workspace, sim, prompts, "--quiet"))
    assert result.exit_code == 0, result.output
    assert len(read_rows(workspace.out)) == 14
    assert spans.get_finished_spans() == ()
