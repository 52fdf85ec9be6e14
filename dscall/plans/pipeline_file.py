"""``--pipeline pipeline.toml``: the ``[[steps]]`` tables of a file, read into ``StepSettings``.

This module checks the file's shape (TOML syntax, known keys, their types and ranges, which
keys a kind takes); ``compile_steps`` then checks what the steps mean together (references to
missing or later steps, duplicate names, a reduce over a document-level step, placeholders).
Every error is one line starting ``FILE:LINE:``. tomllib keeps no positions, so the lines come
from a small scan of the text: the n-th ``[[steps]]`` header is the n-th step, and a key's line
is the first line of that step's block that assigns it. Each step's ``where`` is its header's
``FILE:LINE``, so that ``compile_steps``' errors point there too.
"""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dscall.config import StepKind, StepSettings
from dscall.errors import UsageError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

KINDS: dict[str, StepKind] = {
    "map": "map",
    "reduce": "reduce",
    "refine": "refine",
    "document": "document",
}
KEYS = (
    "name",
    "kind",
    "prompt",
    "prompt_file",
    "model",
    "max_tokens",
    "temperature",
    "json",
    "input",
    "first_prompt",
    "reduce_tokens",
    "schema",
    "schema_inline",
)
# Keys that only some kinds take; a key another kind would ignore is an error, not a no-op.
_ONLY: dict[str, tuple[str, ...]] = {
    "input": ("reduce", "document"),
    "first_prompt": ("refine",),
    "reduce_tokens": ("reduce",),
}
_HEADER = re.compile(r"\s*\[\[\s*(?:steps|\"steps\"|'steps')\s*\]\]")
_TABLE_NAME = re.compile(r"\s*\[+\s*[\"']?([A-Za-z0-9_-]+)")
_KEY_NAME = re.compile(r"\s*[\"']?([A-Za-z0-9_-]+)[\"']?\s*[.=]")
_TOML_LINE = re.compile(r"at line (\d+)")


def load_pipeline(path: Path) -> tuple[StepSettings, ...]:
    """The steps of the pipeline file at ``path``, in order; a ``UsageError`` naming the file
    and line for anything wrong with it."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"cannot read --pipeline {path}: {exc}") from exc
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        found = _TOML_LINE.search(str(exc))  # else "at end of document"
        line = found.group(1) if found else str(max(1, len(text.splitlines())))
        raise UsageError(f"{path}:{line}: not valid TOML: {exc}") from exc
    lines = _code_lines(text)
    for key in data:
        if key != "steps":
            raise UsageError(
                f"{path}:{_top_line(lines, key)}: unknown top-level key {key!r} "
                "(a pipeline is [[steps]] tables)"
            )
    tables = data.get("steps")
    if not tables:
        raise UsageError(f"{path}:1: no steps (add [[steps]] tables with a name and a kind)")
    if not isinstance(tables, list) or not all(isinstance(t, dict) for t in tables):
        raise UsageError(f"{path}:{_top_line(lines, 'steps')}: steps must be [[steps]] tables")
    headers = [number for number, line in lines if _HEADER.match(line)]
    if len(headers) != len(tables):  # written as an inline array: point at `steps =`
        headers = [_top_line(lines, "steps")] * len(tables)
    blocks = [
        _Block(path, number, index, lines, headers[index + 1] if index + 1 < len(headers) else 0)
        for index, number in enumerate(headers)
    ]
    steps = tuple(block.step(table) for block, table in zip(blocks, tables, strict=True))
    if not any(step.kind in ("map", "refine") for step in steps):
        raise UsageError(
            f"{blocks[0].where}: no chunk-level step: a pipeline needs a map or a refine step "
            "(the later steps read its answers)"
        )
    return steps


@dataclass(frozen=True, slots=True)
class _Block:
    """One ``[[steps]]`` table's place in the file, for its errors."""

    path: Path
    line: int  # its header
    index: int
    lines: list[tuple[int, str]]
    end: int  # the next step's header; 0: the end of the file

    @property
    def where(self) -> str:
        return f"{self.path}:{self.line}"

    def key_line(self, key: str) -> int:
        assigns = re.compile(rf"\s*(?:\[\s*steps\s*\.\s*)?[\"']?{re.escape(key)}[\"']?\s*[.=\]]")
        for number, line in self.lines:
            if number > self.line and (not self.end or number < self.end) and assigns.match(line):
                return number
        return self.line

    def fail(self, key: str | None, message: str) -> UsageError:
        line = self.line if key is None else self.key_line(key)
        return UsageError(f"{self.path}:{line}: {message}")

    def step(self, table: dict[str, Any]) -> StepSettings:
        name = table.get("name")
        label = f"step {name!r}" if isinstance(name, str) else f"step {self.index + 1}"
        for key in table:
            if key not in KEYS:
                raise self.fail(key, f"unknown key {key!r} in {label} (known: {', '.join(KEYS)})")
        if name is None:
            raise self.fail(None, f'{label} has no name (name = "...")')
        if not isinstance(name, str):
            raise self.fail("name", f"name of {label} must be a string")
        kind = table.get("kind")
        if kind is None:
            raise self.fail(None, f"{label} has no kind ({', '.join(KINDS)})")
        if not isinstance(kind, str) or kind not in KINDS:
            raise self.fail("kind", f"unknown kind {kind!r} in {label} (known: {', '.join(KINDS)})")
        for key, kinds in _ONLY.items():
            if key in table and kind not in kinds:
                raise self.fail(
                    key, f"{key} is for {' and '.join(kinds)} steps; {label} is a {kind} step"
                )
        get = _Getter(self, table, label)
        max_tokens = get.integer("max_tokens", 1)
        temperature = get.number("temperature", 0.0, 2.0)
        return StepSettings(
            name,
            KINDS[kind],
            self._template(get, kind, label),
            input=get.string("input"),
            model=get.string("model"),
            max_tokens=max_tokens,
            temperature=temperature,
            json_mode=get.boolean("json"),
            first_template=get.string("first_prompt"),
            reduce_tokens=get.integer("reduce_tokens", 16),
            where=self.where,
            schema_json=self._schema(get, label),
        )

    def _schema(self, get: _Getter, label: str) -> str | None:
        """The compact schema of ``schema`` (a JSON Schema file, relative to the pipeline) or
        ``schema_inline`` (the short syntax of --schema-inline), checked."""
        from dscall.schema.inline import inline_schema
        from dscall.schema.spec import load_schema

        file, inline = get.string("schema"), get.string("schema_inline")
        if file is not None and inline is not None:
            raise self.fail("schema_inline", f"{label}: give schema or schema_inline, not both")
        key = "schema" if file is not None else "schema_inline"
        try:
            if file is not None:
                return load_schema(self.path.parent / file).compact
            if inline is not None:
                return inline_schema(inline).compact
        except UsageError as exc:
            raise self.fail(key, f"{label}: {exc.message}") from exc
        return None

    def _template(self, get: _Getter, kind: str, label: str) -> str:
        prompt, prompt_file = get.string("prompt"), get.string("prompt_file")
        if prompt is not None and prompt_file is not None:
            raise self.fail("prompt_file", f"{label}: give prompt or prompt_file, not both")
        if prompt_file is not None:
            file = self.path.parent / prompt_file
            try:
                prompt = file.read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError) as exc:
                raise self.fail(
                    "prompt_file", f"cannot read prompt_file of {label} ({file}): {exc}"
                ) from exc
        if prompt is None:
            if kind == "map":
                return ""  # the run's --prompt
            raise self.fail(None, f"{label} ({kind}) needs prompt or prompt_file")
        if not prompt.strip():
            raise self.fail("prompt_file" if prompt_file else "prompt", f"{label}: empty prompt")
        return prompt


@dataclass(frozen=True, slots=True)
class _Getter:
    """A step table's optional values, type-checked (``None`` when absent)."""

    block: _Block
    table: dict[str, Any]
    label: str

    def _wrong(self, key: str, wanted: str) -> UsageError:
        value = self.table[key]
        return self.block.fail(
            key, f"{key} of {self.label} must be {wanted}, not {type(value).__name__} {value!r}"
        )

    def string(self, key: str) -> str | None:
        value = self.table.get(key)
        if value is not None and not isinstance(value, str):
            raise self._wrong(key, "a string")
        return value

    def boolean(self, key: str) -> bool | None:
        value = self.table.get(key)
        if value is not None and not isinstance(value, bool):
            raise self._wrong(key, "true or false")
        return value

    def integer(self, key: str, least: int) -> int | None:
        value = self.table.get(key)
        if value is None:
            return None
        # bool is an int to Python; `max_tokens = true` is a mistake all the same.
        if isinstance(value, bool) or not isinstance(value, int):
            raise self._wrong(key, f"a whole number >= {least}")
        if value < least:
            raise self.block.fail(key, f"{key} of {self.label} must be at least {least}")
        return value

    def number(self, key: str, low: float, high: float) -> float | None:
        value = self.table.get(key)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise self._wrong(key, f"a number from {low:g} to {high:g}")
        if not low <= value <= high:
            raise self.block.fail(key, f"{key} of {self.label} must be from {low:g} to {high:g}")
        return float(value)


def _code_lines(text: str) -> list[tuple[int, str]]:
    """The numbered lines of ``text`` that begin outside a multi-line string: a prompt's own
    lines (``name = ...`` inside a triple-quoted prompt, say) are no keys."""
    out: list[tuple[int, str]] = []
    inside: str | None = None  # the multi-line string's delimiter
    for number, line in enumerate(text.splitlines(), start=1):
        if inside is None:
            out.append((number, line))
        inside = _string_state(line, inside)
    return out


def _string_state(line: str, inside: str | None) -> str | None:
    """The multi-line string open at the end of ``line``, given the one open at its start."""
    i = 0
    quote: str | None = None  # a one-line string's delimiter
    while i < len(line):
        char = line[i]
        if inside is not None:
            if char == "\\" and inside == '"""':
                i += 2
                continue
            if line.startswith(inside, i):
                inside, i = None, i + 3
                continue
        elif quote is not None:
            if char == "\\" and quote == '"':
                i += 2
                continue
            if char == quote:
                quote = None
        elif line.startswith(('"""', "'''"), i):
            inside, i = line[i : i + 3], i + 3
            continue
        elif char in "\"'":
            quote = char
        elif char == "#":
            break
        i += 1
    return inside


def _top_line(lines: list[tuple[int, str]], key: str) -> int:
    """The line of a top-level key: ``key = ...`` before the first table, or a table header
    (``[key]``, ``[[key]]``, ``[key.sub]``)."""
    in_table = False
    for number, line in lines:
        header = _TABLE_NAME.match(line)
        if header is not None:
            if header.group(1) == key:
                return number
            in_table = True
        elif not in_table:
            assign = _KEY_NAME.match(line)
            if assign is not None and assign.group(1) == key:
                return number
    return 1
