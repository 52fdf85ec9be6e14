"""`dscall config show`: every setting's effective value and where it came from (SPEC §12).

The values are not worked out again here: each command's context is built as a run would build
it (``--config`` and all), and Click says where each value came from
(``ctx.get_parameter_source``): ``default``, ``env DSCALL_X``, or the file and line of the
key. ``process`` is shown whole, ``chunks``, ``compare`` and ``cache`` where they differ from it,
``mock-server`` (whose settings only its own table sets) whole. The API key is shown as set or
not set, never its value.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from typing import Any

import typer

from dscall.cli import config_keys, config_params
from dscall.cli.app import app, run
from dscall.secret_urls import public_url

config_app = typer.Typer(
    name="config",
    help="The settings dscall reads: ./dscall.toml (or --config FILE), the user file, "
    "DSCALL_* environment variables.",
    no_args_is_help=True,
)
app.add_typer(config_app, name="config")


@dataclass(frozen=True, slots=True)
class Shown:
    key: str
    value: str  # as TOML writes it, or a word: "not set", "set"
    source: str  # default, env NAME, FILE:LINE


@config_app.command("show")
def show(ctx: typer.Context) -> None:
    """Print every setting of process (and of chunks, compare and cache where they differ,
    and of mock-server), its value and where it came from: the file and line of its key,
    env DSCALL_X, or default.
    Precedence: flag > environment > project file (./dscall.toml or --config) > user file >
    default.

    Exit codes: 0 shown; 2 a settings file or variable is not valid.
    """

    def body() -> int:
        from dscall.progress import choose_mode

        files = config_params.settings_files(ctx)
        found = {settings.shown for settings in files.files}
        looked = [f"{name}{'' if name in found else ' (not found)'}" for name in files.looked_for]
        sections = _sections(ctx)
        if choose_mode(False, sys.stdout) == "rich":
            _print_tables(looked, sections)
        else:
            _print_plain(looked, sections)
        return 0

    run(body)


def _sections(ctx: typer.Context) -> list[tuple[str, list[Shown]]]:
    root: Any = ctx.find_root().command
    explicit = ctx.meta.get(config_params.CONFIG_PATH_KEY)
    args = ["--config", str(explicit)] if explicit is not None else []
    shown: dict[str, list[Shown]] = {}
    ctx.meta[config_params.SHOWING_KEY] = True
    for name in config_keys.COMMANDS:
        command = root.commands[name]
        with command.make_context(name, [*args, "."], parent=ctx.find_root()) as sub:
            shown[name] = _settings(sub, command)
    # cache: its stats (clear takes the same settings); mock-server: no input to name.
    cache = root.commands["cache"].commands["stats"]
    with cache.make_context("stats", list(args), parent=ctx.find_root()) as sub:
        shown["cache"] = _settings(sub, cache)
    mock = root.commands["mock-server"]
    with mock.make_context("mock-server", list(args), parent=ctx.find_root()) as sub:
        mock_server = _settings(sub, mock)
    first = {row.key: row for row in shown["process"]}
    sections = [("process", shown["process"])]
    for name in [*config_keys.COMMANDS[1:], "cache"]:
        differ = [row for row in shown[name] if first.get(row.key) != row]
        sections.append((f"{name} (where it differs from process)", differ))
    sections.append(("mock-server", mock_server))
    return sections


def _settings(ctx: Any, command: Any) -> list[Shown]:
    origins = ctx.meta.get(config_params.ORIGINS_KEY, {})
    rows: list[Shown] = []
    for key, param in config_keys.settings_params(command).items():
        source = ctx.get_parameter_source(param.name)
        if source is not None and source.name == "ENVIRONMENT":
            where = f"env {param.envvar}"
        elif source is not None and source.name == "DEFAULT_MAP":
            where = origins.get(key, "settings file")
        else:
            where = "default"
        value = ctx.params.get(param.name)
        if key == "cache-url" and value:  # its password is a secret
            value = public_url(value)
        rows.append(Shown(key, _toml(value), where))
    sends = getattr(command, config_keys.TABLE_ATTR, "") not in config_keys.TABLE_ONLY
    if sends and any(param.name == "api_key" for param in command.params):
        variable, said = ctx.meta[config_params.KEY_ENV_KEY]
        rows.append(Shown(config_keys.API_KEY_ENV_KEY, _toml(variable), said))
        key_set = bool(ctx.params.get("api_key"))  # the value itself is never shown
        rows.append(Shown("api-key", "set" if key_set else "not set", f"env {variable}"))
    return rows


def _toml(value: Any) -> str:
    """``value`` as a TOML file would hold it; "not set" for None."""
    if value is None:
        return "not set"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml(item) for item in value) + "]"
    return json.dumps(str(value), ensure_ascii=False)


def _print_plain(looked: list[str], sections: list[tuple[str, list[Shown]]]) -> None:
    """Nearly a settings file: ``key = value  # source`` lines under ``[command]``."""
    from dscall.progress import escape_controls

    lines = [f"# files: {', '.join(looked)}"]
    for title, rows in sections:
        name, _, note = title.partition(" ")
        lines.append(f"\n[{name}]" + (f"  # {note.strip('()')}" if note else ""))
        settings = [f"{row.key} = {_plain_value(row.value)}" for row in rows]
        width = min(48, max(map(len, settings), default=0))
        for setting, row in zip(settings, rows, strict=True):
            lines.append(f"{setting:<{width}}  # {row.source}")
    sys.stdout.write(escape_controls("\n".join(lines), keep_newlines=True) + "\n")


def _plain_value(value: str) -> str:
    return f"({value})" if value in ("not set", "set") else value


def _print_tables(looked: list[str], sections: list[tuple[str, list[Shown]]]) -> None:
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    from dscall.progress import escape_controls

    console = Console(highlight=False)
    console.print(Text(f"files: {escape_controls(', '.join(looked))}"))
    for title, rows in sections:
        table = Table(title=title, title_justify="left")
        table.add_column("setting", no_wrap=True)
        table.add_column("value", overflow="fold")
        table.add_column("source", no_wrap=True)
        for row in rows:
            table.add_row(
                *(Text(escape_controls(cell)) for cell in (row.key, row.value, row.source))
            )
        console.print(table)
