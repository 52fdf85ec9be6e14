"""The exception tree of dscall.

Third-party exceptions (aiohttp, pypdf, python-docx, pyarrow, diskcache) are converted where the
library is used, with ``raise ... from exc``, so nothing foreign escapes its module. The CLI
catches only ``DscallError`` and prints a one-line message; the exit code comes from the class.

    DscallError                     root; exit_code 1
    ├── UsageError                  bad option, missing key, unwritable output; exit 2
    ├── DocumentError               one document cannot be turned into text; the run goes on
    │   ├── UnsupportedFormat       extension or content dscall does not read
    │   ├── UnreadableFile          permission denied, vanished, symlink loop, not a file
    │   ├── EmptyDocument           zero bytes
    │   ├── EncryptedDocument       password-protected PDF or Word (OLE2) file
    │   ├── CorruptDocument         truncated, malformed, wrong content for the extension
    │   ├── ExtractionTimeout       took longer than --extract-timeout
    │   ├── ExtractionCrashed       the worker process died (memory limit, segfault)
    │   └── FileChanged             changed or vanished while its chunks were being sent
    ├── CallError                   one attempt at one chunk failed
    │   ├── RetryableCallError      worth another attempt (transient)
    │   │   ├── HTTPStatusError     408/409/429/5xx; carries status and Retry-After
    │   │   ├── TransportError      connection refused/reset, payload error, DNS
    │   │   │   └── OutOfDescriptors  no free file descriptor for a socket: dscall's limit
    │   │   ├── AttemptTimeout      the attempt passed its wall-clock deadline
    │   │   ├── EmptyResponse       200 with an empty or whitespace-only body
    │   │   ├── MalformedResponse   200 whose body is not the JSON we expect
    │   │   └── InsufficientResources finish_reason == insufficient_system_resource
    │   └── PermanentCallError      400/403/404/422: this chunk fails, others go on
    └── RunStopped                  the whole run must stop now; exit 3
        ├── AuthenticationFailed    401: every later request would fail too
        ├── InsufficientBalance     402
        ├── UnsupportedParameter    400 naming a request field the endpoint rejects
        ├── EndpointDown            circuit open for longer than --max-outage
        ├── BudgetExhausted         the next dispatch would pass --budget-usd
        ├── Interrupted             SIGINT / SIGTERM
        └── OutputFailed            the output itself cannot be written (disk full, EIO)

Messages never contain the API key: ``redact`` is applied wherever text from outside (a server
body, an exception string) is put into a message.
"""

from __future__ import annotations

import re

EXIT_OK = 0
EXIT_SOME_FAILED = 1
EXIT_USAGE = 2
EXIT_STOPPED = 3

_KEY_PATTERN = re.compile(r"(sk-[A-Za-z0-9_\-]{6,}|Bearer\s+\S+)")
_registered_secrets: list[str] = []


def register_secret(secret: str) -> None:
    """Remember a secret (the API key) so that ``redact`` removes it from any text."""
    if secret and secret not in _registered_secrets:
        _registered_secrets.append(secret)


def redact(text: str) -> str:
    """Remove registered secrets and anything shaped like a key from ``text``."""
    for secret in _registered_secrets:
        if secret in text:
            text = text.replace(secret, "[redacted]")
    return _KEY_PATTERN.sub("[redacted]", text)


def one_line(text: str, limit: int = 300) -> str:
    """Collapse whitespace so a message fits on one line, and cap its length."""
    flat = " ".join(redact(text).split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


class DscallError(Exception):
    """Root of every error dscall raises on purpose."""

    exit_code: int = EXIT_SOME_FAILED

    def __init__(self, message: str, limit: int = 300) -> None:
        # ``limit``: a message that lists choices (a file's columns) may need more room.
        super().__init__(one_line(message, limit))

    @property
    def message(self) -> str:
        return str(self)

    @property
    def error_type(self) -> str:
        """The value written to the ``error_type`` column: the class name."""
        return type(self).__name__


class UsageError(DscallError):
    exit_code = EXIT_USAGE


class DocumentError(DscallError):
    pass


class UnsupportedFormat(DocumentError):
    pass


class UnreadableFile(DocumentError):
    pass


class EmptyDocument(DocumentError):
    pass


class EncryptedDocument(DocumentError):
    pass


class CorruptDocument(DocumentError):
    pass


class ExtractionTimeout(DocumentError):
    pass


class ExtractionCrashed(DocumentError):
    pass


class FileChanged(DocumentError):
    pass


class CallError(DscallError):
    pass


class RetryableCallError(CallError):
    pass


class HTTPStatusError(RetryableCallError):
    """A status worth retrying. ``retry_after`` is the server's hint in seconds, if any."""

    def __init__(self, status: int, message: str, retry_after: float | None = None) -> None:
        super().__init__(f"HTTP {status}: {message}")
        self.status = status
        self.retry_after = retry_after


class TransportError(RetryableCallError):
    pass


class OutOfDescriptors(TransportError):
    """This machine, not the endpoint, ran out of file descriptors (EMFILE/ENFILE)."""


class AttemptTimeout(RetryableCallError):
    pass


class EmptyResponse(RetryableCallError):
    pass


class MalformedResponse(RetryableCallError):
    pass


class InsufficientResources(RetryableCallError):
    pass


class PermanentCallError(CallError):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"HTTP {status}: {message}")
        self.status = status


class RunStopped(DscallError):
    exit_code = EXIT_STOPPED


class AuthenticationFailed(RunStopped):
    status = 401


class InsufficientBalance(RunStopped):
    status = 402


class UnsupportedParameter(RunStopped):
    """A 400 that names a request field the endpoint does not accept (``thinking`` sent to a
    generic OpenAI-compatible endpoint): every request carries it, so every one would fail."""

    status = 400

    def __init__(self, message: str, parameter: str) -> None:
        super().__init__(message)
        self.parameter = parameter


class EndpointDown(RunStopped):
    pass


class NoEndpointLeft(RunStopped):
    """Every endpoint of a run with several was disabled (401, 402, a refused parameter)."""


class Rerouted(Exception):
    """Internal to the caller: the attempt's endpoint was disabled before the request was
    answered; it goes to another endpoint and the try does not count as an attempt."""


class BudgetExhausted(RunStopped):
    pass


class Interrupted(RunStopped):
    pass


class OutputFailed(RunStopped):
    """Writing the output failed; answers already received stay in the cache."""
