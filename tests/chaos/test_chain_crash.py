"""Kill -9 and budget stops in the middle of a chain of calls (SPEC §5, §9).

A chain's state between calls is its answers, and each answer is in the cache the moment it
arrives. So a run killed during the map, during a reduce or in the middle of a refine, then run
again, must write what an uninterrupted run writes and pay only for the calls that had not
finished: requests sent by the rerun == distinct requests of the chain - answers cached. A run
stopped by its budget must leave documents that are whole and right, or marked incomplete.

Every run is held to a reference: the same command, uninterrupted, into a folder with its own
cache, against the same simulator (one answer source, so the same request hashes). Its audit
log names every distinct request of the chain and its step; looking those hashes up in a killed
run's cache tells, step by step, what that run had checkpointed.

Where a kill lands: first the simulator answers every new request 429 (never billed), then the
requests already on their way are answered, and the kill comes once each of those answers is in
the cache. A kill between an answer and its commit would make the rerun buy that answer again,
rightly (nothing could have stored it); killing when no answer is on the wire turns "no answer
paid for twice" into an exact check instead of a likely one. The killed run still holds leases
on the requests it is retrying, which the rerun must take over from a dead process.
"""

from __future__ import annotations

import json
import subprocess
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

from dscall.calls.cache import ResultCache
from dscall.simulator import SimulatorThread
from tests.chaos.conftest import CHUNK_ARGS, cache_entries, kill_group, start_dscall, wait_until
from tests.integration.conftest import invoke, read_rows, write_corpus

# Columns that differ between two runs that wrote the same thing: identity, timing, and what a
# call cost (a cached answer costs nothing, and the simulator's prefix cache, warm after the
# reference run, moves prompt tokens between cache-hit and cache-miss).
VOLATILE = frozenset(
    {
        "run_id",
        "started_at",
        "finished_at",
        "latency_ms",
        "attempts",
        "cached",
        "cost_usd",
        "cache_hit_tokens",
        "cache_miss_tokens",
    }
)
# Few requests in flight, so a chain moves step by step where the kill can find it.
NARROW = ("--concurrency", "4", "--max-concurrency", "4")
# Each reduce call takes two answers: a tree as deep as it gets.
BINARY_TREE = ("--mode", "map-reduce", "--reduce-tokens", "16")
LATENCY_MS = 20.0
REFINE_LATENCY_MS = 30.0
# A price table without off-peak hours, so a budget means the same at any hour of the day.
FLAT_PRICES = {
    "checked": "2026-12",
    "peak_hours": None,
    "models": {
        "deepseek-flash": {"input_cache_hit": 0.006, "input_cache_miss": 0.30, "output": 1.2}
    },
}


@dataclass(frozen=True)
class Reference:
    """What an uninterrupted run wrote, and every distinct request of its chain."""

    steps: dict[str, str]  # request hash -> step
    chunk_rows: list[dict[str, Any]]
    document_rows: list[dict[str, Any]]

    def by_step(self, hashes: Iterable[str]) -> Counter[str]:
        return Counter(self.steps[h] for h in hashes)

    @property
    def cost_usd(self) -> float:
        return float(sum(row["cost_usd"] for row in self.document_rows))


@dataclass
class Chain:
    """One corpus, one chain of calls, and a folder per run of it (outputs, cache, audit)."""

    sim: SimulatorThread
    corpus: Path
    root: Path
    options: tuple[str, ...]

    def args(self, name: str, *extra: str) -> list[str]:
        run = self.root / name
        return [
            "process",
            str(self.corpus),
            "--out",
            str(run / "out" / "results.parquet"),
            "--documents-out",
            str(run / "out" / "documents.parquet"),
            "--base-url",
            self.sim.base_url,
            "--cache-dir",
            str(self.cache(name)),
            "--audit-log",
            str(run / "audit.jsonl"),
            "--summary-json",
            str(run / "summary.json"),
            "--quiet",
            *CHUNK_ARGS,
            *self.options,
            *extra,
        ]

    def cache(self, name: str) -> Path:
        return self.root / name / "cache"

    def chunk_rows(self, name: str) -> list[dict[str, Any]]:
        return read_rows(self.root / name / "out" / "results.parquet")

    def document_rows(self, name: str) -> list[dict[str, Any]]:
        return read_rows(self.root / name / "out" / "documents.parquet")

    def metadata(self, name: str, table: str) -> dict[str, Any]:
        path = self.root / name / "out" / f"{table}.parquet"
        meta = pq.read_metadata(str(path)).metadata
        loaded: dict[str, Any] = json.loads(meta[b"dscall"])
        return loaded

    def summary(self, name: str) -> dict[str, Any]:
        loaded: dict[str, Any] = json.loads((self.root / name / "summary.json").read_text())
        return loaded

    def audit(self, name: str) -> list[dict[str, Any]]:
        text = (self.root / name / "audit.jsonl").read_text()
        return [json.loads(line) for line in text.splitlines()]

    def reference(self, *extra: str) -> Reference:
        result = invoke(self.args("reference", *extra))
        assert result.exit_code == 0, result.stderr
        steps: dict[str, str] = {}
        lines = self.audit("reference")
        for line in lines:
            assert line["status"] == 200, line
            assert not line["cached"], line
            steps[line["request_hash"]] = line["step"]
        assert len(lines) == len(steps), "the reference sent a request twice"
        document_rows = self.document_rows("reference")
        assert all(row["status"] == "ok" for row in document_rows)
        return Reference(steps, self.chunk_rows("reference"), document_rows)

    def cached(self, name: str, ref: Reference) -> set[str]:
        """The requests of the chain whose answers ``name``'s cache holds (and no others)."""
        with ResultCache(self.cache(name), "default") as cache:
            found = {h for h in ref.steps if cache.get(h) is not None}
        assert cache_entries(self.cache(name)) == len(found), "answers to requests of no chain"
        return found

    def rerun_pays_only_the_rest(
        self, name: str, ref: Reference, cached: set[str], *extra: str
    ) -> set[str]:
        """Run ``name``'s command to the end; it writes what the reference wrote and buys
        exactly the answers its cache lacked. Returns the requests it paid for."""
        sent_before = int(self.sim.stats()["requests_received"])
        result = invoke(self.args(name, *extra))
        assert result.exit_code == 0, result.stderr
        sent = int(self.sim.stats()["requests_received"]) - sent_before
        assert sent == len(ref.steps) - len(cached)
        run_id = self.metadata(name, "results")["run_id"]
        paid = {
            line["request_hash"]
            for line in self.audit(name)
            if line["run_id"] == run_id and not line["cached"]
        }
        assert paid == ref.steps.keys() - cached  # the cached steps were replayed, not bought
        assert self.sim.stats()["bodies_paid_more_than_once"] == 0
        assert stable(self.chunk_rows(name)) == stable(ref.chunk_rows)
        assert stable(self.document_rows(name)) == stable(ref.document_rows)
        return paid


def stable(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{k: v for k, v in row.items() if k not in VOLATILE} for row in rows]


def by_doc(rows: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    """Chunk rows per document, in chunk order (the order they are written in)."""
    grouped: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        grouped.setdefault(row["doc_path"], []).append(row)
    return grouped


def answered(sim: SimulatorThread, count: int) -> Callable[[], bool]:
    def condition() -> bool:
        return int(sim.stats()["responses_by_status"].get("200", 0)) >= count

    return condition


def paid_bodies(sim: SimulatorThread) -> int:
    return sum(1 for body in sim.stats(bodies=True)["bodies"].values() if body["paid"])


def kill_with_nothing_on_the_wire(
    sim: SimulatorThread, proc: subprocess.Popen[bytes], cache: Path
) -> None:
    """SIGKILL ``proc`` once every answer the simulator sent it is in its cache (see the
    module docstring). From here on, new requests get an unbilled 429."""
    sim.config.fail = {429: 1.0}
    try:
        # A request is counted in flight from its arrival on: once none is, each one that
        # arrived before the switch has had its answer, and later ones only get 429s.
        assert wait_until(lambda: sim.stats()["in_flight"] == 0, proc, timeout_s=30)
        billed = paid_bodies(sim)
        assert wait_until(lambda: cache_entries(cache) >= billed, proc, timeout_s=30, poll_s=0.01)
        assert proc.poll() is None, "the run ended before the kill"
    finally:
        kill_group(proc)
        # Requests the run wrote just before it died may still sit in the simulator's sockets:
        # they must get their 429 too, or the simulator bills answers no one can store.
        settle(sim)
        sim.config.fail = {}
        sim.config.latency_ms = 0.0


def settle(sim: SimulatorThread, quiet_s: float = 0.25, timeout_s: float = 10.0) -> None:
    """Wait until the simulator has nothing in flight and has read no request for ``quiet_s``."""
    deadline = time.monotonic() + timeout_s
    last = int(sim.stats()["requests_received"])
    quiet_since = time.monotonic()
    while time.monotonic() < deadline:
        time.sleep(0.02)
        stats = sim.stats()
        seen = int(stats["requests_received"])
        if seen != last or stats["in_flight"]:
            last, quiet_since = seen, time.monotonic()
        elif time.monotonic() - quiet_since >= quiet_s:
            return
    raise AssertionError("the simulator still read requests after the run was killed")


def start_and_kill(
    chain: Chain, name: str, when: Callable[[], bool], latency_ms: float, *extra: str
) -> None:
    """Start ``name``'s run as a subprocess and kill it once ``when`` holds."""
    sim = chain.sim
    sim.reset_stats()  # bodies_paid_more_than_once spans this run and its rerun only
    sim.config.latency_ms = latency_ms
    proc = start_dscall(chain.args(name, *extra), stderr_path=chain.root / f"{name}.stderr")
    try:
        fired = wait_until(when, proc, timeout_s=30)
    except BaseException:
        kill_group(proc)
        raise
    if not fired:
        kill_group(proc)
        stderr = (chain.root / f"{name}.stderr").read_text()
        raise AssertionError(f"the run ended (exit {proc.returncode}) before the kill: {stderr}")
    kill_with_nothing_on_the_wire(sim, proc, chain.cache(name))


def test_map_reduce_killed_during_the_map(sim: SimulatorThread, tmp_path: Path) -> None:
    # Long documents: the first one's reduce waits for all of its ~60 chunk answers.
    corpus = write_corpus(tmp_path / "corpus", docs=3, paragraphs=40)
    chain = Chain(sim, corpus, tmp_path, (*BINARY_TREE, *NARROW))
    ref = chain.reference()
    assert set(ref.by_step(ref.steps)) == {"map", "reduce"}

    start_and_kill(chain, "crashed", answered(sim, 8), LATENCY_MS)
    cached = chain.cached("crashed", ref)
    got = ref.by_step(cached)
    assert got["map"] > 0
    assert got["reduce"] == 0  # killed before any document was reduced
    assert got["map"] < ref.by_step(ref.steps)["map"]

    paid = chain.rerun_pays_only_the_rest("crashed", ref, cached)
    assert ref.by_step(paid)["reduce"] == ref.by_step(ref.steps)["reduce"]


def test_map_reduce_killed_during_a_reduce(sim: SimulatorThread, tmp_path: Path) -> None:
    corpus = write_corpus(tmp_path / "corpus", docs=6, paragraphs=24)
    chain = Chain(sim, corpus, tmp_path, (*BINARY_TREE, "--max-concurrency", "8"))
    ref = chain.reference()
    total = ref.by_step(ref.steps)
    assert total["reduce"] >= 60  # deep trees: the reduces outlast the kill's reaction time

    # Past every map answer and a third of the reduce answers: some reduces are in the cache.
    start_and_kill(chain, "crashed", answered(sim, total["map"] + total["reduce"] // 3), LATENCY_MS)
    cached = chain.cached("crashed", ref)
    got = ref.by_step(cached)
    assert 0 < got["reduce"] < total["reduce"]

    paid = chain.rerun_pays_only_the_rest("crashed", ref, cached)
    assert ref.by_step(paid)["reduce"] == total["reduce"] - got["reduce"]


def test_refine_killed_in_the_middle_of_a_sequence(sim: SimulatorThread, tmp_path: Path) -> None:
    # A few long documents: each is a sequence of ~30 calls, one after the other.
    corpus = write_corpus(tmp_path / "corpus", docs=3, paragraphs=20)
    chain = Chain(sim, corpus, tmp_path, ("--mode", "refine"))
    ref = chain.reference()
    sequences = by_doc(ref.chunk_rows)
    assert min(len(rows) for rows in sequences.values()) >= 20

    start_and_kill(chain, "crashed", answered(sim, len(ref.steps) // 2), REFINE_LATENCY_MS)
    cached = chain.cached("crashed", ref)
    assert 0 < len(cached) < len(ref.steps)
    # Where each document's sequence stood: its first step whose answer is not in the cache.
    # (A later step may be: a refine can come back to a request it made before.)
    resume_at = {}
    for doc, rows in sequences.items():
        hashes = [row["request_hash"] for row in rows]
        resume_at[doc] = next((i for i, h in enumerate(hashes) if h not in cached), len(hashes))
    midway = {doc: k for doc, k in resume_at.items() if 0 < k < len(sequences[doc])}
    assert midway, resume_at

    chain.rerun_pays_only_the_rest("crashed", ref, cached)
    rerun = by_doc(chain.chunk_rows("crashed"))
    for doc, k in midway.items():
        assert all(row["cached"] for row in rerun[doc][:k])  # replayed from the cache
        assert not rerun[doc][k]["cached"]  # and sent from there, with the answer so far


def test_a_budget_stop_in_the_middle_of_a_chain(sim: SimulatorThread, tmp_path: Path) -> None:
    corpus = write_corpus(tmp_path / "corpus", docs=8, paragraphs=8)
    prices = tmp_path / "prices.json"
    prices.write_text(json.dumps(FLAT_PRICES), encoding="utf-8")
    options = (*BINARY_TREE, *NARROW, "--prices", str(prices), "--max-tokens", "64")
    chain = Chain(sim, corpus, tmp_path, options)
    ref = chain.reference()
    sim.reset_stats()

    budget = round(ref.cost_usd * 0.4, 6)
    stopped = invoke(chain.args("budget", "--budget-usd", str(budget)))
    assert stopped.exit_code == 3, stopped.stderr
    assert "budget" in stopped.stderr
    summary = chain.summary("budget")
    assert "budget" in summary["stop_reason"]
    assert summary["complete"] is False
    assert summary["cost_usd"] <= budget + 1e-6  # the summary rounds to the micro-dollar
    for table in ("results", "documents"):
        meta = chain.metadata("budget", table)
        assert meta["complete"] is False
        assert meta["exit_code"] == 3
        assert "budget" in meta["stop_reason"]

    docs = chain.document_rows("budget")
    assert sum(row["cost_usd"] for row in docs) <= budget
    statuses = Counter(row["status"] for row in docs)
    # The budget holds a document's whole chain before its first call: the documents it let
    # start are whole, the one it could not finish was never started (no rows at all).
    assert set(statuses) <= {"ok", "incomplete"}, statuses
    assert statuses["ok"] > 0
    assert len(docs) < 8
    want = {row["doc_path"]: row for row in stable(ref.document_rows)}
    for row in stable(docs):
        if row["status"] == "ok":
            assert row == want[row["doc_path"]]
        else:
            assert row["output"] is None
            assert row["error_type"] == "Incomplete"
    chunk_rows = stable(chain.chunk_rows("budget"))
    assert chunk_rows
    want_chunks = stable(ref.chunk_rows)
    assert all(row in want_chunks for row in chunk_rows)  # whatever was written is right

    cached = chain.cached("budget", ref)
    assert 0 < len(cached) < len(ref.steps)
    larger = str(round(ref.cost_usd * 10, 6))
    chain.rerun_pays_only_the_rest("budget", ref, cached, "--budget-usd", larger)


def test_a_budget_for_most_of_a_run_completes_some_documents(
    sim: SimulatorThread, tmp_path: Path
) -> None:
    corpus = write_corpus(tmp_path / "corpus", docs=8, paragraphs=8)
    prices = tmp_path / "prices.json"
    prices.write_text(json.dumps(FLAT_PRICES), encoding="utf-8")
    options = (*BINARY_TREE, *NARROW, "--prices", str(prices), "--max-tokens", "64")
    chain = Chain(sim, corpus, tmp_path, options)
    ref = chain.reference()

    # Answers take a while: the whole window of map calls is handed out before any is back.
    sim.config.latency_ms = 50.0
    budget = round(ref.cost_usd * 0.8, 6)
    stopped = invoke(chain.args("budget", "--budget-usd", str(budget)))
    assert stopped.exit_code == 3, stopped.stderr
    docs = chain.document_rows("budget")
    spent = sum(row["cost_usd"] for row in docs)
    statuses = Counter(row["status"] for row in docs)
    assert statuses["ok"] >= 1, f"{statuses}, ${spent:.6f} of ${budget:.6f} spent"
