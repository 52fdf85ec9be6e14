"""The aiohttp backend: one ``ClientSession`` per run, one attempt per ``send``.

This is the only module that imports aiohttp. Every aiohttp and JSON exception becomes a dscall
``CallError`` or ``RunStopped`` here (most specific first), so retry policy and the engine see
only dscall types. Protocol quirks handled here:

- DeepSeek writes blank lines (non-streaming) or ``: keep-alive`` comments (streaming) while a
  request waits in its queue, so a body may start with whitespace before the JSON.
- A 200 whose body is empty or not the expected JSON is a retryable failure, not a result.
- Each attempt has a wall-clock deadline (``attempt_timeout_s``), not only a read timeout; in
  streaming mode an idle watchdog (``stream_idle_timeout_s``) also ends an attempt that receives
  nothing at all, keep-alives included, for that long.
- No file descriptor for a socket (EMFILE/ENFILE) is a retryable ``OutOfDescriptors`` that says
  so: dscall's own limit (``dscall.fdlimit`` sizes the pool to fit it), not the endpoint's.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any
from urllib.parse import urlsplit

import aiohttp

from dscall import __version__
from dscall.calls.backend import EndpointInfo as EndpointInfo  # re-exported: run.py imports it
from dscall.calls.backend import status_error
from dscall.calls.providers import DEEPSEEK, Provider, is_loopback, resolve
from dscall.calls.retry import classify_status, retry_after_from_headers
from dscall.config import CallSettings
from dscall.errors import (
    AttemptTimeout,
    EmptyResponse,
    InsufficientResources,
    MalformedResponse,
    OutOfDescriptors,
    TransportError,
    UsageError,
    one_line,
    redact,
    register_secret,
)
from dscall.fdlimit import out_of_fds, too_many_open_files
from dscall.jsonio import loads
from dscall.types import CallRequest, CallResponse, Usage

_INSUFFICIENT = "insufficient_system_resource"


def check_endpoint(base_url: str, allow_insecure_http: bool) -> str:
    """Validate the base URL; return it without a trailing slash.

    The key is never sent over plain http to anything but loopback unless the user insists.
    """
    parts = urlsplit(base_url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise UsageError(f"--base-url must be an http(s) URL, got {base_url!r}")
    if parts.scheme == "http" and not allow_insecure_http and not is_loopback(parts.hostname):
        raise UsageError(
            f"refusing to send the API key over plain http to {parts.hostname}; "
            "use https, or pass --allow-insecure-http if this network is trusted"
        )
    return base_url.rstrip("/")


def _error_message(body: bytes) -> str:
    """The server's error message (OpenAI-style ``{"error": {"message": ...}}``), one line."""
    text = body.strip()
    if not text:
        return "(empty body)"
    try:
        parsed = loads(text)
        message = parsed["error"]["message"] if isinstance(parsed, dict) else parsed
    except (ValueError, KeyError, TypeError):
        message = text[:200].decode("utf-8", "replace")
    return one_line(str(message), 200)


def raise_for_status(status: int, body: bytes, headers: Any) -> None:
    """Raise the dscall error that says what to do about a non-200 answer (``status_error``)."""
    retry_after = None
    if classify_status(status) == "retry":
        retry_after = retry_after_from_headers(headers, time.time())
    raise status_error(status, _error_message(body), retry_after)


def parse_completion(payload: Any, provider: Provider = DEEPSEEK) -> CallResponse:
    """A non-streaming chat-completions JSON object -> ``CallResponse``; ``provider`` says
    where the usage keeps its cache-hit tokens."""
    try:
        choice = payload["choices"][0]
        message = choice["message"]
        content = message.get("content")
        finish_reason = choice.get("finish_reason") or "stop"
        usage_raw = payload.get("usage") or {}
        usage = provider.read_usage(usage_raw)
        model = payload.get("model") or ""
        reasoning = message.get("reasoning_content")
    except (KeyError, IndexError, TypeError, AttributeError) as exc:
        raise MalformedResponse(f"unexpected response shape ({type(exc).__name__}: {exc})") from exc
    if finish_reason == _INSUFFICIENT:
        raise InsufficientResources("the endpoint answered insufficient_system_resource")
    if not isinstance(content, str):
        raise MalformedResponse("response has no message content")
    return CallResponse(
        output=content,
        finish_reason=finish_reason,
        response_model=model,
        usage=usage,
        reasoning=reasoning if isinstance(reasoning, str) else None,
    )


class _StreamAccumulator:
    """Collects the pieces of an SSE chat-completions stream."""

    def __init__(self, provider: Provider = DEEPSEEK) -> None:
        self.provider = provider
        self.content: list[str] = []
        self.reasoning: list[str] = []
        self.finish_reason: str | None = None
        self.model = ""
        self.usage = Usage()
        self.done = False

    def feed(self, line: bytes) -> None:
        line = line.strip()
        if not line or line.startswith(b":"):  # blank separator or `: keep-alive` comment
            return
        if not line.startswith(b"data:"):
            return  # `event:` / `id:` fields carry nothing we use
        data = line[5:].strip()
        if data == b"[DONE]":
            self.done = True
            return
        try:
            event = loads(data)
        except ValueError as exc:
            raise MalformedResponse(f"unparseable stream event: {exc}") from exc
        if not isinstance(event, dict):
            raise MalformedResponse("stream event is not a JSON object")
        if event.get("error"):
            raise MalformedResponse(f"error inside the stream: {_error_message(data)}")
        self.model = event.get("model") or self.model
        if event.get("usage"):
            self.usage = self.provider.read_usage(event["usage"])
        for choice in event.get("choices") or ():
            delta = choice.get("delta") or {}
            if delta.get("content"):
                self.content.append(delta["content"])
            if delta.get("reasoning_content"):
                self.reasoning.append(delta["reasoning_content"])
            if choice.get("finish_reason"):
                self.finish_reason = choice["finish_reason"]

    def result(self) -> CallResponse:
        if not self.done and self.finish_reason is None:
            raise TransportError("the stream ended before the answer was complete")
        if self.finish_reason == _INSUFFICIENT:
            raise InsufficientResources("the endpoint answered insufficient_system_resource")
        if self.finish_reason is None:
            raise MalformedResponse("the stream finished without a finish_reason")
        return CallResponse(
            output="".join(self.content),
            finish_reason=self.finish_reason,
            response_model=self.model,
            usage=self.usage,
            reasoning="".join(self.reasoning) if self.reasoning else None,
        )


def _no_descriptor() -> str:
    """No socket could be opened: this machine's limit, retried like a refused connection (the
    sockets of requests finishing meanwhile free descriptors), not the endpoint's failure."""
    return f"cannot connect: {too_many_open_files()} in dscall: a local limit, not the endpoint's"


class HttpBackend:
    """Sends chat-completions requests to one OpenAI-compatible endpoint.

    Use as an async context manager; ``send`` makes exactly one attempt.
    """

    def __init__(
        self,
        api_key: str,
        settings: CallSettings,
        pool_size: int,
        provider: Provider | None = None,
    ) -> None:
        self.base_url = check_endpoint(settings.base_url, settings.allow_insecure_http)
        self.host = urlsplit(self.base_url).hostname or ""
        # Default: --provider, or detected from the base URL (the simulator of --mock is on
        # loopback, which detects as deepseek).
        self.provider = provider or resolve(settings, mock=False)
        self._settings = settings
        self._pool_size = pool_size
        register_secret(api_key)
        self._headers = {
            "Authorization": f"Bearer {api_key}",
            "Content-Type": "application/json",
            "Accept": "application/json",
            "User-Agent": f"dscall/{__version__}",
        }
        self._url = self.base_url + "/chat/completions"
        self._session: aiohttp.ClientSession | None = None
        self._timeout = aiohttp.ClientTimeout(
            total=settings.attempt_timeout_s, sock_connect=settings.connect_timeout_s
        )
        self._stream_timeout = aiohttp.ClientTimeout(
            total=settings.attempt_timeout_s,
            sock_connect=settings.connect_timeout_s,
            sock_read=settings.stream_idle_timeout_s,
        )

    async def __aenter__(self) -> HttpBackend:
        connector = aiohttp.TCPConnector(
            limit=self._pool_size, limit_per_host=self._pool_size, ttl_dns_cache=300
        )
        self._session = aiohttp.ClientSession(
            connector=connector, headers=self._headers, skip_auto_headers=("Accept-Encoding",)
        )
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    @property
    def session(self) -> aiohttp.ClientSession:
        if self._session is None:
            raise RuntimeError("HttpBackend used outside its context manager")
        return self._session

    async def send(self, request: CallRequest) -> CallResponse:
        """One attempt. Raises a ``CallError`` subclass or ``RunStopped``."""
        try:
            if request.stream:
                return await self._send_streaming(request)
            return await self._send_plain(request)
        except (asyncio.TimeoutError, aiohttp.ServerTimeoutError) as exc:
            raise AttemptTimeout(
                f"no complete answer within the attempt deadline ({type(exc).__name__})"
            ) from exc
        except aiohttp.ClientPayloadError as exc:
            raise TransportError(f"broken response body: {redact(str(exc))}") from exc
        except aiohttp.ClientError as exc:
            if out_of_fds(exc):  # ClientConnectorError carries the socket's EMFILE as errno
                raise OutOfDescriptors(_no_descriptor()) from exc
            raise TransportError(f"{type(exc).__name__}: {redact(str(exc))}") from exc
        except ConnectionError as exc:
            raise TransportError(f"{type(exc).__name__}: {exc}") from exc
        except OSError as exc:  # EMFILE from outside aiohttp's wrapping (a resolver thread)
            if out_of_fds(exc):
                raise OutOfDescriptors(_no_descriptor()) from exc
            raise

    async def _send_plain(self, request: CallRequest) -> CallResponse:
        async with self.session.post(self._url, data=request.body, timeout=self._timeout) as resp:
            body = await resp.read()
            if resp.status != 200:
                raise_for_status(resp.status, body, resp.headers)
        # DeepSeek pads the body with blank lines while the request is queued.
        text = body.strip()
        if not text:
            raise EmptyResponse("HTTP 200 with an empty body")
        try:
            payload = loads(text)
        except ValueError as exc:
            raise MalformedResponse(f"HTTP 200 with a body that is not JSON: {exc}") from exc
        return parse_completion(payload, self.provider)

    async def _send_streaming(self, request: CallRequest) -> CallResponse:
        async with self.session.post(
            self._url, data=request.body, timeout=self._stream_timeout
        ) as resp:
            if resp.status != 200:
                raise_for_status(resp.status, await resp.read(), resp.headers)
            accumulator = _StreamAccumulator(self.provider)
            async for line in resp.content:
                accumulator.feed(line)
                if accumulator.done:
                    break
        return accumulator.result()

    async def endpoint_info(self) -> EndpointInfo:
        """GET /models and, for a provider that has one (deepseek), GET /user/balance, for the
        pre-flight checks.

        A 404 (endpoint does not offer it) is not an error; 401 is ``AuthenticationFailed``;
        anything unreachable is a ``TransportError``.
        """
        models = await self._get_json("/models")
        balance = await self._get_json("/user/balance") if self.provider.has_balance else None
        model_ids: tuple[str, ...] | None = None
        if isinstance(models, dict) and isinstance(models.get("data"), list):
            model_ids = tuple(str(m.get("id")) for m in models["data"] if isinstance(m, dict))
        balance_usd: float | None = None
        available: bool | None = None
        if isinstance(balance, dict):
            available = bool(balance.get("is_available", True))
            for info in balance.get("balance_infos") or ():
                if isinstance(info, dict) and info.get("currency") == "USD":
                    try:
                        balance_usd = float(info.get("total_balance", 0))
                    except (TypeError, ValueError):
                        balance_usd = None
        return EndpointInfo(model_ids, balance_usd, available)

    async def _get_json(self, path: str) -> Any:
        timeout = aiohttp.ClientTimeout(total=self._settings.connect_timeout_s)
        try:
            async with self.session.get(self.base_url + path, timeout=timeout) as resp:
                body = await resp.read()
                if resp.status in (404, 405, 501):
                    return None
                if resp.status != 200:
                    raise_for_status(resp.status, body, resp.headers)
                try:
                    return loads(body.strip() or b"null")
                except ValueError:
                    return None
        except (asyncio.TimeoutError, aiohttp.ClientError, ConnectionError) as exc:
            raise TransportError(
                f"cannot reach {self.host}: {type(exc).__name__}: {redact(str(exc))}"
            ) from exc
