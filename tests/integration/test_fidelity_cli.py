"""Issue 14 end to end: `--headers` on `chunks` and `process`, and the fidelity fixtures read
through the real worker pool (forms, notes, an AES-256 file pdfium refuses)."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from dscall.output.parquet import read_metadata
from dscall.simulator import SimulatorThread
from tests.integration.conftest import Workspace, invoke, read_rows

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "documents"
HEADER = "ACME Logistics - confidential"
FOOTER = "Quarterly report footer"


def _corpus(tmp_path: Path, *names: str) -> Path:
    folder = tmp_path / "docs"
    folder.mkdir()
    for name in names:
        shutil.copy(FIXTURES / name, folder / name)
    return folder


def _texts(rows: list[dict[str, Any]]) -> dict[str, str]:
    texts: dict[str, str] = {}
    for row in rows:
        texts[row["doc_path"]] = texts.get(row["doc_path"], "") + (row["chunk_text"] or "")
    return texts


def test_chunks_reads_headers_only_with_the_option(tmp_path: Path) -> None:
    corpus = _corpus(tmp_path, "headers_footers.docx")
    plain, with_headers = tmp_path / "plain.parquet", tmp_path / "headers.parquet"
    assert invoke(["chunks", str(corpus), "--out", str(plain)]).exit_code == 0
    assert invoke(["chunks", str(corpus), "--out", str(with_headers), "--headers"]).exit_code == 0
    (text,) = _texts(read_rows(plain)).values()
    assert HEADER not in text
    assert FOOTER not in text
    (text,) = _texts(read_rows(with_headers)).values()
    assert text.startswith(HEADER)
    assert text.endswith(FOOTER)
    assert read_metadata(plain)["settings"]["docx_headers_footers"] is False
    assert read_metadata(with_headers)["settings"]["docx_headers_footers"] is True


def test_fidelity_fixtures_through_the_worker_pool(tmp_path: Path) -> None:
    corpus = _corpus(
        tmp_path,
        "form_filled.pdf",
        "notes.docx",
        "aes256_empty_user_password.pdf",
        "aes256_user_password.pdf",
    )
    out = tmp_path / "chunks.parquet"
    result = invoke(["chunks", str(corpus), "--out", str(out)])
    assert result.exit_code == 1  # the password-protected file is an error row
    rows = read_rows(out)
    texts = _texts([row for row in rows if row["status"] == "ok"])
    assert "Analytical Engines Ltd" in texts["form_filled.pdf"]
    assert "Footnotes:\n[1] Measured in TEU." in texts["notes.docx"]
    assert texts["aes256_empty_user_password.pdf"].startswith("Quarterly budget")
    (error,) = [row for row in rows if row["status"] == "error"]
    assert error["doc_path"] == "aes256_user_password.pdf"
    assert "password-protected PDF" in error["error_message"]


def test_process_headers_changes_the_text_sent_and_so_the_cache_key(
    sim: SimulatorThread, workspace: Workspace
) -> None:
    corpus = _corpus(workspace.root, "headers_footers.docx")
    first = invoke(workspace.args(sim, inputs=[str(corpus)]))
    assert first.exit_code == 0, first.output
    calls = sim.stats()["requests_received"]
    second = invoke(workspace.args(sim, "--headers", inputs=[str(corpus)]))
    assert second.exit_code == 0, second.output
    # Same file, same doc_id, other text: the cache answered nothing, a new call was made.
    assert sim.stats()["requests_received"] > calls
    rows = read_rows(workspace.out)
    assert HEADER in "".join(row["chunk_text"] for row in rows)
