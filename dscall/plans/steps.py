"""The steps of a chain, checked and made ready to build requests, before anything is sent.

A mode is a fixed chain (``--mode map-reduce`` is a map step and a reduce step over it;
``--mode refine`` one refine step); ``--pipeline`` gives the chain step by step. Either way each
step here has its request builder (its own prompt, model and parameters on the run's cache
namespace and answer source) and knows what it reads:

    map       each chunk                              writes chunk rows
    refine    each chunk in order, with the answer    writes chunk rows; its last answer is
              so far ({previous})                     the document's
    reduce    a map step's chunk answers, in chunk    a document answer
              order ({outputs}), as a tree if need be
    document  earlier document answers ({steps.NAME})  a document answer
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace

from dscall.calls.providers import DEEPSEEK, Provider
from dscall.calls.request import (
    REDUCE_PLACEHOLDERS,
    REFINE_PLACEHOLDERS,
    PromptTemplate,
    RequestBuilder,
    Sources,
)
from dscall.config import (
    DEFAULT_REDUCE_PROMPT,
    DEFAULT_REFINE_PROMPT,
    Mode,
    PromptSettings,
    StepSettings,
)
from dscall.errors import UsageError
from dscall.plans.structured import Structured

DOCUMENT_LEVEL = frozenset({"reduce", "refine", "document"})
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")


@dataclass(frozen=True, slots=True)
class Step:
    settings: StepSettings
    requests: RequestBuilder
    first: RequestBuilder | None = None  # refine: the first chunk's request
    reads: tuple[str, ...] = ()  # reduce: its map step; document: the steps it reads
    reduce_tokens: int = 0
    structured: Structured | None = None  # its answers follow a schema (SPEC §10)

    @property
    def name(self) -> str:
        return self.settings.name

    @property
    def kind(self) -> str:
        return self.settings.kind

    @property
    def per_chunk(self) -> bool:
        return self.settings.kind in ("map", "refine")

    @property
    def answers_document(self) -> bool:
        return self.settings.kind in DOCUMENT_LEVEL


def mode_steps(
    mode: Mode,
    *,
    reduce_prompt: str | None = None,
    reduce_tokens: int | None = None,
    refine_prompt: str | None = None,
) -> tuple[StepSettings, ...]:
    """The chain of a ``--mode``; empty for ``map`` (one call per chunk, no chain)."""
    if mode == "map":
        return ()
    if mode == "map-reduce":
        return (
            StepSettings("map", "map", ""),
            StepSettings(
                "reduce",
                "reduce",
                reduce_prompt or DEFAULT_REDUCE_PROMPT,
                input="map",
                reduce_tokens=reduce_tokens,
            ),
        )
    return (StepSettings("refine", "refine", refine_prompt or DEFAULT_REFINE_PROMPT),)


def compile_steps(
    steps: tuple[StepSettings, ...],
    prompt: PromptSettings,
    namespace: str,
    source: Sources,
    chunk_tokens: int,
    provider: Provider = DEEPSEEK,
) -> tuple[Step, ...]:
    """Check ``steps`` and give each its request builder; every problem is a ``UsageError``
    naming the step (and its file and line, for a pipeline file)."""
    compiled: list[Step] = []
    seen: dict[str, StepSettings] = {}
    for settings in steps:
        where = _where(settings)
        if not _NAME.match(settings.name):
            raise UsageError(
                f"{where}: step name {settings.name!r} must be a word (letters, digits, _)"
            )
        if settings.name in seen:
            raise UsageError(f"{where}: a second step named {settings.name!r}")
        step_prompt = _prompt(prompt, settings)
        try:
            if settings.kind == "refine":  # its first chunk is asked like a map call
                first = settings.first_template or prompt.template
                step_prompt = replace(step_prompt, template=settings.template)
                step = _refine(settings, step_prompt, first, namespace, source, provider)
            else:
                step = _compile(
                    settings, step_prompt, seen, namespace, source, chunk_tokens, provider
                )
        except UsageError as exc:
            if settings.where is None or exc.message.startswith(settings.where):
                raise
            raise UsageError(f"{settings.where}: {exc.message}") from exc
        if settings.schema_json is not None:
            step = replace(step, structured=Structured(settings.schema_json, prompt.schema_retries))
        compiled.append(step)
        seen[settings.name] = settings
    return tuple(compiled)


def _compile(
    settings: StepSettings,
    prompt: PromptSettings,
    earlier: dict[str, StepSettings],
    namespace: str,
    source: Sources,
    chunk_tokens: int,
    provider: Provider,
) -> Step:
    where = _where(settings)
    option = _option(settings)
    kind = settings.kind
    if kind == "map":
        template = PromptTemplate.parse(prompt.template, option)
        return Step(
            settings, RequestBuilder(prompt, namespace, source, template, provider=provider)
        )
    if kind == "reduce":
        source_step = settings.input or _last_map(earlier)
        if source_step is None:
            raise UsageError(f'{where}: a reduce needs a map step before it (or input = "STEP")')
        read = earlier.get(source_step)
        if read is None:
            raise UsageError(f"{where}: input {settings.input!r} is not an earlier step")
        if read.kind != "map":
            raise UsageError(
                f"{where}: a reduce reads the chunk answers of a map step; "
                f"{read.name!r} is a {read.kind} step (one answer per document)"
            )
        template = PromptTemplate.parse(settings.template, option, REDUCE_PLACEHOLDERS, "outputs")
        budget = settings.reduce_tokens or chunk_tokens
        if budget < 16:
            raise UsageError(f"{where}: --reduce-tokens must be at least 16")
        return Step(
            settings,
            RequestBuilder(prompt, namespace, source, template, provider=provider),
            reads=(read.name,),
            reduce_tokens=budget,
        )
    return _document_step(settings, prompt, earlier, namespace, source, provider)


def _refine(
    settings: StepSettings,
    prompt: PromptSettings,
    first: str,
    namespace: str,
    source: Sources,
    provider: Provider,
) -> Step:
    where, option = _where(settings), _option(settings)
    template = PromptTemplate.parse(settings.template, option, REFINE_PLACEHOLDERS)
    if "previous" not in template.names:
        raise UsageError(f"{where}: {option} needs {{previous}} (the answer so far)")
    first_option = "the first_prompt" if settings.first_template else "--prompt"
    first_template = PromptTemplate.parse(first, first_option)
    return Step(
        settings,
        RequestBuilder(prompt, namespace, source, template, provider=provider),
        RequestBuilder(
            replace(prompt, template=first), namespace, source, first_template, provider=provider
        ),
    )


def _document_step(
    settings: StepSettings,
    prompt: PromptSettings,
    earlier: dict[str, StepSettings],
    namespace: str,
    source: Sources,
    provider: Provider,
) -> Step:
    where = _where(settings)
    known = tuple(f"steps.{name}" for name in earlier) + ("path", "chunk_count")
    body = f"steps.{settings.input}" if settings.input else None
    if settings.input is not None and settings.input not in earlier:
        raise UsageError(f"{where}: input {settings.input!r} is not an earlier step")
    try:
        template = PromptTemplate.parse(settings.template, _option(settings), known, body)
    except UsageError as exc:
        later = re.search(r"\{steps\.([A-Za-z0-9_]+)\}", exc.message)
        if later is not None:
            raise UsageError(
                f"{where}: {{steps.{later.group(1)}}} is not an earlier step's answer "
                f"(earlier steps: {', '.join(earlier) or 'none'})"
            ) from exc
        raise UsageError(f"{where}: {exc.message}") from exc
    reads = tuple(
        sorted(name[len("steps.") :] for name in template.names if name.startswith("steps."))
    )
    if not reads:
        raise UsageError(
            f'{where}: a document step reads earlier answers: set input = "STEP" or write '
            "{steps.STEP} in its prompt"
        )
    for name in reads:
        if earlier[name].kind == "map":
            raise UsageError(
                f"{where}: {{steps.{name}}} is a map step (one answer per chunk); reduce it "
                "first and read the reduce step"
            )
    return Step(
        settings,
        RequestBuilder(prompt, namespace, source, template, provider=provider),
        reads=reads,
    )


def _prompt(prompt: PromptSettings, settings: StepSettings) -> PromptSettings:
    """The run's prompt settings with the step's own in place; a map step of a mode keeps the
    run's --prompt (its template is empty)."""
    changes: dict[str, object] = {}
    if settings.template:
        changes["template"] = settings.template
    if settings.model is not None:
        changes["model"] = settings.model
    if settings.max_tokens is not None:
        changes["max_tokens"] = settings.max_tokens
    if settings.temperature is not None:
        changes["temperature"] = settings.temperature
    if settings.json_mode is not None:
        changes["json_mode"] = settings.json_mode
    changes["schema_json"] = settings.schema_json  # its own schema, or none
    return replace(prompt, **changes)  # type: ignore[arg-type]


def _last_map(earlier: dict[str, StepSettings]) -> str | None:
    maps = [name for name, step in earlier.items() if step.kind == "map"]
    return maps[-1] if maps else None


def _where(settings: StepSettings) -> str:
    return settings.where or f"step {settings.name!r}"


def _option(settings: StepSettings) -> str:
    if settings.where is not None:
        return f"the prompt of step {settings.name!r}"
    return {"reduce": "--reduce-prompt", "refine": "--refine-prompt"}.get(settings.kind, "--prompt")
