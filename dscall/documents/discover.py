"""Command-line arguments -> the files to read, lazily, in a deterministic order.

``discover`` yields ``SourceFile`` for each document to read and ``SkippedFile`` (with a
one-line reason) for each path it passes over that the user should hear about. It holds one
sorted directory listing per level of the folder being walked, never the whole tree, so a
folder of 100,000 files streams through.

Choices made where the SPEC is silent:

- Arguments are taken in the order given. A path that exists is used as is (even if it holds
  ``*``); otherwise an argument with ``* ? [`` is a glob (``**`` recursive), expanded and sorted,
  each match then treated as if given by hand. Nothing found: ``SkippedFile(kind="missing")``.
- Folders are walked depth first, each folder's entries sorted by name (code point order), and
  symbolic links are followed. Every folder walked under one argument is remembered by
  ``(st_dev, st_ino)``: one met again (a link back to a parent, or a second link to the same
  folder) is reported as ``kind="loop"`` and not walked twice. A link that points at itself
  (or a chain of links that ends where it began) fails ``stat`` with ELOOP: ``kind="loop"``.
- ``doc_path`` (``SourceFile.rel_path``): relative to the folder argument the file was found
  under (``docs/`` + ``docs/a/x.pdf`` -> ``a/x.pdf``); for a file argument, the argument as
  given, normalised (``./x.pdf`` -> ``x.pdf``), absolute stays absolute; always POSIX. Bytes
  in a file name that are not UTF-8 appear as ``\\xNN`` escapes, so the value always fits a
  Parquet string. The same file reached twice (through two arguments) is read twice.
- ``--include``/``--exclude`` are fnmatch patterns (case-sensitive, ``*`` also crosses ``/``)
  matched against the relative path and against the bare file name. Exclude wins, also prunes
  folders, and applies to file arguments too; include only filters files. Filtered and hidden
  entries are dropped silently: the user asked for that.
- Hidden means a name starting with ``.``; skipped inside folders and globs unless
  ``include_hidden``. A hidden file or folder named explicitly on the command line is read.
- Unreadable: a file the user cannot read, a folder that cannot be listed, a broken link, and
  anything that is not a regular file (FIFO, socket, device: opening one could block forever)
  are ``kind="unreadable"``.
- Listing a folder when no file descriptor is free (EMFILE/ENFILE) waits and tries again
  (``dscall.fdlimit``) rather than reporting the folder unreadable.

``SkippedFile.path`` is already made ``printable``: control characters and ANSI escapes in
file names are shown escaped, never sent raw to a terminal.
"""

from __future__ import annotations

import errno
import glob
import os
import re
import stat
import sys
from collections.abc import Iterator, Sequence
from fnmatch import fnmatchcase
from pathlib import Path, PurePath
from typing import cast

from dscall.config import SUPPORTED_SUFFIXES, DiscoverySettings
from dscall.fdlimit import retry_out_of_fds
from dscall.types import DocType, SkippedFile, SourceFile

_GLOB_MAGIC = re.compile(r"[*?[]")
Found = SourceFile | SkippedFile


def discover(paths: Sequence[str], settings: DiscoverySettings) -> Iterator[Found]:
    """Files to read (and paths skipped, with reasons) for the command-line ``paths``."""
    walker = _Walker(settings)
    for argument in paths:
        yield from walker.argument(argument)


def printable(text: str) -> str:
    """``text`` safe to print on a terminal: undecodable bytes, control characters, ANSI
    escapes and invisible format characters (e.g. right-to-left overrides) escaped."""
    text = utf8_safe(text)
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else c.encode("unicode_escape").decode() for c in text)


def utf8_safe(text: str) -> str:
    """Undecodable bytes of a file name (lone surrogates) as ``\\xNN`` escapes."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
    return text


class _Walker:
    def __init__(self, settings: DiscoverySettings) -> None:
        self._settings = settings
        self._visited: set[tuple[int, int]] = set()

    def argument(self, argument: str) -> Iterator[Found]:
        if not argument:
            yield SkippedFile("''", "empty path", "missing")
        elif os.path.lexists(argument):
            yield from self._path_argument(argument)
        elif _GLOB_MAGIC.search(argument):
            matches = sorted(_glob(argument, self._settings.include_hidden))
            if not matches:
                yield SkippedFile(printable(argument), "no file matches this pattern", "missing")
            for match in matches:
                yield from self._path_argument(match)
        else:
            yield SkippedFile(printable(argument), "no such file or folder", "missing")

    def _path_argument(self, path: str) -> Iterator[Found]:
        info = _stat(path)
        if isinstance(info, SkippedFile):
            yield info
        elif stat.S_ISDIR(info.st_mode):
            yield from self._walk(path, info)
        else:
            rel = PurePath(os.path.normpath(path)).as_posix()
            found = self._file(path, rel, info)
            if found is not None:
                yield found

    def _walk(self, root: str, info: os.stat_result) -> Iterator[Found]:
        # Loops are looked for within one folder argument: a folder given twice (or inside
        # another argument) is read again, like a file given twice.
        self._visited = {(info.st_dev, info.st_ino)}
        listing = _list(root)
        if isinstance(listing, SkippedFile):
            yield listing
            return
        # One (folder path, relative prefix, sorted entries, position) per level, plus the
        # (dev, ino) of each open level to tell a loop back to a parent from a second link.
        stack: list[tuple[str, str, list[str], int]] = [(root, "", listing, 0)]
        open_levels: list[tuple[int, int]] = [(info.st_dev, info.st_ino)]
        while stack:
            folder, prefix, names, position = stack[-1]
            if position == len(names):
                stack.pop()
                open_levels.pop()
                continue
            stack[-1] = (folder, prefix, names, position + 1)
            name = names[position]
            if name.startswith(".") and not self._settings.include_hidden:
                continue
            path = os.path.join(folder, name)
            rel = prefix + name
            entry = _stat(path)
            if isinstance(entry, SkippedFile):
                yield entry
            elif stat.S_ISDIR(entry.st_mode):
                if _matches(self._settings.exclude, rel):
                    continue
                key = (entry.st_dev, entry.st_ino)
                if key in self._visited:
                    reason = (
                        "symbolic link loop: leads back to a parent folder"
                        if key in open_levels
                        else "folder already read through another symbolic link"
                    )
                    yield SkippedFile(printable(path), reason, "loop")
                    continue
                self._visited.add(key)
                sub = _list(path)
                if isinstance(sub, SkippedFile):
                    yield sub
                    continue
                stack.append((path, rel + "/", sub, 0))
                open_levels.append(key)
            else:
                found = self._file(path, rel, entry)
                if found is not None:
                    yield found

    def _file(self, path: str, rel: str, info: os.stat_result) -> Found | None:
        settings = self._settings
        if _matches(settings.exclude, rel):
            return None
        if settings.include and not _matches(settings.include, rel):
            return None
        if not stat.S_ISREG(info.st_mode):
            return SkippedFile(
                printable(path), "not a regular file (a FIFO, socket or device)", "unreadable"
            )
        suffix = os.path.splitext(rel)[1].lower()
        doc_type = SUPPORTED_SUFFIXES.get(suffix)
        if doc_type is None:
            kind = f"'{printable(suffix)}'" if suffix else "(no extension)"
            return SkippedFile(
                printable(path),
                f"unsupported file type {kind} (reads .pdf .docx .txt .md)",
                "unsupported",
            )
        if not _readable(path):
            return SkippedFile(printable(path), "permission denied", "unreadable")
        return SourceFile(
            Path(path),
            utf8_safe(rel),
            cast(DocType, doc_type),
            info.st_size,
            info.st_mtime_ns,
            info.st_ctime_ns,
            info.st_ino,
        )


def _glob(pattern: str, include_hidden: bool) -> list[str]:
    if sys.version_info >= (3, 11) and include_hidden:
        return glob.glob(pattern, recursive=True, include_hidden=True)
    return glob.glob(pattern, recursive=True)


def _matches(patterns: Sequence[str], rel: str) -> bool:
    name = rel.rsplit("/", 1)[-1]
    return any(fnmatchcase(rel, pattern) or fnmatchcase(name, pattern) for pattern in patterns)


def _readable(path: str) -> bool:
    # effective_ids: under sudo/setuid the process opens files as its effective user.
    if os.access in os.supports_effective_ids:
        return os.access(path, os.R_OK, effective_ids=True)
    return os.access(path, os.R_OK)


def _stat(path: str) -> os.stat_result | SkippedFile:
    """``os.stat`` (following links), or the reason it failed as a SkippedFile."""
    try:
        return os.stat(path)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            return SkippedFile(printable(path), "symbolic link loop", "loop")
        if exc.errno == errno.ENOENT and os.path.islink(path):
            return SkippedFile(printable(path), "broken symbolic link", "unreadable")
        if exc.errno == errno.ENOENT:
            return SkippedFile(printable(path), "vanished while listed", "missing")
        return SkippedFile(printable(path), _reason(exc), "unreadable")


def _list(folder: str) -> list[str] | SkippedFile:
    """The sorted names in ``folder``, or why it cannot be listed."""

    def names() -> list[str]:
        with os.scandir(folder) as entries:
            return sorted(entry.name for entry in entries)

    try:
        # Listing takes a descriptor; none free is dscall's limit, not the folder's: wait.
        return retry_out_of_fds(names)
    except OSError as exc:
        return SkippedFile(printable(folder), f"cannot list folder: {_reason(exc)}", "unreadable")


def _reason(exc: OSError) -> str:
    if isinstance(exc, PermissionError):
        return "permission denied"
    return (exc.strerror or str(exc)).lower()
