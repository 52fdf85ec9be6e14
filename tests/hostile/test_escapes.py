"""File names and document text that try to talk to the terminal.

Names carry ANSI colour and screen codes, BEL, CR, backspaces, an OSC window-title sequence,
an 8-bit CSI, a right-to-left override and rich markup; one text carries the same. Whatever
dscall prints about them (progress notes, failures, skips, the preview, errors) must show them
escaped, never as the raw bytes a terminal would obey, while the Parquet keeps every name
exactly as it is on disk.
"""

from __future__ import annotations

import os
import pty
import subprocess
import sys
from pathlib import Path

import pytest

from dscall.simulator import SimulatorThread
from tests.integration.conftest import invoke, read_rows

# Name -> content. Each name holds one hostile sequence.
EVIL_TEXT = {
    "red\x1b[31mtext.txt": "Quarterly sales grew. Costs fell.",
    "bell\x07ring.txt": "The committee met twice this month.",
    "carriage\rreturn.txt": "Revenue rose by twelve percent.",
    "back\x08\x08space.txt": "The warehouse opens in March.",
    "title\x1b]0;pwned\x07.txt": "Risks include currency swings.",
    "[bold red]markup.txt": "The board approved the budget.",
    "c1\u009b31mcsi.txt": "Several customers asked for faster delivery.",
    "rtl\u202eolleh.txt": "Shipments rose again this quarter.",
    "content.txt": (
        "Plain start \x1b[31mred\x1b[0m then \x07bell, \x9b31m C1 CSI, \u202ereversed\u202c, "
        "[bold]markup[/bold] and [link=http://x]link[/link]. The end."
    ),
}
BROKEN = "broken\x1b[2J.pdf"  # fails: its name is printed in a failure note
SKIPPED = "skip\x1b[5mblink.xyz"  # unsupported: its name is printed in a skip note
UNDECODABLE = b"bytes\xff\xfename.txt"  # not UTF-8: kept as \xNN escapes
# What must never reach the terminal raw. "\r" and ESC alone are fine in rich's own output
# (it draws with them), so in rich mode the exact injected sequences are looked for instead.
RAW_BYTES = ["\x1b", "\x07", "\x08", "\r", "\x9b", "\u202e"]
INJECTED = [
    "\x1b[31m",
    "\x1b[2J",
    "\x1b[5m",
    "\x1b]0;pwned",
    "\x07",
    "\x08\x08",
    "carriage\rreturn",
    "\x9b31m",
    "\u202e",
]


@pytest.fixture
def evil_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "evil"
    folder.mkdir()
    for name, text in EVIL_TEXT.items():
        (folder / name).write_text(text, encoding="utf-8")
    (folder / BROKEN).write_bytes(b"%PDF-1.7\nnot really a PDF")
    (folder / SKIPPED).write_text("ignored")
    with open(os.path.join(os.fsencode(folder), UNDECODABLE), "wb") as handle:
        handle.write(b"Undecodable name, fine text.")
    return folder


def _assert_nothing_raw(output: str) -> None:
    for raw in RAW_BYTES:
        assert raw not in output, f"{raw!r} reached the terminal: {output!r}"


def _assert_names_kept(rows: list[dict[str, object]]) -> None:
    names = {row["doc_path"] for row in rows}
    assert set(EVIL_TEXT) | {BROKEN, "bytes\\xff\\xfename.txt"} == names


def test_chunks_prints_hostile_names_escaped_and_keeps_them_in_the_parquet(
    evil_dir: Path, tmp_path: Path
) -> None:
    out = tmp_path / "chunks.parquet"
    result = invoke(["chunks", str(evil_dir), "--out", str(out), "--tokenizer", "estimate"])
    assert result.exit_code == 1, result.stderr  # the broken PDF
    _assert_nothing_raw(result.stdout + result.stderr)
    assert "failed " in result.stderr
    assert "broken\\x1b[2J.pdf: CorruptDocument" in result.stderr
    assert "skipped " in result.stderr
    assert "skip\\x1b[5mblink.xyz: unsupported file type" in result.stderr
    rows = read_rows(out)
    _assert_names_kept(rows)
    text = next(row["chunk_text"] for row in rows if row["doc_path"] == "content.txt")
    assert "\x1b" not in text  # C0 controls are not text: removed when the file is read
    assert "[bold]markup[/bold]" in text


def test_process_prints_hostile_names_and_texts_escaped(
    evil_dir: Path, tmp_path: Path, sim: SimulatorThread
) -> None:
    out = tmp_path / "results.parquet"
    args = ["process", str(evil_dir), "--out", str(out), "--base-url", sim.base_url]
    args += ["--cache-dir", str(tmp_path / "cache"), "--tokenizer", "estimate"]
    result = invoke([*args, "--preview", "20", "--progress-interval", "0.1"])
    assert result.exit_code == 1, result.stderr
    _assert_nothing_raw(result.stdout + result.stderr)
    assert "broken\\x1b[2J.pdf: CorruptDocument" in result.stderr
    assert "skip\\x1b[5mblink.xyz" in result.stderr
    # The preview shows every document's name and the answer quoting its text, escaped.
    assert "red\\x1b[31mtext.txt" in result.stdout
    assert "\\u202e" in result.stdout
    rows = read_rows(out)
    _assert_names_kept(rows)
    ok = [row for row in rows if row["status"] == "ok"]
    assert len(ok) == len(EVIL_TEXT) + 1


def test_process_in_a_terminal_draws_with_rich_but_never_replays_a_name(
    evil_dir: Path, tmp_path: Path
) -> None:
    """A real pseudo-terminal, so rich's live display and summary table are what runs."""
    out = tmp_path / "results.parquet"
    command = [sys.executable, "-m", "dscall", "process", str(evil_dir), "--mock"]
    command += ["--out", str(out), "--cache-dir", str(tmp_path / "cache"), "--preview", "20"]
    command += ["--tokenizer", "estimate"]
    env = {**os.environ, "TERM": "xterm-256color", "COLUMNS": "200", "LINES": "50"}
    primary, secondary = pty.openpty()
    try:
        process = subprocess.Popen(
            command, stdin=secondary, stdout=secondary, stderr=secondary, env=env
        )
    finally:
        os.close(secondary)
    chunks = []
    try:
        while True:
            try:
                data = os.read(primary, 65536)
            except OSError:  # EIO: the terminal's other side closed
                break
            if not data:
                break
            chunks.append(data)
    finally:
        os.close(primary)
    code = process.wait(timeout=60)
    screen = b"".join(chunks).decode("utf-8", errors="replace")
    assert code == 1, screen
    assert "\x1b[" in screen  # rich did draw: this is the terminal path
    for sequence in INJECTED:
        assert sequence not in screen, f"{sequence!r} reached the terminal"
    assert "broken\\x1b[2J.pdf" in screen
    _assert_names_kept(read_rows(out))


def test_an_error_naming_a_hostile_path_is_one_escaped_line(tmp_path: Path) -> None:
    missing = str(tmp_path / "gone\x1b[31m[bold]")
    for command in (["chunks", missing], ["process", missing, "--mock"]):
        result = invoke([*command, "--out", str(tmp_path / "out.parquet")])
        assert result.exit_code == 2, result.stderr
        _assert_nothing_raw(result.stdout + result.stderr)
        assert "gone\\x1b[31m" in result.stderr
