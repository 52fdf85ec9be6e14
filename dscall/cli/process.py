"""`dscall process`: documents in, one Parquet row per chunk out."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from dscall import config
from dscall.cli import call_options, chain_options, executor_options, options, report_options
from dscall.cli.app import app, run

# Typer inspects these annotations at run time; Optional[...] is what it understands on 3.10.
_PROMPT = "Prompt and model"
_CALLS = call_options.CALLS
_CACHE = call_options.CACHE
_OUT = options.OUTPUT


@app.command(no_args_is_help=True)
def process(
    paths: options.Paths,
    out: Annotated[
        Path,
        typer.Option(
            "--out", "-o", help="Parquet file of results, one row per chunk.", rich_help_panel=_OUT
        ),
    ] = Path("results.parquet"),
    documents_out: Annotated[
        Path | None,
        typer.Option(
            help="Also write one row per document (outputs merged in chunk order).",
            rich_help_panel=_OUT,
        ),
    ] = None,
    no_text: Annotated[
        bool,
        typer.Option(
            "--no-text", help="Leave the chunk_text column out of --out.", rich_help_panel=_OUT
        ),
    ] = False,
    summary_json: Annotated[
        Path | None,
        typer.Option(
            help="Write the end-of-run figures as JSON (for CI); - for standard output.",
            rich_help_panel=_OUT,
        ),
    ] = None,
    force: Annotated[
        bool,
        options.force("Replace output files that dscall did not write (never an input document)."),
    ] = False,
    wait_lock: Annotated[
        bool,
        typer.Option(
            "--wait-lock",
            help="If another run is writing the same --out, wait for it instead of refusing.",
            rich_help_panel=_OUT,
        ),
    ] = False,
    audit_log: Annotated[
        Path | None,
        typer.Option(
            help="Append one JSON line per attempt (no key, no document text).",
            rich_help_panel=_OUT,
        ),
    ] = None,
    caller: Annotated[
        str | None,
        typer.Option(
            help="Caller identity in the audit log (default: user@host).", rich_help_panel=_OUT
        ),
    ] = None,
    preview: Annotated[
        int | None,
        typer.Option(
            help="Show the first N results at the end (default: 5 with --mock, else 0).",
            rich_help_panel=_OUT,
        ),
    ] = None,
    quiet: Annotated[bool, options.quiet("No progress, notes or summary; errors only.")] = False,
    progress_interval: Annotated[
        float,
        typer.Option(
            help="Seconds between plain progress lines when stderr is not a terminal.",
            min=0.1,
            rich_help_panel=_OUT,
        ),
    ] = config.PROGRESS_PLAIN_INTERVAL_S,
    max_failures: Annotated[
        int,
        typer.Option(
            help="Failed chunks/documents tolerated before the exit code becomes 1.",
            min=0,
            rich_help_panel=_OUT,
        ),
    ] = 0,
    model: Annotated[
        str, typer.Option(help="Model name.", rich_help_panel=_PROMPT)
    ] = config.DEFAULT_MODEL,
    system: Annotated[
        str,
        typer.Option(
            help="System prompt (sent first, identical for every chunk).", rich_help_panel=_PROMPT
        ),
    ] = config.DEFAULT_SYSTEM_PROMPT,
    prompt: Annotated[
        str | None,
        typer.Option(
            help="Instruction template. Placeholders: {text} {path} {page_start} {page_end} "
            "{chunk_index} {chunk_count}; without {text} the chunk is appended. "
            "(default: a concise summary of each chunk)",
            rich_help_panel=_PROMPT,
        ),
    ] = None,
    prompt_file: Annotated[
        Path | None,
        typer.Option(help="Read the instruction template from a file.", rich_help_panel=_PROMPT),
    ] = None,
    json_mode: Annotated[
        bool,
        typer.Option(
            "--json",
            help="Ask for a JSON object answer (response_format).",
            rich_help_panel=_PROMPT,
        ),
    ] = False,
    max_tokens: Annotated[
        int,
        typer.Option(
            help="Upper bound on output tokens per chunk.", min=1, rich_help_panel=_PROMPT
        ),
    ] = config.DEFAULT_MAX_TOKENS,
    temperature: Annotated[
        float | None,
        typer.Option(
            help="Sampling temperature (0-2) (default: the model's).", rich_help_panel=_PROMPT
        ),
    ] = None,
    thinking: Annotated[
        bool,
        typer.Option(
            help="Let the model think (reasoning tokens are billed as output).",
            rich_help_panel=_PROMPT,
        ),
    ] = False,
    stream: Annotated[
        bool,
        typer.Option(
            help="Stream answers (for long outputs; idle watchdog on).", rich_help_panel=_CALLS
        ),
    ] = False,
    base_url: call_options.BaseUrl = config.DEFAULT_BASE_URL,
    endpoint: call_options.Endpoints = None,
    provider: call_options.Provider = "auto",
    api_key: call_options.ApiKey = None,
    mock: call_options.Mock = False,
    concurrency: call_options.Concurrency = config.DEFAULT_CONCURRENCY,
    max_concurrency: Annotated[
        int,
        typer.Option(
            help="Never more requests in flight than this.", min=1, rich_help_panel=_CALLS
        ),
    ] = config.DEFAULT_MAX_CONCURRENCY,
    rpm: Annotated[
        int | None,
        typer.Option(help="Requests per minute limit.", min=1, rich_help_panel=_CALLS),
    ] = None,
    tpm: Annotated[
        int | None, typer.Option(help="Tokens per minute limit.", min=1, rich_help_panel=_CALLS)
    ] = None,
    max_retries: call_options.MaxRetries = config.DEFAULT_MAX_RETRIES,
    timeout: Annotated[
        float,
        typer.Option(
            help="Wall-clock deadline per attempt, seconds.", min=0.001, rich_help_panel=_CALLS
        ),
    ] = config.DEFAULT_ATTEMPT_TIMEOUT_S,
    max_outage: Annotated[
        float,
        typer.Option(
            help="Stop (exit 3) when every endpoint stays down this long, seconds.",
            min=0.0,
            rich_help_panel=_CALLS,
        ),
    ] = config.DEFAULT_MAX_OUTAGE_S,
    off_peak: call_options.OffPeak = "any",
    budget_usd: call_options.BudgetUsd = None,
    prices: call_options.Prices = None,
    allow_insecure_http: call_options.AllowInsecureHttp = False,
    no_preflight: call_options.NoPreflight = False,
    dry_run: Annotated[
        bool,
        typer.Option(
            help="Estimate tokens and cost per document; call nothing.", rich_help_panel=_CALLS
        ),
    ] = False,
    cache_dir: call_options.CacheDir = None,
    namespace: call_options.Namespace = config.DEFAULT_NAMESPACE,
    no_cache: Annotated[
        bool,
        typer.Option(
            "--no-cache", help="Neither read nor write the cache.", rich_help_panel=_CACHE
        ),
    ] = False,
    refresh: Annotated[
        bool,
        typer.Option(
            help="Ignore cached answers (new answers are still stored).", rich_help_panel=_CACHE
        ),
    ] = False,
    cache_url: call_options.CacheUrl = None,
    include: options.Include = None,
    exclude: options.Exclude = None,
    hidden: options.Hidden = False,
    chunk_tokens: options.ChunkTokens = config.DEFAULT_CHUNK_TOKENS,
    overlap_tokens: options.OverlapTokens = config.DEFAULT_OVERLAP_TOKENS,
    tokenizer: options.Tokenizer = "auto",
    pdf_backend: options.PdfBackend = "auto",
    ocr: options.Ocr = None,
    headers: options.Headers = False,
    extract_timeout: options.ExtractTimeout = config.DEFAULT_EXTRACT_TIMEOUT_S,
    workers: options.Workers = 0,
    mode: chain_options.Mode = "map",
    reduce_prompt: chain_options.ReducePrompt = None,
    reduce_tokens: chain_options.ReduceTokens = None,
    refine_prompt: chain_options.RefinePrompt = None,
    allow_partial: chain_options.AllowPartial = False,
    pipeline: chain_options.Pipeline = None,
    schema: chain_options.Schema = None,
    schema_inline: chain_options.SchemaInline = None,
    schema_retries: chain_options.SchemaRetries = config.DEFAULT_SCHEMA_RETRIES,
    metrics_port: report_options.MetricsPort = None,
    metrics_textfile: report_options.MetricsTextfile = None,
    executor: executor_options.Executor = "local",
    ray_address: executor_options.RayAddress = None,
    shards: executor_options.Shards = None,
    shard_retries: executor_options.ShardRetries = config.DEFAULT_SHARD_RETRIES,
) -> None:
    """Send every chunk of every document to the model and write the answers to Parquet.

    Exit codes: 0 all chunks ok, 1 some failed (output still written), 2 usage or configuration
    error (nothing sent), 3 stopped early (auth, balance, outage, budget, interrupt, output
    failure) with what finished written or cached.
    """

    def body() -> int:
        from dscall.cli.process_run import execute

        settings = config.ProcessSettings(
            inputs=tuple(paths),
            discovery=options.discovery_settings(include, exclude, hidden),
            extract=options.extract_settings(extract_timeout, pdf_backend, workers, ocr, headers),
            chunk=options.chunk_settings(chunk_tokens, overlap_tokens, tokenizer),
            prompt=config.PromptSettings(
                model=model,
                system=system,
                template=chain_options.prompt_template(prompt, prompt_file),
                max_tokens=max_tokens,
                temperature=temperature,
                json_mode=json_mode,
                thinking=thinking,
                stream=stream,
                schema_json=chain_options.schema_json(schema, schema_inline),
                schema_retries=schema_retries,
            ),
            call=config.CallSettings(
                base_url=base_url,
                provider=provider,
                concurrency=concurrency,
                max_concurrency=max(max_concurrency, concurrency),
                max_retries=max_retries,
                attempt_timeout_s=timeout,
                rpm=rpm,
                tpm=tpm,
                max_outage_s=max_outage,
                allow_insecure_http=allow_insecure_http,
                endpoints=call_options.endpoint_settings(endpoint, base_url),
                off_peak=off_peak,
            ),
            cache=config.CacheSettings(
                directory=cache_dir or config.default_cache_dir(),
                namespace=namespace,
                enabled=not no_cache,
                refresh=refresh,
                cache_url=cache_url,
            ),
            output=config.OutputSettings(
                out=out,
                documents_out=documents_out,
                include_text=not no_text,
                audit_log=audit_log,
                summary_json=summary_json,
                force=force,
                wait_lock=wait_lock,
                metrics_port=metrics_port,
                metrics_textfile=metrics_textfile,
            ),
            budget_usd=budget_usd,
            max_failures=max_failures,
            caller=caller,
            prices_file=prices,
            mock=mock,
            dry_run=dry_run,
            preflight=not no_preflight,
            executor=executor_options.executor_settings(
                executor, ray_address, shards, shard_retries
            ),
        )
        settings = chain_options.with_chain(
            settings, mode, reduce_prompt, reduce_tokens, refine_prompt, allow_partial, pipeline
        )
        shown = preview if preview is not None else (5 if mock else 0)
        return execute(
            settings,
            api_key,
            quiet=quiet,
            preview=shown,
            stream=sys.stderr,
            progress_interval_s=progress_interval,
        )

    run(body)
