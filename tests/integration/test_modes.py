"""--mode map-reduce and --mode refine against the simulator over real HTTP (SPEC §9).

The simulator's answers are pure functions of the request, so each test knows every answer of
the chain before it runs: the map answers, each reduce group's answer level by level, each
refine step's answer. The simulator keeps the request bodies it received, so the tests also
see what each call carried.
"""

from __future__ import annotations

import itertools
import json
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest

from dscall.calls.request import REDUCE_PLACEHOLDERS, REFINE_PLACEHOLDERS, PromptTemplate
from dscall.config import (
    DEFAULT_REDUCE_PROMPT,
    DEFAULT_REFINE_PROMPT,
    DEFAULT_SYSTEM_PROMPT,
    REDUCE_SEPARATOR,
)
from dscall.plans.reduce import group_answers
from dscall.simulator import SimulatorConfig, SimulatorThread, expected_answer
from tests.integration.conftest import (
    Workspace,
    expected_output,
    invoke,
    read_rows,
    write_corpus,
)


@pytest.fixture
def recording() -> Any:
    with SimulatorThread(SimulatorConfig(keep_requests=5000)) as running:
        yield running


def _answer(user: str) -> str:
    return expected_answer(
        [{"role": "system", "content": DEFAULT_SYSTEM_PROMPT}, {"role": "user", "content": user}]
    )


def reduce_user(group: list[str], path: str, chunk_count: int) -> str:
    template = PromptTemplate.parse(DEFAULT_REDUCE_PROMPT, "", REDUCE_PLACEHOLDERS, "outputs")
    values = {
        "outputs": REDUCE_SEPARATOR.join(group),
        "path": path,
        "chunk_count": str(chunk_count),
    }
    return template.render(values)


def expected_tree(
    answers: list[str], budget: int, path: str, count: int, users: set[str] | None = None
) -> tuple[str, int, int]:
    """The final answer, the number of reduce calls and the depth of the tree (the reduce
    requests' user messages are added to ``users``)."""
    level, calls, depth = answers, 0, 0
    while len(level) > 1:
        next_level = []
        for group in group_answers(level, budget):
            if len(group) == 1:
                next_level.append(group[0])
                continue
            user = reduce_user(group, path, count)
            next_level.append(_answer(user))
            calls += 1
            if users is not None:
                users.add(user)
        level = next_level
        depth += 1
    return level[0], calls, depth


def user_messages(sim: SimulatorThread) -> list[str]:
    return [body["messages"][-1]["content"] for body in sim.requests()]


def by_doc(rows: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    grouped: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        grouped.setdefault(row["doc_path"], []).append(row)
    return grouped


def audit(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def mode_args(mode: str) -> list[str]:
    """A mode with a reduce budget small enough for a tree."""
    return ["--mode", mode] + (["--reduce-tokens", "80"] if mode == "map-reduce" else [])


def run(ws: Workspace, sim: SimulatorThread, *extra: str) -> Any:
    return invoke(ws.args(sim, "--documents-out", str(ws.root / "docs.parquet"), "--quiet", *extra))


def documents(ws: Workspace) -> dict[str, dict[str, Any]]:
    return {row["doc_path"]: row for row in read_rows(ws.root / "docs.parquet")}


def test_map_reduce_sends_every_chunk_answer_in_chunk_order(
    recording: SimulatorThread, workspace: Workspace
) -> None:
    (workspace.corpus / "short.txt").write_text("One short note.", encoding="utf-8")
    result = run(workspace, recording, "--mode", "map-reduce", "--reduce-tokens", "100000")
    assert result.exit_code == 0, result.stderr
    rows = read_rows(workspace.out)
    assert {row["step"] for row in rows} == {"map"}
    assert all(row["output"] == expected_output(row["chunk_text"]) for row in rows)
    sent = user_messages(recording)
    docs = documents(workspace)
    assert set(docs) == set(by_doc(rows))
    for path, chunk_rows in by_doc(rows).items():
        answers = [row["output"] for row in sorted(chunk_rows, key=lambda r: r["chunk_index"])]
        doc = docs[path]
        assert doc["status"] == "ok", doc
        if len(answers) == 1:  # one chunk: its answer is the document's, no reduce call
            assert doc["output"] == answers[0]
            assert doc["calls"] == 1
            continue
        user = reduce_user(answers, path, len(answers))
        assert sent.count(user) == 1, path  # one reduce call, every answer, in chunk order
        assert doc["output"] == _answer(user)
        assert doc["calls"] == len(answers) + 1
    assert docs["short.txt"]["calls"] == 1


def test_a_small_reduce_budget_reduces_in_a_tree_of_the_expected_depth(
    recording: SimulatorThread, workspace: Workspace
) -> None:
    write_corpus(workspace.corpus, docs=4, paragraphs=8)
    log = workspace.root / "audit.jsonl"
    budget = 60
    result = run(
        workspace, recording, "--mode", "map-reduce", "--reduce-tokens", str(budget),
        "--audit-log", str(log), "--summary-json", str(workspace.root / "summary.json"),
    )  # fmt: skip
    assert result.exit_code == 0, result.stderr
    reduce_lines = [line for line in audit(log) if line["step"] == "reduce"]
    assert all(line["chunk_index"] is None for line in reduce_lines)
    docs = documents(workspace)
    depths = []
    users: set[str] = set()
    for path, chunk_rows in by_doc(read_rows(workspace.out)).items():
        answers = [row["output"] for row in chunk_rows]
        final, calls, depth = expected_tree(answers, budget, path, len(answers), users)
        depths.append(depth)
        assert docs[path]["output"] == final
        assert docs[path]["calls"] == len(answers) + calls
    assert min(depths) >= 2  # the tree really has levels
    figures = json.loads((workspace.root / "summary.json").read_text())
    assert figures["documents"]["seen"] == len(docs)  # each document counted once
    steps = {step["name"]: step for step in figures["steps"]}
    assert [step["name"] for step in figures["steps"]] == ["map", "reduce"]
    assert steps["map"]["calls"] == len(read_rows(workspace.out))
    assert (
        steps["reduce"]["calls"] == sum(d["calls"] for d in docs.values()) - steps["map"]["calls"]
    )
    assert steps["reduce"]["calls"] - steps["reduce"]["cached"] == len(users)
    # Each distinct reduce request was sent once (identical groups share one call).
    assert len({line["request_hash"] for line in reduce_lines}) == len(users)
    assert len(reduce_lines) == len(users)
    assert users <= set(user_messages(recording))


def test_refine_sends_each_chunk_with_the_answer_so_far(
    recording: SimulatorThread, workspace: Workspace
) -> None:
    result = run(workspace, recording, "--mode", "refine")
    assert result.exit_code == 0, result.stderr
    rows = read_rows(workspace.out)
    assert {row["step"] for row in rows} == {"refine"}
    sent = user_messages(recording)
    refine = PromptTemplate.parse(DEFAULT_REFINE_PROMPT, "", REFINE_PLACEHOLDERS)
    docs = documents(workspace)
    for path, chunk_rows in by_doc(rows).items():
        assert [row["chunk_index"] for row in chunk_rows] == list(range(len(chunk_rows)))
        first = chunk_rows[0]
        assert first["output"] == expected_output(first["chunk_text"])  # asked like a map call
        for previous, row in itertools.pairwise(chunk_rows):
            values = {name: "" for name in REFINE_PLACEHOLDERS}
            values.update(text=row["chunk_text"], previous=previous["output"])
            user = refine.render(values)
            assert user in sent  # the k-th request carries the (k-1)-th answer
            assert row["output"] == _answer(user)
        assert docs[path]["output"] == chunk_rows[-1]["output"]
        assert docs[path]["calls"] == len(chunk_rows)
        assert docs[path]["status"] == "ok"


@pytest.mark.parametrize("mode", ["map-reduce", "refine"])
def test_faults_inside_a_chain_lose_nothing(
    mode: str, recording: SimulatorThread, workspace: Workspace, tmp_path: Path
) -> None:
    clean = run(workspace, recording, *mode_args(mode))
    assert clean.exit_code == 0, clean.stderr
    expected = {path: row["output"] for path, row in documents(workspace).items()}
    config = recording.config
    config.seed = 11
    config.fail = {503: 0.15, 429: 0.1}
    config.reset_rate = 0.05
    faulted = invoke(
        workspace.args(
            recording,
            *mode_args(mode), "--max-retries", "10", "--no-cache", "--quiet",
            "--documents-out", str(tmp_path / "faulted.parquet"),
        )
    )  # fmt: skip
    assert faulted.exit_code == 0, faulted.stderr
    got = {row["doc_path"]: row for row in read_rows(tmp_path / "faulted.parquet")}
    assert {path: row["output"] for path, row in got.items()} == expected
    assert all(row["status"] == "ok" for row in got.values())
    stats = recording.stats()
    assert stats["responses_by_status"].get("503", 0) > 0
    assert stats["faults"].get("reset", 0) > 0


def test_a_document_whose_map_failed_in_part_is_reduced_only_with_allow_partial(
    recording: SimulatorThread, workspace: Workspace
) -> None:
    write_corpus(workspace.corpus, docs=10)
    config = recording.config
    config.seed = 3
    config.fail = {400: 0.2}  # permanent: those calls fail at once, the same way every run
    result = run(workspace, recording, "--mode", "map-reduce", "--reduce-tokens", "100000")
    assert result.exit_code == 1, result.stderr
    rows = by_doc(read_rows(workspace.out))
    docs = documents(workspace)
    failed_maps = {p for p, rs in rows.items() if any(r["status"] == "error" for r in rs)}
    assert failed_maps
    assert failed_maps != set(rows)
    for path in failed_maps:
        doc = docs[path]
        assert doc["status"] == "partial", doc
        assert doc["output"] is None
        assert "not reduced" in doc["error_message"]
        assert "--allow-partial" in doc["error_message"]
        first_failed = next(r for r in rows[path] if r["status"] == "error")
        assert doc["error_type"] == first_failed["error_type"]
        assert first_failed["error_message"] in doc["error_message"]
    # The simulator draws a fault per (body, attempt): a chunk sent again may now succeed.
    partial = run(
        workspace, recording, "--mode", "map-reduce", "--reduce-tokens", "100000",
        "--allow-partial",
    )  # fmt: skip
    assert partial.exit_code == 1, partial.stderr
    rows = by_doc(read_rows(workspace.out))
    docs = documents(workspace)
    sent = user_messages(recording)
    reduced = 0
    for path, chunk_rows in rows.items():
        answers = [r["output"] for r in chunk_rows if r["status"] == "ok"]
        if len(answers) == len(chunk_rows) or len(answers) < 2:
            continue
        reduced += 1
        user = reduce_user(answers, path, len(chunk_rows))
        assert user in sent  # reduced over the answers that did not fail, in chunk order
        doc = docs[path]
        if doc["status"] == "error":  # the reduce call itself drew a 400
            assert doc["output"] is None
            assert "step 'reduce'" in doc["error_message"]
        else:
            assert doc["status"] == "partial"
            assert doc["output"] == _answer(user)
    assert reduced > 0


def test_refine_stops_a_document_at_its_failing_chunk(
    recording: SimulatorThread, workspace: Workspace
) -> None:
    write_corpus(workspace.corpus, docs=10)
    config = recording.config
    config.seed = 5
    config.fail = {400: 0.15}
    result = run(workspace, recording, "--mode", "refine")
    assert result.exit_code == 1, result.stderr
    docs = documents(workspace)
    stopped = 0
    for path, chunk_rows in by_doc(read_rows(workspace.out)).items():
        doc = docs[path]
        failed = [row for row in chunk_rows if row["status"] == "error"]
        if not failed:
            assert doc["status"] == "ok"
            continue
        stopped += 1
        assert failed == chunk_rows[-1:]  # nothing sent after the failing chunk
        good = chunk_rows[:-1]
        if good:
            assert doc["status"] == "partial"
            assert doc["output"] == good[-1]["output"]  # the last good answer kept
        else:
            assert doc["status"] == "error"
            assert doc["output"] is None
    assert stopped > 0


def test_a_rerun_of_a_chain_is_answered_from_the_cache(
    recording: SimulatorThread, workspace: Workspace
) -> None:
    for mode in ("map-reduce", "refine"):
        first = run(workspace, recording, *mode_args(mode))
        assert first.exit_code == 0, first.stderr
        before = {path: row["output"] for path, row in documents(workspace).items()}
        sent = recording.stats()["requests_received"]
        again = run(workspace, recording, *mode_args(mode))
        assert again.exit_code == 0, again.stderr
        assert recording.stats()["requests_received"] == sent  # nothing paid twice
        after = documents(workspace)
        assert {path: row["output"] for path, row in after.items()} == before
        assert all(row["cost_usd"] == 0.0 and row["status"] == "ok" for row in after.values())


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--reduce-prompt", "Combine: {outputs}"], "--reduce-prompt needs --mode map-reduce"),
        (["--mode", "refine", "--reduce-tokens", "100"], "--reduce-tokens needs --mode"),
        (["--mode", "map-reduce", "--refine-prompt", "x {previous}"], "needs --mode refine"),
        (["--mode", "refine", "--refine-prompt", "More: {text}"], "needs {previous}"),
        (["--mode", "map-reduce", "--reduce-prompt", "{outputz}"], "unknown placeholder"),
        (["--mode", "map-reduce", "--allow-partial", "--mode", "map"], "--allow-partial needs"),
    ],
)
def test_chain_options_are_checked_before_anything_is_sent(
    args: list[str], message: str, recording: SimulatorThread, workspace: Workspace
) -> None:
    result = invoke(workspace.args(recording, *args))
    assert result.exit_code == 2, result.stderr
    assert message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert recording.stats()["requests_received"] == 0
    assert not workspace.out.exists()


def test_dry_run_estimates_every_step_as_an_upper_bound(
    recording: SimulatorThread, workspace: Workspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "200")  # the table's labels whole
    dry = invoke(workspace.args(recording, "--mode", "map-reduce", "--dry-run"))
    assert dry.exit_code == 0, dry.stderr
    assert recording.stats()["requests_received"] == 0
    lines = {line.split("│")[1].strip(): line for line in dry.stdout.splitlines() if "│" in line}
    assert "step map" in lines
    assert "step reduce" in lines

    def calls(label: str) -> int:
        return int(lines[label].split("│")[4].replace(",", ""))

    # Answers of at most --max-tokens each, two per reduce call at the 64-token reduce budget.
    real = run(workspace, recording, "--mode", "map-reduce")
    assert real.exit_code == 0, real.stderr
    docs = documents(workspace).values()
    chunks = sum(doc["chunk_count"] for doc in docs)
    assert calls("step map") == chunks
    assert calls("step reduce") == sum(doc["chunk_count"] - 1 for doc in docs)
    assert calls("total") == calls("step map") + calls("step reduce")
    assert sum(doc["calls"] for doc in docs) <= calls("total")


def test_the_budget_holds_a_documents_later_steps_before_its_first_call(
    recording: SimulatorThread, workspace: Workspace, tmp_path: Path
) -> None:
    from dscall.pricing import load_prices

    write_corpus(workspace.corpus, docs=12, paragraphs=6)
    summary = tmp_path / "summary.json"
    result = run(
        workspace, recording, "--mode", "map-reduce", "--budget-usd", "0.1",
        "--summary-json", str(summary), "--concurrency", "4", "--max-concurrency", "4",
    )  # fmt: skip
    assert result.exit_code == 3, result.stderr
    assert "budget" in result.stderr
    figures = json.loads(summary.read_text())
    assert figures["cost_usd"] <= 0.1
    docs = documents(workspace)
    assert docs  # some documents started, and every one that started finished its chain
    assert {doc["status"] for doc in docs.values()} == {"ok"}
    rows = by_doc(read_rows(workspace.out))
    assert set(rows) == set(docs)  # no document mapped and then left unreduced
    assert len(docs) < 12
    prices = load_prices(None)
    assert prices.estimate("deepseek-flash", 1, 1, datetime.now(timezone.utc)) is not None


def test_a_pipeline_of_two_map_steps_writes_both_and_counts_their_rows(
    recording: SimulatorThread, workspace: Workspace, tmp_path: Path
) -> None:
    pipeline = tmp_path / "two.toml"
    pipeline.write_text(
        '[[steps]]\nname = "facts"\nkind = "map"\nprompt = "Facts: {text}"\n\n'
        '[[steps]]\nname = "tone"\nkind = "map"\nprompt = "Tone: {text}"\n\n'
        '[[steps]]\nname = "digest"\nkind = "reduce"\ninput = "tone"\nprompt = "All: {outputs}"\n',
        encoding="utf-8",
    )
    summary = tmp_path / "summary.json"
    result = run(workspace, recording, "--pipeline", str(pipeline), "--summary-json", str(summary))
    assert result.exit_code == 0, result.stderr
    rows = read_rows(workspace.out)
    for path, chunk_rows in by_doc(rows).items():
        steps = [row["step"] for row in chunk_rows]
        count = chunk_rows[0]["chunk_count"]
        assert steps == ["facts"] * count + ["tone"] * count, path  # step, then chunk order
        tone = [row["output"] for row in chunk_rows if row["step"] == "tone"]
        assert tone == [_answer("Tone: " + row["chunk_text"]) for row in chunk_rows[count:]]
    figures = json.loads(summary.read_text())
    assert figures["chunks"]["total"] == figures["chunks"]["done"] == len(rows)
    assert [step["name"] for step in figures["steps"]] == ["facts", "tone", "digest"]
    docs = documents(workspace)
    assert all(doc["status"] == "ok" for doc in docs.values())
    assert "digest_output" in read_rows(workspace.root / "docs.parquet")[0]
