"""`dscall chunks` end to end: samples/, every bad input a user meets, usage errors."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import psutil
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner, Result

from dscall import __version__
from dscall.cli import app
from dscall.output.parquet import read_metadata
from tests.unit.documents.builders import (
    make_docx,
    make_pdf,
    ole2_file,
    pdf_bomb,
    rewrite_zip,
    unreadable,
)

CHINESE = "长江物流第三季度货运量增长百分之十二。"


def _chunks(*args: str) -> Result:
    result = CliRunner().invoke(app, ["chunks", *args])
    # Only a deliberate exit, never an exception escaping the command.
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    assert "Traceback" not in result.output
    return result


def _rows(path: Path) -> list[dict[str, Any]]:
    return list(pq.read_table(path).to_pylist())


def test_samples(samples_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "chunks.parquet"
    result = _chunks(str(samples_dir), "--out", str(out))
    assert result.exit_code == 0, result.output
    rows = _rows(out)
    by_doc: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        by_doc.setdefault(row["doc_path"], []).append(row)
    assert sorted(by_doc) == sorted(p.name for p in samples_dir.iterdir())
    assert {row["status"] for row in rows} == {"ok"}
    for doc_path, doc_rows in by_doc.items():
        assert [r["chunk_index"] for r in doc_rows] == list(range(len(doc_rows)))
        assert {r["chunk_count"] for r in doc_rows} == {len(doc_rows)}
        assert all(r["chunk_text"] and r["chunk_tokens"] > 0 for r in doc_rows)
        assert all(r["char_end"] > r["char_start"] >= 0 for r in doc_rows)
        paged = doc_path.endswith(".pdf")
        assert all((r["page_start"] is not None) == paged for r in doc_rows)
    brief = " ".join(r["chunk_text"] for r in by_doc["logistics-brief-zh.pdf"])
    assert "长江物流" in brief
    assert "Yangtze Logistics" in brief
    handbook = " ".join(r["chunk_text"] for r in by_doc["remote-work-handbook.docx"])
    assert "Coworking space | up to EUR 150 | Needs approval" in handbook
    metadata = read_metadata(out)
    assert metadata["dscall_version"] == __version__
    assert metadata["settings"]["chunk_tokens"] == 2000
    assert metadata["tokenizer"] in ("exact", "estimate")
    assert "documents: 6 (6 ok, 0 failed)" in result.stderr
    assert f"wrote {len(rows)} rows" in result.stderr


@pytest.fixture
def bad_inputs(tmp_path: Path) -> Path:
    folder = tmp_path / "inbox"
    folder.mkdir()
    good = make_pdf(folder / "good.pdf", ["A fine page of text.", "And another."]).read_bytes()
    (folder / "truncated.pdf").write_bytes(good[: len(good) // 2])
    make_pdf(folder / "locked.pdf", ["secret"], user_password="pw")
    (folder / "empty.pdf").write_bytes(b"")
    (folder / "webpage.pdf").write_bytes(b"<!DOCTYPE html><html><body>Login</body></html>")
    (folder / "legacy.docx").write_bytes(ole2_file("WordDocument"))
    (folder / "protected.docx").write_bytes(ole2_file("EncryptedPackage"))
    (folder / "notzip.docx").write_bytes(b"plain text pretending to be Word")
    broken = make_docx(folder / "brokenxml.docx", lambda d: d.add_paragraph("hello"))
    rewrite_zip(broken, {"word/document.xml": b"<w:document><w:body><w:p>"})
    make_pdf(folder / "scanned-page.pdf", ["Typed page.", None])
    (folder / "western.txt").write_bytes("Café résumé, naïve.".encode("cp1252"))
    (folder / "chinese.txt").write_bytes(CHINESE.encode("gbk"))
    (folder / "pathological.pdf").write_bytes(pdf_bomb())
    (folder / "loop").symlink_to(".")
    (folder / "data.xlsx").write_bytes(b"PK\x03\x04 not read")
    return folder


EXPECTED_ERRORS = {
    "truncated.pdf": ("CorruptDocument", "truncated PDF"),
    "locked.pdf": ("EncryptedDocument", "password-protected PDF"),
    "empty.pdf": ("EmptyDocument", "empty file"),
    "webpage.pdf": ("CorruptDocument", "not a PDF: no %PDF header (the content is HTML"),
    "legacy.docx": ("UnsupportedFormat", "legacy Word 97-2003 .doc file"),
    "protected.docx": ("EncryptedDocument", "password-protected Word file"),
    "notzip.docx": ("CorruptDocument", "not a DOCX: not a ZIP archive"),
    "brokenxml.docx": ("CorruptDocument", "broken XML in the DOCX: word/document.xml"),
    "pathological.pdf": ("ExtractionTimeout", "extraction took longer than 1 s"),
}


def test_every_bad_input_gets_a_reason_and_the_run_goes_on(
    bad_inputs: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out.parquet"
    result = _chunks(str(bad_inputs), "--out", str(out), "--extract-timeout", "1")
    assert result.exit_code == 1, result.output
    rows = _rows(out)
    errors = {r["doc_path"]: r for r in rows if r["status"] == "error"}
    assert set(errors) == set(EXPECTED_ERRORS)
    for name, (error_type, message) in EXPECTED_ERRORS.items():
        row = errors[name]
        assert row["error_type"] == error_type, row
        assert row["error_message"].startswith(message), row
        assert "\n" not in row["error_message"]
        assert row["chunk_index"] is None
        assert f"failed {bad_inputs / name}: {error_type}: " in result.stderr
    ok = {r["doc_path"]: r for r in rows if r["status"] == "ok"}
    assert set(ok) == {"good.pdf", "scanned-page.pdf", "western.txt", "chinese.txt"}
    assert ok["chinese.txt"]["chunk_text"] == CHINESE
    assert ok["western.txt"]["chunk_text"] == "Café résumé, naïve."
    stderr = result.stderr
    assert f"note {bad_inputs / 'scanned-page.pdf'}: no text layer on page(s) 2" in stderr
    assert f"warning {bad_inputs / 'chinese.txt'}: not UTF-8: decoded as gb18030" in stderr
    assert f"skipped {bad_inputs / 'loop'}: symbolic link loop" in stderr
    assert f"skipped {bad_inputs / 'data.xlsx'}: unsupported file type '.xlsx'" in stderr
    assert "documents: 13 (4 ok, 9 failed)" in stderr
    assert "no-text pages: 1, skipped: 2, failed: 9" in stderr


def test_unreadable_file_is_skipped_with_its_reason(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    inbox = tmp_path / "inbox"
    inbox.mkdir(mode=0o755)
    (inbox / "readable.txt").write_text("Readable text.")
    (inbox / "private.txt").write_text("Nobody may read this.")
    outdir = tmp_path / "out"
    outdir.mkdir()
    outdir.chmod(0o777)  # the run below may be running as nobody (see `unreadable`)
    monkeypatch.chdir(tmp_path)
    with unreadable(Path("inbox/private.txt")):
        result = _chunks("inbox", "--out", "out/chunks.parquet", "--workers", "1")
    assert result.exit_code == 0, result.output
    assert "skipped inbox/private.txt: permission denied" in result.stderr
    assert [r["doc_path"] for r in _rows(outdir / "chunks.parquet")] == ["readable.txt"]


def test_file_names_with_control_characters_are_shown_escaped(tmp_path: Path) -> None:
    (tmp_path / "ok.txt").write_text("fine")
    (tmp_path / "evil\x1b[2Jname.csv").write_text("x")
    result = _chunks(str(tmp_path), "--out", str(tmp_path / "out.parquet"))
    assert result.exit_code == 0
    assert "evil\\x1b[2Jname.csv" in result.stderr
    assert "\x1b" not in result.stderr


def test_no_text_and_quiet(samples_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "chunks.parquet"
    result = _chunks(str(samples_dir / "meeting-notes.txt"), "-o", str(out), "--no-text", "-q")
    assert result.exit_code == 0
    assert result.stderr == ""
    assert "chunk_text" not in pq.read_schema(out).names
    # A file argument keeps the path it was given as its doc_path.
    assert {r["doc_path"] for r in _rows(out)} == {(samples_dir / "meeting-notes.txt").as_posix()}


def test_small_budget_gives_more_chunks(samples_dir: Path, tmp_path: Path) -> None:
    report = str(samples_dir / "annual-report-2025.pdf")
    counts = []
    for budget in ("2000", "200"):
        out = tmp_path / f"{budget}.parquet"
        args = ["--chunk-tokens", budget, "--overlap-tokens", "20", "--tokenizer", "estimate"]
        assert _chunks(report, "-o", str(out), *args).exit_code == 0
        rows = _rows(out)
        assert max(r["chunk_tokens"] for r in rows) <= int(budget)
        counts.append(len(rows))
    assert counts[1] > counts[0]


def test_no_documents_found_is_a_usage_error(tmp_path: Path) -> None:
    (tmp_path / "sheet.xlsx").write_text("x")
    out = tmp_path / "out.parquet"
    result = _chunks(str(tmp_path), str(tmp_path / "missing"), "--out", str(out))
    assert result.exit_code == 2
    assert "no supported documents" in result.stderr
    assert "skipped" in result.stderr
    assert not out.exists()
    assert not list(tmp_path.glob(".out.parquet.*"))  # the temporary file was removed


@pytest.mark.parametrize("out_kind", ["under_a_file", "a_folder"])
def test_unwritable_out_is_a_usage_error(samples_dir: Path, tmp_path: Path, out_kind: str) -> None:
    (tmp_path / "file.txt").write_text("x")
    out = tmp_path / "file.txt" / "out.parquet" if out_kind == "under_a_file" else tmp_path
    result = _chunks(str(samples_dir / "meeting-notes.txt"), "--out", str(out))
    assert result.exit_code == 2, result.output
    assert result.stderr.startswith("error: ")
    assert len(result.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--tokenizer", "bogus"], "bogus"),
        (["--chunk-tokens", "4"], "chunk-tokens"),
        (["--chunk-tokens", "100", "--overlap-tokens", "60"], "--overlap-tokens must be"),
        (["--pdf-backend", "magic"], "magic"),
        (["--extract-timeout", "0"], "extract-timeout"),
    ],
)
def test_bad_options_exit_2(
    samples_dir: Path, tmp_path: Path, args: list[str], message: str
) -> None:
    result = _chunks(str(samples_dir), "--out", str(tmp_path / "o.parquet"), *args)
    assert result.exit_code == 2
    assert message in result.output
    assert not (tmp_path / "o.parquet").exists()


def test_real_process_never_shows_a_traceback(bad_inputs: Path, tmp_path: Path) -> None:
    dscall = Path(sys.executable).with_name("dscall")
    env = {**os.environ, "NO_COLOR": "1"}
    (bad_inputs / "pathological.pdf").unlink()  # keep this one quick
    completed = subprocess.run(
        [str(dscall), "chunks", str(bad_inputs), "--out", str(tmp_path / "o.parquet")],
        capture_output=True,
        text=True,
        env=env,
        timeout=100,
        check=False,
    )
    assert completed.returncode == 1
    assert "Traceback" not in completed.stderr
    assert completed.stdout == ""
    assert "documents: 12 (4 ok, 8 failed)" in completed.stderr


def _start_busy_run(tmp_path: Path) -> tuple[subprocess.Popen[str], list[int]]:
    """`dscall chunks` on two pathological PDFs, returned once its workers are at them."""
    inbox = tmp_path / "slow"
    inbox.mkdir()
    for name in ("a.pdf", "b.pdf"):
        (inbox / name).write_bytes(pdf_bomb())
    dscall = Path(sys.executable).with_name("dscall")
    run = subprocess.Popen(
        [str(dscall), "chunks", str(inbox), "--out", str(tmp_path / "o.parquet"), "--workers", "2"],
        stderr=subprocess.PIPE,
        text=True,
    )
    workers: list[int] = []
    for _ in range(600):  # until two workers are running (fork server and tracker besides)
        children = psutil.Process(run.pid).children(recursive=True)
        workers = [c.pid for c in children if c.ppid() != run.pid]
        if len(workers) >= 2:
            break
        time.sleep(0.05)
    time.sleep(0.3)  # and at work on their files
    return run, workers


def _all_gone(pids: list[int]) -> bool:
    for _ in range(100):
        alive = [p for p in pids if psutil.pid_exists(p) and psutil.Process(p).status() != "zombie"]
        if not alive:
            return True
        time.sleep(0.05)
    return False


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_sigterm_or_ctrl_c_stops_workers_and_leaves_no_file(
    tmp_path: Path, sig: signal.Signals
) -> None:
    run, workers = _start_busy_run(tmp_path)
    assert len(workers) >= 2
    run.send_signal(sig)
    _, stderr = run.communicate(timeout=60)
    assert run.returncode == 3
    assert stderr.startswith("error: ")
    assert "Traceback" not in stderr
    assert _all_gone(workers)
    assert not (tmp_path / "o.parquet").exists()
    assert not list(tmp_path.glob(".o.parquet*"))


def test_workers_do_not_outlive_a_killed_dscall(tmp_path: Path) -> None:
    run, workers = _start_busy_run(tmp_path)
    assert len(workers) >= 2
    run.kill()
    run.communicate(timeout=60)
    assert _all_gone(workers)  # within seconds, not when their files are done
