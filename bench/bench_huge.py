"""Huge and hostile inputs (issue 5): bounded memory on huge files, flat memory over many
files, and thousands of mutated documents that must neither crash, hang nor balloon.

    .venv/bin/python -m bench.bench_huge [--quick] [--fuzz N] [--exact] [--only NAME,...]

Inputs are generated once into bench/.work/huge/ (gitignored) and reused: 50 MB and 200 MB
text files (English paragraphs, Chinese every tenth, lists), a 2,000-page PDF, and 100,000
tiny text files in 100 folders. Each measured run is the real CLI in a child process; the
kernel's resident high-water mark (VmHWM) of dscall's process ("parent") and of every
extraction worker is sampled while it runs. Sections:

- ``text``: ``dscall chunks`` on 50 MB and 200 MB; ``dscall process --no-text`` on 200 MB
  with ``--mock``, and on both sizes against a ``dscall mock-server`` in its own process.
  Bounded means: the peaks do not depend on the file's size (200 MB within ``SAME_MB`` of
  50 MB), and ``chunks`` stays under ``DOCUMENT_PEAK_MB`` (a few windows of
  ``STREAM_WINDOW_CHARS`` over the ~80 MB that dscall and its libraries take at rest).
  ``--exact`` adds the 200 MB file with the exact tokenizer (minutes).
- ``pdf``: ``dscall chunks`` and ``process --mock`` on the 2,000-page PDF.
- ``many``: ``chunks`` and ``process --mock`` on 20,000 then 100,000 tiny files, and
  ``process`` against a ``dscall mock-server`` in its own process (the in-process simulator
  of ``--mock`` keeps per-request statistics that grow with the run, by design; this shows
  dscall's own share). Flat means: 100,000 within ``FLAT_MB`` of 20,000.
- ``fuzz``: N seeded mutations of real PDFs and DOCX files (tests/hostile/mutations.py) plus
  the bombs, through the real ExtractionPool (2 workers, --extract-timeout 5, 1 GB cap) in a
  child process whose stderr is kept: outcomes by type, slowest file, worker peak memory,
  workers left alive (must be 0), tracebacks printed (must be 0).

``--quick`` divides every size by ten. ``main()`` prints each figure with its target and
returns them all.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import subprocess
import sys
import threading
import time
from collections import Counter
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import psutil

BENCH_DIR = Path(__file__).resolve().parent
ROOT = BENCH_DIR.parent
WORK = BENCH_DIR / ".work" / "huge"
DSCALL = [sys.executable, "-m", "dscall"]
SECTIONS = ("text", "pdf", "many", "fuzz")
DOCUMENT_PEAK_MB = 150.0
SAME_MB = 25.0
FLAT_MB = 25.0
PDF_PEAK_MB = 300.0
FUZZ_TIMEOUT_S = 5.0
FUZZ_MEMORY_MB = 1024
_SAMPLE_S = 0.05
BENCH_KEY = "sk-bench-huge-not-a-secret"  # the simulator takes any key

_SENTENCES = (
    "Shipments through the northern corridor rose again this month.",
    "Customs checks were shorter, and a second daily train now links the inland terminals.",
    "Costs per container fell by four percent while on-time delivery reached a record.",
    "The board asked for a forecast by region before the next quarterly review.",
    "Several customers want faster delivery to remote areas; pricing is under study.",
    "Risks include currency swings, fuel prices and a tight labour market.",
)
_CHINESE = (
    "北部通道的货运量本月继续增长，海关查验时间缩短。每个集装箱的成本下降百分之四，准点率创新高。"
)


# --- inputs --------------------------------------------------------------------------------


def _paragraph(index: int) -> str:
    if index % 10 == 9:
        return _CHINESE * (1 + index % 3)
    if index % 10 == 4:
        return "\n".join(f"- line {index}.{k}: {37 * k + index % 97} units" for k in range(5))
    picked = [_SENTENCES[(index * 7 + k) % len(_SENTENCES)] for k in range(3 + index % 5)]
    return f"Part {index}. " + " ".join(picked)


def make_text(path: Path, megabytes: int) -> Path:
    """A deterministic text file of ``megabytes`` MB (written once, then reused)."""
    target = megabytes * 2**20
    if path.exists() and path.stat().st_size >= target:
        return path
    temp = path.with_suffix(".partial")
    written = index = 0
    with open(temp, "w", encoding="utf-8") as handle:
        while written < target:
            block = "".join(_paragraph(index + k) + "\n\n" for k in range(1000))
            index += 1000
            handle.write(block)
            written += len(block.encode())
    temp.replace(path)
    return path


def make_pdf(path: Path, pages: int) -> Path:
    if path.exists():
        return path
    from reportlab.lib.pagesizes import A4
    from reportlab.pdfgen import canvas

    temp = path.with_suffix(".partial")
    pdf = canvas.Canvas(str(temp), pagesize=A4, invariant=1)
    for number in range(pages):
        pdf.setFont("Helvetica", 10)
        y = 800.0
        words = " ".join(_paragraph(number * 5 + k) for k in range(5) if k != 4).split()
        for start in range(0, len(words), 12):
            pdf.drawString(40, y, " ".join(words[start : start + 12]))
            y -= 13
        pdf.showPage()
    pdf.save()
    temp.replace(path)
    return path


def make_tiny(folder: Path, count: int) -> list[str]:
    """``count`` tiny text files in folders of 1,000; returns the folders."""
    folders = []
    for group in range(count // 1000):
        sub = folder / f"d{group:03d}"
        done = sub / ".complete"
        folders.append(str(sub))
        if done.exists():
            continue
        sub.mkdir(parents=True, exist_ok=True)
        for k in range(1000):
            n = group * 1000 + k
            (sub / f"f{k:04d}.txt").write_text(_paragraph(n) + " " + _SENTENCES[n % 6])
        done.touch()
    return folders


# --- measuring a run -------------------------------------------------------------------------


def vm_hwm_mb(pid: int) -> float:
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


@dataclass
class Run:
    label: str
    wall_s: float
    exit_code: int
    parent_mb: float
    worker_mb: float  # the largest extraction worker
    workers: int
    stderr_tail: str


def measure(label: str, args: list[str], env: dict[str, str] | None = None) -> Run:
    """Run dscall with ``args``; sample the peaks of its process and of its workers (the
    children of multiprocessing's fork server, itself a child of dscall)."""
    started = time.perf_counter()
    child = subprocess.Popen(
        [*DSCALL, *args],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, **(env or {})},
    )
    stderr: list[str] = []
    reader = threading.Thread(target=lambda: stderr.append(child.stderr.read()))  # type: ignore[union-attr]
    reader.start()
    parent = psutil.Process(child.pid)
    parent_mb, workers = 0.0, {}
    while child.poll() is None:
        parent_mb = max(parent_mb, vm_hwm_mb(child.pid))
        try:
            for server in parent.children():
                if "forkserver" not in " ".join(server.cmdline()):
                    continue
                for worker in server.children():
                    workers[worker.pid] = max(workers.get(worker.pid, 0.0), vm_hwm_mb(worker.pid))
        except psutil.Error:
            pass
        time.sleep(_SAMPLE_S)
    reader.join()
    wall = time.perf_counter() - started
    tail = "".join(stderr).strip().splitlines()[-3:]
    run = Run(
        label,
        round(wall, 1),
        child.returncode,
        round(parent_mb, 1),
        round(max(workers.values(), default=0.0), 1),
        len(workers),
        " / ".join(tail),
    )
    if run.exit_code:
        print(f"  ({label}: {run.stderr_tail})")
    print(
        f"  {label:<44} {run.wall_s:>7.1f} s  exit {run.exit_code}  parent {run.parent_mb:>6.1f} MB"
        f"  worker {run.worker_mb:>6.1f} MB ({run.workers} workers)",
        flush=True,
    )
    return run


def check(name: str, value: float, target: str, ok: bool) -> dict[str, Any]:
    print(f"  -> {name}: {value:g} (target {target}): {'PASS' if ok else 'FAIL'}", flush=True)
    return {"name": name, "value": value, "target": target, "pass": ok}


def at_most(name: str, value: float, limit: float) -> dict[str, Any]:
    return check(name, round(value, 1), f"<= {limit:g}", value <= limit)


def exits_zero(runs: list[Run]) -> dict[str, Any]:
    worst = max(run.exit_code for run in runs)
    return check("runs that did not exit 0", sum(r.exit_code != 0 for r in runs), "0", worst == 0)


def _process_args(inputs: list[str], cache: Path, *extra: str) -> list[str]:
    shutil.rmtree(cache, ignore_errors=True)  # every measured run pays for every chunk
    out = str(WORK / "out" / "results.parquet")
    return [
        "process",
        *inputs,
        "--mock",
        "--no-text",
        "--quiet",
        "--out",
        out,
        "--cache-dir",
        str(cache),
        "--preview",
        "0",
        *extra,
    ]


def _chunks_args(inputs: list[str], *extra: str) -> list[str]:
    return [
        "chunks",
        *inputs,
        "--no-text",
        "--quiet",
        "--out",
        str(WORK / "out" / "chunks.parquet"),
        *extra,
    ]


# --- sections ------------------------------------------------------------------------------


def bench_text(scale: int, exact: bool) -> dict[str, Any]:
    small = make_text(WORK / f"text-{50 // scale}mb.txt", 50 // scale)
    big = make_text(WORK / f"text-{200 // scale}mb.txt", 200 // scale)
    estimate = ("--tokenizer", "estimate")
    cache = WORK / "cache-text"
    chunks_small = measure(f"chunks {small.name}", _chunks_args([str(small)], *estimate))
    chunks_big = measure(f"chunks {big.name}", _chunks_args([str(big)], *estimate))
    mock = measure(f"process --mock {big.name}", _process_args([str(big)], cache, *estimate))
    with _MockServer() as url:
        apart_small, apart_big = (
            measure(f"process, simulator apart, {f.name}", *_apart([str(f)], cache, url, *estimate))
            for f in (small, big)
        )
    runs = [chunks_small, chunks_big, mock, apart_small, apart_big]
    if exact:
        runs.append(measure(f"chunks {big.name} (exact tokenizer)", _chunks_args([str(big)])))
    documents = [chunks_small, chunks_big] + runs[5:]
    checks = [
        exits_zero(runs),
        at_most(
            "chunks: parent peak, big - small (MB)",
            chunks_big.parent_mb - chunks_small.parent_mb,
            SAME_MB,
        ),
        at_most(
            "chunks: worker peak, big - small (MB)",
            chunks_big.worker_mb - chunks_small.worker_mb,
            SAME_MB,
        ),
        at_most(
            "chunks: largest peak, parent or worker (MB)",
            max(max(r.parent_mb, r.worker_mb) for r in documents),
            DOCUMENT_PEAK_MB,
        ),
        at_most(
            "process: parent peak, big - small (MB)",
            apart_big.parent_mb - apart_small.parent_mb,
            SAME_MB,
        ),
        at_most(
            "process: worker peak, big - small (MB)",
            apart_big.worker_mb - apart_small.worker_mb,
            SAME_MB,
        ),
    ]
    return {"runs": [asdict(r) for r in runs], "checks": checks}


def bench_pdf(scale: int) -> dict[str, Any]:
    pdf = make_pdf(WORK / f"report-{2000 // scale}p.pdf", 2000 // scale)
    runs = [
        measure(f"chunks {pdf.name}", _chunks_args([str(pdf)])),
        measure(f"process --mock {pdf.name}", _process_args([str(pdf)], WORK / "cache-pdf")),
    ]
    peak = max(max(r.parent_mb, r.worker_mb) for r in runs)
    checks = [exits_zero(runs), at_most("largest peak, parent or worker (MB)", peak, PDF_PEAK_MB)]
    return {"runs": [asdict(r) for r in runs], "checks": checks}


def bench_many(scale: int) -> dict[str, Any]:
    folders = make_tiny(WORK / "tiny", 100_000 // scale)
    fifth = folders[: len(folders) // 5]
    cache = WORK / "cache-many"
    runs = [
        measure(f"chunks {len(fifth)}k tiny files", _chunks_args(fifth)),
        measure(f"chunks {len(folders)}k tiny files", _chunks_args(folders)),
        measure(f"process --mock {len(fifth)}k", _process_args(fifth, cache)),
        measure(f"process --mock {len(folders)}k", _process_args(folders, cache)),
    ]
    with _MockServer() as url:
        for inputs in (fifth, folders):
            label = f"process, simulator apart, {len(inputs)}k"
            runs.append(measure(label, *_apart(inputs, cache, url)))
    checks = [exits_zero(runs)]
    for label, few, many in (("chunks", 0, 1), ("process --mock", 2, 3), ("process", 4, 5)):
        growth = runs[many].parent_mb - runs[few].parent_mb
        name = f"{label}: parent peak, {len(folders)}k - {len(fifth)}k files (MB)"
        checks.append(at_most(name, growth, FLAT_MB))
    return {"runs": [asdict(r) for r in runs], "checks": checks}


def _apart(
    inputs: list[str], cache: Path, url: str, *extra: str
) -> tuple[list[str], dict[str, str]]:
    """``process`` arguments and environment for a simulator in its own process at ``url``."""
    args = _process_args(inputs, cache, *extra)
    args[args.index("--mock")] = "--base-url"
    args.insert(args.index("--base-url") + 1, url)
    return args, {"DEEPSEEK_API_KEY": BENCH_KEY}


class _MockServer:
    """`dscall mock-server` in its own process; the base URL it listens on."""

    def __enter__(self) -> str:
        port = 18000 + os.getpid() % 1000
        self._child = subprocess.Popen(
            [*DSCALL, "mock-server", "--port", str(port)],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        line = self._child.stdout.readline() if self._child.stdout else ""
        return line.rsplit(" ", 1)[-1].strip() or f"http://127.0.0.1:{port}"

    def __exit__(self, *_: object) -> None:
        self._child.terminate()
        self._child.wait(30)


def bench_fuzz(count: int) -> dict[str, Any]:
    started = time.perf_counter()
    child = subprocess.run(
        [sys.executable, "-m", "bench.bench_huge", "--fuzz-child", str(count)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    wall = round(time.perf_counter() - started, 1)
    if child.returncode != 0:
        raise RuntimeError(f"fuzz child failed ({child.returncode}): {child.stderr[-500:]}")
    figures: dict[str, Any] = json.loads(child.stdout.strip().splitlines()[-1])
    figures["wall_s"] = wall
    figures["tracebacks"] = child.stderr.count("Traceback")
    print(f"  {figures['files']} files in {wall} s; outcomes: {figures['outcomes']}")
    print(
        f"  slowest: {figures['slowest_file']} ({figures['slowest_s']} s, "
        f"{figures['slowest_outcome']}); workers started: {figures['workers_started']}"
    )
    limit = FUZZ_TIMEOUT_S + 2.0
    figures["checks"] = [
        check("files without an outcome", figures["missing"], "0", figures["missing"] == 0),
        check(
            "slowest file (s)", figures["slowest_s"], f"<= {limit:g}", figures["slowest_s"] <= limit
        ),
        check(
            "worker peak memory (MB)",
            figures["worker_peak_mb"],
            f"< {FUZZ_MEMORY_MB}",
            figures["worker_peak_mb"] < FUZZ_MEMORY_MB,
        ),
        check(
            "workers alive after the pool closed",
            figures["workers_alive"],
            "0",
            figures["workers_alive"] == 0,
        ),
        check("tracebacks on stderr", figures["tracebacks"], "0", figures["tracebacks"] == 0),
        check("messages not one line", figures["bad_messages"], "0", figures["bad_messages"] == 0),
    ]
    return figures


def _fuzz_child(count: int) -> None:
    """In a fresh process (its own fork server, its stderr the parent's to read)."""
    from tests.hostile.mutations import bombs, mutated_corpus, seed_documents

    folder = WORK / "fuzz"
    shutil.rmtree(folder, ignore_errors=True)
    seeds = seed_documents(folder / "seeds", ROOT / "samples")
    files = mutated_corpus(seeds, count, 20261128, folder / "mutated")
    docx_base = next(p for p in seeds if p.name == "seed-tables.docx")
    files += list(bombs(folder / "bombs", docx_base).values())
    print(json.dumps(asyncio.run(_fuzz_pool(files))))


async def _fuzz_pool(files: list[Path]) -> dict[str, Any]:
    from dscall.config import ChunkSettings, ExtractSettings
    from dscall.documents.pool import ExtractionPool
    from dscall.types import FailedDocument, SourceFile

    settings = ExtractSettings(timeout_s=FUZZ_TIMEOUT_S, memory_mb=FUZZ_MEMORY_MB)
    outcomes: Counter[str] = Counter()
    times: list[tuple[float, str, str]] = []
    seen: set[int] = set()
    peak = 0.0
    bad = 0
    async with ExtractionPool(settings, ChunkSettings(tokenizer="estimate"), workers=2) as pool:
        gate = asyncio.Semaphore(pool.size)  # the time measured is the file's, not the queue's
        stop = threading.Event()

        def sample() -> None:
            nonlocal peak
            while not stop.wait(0.02):
                for pid in pool.worker_pids():
                    seen.add(pid)
                    peak = max(peak, vm_hwm_mb(pid))

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()

        async def one(path: Path) -> None:
            nonlocal bad
            doc_type = "pdf" if path.suffix == ".pdf" else "docx"
            async with gate:
                started = time.perf_counter()
                outcome = await pool.process(
                    SourceFile(path, path.name, doc_type, path.stat().st_size)
                )  # type: ignore[arg-type]
                elapsed = time.perf_counter() - started
            kind = outcome.error_type if isinstance(outcome, FailedDocument) else "ok"
            if isinstance(outcome, FailedDocument) and (
                "\n" in outcome.message or not outcome.message
            ):
                bad += 1
            outcomes[kind] += 1
            times.append((elapsed, path.name, kind))

        await asyncio.gather(*(one(path) for path in files))
        stop.set()
        sampler.join()
        started_workers = pool.workers_started
    alive = sum(
        1
        for pid in seen
        if psutil.pid_exists(pid) and psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    )
    slowest = max(times)
    return {
        "files": len(files),
        "missing": len(files) - len(times),
        "outcomes": dict(outcomes),
        "slowest_s": round(slowest[0], 2),
        "slowest_file": slowest[1],
        "slowest_outcome": slowest[2],
        "worker_peak_mb": round(peak, 1),
        "workers_started": started_workers,
        "workers_alive": alive,
        "bad_messages": bad,
    }


# --- entry points --------------------------------------------------------------------------


def main(
    fuzz: int = 3000, quick: bool = False, exact: bool = False, only: tuple[str, ...] = SECTIONS
) -> dict[str, Any]:
    scale = 10 if quick else 1
    (WORK / "out").mkdir(parents=True, exist_ok=True)
    results: dict[str, Any] = {"quick": quick}
    sections = {
        "text": lambda: bench_text(scale, exact),
        "pdf": lambda: bench_pdf(scale),
        "many": lambda: bench_many(scale),
        "fuzz": lambda: bench_fuzz(fuzz // scale),
    }
    for name in only:
        print(f"== huge: {name} ==", flush=True)
        results[name] = sections[name]()
    checks = [c for name in only for c in results[name]["checks"]]
    results["passed"] = sum(c["pass"] for c in checks)
    results["failed"] = len(checks) - results["passed"]
    print(f"huge: {results['passed']} PASS, {results['failed']} FAIL", flush=True)
    return results


if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="python -m bench.bench_huge")
    parser.add_argument("--quick", action="store_true", help="every size divided by ten")
    parser.add_argument("--fuzz", type=int, default=3000, help="mutated files (default 3000)")
    parser.add_argument("--exact", action="store_true", help="also 200 MB with the exact tokenizer")
    parser.add_argument(
        "--only", default=",".join(SECTIONS), help="sections: " + ",".join(SECTIONS)
    )
    parser.add_argument("--fuzz-child", type=int, help=argparse.SUPPRESS)
    options = parser.parse_args()
    if options.fuzz_child is not None:
        _fuzz_child(options.fuzz_child)
    else:
        chosen = tuple(name for name in options.only.split(",") if name)
        main(options.fuzz, options.quick, options.exact, chosen)
