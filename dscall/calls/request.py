"""Prompt template + values -> chat-completions request: canonical body, request hash.

The layout serves DeepSeek's prefix cache: the system prompt and the instruction come first
and are byte-identical across chunks; the chunk text comes last.

``request_hash`` = sha256(namespace, answer source, canonical JSON of every parameter that changes
the answer). The answer source is who answers (SPEC §5): the endpoint's normalised base URL, or
the simulator's fixed identity for ``--mock``, so that a simulator's answers never serve a run
against a real endpoint and one endpoint's answers never serve another's.
``stream`` and ``stream_options`` are left out of the hash: a streamed answer is the same answer,
so ``--stream`` runs share the cache with plain ones.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from dscall.calls.providers import DEEPSEEK, Provider
from dscall.chunking.tokens import estimate_tokens
from dscall.config import MOCK_ANSWER_SOURCE, CallSettings, PromptSettings
from dscall.errors import UsageError
from dscall.jsonio import dumps_canonical
from dscall.schema.prompt import reask_message, with_schema
from dscall.types import CallRequest, Chunk

PLACEHOLDERS = ("text", "path", "page_start", "page_end", "chunk_index", "chunk_count")
# The placeholders of a reduce step's template, and of a refine step's (besides PLACEHOLDERS).
REDUCE_PLACEHOLDERS = ("outputs", "path", "chunk_count")
REFINE_PLACEHOLDERS = ("previous", *PLACEHOLDERS)
# Anything shaped like a placeholder: a name in single braces (``{txt}``, ``{steps.summary}``),
# or the same in double braces, which is how a literal ``{name}`` is written. Other braces
# (``{"a": 1}``, ``{ }``) are text.
_NAMED = re.compile(r"\{\{([A-Za-z_][A-Za-z0-9_.]*)\}\}|\{([A-Za-z_][A-Za-z0-9_.]*)\}")
# Per-message framing the estimate adds to the content (role markers and separators).
_MESSAGE_OVERHEAD_TOKENS = 4
_LOCATION_ALLOWANCE_TOKENS = 32


@dataclass(frozen=True, slots=True)
class PromptTemplate:
    """A template split once into literal text and placeholder names.

    The documented placeholders (``known``: a map step's six by default) are replaced. Any
    other name in braces (``{txt}``) is a ``UsageError`` before anything is sent: a typo would
    otherwise be paid for, chunk after chunk. ``{{name}}`` is a literal ``{name}``; any other
    brace (a JSON example in the instruction, say) is left exactly as written, unlike
    ``str.format``. A template without ``body`` (the text the call is about: ``{text}``, or a
    reduce's ``{outputs}``) gets it appended after a blank line.
    """

    parts: tuple[str, ...]  # even positions: literal text; odd positions: placeholder names

    @classmethod
    def parse(
        cls,
        template: str,
        option: str = "--prompt",
        known: tuple[str, ...] = PLACEHOLDERS,
        body: str | None = "text",
    ) -> PromptTemplate:
        parts: list[str] = []
        literal: list[str] = []
        position = 0
        for match in _NAMED.finditer(template):
            literal.append(template[position : match.start()])
            position = match.end()
            escaped, name = match.group(1), match.group(2)
            if escaped is not None:
                literal.append("{" + escaped + "}")
                continue
            if name not in known:
                listed = " ".join("{" + each + "}" for each in known)
                raise UsageError(
                    f"unknown placeholder {{{name}}} in {option}; known: {listed} "
                    f"(write {{{{{name}}}}} for the literal text {{{name}}})"
                )
            parts += ["".join(literal), name]
            literal = []
        literal.append(template[position:])
        parts.append("".join(literal))
        if body is not None and body not in parts[1::2]:
            # A bare instruction ("Summarise this") is the common case: the text goes after it.
            parts[-1] = parts[-1].rstrip() + "\n\n"
            parts += [body, ""]
        return cls(tuple(parts))

    @property
    def names(self) -> frozenset[str]:
        return frozenset(self.parts[1::2])

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


_DEFAULT_PORTS = {"http": 80, "https": 443}


def normalise_base_url(base_url: str) -> str:
    """``base_url`` as an identity: scheme and host lower-cased, default port and trailing
    slashes dropped (``HTTPS://API.DeepSeek.com:443/`` is ``https://api.deepseek.com``)."""
    parts = urlsplit(base_url.strip())
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").lower()
    if ":" in host:  # IPv6 literal
        host = f"[{host}]"
    port = parts.port
    netloc = host if port is None or port == _DEFAULT_PORTS.get(scheme) else f"{host}:{port}"
    return f"{scheme}://{netloc}{parts.path.rstrip('/')}"


# Who answers: one answer source, or several (a run whose endpoints are in several cache
# groups), the first endpoint's first.
Sources = str | tuple[str, ...]


def answer_source(call: CallSettings, mock: bool) -> str:
    """Who answers this run's requests: part of every cache key."""
    if mock:
        return MOCK_ANSWER_SOURCE
    return normalise_base_url(call.base_url)


class RequestBuilder:
    """Builds ``CallRequest`` objects for one run's prompt settings, namespace and answer
    source (see ``answer_source``), for one provider profile (``thinking`` is DeepSeek's
    field: only a ``deepseek`` body carries it)."""

    def __init__(
        self,
        prompt: PromptSettings,
        namespace: str,
        source: Sources,
        template: PromptTemplate | None = None,
        *,
        provider: Provider = DEEPSEEK,
    ) -> None:
        if prompt.max_tokens is not None and prompt.max_tokens < 1:
            raise UsageError("--max-tokens must be at least 1")
        if prompt.temperature is not None and not 0.0 <= prompt.temperature <= 2.0:
            raise UsageError("--temperature must be between 0 and 2")
        self.prompt = prompt
        self.template = template or PromptTemplate.parse(prompt.template)
        sources = (source,) if isinstance(source, str) else source
        space = namespace.encode("utf-8", "surrogatepass")
        prefixes = [hashlib.sha256(space + b"\x00" + s.encode() + b"\x00") for s in sources]
        self._hash_prefix = prefixes[0]
        self._other_prefixes = tuple(prefixes[1:])
        self._params: dict[str, Any] = {"model": prompt.model}
        if prompt.max_tokens is not None:
            self._params["max_tokens"] = prompt.max_tokens
        if prompt.temperature is not None:
            self._params["temperature"] = prompt.temperature
        if prompt.json_mode or prompt.schema_json is not None:
            self._params["response_format"] = {"type": "json_object"}
        # DeepSeek's V4 models think by default and bill the reasoning as output tokens. Other
        # endpoints answer 400 to the field (OpenAI, LiteLLM), so they never get it; a deepseek
        # body is unchanged, so its cache entries still hit.
        if provider.sends_thinking:
            self._params["thinking"] = {"type": "enabled" if prompt.thinking else "disabled"}
        system = prompt.system
        if prompt.schema_json is not None:  # the same for every chunk: a shared prefix
            system = with_schema(system, prompt.schema_json)
        self._system_message = {"role": "system", "content": system}
        # Everything but the chunk text, estimated once: system prompt, the template's literal
        # text, message framing, and a few tokens for location values such as the path.
        self._fixed_tokens = (
            estimate_tokens(system)
            + estimate_tokens("".join(self.template.parts[0::2]))
            + 2 * _MESSAGE_OVERHEAD_TOKENS
            + (_LOCATION_ALLOWANCE_TOKENS if self.template.uses_location else 0)
        )

    def estimated_prompt_tokens(self, content_tokens: int) -> int:
        """The prompt estimate of a request whose values add ``content_tokens``."""
        return self._fixed_tokens + content_tokens

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
        return self.build_message(self.render_user_message(chunk, doc_path), chunk.tokens)

    def build_values(self, values: dict[str, str], content_tokens: int) -> CallRequest:
        """The request of a template filled with ``values`` (a reduce's answers, a refine's
        previous answer and chunk); ``content_tokens`` estimates what the values add."""
        return self.build_message(self.template.render(values), content_tokens)

    def build_reask(self, user: str, answer: str, errors: list[str]) -> CallRequest:
        """The request that sends ``answer`` (to ``user``) back with what is wrong with it."""
        reask = reask_message(errors)
        extra = [
            {"role": "assistant", "content": answer},
            {"role": "user", "content": reask},
        ]
        content = estimate_tokens(user) + estimate_tokens(answer) + estimate_tokens(reask)
        return self.build_message(user, content, extra)

    def build_message(
        self, user: str, content_tokens: int, follow_up: list[dict[str, str]] | None = None
    ) -> CallRequest:
        params = dict(self._params)
        params["messages"] = [self._system_message, {"role": "user", "content": user}]
        if follow_up:
            params["messages"] += follow_up
        hashed = dumps_canonical(params)
        digest = self._hash_prefix.copy()
        digest.update(hashed)
        if self.prompt.stream:
            params["stream"] = True
            params["stream_options"] = {"include_usage": True}
            body = dumps_canonical(params)
        else:
            body = hashed
        others: tuple[str, ...] = ()
        if self._other_prefixes:
            others = tuple(self._other(prefix, hashed) for prefix in self._other_prefixes)
        return CallRequest(
            body=body,
            request_hash=digest.hexdigest(),
            model=self.prompt.model,
            estimated_prompt_tokens=self._fixed_tokens + content_tokens,
            max_tokens=self.prompt.max_tokens,
            stream=self.prompt.stream,
            other_hashes=others,
        )

    @staticmethod
    def _other(prefix: Any, hashed: bytes) -> str:
        digest = prefix.copy()
        digest.update(hashed)
        return str(digest.hexdigest())
