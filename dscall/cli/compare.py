"""`dscall compare`: prompt and model variants on the same sample of chunks, side by side."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from dscall import config
from dscall.cli import call_options, chain_options, options
from dscall.cli.app import app, run

_VARIANTS = "Variants and judge"
_CALLS = call_options.CALLS
_OUT = options.OUTPUT


@app.command(no_args_is_help=True)
def compare(
    paths: options.Paths,
    variant: Annotated[
        list[str] | None,
        typer.Option(
            "--variant",
            metavar="NAME=FILE",
            help="A prompt variant: its name and the file of its template (placeholders as "
            "--prompt). Repeatable.",
            rich_help_panel=_VARIANTS,
        ),
    ] = None,
    model_variant: Annotated[
        list[str] | None,
        typer.Option(
            "--model-variant",
            metavar="NAME=MODEL",
            help="A model variant. Repeatable. With --variant too, every prompt is asked of "
            "every model (variants named PROMPT+MODEL).",
            rich_help_panel=_VARIANTS,
        ),
    ] = None,
    sample: Annotated[
        int,
        typer.Option(
            help="Chunks in the sample, spread over the documents (round robin).",
            rich_help_panel=_VARIANTS,
        ),
    ] = config.DEFAULT_COMPARE_SAMPLE,
    seed: Annotated[
        int,
        typer.Option(
            help="Seed of the sample: the same seed, the same chunks.", rich_help_panel=_VARIANTS
        ),
    ] = config.DEFAULT_COMPARE_SEED,
    judge_prompt: Annotated[
        Path | None,
        typer.Option(
            metavar="FILE",
            help="Ask an LLM judge which answer of each pair of variants is better, both "
            "orders asked: a template with {question} (the chunk) {answer_a} {answer_b}.",
            rich_help_panel=_VARIANTS,
        ),
    ] = None,
    judge_model: Annotated[
        str | None,
        typer.Option(help="The judge's model (default: --model).", rich_help_panel=_VARIANTS),
    ] = None,
    model: Annotated[
        str, typer.Option(help="Model name (of prompt variants).", rich_help_panel=_VARIANTS)
    ] = config.DEFAULT_MODEL,
    system: Annotated[
        str, typer.Option(help="System prompt of every variant.", rich_help_panel=_VARIANTS)
    ] = config.DEFAULT_SYSTEM_PROMPT,
    prompt_file: Annotated[
        Path | None,
        typer.Option(
            help="The template of model variants (default: a concise summary).",
            rich_help_panel=_VARIANTS,
        ),
    ] = None,
    max_tokens: Annotated[
        int,
        typer.Option(
            help="Upper bound on output tokens per call.", min=1, rich_help_panel=_VARIANTS
        ),
    ] = config.DEFAULT_MAX_TOKENS,
    temperature: Annotated[
        float | None,
        typer.Option(help="Sampling temperature (0-2).", rich_help_panel=_VARIANTS),
    ] = None,
    schema: chain_options.Schema = None,
    schema_inline: chain_options.SchemaInline = None,
    schema_retries: chain_options.SchemaRetries = config.DEFAULT_SCHEMA_RETRIES,
    out: Annotated[
        Path,
        typer.Option(
            "--out",
            "-o",
            help="Parquet of every answer with its variant, and every judge call.",
            rich_help_panel=_OUT,
        ),
    ] = Path("compare.parquet"),
    summary_json: Annotated[
        Path | None,
        typer.Option(
            help="Write the figures as JSON; - for standard output.", rich_help_panel=_OUT
        ),
    ] = None,
    audit_log: Annotated[
        Path | None,
        typer.Option(help="Append one JSON line per attempt.", rich_help_panel=_OUT),
    ] = None,
    no_text: Annotated[
        bool,
        typer.Option("--no-text", help="Leave chunk_text out of --out.", rich_help_panel=_OUT),
    ] = False,
    force: Annotated[
        bool, options.force("Replace output files that dscall did not write.")
    ] = False,
    quiet: Annotated[bool, options.quiet("No notes or table; errors only.")] = False,
    base_url: call_options.BaseUrl = config.DEFAULT_BASE_URL,
    endpoint: call_options.Endpoints = None,
    provider: call_options.Provider = "auto",
    api_key: call_options.ApiKey = None,
    mock: call_options.Mock = False,
    concurrency: call_options.Concurrency = config.DEFAULT_CONCURRENCY,
    max_retries: call_options.MaxRetries = config.DEFAULT_MAX_RETRIES,
    budget_usd: call_options.BudgetUsd = None,
    prices: call_options.Prices = None,
    no_preflight: call_options.NoPreflight = False,
    dry_run: Annotated[
        bool,
        typer.Option(
            help="Price the comparison (the judge's calls too); call nothing.",
            rich_help_panel=_CALLS,
        ),
    ] = False,
    cache_dir: call_options.CacheDir = None,
    namespace: call_options.Namespace = config.DEFAULT_NAMESPACE,
    cache_url: call_options.CacheUrl = None,
    include: options.Include = None,
    exclude: options.Exclude = None,
    hidden: options.Hidden = False,
    chunk_tokens: options.ChunkTokens = config.DEFAULT_CHUNK_TOKENS,
    overlap_tokens: options.OverlapTokens = config.DEFAULT_OVERLAP_TOKENS,
    tokenizer: options.Tokenizer = "auto",
    pdf_backend: options.PdfBackend = "auto",
    extract_timeout: options.ExtractTimeout = config.DEFAULT_EXTRACT_TIMEOUT_S,
    workers: options.Workers = 0,
) -> None:
    """Ask every variant about the same deterministic sample of chunks and report them side by
    side: cost, tokens, latency, error and schema-valid rates, answer length, and with
    --judge-prompt an LLM judge's win/tie/loss with a 95% interval.

    Exit codes: 0 done (failed answers are figures of the report), 2 usage error (nothing
    sent), 3 stopped early (budget, auth, balance, outage, interrupt).
    """

    def body() -> int:
        from dscall.cli.compare_run import execute, variants

        settings = config.ProcessSettings(
            inputs=tuple(paths),
            discovery=options.discovery_settings(include, exclude, hidden),
            extract=options.extract_settings(extract_timeout, pdf_backend, workers),
            chunk=options.chunk_settings(chunk_tokens, overlap_tokens, tokenizer),
            prompt=config.PromptSettings(
                model=model,
                system=system,
                max_tokens=max_tokens,
                temperature=temperature,
                schema_json=chain_options.schema_json(schema, schema_inline),
                schema_retries=schema_retries,
            ),
            call=config.CallSettings(
                base_url=base_url,
                endpoints=call_options.endpoint_settings(endpoint, base_url),
                provider=provider,
                concurrency=concurrency,
                max_concurrency=max(config.DEFAULT_MAX_CONCURRENCY, concurrency),
                max_retries=max_retries,
            ),
            cache=config.CacheSettings(
                directory=cache_dir or config.default_cache_dir(),
                namespace=namespace,
                cache_url=cache_url,
            ),
            output=config.OutputSettings(
                out=out,
                include_text=not no_text,
                audit_log=audit_log,
                summary_json=summary_json,
                force=force,
            ),
            budget_usd=budget_usd,
            prices_file=prices,
            mock=mock,
            dry_run=dry_run,
            preflight=not no_preflight,
        )
        compared = variants(
            settings,
            variant or [],
            model_variant or [],
            prompt_file,
            sample=sample,
            seed=seed,
            judge_prompt=judge_prompt,
            judge_model=judge_model,
        )
        return execute(compared, api_key, quiet=quiet, stream=sys.stderr)

    run(body)
