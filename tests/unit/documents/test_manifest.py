"""The manifest through its interface, on real sqlite files: what it remembers, when a file is
read again, and what a corrupt entry, a corrupt file or concurrent writers do."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import time
import zlib
from pathlib import Path

import pytest

from dscall.config import ChunkSettings, DiscoverySettings, ExtractSettings
from dscall.documents.discover import discover
from dscall.documents.manifest import MANIFEST_NAME, Manifest, open_manifest, settings_key
from dscall.documents.manifest_entry import decode_document, encode_document
from dscall.types import Chunk, ChunkedDocument, SourceFile

KEY = settings_key(ExtractSettings(), ChunkSettings(), "estimate")
HOUR_AGO_NS = time.time_ns() - 3600 * 10**9


def _source(path: Path, text: str = "Some text.", mtime_ns: int = HOUR_AGO_NS) -> SourceFile:
    """``path`` written and given an old mtime, as discovery finds it."""
    path.write_text(text, encoding="utf-8")
    os.utime(path, ns=(mtime_ns, mtime_ns))
    found = next(discover([str(path)], DiscoverySettings()))
    assert isinstance(found, SourceFile)
    return found


def _document(source: SourceFile, chunks: int = 2) -> ChunkedDocument:
    rows = tuple(
        Chunk(
            i, chunks, f"text {i} \u4e2d\u6587 \udcff", i * 10, i * 10 + 9, i + 1, i + 2, 7, i == 1
        )
        for i in range(chunks)
    )
    return ChunkedDocument(source, "ab" * 32, 3, 42, (2,), ("page 2: odd",), rows, (3,))


def _open(folder: Path, notes: list[str], read: bool = True, key: str = KEY) -> Manifest:
    return open_manifest(folder, key, read=read, notify=notes.append)


def test_an_entry_round_trips_every_field(tmp_path: Path) -> None:
    source = _source(tmp_path / "a.txt")
    document = _document(source)
    assert decode_document(source, encode_document(document)) == document


def test_an_entry_without_lone_surrogates_round_trips(tmp_path: Path) -> None:
    source = _source(tmp_path / "a.txt")
    plain = _document(source)
    chunks = tuple(
        Chunk(c.index, c.count, "\u4e2d\u6587 text", 0, 6, None, None, 3) for c in plain.chunks
    )
    document = ChunkedDocument(source, plain.doc_id, 0, 6, (), (), chunks)
    assert not zlib.decompress(encode_document(document)).startswith(b"\x00")
    assert decode_document(source, encode_document(document)) == document


def test_an_unchanged_file_is_recalled_and_a_changed_one_is_not(tmp_path: Path) -> None:
    notes: list[str] = []
    source = _source(tmp_path / "a.txt")
    manifest = _open(tmp_path / "cache", notes)
    manifest.remember(_document(source), time.time_ns())
    manifest.close()
    again = _open(tmp_path / "cache", notes)
    try:
        assert again.recall(source) == _document(source)
        changed = _source(tmp_path / "a.txt", "Other text", HOUR_AGO_NS)  # new size
        assert again.recall(changed) is None
        touched = _source(tmp_path / "a.txt", "Some text.", HOUR_AGO_NS - 10**9)  # same size
        assert again.recall(touched) is None
        assert (again.hits, again.misses) == (1, 2)
    finally:
        again.close()
    assert notes == []
    assert oct((tmp_path / "cache" / MANIFEST_NAME).stat().st_mode & 0o777) == "0o600"


def test_other_settings_miss(tmp_path: Path) -> None:
    notes: list[str] = []
    source = _source(tmp_path / "a.txt")
    manifest = _open(tmp_path, notes)
    manifest.remember(_document(source), time.time_ns())
    manifest.flush()
    other = settings_key(ExtractSettings(), ChunkSettings(chunk_tokens=500), "estimate")
    assert other != KEY
    assert settings_key(ExtractSettings(), ChunkSettings(), "exact") != KEY
    assert settings_key(ExtractSettings(docx_headers_footers=True), ChunkSettings(), "estimate")
    second = _open(tmp_path, notes, key=other)
    try:
        assert second.recall(source) is None
        assert manifest.recall(source) is not None
    finally:
        manifest.close()
        second.close()


def test_refresh_reads_nothing_but_remembers(tmp_path: Path) -> None:
    notes: list[str] = []
    source = _source(tmp_path / "a.txt")
    refreshing = _open(tmp_path, notes, read=False)
    refreshing.remember(_document(source), time.time_ns())
    assert refreshing.recall(source) is None
    refreshing.close()
    later = _open(tmp_path, notes)
    assert later.recall(source) is not None
    later.close()


def test_a_file_modified_just_before_it_was_read_is_not_remembered(tmp_path: Path) -> None:
    notes: list[str] = []
    source = _source(tmp_path / "a.txt", mtime_ns=time.time_ns())
    streamed = _source(tmp_path / "b.txt")
    manifest = _open(tmp_path, notes)
    manifest.remember(_document(source), time.time_ns())
    big = _document(streamed)
    # A streamed text file's chunks are not a tuple (bigtext.StreamedChunks): not stored.
    manifest.remember(ChunkedDocument(big.source, big.doc_id, 0, 0, (), (), list(big.chunks)), 0)
    manifest.close()
    assert manifest.stored == 0
    assert _count(tmp_path) == 0


def test_a_corrupt_entry_is_a_miss_with_one_warning(tmp_path: Path) -> None:
    notes: list[str] = []
    sources = [_source(tmp_path / f"{n}.txt") for n in range(3)]
    manifest = _open(tmp_path, notes)
    for source in sources:
        manifest.remember(_document(source), time.time_ns())
    manifest.close()
    with sqlite3.connect(tmp_path / MANIFEST_NAME) as db:
        update = "UPDATE documents SET entry = ? WHERE CAST(path AS TEXT) LIKE ?"
        db.execute(update, (b"garbage", "%0.txt"))
        db.execute(update, (bytes(9), "%1.txt"))
    db.close()
    again = _open(tmp_path, notes)
    try:
        assert [again.recall(source) is None for source in sources] == [True, True, False]
        assert again.corrupt == 2
    finally:
        again.close()
    assert len(notes) == 1
    assert "corrupt" in notes[0]
    assert "0.txt" in notes[0]


def test_a_corrupt_file_leaves_the_run_without_a_manifest(tmp_path: Path) -> None:
    notes: list[str] = []
    (tmp_path / MANIFEST_NAME).write_bytes(b"not a database at all, " * 200)
    manifest = _open(tmp_path, notes)
    source = _source(tmp_path / "a.txt")
    assert manifest.recall(source) is None
    manifest.remember(_document(source), time.time_ns())
    manifest.close()
    assert len(notes) == 1
    assert "remove it" in notes[0]


_WRITER = """
import sys, time
from pathlib import Path
from dscall.documents.manifest import open_manifest
from tests.unit.documents.test_manifest import KEY, _document, _source
folder, prefix = Path(sys.argv[1]), sys.argv[2]
manifest = open_manifest(folder / "cache", KEY, read=True, notify=print)
for n in range(300):
    manifest.remember(_document(_source(folder / f"{prefix}{n}.txt")), time.time_ns())
    if n % 7 == 0:
        manifest.flush()
manifest.close()
"""


def test_concurrent_writers_lose_nothing(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    writers = [
        subprocess.Popen([sys.executable, "-c", _WRITER, str(tmp_path), prefix], env=env)
        for prefix in ("a", "b", "c")
    ]
    assert [writer.wait(timeout=60) for writer in writers] == [0, 0, 0]
    assert _count(tmp_path / "cache") == 900
    notes: list[str] = []
    manifest = _open(tmp_path / "cache", notes)
    try:
        found = discover([str(tmp_path)], DiscoverySettings())
        recalled = [manifest.recall(s) for s in found if isinstance(s, SourceFile)]
        assert len(recalled) == 900
        assert all(d is not None for d in recalled)
    finally:
        manifest.close()
    assert notes == []


def _count(folder: Path) -> int:
    path = folder / MANIFEST_NAME
    if not path.exists():
        return 0
    db = sqlite3.connect(path)
    try:
        count: int = db.execute("SELECT count(*) FROM documents").fetchone()[0]
    finally:
        db.close()
    return count


@pytest.mark.parametrize("field", ["index", "text", "ocr"])
def test_a_wrongly_typed_chunk_is_refused(tmp_path: Path, field: str) -> None:
    import json

    source = _source(tmp_path / "a.txt")
    entry = json.loads(zlib.decompress(encode_document(_document(source))).lstrip(b"\x00"))
    position = {"index": 0, "text": 2, "ocr": 8}[field]
    entry[6][0][position] = "1" if field != "text" else 1
    with pytest.raises(ValueError, match="wrong type"):
        decode_document(source, zlib.compress(b"\x00" + json.dumps(entry).encode()))


def test_a_file_is_the_same_entry_by_relative_or_absolute_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    notes: list[str] = []
    (tmp_path / "docs").mkdir()
    absolute = _source(tmp_path / "docs" / "a.txt")
    monkeypatch.chdir(tmp_path / "docs")
    relative = next(discover(["a.txt"], DiscoverySettings()))
    assert isinstance(relative, SourceFile)
    assert relative.path == Path("a.txt")
    manifest = _open(tmp_path / "cache", notes)
    manifest.remember(_document(relative), time.time_ns())
    manifest.close()
    monkeypatch.chdir(tmp_path)
    again = _open(tmp_path / "cache", notes)
    try:
        assert again.recall(absolute) == _document(absolute)
    finally:
        again.close()


def test_with_ocr_a_document_with_warnings_is_not_remembered(tmp_path: Path) -> None:
    notes: list[str] = []
    warned, clean = _source(tmp_path / "a.txt"), _source(tmp_path / "b.txt")
    manifest = open_manifest(tmp_path, KEY, read=True, notify=notes.append, keep_warned=False)
    manifest.remember(_document(warned), time.time_ns())  # "page 2: odd"
    plain = _document(clean)
    document = ChunkedDocument(clean, plain.doc_id, 0, 0, (), (), plain.chunks)
    manifest.remember(document, time.time_ns())
    manifest.close()
    assert manifest.stored == 1


def test_one_lookup_answers_a_batch_of_hits_and_misses(tmp_path: Path) -> None:
    notes: list[str] = []
    sources = [_source(tmp_path / f"{n}.txt") for n in range(5)]
    manifest = _open(tmp_path / "cache", notes)
    for source in sources[:4]:  # the fifth was never seen
        manifest.remember(_document(source), time.time_ns())
    manifest.flush()
    sources[1] = _source(tmp_path / "1.txt", "Changed since.")
    try:
        entries = manifest.lookup(sources)
        assert [entry is not None for entry in entries] == [True, False, True, True, False]
        assert manifest.decode(sources[2], entries[2]) == _document(sources[2])
        assert manifest.misses == 2
    finally:
        manifest.close()
