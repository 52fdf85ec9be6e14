"""A big text file that changes while its chunks are being sent becomes that document's
FileChanged error row; the run and the output go on (later documents are processed)."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

from dscall.simulator import SimulatorThread
from tests.integration.conftest import read_rows, write_corpus

_SENTENCE = "The committee reviewed figure {n} in detail and approved it. "


def _big_text(path: Path, megabytes: int) -> None:
    with path.open("w", encoding="utf-8") as handle:
        n = 0
        while handle.tell() < megabytes * 1024 * 1024:
            handle.write(_SENTENCE.format(n=n))
            n += 1
            if n % 5 == 0:
                handle.write("\n\n")


def test_a_file_changed_mid_run_is_its_documents_error_and_the_run_goes_on(
    sim: SimulatorThread, tmp_path: Path
) -> None:
    corpus = tmp_path / "corpus"
    big = corpus / "a_big.txt"
    write_corpus(corpus, docs=3)  # doc_0000.txt ... after a_big.txt in input order
    _big_text(big, megabytes=5)  # streamed (>= 4 MB): its chunks are read again as sent
    sim.config.latency_ms = 50
    out = tmp_path / "results.parquet"
    documents = tmp_path / "documents.parquet"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "dscall",
            "process",
            str(corpus),
            "--out",
            str(out),
            "--documents-out",
            str(documents),
            "--base-url",
            sim.base_url,
            "--cache-dir",
            str(tmp_path / "cache"),
            "--chunk-tokens",
            "64",
            "--overlap-tokens",
            "0",
            "--tokenizer",
            "estimate",
            "--concurrency",
            "64",
            "--no-text",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        while sim.stats()["requests_received"] == 0:
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, "the run never got going"
            time.sleep(0.01)
        # The first chunks are out; the second megabyte has not been read again yet (the
        # dispatch window holds ~4,000 chunks, the first megabyte ~5,000). Change it.
        with big.open("r+b") as handle:
            handle.seek(1536 * 1024)
            handle.write(b"CHANGED " * 64)
        _, stderr = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 1, stderr
    assert "Traceback" not in stderr
    rows = read_rows(out)
    changed = [r for r in rows if r["error_type"] == "FileChanged"]
    assert len(changed) == 1
    assert changed[0]["doc_path"] == "a_big.txt"
    assert changed[0]["chunk_index"] is None
    assert "changed while dscall was reading it" in changed[0]["error_message"]
    big_rows = [r for r in rows if r["doc_path"] == "a_big.txt" and r["chunk_index"] is not None]
    assert big_rows  # the chunks sent before the change are kept, and are ok
    assert all(r["status"] == "ok" for r in big_rows)
    assert len(big_rows) < big_rows[0]["chunk_count"]
    later = [r for r in rows if r["doc_path"].startswith("doc_")]
    assert {r["doc_path"] for r in later} == {"doc_0000.txt", "doc_0001.txt", "doc_0002.txt"}
    assert all(r["status"] == "ok" for r in later)
    docs = {r["doc_path"]: r for r in read_rows(documents)}
    assert docs["a_big.txt"]["status"] == "error"
    assert docs["a_big.txt"]["error_type"] == "FileChanged"
    assert docs["a_big.txt"]["output"] is None
    assert all(docs[name]["status"] == "ok" for name in ("doc_0000.txt", "doc_0001.txt"))
    assert len(docs) == 4
