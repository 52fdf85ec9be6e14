"""Settings files (SPEC §12): which are read, their TOML, where each key was written.

Two files, both optional: the project file (``./dscall.toml``, or ``--config FILE``, which must
exist) over the user file (``$XDG_CONFIG_HOME/dscall/config.toml``, else
``~/.config/dscall/config.toml``). ``DSCALL_NO_CONFIG=1`` skips both lookups (``--config`` is
still read), as ``UV_NO_CONFIG`` does for uv. Keys are never read from a file: a key that looks
like a secret (``api_key``, ``token``, ...) anywhere in a file is an error that says to name
the environment variable instead. Which keys an option takes, and the default map built from
them, is ``cli/config_keys.py``'s; ``[[endpoints]]`` and other arrays of tables are handed as
written to the code that reads them (``config_tables``).
"""

from __future__ import annotations

import os
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dscall.cli.toml_lines import TomlPath, key_lines
from dscall.errors import UsageError

PROJECT_FILE = "dscall.toml"
NO_CONFIG_ENV = "DSCALL_NO_CONFIG"
META_KEY = "dscall.settings_files"  # ctx.meta: the SettingsFiles of this invocation
# Arrays of tables a file may hold, read by the code that owns them (endpoints: SPEC §11).
TABLE_KINDS = frozenset({"endpoints"})

_SECRET_WORDS = {"key", "apikey", "token", "secret", "password", "passwd", "credentials"}
_SECRET_KEYS = {"auth", "authorization", "bearer", "credential"}
# A key pasted as a value (a header line, say): DeepSeek's and OpenAI's sk-..., a bearer token.
_SECRET_VALUE = re.compile(r"(?<![A-Za-z0-9])sk-[A-Za-z0-9_-]{16,}|\bBearer\s+\S{8,}")


@dataclass(frozen=True, slots=True)
class ConfigTable:
    """One ``[[kind]]`` entry of a settings file, as written, with where each key is."""

    values: dict[str, Any]  # the table as written
    origin: str  # "PATH:LINE" of its [[...]] header
    key_origins: dict[str, str]  # key -> "PATH:LINE"


@dataclass(frozen=True, slots=True)
class SettingsFile:
    path: Path  # as opened
    shown: str  # as messages name it: ./dscall.toml, ~/.config/dscall/config.toml
    data: dict[str, Any]
    lines: dict[TomlPath, int] = field(repr=False)

    def origin(self, *path: str | int) -> str:
        """``"FILE:LINE"`` of ``path`` (or of its nearest written parent)."""
        for end in range(len(path), 0, -1):
            line = self.lines.get(path[:end])
            if line is not None:
                return f"{self.shown}:{line}"
        return self.shown

    def tables(self, kind: str) -> list[ConfigTable]:
        entries = self.data.get(kind)
        if not isinstance(entries, list):
            return []
        return [
            ConfigTable(
                values=dict(entry),
                origin=self.origin(kind, index),
                key_origins={key: self.origin(kind, index, key) for key in entry},
            )
            for index, entry in enumerate(entries)
            if isinstance(entry, dict)
        ]


@dataclass(frozen=True, slots=True)
class SettingsFiles:
    """The files of one invocation, lowest precedence first (user, then project)."""

    files: tuple[SettingsFile, ...] = ()
    looked_for: tuple[str, ...] = ()  # every file considered, as shown, found or not

    def tables(self, kind: str) -> list[ConfigTable]:
        """The highest file's tables of ``kind``: a project's endpoints replace the user's."""
        for settings in reversed(self.files):
            found = settings.tables(kind)
            if found:
                return found
        return []


def user_file() -> Path:
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "dscall" / "config.toml"


def shown_path(path: Path) -> str:
    """``path`` as a message shows it: under the home folder with ``~``."""
    try:
        return "~/" + path.relative_to(Path.home()).as_posix()
    except ValueError:
        return str(path)


def find_settings_files(explicit: Path | None) -> SettingsFiles:
    """Read the user file and the project file (``explicit``, else ./dscall.toml)."""
    skip = os.environ.get(NO_CONFIG_ENV, "").strip().lower() in {"1", "true", "yes", "on"}
    found: list[SettingsFile] = []
    looked: list[str] = []
    candidates: list[tuple[Path, str]] = []
    if not skip:
        user = user_file()
        candidates.append((user, shown_path(user)))
        if explicit is None:
            candidates.append((Path(PROJECT_FILE), f"./{PROJECT_FILE}"))
    for path, shown in candidates:
        looked.append(shown)
        if path.is_file():
            found.append(read_settings_file(path, shown))
    if explicit is not None:
        looked.append(str(explicit))
        if not explicit.is_file():
            what = "is not a file" if explicit.exists() else "does not exist"
            raise UsageError(f"--config {explicit} {what}")
        found.append(read_settings_file(explicit, str(explicit)))
    return SettingsFiles(tuple(found), tuple(looked))


def read_settings_file(path: Path, shown: str) -> SettingsFile:
    """Parse one file; a TOML error or a secret in it is a one-line UsageError."""
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover - Python 3.10
        import tomli as tomllib

    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"{shown}: cannot read: {exc}") from exc
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise UsageError(_syntax_error(shown, exc)) from None
    settings = SettingsFile(path, shown, data, key_lines(text))
    _refuse_secrets(settings, data, ())
    return settings


def _syntax_error(shown: str, exc: Exception) -> str:
    message = str(exc)
    where = re.search(r"\s*\(at line (\d+), column (\d+)\)$", message)
    if where is None:
        return f"{shown}: not valid TOML: {message}"
    line, column = where.groups()
    return f"{shown}:{line}: not valid TOML: {message[: where.start()]} (column {column})"


def looks_secret(key: str) -> bool:
    words = [word for word in re.split(r"[-_.\s]+", key.lower()) if word]
    return bool(words) and (words[-1] in _SECRET_WORDS or "-".join(words) in _SECRET_KEYS)


def _refuse_secrets(settings: SettingsFile, value: Any, path: TomlPath) -> None:
    if isinstance(value, str) and _SECRET_VALUE.search(value):
        raise UsageError(
            f"{settings.origin(*path)}: the value of '{path[-1]}' looks like a key, and keys are "
            "never read from files: put it in an environment variable and name that instead"
        )
    if isinstance(value, list):
        for index, item in enumerate(value):
            _refuse_secrets(settings, item, (*path, index))
        return
    if not isinstance(value, dict):
        return
    for key, item in value.items():
        if looks_secret(key):
            raise UsageError(
                f"{settings.origin(*path, key)}: '{key}' looks like a secret, and keys are "
                "never read from files: name the environment variable that holds it "
                'instead (api_key_env = "MY_VAR")'
            )
        _refuse_secrets(settings, item, (*path, key))


def config_tables(kind: str) -> list[ConfigTable]:
    """The ``[[kind]]`` tables of this invocation's settings (the project file's if it has
    any, else the user file's); outside a command, those of the files found from here."""
    from typer._click.globals import get_current_context

    ctx = get_current_context(silent=True)
    files = ctx.meta.get(META_KEY) if ctx is not None else None
    if not isinstance(files, SettingsFiles):
        files = find_settings_files(None)
    return files.tables(kind)
