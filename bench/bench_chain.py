"""`--mode map-reduce` against the simulator: its request rate beside map mode's, its memory
at 100,000 chunks, and the seed's case (a 100-page PDF at 2 s per call) as one chain.

    .venv/bin/python -m bench.bench_chain [--quick] [--only rps,memory,seed]

Runs as bench_client's items do (``run_dscall``): `dscall process` doing its whole job (cold
cache, audit log, Parquet, --summary-json, plain progress) on the client core, against
`dscall mock-server` pinned to the other. Every run also writes --documents-out, map mode's
included, so that the two modes write the same files and differ only by the reduce calls.
Documents are ``corpus.sentence_text``: sentences all different and of one length, so that
every document cuts into the same number of chunks and no request is answered from the run's
own cache.

- ``rps``: the same corpus in both modes, zero latency; requests/s = ``requests.sent`` /
  ``wall_time_s`` of --summary-json (the run's own clock: interpreter start-up excluded), best
  of ``rounds`` interleaved rounds each. Target: map-reduce >= 0.9x map.
- ``memory``: a 100,000-chunk map-reduce run (10 one-sentence chunks per document), its peak
  resident memory (dscall's process plus its largest descendant, as item 6 sums them).
  Target: <= 300 MB.
- ``seed``: the 100-page PDF of item 4, 50 chunks, 2 s per call, a reduce budget that holds all
  50 answers: one map wave and one reduce. Target: process wall <= 1.25 x (2 s + 2 s) +
  start-up, start-up measured as item 4 does (launch to the first request at the simulator).

``--quick`` shrinks ``rps`` and ``memory``; its figures are not the ones to quote.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.bench_client import (
    CONCURRENCY,
    SEED_CHUNK_TOKENS,
    SEED_CONCURRENCY,
    SEED_LATENCY_MS,
    SEED_PDF,
    run_dscall,
)
from bench.corpus import sentence_parts, write_report_pdf
from bench.harness import (
    BENCH_DIR,
    WORK_DIR,
    CpuLayout,
    MockServer,
    Row,
    bench_env,
    cpu_layout,
    fresh_dir,
    median,
    pinned_to,
    stop_on_sigterm,
    verdict,
)

TARGET_RPS_RATIO = 0.9
TARGET_PEAK_MB = 300.0
TARGET_SEED_FACTOR = 1.25
SEED_CALLS_S = 2 * SEED_LATENCY_MS / 1000  # one map call, then one reduce call

# rps: 5 chunks of 5 sentences (243 estimated tokens each) per document.
RPS_SENTENCES = 25
RPS_CHUNK_TOKENS = 250
RPS_CHUNKS_PER_DOCUMENT = 5
# memory: 10 chunks of one sentence (49 estimated tokens) per document, 1.2 KB on disk.
MEMORY_SENTENCES = 10
MEMORY_CHUNK_TOKENS = 64
MEMORY_CHUNKS_PER_DOCUMENT = 10
# The simulator's answers are about 40 tokens: these budgets hold every answer of a document,
# so that each document has exactly one reduce call.
REDUCE_TOKENS = 4_000
SEED_REDUCE_TOKENS = 100_000


@dataclass(frozen=True)
class Plan:
    """Sizes of the runs; ``quick()`` is for trying the suite out, not for the figures."""

    rps_documents: int = 2_000
    rounds: int = 3
    memory_documents: int = 10_000

    @classmethod
    def quick(cls) -> Plan:
        return cls(rps_documents=1_000, rounds=1, memory_documents=2_000)


def _expect(condition: bool, message: str) -> None:
    if not condition:
        raise RuntimeError(message)


def _chunking(chunk_tokens: int) -> tuple[str, ...]:
    return (
        "--chunk-tokens", str(chunk_tokens), "--overlap-tokens", "0", "--tokenizer", "estimate"
    )  # fmt: skip


def _map_reduce(reduce_tokens: int) -> tuple[str, ...]:
    return ("--mode", "map-reduce", "--reduce-tokens", str(reduce_tokens))


def dscall_source() -> str:
    """Where the commands under test import dscall from (PYTHONPATH is inherited)."""
    probe = [sys.executable, "-c", "import dscall; print(dscall.__file__)"]
    done = subprocess.run(probe, env=bench_env(), capture_output=True, text=True, check=True)
    return done.stdout.strip()


# --- rps: map-reduce requests/s vs map -----------------------------------------------------
MODES = ("map", "map-reduce")


def request_rate(layout: CpuLayout, plan: Plan) -> dict[str, Any]:
    documents = plan.rps_documents
    chunks = documents * RPS_CHUNKS_PER_DOCUMENT
    paths = sentence_parts(WORK_DIR / f"sentences-{RPS_SENTENCES}", documents, RPS_SENTENCES)
    flags = {"map": (), "map-reduce": _map_reduce(REDUCE_TOKENS)}
    expected = {"map": chunks, "map-reduce": chunks + documents}
    rounds: dict[str, list[dict[str, Any]]] = {mode: [] for mode in MODES}
    with MockServer(cpus=layout.server) as server:
        # Interleaved, so that a noisy minute of the machine hits both modes alike.
        for _ in range(plan.rounds):
            for mode in MODES:
                run = fresh_dir("chain-rps")
                server.reset()
                measured, summary = run_dscall(
                    layout, server, paths, run, CONCURRENCY,
                    *_chunking(RPS_CHUNK_TOKENS), *flags[mode],
                    "--documents-out", str(run / "documents.parquet"),
                )  # fmt: skip
                shutil.rmtree(run, ignore_errors=True)
                sent = summary["requests"]["sent"]
                seen = server.stats()["requests_received"]
                _expect(summary["chunks"]["ok"] == chunks, f"{mode}: {summary['chunks']}")
                _expect(sent == expected[mode], f"{mode}: {sent} requests, not {expected[mode]}")
                _expect(seen == sent, f"{mode}: simulator saw {seen} of {sent} requests")
                rounds[mode].append(
                    {
                        "requests": sent,
                        "run_wall_s": summary["wall_time_s"],
                        "requests_per_s": round(sent / summary["wall_time_s"], 1),
                        "process_wall_s": round(measured.wall_s, 3),
                        "cpu_s": round(measured.cpu_s, 3),
                        "peak_rss_mb": round(measured.peak_rss_mb, 1),
                    }
                )
    best = {mode: max(r["requests_per_s"] for r in rounds[mode]) for mode in MODES}
    ratio = best["map-reduce"] / best["map"]
    # Client CPU per request (the whole process, start-up included), median round: where a
    # ratio below 1 would come from.
    cpu_us = {mode: round(median([r["cpu_s"] / r["requests"] for r in rounds[mode]]) * 1e6)
              for mode in MODES}  # fmt: skip
    return {
        "documents": documents,
        "chunks": chunks,
        "chunks_per_document": RPS_CHUNKS_PER_DOCUMENT,
        "chunk_tokens": RPS_CHUNK_TOKENS,
        "reduce_tokens": REDUCE_TOKENS,
        "concurrency": CONCURRENCY,
        "rounds": rounds,
        "best_requests_per_s": best,
        "cpu_us_per_request": cpu_us,
        "ratio": round(ratio, 3),
        "pass": ratio >= TARGET_RPS_RATIO,
    }


def _rps_rows(f: dict[str, Any]) -> list[Row]:
    best, cpu = f["best_requests_per_s"], f["cpu_us_per_request"]
    return [
        Row("chain rps", f"{f['documents']:,} documents x {f['chunks_per_document']} chunks, "
            f"best of {len(f['rounds']['map'])}",
            f"map {best['map']:,.0f}/s, map-reduce {best['map-reduce']:,.0f}/s", "", None),
        Row("chain rps", "map-reduce / map requests/s", f"{f['ratio']:.2f}x",
            f">= {TARGET_RPS_RATIO}x", f["pass"]),
        Row("chain rps", "client CPU per request map / map-reduce",
            f"{cpu['map']} / {cpu['map-reduce']} us", "", None),
    ]  # fmt: skip


# --- memory: a 100,000-chunk map-reduce run ------------------------------------------------
def peak_memory(layout: CpuLayout, plan: Plan) -> dict[str, Any]:
    documents = plan.memory_documents
    chunks = documents * MEMORY_CHUNKS_PER_DOCUMENT
    root = WORK_DIR / f"sentences-{MEMORY_SENTENCES}"
    started = time.perf_counter()
    paths = sentence_parts(root, documents, MEMORY_SENTENCES)
    corpus_s = time.perf_counter() - started
    with MockServer(cpus=layout.server) as server:
        run = fresh_dir("chain-memory")
        server.reset()
        measured, summary = run_dscall(
            layout, server, paths, run, CONCURRENCY,
            *_chunking(MEMORY_CHUNK_TOKENS), *_map_reduce(REDUCE_TOKENS),
            "--documents-out", str(run / "documents.parquet"),
        )  # fmt: skip
        seen = server.stats()["requests_received"]
    rows = _parquet_rows(run / "documents.parquet")
    shutil.rmtree(run, ignore_errors=True)
    _expect(summary["chunks"]["ok"] == chunks, f"dscall: {summary['chunks']}")
    _expect(seen == chunks + documents, f"simulator saw {seen} requests, not {chunks + documents}")
    _expect(rows == documents, f"--documents-out has {rows} rows, not {documents}")
    peak = measured.peak_rss_mb + measured.worker_peak_rss_mb
    return {
        "documents": documents,
        "chunks": chunks,
        "chunks_per_document": MEMORY_CHUNKS_PER_DOCUMENT,
        "chunk_tokens": MEMORY_CHUNK_TOKENS,
        "reduce_tokens": REDUCE_TOKENS,
        "requests": seen,
        "document_rows": rows,
        "corpus_s": round(corpus_s, 1),
        "peak_rss_mb": round(measured.peak_rss_mb, 1),
        "worker_peak_rss_mb": round(measured.worker_peak_rss_mb, 1),
        "peak_mb": round(peak, 1),
        "process_wall_s": round(measured.wall_s, 2),
        "run_wall_s": summary["wall_time_s"],
        "cpu_s": round(measured.cpu_s, 2),
        "requests_per_s": round(seen / summary["wall_time_s"], 1),
        "pass": peak <= TARGET_PEAK_MB,
    }


def _parquet_rows(path: Path) -> int:
    import pyarrow.parquet as pq

    return int(pq.ParquetFile(path).metadata.num_rows)


def _memory_rows(f: dict[str, Any]) -> list[Row]:
    return [
        Row("chain memory", f"peak memory, map-reduce of {f['chunks']:,} chunks "
            f"({f['documents']:,} documents)",
            f"{f['peak_mb']:.0f} MB ({f['process_wall_s']:.0f} s, "
            f"{f['requests_per_s']:,.0f} req/s)",
            f"<= {TARGET_PEAK_MB:.0f} MB", f["pass"]),
    ]  # fmt: skip


# --- seed: the 100-page PDF as one map wave and one reduce -----------------------------------
def seed_chain(layout: CpuLayout, plan: Plan) -> dict[str, Any]:
    pdf = write_report_pdf(SEED_PDF, pages=100)
    with MockServer("--latency-ms", str(SEED_LATENCY_MS), cpus=layout.server) as server:
        run = fresh_dir("chain-seed")
        server.reset()  # its clock starts now: request arrivals are then times since launch
        measured, summary = run_dscall(
            layout, server, [pdf], run, SEED_CONCURRENCY,
            # Item 4's chunking exactly (overlap included): the same 50 chunks.
            "--chunk-tokens", str(SEED_CHUNK_TOKENS), "--tokenizer", "estimate",
            *_map_reduce(SEED_REDUCE_TOKENS),
            "--documents-out", str(run / "documents.parquet"),
        )  # fmt: skip
        stats = server.stats(bodies=True)
    shutil.rmtree(run, ignore_errors=True)
    arrivals = sorted(a for body in stats["bodies"].values() for a in body["arrived_s"])
    chunks = summary["chunks"]["ok"]
    _expect(chunks == summary["chunks"]["total"], f"dscall: {summary['chunks']}")
    _expect(len(arrivals) == chunks + 1, f"{len(arrivals)} requests for {chunks} chunks + 1")
    startup = arrivals[0]
    target = TARGET_SEED_FACTOR * SEED_CALLS_S + startup
    return {
        "pages": 100,
        "chunks": chunks,
        "requests": len(arrivals),
        "latency_ms": SEED_LATENCY_MS,
        "concurrency": SEED_CONCURRENCY,
        "reduce_tokens": SEED_REDUCE_TOKENS,
        "startup_s": round(startup, 3),
        # The last map request, and the reduce (the last request of all): its wait after the
        # first request is one latency plus dscall's own time between the waves.
        "last_map_request_after_s": round(arrivals[-2], 3),
        "reduce_request_after_s": round(arrivals[-1], 3),
        "process_wall_s": round(measured.wall_s, 3),
        "run_wall_s": summary["wall_time_s"],
        "target_s": round(target, 3),
        "client_cpu_s": round(measured.cpu_s, 2),
        "peak_rss_mb": round(measured.peak_rss_mb, 1),
        "worker_peak_rss_mb": round(measured.worker_peak_rss_mb, 1),
        "pass": measured.wall_s <= target,
    }


def _seed_rows(f: dict[str, Any]) -> list[Row]:
    return [
        Row("chain seed", f"100-page PDF map-reduce, {f['chunks']} maps + 1 reduce x 2 s",
            f"{f['process_wall_s']:.2f} s (start-up {f['startup_s']:.2f} s)",
            f"<= {TARGET_SEED_FACTOR} x 4 s + start-up = {f['target_s']:.2f} s", f["pass"]),
        Row("chain seed", "first map / reduce request sent after launch",
            f"{f['startup_s']:.2f} / {f['reduce_request_after_s']:.2f} s", "", None),
    ]  # fmt: skip


# --- the suite ----------------------------------------------------------------------------
ITEMS: dict[str, tuple[Callable[[CpuLayout, Plan], dict[str, Any]], Callable[..., list[Row]]]] = {
    "rps": (request_rate, _rps_rows),
    "memory": (peak_memory, _memory_rows),
    "seed": (seed_chain, _seed_rows),
}


def main(quick: bool = False, only: Sequence[str] | None = None) -> dict[str, Any]:
    """Run the items (all, or ``only``); print and return their figures, with ``rows`` (the
    table rows as dicts, an item that broke as a FAIL row)."""
    plan = Plan.quick() if quick else Plan()
    layout = cpu_layout()
    source = dscall_source()
    print(
        f"dscall from {source}; simulator on CPU {sorted(layout.server)}, "
        f"clients on CPU {sorted(layout.client)}" + (" (shared)" if layout.shared else "")
    )
    if not source.startswith(str(BENCH_DIR.parent)):
        print(f"note: not the dscall of this checkout ({BENCH_DIR.parent})")
    figures: dict[str, Any] = {"plan": plan.__dict__, "dscall": source, "quick": quick}
    rows: list[Row] = []
    for name in only or ITEMS:
        measure, describe = ITEMS[name]
        started = time.perf_counter()
        # The orchestrator polls and waits on the simulator's core, off the client's.
        with pinned_to(layout.server):
            try:
                result = measure(layout, plan)
                new = describe(result)
            except Exception as exc:  # one broken item must not hide the others' figures
                result = {"error": f"{type(exc).__name__}: {exc}"}
                new = [Row(f"chain {name}", "broke", result["error"][:60], "", False)]
        result["bench_s"] = round(time.perf_counter() - started, 1)
        figures[name] = result
        for row in new:
            target = f" (target {row.target}: {verdict(row.ok)})" if row.target else ""
            print(f"{row.item:<12} {row.figure}: {row.measured}{target}")
        print(f"{'':<12} ({name}: {result['bench_s']:.0f} s)", flush=True)
        rows += new
    figures["rows"] = [r.as_dict() for r in rows]
    return figures


def _cli() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller runs, one round")
    parser.add_argument("--only", default="", help=f"comma-separated subset of {','.join(ITEMS)}")
    args = parser.parse_args()
    only = [n for n in args.only.split(",") if n] or None
    for name in only or ():
        if name not in ITEMS:
            parser.error(f"unknown item {name!r}; choose from {', '.join(ITEMS)}")
    stop_on_sigterm()
    main(args.quick, only)


if __name__ == "__main__":
    _cli()
