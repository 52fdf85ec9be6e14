"""The options of ``dscall process`` that say what is asked: the prompt template, and the chain
of calls per document (SPEC §9)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Annotated, Literal

import typer

from dscall import config
from dscall.errors import UsageError

CHAIN = "Modes and pipelines"

Mode = Annotated[
    config.Mode,
    typer.Option(
        "--mode",
        help="map: one answer per chunk. map-reduce: the chunk answers of each document "
        "combined into one (--reduce-prompt). refine: each document's chunks in order, each "
        "refining the answer so far (--refine-prompt).",
        rich_help_panel=CHAIN,
    ),
]
ReducePrompt = Annotated[
    str | None,
    typer.Option(
        "--reduce-prompt",
        metavar="TEMPLATE",
        help="map-reduce: the reduce call's template. Placeholders: {outputs} (the chunk "
        "answers, in chunk order) {path} {chunk_count}. Default: a faithful summary of the "
        "whole document, in its language.",
        rich_help_panel=CHAIN,
    ),
]
ReduceTokens = Annotated[
    int | None,
    typer.Option(
        "--reduce-tokens",
        metavar="N",
        min=16,
        help="map-reduce: tokens of answers per reduce call; more are reduced in groups, "
        "then the group answers, as a tree (default: --chunk-tokens).",
        rich_help_panel=CHAIN,
    ),
]
RefinePrompt = Annotated[
    str | None,
    typer.Option(
        "--refine-prompt",
        metavar="TEMPLATE",
        help="refine: the template of chunks after the first (which gets --prompt). "
        "Placeholders: {previous} (the answer so far) {text} {path} {page_start} {page_end} "
        "{chunk_index} {chunk_count}.",
        rich_help_panel=CHAIN,
    ),
]
AllowPartial = Annotated[
    bool,
    typer.Option(
        "--allow-partial",
        help="map-reduce (or a pipeline's reduce steps): reduce a document over the chunk "
        "answers that did not fail (default: leave it unreduced, status partial).",
        rich_help_panel=CHAIN,
    ),
]
Pipeline = Annotated[
    Path | None,
    typer.Option(
        "--pipeline",
        metavar="FILE",
        help="A chain of named steps from a TOML file, instead of --mode: [[steps]] tables with "
        "name, kind (map, reduce, refine, document), prompt or prompt_file, and optionally "
        "model, max_tokens, temperature, json, input. Templates read earlier steps' document "
        "answers as {steps.NAME}. Checked before anything is sent.",
        rich_help_panel=CHAIN,
    ),
]

SCHEMA = "Structured output"
Schema = Annotated[
    Path | None,
    typer.Option(
        "--schema",
        metavar="FILE",
        help="A JSON Schema file (object, properties, required, type, items, enum, nullable "
        'as ["T", "null"]) the answers must follow: JSON mode on, each answer checked '
        "and asked again with its errors; each top-level property becomes a typed column.",
        rich_help_panel=SCHEMA,
    ),
]
SchemaInline = Annotated[
    str | None,
    typer.Option(
        "--schema-inline",
        metavar="FIELDS",
        help="The schema in short: 'title str, year int, score float, ok bool, tags "
        "list[str], kind str(a|b), note str?, who {name str, role str}' (? = may be null).",
        rich_help_panel=SCHEMA,
    ),
]
SchemaRetries = Annotated[
    int,
    typer.Option(
        "--schema-retries",
        metavar="N",
        min=0,
        help="How often an answer that does not follow the schema is asked again, with its "
        "errors, before its row fails with SchemaValidationError.",
        rich_help_panel=SCHEMA,
    ),
]


def schema_json(schema: Path | None, inline: str | None) -> str | None:
    """The compact JSON Schema of --schema or --schema-inline (checked), or None."""
    if schema is not None and inline is not None:
        raise UsageError("give --schema or --schema-inline, not both")
    if schema is not None:
        from dscall.schema.spec import load_schema

        return load_schema(schema).compact
    if inline is not None:
        from dscall.schema.inline import inline_schema

        return inline_schema(inline).compact
    return None


def with_chain(
    settings: config.ProcessSettings,
    mode: Literal["map", "map-reduce", "refine"],
    reduce_prompt: str | None,
    reduce_tokens: int | None,
    refine_prompt: str | None,
    allow_partial: bool,
    pipeline: Path | None,
) -> config.ProcessSettings:
    """``settings`` with the chain of ``--pipeline`` or ``--mode`` in place."""
    if pipeline is None:
        steps = chain_steps(mode, reduce_prompt, reduce_tokens, refine_prompt, allow_partial)
        return replace(settings, steps=steps, allow_partial=allow_partial)
    given = {
        f"--mode {mode}": mode != "map",
        "--reduce-prompt": reduce_prompt is not None,
        "--reduce-tokens": reduce_tokens is not None,
        "--refine-prompt": refine_prompt is not None,
    }
    for option, is_set in given.items():
        if is_set:
            raise UsageError(
                f"give --pipeline or {option}, not both (a pipeline's steps carry their own "
                "prompts and parameters)"
            )
    from dscall.plans.pipeline_file import load_pipeline

    steps = load_pipeline(pipeline)
    if allow_partial and not any(step.kind == "reduce" for step in steps):
        raise UsageError(f"--allow-partial needs a reduce step; {pipeline} has none")
    return replace(settings, steps=steps, allow_partial=allow_partial, pipeline=pipeline)


def chain_steps(
    mode: Literal["map", "map-reduce", "refine"],
    reduce_prompt: str | None,
    reduce_tokens: int | None,
    refine_prompt: str | None,
    allow_partial: bool,
) -> tuple[config.StepSettings, ...]:
    """The steps of ``mode``; options of another mode are a usage error, not ignored."""
    given = {
        "--reduce-prompt": (reduce_prompt is not None, "map-reduce"),
        "--reduce-tokens": (reduce_tokens is not None, "map-reduce"),
        "--allow-partial": (allow_partial, "map-reduce"),
        "--refine-prompt": (refine_prompt is not None, "refine"),
    }
    for option, (is_set, needs) in given.items():
        if is_set and mode != needs:
            raise UsageError(f"{option} needs --mode {needs} (the mode is {mode})")
    from dscall.plans.steps import mode_steps

    return mode_steps(
        mode,
        reduce_prompt=reduce_prompt,
        reduce_tokens=reduce_tokens,
        refine_prompt=refine_prompt,
    )


def prompt_template(prompt: str | None, prompt_file: Path | None) -> str:
    """The map template of --prompt or --prompt-file (checked), or the default."""
    if prompt is not None and prompt_file is not None:
        raise UsageError("give --prompt or --prompt-file, not both")
    from dscall.calls.request import PromptTemplate

    if prompt_file is not None:
        try:
            template = prompt_file.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise UsageError(f"cannot read --prompt-file {prompt_file}: {exc}") from exc
        PromptTemplate.parse(template, f"--prompt-file {prompt_file}")  # unknown placeholders
        return template
    if prompt is None:
        return config.DEFAULT_PROMPT_TEMPLATE
    PromptTemplate.parse(prompt, "--prompt")
    return prompt
