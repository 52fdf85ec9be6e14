"""What `dscall compare` does once its options are parsed: the variants checked, the run, the
table on the terminal and the summary JSON.

Imported lazily by ``cli/compare.py`` so that ``dscall --help`` does not load aiohttp or
pyarrow.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any, TextIO

from rich.console import Console
from rich.table import Table

from dscall.calls.request import PromptTemplate
from dscall.compare.run import run_compare
from dscall.compare.setup import CompareSettings, VariantSpec
from dscall.config import ProcessSettings
from dscall.errors import UsageError
from dscall.output.safety import STDOUT
from dscall.output.summary_file import write_summary
from dscall.progress import safe_text
from dscall.stats import RunStats

RESERVED = ("judge",)  # the dry run's line of judge calls


def _pairs(values: list[str], option: str, what: str) -> list[tuple[str, str]]:
    """``NAME=VALUE`` options, each name once."""
    pairs: list[tuple[str, str]] = []
    for value in values:
        name, equals, rest = value.partition("=")
        name = name.strip()
        if not equals or not name or not rest:
            raise UsageError(f"{option} {value!r}: expected NAME={what}")
        if name in RESERVED or "+" in name:
            raise UsageError(f"{option} {value!r}: the name {name!r} is reserved (no '+' either)")
        if any(name == seen for seen, _ in pairs):
            raise UsageError(f"{option}: the name {name!r} is given twice")
        pairs.append((name, rest))
    return pairs


def _read(path: Path, option: str) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except OSError as exc:
        raise UsageError(f"cannot read {option} {path}: {exc.strerror or exc}") from exc
    except UnicodeDecodeError as exc:
        raise UsageError(f"cannot read {option} {path}: not UTF-8 text ({exc.reason})") from exc


def variants(
    settings: ProcessSettings,
    prompt_variants: list[str],
    model_variants: list[str],
    prompt_file: Path | None,
    *,
    sample: int,
    seed: int,
    judge_prompt: Path | None,
    judge_model: str | None,
) -> CompareSettings:
    """The comparison's settings: every prompt variant under every model variant."""
    if sample < 1:
        raise UsageError(f"--sample must be at least 1 (got {sample})")
    prompts: list[tuple[str | None, str, str]] = []
    for name, file in _pairs(prompt_variants, "--variant", "FILE"):
        where = f"--variant {name}={file}"
        text = _read(Path(file), f"--variant {name}=")
        PromptTemplate.parse(text, where)  # an unknown placeholder: before anything is read
        prompts.append((name, text, file))
    if not prompts:
        template = settings.prompt.template
        source = "--prompt-file" if prompt_file is not None else "default prompt"
        if prompt_file is not None:
            template = _read(prompt_file, "--prompt-file")
            PromptTemplate.parse(template, f"--prompt-file {prompt_file}")
        prompts.append((None, template, source))
    elif prompt_file is not None:
        raise UsageError("give --variant or --prompt-file, not both (each variant has its prompt)")
    models: list[tuple[str | None, str]] = list(_pairs(model_variants, "--model-variant", "MODEL"))
    if not models:
        models = [(None, settings.prompt.model)]
    specs = [
        VariantSpec("+".join(n for n in (p_name, m_name) if n), text, source, model)
        for p_name, text, source in prompts
        for m_name, model in models
    ]
    if len(specs) < 2:
        raise UsageError("compare needs at least two variants (--variant or --model-variant)")
    judge_text = None
    if judge_prompt is not None:
        judge_text = _read(judge_prompt, "--judge-prompt")
    elif judge_model is not None:
        raise UsageError("--judge-model needs --judge-prompt")
    return CompareSettings(
        settings,
        tuple(specs),
        sample,
        seed,
        judge_text,
        f"--judge-prompt {judge_prompt}",
        judge_model,
    )


def execute(settings: CompareSettings, api_key: str | None, *, quiet: bool, stream: TextIO) -> int:
    err = Console(file=stream, highlight=False, soft_wrap=True)

    def notify(message: str) -> None:
        if not quiet:
            err.print(safe_text(message), markup=False)

    result = asyncio.run(run_compare(settings, api_key, RunStats(), notify))
    summary_json = settings.base.output.summary_json
    to_stdout = summary_json is not None and str(summary_json) == STDOUT
    if not quiet and not to_stdout:
        console = Console(highlight=False)
        if settings.base.dry_run:
            console.print(_estimate_table(result.summary))
        else:
            for table in report_tables(result.summary):
                console.print(table)
    if not quiet and not settings.base.dry_run:
        err.print(
            f"wrote {result.rows_written} rows to {safe_text(str(settings.base.output.out))}",
            markup=False,
        )
    if result.stop_reason is not None:
        err.print(f"[bold red]stopped:[/] {safe_text(str(result.stop_reason))}")
    if summary_json is not None:
        write_summary(summary_json, result.summary)
    return result.exit_code


def _num(value: float | int | None, form: str = "{:,}") -> str:
    return "-" if value is None else form.format(value)


def _share(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.1f}%"


def report_tables(summary: dict[str, Any]) -> list[Table]:
    """The variants side by side, and the judge's pairs when there is a judge."""
    chunks = summary["sample"]["chunks"]
    view = Table(
        title=f"dscall compare: {chunks} chunks of {summary['sample']['documents']} documents"
    )
    lines = summary["variants"]
    # Variants as columns, figures as rows: side by side, and a few variants fit 80 columns.
    view.add_column("", no_wrap=True, min_width=15)
    for line in lines:  # a long name or model is folded, never cut
        view.add_column(safe_text(line["variant"]), justify="right", overflow="fold")
    figures: list[tuple[str, Callable[[dict[str, Any]], str]]] = [
        ("model", lambda x: safe_text(x["model"] or "")),
        ("answers", lambda x: str(x["answers"])),
        ("error rate", lambda x: _share(x["error_rate"])),
        ("prompt tokens", lambda x: _num(x["prompt_tokens"])),
        ("output tokens", lambda x: _num(x["completion_tokens"])),
        ("list price $", lambda x: _num(x["price_usd"], "{:.4f}")),
        ("paid this run $", lambda x: _num(x["cost_usd"], "{:.4f}")),
        ("latency p50 ms", lambda x: _num(x["latency_p50_ms"], "{:.0f}")),
        ("latency p95 ms", lambda x: _num(x["latency_p95_ms"], "{:.0f}")),
        ("answer chars", lambda x: _num(x["answer_chars_mean"], "{:.0f}")),
    ]
    if lines and "schema_valid_rate" in lines[0]:
        figures.insert(3, ("schema valid", lambda x: _share(x["schema_valid_rate"])))
    for label, cell in figures:
        view.add_row(label, *[cell(line) for line in lines])
    tables = [view]
    judge = summary.get("judge")
    if judge is not None:
        pairs = Table(title=f"judge: {judge['calls']} calls (both orders), win of A over B")
        for head in ("A", "B", "win", "tie", "loss", "invalid", "win %", "95% CI"):
            pairs.add_column(head, overflow="fold", justify="left" if head in "AB" else "right")
        for pair in judge["pairs"]:
            interval = pair["win_share_95"]
            pairs.add_row(
                safe_text(pair["a"]),
                safe_text(pair["b"]),
                str(pair["win"]),
                str(pair["tie"]),
                str(pair["loss"]),
                str(pair["invalid"]),
                _share(pair["win_share"]),
                "-" if interval is None else f"{100 * interval[0]:.0f}-{100 * interval[1]:.0f}%",
            )
        tables.append(pairs)
    return tables


def _estimate_table(summary: dict[str, Any]) -> Table:
    view = Table(title=f"dry run: {summary['chunks']} sampled chunks, nothing was called")
    for head in ("variant", "calls", "cached", "prompt tokens", "max output", "max $"):
        view.add_column(head, justify="left" if head == "variant" else "right")
    for line in summary["lines"]:
        view.add_row(
            safe_text(line["variant"]),
            str(line["calls"]),
            str(line["cached"]),
            f"{line['prompt_tokens']:,}",
            f"{line['max_output_tokens']:,}",
            _num(line["max_cost_usd"], "{:.4f}"),
        )
    view.add_section()
    view.add_row("total", "", "", "", "", _num(summary["max_cost_usd"], "{:.4f}"))
    return view
