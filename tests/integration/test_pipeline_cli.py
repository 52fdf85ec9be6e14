"""``dscall process --pipeline`` end to end: a bad file stops the run before anything is sent
or written; the example pipeline runs its three steps over every document (SPEC §9)."""

from __future__ import annotations

from pathlib import Path

import pyarrow.parquet as pq
import pytest

from tests.integration.conftest import invoke, read_rows, write_corpus

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "pipeline.toml"


def _args(root: Path, pipeline: Path, *extra: str) -> list[str]:
    return [
        "process",
        str(root / "corpus"),
        "--mock",
        "--pipeline",
        str(pipeline),
        "--out",
        str(root / "out" / "chunks.parquet"),
        "--cache-dir",
        str(root / "cache"),
        "--chunk-tokens",
        "64",
        "--overlap-tokens",
        "0",
        "--tokenizer",
        "estimate",
        "--preview",
        "0",
        *extra,
    ]


def test_a_bad_pipeline_file_is_a_one_line_usage_error(tmp_path: Path) -> None:
    write_corpus(tmp_path / "corpus", docs=2)
    bad = tmp_path / "bad.toml"
    bad.write_text('[[steps]]\nname = "summary"\nkind = "map"\npromt = "x"\n', encoding="utf-8")
    documents = tmp_path / "out" / "documents.parquet"
    result = invoke(_args(tmp_path, bad, "--documents-out", str(documents)))
    assert result.exit_code == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert f"{bad}:4: unknown key 'promt' in step 'summary'" in lines[0]
    assert not (tmp_path / "out").exists()
    assert not (tmp_path / "cache").exists()  # checked before the cache was even opened


def test_the_example_pipeline_runs_every_step(tmp_path: Path) -> None:
    write_corpus(tmp_path / "corpus", docs=3, paragraphs=6)
    documents = tmp_path / "out" / "documents.parquet"
    result = invoke(_args(tmp_path, EXAMPLE, "--documents-out", str(documents)))
    assert result.exit_code == 0, result.stderr
    chunks = read_rows(tmp_path / "out" / "chunks.parquet")
    assert chunks
    assert {row["step"] for row in chunks} == {"summary"}
    assert {row["status"] for row in chunks} == {"ok"}
    table = pq.read_table(str(documents))
    assert {"reduce_output", "classify_output"} <= set(table.column_names)
    rows = table.to_pylist()
    assert len(rows) == 3
    for row in rows:
        assert row["status"] == "ok", row
        assert row["chunk_count"] > 1  # the reduce had answers to combine
        assert row["reduce_output"]
        assert row["classify_output"]


@pytest.mark.parametrize(
    ("extra", "named"),
    [
        (["--mode", "refine"], "--mode refine"),
        (["--mode", "map-reduce"], "--mode map-reduce"),
        (["--reduce-prompt", "All: {outputs}"], "--reduce-prompt"),
        (["--reduce-tokens", "100"], "--reduce-tokens"),
        (["--refine-prompt", "{previous} {text}"], "--refine-prompt"),
    ],
)
def test_pipeline_and_mode_options_do_not_mix(tmp_path: Path, extra: list[str], named: str) -> None:
    write_corpus(tmp_path / "corpus", docs=1)
    result = invoke(_args(tmp_path, EXAMPLE, *extra))
    assert result.exit_code == 2
    assert f"give --pipeline or {named}, not both" in result.stderr
    assert not (tmp_path / "out").exists()


def test_allow_partial_needs_a_reduce_step_in_the_pipeline(tmp_path: Path) -> None:
    write_corpus(tmp_path / "corpus", docs=1)
    maps = tmp_path / "map.toml"
    maps.write_text('[[steps]]\nname = "summary"\nkind = "map"\n', encoding="utf-8")
    result = invoke(_args(tmp_path, maps, "--allow-partial"))
    assert result.exit_code == 2
    assert f"--allow-partial needs a reduce step; {maps} has none" in result.stderr
