"""Crash consistency: `kill -9` at seeded random points of a run, over and over.

After every kill, each output path holds the previous complete file (or nothing, if there was
none) -- or, when the kill came after the run had published it, a new file that is itself
complete -- and never a broken one: pyarrow must open it and it must equal one of the two.
At the end, the same command runs to completion and pays only for what had not finished:
requests sent == distinct requests of the corpus - answers already in the cache.

Two loops, because the places a kill can land are far apart in time:
- a PDF/DOCX corpus led by a long PDF, killed while extraction runs (before any chat request)
  or in the middle of the calls (requests on the wire);
- a corpus of fat text chunks whose answers are all cached, killed while the Parquet files
  are being written (the temporary file is growing).
"""

from __future__ import annotations

import os
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from bench.corpus import document_text
from dscall.simulator import SimulatorThread
from tests.chaos.conftest import (
    SEED,
    Corpus,
    cache_entries,
    check_rows,
    kill_group,
    known_corpus,
    pause,
    process_args,
    start_dscall,
    wait_until,
)
from tests.integration.conftest import invoke, read_rows
from tests.unit.documents.builders import make_docx, make_pdf

PROMPT = "Key facts, with figures: {text}"
PREVIOUS_PROMPT = "An earlier question: {text}"
DOC_KILLS = 6  # alternately during extraction and mid-call
WRITE_KILLS = 5


def _pages(first: int, count: int) -> list[str]:
    pages = []
    for number in range(first, first + count):
        text = document_text(number, 60)
        pages.append("\n".join(text[i : i + 90] for i in range(0, len(text), 90)))
    return pages


@pytest.fixture(scope="module")
def doc_corpus(tmp_path_factory: pytest.TempPathFactory) -> Corpus:
    folder = tmp_path_factory.mktemp("crash-docs") / "corpus"
    folder.mkdir()
    # First in input order and long: no chat request can go out before it is extracted.
    make_pdf(folder / "a-annual-report.pdf", _pages(0, 250))
    for i in range(3):
        make_pdf(folder / f"brief-{i}.pdf", _pages(1000 + 40 * i, 30))

        def build(document: Any, i: int = i) -> None:
            document.add_heading(f"Notes {i}", level=1)
            for k in range(30):
                document.add_paragraph(document_text(3000 + 100 * i + k, 50))

        make_docx(folder / f"notes-{i}.docx", build)
    chunk_args = ("--chunk-tokens", "600", "--overlap-tokens", "0", "--tokenizer", "estimate")
    return known_corpus(folder, folder.parent / "chunks.parquet", chunk_args)


@pytest.fixture(scope="module")
def fat_corpus(tmp_path_factory: pytest.TempPathFactory) -> Corpus:
    """Big chunks of text that compresses poorly, so the Parquet files take a while to write."""
    folder = tmp_path_factory.mktemp("crash-fat") / "corpus"
    folder.mkdir()
    rng = random.Random(SEED)
    vocabulary = [
        "".join(rng.choices("abcdefghijklmnopqrstuvwxyz", k=rng.randint(3, 9))) for _ in range(5000)
    ]
    for f in range(40):
        paragraphs = []
        for p in range(30):
            words = rng.choices(vocabulary, k=160)
            sentences = [" ".join(words[i : i + 16]).capitalize() + "." for i in range(0, 160, 16)]
            paragraphs.append(f"File {f}, part {p}. " + " ".join(sentences))
        (folder / f"file_{f:03d}.txt").write_text("\n\n".join(paragraphs), encoding="utf-8")
    chunk_args = ("--chunk-tokens", "2000", "--overlap-tokens", "0", "--tokenizer", "estimate")
    return known_corpus(folder, folder.parent / "chunks.parquet", chunk_args)


@dataclass
class CrashLoop:
    """One output folder, killed runs of one command, and what each path held before."""

    sim: SimulatorThread
    corpus: Corpus
    root: Path
    rng: random.Random = field(default_factory=lambda: random.Random(SEED))
    previous: dict[str, pa.Table | None] = field(default_factory=dict)
    phases: list[str] = field(default_factory=list)

    @property
    def out(self) -> Path:
        return self.root / "out" / "results.parquet"

    @property
    def docs_out(self) -> Path:
        return self.root / "out" / "documents.parquet"

    @property
    def cache(self) -> Path:
        return self.root / "cache"

    def args(self, *extra: str) -> list[str]:
        return process_args(
            self.sim,
            self.corpus,
            self.out,
            self.cache,
            "--documents-out",
            str(self.docs_out),
            *extra,
        )

    def complete_run(self, *extra: str) -> None:
        """A run that finishes: its files become the 'previous' ones."""
        result = invoke(self.args(*extra))
        assert result.exit_code == 0, result.stderr
        self.previous = {"out": pq.read_table(self.out), "docs": pq.read_table(self.docs_out)}

    def check_after_kill(self, template: str) -> None:
        for name, path in (("out", self.out), ("docs", self.docs_out)):
            before = self.previous.get(name)
            if not path.exists():
                assert before is None, f"{name}: the previous file is gone"
                continue
            table = pq.read_table(path)  # a torn file would not even open
            if before is not None and table.equals(before):
                continue
            # Not the previous file: then the killed run had published it, whole.
            self._check_whole(name, path, template)
            self.previous[name] = table

    def _check_whole(self, name: str, path: Path, template: str) -> None:
        rows = read_rows(path)
        if name == "out":
            _, failed = check_rows(rows, self.corpus, template=template)
            assert not failed
            return
        assert len(rows) == len({doc for doc, _ in self.corpus.chunks})
        assert all(row["status"] == "ok" for row in rows)

    def final_rerun_pays_only_the_rest(self, template: str) -> int:
        """Run the same command to the end; returns how many answers it had to buy."""
        stored = cache_entries(self.cache)
        self.sim.reset_stats()
        self.sim.config.latency_ms = 0
        result = invoke(self.args("--prompt", template))
        assert result.exit_code == 0, result.stderr
        rows = read_rows(self.out)
        _, failed = check_rows(rows, self.corpus, template=template)
        assert not failed
        unique = len({row["request_hash"] for row in rows})
        paid = int(self.sim.stats()["requests_received"])
        assert paid == unique - stored
        # Each killed run left a temporary file; a later run cleared them all away.
        assert sorted(self.out.parent.glob(".*.tmp")) == []
        return paid


def test_sigkill_during_extraction_and_mid_call(
    sim: SimulatorThread, doc_corpus: Corpus, tmp_path: Path
) -> None:
    loop = CrashLoop(sim, doc_corpus, tmp_path)
    # Killed runs before any run ever finished: nothing at the output paths, nothing broken.
    proc = start_dscall(loop.args("--prompt", PREVIOUS_PROMPT, "--no-cache"))
    wait_until(lambda: sim.stats()["other_requests"] >= 1, proc)
    kill_group(proc)
    loop.check_after_kill(PREVIOUS_PROMPT)
    assert not loop.out.exists()
    loop.complete_run("--prompt", PREVIOUS_PROMPT, "--no-cache")

    sim.config.latency_ms = 30  # requests are on the wire when the kill comes
    for iteration in range(DOC_KILLS):
        sim.reset_stats()
        during_extraction = iteration % 2 == 0
        # Every run reads the files again, as a run over changed files does: the manifest of
        # unchanged files (documents/manifest.py) would otherwise hand them on unread, and
        # there would be no extraction to kill.
        for path in doc_corpus.folder.rglob("*"):
            os.utime(path)
        proc = start_dscall(loop.args("--prompt", PROMPT, "--concurrency", "8"))
        if during_extraction:
            # The pre-flight GET /models is done; extraction of the long PDF is under way.
            if wait_until(lambda: sim.stats()["other_requests"] >= 1, proc):
                pause(proc, loop.rng.uniform(0.0, 0.25))
        else:
            answers = loop.rng.randint(1, 40)

            def answered(n: int = answers) -> bool:
                return int(sim.stats()["responses_by_status"].get("200", 0)) >= n

            wait_until(answered, proc)
        sent = int(sim.stats()["requests_received"])
        if proc.poll() is not None:
            loop.phases.append("finished")
        elif sent == 0:
            loop.phases.append("extraction")
        else:
            loop.phases.append("calls")
        kill_group(proc)
        loop.check_after_kill(PROMPT)
    assert {"extraction", "calls"} <= set(loop.phases), loop.phases
    assert loop.previous["out"] is not None
    paid = loop.final_rerun_pays_only_the_rest(PROMPT)
    assert paid > 0  # the kills came before the end: there was something left to buy


def test_sigkill_while_writing_parquet(
    sim: SimulatorThread, fat_corpus: Corpus, tmp_path: Path
) -> None:
    loop = CrashLoop(sim, fat_corpus, tmp_path)
    loop.complete_run("--prompt", PROMPT)  # fills the cache: later runs are extract + write
    for _ in range(WRITE_KILLS):
        proc = start_dscall(loop.args("--prompt", PROMPT))
        if wait_until(lambda: _temp_bytes(loop.out.parent) > 64 * 1024, proc):
            # Rows are reaching a temporary file: the write is under way.
            pause(proc, loop.rng.uniform(0.0, 0.15))
        loop.phases.append("finished" if proc.poll() is not None else "writing")
        kill_group(proc)
        loop.check_after_kill(PROMPT)
    assert "writing" in loop.phases, loop.phases
    assert loop.final_rerun_pays_only_the_rest(PROMPT) == 0


def _temp_bytes(folder: Path) -> int:
    """Bytes in the temporary files of runs writing into ``folder``."""
    total = 0
    for temp in folder.glob(".*.tmp"):
        try:
            total += temp.stat().st_size
        except FileNotFoundError:  # renamed into place (or removed) since the listing
            continue
    return total
