"""--schema against the simulator over real HTTP (SPEC §10): typed columns, re-asks, failures.

The simulator answers JSON mode with a schema in the system prompt by an object that follows
it, a pure function of the chunk (``expected_schema_answer``); ``schema_violations`` breaks the
first answer of a conversation on purpose, so that re-asking is exercised end to end.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from dscall.simulator import SimulatorThread
from tests.integration.conftest import Workspace, invoke, read_rows

SCHEMA = {
    "type": "object",
    "properties": {
        "title": {"type": "string"},
        "year": {"type": "integer"},
        "score": {"type": "number"},
        "final": {"type": "boolean"},
        "kind": {"type": "string", "enum": ["report", "minutes", "other"]},
        "tags": {"type": "array", "items": {"type": "string"}},
        "parties": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {"name": {"type": "string"}, "role": {"type": "string"}},
                "required": ["name", "role"],
            },
        },
        "note": {"type": ["string", "null"]},
    },
    "required": ["title", "year", "score", "final", "kind", "tags", "parties"],
}


def schema_file(tmp_path: Path, schema: dict[str, Any] = SCHEMA) -> Path:
    path = tmp_path / "schema.json"
    path.write_text(json.dumps(schema), encoding="utf-8")
    return path


def distinct_corpus(workspace: Workspace, documents: int = 100) -> None:
    """One-chunk documents of distinct text: no two requests alike (no single flight)."""
    for old in workspace.corpus.iterdir():
        old.unlink()
    for i in range(documents):
        text = f"Note {i}. A team of {i * 7 + 3} people reviewed item {i * 13 + 5} on day {i}."
        (workspace.corpus / f"note_{i:03d}.txt").write_text(text, encoding="utf-8")


def audit(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_typed_columns_read_back_in_pyarrow_and_duckdb(
    sim: SimulatorThread, workspace: Workspace, tmp_path: Path
) -> None:
    result = invoke(workspace.args(sim, "--schema", str(schema_file(tmp_path)), "--quiet"))
    assert result.exit_code == 0, result.stderr
    schema = pq.read_schema(workspace.out)
    assert schema.field("title").type == pa.string()
    assert schema.field("year").type == pa.int64()
    assert schema.field("score").type == pa.float64()
    assert schema.field("final").type == pa.bool_()
    assert schema.field("tags").type == pa.list_(pa.string())
    parties = schema.field("parties").type
    assert pa.types.is_list(parties)
    assert pa.types.is_struct(parties.value_type)
    assert {parties.value_type.field(i).name for i in range(2)} == {"name", "role"}
    rows = read_rows(workspace.out)
    assert rows
    assert all(row["status"] == "ok" for row in rows)
    for row in rows:
        answer = json.loads(row["output"])  # the full object is in output too
        for name in SCHEMA["properties"]:
            assert row[name] == answer.get(name), name
    query = """
        SELECT count(*) AS n, sum(year) AS years, count(DISTINCT kind) AS kinds,
               sum(len(parties)) AS people
        FROM read_parquet(?) WHERE status = 'ok'
    """
    found = duckdb.connect().execute(query, [str(workspace.out)]).fetchone()
    assert found is not None
    n, years, kinds, people = found
    assert n == len(rows)
    assert years == sum(row["year"] for row in rows)
    assert kinds == len({row["kind"] for row in rows})
    assert people == sum(len(row["parties"]) for row in rows)


def test_violations_are_asked_again_until_every_row_is_valid(
    sim: SimulatorThread, workspace: Workspace, tmp_path: Path
) -> None:
    distinct_corpus(workspace)
    sim.config.schema_violations = 0.3
    log = tmp_path / "audit.jsonl"
    summary = tmp_path / "summary.json"
    result = invoke(
        workspace.args(
            sim, "--schema", str(schema_file(tmp_path)), "--audit-log", str(log),
            "--summary-json", str(summary), "--quiet",
        )
    )  # fmt: skip
    assert result.exit_code == 0, result.stderr
    rows = read_rows(workspace.out)
    assert all(row["status"] == "ok" for row in rows)
    lines = audit(log)
    reasks = [line for line in lines if line["reask"] > 0]
    assert reasks  # some answers were asked again
    assert all(line["attempt"] >= 1 and line["status"] == 200 for line in reasks)
    assert len(lines) == len(rows) + len(reasks)  # one first ask per chunk, plus the re-asks
    figures = json.loads(summary.read_text())
    assert figures["schema"] == {"reasks": len(reasks), "invalid": 0}
    assert 0.15 * len(rows) < len(reasks) < 0.45 * len(rows)
    # A row's attempts and cost cover every ask of its chunk.
    assert sum(row["attempts"] for row in rows) == len(lines)


def test_without_retries_the_violations_fail_their_rows_and_keep_the_answer(
    sim: SimulatorThread, workspace: Workspace, tmp_path: Path
) -> None:
    distinct_corpus(workspace)
    sim.config.schema_violations = 0.3
    result = invoke(
        workspace.args(
            sim, "--schema", str(schema_file(tmp_path)), "--schema-retries", "0", "--quiet"
        )
    )
    assert result.exit_code == 1, result.stderr
    rows = read_rows(workspace.out)
    failed = [row for row in rows if row["status"] == "error"]
    assert 0.15 * len(rows) < len(failed) < 0.45 * len(rows)
    broken = sum(recording_kinds(sim).values())
    assert len(failed) == broken  # each answer the simulator broke failed its row
    for row in failed:
        assert row["error_type"] == "SchemaValidationError"
        assert row["output"]  # the raw answer, kept
        assert "does not follow the schema" in row["error_message"]
        assert row["title"] is None  # typed columns null where the answer failed


def recording_kinds(sim: SimulatorThread) -> dict[str, int]:
    kinds: dict[str, int] = sim.stats()["schema_violations"]
    return kinds


def test_the_schema_is_part_of_the_cache_key(
    sim: SimulatorThread, workspace: Workspace, tmp_path: Path
) -> None:
    first = invoke(workspace.args(sim, "--schema-inline", "title str, year int", "--quiet"))
    assert first.exit_code == 0, first.stderr
    sent = sim.stats()["requests_received"]
    again = invoke(workspace.args(sim, "--schema-inline", "title str, year int", "--quiet"))
    assert again.exit_code == 0, again.stderr
    assert sim.stats()["requests_received"] == sent  # same schema: all cached
    other = invoke(workspace.args(sim, "--schema-inline", "title str, pages int", "--quiet"))
    assert other.exit_code == 0, other.stderr
    assert sim.stats()["requests_received"] == 2 * sent  # another schema: asked anew
    assert "pages" in pq.read_schema(workspace.out).names


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--schema-inline", "status str"], "'status' (--schema) is also a column of --out"),
        (["--schema-inline", "title str", "--schema", "x.json"], "not both"),
        (["--schema-inline", "title str", "--mode", "refine"], "--schema applies to --mode map"),
    ],
)
def test_schema_usage_errors_before_anything_is_sent(
    args: list[str], message: str, sim: SimulatorThread, workspace: Workspace
) -> None:
    result = invoke(workspace.args(sim, *args))
    assert result.exit_code == 2, result.stderr
    assert message in result.stderr
    assert sim.stats()["requests_received"] == 0


def test_an_unsupported_keyword_is_named(
    sim: SimulatorThread, workspace: Workspace, tmp_path: Path
) -> None:
    bad = {"type": "object", "properties": {"year": {"type": "integer", "minimum": 1900}}}
    result = invoke(workspace.args(sim, "--schema", str(schema_file(tmp_path, bad))))
    assert result.exit_code == 2, result.stderr
    assert "minimum" in result.stderr
    assert sim.stats()["requests_received"] == 0


def test_a_pipeline_reduce_with_a_schema_writes_a_typed_documents_table(
    sim: SimulatorThread, workspace: Workspace, tmp_path: Path
) -> None:
    sim.config.schema_violations = 0.2  # re-asks inside a chain too
    pipeline = tmp_path / "facts.toml"
    pipeline.write_text(
        '[[steps]]\nname = "facts"\nkind = "map"\nprompt = "Facts as JSON: {text}"\n'
        'schema_inline = "topic str, people int, words list[str]"\n\n'
        '[[steps]]\nname = "merged"\nkind = "reduce"\ninput = "facts"\n'
        'prompt = "Merge these JSON objects into one: {outputs}"\n'
        'schema_inline = "topic str, total int, kind str(report|notes), who list[{name str}]"\n',
        encoding="utf-8",
    )
    docs_out = tmp_path / "docs.parquet"
    result = invoke(
        workspace.args(
            sim, "--pipeline", str(pipeline), "--documents-out", str(docs_out), "--quiet"
        )
    )
    assert result.exit_code == 0, result.stderr
    chunk_schema = pq.read_schema(workspace.out)
    assert chunk_schema.field("people").type == pa.int64()
    assert chunk_schema.field("words").type == pa.list_(pa.string())
    doc_schema = pq.read_schema(docs_out)
    assert doc_schema.field("total").type == pa.int64()
    assert doc_schema.field("kind").type == pa.string()
    who = doc_schema.field("who").type
    assert pa.types.is_list(who)
    assert pa.types.is_struct(who.value_type)
    docs = read_rows(docs_out)
    assert docs
    for doc in docs:
        assert doc["status"] == "ok", doc
        merged = json.loads(doc["merged_output"])  # the reduce's object, whole
        assert {k: doc[k] for k in ("topic", "total", "kind", "who")} == merged
    rows = read_rows(workspace.out)
    assert all(row["status"] == "ok" and row["people"] is not None for row in rows)
    assert sim.stats()["schema_violations"]  # some first answers were broken, and mended


def test_a_schema_property_may_not_take_a_documents_column(
    sim: SimulatorThread, workspace: Workspace, tmp_path: Path
) -> None:
    pipeline = tmp_path / "clash.toml"
    pipeline.write_text(
        '[[steps]]\nname = "m"\nkind = "map"\n\n'
        '[[steps]]\nname = "r"\nkind = "reduce"\nprompt = "All: {outputs}"\n'
        'schema_inline = "calls int"\n',
        encoding="utf-8",
    )
    result = invoke(workspace.args(sim, "--pipeline", str(pipeline)))
    assert result.exit_code == 2, result.stderr
    assert "'calls' (a pipeline step) is also a column of --documents-out" in result.stderr
    assert sim.stats()["requests_received"] == 0
