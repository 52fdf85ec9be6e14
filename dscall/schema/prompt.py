"""How a schema travels in a request, the one contract dscall and the simulator share.

The schema goes in the system prompt, after the user's system prompt, as compact canonical
JSON (sorted keys, no spaces) on the line after ``SCHEMA_INTRO``: the system prompt then stays
byte-identical across chunks (DeepSeek's prefix cache) and the request hash covers the schema.
``SCHEMA_INTRO`` says "JSON", which DeepSeek's ``json_object`` mode requires in the prompt.

A re-ask (the answer did not follow the schema) is the same conversation with the answer as an
assistant message and ``REASK_INTRO`` plus the validation errors as a last user message.
"""

from __future__ import annotations

SCHEMA_INTRO = "Answer with one JSON object, and nothing else, that follows this JSON Schema:"
REASK_INTRO = "Your answer does not follow the JSON Schema:"
REASK_OUTRO = "Answer again with the corrected JSON object only."


def with_schema(system: str, compact_schema: str) -> str:
    """The system prompt that asks for ``compact_schema``."""
    return f"{system}\n\n{SCHEMA_INTRO}\n{compact_schema}"


def schema_of(system: str) -> str | None:
    """The compact schema a system prompt asks for, or None."""
    _, intro, rest = system.partition(SCHEMA_INTRO + "\n")
    if not intro:
        return None
    return rest.split("\n", 1)[0]


def reask_message(errors: list[str]) -> str:
    """The user message that sends an answer back with what is wrong with it."""
    listed = "\n".join(f"- {error}" for error in errors)
    return f"{REASK_INTRO}\n{listed}\n{REASK_OUTRO}"
