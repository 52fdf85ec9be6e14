"""Progress display modes, notes, the summary table, and escaping of untrusted text."""

from __future__ import annotations

import io
import os
import re
import time
from collections.abc import Callable, Iterator
from typing import TextIO

import pytest

from dscall.progress import (
    ProgressDisplay,
    choose_mode,
    escape_controls,
    format_duration,
    safe_text,
)
from dscall.stats import RunStats
from dscall.summary import render_summary, summary_rows


class Terminal:
    """A real pseudo-terminal: ``stream`` is its terminal side, ``read()`` what was shown."""

    def __init__(self) -> None:
        master, slave = os.openpty()
        os.set_blocking(master, False)
        self._master = master
        self.stream: TextIO = open(slave, "w", encoding="utf-8")  # noqa: SIM115

    def read(self) -> str:
        chunks = []
        while True:
            try:
                data = os.read(self._master, 65536)
            except BlockingIOError:
                break
            if not data:
                break
            chunks.append(data)
        return b"".join(chunks).decode("utf-8", "replace")

    def close(self) -> None:
        self.stream.close()
        os.close(self._master)


@pytest.fixture
def terminal() -> Iterator[Terminal]:
    term = Terminal()
    yield term
    term.close()


def busy_stats() -> RunStats:
    stats = RunStats()
    stats.documents_seen, stats.documents_failed = 4, 1
    stats.chunks_total, stats.chunks_done = 10, 3
    stats.chunks_ok, stats.chunks_failed, stats.chunks_cached = 2, 1, 1
    stats.in_flight, stats.concurrency_limit = 5, 32
    stats.requests_sent, stats.retries = 7, 2
    stats.prompt_tokens, stats.completion_tokens = 123_456, 789
    stats.cost_usd = 0.0421
    return stats


def wait_for(predicate: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached")
        time.sleep(0.005)


# --- choose_mode ---------------------------------------------------------------------------


def test_quiet_wins(terminal: Terminal) -> None:
    assert choose_mode(True, terminal.stream) == "quiet"
    assert choose_mode(True, io.StringIO()) == "quiet"


def test_terminal_is_rich_pipe_is_plain(
    terminal: Terminal, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TERM", "xterm-256color")
    assert choose_mode(False, terminal.stream) == "rich"
    assert choose_mode(False, io.StringIO()) == "plain"
    monkeypatch.setenv("TERM", "dumb")
    assert choose_mode(False, terminal.stream) == "plain"


def test_closed_stream_is_plain() -> None:
    stream = io.StringIO()
    stream.close()
    assert choose_mode(False, stream) == "plain"


# --- plain mode ----------------------------------------------------------------------------


def test_plain_lines_carry_the_figures() -> None:
    stats = busy_stats()
    out = io.StringIO()
    with ProgressDisplay(stats, "plain", out, interval_s=0.01) as display:
        wait_for(lambda: out.getvalue().count("\n") >= 2)
        stats.chunks_done = 4
        display.note("skipped notes/readme.rtf: unsupported format")
    lines = out.getvalue().splitlines()
    progress = [line for line in lines if "chunks" in line and "done:" not in line]
    # A UTC wall-clock stamp (for logs read later), then the elapsed time.
    assert re.match(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ \[0:00:0", progress[0]), progress[0]
    for figure in (
        "docs 4 (1 failed)",
        "chunks 3/10",
        "in flight 5/32",
        "req/s",
        "tokens 123.5k in / 789 out",
        "cost $0.0421",
        "retries 2",
        "errors 2",
        "cached 1",
        "ETA",
    ):
        assert figure in progress[0], figure
    assert "skipped notes/readme.rtf: unsupported format" in lines
    assert "done: " in lines[-1]  # one final line, after everything else
    assert "chunks 4/10" in lines[-1]
    assert "ETA" not in lines[-1]
    assert stats.finished_monotonic is not None


def test_plain_final_line_even_for_a_short_run() -> None:
    out = io.StringIO()
    with ProgressDisplay(RunStats(), "plain", out, interval_s=3600):
        pass
    assert out.getvalue().count("\n") == 1
    assert "done: docs 0 | chunks 0/0" in out.getvalue()


def test_notes_are_escaped_in_plain_mode() -> None:
    out = io.StringIO()
    with ProgressDisplay(RunStats(), "plain", out, interval_s=3600) as display:
        display.note("skipped \x1b]0;owned\x07evil\r.pdf: unreadable")
    assert "skipped \\x1b]0;owned\\x07evil\\x0d.pdf: unreadable" in out.getvalue()
    assert "\x1b" not in out.getvalue()


def test_unknown_cost_is_shown_as_such() -> None:
    stats = RunStats()
    stats.cost_unknown = True
    out = io.StringIO()
    with ProgressDisplay(stats, "plain", out, interval_s=3600):
        pass
    assert "cost unknown" in out.getvalue()
    stats.cost_usd = 0.5
    assert "cost >=$0.5000" in ProgressDisplay(stats, "plain", out).line()


# --- quiet and rich ------------------------------------------------------------------------


def test_quiet_prints_nothing() -> None:
    out = io.StringIO()
    with ProgressDisplay(busy_stats(), "quiet", out, interval_s=0.001) as display:
        display.note("a note nobody sees")
        time.sleep(0.01)
    assert out.getvalue() == ""


def test_rich_mode_draws_the_figures_and_notes() -> None:
    out = io.StringIO()
    stats = busy_stats()
    with ProgressDisplay(stats, "rich", out, refresh_per_s=50) as display:
        display.note("failed [bold]x[/bold].pdf: \x1b[31mCorruptDocument")
        stats.chunks_done = 5
    text = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", out.getvalue())  # drop rich's own styling
    assert "chunks 5/10" in text
    assert "docs 4 (1 failed)" in text
    assert "in flight 5/32" in text
    assert "cost $0.0421" in text
    assert "failed [bold]x[/bold].pdf: \\x1b[31mCorruptDocument" in text  # shown, not obeyed


# --- summary -------------------------------------------------------------------------------


def summary_stats() -> RunStats:
    stats = busy_stats()
    stats.started_monotonic, stats.finished_monotonic = 100.0, 190.0
    stats.chunks_done, stats.chunks_ok, stats.chunks_failed = 10, 9, 1
    stats.cache_hit_tokens, stats.cache_miss_tokens = 100_000, 23_456
    for ms in (100.0, 200.0, 300.0, 12_500.0):
        stats.latency.record(ms)
    return stats


def test_summary_rows_hold_the_figures() -> None:
    rows = dict(summary_rows(summary_stats()))
    assert rows["chunks"] == "10 of 10: 9 ok, 1 failed, 1 cached"
    assert rows["tokens"] == "123,456 prompt (100,000 cache hit, 23,456 miss), 789 completion"
    assert rows["cost"] == "$0.0421"
    assert rows["latency"] == "p50 200 ms, p95 12.5 s, p99 12.5 s"
    assert rows["throughput"] == "0.11 chunks/s, 0.08 requests/s"
    assert rows["error rate"] == "18.18%"  # 1 failed chunk + 1 failed document over 11 rows
    assert rows["wall time"] == "1m30s"


def test_plain_summary_is_aligned_text() -> None:
    out = io.StringIO()
    render_summary(summary_stats(), out)
    lines = out.getvalue().splitlines()
    assert lines[0] == "summary"
    assert "\x1b" not in out.getvalue()
    matches = [re.match(r"^  (\S.*?)\s{2,}(\S.*)$", line) for line in lines[1:]]
    columns = {m.start(2) for m in matches if m is not None}
    assert len(matches) == 9
    assert len(columns) == 1  # every value starts in the same column
    assert any(line.strip().startswith("latency") and "p99 12.5 s" in line for line in lines)


def test_terminal_summary_is_a_rich_table(
    terminal: Terminal, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TERM", "xterm-256color")
    render_summary(summary_stats(), terminal.stream)
    text = terminal.read()
    assert "dscall summary" in text
    assert "│" in text or "┃" in text  # box drawing: a table, not plain lines
    assert "p50 200 ms" in text


# --- escaping --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "shown"),
    [
        ("plain.pdf", "plain.pdf"),
        ("\x1b[31mred\x1b[0m.pdf", "\\x1b[31mred\\x1b[0m.pdf"),  # CSI colour
        ("x\x9b2J.pdf", "x\\x9b2J.pdf"),  # 8-bit CSI
        ("\x1b]8;;http://evil\x07link\x1b]8;;\x07", "\\x1b]8;;http://evil\\x07link\\x1b]8;;\\x07"),
        ("\x1b]0;title\x1b\\", "\\x1b]0;title\\x1b\\"),  # OSC ended by ST
        ("over\rwrite", "over\\x0dwrite"),
        ("back\bspace", "back\\x08space"),
        ("bell\x07", "bell\\x07"),
        ("del\x7f", "del\\x7f"),
        ("two\nlines", "two\\x0alines"),
        ("gpj.\u202eexe", "gpj.\\u202eexe"),  # right-to-left override
        ("bytes\udcff.pdf", "bytes\\udcff.pdf"),  # an undecodable byte in a file name
        ("日本語.pdf", "日本語.pdf"),
    ],
)
def test_escape_controls(raw: str, shown: str) -> None:
    assert escape_controls(raw) == shown


def test_safe_text_also_escapes_markup() -> None:
    assert safe_text("[bold red]boo[/].pdf") == "\\[bold red]boo\\[/].pdf"
    assert safe_text("report [1].pdf") == "report [1].pdf"  # not markup: left alone
    assert safe_text("\x1b[1m[link=http://x]y") == "\\x1b[1m\\[link=http://x]y"


def test_safe_text_keeps_newlines_for_document_text() -> None:
    assert safe_text("a\n\tb\x1b", keep_newlines=True) == "a\n\tb\\x1b"


def test_safe_text_output_prints_literally() -> None:
    from rich.console import Console

    out = io.StringIO()
    name = "[bold]x\x1b[2J.pdf"
    Console(file=out, force_terminal=True, width=200, highlight=False).print(
        f"file: {safe_text(name)}"
    )
    assert "file: [bold]x\\x1b[2J.pdf" in out.getvalue()
    assert "\x1b[2J" not in out.getvalue()


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(None, "-"), (0.4, "0s"), (59, "59s"), (61, "1m01s"), (3600 * 2 + 65, "2h01m")],
)
def test_format_duration(seconds: float | None, text: str) -> None:
    assert format_duration(seconds) == text
