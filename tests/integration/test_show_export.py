"""`dscall show` and `dscall export` read back equal to the Parquet rows they come from.

The results come from `dscall process --mock` over a small corpus with one empty document (an
error row). pandas is not installed here, so CSV is read back with the csv module."""

from __future__ import annotations

import csv
import datetime as dt
import fnmatch
import io
import json
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from dscall.cli import app
from dscall.cli.show import fit_widths
from tests.integration.conftest import read_rows, write_corpus

DEFAULT = ["doc_path", "step", "chunk_index", "status", "output", "error_message"]
TYPED = "doc_path,chunk_index,cached,latency_ms,cost_usd,started_at,status,error_type"


def _run(args: list[str], **env: str) -> Any:
    return CliRunner().invoke(app, args, env=env or None, catch_exceptions=False)


def _process(corpus: Path, out: Path, *extra: str) -> None:
    result = _run(
        [
            "process",
            str(corpus),
            "--out",
            str(out),
            "--mock",
            "--cache-dir",
            str(out.parent / "cache"),
            "--chunk-tokens",
            "64",
            "--overlap-tokens",
            "0",
            "--tokenizer",
            "estimate",
            "--quiet",
            *extra,
        ]
    )
    assert result.exit_code in (0, 1), result.output
    assert out.exists()


@pytest.fixture(scope="module")
def results(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("show")
    corpus = write_corpus(root / "corpus", docs=6)
    (corpus / "empty.txt").write_text("", encoding="utf-8")  # an error row
    out = root / "results.parquet"
    _process(corpus, out, "--documents-out", str(root / "documents.parquet"))
    return out


def _plain(value: Any) -> str:
    return "" if value is None else str(value)


def _lines(text: str) -> list[list[str]]:
    return [line.split("\t") for line in text.splitlines()]


def test_show_plain_equals_the_rows(results: Path) -> None:
    result = _run(["show", str(results), "--limit", "0", "--wide"])
    assert result.exit_code == 0, result.output
    header, *body = _lines(result.stdout)
    assert header == DEFAULT
    rows = read_rows(results)
    assert body == [[_plain(row[name]) for name in DEFAULT] for row in rows]
    assert any(row["status"] == "error" for row in rows)


def test_show_filters_by_status_and_document(results: Path) -> None:
    args = ["show", str(results), "--status", "ok", "--doc", "*doc_000[12]*", "--limit", "0"]
    result = _run([*args, "--columns", "doc_path,chunk_index,status"])
    assert result.exit_code == 0, result.output
    expected = [
        [row["doc_path"], str(row["chunk_index"]), "ok"]
        for row in read_rows(results)
        if row["status"] == "ok" and fnmatch.fnmatchcase(row["doc_path"], "*doc_000[12]*")
    ]
    assert expected
    assert _lines(result.stdout)[1:] == expected
    errors = _run(["show", str(results), "--status", "error", "--columns", "doc_path,status"])
    assert _lines(errors.stdout)[1:] == [["empty.txt", "error"]]


def test_show_stops_at_the_limit_and_says_so(results: Path) -> None:
    result = _run(["show", str(results)])
    assert result.exit_code == 0
    assert len(result.stdout.splitlines()) == 1 + 20
    assert "--limit 0" in result.stderr
    three = _run(["show", str(results), "-n", "3"])
    assert len(three.stdout.splitlines()) == 1 + 3


def test_show_cuts_long_cells_to_one_screen_line_unless_wide(results: Path) -> None:
    args = ["show", str(results), "--columns", "chunk_text", "--limit", "3"]
    cut = _lines(_run(args, COLUMNS="40").stdout)[1:]
    assert all(len(cell) <= 40 for (cell,) in cut)
    assert any(cell.endswith("…") for (cell,) in cut)
    whole = _lines(_run([*args, "--wide"], COLUMNS="40").stdout)[1:]
    texts = [row["chunk_text"] for row in read_rows(results)[:3]]
    assert [cell for (cell,) in whole] == [text.replace("\n", "\\x0a") for text in texts]


def test_show_reads_a_documents_file(results: Path) -> None:
    documents = results.with_name("documents.parquet")
    result = _run(["show", str(documents), "--limit", "0", "--wide"])
    header, *body = _lines(result.stdout)
    assert header == ["doc_path", "status", "output", "error_message"]
    assert [cells[0] for cells in body] == [row["doc_path"] for row in read_rows(documents)]


def _csv_equal(cell: str, value: Any) -> bool:
    if value is None:
        return cell == ""
    if isinstance(value, bool):
        return cell == str(value).lower()
    if isinstance(value, dt.datetime):
        return dt.datetime.fromisoformat(cell) == value
    if isinstance(value, int | float):
        return type(value)(cell) == value
    return bool(cell == value)


def _json_equal(item: Any, value: Any) -> bool:
    if isinstance(value, dt.datetime):
        return dt.datetime.fromisoformat(item) == value
    return bool(item == value)


def test_export_csv_reads_back_equal(results: Path, tmp_path: Path) -> None:
    target = tmp_path / "exports" / "rows.csv"
    first = _run(["export", str(results), "--format", "csv", "--out", str(target)])
    assert first.exit_code == 0, first.output
    args = ["export", str(results), "-f", "csv", "--columns", TYPED, "-o", str(target)]
    assert _run(args).exit_code == 2  # an existing file: not replaced without --force
    result = _run([*args, "--force"])
    assert result.exit_code == 0, result.output
    assert [p.name for p in target.parent.iterdir()] == ["rows.csv"]  # no temporary left
    with open(target, newline="", encoding="utf-8") as handle:
        read = list(csv.DictReader(handle))
    rows = pq.read_table(str(results), columns=TYPED.split(",")).to_pylist()
    assert len(read) == len(rows)
    for got, row in zip(read, rows, strict=True):
        assert list(got) == TYPED.split(",")
        assert all(_csv_equal(got[name], row[name]) for name in row), (got, row)


def test_export_jsonl_to_stdout_reads_back_equal(results: Path) -> None:
    result = _run(["export", str(results), "--format", "jsonl", "--status", "ok"])
    assert result.exit_code == 0, result.output
    read = [json.loads(line) for line in result.stdout.splitlines()]
    rows = [row for row in read_rows(results) if row["status"] == "ok"]
    assert [list(item) for item in read] == [DEFAULT] * len(rows)
    everything = _run(["export", str(results), "-f", "jsonl", "--columns", TYPED])
    all_rows = pq.read_table(str(results), columns=TYPED.split(",")).to_pylist()
    for line, row in zip(everything.stdout.splitlines(), all_rows, strict=True):
        item = json.loads(line)
        assert all(_json_equal(item[name], row[name]) for name in row), (item, row)


def test_a_schema_list_column_round_trips(tmp_path: Path) -> None:
    corpus = write_corpus(tmp_path / "corpus", docs=3)
    out = tmp_path / "typed.parquet"
    _process(corpus, out, "--schema-inline", "title str, tags list[str]")
    rows = pq.read_table(str(out), columns=["doc_path", "tags", "title"]).to_pylist()
    assert any(row["tags"] for row in rows)
    args = ["export", str(out), "--columns", "doc_path,tags,title", "--format"]
    jsonl = _run([*args, "jsonl"])
    assert [json.loads(line) for line in jsonl.stdout.splitlines()] == rows
    table = list(csv.DictReader(io.StringIO(_run([*args, "csv"]).stdout)))
    assert [json.loads(item["tags"]) for item in table] == [row["tags"] for row in rows]


def _one_line_error(result: Any) -> str:
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    return str(lines[0])


def test_errors_are_one_line_and_exit_2(results: Path, tmp_path: Path) -> None:
    missing = _one_line_error(_run(["show", str(tmp_path / "nope.parquet")]))
    assert "no such file" in missing
    unknown = _one_line_error(_run(["show", str(results), "--columns", "doc_path,nope"]))
    for name in ("nope", "chunk_text", "finished_at"):
        assert name in unknown
    over = ["export", str(results), "-f", "csv", "--out", str(results), "--force"]
    assert "input" in _one_line_error(_run(over))
    foreign = tmp_path / "foreign.parquet"
    pq.write_table(pa.table({"doc_path": ["a"]}), str(foreign))
    assert "did not write" in _one_line_error(_run(["show", str(foreign)]))
    text = tmp_path / "notes.txt"
    text.write_text("not parquet", encoding="utf-8")
    assert "not a Parquet file" in _one_line_error(_run(["export", str(text), "-f", "csv"]))


def test_fit_widths_keeps_narrow_columns_whole() -> None:
    assert fit_widths([8, 2, 300], 60) == [8, 2, 50]
    assert fit_widths([8, 2, 30], 60) == [8, 2, 30]
    assert fit_widths([100, 100], 60) == [30, 30]


def test_the_command_reads_rows_without_numpy_and_equal(results: Path) -> None:
    """`dscall export` as its own process imports pyarrow without numpy (start-up, issue 13)
    and writes what the in-process export writes, every column, typed ones included."""
    import subprocess
    import sys

    script = (
        "import sys\n"
        "from dscall.cli import main\n"
        "try:\n"
        "    main()\n"
        "finally:\n"
        "    sys.stderr.write(f'numpy: {sys.modules.get(\"numpy\")!r}\\n')\n"
    )
    args = ["export", str(results), "-f", "jsonl", "--columns", TYPED]
    done = subprocess.run(
        [sys.executable, "-c", script, *args], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert "numpy: None" in done.stderr  # blocked, never imported
    assert done.stdout == _run(args).stdout
    assert len(done.stdout.splitlines()) == pq.ParquetFile(str(results)).metadata.num_rows
