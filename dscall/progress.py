"""Seeing a run: live progress, one-line notes, and the end-of-run summary (SPEC §7).

Nothing here runs on the engine's hot path. The display only reads ``RunStats``: in rich mode
from rich's own refresh thread (~4 times a second), in plain mode (stderr is not a terminal:
cron, CI) from a daemon thread that writes one line every ``PROGRESS_PLAIN_INTERVAL_S``.
``--quiet`` silences progress, notes and the summary; errors are printed by the CLI regardless.

Every name or text from outside (file names, messages with paths, model output) goes through
``safe_text`` before it reaches a terminal, so an escape sequence in a file name is shown, not
obeyed.
"""

from __future__ import annotations

import os
import re
import sys
import threading
import time
from collections import deque
from types import TracebackType
from typing import Literal, TextIO

from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.markup import escape as escape_markup
from rich.progress_bar import ProgressBar
from rich.table import Table
from rich.text import Text

from dscall.config import PROGRESS_PLAIN_INTERVAL_S, PROGRESS_REFRESH_PER_S
from dscall.errors import UsageError
from dscall.stats import EndpointFigures, RunStats

Mode = Literal["rich", "plain", "quiet"]

# C0 and C1 controls (ESC, CSI 0x9b, BEL, \r, \b ...), DEL, bidi overrides and isolates (which
# reorder what is shown), line separators, and lone surrogates (undecodable bytes in a file
# name, which would crash the write).
_UNSAFE_REST = r"\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069\ud800-\udfff"
_UNSAFE_ALL = re.compile(rf"[\x00-\x1f{_UNSAFE_REST}]")
_UNSAFE_KEEP_LINES = re.compile(rf"[\x00-\x08\x0b-\x1f{_UNSAFE_REST}]")  # \t and \n pass


def _escape_char(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def escape_controls(text: str, keep_newlines: bool = False) -> str:
    """``text`` with control characters written out (``"\\x1b"``), for plain output."""
    pattern = _UNSAFE_KEEP_LINES if keep_newlines else _UNSAFE_ALL
    return pattern.sub(_escape_char, text)


def safe_text(text: str, keep_newlines: bool = False) -> str:
    """``text`` safe to show on a terminal and inside rich markup.

    Control characters, ANSI/CSI/OSC escape sequences, bidi overrides and undecodable bytes are
    written out (ESC becomes the four characters ``\\x1b``), and ``[`` that rich would read as
    markup is escaped. ``keep_newlines`` keeps ``\\n`` and ``\\t`` (for document text).
    """
    return escape_markup(escape_controls(text, keep_newlines))


def choose_mode(quiet: bool, stream: TextIO) -> Mode:
    """rich on a terminal (unless TERM=dumb), plain lines otherwise, nothing with --quiet."""
    if quiet:
        return "quiet"
    try:
        tty = bool(stream.isatty())
    except (AttributeError, ValueError, OSError):  # no isatty, or a closed stream
        tty = False
    if tty and os.environ.get("TERM", "") != "dumb":
        return "rich"
    return "plain"


# --- formatting --------------------------------------------------------------------------------


def format_duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    whole = round(seconds)
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes:02d}m"
    if minutes:
        return f"{minutes}m{secs:02d}s"
    return f"{secs}s"


def _clock(seconds: float) -> str:
    total = int(seconds)
    return f"{total // 3600}:{total % 3600 // 60:02d}:{total % 60:02d}"


def _count(n: int) -> str:
    """Compact: 9,999 / 123.4k / 1.23M."""
    if n < 10_000:
        return f"{n:,}"
    if n < 1_000_000:
        return f"{n / 1000:.1f}k"
    return f"{n / 1_000_000:.2f}M"


def format_cost(stats: RunStats) -> str:
    if stats.cost_unknown and stats.cost_usd == 0:
        return "unknown"
    prefix = ">=" if stats.cost_unknown else ""  # some rows had no price: a lower bound
    return f"{prefix}${stats.cost_usd:.4f}"


def ms(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:,.0f} ms" if value < 10_000 else f"{value / 1000:,.1f} s"


class _Rates:
    """Recent requests/s and chunks/s over a sliding window of snapshots."""

    def __init__(self, window_s: float = 10.0) -> None:
        self._window = window_s
        self._samples: deque[tuple[float, int, int]] = deque()

    def update(self, stats: RunStats) -> tuple[float, float]:
        now = time.monotonic()
        samples = self._samples
        samples.append((now, stats.requests_sent, stats.chunks_done))
        while len(samples) > 2 and now - samples[1][0] >= self._window:
            samples.popleft()
        then, requests, chunks = samples[0]
        span = now - then
        if span < 1.0:  # too short to mean anything yet: the run's average
            return stats.requests_per_s(), stats.throughput()
        return (stats.requests_sent - requests) / span, (stats.chunks_done - chunks) / span


def _figures(stats: RunStats, req_rate: float, chunk_rate: float, final: bool) -> list[str]:
    docs = f"docs {stats.documents_seen:,}"
    if stats.documents_failed:
        docs += f" ({stats.documents_failed:,} failed)"
    if stats.front.from_manifest:
        docs += f" ({stats.front.from_manifest:,} unchanged)"
    parts = [
        docs,
        f"chunks {stats.chunks_done:,}/{stats.chunks_total:,}",
        f"in flight {stats.in_flight}/{stats.concurrency_limit}",
        f"{req_rate:.1f} req/s",
        f"tokens {_count(stats.prompt_tokens)} in / {_count(stats.completion_tokens)} out",
        f"cost {format_cost(stats)}",
        f"retries {stats.retries:,}",
        f"errors {stats.chunks_failed + stats.documents_failed:,}",
        f"cached {stats.chunks_cached:,}",
    ]
    if len(stats.steps) > 1:  # a chain: how far each step is
        parts.append("steps " + ", ".join(f"{n} {s.calls:,}" for n, s in stats.steps.items()))
    if stats.endpoints:  # several endpoints: each one's in flight and limit, or its state
        parts.append("endpoints " + ", ".join(_endpoint(n, e) for n, e in stats.endpoints.items()))
    if stats.off_peak_wait_until is not None:
        parts.append(f"waiting for off-peak until {stats.off_peak_wait_until}")
    if not final:
        parts.append(f"ETA {format_duration(stats.eta_s(chunk_rate or None))}")
    return parts


def _endpoint(name: str, figures: EndpointFigures) -> str:
    if figures.disabled is not None:
        return f"{name} disabled"
    state = "" if figures.breaker == "closed" else f" ({figures.breaker})"
    return f"{name} {figures.in_flight}/{figures.concurrency_limit}{state}"


# --- the live display ------------------------------------------------------------------------


class ProgressDisplay:
    """Shows ``stats`` while the run goes; ``note`` prints a line above it."""

    def __init__(
        self,
        stats: RunStats,
        mode: Mode,
        stream: TextIO | None = None,
        *,
        interval_s: float = PROGRESS_PLAIN_INTERVAL_S,
        refresh_per_s: float = PROGRESS_REFRESH_PER_S,
    ) -> None:
        self.stats = stats
        self.mode = mode
        self.stream = stream if stream is not None else sys.stderr
        self._interval = interval_s
        self._refresh = refresh_per_s
        self._rates = _Rates()
        self._lock = threading.Lock()  # plain mode: a note and a progress line never mix
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._live: Live | None = None
        self._console: Console | None = None

    def __enter__(self) -> ProgressDisplay:
        if self.mode == "rich":
            self._console = Console(
                file=self.stream, force_terminal=True, highlight=False, soft_wrap=False
            )
            self._live = Live(
                get_renderable=self._render,
                console=self._console,
                refresh_per_second=self._refresh,
                transient=False,
                redirect_stdout=False,  # stdout may be a pipe carrying data; leave it alone
            )
            self._live.start()
        elif self.mode == "plain":
            self._thread = threading.Thread(
                target=self._plain_loop, name="dscall-progress", daemon=True
            )
            self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stats.finish()
        # A usage error means nothing ran: no "done: 0 chunks" line before its message.
        ran = not isinstance(exc, UsageError)
        if self._live is not None:
            self._live.transient = not ran
            self._live.stop()  # draws the final state and leaves it on screen
            self._live = None
        if self._thread is not None:
            self._stop.set()
            self._thread.join()
            self._thread = None
            if ran:
                self._write(self.line(final=True))

    def note(self, message: str) -> None:
        """A one-line notice (skipped file, failed document, retry storm); not in quiet mode."""
        if self.mode == "quiet":
            return
        text = escape_controls(message)
        if self._live is not None and self._console is not None:
            self._console.print(Text(text, style="yellow"))
        else:
            self._write(text)

    def line(self, final: bool = False) -> str:
        """The plain progress line (the same figures the rich display shows)."""
        stats = self.stats
        if final:
            req_rate, chunk_rate = stats.requests_per_s(), stats.throughput()
        else:
            req_rate, chunk_rate = self._rates.update(stats)
        figures = _figures(stats, req_rate, chunk_rate, final)
        # The wall clock (UTC) for logs read later (cron), then the run's elapsed time.
        stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        head = f"{stamp} [{_clock(stats.elapsed_s())}] {'done: ' if final else ''}"
        return head + " | ".join(figures)

    def _write(self, text: str) -> None:
        with self._lock:
            try:
                self.stream.write(text + "\n")
                self.stream.flush()
            except (OSError, ValueError):  # stderr closed or a broken pipe: keep the run going
                pass

    def _plain_loop(self) -> None:
        while not self._stop.wait(self._interval):
            self._write(self.line())

    def _render(self) -> RenderableType:
        stats = self.stats
        req_rate, chunk_rate = self._rates.update(stats)
        figures = _figures(stats, req_rate, chunk_rate, final=False)
        total = max(stats.chunks_total, stats.chunks_done, 1)
        bar = ProgressBar(total=total, completed=stats.chunks_done, width=30)
        grid = Table.grid(padding=(0, 1))
        grid.add_row(bar, Text(" · ".join([figures[1], figures[0], figures[-1]])))
        return Group(grid, Text(" · ".join(figures[2:-1]), style="dim"))
