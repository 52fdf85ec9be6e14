"""Each option's settings-file key and environment variable, the check of a file's keys and
values against the options, and the default map Click reads them from (SPEC §12).

An option's key is its long flag without the dashes (``--max-concurrency`` ->
``max-concurrency``; ``max_concurrency`` is read as the same key) and its environment variable
``DSCALL_`` and the key in capitals (``DSCALL_MAX_CONCURRENCY``). Top-level keys apply to every
command that has the option; a ``[process]``, ``[chunks]``, ``[compare]`` or ``[cache]`` table
overrides them for that command; ``[mock-server]`` alone sets the simulator's (``TABLES``).
Click does the precedence (flag > environment > default map > default): the default map is the
user file's keys with the project file's over them.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dscall.cli.config_file import TABLE_KINDS, SettingsFile, SettingsFiles
from dscall.config import API_KEY_ENV
from dscall.errors import UsageError

# The commands whose settings `config show` lists, each also a table name.
COMMANDS = ("process", "chunks", "compare")
# Every table of settings a file may hold: those, and two commands with fewer settings.
# mock-server's options are the simulated server's (its --max-concurrency or --rpm are not the
# client's): only its own table sets them, never a top-level key, and their variables are
# DSCALL_MOCK_SERVER_*. cache stats|clear take only where the cache is: top-level cache-dir
# and cache-url apply to them as to process; what to clear, and the --yes that skips asking,
# are said on the command line only.
TABLES = (*COMMANDS, "cache", "mock-server")
TABLE_ONLY = frozenset({"mock-server"})
_ONLY_KEYS = {"cache": frozenset({"cache-dir", "cache-url"})}
# On a command: the table its settings come from; "" for a command that reads and checks the
# files (it takes --config) but has no settings of its own (show, export, config show).
TABLE_ATTR = "_dscall_table"
API_KEY_ENV_KEY = "api-key-env"  # names the variable holding the key; not an option
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_NOT_SETTINGS = {"help", "config", "api_key"}  # the key itself: only ever from the env


def option_key(param: Any) -> str:
    long = [opt for opt in param.opts if opt.startswith("--")] or param.opts
    return str(long[0]).lstrip("-")


def env_name(key: str) -> str:
    return "DSCALL_" + key.upper().replace("-", "_")


def normal(key: str) -> str:
    return key.replace("_", "-")


def settings_params(command: Any) -> dict[str, Any]:
    """The options of ``command`` that a file may set, by key."""
    table = getattr(command, TABLE_ATTR, None)
    if table == "":
        return {}
    only = _ONLY_KEYS.get(table or "")
    return {
        option_key(param): param
        for param in command.params
        if getattr(param, "param_type_name", "") == "option"
        and param.name not in _NOT_SETTINGS
        and param.expose_value
        and (only is None or option_key(param) in only)
    }


def table_params(root: Any) -> dict[str, dict[str, Any]]:
    """The settings of each table's command, by key (a group's: its subcommands' together)."""
    commands = getattr(root, "commands", None) or {}
    found: dict[str, dict[str, Any]] = {}
    for name in TABLES:
        command = commands.get(name)
        if command is None:
            continue
        merged: dict[str, Any] = {}
        for each in list(getattr(command, "commands", {}).values()) or [command]:
            merged.update(settings_params(each))
        found[name] = merged
    return found


def env_name_of(table: str, key: str) -> str:
    """The variable of ``key`` of the command of ``table``."""
    return env_name(f"{table}-{key}" if table in TABLE_ONLY else key)


@dataclass(frozen=True, slots=True)
class Setting:
    """One key's value as the default map holds it, and where it was written."""

    value: Any
    origin: str  # "FILE:LINE"


def check_files(files: SettingsFiles, params: dict[str, dict[str, Any]]) -> None:
    """Every key of every file is an option of some command, of the right type and value."""
    every = {
        key: param
        for name, command in params.items()
        if name not in TABLE_ONLY
        for key, param in command.items()
    }
    for settings in files.files:
        top = {k: v for k, v in settings.data.items() if not _is_table(k)}
        _check_table(settings, (), top, every, params)
        for name, value in settings.data.items():
            if normal(name) in params:
                if not isinstance(value, dict):
                    raise UsageError(f"{settings.origin(name)}: '{name}' must be a table")
                _check_table(settings, (name,), value, params[normal(name)], params)
            elif name in TABLE_KINDS and not _is_array_of_tables(value):
                raise UsageError(
                    f"{settings.origin(name)}: '{name}' must be an array of tables ([[{name}]])"
                )


def _is_table(name: str) -> bool:
    return normal(name) in TABLES or name in TABLE_KINDS


def _is_array_of_tables(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(item, dict) for item in value)


def _check_table(
    settings: SettingsFile,
    where: tuple[str, ...],
    table: dict[str, Any],
    known: dict[str, Any],
    params: dict[str, dict[str, Any]],
) -> None:
    seen: dict[str, str] = {}
    for key, value in table.items():
        origin = settings.origin(*where, key)
        canonical = normal(key)
        if canonical in seen:
            raise UsageError(f"{origin}: '{key}' is set twice (also as '{seen[canonical]}')")
        seen[canonical] = key
        if canonical == API_KEY_ENV_KEY:
            _check_env_name(origin, key, value)
            continue
        param = known.get(canonical)
        if param is None:
            raise UsageError(f"{origin}: {_unknown(key, where, known, params)}")
        problem = value_problem(param, value)
        if problem:
            raise UsageError(f"{origin}: '{key}' {problem}")


def _unknown(
    key: str, where: tuple[str, ...], known: dict[str, Any], params: dict[str, dict[str, Any]]
) -> str:
    import difflib  # only for a message

    canonical = normal(key)
    owners = [name for name, command in params.items() if canonical in command]
    if owners and where:  # an option of another command, in a command's table
        return f"unknown key '{key}' for {where[0]} (an option of {', '.join(owners)})"
    if owners:  # an option only a command's own table sets
        return f"'{key}' is an option of {owners[0]}: set it in a [{owners[0]}] table"
    names = [*known, API_KEY_ENV_KEY, *([] if where else [*TABLES, *TABLE_KINDS])]
    # Two letters swapped first ('modle' is 'model', though difflib prefers 'mode').
    swapped = [name for name in names if sorted(name) == sorted(canonical)]
    close = swapped or difflib.get_close_matches(canonical, names, n=1)
    if not close:
        return f"unknown key '{key}' (see: dscall config show)"
    suggestion = close[0] if "_" not in key else close[0].replace("-", "_")
    return f"unknown key '{key}' (did you mean '{suggestion}'?)"


def _check_env_name(origin: str, key: str, value: Any) -> None:
    if not isinstance(value, str) or not _ENV_NAME.fullmatch(value):
        # Not echoed: a key pasted here by mistake must not land in a log.
        raise UsageError(
            f"{origin}: '{key}' must be the name of an environment variable (letters, "
            'digits and _, e.g. "DEEPSEEK_API_KEY"), never the key itself'
        )


def value_problem(param: Any, value: Any) -> str | None:
    """Why ``value`` (as TOML gave it) does not suit ``param``, or None."""
    expected = _toml_kind(param)
    values = value if param.multiple and isinstance(value, list) else [value]
    if param.multiple and not isinstance(value, list):
        return f"must be an array of {expected}s, not {_kind_of(value)}"
    for item in values:
        if not _matches(expected, item):
            shown = f"an array of {expected}s" if param.multiple else _article(expected)
            return f"must be {shown}, not {_kind_of(item)}"
        choices = param.type_descriptor.choices
        if choices is not None and item not in choices:
            listed = ", ".join(str(choice) for choice in choices)
            return f"must be one of {listed}, not {item!r}"
        low, high = getattr(param, "min", None), getattr(param, "max", None)
        if low is not None and item < low:
            return f"must be at least {low}, not {item}"
        if high is not None and item > high:
            return f"must be at most {high}, not {item}"
    return None


def _toml_kind(param: Any) -> str:
    if param.is_flag:
        return "boolean"
    descriptor = param.type_descriptor
    annotation = descriptor.annotation
    if descriptor.is_list:
        annotation = getattr(annotation, "__args__", (str,))[0]
    if descriptor.choices is None and annotation is int:
        return "integer"
    if descriptor.choices is None and annotation is float:
        return "number"
    return "string"


def _matches(expected: str, value: Any) -> bool:
    if isinstance(value, bool):
        return expected == "boolean"
    if expected == "integer":
        return isinstance(value, int)
    if expected == "number":
        return isinstance(value, (int, float))
    return isinstance(value, str) if expected == "string" else False


def _kind_of(value: Any) -> str:
    names = {bool: "a boolean", int: "an integer", float: "a number", str: "a string"}
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "a table"
    return names.get(type(value), type(value).__name__)


def file_settings(files: SettingsFiles, command: str, params: dict[str, Any]) -> dict[str, Setting]:
    """The settings of ``command`` from the files, by key: top-level keys, then the
    command's table, the user file first and the project file over it."""
    found: dict[str, Setting] = {}
    for settings in files.files:
        table = settings.data.get(command)
        layers = [((), settings.data), ((command,), table if isinstance(table, dict) else {})]
        if command in TABLE_ONLY:
            layers = layers[1:]
        for where, values in layers:
            for key, value in values.items():
                canonical = normal(key)
                param = params.get(canonical)
                if param is None and canonical != API_KEY_ENV_KEY:
                    continue
                if param is not None and param.type_descriptor.is_path:
                    value = _relative_to(settings, value)
                found[canonical] = Setting(value, settings.origin(*where, key))
    return found


def _relative_to(settings: SettingsFile, value: Any) -> Any:
    """A path written in a file is relative to the file's folder; ``~`` is the home."""
    if isinstance(value, list):
        return [_relative_to(settings, item) for item in value]
    path = Path(os.path.expanduser(value))
    folder = settings.path.parent
    return str(path if path.is_absolute() or folder == Path() else folder / path)


def key_env(found: dict[str, Setting]) -> tuple[str, str]:
    """The variable holding the API key and where that was said: DSCALL_API_KEY_ENV, else
    the files' api-key-env, else DEEPSEEK_API_KEY."""
    named = os.environ.get(env_name(API_KEY_ENV_KEY), "").strip()
    if named:
        if not _ENV_NAME.fullmatch(named):
            raise UsageError(
                f"{env_name(API_KEY_ENV_KEY)} must be the name of an environment variable, "
                "never the key itself"
            )
        return named, f"env {env_name(API_KEY_ENV_KEY)}"
    setting = found.get(API_KEY_ENV_KEY)
    if setting is not None:
        return str(setting.value), setting.origin
    return API_KEY_ENV, "default"


def _article(kind: str) -> str:
    return f"an {kind}" if kind[0] in "aeiou" else f"a {kind}"
