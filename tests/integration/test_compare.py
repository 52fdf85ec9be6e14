"""`dscall compare` end to end against the simulator over real HTTP (SPEC §10).

The simulator answers from the chunk, so a variant whose template adds a line after the
chunk gets a different answer; it gives dscall's judge (known by its system prompt) a
verdict drawn from a hash of the judge's message (``simulator.judge.judge_verdict``), which the
tests read back from the kept request bodies.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from dscall.compare.judge import combine, preference, wilson
from dscall.config import JUDGE_SYSTEM_PROMPT
from dscall.simulator import SimulatorConfig, SimulatorThread
from dscall.simulator.judge import judge_verdict
from tests.integration.conftest import Workspace, invoke, read_rows

JUDGE = (
    "Question:\n{question}\n\nAnswer A:\n{answer_a}\n\nAnswer B:\n{answer_b}\n\nWhich is better?"
)


@pytest.fixture
def kept() -> Iterator[SimulatorThread]:
    with SimulatorThread(SimulatorConfig(keep_requests=100_000)) as running:
        yield running


@pytest.fixture
def prompts(workspace: Workspace) -> dict[str, Path]:
    files = {
        "short": "Summarise in one sentence.\n\n{text}",
        "strict": "List the facts, strictly.\n\n{text}\n\n(only facts)",
        "judge": JUDGE,
    }
    paths = {}
    for name, text in files.items():
        paths[name] = workspace.root / f"{name}.txt"
        paths[name].write_text(text, encoding="utf-8")
    return paths


def compare_args(
    workspace: Workspace, sim: SimulatorThread, prompts: dict[str, Path], *extra: str
) -> list[str]:
    return [
        "compare",
        str(workspace.corpus),
        "--variant",
        f"short={prompts['short']}",
        "--variant",
        f"strict={prompts['strict']}",
        "--sample",
        "7",
        "--seed",
        "7",
        "--out",
        str(workspace.out),
        "--summary-json",
        str(workspace.root / "summary.json"),
        "--base-url",
        sim.base_url,
        "--cache-dir",
        str(workspace.cache),
        "--chunk-tokens",
        "64",
        "--overlap-tokens",
        "0",
        "--tokenizer",
        "estimate",
        *extra,
    ]


def summary(workspace: Workspace) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((workspace.root / "summary.json").read_text("utf-8"))
    return data


def answers(rows: list[dict[str, Any]], variant: str) -> list[dict[str, Any]]:
    return [row for row in rows if row["kind"] == "answer" and row["variant"] == variant]


def sampled(rows: list[dict[str, Any]], variant: str) -> set[tuple[str, int]]:
    return {(row["doc_path"], row["chunk_index"]) for row in answers(rows, variant)}


def test_every_variant_gets_the_same_sample_and_a_rerun_is_free(
    workspace: Workspace, kept: SimulatorThread, prompts: dict[str, Path]
) -> None:
    result = invoke(compare_args(workspace, kept, prompts))
    assert result.exit_code == 0, result.output
    rows = read_rows(workspace.out)
    first = sampled(rows, "short")
    assert len(first) == 7
    assert sampled(rows, "strict") == first
    assert len({path for path, _ in first}) == 7  # 12 documents: round robin, one chunk each
    sent = len(kept.requests())
    assert sent == 14
    again = invoke(compare_args(workspace, kept, prompts))
    assert again.exit_code == 0, again.output
    rerun = read_rows(workspace.out)
    assert sampled(rerun, "short") == first
    assert len(kept.requests()) == sent  # every answer came from the cache
    assert all(row["cached"] and row["cost_usd"] == 0.0 for row in rerun)
    assert [r["output"] for r in rerun] == [r["output"] for r in rows]
    # Another seed, another sample; the seed is what makes it stable.
    other = invoke(compare_args(workspace, kept, prompts, "--seed", "8"))
    assert other.exit_code == 0, other.output
    assert sampled(read_rows(workspace.out), "short") != first


def test_the_report_matches_the_answers_in_the_parquet(
    workspace: Workspace, prompts: dict[str, Path]
) -> None:
    with SimulatorThread(SimulatorConfig(fail={500: 0.3}, seed=3)) as sim:
        result = invoke(compare_args(workspace, sim, prompts, "--max-retries", "0"))
    assert result.exit_code == 0, result.output
    rows = read_rows(workspace.out)
    report = {line["variant"]: line for line in summary(workspace)["variants"]}
    assert sum(line["errors"] for line in report.values()) > 0  # the faults showed
    for name in ("short", "strict"):
        mine = answers(rows, name)
        line = report[name]
        ok = [row for row in mine if row["status"] == "ok"]
        assert line["answers"] == len(mine) == 7
        assert line["errors"] == len(mine) - len(ok)
        assert line["error_rate"] == pytest.approx((len(mine) - len(ok)) / len(mine))
        assert line["prompt_tokens"] == sum(row["prompt_tokens"] or 0 for row in mine)
        assert line["completion_tokens"] == sum(row["completion_tokens"] or 0 for row in mine)
        assert line["cost_usd"] == pytest.approx(sum(row["cost_usd"] for row in mine))
        assert line["price_usd"] == pytest.approx(sum(row["price_usd"] for row in ok))
        mean = sum(len(row["output"]) for row in ok) / len(ok)
        assert line["answer_chars_mean"] == pytest.approx(mean)
        latencies = sorted(row["latency_ms"] for row in mine)
        assert line["latency_p95_ms"] == pytest.approx(latencies[-1])  # 7 values: the top one
    assert "short" in result.stdout
    assert "strict" in result.stdout


def test_the_judge_is_asked_both_orders_and_its_verdicts_are_counted(
    workspace: Workspace, kept: SimulatorThread, prompts: dict[str, Path]
) -> None:
    args = compare_args(workspace, kept, prompts, "--judge-prompt", str(prompts["judge"]))
    result = invoke(args)
    assert result.exit_code == 0, result.output
    rows = read_rows(workspace.out)
    judged = [
        body for body in kept.requests() if body["messages"][0]["content"] == JUDGE_SYSTEM_PROMPT
    ]
    assert len(judged) == 14  # 7 chunks, one pair, both orders
    by_variant = {
        (row["doc_path"], row["chunk_index"], row["variant"]): row["output"]
        for row in rows
        if row["kind"] == "answer"
    }
    outcomes = {"win": 0, "tie": 0, "loss": 0}
    for path, index in sampled(rows, "short"):
        short, strict = by_variant[(path, index, "short")], by_variant[(path, index, "strict")]
        assert short != strict
        ab = [
            b
            for b in judged
            if f"Answer A:\n{short}\n\nAnswer B:\n{strict}\n" in b["messages"][1]["content"]
        ]
        ba = [
            b
            for b in judged
            if f"Answer A:\n{strict}\n\nAnswer B:\n{short}\n" in b["messages"][1]["content"]
        ]
        assert len(ab) == len(ba) == 1, (path, index)
        verdicts = judge_verdict(ab[0]["messages"]), judge_verdict(ba[0]["messages"])
        first = preference(verdicts[0], True)  # type: ignore[arg-type]
        second = preference(verdicts[1], False)  # type: ignore[arg-type]
        outcome = combine(first, second)
        assert outcome is not None
        outcomes[outcome] += 1
    pair = summary(workspace)["judge"]["pairs"][0]
    assert (pair["a"], pair["b"]) == ("short", "strict")
    assert {key: pair[key] for key in outcomes} == outcomes
    assert pair["invalid"] == 0
    judge_rows = [row for row in rows if row["kind"] == "judge"]
    assert len(judge_rows) == 14
    assert {row["verdict"] for row in judge_rows} <= {"A", "B", "tie"}
    decisive = outcomes["win"] + outcomes["loss"]
    interval = wilson(outcomes["win"], decisive)
    assert pair["win_share_95"] == (list(interval) if interval is not None else None)
    assert "95% CI" in result.stdout


def test_dry_run_prices_the_comparison_and_sends_nothing(
    workspace: Workspace, kept: SimulatorThread, prompts: dict[str, Path]
) -> None:
    args = compare_args(
        workspace, kept, prompts, "--judge-prompt", str(prompts["judge"]), "--dry-run"
    )
    result = invoke(args)
    assert result.exit_code == 0, result.output
    assert kept.requests() == []
    assert not workspace.out.exists()
    estimate = summary(workspace)
    calls = {line["variant"]: line["calls"] for line in estimate["lines"]}
    assert calls == {"short": 7, "strict": 7, "judge": 14}
    assert estimate["max_cost_usd"] > 0
    assert "dry run" in result.stdout
    # Once the comparison ran, a dry run finds every answer and every judge call cached.
    assert invoke(args[: args.index("--dry-run")]).exit_code == 0
    sent = len(kept.requests())
    assert sent == 28
    again = invoke(args)
    assert again.exit_code == 0, again.output
    lines = summary(workspace)["lines"]
    assert [(line["calls"], line["cached"]) for line in lines] == [(0, 7), (0, 7), (0, 14)]
    assert summary(workspace)["max_cost_usd"] == 0.0
    assert len(kept.requests()) == sent


def test_model_variants_cross_prompt_variants(
    workspace: Workspace, kept: SimulatorThread, prompts: dict[str, Path]
) -> None:
    args = compare_args(
        workspace,
        kept,
        prompts,
        "--model-variant",
        "flash=deepseek-flash",
        "--model-variant",
        "pro=deepseek-v4-pro",
        "--sample",
        "3",
    )
    result = invoke(args)
    assert result.exit_code == 0, result.output
    rows = read_rows(workspace.out)
    models = {(row["variant"], row["model"]) for row in rows}
    assert models == {
        ("short+flash", "deepseek-flash"),
        ("short+pro", "deepseek-v4-pro"),
        ("strict+flash", "deepseek-flash"),
        ("strict+pro", "deepseek-v4-pro"),
    }
    assert len({row["doc_path"] for row in rows}) == 3


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (["--variant", "missing=nowhere.txt"], "cannot read --variant missing="),
        (["--variant", "short={short}"], "the name 'short' is given twice"),
        (["--sample", "0"], "--sample must be at least 1"),
        (["--judge-model", "deepseek-flash"], "--judge-model needs --judge-prompt"),
        (["--variant", "bad"], "expected NAME=FILE"),
    ],
)
def test_usage_errors_are_one_line_and_exit_2(
    workspace: Workspace,
    kept: SimulatorThread,
    prompts: dict[str, Path],
    change: list[str],
    message: str,
) -> None:
    files = {name: str(path) for name, path in prompts.items()}
    change = [part.format(**files) for part in change]
    result = invoke([*compare_args(workspace, kept, prompts), *change])
    assert result.exit_code == 2, result.output
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert message in lines[0]
    assert kept.requests() == []


def test_a_judge_prompt_must_hold_both_answers(
    workspace: Workspace, kept: SimulatorThread, prompts: dict[str, Path]
) -> None:
    bad = workspace.root / "bad_judge.txt"
    bad.write_text("Which is better, {answer_a} or this?", encoding="utf-8")
    result = invoke([*compare_args(workspace, kept, prompts), "--judge-prompt", str(bad)])
    assert result.exit_code == 2
    assert "lacks {question} {answer_b}" in result.stderr


def test_with_a_schema_the_report_gives_each_variant_its_schema_valid_rate(
    workspace: Workspace, prompts: dict[str, Path]
) -> None:
    config = SimulatorConfig(schema_violations=0.5, seed=5)
    with SimulatorThread(config) as sim:
        args = compare_args(
            workspace,
            sim,
            prompts,
            "--schema-inline",
            "title str, year int",
            "--schema-retries",
            "0",
        )
        result = invoke(args)
    assert result.exit_code == 0, result.output
    rows = read_rows(workspace.out)
    report = {line["variant"]: line for line in summary(workspace)["variants"]}
    invalid = 0
    for name in ("short", "strict"):
        mine = answers(rows, name)
        valid = [row for row in mine if row["schema_valid"]]
        broken = [row for row in mine if row["schema_valid"] is False]
        invalid += len(broken)
        assert all(row["error_type"] == "SchemaValidationError" for row in broken)
        assert all(row["output"] for row in broken)  # the raw answer is kept
        assert report[name]["schema_valid"] == len(valid)
        assert report[name]["schema_valid_rate"] == pytest.approx(len(valid) / len(mine))
    assert invalid > 0
    assert "schema valid" in result.stdout


def test_a_budget_stops_the_comparison_and_keeps_what_finished(
    workspace: Workspace, kept: SimulatorThread, prompts: dict[str, Path]
) -> None:
    result = invoke([*compare_args(workspace, kept, prompts), "--budget-usd", "0.001"])
    assert result.exit_code == 3, result.output
    report = summary(workspace)
    assert report["complete"] is False
    assert "budget" in report["stop_reason"]
    rows = read_rows(workspace.out)
    assert len(rows) == len(kept.requests()) < 14
    assert sum(line["answers"] for line in report["variants"]) == len(rows)
