"""Chunk -> chat-completions request: prompt template, canonical body, request hash.

The layout serves DeepSeek's prefix cache: the system prompt and the instruction come first
and are byte-identical across chunks; the chunk text comes last.

``request_hash`` = sha256(namespace, canonical JSON of every parameter that changes the answer).
``stream`` and ``stream_options`` are left out of the hash: a streamed answer is the same answer,
so ``--stream`` runs share the cache with plain ones.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from typing import Any

from dscall.config import PromptSettings
from dscall.errors import UsageError
from dscall.jsonio import dumps_canonical
from dscall.tokens import estimate_tokens
from dscall.types import CallRequest, Chunk

PLACEHOLDERS = ("text", "path", "page_start", "page_end", "chunk_index", "chunk_count")
_PLACEHOLDER = re.compile(r"\{(" + "|".join(PLACEHOLDERS) + r")\}")
# Per-message framing the estimate adds to the content (role markers and separators).
_MESSAGE_OVERHEAD_TOKENS = 4
_LOCATION_ALLOWANCE_TOKENS = 32


@dataclass(frozen=True, slots=True)
class PromptTemplate:
    """A template split once into literal text and placeholder names.

    Only the six documented placeholders are replaced; any other brace (a JSON example in the
    instruction, say) is left exactly as written, unlike ``str.format``.
    """

    parts: tuple[str, ...]  # even positions: literal text; odd positions: placeholder names

    @classmethod
    def parse(cls, template: str) -> PromptTemplate:
        if "{text}" not in template:
            # A bare instruction ("Summarise this") is the common case: the text goes after it.
            template = template.rstrip() + "\n\n{text}"
        return cls(tuple(_PLACEHOLDER.split(template)))

    def render(self, values: dict[str, str]) -> str:
        parts = self.parts
        out = [parts[0]]
        for i in range(1, len(parts), 2):
            out.append(values[parts[i]])
            out.append(parts[i + 1])
        return "".join(out)

    @property
    def uses_location(self) -> bool:
        """Whether the prompt depends on where the chunk sits (not only on its text)."""
        return any(name != "text" for name in self.parts[1::2])


class RequestBuilder:
    """Builds ``CallRequest`` objects for one run's prompt settings and namespace."""

    def __init__(self, prompt: PromptSettings, namespace: str) -> None:
        if prompt.max_tokens is not None and prompt.max_tokens < 1:
            raise UsageError("--max-tokens must be at least 1")
        if prompt.temperature is not None and not 0.0 <= prompt.temperature <= 2.0:
            raise UsageError("--temperature must be between 0 and 2")
        self.prompt = prompt
        self.template = PromptTemplate.parse(prompt.template)
        self._hash_prefix = hashlib.sha256(namespace.encode() + b"\x00")
        self._params: dict[str, Any] = {"model": prompt.model}
        if prompt.max_tokens is not None:
            self._params["max_tokens"] = prompt.max_tokens
        if prompt.temperature is not None:
            self._params["temperature"] = prompt.temperature
        if prompt.json_mode:
            self._params["response_format"] = {"type": "json_object"}
        # DeepSeek's V4 models think by default and bill the reasoning as output tokens.
        self._params["thinking"] = {"type": "enabled" if prompt.thinking else "disabled"}
        self._system_message = {"role": "system", "content": prompt.system}
        # Everything but the chunk text, estimated once: system prompt, the template's literal
        # text, message framing, and a few tokens for location values such as the path.
        self._fixed_tokens = (
            estimate_tokens(prompt.system)
            + estimate_tokens("".join(self.template.parts[0::2]))
            + 2 * _MESSAGE_OVERHEAD_TOKENS
            + (_LOCATION_ALLOWANCE_TOKENS if self.template.uses_location else 0)
        )

    def render_user_message(self, chunk: Chunk, doc_path: str) -> str:
        if not self.template.uses_location:
            return self.template.render({"text": chunk.text})
        return self.template.render(
            {
                "text": chunk.text,
                "path": doc_path,
                "page_start": "" if chunk.page_start is None else str(chunk.page_start),
                "page_end": "" if chunk.page_end is None else str(chunk.page_end),
                "chunk_index": str(chunk.index),
                "chunk_count": str(chunk.count),
            }
        )

    def build(self, chunk: Chunk, doc_path: str) -> CallRequest:
        user = self.render_user_message(chunk, doc_path)
        params = dict(self._params)
        params["messages"] = [self._system_message, {"role": "user", "content": user}]
        hashed = dumps_canonical(params)
        digest = self._hash_prefix.copy()
        digest.update(hashed)
        if self.prompt.stream:
            params["stream"] = True
            params["stream_options"] = {"include_usage": True}
            body = dumps_canonical(params)
        else:
            body = hashed
        return CallRequest(
            body=body,
            request_hash=digest.hexdigest(),
            model=self.prompt.model,
            estimated_prompt_tokens=self._fixed_tokens + chunk.tokens,
            max_tokens=self.prompt.max_tokens,
            stream=self.prompt.stream,
        )
