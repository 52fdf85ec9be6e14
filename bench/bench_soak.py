"""The soak: 20,000 chunks against a simulator with every fault on at once.

    .venv/bin/python -m bench.bench_soak

`dscall mock-server` runs in a subprocess pinned to CPU 0 with, per request: 503 5%, 500 1%,
429 3% (Retry-After: 1), connection reset 1%, stall 0.5% (dscall gives up after --timeout 2),
whitespace-only 200 0.5%, malformed JSON 0.5%, insufficient_system_resource 0.5%, and blank
keep-alive lines before every answer. `dscall process` runs in another subprocess (pinned to
CPU 1 when there is one) on 2,000 documents of 10 chunks each.

The truth is `dscall chunks` on the same corpus: every chunk must have exactly one row, and
every ok row the simulator's deterministic answer to that chunk's text. Printed and returned:
requests sent, retries, rows ok, rows failed, rows lost, duplicate rows, wrong outputs (the
last three must be 0), what the simulator saw (max attempts per request, Retry-After
violations, answers paid twice), peak RSS of the dscall process and wall time.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections import Counter
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

from bench.bench_simulator import mock_server
from bench.corpus import document_text
from dscall.calls.request import PromptTemplate
from dscall.config import DEFAULT_PROMPT_TEMPLATE, DEFAULT_SYSTEM_PROMPT
from dscall.simulator import expected_answer

DOCUMENTS = 2_000
PARAGRAPHS = 10  # one chunk each at CHUNK_TOKENS
CHUNK_TOKENS = 400
MAX_RETRIES = 8
ATTEMPT_TIMEOUT_S = 2
KEY = "sk-bench-soak-0123456789"
SEED = 5
FAULT_FLAGS = (
    "--fail", "503=0.05",
    "--fail", "500=0.01",
    "--fail", "429=0.03",
    "--retry-after", "1",
    "--reset-rate", "0.01",
    "--stall-rate", "0.005",
    "--stall-max-s", "30",
    "--empty-rate", "0.005",
    "--malformed-rate", "0.005",
    "--insufficient-rate", "0.005",
    "--keepalive-ms", "10",
    "--keepalive-interval-ms", "4",
    "--seed", str(SEED),
)  # fmt: skip
CHUNK_FLAGS = (
    "--chunk-tokens", str(CHUNK_TOKENS), "--overlap-tokens", "0", "--tokenizer", "estimate",
)  # fmt: skip


def write_corpus(folder: Path) -> Path:
    """``DOCUMENTS`` text files of ``PARAGRAPHS`` distinct paragraphs (one chunk each)."""
    folder.mkdir(parents=True, exist_ok=True)
    for doc in range(DOCUMENTS):
        paragraphs = [
            f"Part {part} of document {doc}. " + document_text(doc * PARAGRAPHS + part, 110)
            for part in range(PARAGRAPHS)
        ]
        (folder / f"doc_{doc:05d}.txt").write_text("\n\n".join(paragraphs), encoding="utf-8")
    return folder


def expected_output(chunk_text: str) -> str:
    """The simulator's answer to a chunk sent with the default system prompt and task."""
    values = dict.fromkeys(("path", "page_start", "page_end", "chunk_index", "chunk_count"), "")
    user = PromptTemplate.parse(DEFAULT_PROMPT_TEMPLATE).render({**values, "text": chunk_text})
    return expected_answer(
        [{"role": "system", "content": DEFAULT_SYSTEM_PROMPT}, {"role": "user", "content": user}]
    )


def _dscall(*args: str) -> list[str]:
    return [sys.executable, "-m", "dscall", *args]


def truth(corpus: Path, work: Path) -> dict[tuple[str, int], str]:
    """(doc_path, chunk_index) -> chunk text, from `dscall chunks`."""
    out = work / "chunks.parquet"
    subprocess.run(
        _dscall("chunks", str(corpus), "--out", str(out), "--quiet", *CHUNK_FLAGS), check=True
    )
    table = pq.read_table(str(out), columns=["doc_path", "chunk_index", "chunk_text"])
    return {
        (path, index): text
        for path, index, text in zip(
            *(table[c].to_pylist() for c in table.column_names), strict=True
        )
    }


def _peak_rss_mb(pid: int) -> float | None:
    """The process's resident-memory high-water mark so far (Linux: VmHWM)."""
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024.0
    except (OSError, ValueError):
        return None
    return None


def run_dscall(args: list[str], cpu: int | None) -> tuple[int, float, float]:
    """Run `dscall ARGS`; (exit code, wall seconds, peak RSS in MB of the dscall process)."""

    def pin() -> None:
        if cpu is not None:
            os.sched_setaffinity(0, {cpu})

    env = {**os.environ, "DEEPSEEK_API_KEY": KEY}
    started = time.perf_counter()
    proc = subprocess.Popen(_dscall(*args), env=env, preexec_fn=pin)
    peak = 0.0
    while proc.poll() is None:
        peak = max(peak, _peak_rss_mb(proc.pid) or 0.0)
        time.sleep(0.05)
    wall = time.perf_counter() - started
    return proc.returncode, wall, peak


def server_stats(base_url: str) -> dict[str, Any]:
    with urllib.request.urlopen(base_url + "/stats", timeout=30) as response:  # noqa: S310
        stats: dict[str, Any] = json.loads(response.read())
    return stats


def check_rows(path: Path, chunks: dict[tuple[str, int], str]) -> dict[str, int]:
    """Rows ok / failed, and the three numbers that must be 0: lost, duplicate, wrong."""
    table = pq.read_table(
        str(path), columns=["doc_path", "chunk_index", "chunk_text", "status", "output"]
    )
    columns = [table[c].to_pylist() for c in table.column_names]
    keys = Counter(zip(columns[0], columns[1], strict=True))
    wrong = 0
    answers: dict[str, str] = {}
    for path_, index, text, status, output in zip(*columns, strict=True):
        if chunks.get((path_, index)) != text:
            wrong += 1
        elif status == "ok":
            want = answers.get(text)
            if want is None:
                want = answers[text] = expected_output(text)
            wrong += output != want
    return {
        "rows": table.num_rows,
        "rows_ok": columns[3].count("ok"),
        "rows_failed": columns[3].count("error"),
        "rows_lost": len(chunks.keys() - keys.keys()),
        "duplicate_rows": sum(count - 1 for count in keys.values()),
        "unknown_rows": len(keys.keys() - chunks.keys()),
        "wrong_outputs": wrong,
    }


def soak(work: Path) -> dict[str, Any]:
    corpus = write_corpus(work / "corpus")
    chunks = truth(corpus, work)
    cpus = sorted(os.sched_getaffinity(0))
    client_cpu = cpus[1] if len(cpus) > 1 else None
    out, summary = work / "results.parquet", work / "summary.json"
    with mock_server(*FAULT_FLAGS, cpu=cpus[0]) as (_, base_url):
        code, wall, peak = run_dscall(
            [
                "process", str(corpus), "--out", str(out), "--base-url", base_url,
                "--cache-dir", str(work / "cache"), "--summary-json", str(summary),
                "--timeout", str(ATTEMPT_TIMEOUT_S), "--max-retries", str(MAX_RETRIES),
                "--quiet", *CHUNK_FLAGS,
            ],
            client_cpu,
        )  # fmt: skip
        stats = server_stats(base_url)
    figures = json.loads(summary.read_text())
    rows = check_rows(out, chunks)
    return {
        "chunks": len(chunks),
        "exit_code": code,
        "requests_sent": figures["requests"]["sent"],
        "retries": figures["requests"]["retries"],
        **rows,
        "server_requests_received": stats["requests_received"],
        "server_max_attempts_per_request": stats["max_attempts_per_body"],
        "server_retry_after_violations": stats["retry_after_violations"],
        "server_answers_paid_twice": stats["bodies_paid_more_than_once"],
        "server_faults": stats["faults"],
        "server_responses_by_status": stats["responses_by_status"],
        "peak_rss_mb": round(peak, 1),
        "wall_time_s": round(wall, 2),
        "chunks_per_s": round(len(chunks) / wall, 1),
        "concurrency": figures.get("concurrency"),
    }


def main() -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="dscall-soak-") as tmp:
        result = soak(Path(tmp))
    result["pass"] = (
        result["rows_lost"] == 0
        and result["duplicate_rows"] == 0
        and result["unknown_rows"] == 0
        and result["wrong_outputs"] == 0
        and result["server_max_attempts_per_request"] <= MAX_RETRIES + 1
        and result["server_retry_after_violations"] == 0
    )
    faults = ", ".join(f"{k} {v}" for k, v in result["server_faults"].items())
    print(
        f"soak {result['chunks']:,} chunks, every fault on: exit {result['exit_code']}, "
        f"{'PASS' if result['pass'] else 'FAIL'}\n"
        f"  requests sent {result['requests_sent']:,}, retries {result['retries']:,} "
        f"(simulator: {result['server_requests_received']:,} received, at most "
        f"{result['server_max_attempts_per_request']} per request, "
        f"{result['server_retry_after_violations']} Retry-After violations, "
        f"{result['server_answers_paid_twice']} answers paid twice)\n"
        f"  faults injected: {faults}\n"
        f"  rows ok {result['rows_ok']:,}, failed {result['rows_failed']:,}, "
        f"lost {result['rows_lost']} (must be 0), duplicates {result['duplicate_rows']} "
        f"(must be 0), wrong outputs {result['wrong_outputs']} (must be 0)\n"
        f"  peak memory {result['peak_rss_mb']:.0f} MB RSS (dscall process), wall time "
        f"{result['wall_time_s']:.1f} s ({result['chunks_per_s']:,.0f} chunks/s), "
        f"concurrency {result['concurrency']}"
    )
    return result


if __name__ == "__main__":
    main()
