"""Named defaults and the settings dataclasses of a run.

Every default lives here and nowhere else. Settings are plain frozen dataclasses so that they
pickle into extraction worker processes and serialise into the Parquet metadata.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

from dscall.chain_settings import Mode as Mode  # re-exported: settings of a chain
from dscall.chain_settings import StepKind as StepKind
from dscall.chain_settings import StepSettings as StepSettings
from dscall.errors import register_secret
from dscall.executors.settings import DEFAULT_SHARD_RETRIES as DEFAULT_SHARD_RETRIES
from dscall.executors.settings import ExecutorSettings
from dscall.secret_urls import public_url, url_secrets

# --- documents -----------------------------------------------------------------------------
SUPPORTED_SUFFIXES: dict[str, str] = {".pdf": "pdf", ".docx": "docx", ".txt": "txt", ".md": "md"}
DEFAULT_EXTRACT_TIMEOUT_S = 120.0
# Address-space cap for one extraction worker; a pathological file fails instead of eating RAM.
DEFAULT_EXTRACT_MEMORY_MB = 2048
# Text files below this size are read and chunked on the event loop's thread: sending them to
# a worker process would cost more than the work itself.
INLINE_TEXT_MAX_BYTES = 256 * 1024
# Text files from this size on are never held whole: a worker decodes and chunks them in
# windows of STREAM_WINDOW_CHARS characters and hands back only the chunk boundaries; the
# chunk texts are read again from the file as they are consumed. Memory then follows the
# window, not the file.
STREAM_TEXT_MIN_BYTES = 4 * 1024 * 1024
STREAM_WINDOW_CHARS = 1024 * 1024
# Bytes read at a time from a streamed text file; each block's CRC is kept so that a file
# changed between two reads is noticed instead of yielding text that does not match doc_id.
STREAM_BLOCK_BYTES = 1024 * 1024
# A DOCX whose parts would expand to more than this, or a part that expands more than
# DOCX_MAX_EXPANSION times its compressed size beyond DOCX_BOMB_MIN_BYTES, is refused before
# it is opened: python-docx reads every part into memory, so a zip bomb would otherwise
# reach the worker's memory cap (and an XML part that size would not parse within it anyway).
DOCX_MAX_UNCOMPRESSED_BYTES = 512 * 1024 * 1024
DOCX_MAX_EXPANSION = 200
DOCX_BOMB_MIN_BYTES = 32 * 1024 * 1024
# A document reports at most this many per-page problems; the rest are summed up in one line.
MAX_PAGE_WARNINGS = 10
# --ocr (dscall/documents/ocr.py): pages are rendered at this resolution for tesseract (its
# models are trained on ~300 dpi text), in these languages (tesseract's traineddata names).
OCR_DPI = 300
# A page is rendered at a lower resolution when OCR_DPI would make it larger than this (a
# poster-sized page at 300 dpi is gigabytes): about an A3 page at 300 dpi, 17 MB in greyscale.
OCR_MAX_PIXELS = 17_500_000
OCR_LANGUAGES = "eng+chi_sim"
# One page may take at most this long; OCR as a whole at most this share of --extract-timeout,
# so that a file with many scanned pages ends with its unread pages flagged (and the rest of
# its text chunked) rather than killed as a whole by the per-file limit.
OCR_PAGE_TIMEOUT_S = 60.0
OCR_SHARE_OF_EXTRACT_TIMEOUT = 0.8

# --- chunking ------------------------------------------------------------------------------
DEFAULT_CHUNK_TOKENS = 2000
DEFAULT_OVERLAP_TOKENS = 200
# DeepSeek's documented rule of thumb: ~0.3 token per Latin character, ~0.6 per CJK character.
LATIN_TOKENS_PER_CHAR = 0.3
CJK_TOKENS_PER_CHAR = 0.6
# The rule of thumb undercounts some CJK text by up to a third: estimates are scaled by this.
ESTIMATE_SAFETY_MARGIN = 1.35
# Smallest --chunk-tokens accepted: below it, a sentence or two no longer fits in a chunk.
MIN_CHUNK_TOKENS = 16
# A chunk ends at a paragraph (or sentence, line...) boundary only if it is at least this full
# there; otherwise it takes the next weaker boundary, so a short paragraph before a long one
# does not become a chunk of its own.
CHUNK_MIN_FILL = 0.5

TokenizerChoice = Literal["auto", "exact", "estimate"]
# --provider: the endpoint's profile (dscall/calls/providers.py); auto = detected from the host.
ProviderChoice = Literal["auto", "deepseek", "openai"]
EndpointPriority = Literal["primary", "fallback"]
# --off-peak: "any" sends whenever; "wait" holds new requests during DeepSeek's peak hours.
OffPeakChoice = Literal["any", "wait"]
PdfBackendChoice = Literal["auto", "pdfium", "pypdf"]
# --ocr: auto = pages without a text layer, always = every page of a PDF, never = none.
OcrChoice = Literal["auto", "always", "never"]

# --- calls ---------------------------------------------------------------------------------
API_KEY_ENV = "DEEPSEEK_API_KEY"
DEFAULT_BASE_URL = "https://api.deepseek.com"
DEFAULT_MODEL = "deepseek-flash"
DEFAULT_SYSTEM_PROMPT = "You are a careful assistant that summarises documents faithfully."
# The default task. It names no path or index, so identical text in two files is one request
# (single flight and the cache see them as the same), and it ends with the chunk text so the
# system prompt and instruction form a byte-identical prefix for DeepSeek's prefix cache.
DEFAULT_PROMPT_TEMPLATE = (
    "Summarise the following excerpt in a few sentences. Keep names, figures and dates exact. "
    "Answer in the language of the excerpt.\n\n{text}"
)
# map-reduce: the chunk answers of a document, in chunk order, combined into one. No path, so
# that the same answers reduce to the same request (and cache entry) wherever they come from.
DEFAULT_REDUCE_PROMPT = (
    "The following are summaries of consecutive parts of one document, in order. Combine them "
    "into one faithful summary of the whole document: keep names, figures and dates exact, add "
    "nothing they do not say, and answer in the language of the document.\n\n{outputs}"
)
# refine: the answer so far and the next chunk; the answer after the last chunk is the
# document's.
DEFAULT_REFINE_PROMPT = (
    "Refine the summary of a document with the next excerpt of the same document. Keep what is "
    "still right, add what the excerpt adds, keep names, figures and dates exact, and answer in "
    "the language of the document. Reply with the whole refined summary only.\n\n"
    "Summary so far:\n{previous}\n\nNext excerpt:\n{text}"
)
# Separates answers in a reduce's {outputs}.
REDUCE_SEPARATOR = "\n\n"
DEFAULT_MAX_TOKENS = 1024
DEFAULT_SCHEMA_RETRIES = 2
# dscall compare: the sample drawn by default, and the judge's system prompt. The simulator
# knows the judge by this prompt (simulator/judge.py) and gives it a verdict, not a summary.
DEFAULT_COMPARE_SAMPLE = 50
DEFAULT_COMPARE_SEED = 0
JUDGE_SYSTEM_PROMPT = (
    "You are an impartial judge comparing two answers, A and B, to the same request. "
    "Judge their content, not their position or length. End your answer with one line "
    "holding only your verdict: A, B or tie."
)
DEFAULT_CONCURRENCY = 32
DEFAULT_MAX_CONCURRENCY = 256

DEFAULT_MAX_RETRIES = 6
DEFAULT_ATTEMPT_TIMEOUT_S = 15 * 60.0
# With --stream: an attempt that receives nothing (not even a keep-alive) for this long is dead.
DEFAULT_STREAM_IDLE_TIMEOUT_S = 120.0
DEFAULT_CONNECT_TIMEOUT_S = 30.0
DEFAULT_MAX_OUTAGE_S = 600.0
RETRY_AFTER_CAP_S = 120.0
BACKOFF_BASE_S = 0.5
BACKOFF_MAX_S = 30.0
# A Retry-After is stretched by up to this fraction (never shortened), so that the many requests
# a server throttled at the same instant do not all come back at the same instant.
RETRY_AFTER_JITTER = 0.1
# Circuit breaker: opens after this many consecutive failures, or when the failure rate over
# the last BREAKER_WINDOW outcomes passes BREAKER_FAILURE_RATE (with at least
# BREAKER_MIN_CALLS seen); it probes again after BREAKER_COOLDOWN_S.
BREAKER_CONSECUTIVE_FAILURES = 20
BREAKER_WINDOW = 50
BREAKER_MIN_CALLS = 20
BREAKER_FAILURE_RATE = 0.9
BREAKER_COOLDOWN_S = 5.0
BREAKER_MAX_COOLDOWN_S = 60.0
# Adaptive concurrency (the policy is explained in dscall/calls/limits.py).
# A cut keeps this share of the limit, or the number of requests then in flight if that is lower.
AIMD_DECREASE_FACTOR = 0.8
# Cuts stop at this floor (at --concurrency instead, when that is lower).
AIMD_MIN_CONCURRENCY = 4
# After a cut, the limit is not cut again until the requests in flight at the cut have finished
# and at least this long has passed: one burst of 429s is one signal, not fifty.
AIMD_CUT_INTERVAL_S = 0.1
# Throttles are judged by their share of the last AIMD_SIGNAL_WINDOW answers: 429s (and 503s
# with Retry-After) cut from AIMD_THROTTLE_SHARE, 503s without Retry-After only once all
# throttles together reach AIMD_OVERLOAD_SHARE. Random faults stay below both.
AIMD_SIGNAL_WINDOW = 64
AIMD_THROTTLE_SHARE = 0.125
AIMD_OVERLOAD_SHARE = 0.25
# After a cut the limit grows back by one per success (doubling per round trip) up to this
# share of the level that was refused, and by one per round trip above it.
AIMD_RECOVERY_FRACTION = 0.9
# A request waiting on --rpm/--tpm re-reads the bucket at least this often, so that refunds from
# finished requests (real usage below the estimate) let it go early.
RATE_LIMIT_RECHECK_S = 1.0
# Open files (RLIMIT_NOFILE) a run keeps free of connections: the interpreter and event loop
# (~12 measured), cache sqlite + -wal + -shm, audit log, Parquet temp files, the document being
# read, and short-lived ones (DNS lookups, worker launches, cache values stored as files).
FD_RESERVED = 64
# ... and per extraction worker, in dscall's process: 3 while it lives (its pipe, the fork
# server's status pipe and sentinel), 5 more for a moment while it starts.
FD_PER_WORKER = 8
# Opening a document that finds no free descriptor (EMFILE/ENFILE) waits and tries again, from
# FD_RETRY_FIRST_S doubling to FD_RETRY_MAX_S, for FD_RETRY_TOTAL_S in all: a local limit that
# frees up as requests finish, not the document's fault.
FD_RETRY_FIRST_S = 0.01
FD_RETRY_MAX_S = 1.0
FD_RETRY_TOTAL_S = 30.0

# --- cache, output, audit --------------------------------------------------------------------
DEFAULT_NAMESPACE = "default"
# A cache write waits at most this long for another process's sqlite write lock; the wait
# blocks the event loop, and a put that gives up only costs the checkpoint of one answer.
CACHE_LOCK_TIMEOUT_S = 10.0
# Cross-process single flight (SPEC §5): a run holds a lease on each request it has in flight,
# renewed every CACHE_LEASE_S / 3; a lease whose holder stops renewing (a crash on another host)
# frees after CACHE_LEASE_S. A holder on this machine whose process is gone (kill -9) is taken
# over at once, at the next poll.
CACHE_LEASE_S = 30.0
# A run waiting for another run's answer looks for it (and for the lease) this often, for all the
# requests it waits on at once.
CACHE_LEASE_POLL_S = 0.25
# The shared tier (`--cache-url`, Redis): every call to Redis gives up after REDIS_TIMEOUT_S, and
# the run goes on with the local cache only; a run waiting on another host's lease looks again
# after REDIS_POLL_FIRST_S, then less and less often, up to every REDIS_POLL_MAX_S. Takes and
# writes queued in one loop iteration go in scripts of at most REDIS_BATCH requests.
REDIS_TIMEOUT_S = 2.0
REDIS_POLL_FIRST_S = 0.02
REDIS_POLL_MAX_S = 0.5
REDIS_BATCH = 500
# `--wait-lock`: how often a run waiting for another run's output lock tries it again.
OUTPUT_LOCK_POLL_S = 0.5
PARQUET_ROW_GROUP_ROWS = 8192
# ... or fewer, once the buffered text (chunk texts, outputs) reaches this many characters:
# 8,192 rows of 2,000-token chunks would otherwise hold ~70 MB of text before each write.
PARQUET_ROW_GROUP_TEXT_CHARS = 8 * 1024 * 1024
# Rows finished out of order are held until earlier ones finish; dispatch pauses when the
# oldest unfinished row is this far behind the newest dispatched one, so memory stays bounded.
REORDER_WINDOW_MIN = 4096
PROGRESS_PLAIN_INTERVAL_S = 5.0
PROGRESS_REFRESH_PER_S = 4.0
AUDIT_FLUSH_INTERVAL_S = 1.0
# Audit lines are written in one os.write of whole lines once this many bytes wait (or the
# interval passed): appends from two processes then never interleave inside a line.
AUDIT_BUFFER_BYTES = 64 * 1024
DEFAULT_MOCK_KEY = "sk-mock-dscall-demo"
# The answer source (part of every cache key) of `--mock` runs: the in-process simulator listens
# on a new port each time, and its answers must never be taken for a real endpoint's.
MOCK_ANSWER_SOURCE = "dscall-simulator"


def default_cache_dir() -> Path:
    """The user cache folder: ``$XDG_CACHE_HOME/dscall`` or ``~/.cache/dscall``."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "dscall"


@dataclass(frozen=True, slots=True)
class DiscoverySettings:
    include: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    include_hidden: bool = False


@dataclass(frozen=True, slots=True)
class ExtractSettings:
    timeout_s: float = DEFAULT_EXTRACT_TIMEOUT_S
    memory_mb: int = DEFAULT_EXTRACT_MEMORY_MB
    pdf_backend: PdfBackendChoice = "auto"
    # The CLI's default is auto when the ocr extra is installed (documents.ocr.default_mode).
    ocr: OcrChoice = "never"
    docx_headers_footers: bool = False
    workers: int = 0  # 0 = number of CPUs


@dataclass(frozen=True, slots=True)
class ChunkSettings:
    chunk_tokens: int = DEFAULT_CHUNK_TOKENS
    overlap_tokens: int = DEFAULT_OVERLAP_TOKENS
    tokenizer: TokenizerChoice = "auto"


@dataclass(frozen=True, slots=True)
class PromptSettings:
    model: str = DEFAULT_MODEL
    system: str = DEFAULT_SYSTEM_PROMPT
    template: str = DEFAULT_PROMPT_TEMPLATE
    max_tokens: int | None = DEFAULT_MAX_TOKENS
    temperature: float | None = None
    json_mode: bool = False
    thinking: bool = False
    stream: bool = False
    # --schema / --schema-inline: the compact JSON Schema answers must follow (JSON mode on,
    # the schema in the system prompt), and how often an answer that does not is asked again.
    schema_json: str | None = None
    schema_retries: int = DEFAULT_SCHEMA_RETRIES


@dataclass(frozen=True, slots=True)
class CallSettings:
    base_url: str = DEFAULT_BASE_URL
    concurrency: int = DEFAULT_CONCURRENCY
    max_concurrency: int = DEFAULT_MAX_CONCURRENCY
    max_retries: int = DEFAULT_MAX_RETRIES
    attempt_timeout_s: float = DEFAULT_ATTEMPT_TIMEOUT_S
    stream_idle_timeout_s: float = DEFAULT_STREAM_IDLE_TIMEOUT_S
    connect_timeout_s: float = DEFAULT_CONNECT_TIMEOUT_S
    rpm: int | None = None
    tpm: int | None = None
    max_outage_s: float = DEFAULT_MAX_OUTAGE_S
    allow_insecure_http: bool = False
    provider: ProviderChoice = "auto"
    # Several endpoints (SPEC §11): ``--endpoint NAME=URL`` or ``[[endpoints]]`` tables. Empty:
    # one endpoint, ``base_url`` with ``provider``.
    endpoints: tuple[EndpointSettings, ...] = ()
    off_peak: OffPeakChoice = "any"


@dataclass(frozen=True, slots=True)
class EndpointSettings:
    """One endpoint of a run with several (``calls/endpoint_specs.py`` reads and checks them).
    ``None`` means the run's own value (``--model``, ``--max-concurrency`` ...)."""

    name: str
    base_url: str
    api_key_env: str = API_KEY_ENV  # the variable that holds its key: keys are never in files
    model: str | None = None  # the run's --model as this endpoint names it
    provider: ProviderChoice = "auto"
    weight: float = 1.0
    priority: EndpointPriority = "primary"
    max_concurrency: int | None = None  # default: the run's, shared by weight among primaries
    rpm: int | None = None
    tpm: int | None = None
    # USD per million tokens at peak: cache-hit input, cache-miss input, output. None: the
    # price table's for the model it is sent (unknown if the table has none).
    prices: tuple[float, float, float] | None = None
    cache_group: str | None = None  # answers shared with the endpoints of the same group
    where: str | None = None  # "FILE:LINE" of its table, for messages


@dataclass(frozen=True, slots=True)
class CacheSettings:
    directory: Path = field(default_factory=default_cache_dir)
    namespace: str = DEFAULT_NAMESPACE
    enabled: bool = True
    refresh: bool = False
    cache_url: str | None = None  # the shared tier, redis://HOST:PORT/DB (its password a secret)

    def __post_init__(self) -> None:
        if self.cache_url:
            for secret in url_secrets(self.cache_url):
                register_secret(secret)


@dataclass(frozen=True, slots=True)
class OutputSettings:
    out: Path = Path("results.parquet")
    documents_out: Path | None = None
    include_text: bool = True
    audit_log: Path | None = None
    summary_json: Path | None = None  # Path("-"): standard output
    force: bool = False  # replace existing files that are not dscall outputs
    wait_lock: bool = False  # wait for another run writing the same output, not refuse
    metrics_port: int | None = None  # serve Prometheus /metrics on 127.0.0.1 while running
    metrics_textfile: Path | None = None  # the final metrics, for node_exporter's collector


def settings_metadata(*parts: Any) -> dict[str, Any]:
    """Flatten settings dataclasses into one JSON-able dict (for Parquet metadata)."""
    merged: dict[str, Any] = {}
    for part in parts:
        for key, value in asdict(part).items():
            merged[key] = str(value) if isinstance(value, Path) else value
    if merged.get("cache_url"):
        merged["cache_url"] = public_url(merged["cache_url"])
    return merged


@dataclass(frozen=True, slots=True)
class ProcessSettings:
    """Everything ``dscall process`` was asked to do (never the API key)."""

    inputs: tuple[str, ...]
    discovery: DiscoverySettings = field(default_factory=DiscoverySettings)
    extract: ExtractSettings = field(default_factory=ExtractSettings)
    chunk: ChunkSettings = field(default_factory=ChunkSettings)
    prompt: PromptSettings = field(default_factory=PromptSettings)
    call: CallSettings = field(default_factory=CallSettings)
    cache: CacheSettings = field(default_factory=CacheSettings)
    output: OutputSettings = field(default_factory=OutputSettings)
    budget_usd: float | None = None
    max_failures: int = 0  # failed chunks/documents tolerated before the exit code becomes 1
    caller: str | None = None
    prices_file: Path | None = None
    mock: bool = False
    dry_run: bool = False
    preflight: bool = True
    # The chain: empty for --mode map (one call per chunk); otherwise the steps of the mode or
    # of --pipeline, in order.
    steps: tuple[StepSettings, ...] = ()
    allow_partial: bool = False  # reduce a document over the chunk answers that did not fail
    pipeline: Path | None = None  # the --pipeline file the steps came from
    executor: ExecutorSettings = field(default_factory=ExecutorSettings)
