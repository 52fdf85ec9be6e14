"""The settings of a chain of calls (SPEC §9): its mode and its steps, as ``dscall.config``
re-exports them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Mode = Literal["map", "map-reduce", "refine"]
StepKind = Literal["map", "reduce", "refine", "document"]


@dataclass(frozen=True, slots=True)
class StepSettings:
    """One step of a chain (SPEC §9): a mode's steps, or a ``[[steps]]`` table of a pipeline
    file. ``None`` for a call parameter means the run's own (``--model``, ``--max-tokens`` ...)."""

    name: str
    kind: StepKind
    template: str
    input: str | None = None  # reduce: the map step it reduces; document: the step it reads
    model: str | None = None
    max_tokens: int | None = None
    temperature: float | None = None
    json_mode: bool | None = None
    first_template: str | None = None  # refine: the first chunk's prompt (default: --prompt)
    reduce_tokens: int | None = None  # reduce: tokens of answers per call (default: chunk budget)
    where: str | None = None  # "FILE:LINE" of a pipeline file's step, for errors
    schema_json: str | None = None  # the compact JSON Schema its answers must follow
