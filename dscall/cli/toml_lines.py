"""The line of each key and table header of a TOML document, for messages that say where.

``tomllib`` parses but forgets positions, so this walks the text once more, after tomllib has
accepted it (the text is valid TOML): table headers, ``[[array]]`` headers (numbered in
order), and ``key = value`` lines, skipping what sits inside multi-line strings and arrays.
A path is the tuple of keys from the document's root, an array of tables' entries by index:
``("endpoints", 1, "base_url")`` is the second ``[[endpoints]]``'s ``base_url``.
"""

from __future__ import annotations

import re

TomlPath = tuple[str | int, ...]

_BARE = re.compile(r"[A-Za-z0-9_-]+")
_ESCAPES = {'"': '"', "\\": "\\", "n": "\n", "t": "\t", "r": "\r", "b": "\b", "f": "\f"}


def key_lines(text: str) -> dict[TomlPath, int]:
    """Each key's and each table's path -> the 1-based line where it is first written."""
    lines: dict[TomlPath, int] = {}
    arrays: dict[TomlPath, int] = {}  # an array of tables' path -> entries so far
    table: TomlPath = ()
    value = _ValueScan()
    for number, line in enumerate(text.splitlines(), 1):
        if value.open:
            value.feed(line)
            continue
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        if stripped.startswith("[["):
            parts, _ = _key(stripped, 2)
            parent = _resolve(parts[:-1], arrays)
            path = (*parent, parts[-1])
            arrays[path] = arrays.get(path, 0) + 1
            lines.setdefault(path, number)
            table = (*path, arrays[path] - 1)
            lines.setdefault(table, number)
        elif stripped.startswith("["):
            parts, _ = _key(stripped, 1)
            table = _resolve(parts, arrays)
            lines.setdefault(table, number)
        else:
            parts, end = _key(stripped, 0)
            for depth in range(1, len(parts) + 1):  # a.b = 1 also writes table a
                lines.setdefault((*table, *parts[:depth]), number)
            equals = stripped.find("=", end)
            value.feed(stripped[equals + 1 :])
    return lines


def _resolve(parts: list[str], arrays: dict[TomlPath, int]) -> TomlPath:
    """The path of a table header's name: an array of tables stands for its last entry."""
    path: TomlPath = ()
    for part in parts:
        path = (*path, part)
        if path in arrays:
            path = (*path, arrays[path] - 1)
    return path


def _key(text: str, start: int) -> tuple[list[str], int]:
    """The dotted key starting at ``start`` (bare or quoted parts) and where it ends."""
    parts: list[str] = []
    at = start
    while at < len(text):
        while at < len(text) and text[at] in " \t":
            at += 1
        if at < len(text) and text[at] in "\"'":
            part, at = _quoted(text, at)
        else:
            match = _BARE.match(text, at)
            if match is None:
                break
            part, at = match.group(), match.end()
        parts.append(part)
        while at < len(text) and text[at] in " \t":
            at += 1
        if at < len(text) and text[at] == ".":
            at += 1
            continue
        break
    return parts, at


def _quoted(text: str, at: int) -> tuple[str, int]:
    quote = text[at]
    out: list[str] = []
    at += 1
    while at < len(text) and text[at] != quote:
        if quote == '"' and text[at] == "\\" and at + 1 < len(text):
            at += 1
            out.append(_ESCAPES.get(text[at], text[at]))
        else:
            out.append(text[at])
        at += 1
    return "".join(out), at + 1


class _ValueScan:
    """Follows a value over lines: open while inside a multi-line string or array."""

    def __init__(self) -> None:
        self.depth = 0  # open [ and { brackets
        self.string: str | None = None  # the open multi-line string's delimiter

    @property
    def open(self) -> bool:
        return self.depth > 0 or self.string is not None

    def feed(self, text: str) -> None:
        at = 0
        while at < len(text):
            if self.string is not None:
                if self.string == '"""' and text[at] == "\\":
                    at += 2
                    continue
                if text.startswith(self.string, at):
                    at += 3
                    while at < len(text) and text[at] == self.string[0]:
                        at += 1  # up to two quotes may end the content
                    self.string = None
                    continue
                at += 1
                continue
            char = text[at]
            if text.startswith('"""', at) or text.startswith("'''", at):
                self.string = text[at : at + 3]
                at += 3
            elif char in "\"'":
                _, at = _quoted(text, at)
            elif char == "#":
                return
            else:
                if char in "[{":
                    self.depth += 1
                elif char in "]}":
                    self.depth -= 1
                at += 1
