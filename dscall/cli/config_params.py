"""Settings files and environment variables wired into the commands, once the tree is built.

``install(root)`` gives every option of ``process``, ``chunks`` and ``compare``, and the
settings of ``cache stats|clear`` and ``mock-server`` (``config_keys.TABLES``), its ``DSCALL_*``
variable (shown in ``--help``; options that had one keep it) and each of those commands, and
``show``, ``export`` and ``config show``, a ``--config FILE`` option. That option is eager:
Click handles it before any other, whether given or not, and its callback reads and checks the
files and sets the command's ``ctx.default_map``, so that Click's own precedence (flag >
environment > default map > default) decides each value and ``ctx.get_parameter_source`` says
which won. A bad file stops the command there, before anything is read or sent.

``--api-key``'s variable is ``DEEPSEEK_API_KEY``, or the one a file's ``api-key-env`` (or
``DSCALL_API_KEY_ENV``) names: the key itself is never in a file.
"""

from __future__ import annotations

import copy
import os
from pathlib import Path
from typing import Annotated, Any

import typer

from dscall.cli import config_keys
from dscall.cli.config_file import META_KEY, SettingsFiles, find_settings_files
from dscall.config import API_KEY_ENV
from dscall.errors import EXIT_USAGE, DscallError

ORIGINS_KEY = "dscall.setting_origins"  # ctx.meta: key -> "FILE:LINE" of the default map
KEY_ENV_KEY = "dscall.api_key_env"  # ctx.meta: (variable, where that was said)
CONFIG_PATH_KEY = "dscall.config_path"  # ctx.meta: --config FILE as given, or None
SHOWING_KEY = "dscall.showing"  # ctx.meta: `config show` builds the contexts, runs nothing


# Commands that take --config without settings of their own: a bad file is reported as by
# every other command, and `dscall show --config FILE` is not a usage error.
CONFIG_ONLY = ("show", "export", "config")


def install(root: Any) -> None:
    """Env vars and ``--config`` on the commands that read settings; idempotent."""
    for name, command in getattr(root, "commands", {}).items():
        table = name if name in config_keys.TABLES else "" if name in CONFIG_ONLY else None
        if table is None:
            continue
        for each in list(getattr(command, "commands", {}).values()) or [command]:
            _install_on(each, table)  # a group's subcommands: its table (cache stats|clear)


def _install_on(command: Any, table: str) -> None:
    if any(param.name == "config" for param in command.params):
        return
    setattr(command, config_keys.TABLE_ATTR, table)
    for key, param in config_keys.settings_params(command).items():
        if param.envvar is None:
            param.envvar = config_keys.env_name_of(table, key)
        param.show_envvar = True
    takes_key = False
    for param in command.params:
        # mock-server's --api-key is the key the simulator asks for, not one dscall sends:
        # never read from DEEPSEEK_API_KEY.
        if param.name == "api_key" and table not in config_keys.TABLE_ONLY:
            param.envvar = API_KEY_ENV
            param.show_envvar = True
            param.resolve_envvar_value = _api_key_from_env
            takes_key = True
    command.params.append(_probe_option("config", ConfigOption))
    if takes_key:  # last: Click handles it after --api-key and --mock
        command.params.append(_probe_option("check_api_key_env", KeyCheckOption, False))


def _api_key_from_env(ctx: Any) -> str | None:
    """The API key from the variable this invocation names (``api-key-env``)."""
    name = ctx.meta.get(KEY_ENV_KEY, (API_KEY_ENV, "default"))[0]
    return os.environ.get(name) or None


def _load(ctx: typer.Context, value: Path | None) -> Path | None:
    """``--config``'s callback: read and check the files, set this command's default map."""
    if ctx.resilient_parsing:
        return value
    from dscall.cli.app import fail

    root: Any = ctx.find_root().command
    try:
        files = find_settings_files(value)
        table = getattr(ctx.command, config_keys.TABLE_ATTR, "")
        params = config_keys.table_params(root)
        own = config_keys.settings_params(ctx.command)
        if not params and table:  # the command alone, not under the dscall group
            params = {table: own}
        config_keys.check_files(files, params)
        # `config show`, show and export have no settings of their own.
        found = config_keys.file_settings(files, table, own) if table else {}
        key_env = config_keys.key_env(found)
    except DscallError as exc:
        fail(str(exc), exc.exit_code)
    ctx.meta[META_KEY] = files
    ctx.meta[CONFIG_PATH_KEY] = value
    ctx.meta[KEY_ENV_KEY] = key_env
    ctx.meta[ORIGINS_KEY] = {key: setting.origin for key, setting in found.items()}
    ctx.default_map = {own[key].name: setting.value for key, setting in found.items() if key in own}
    return value


def _check_key(ctx: typer.Context, value: bool) -> bool:
    """No key where a file or DSCALL_API_KEY_ENV names another variable than DEEPSEEK_API_KEY
    is an error here: the run would otherwise fall back on DEEPSEEK_API_KEY, and send that
    key to an endpoint it may not be meant for."""
    if ctx.resilient_parsing or ctx.meta.get(SHOWING_KEY):
        return value
    if ctx.params.get("api_key") or ctx.params.get("mock"):
        return value
    variable, said = ctx.meta.get(KEY_ENV_KEY, (API_KEY_ENV, "default"))
    if variable != API_KEY_ENV:
        from dscall.cli.app import fail

        fail(f"no API key: {variable} is not set (api-key-env, {said})", EXIT_USAGE)
    return value


def settings_files(ctx: typer.Context) -> SettingsFiles:
    files = ctx.meta.get(META_KEY)
    return files if isinstance(files, SettingsFiles) else SettingsFiles()


ConfigOption = Annotated[
    Path | None,
    typer.Option(
        "--config",
        metavar="FILE",
        envvar="DSCALL_CONFIG",
        is_eager=True,
        expose_value=False,
        callback=_load,
        help="Settings file instead of ./dscall.toml (the user file, "
        "~/.config/dscall/config.toml, is read under it). See: dscall config show.",
    ),
]


KeyCheckOption = Annotated[
    bool,
    typer.Option(
        "--dscall-check-api-key-env",
        hidden=True,
        expose_value=False,
        callback=_check_key,
    ),
]


_built: dict[str, Any] = {}  # each option built once a process; each command gets a copy


def _probe_option(name: str, annotation: Any, default: Any = None) -> Any:
    """A fresh option ``name`` of ``annotation``, built by Typer like any other."""
    if name not in _built:
        _built[name] = _build_option(name, annotation, default)
    return copy.copy(_built[name])


def _build_option(name: str, annotation: Any, default: Any) -> Any:
    probe = typer.Typer(add_completion=False)

    def probe_command(option: Any = default) -> None:  # pragma: no cover - never run
        """Builds the option."""

    probe_command.__annotations__["option"] = annotation  # what Typer reads
    probe.command()(probe_command)
    built: Any = typer.main.get_command(probe).params[0]
    built.name = name  # the parser's key for its value: each option its own
    built.rich_help_panel = None
    return built
