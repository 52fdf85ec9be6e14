"""Fixtures for driving `dscall process` end to end against the simulator over real HTTP."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from dscall.calls.request import PromptTemplate
from dscall.cli import app
from dscall.config import DEFAULT_PROMPT_TEMPLATE, DEFAULT_SYSTEM_PROMPT
from dscall.simulator import SimulatorConfig, SimulatorThread, expected_answer

SENTENCES = [
    "The committee reviewed the quarterly figures in detail.",
    "Revenue rose by twelve percent while costs stayed flat.",
    "Several customers asked for faster delivery to remote regions.",
    "The new warehouse opens in March and employs forty people.",
    "Risks include currency swings and a tight labour market.",
    "The board approved the budget for the coming year.",
]


def document_text(index: int, paragraphs: int = 4) -> str:
    """A deterministic multi-paragraph document, different for each index."""
    out = []
    for p in range(paragraphs):
        picked = [SENTENCES[(index + p + k) % len(SENTENCES)] for k in range(3)]
        out.append(f"Document {index}, part {p}. " + " ".join(picked))
    return "\n\n".join(out)


def write_corpus(folder: Path, docs: int, paragraphs: int = 4) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(docs):
        (folder / f"doc_{i:04d}.txt").write_text(document_text(i, paragraphs), encoding="utf-8")
    return folder


@dataclass
class Workspace:
    root: Path
    corpus: Path
    out: Path
    cache: Path

    def args(self, sim: SimulatorThread, *extra: str, inputs: list[str] | None = None) -> list[str]:
        return [
            "process",
            *(inputs if inputs is not None else [str(self.corpus)]),
            "--out",
            str(self.out),
            "--base-url",
            sim.base_url,
            "--cache-dir",
            str(self.cache),
            "--chunk-tokens",
            "64",
            "--overlap-tokens",
            "0",
            "--tokenizer",
            "estimate",
            *extra,
        ]


@pytest.fixture
def workspace(tmp_path: Path) -> Workspace:
    return Workspace(
        root=tmp_path,
        corpus=write_corpus(tmp_path / "corpus", docs=12),
        out=tmp_path / "out" / "results.parquet",
        cache=tmp_path / "cache",
    )


@pytest.fixture
def sim() -> Iterator[SimulatorThread]:
    with SimulatorThread(SimulatorConfig()) as running:
        yield running


def invoke(args: list[str]) -> Any:
    """Run the CLI in this process (stdout and stderr captured apart)."""
    return CliRunner().invoke(app, args, catch_exceptions=False)


def read_rows(path: Path) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = pq.read_table(str(path)).to_pylist()
    return rows


def expected_output(chunk_text: str, template: str = DEFAULT_PROMPT_TEMPLATE) -> str:
    """What the simulator answers for a chunk sent with the default system prompt."""
    user = PromptTemplate.parse(template).render(
        {
            "text": chunk_text,
            "path": "",
            "page_start": "",
            "page_end": "",
            "chunk_index": "",
            "chunk_count": "",
        }
    )
    return expected_answer(
        [{"role": "system", "content": DEFAULT_SYSTEM_PROMPT}, {"role": "user", "content": user}]
    )


def assert_rows_complete(rows: list[dict[str, Any]]) -> None:
    """One row per chunk, in (document, chunk) order, each chunk_count consistent."""
    keys = [(row["doc_path"], row["chunk_index"]) for row in rows]
    assert keys == sorted(keys), "rows are not in input order"
    assert len(set(keys)) == len(keys), "a chunk has more than one row"
    by_doc: dict[str, list[int]] = {}
    for row in rows:
        by_doc.setdefault(row["doc_path"], []).append(row["chunk_index"])
    for doc_path, indexes in by_doc.items():
        count = next(r["chunk_count"] for r in rows if r["doc_path"] == doc_path)
        assert indexes == list(range(count)), f"{doc_path}: chunks {indexes} of {count}"


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, isolated_env: Path) -> Path:
    """A project folder as the working directory, settings files read (the suite's
    DSCALL_NO_CONFIG off)."""
    monkeypatch.delenv("DSCALL_NO_CONFIG")
    folder = tmp_path / "project"
    folder.mkdir()
    monkeypatch.chdir(folder)
    return folder
