"""The figures of a comparison, per variant and per pair, computed from its rows alone (the
rows written to ``--out``), so the report and the Parquet cannot disagree.

Per variant: answers, errors (status error, a schema failure included) and their rate, the
schema-valid rate (with a schema), tokens, list price and cost paid in this run, latency p50
and p95 (nearest rank, over the answers sent in this run: a cached answer has no latency of
its own), and the mean answer length in characters over the answers that came back. Per pair
of variants: the judge's win/tie/loss (see ``judge``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from dscall.compare.judge import PairTally, combine, preference

Row = dict[str, Any]


def percentile(values: Sequence[float], share: float) -> float | None:
    """Nearest-rank percentile (``share`` in (0, 1]); None without values."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(share * len(ordered)))
    return ordered[rank - 1]


def _total(rows: list[Row], column: str) -> float | int | None:
    """The sum of a column, None when any value is unknown (a price, say)."""
    values = [row[column] for row in rows]
    if any(value is None for value in values):
        return None
    total: float | int = sum(values)
    return total


def variant_figures(name: str, rows: list[Row], schema: bool) -> dict[str, Any]:
    answered = [row for row in rows if row["output"] is not None]
    errors = sum(1 for row in rows if row["status"] == "error")
    latencies = [row["latency_ms"] for row in rows if row["latency_ms"] is not None]
    lengths = [row["answer_chars"] for row in answered]
    figures: dict[str, Any] = {
        "variant": name,
        "model": rows[0]["model"] if rows else None,
        "answers": len(rows),
        "errors": errors,
        "error_rate": errors / len(rows) if rows else None,
        "prompt_tokens": sum(row["prompt_tokens"] or 0 for row in rows),
        "completion_tokens": sum(row["completion_tokens"] or 0 for row in rows),
        "price_usd": _total(answered, "price_usd"),
        "cost_usd": _total(rows, "cost_usd"),
        "cached": sum(1 for row in rows if row["cached"]),
        "latency_p50_ms": percentile(latencies, 0.5),
        "latency_p95_ms": percentile(latencies, 0.95),
        "answer_chars_mean": sum(lengths) / len(lengths) if lengths else None,
    }
    if schema:
        valid = sum(1 for row in rows if row.get("schema_valid"))
        figures["schema_valid"] = valid
        figures["schema_valid_rate"] = valid / len(rows) if rows else None
    return figures


def pair_figures(variants: list[str], judge_rows: list[Row]) -> list[dict[str, Any]]:
    """Win/tie/loss of each pair's first variant, over the chunks the judge saw both ways."""
    by_chunk: dict[tuple[str, str, str, int], dict[bool, int | None]] = {}
    for row in judge_rows:
        key = (row["pair_first"], row["pair_second"], row["doc_path"], row["chunk_index"])
        first_is_a = row["judge_a"] == row["pair_first"]
        by_chunk.setdefault(key, {})[first_is_a] = preference(row["verdict"], first_is_a)
    tallies = {(a, b): PairTally(a, b) for i, a in enumerate(variants) for b in variants[i + 1 :]}
    for (first, second, _, _), orders in by_chunk.items():
        tallies[(first, second)].add(combine(orders.get(True), orders.get(False)))
    return [tally.as_dict() for tally in tallies.values()]


def compare_summary(
    variants: list[str], rows: list[Row], schema: bool, judged: bool
) -> dict[str, Any]:
    answers = [row for row in rows if row["kind"] == "answer"]
    judges = [row for row in rows if row["kind"] == "judge"]
    summary: dict[str, Any] = {
        "variants": [
            variant_figures(name, [row for row in answers if row["variant"] == name], schema)
            for name in variants
        ],
        "chunks": len({(row["doc_path"], row["chunk_index"]) for row in answers}),
    }
    if judged:
        summary["judge"] = {
            "calls": len(judges),
            "errors": sum(1 for row in judges if row["status"] == "error"),
            "unreadable_verdicts": sum(
                1 for row in judges if row["status"] == "ok" and row["verdict"] is None
            ),
            "price_usd": _total(judges, "price_usd"),
            "cost_usd": _total(judges, "cost_usd"),
            "prompt_tokens": sum(row["prompt_tokens"] or 0 for row in judges),
            "completion_tokens": sum(row["completion_tokens"] or 0 for row in judges),
            "pairs": pair_figures(variants, judges),
        }
    return summary
