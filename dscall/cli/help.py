"""``--help`` that reads at 80 columns, applied to every command in one place.

Typer's rich help shows each option's Python type in angle brackets (``<bool>`` for a flag,
``<int range>``, ``<list[str]>``), which says nothing to a user and widens the table until rich
cuts option names with "…". It also reads help text as rich markup, so ``[[steps]]`` vanishes,
and keeps the hard line breaks of docstrings, which break lines mid-sentence at 80 columns.

``HelpGroup`` is the root group's class: once Typer has built the command tree, it gives every
parameter without a metavar one that says what to type (``N``, ``PATH``, ``TEXT``; nothing for
a flag), escapes help text so that brackets are shown as written, and joins the lines of each
help paragraph so that rich wraps them to the terminal. Options that know better say so with
``metavar=`` where they are declared (``USD``, ``PATTERN``, ``TEMPLATE``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer
from rich.markup import escape
from typer.core import TyperGroup

from dscall.cli.config_params import install as install_settings

_METAVARS: dict[Any, str] = {int: "N", float: "N", str: "TEXT", Path: "PATH"}


def _metavar(param: Any) -> str | None:
    """The metavar ``param`` should show, or None to leave Typer's (choices: ``a|b|c``)."""
    if getattr(param, "is_flag", False) or getattr(param, "count", False):
        return ""  # a switch takes no value
    descriptor = getattr(param, "type_descriptor", None)
    if descriptor is None or (descriptor.is_choice and not descriptor.is_list):
        return None
    annotation = descriptor.annotation
    if descriptor.is_list:
        args = getattr(annotation, "__args__", (str,))
        annotation = args[0] if args else str
    if descriptor.is_path:
        annotation = Path
    return _METAVARS.get(annotation, "TEXT")


def _unwrap(text: str) -> str:
    """Each paragraph on one line (rich wraps it), paragraphs kept; ``\\b`` ones as written."""
    paragraphs = text.split("\n\n")
    return "\n\n".join(p if p.startswith("\b") else " ".join(p.split()) for p in paragraphs)


def tidy_param(param: Any) -> None:
    if param.metavar is None:
        shown = _metavar(param)
        if shown is not None:
            param.metavar = shown
    if isinstance(param, typer.core.TyperArgument) and param.metavar is not None:
        # An argument's type column ignores its metavar: the name column says it already.
        setattr(param, "display_type_rich", lambda ctx: None)  # noqa: B010
    help_text = getattr(param, "help", None)
    if help_text:
        param.help = escape(_unwrap(help_text))
    low, high = getattr(param, "min", None), getattr(param, "max", None)
    if low is not None or high is not None:
        # Said in words in the help, not as "N [x>=0.001]" beside the metavar, where it widens
        # the table until rich cuts the help text.
        bounds = _bounds(low, high)
        if bounds:
            param.help = f"{param.help or ''} ({bounds})".lstrip()
        setattr(param, "_get_number_range_help_str", lambda: None)  # noqa: B010


def _bounds(low: float | None, high: float | None) -> str:
    if low is not None and high is not None:
        return f"{low} to {high}"
    if low is not None:
        return "" if low == 0 else f"at least {low}"  # not negative goes without saying
    return "" if high is None else f"at most {high}"


def tidy_command(command: Any) -> None:
    """Tidy ``command``'s help, its parameters', and every subcommand's, once."""
    if getattr(command, "_dscall_tidy", False):
        return
    command._dscall_tidy = True
    if command.help:
        command.help = escape(_unwrap(command.help))
    if command.short_help:
        command.short_help = escape(_unwrap(command.short_help))
    for param in command.params:
        tidy_param(param)
    _tidy_help_option(command)
    _fold_on_help(command)
    for sub in getattr(command, "commands", {}).values():
        tidy_command(sub)


def _tidy_help_option(command: Any) -> None:
    """Click makes ``--help`` when it is first asked for (it needs the context's names), after
    the tree is built: tidy it then."""
    make = command.get_help_option

    def get_help_option(ctx: Any) -> Any:
        option = make(ctx)
        if option is not None and option.metavar is None:
            tidy_param(option)
        return option

    command.get_help_option = get_help_option


def _fold_on_help(command: Any) -> None:
    """``_fold_env_vars`` once help is asked for: typer.rich_utils costs 0.1 s to import, which
    a run that shows no help need not pay."""
    format_help = command.format_help

    def fold_then_format(ctx: Any, formatter: Any) -> None:
        _fold_env_vars()
        format_help(ctx, formatter)

    command.format_help = fold_then_format


def _fold_env_vars() -> None:
    """Let a long ``[env var: DSCALL_ALLOW_INSECURE_HTTP]`` break inside the name rather than
    be cut with "…" where an options panel leaves its help column narrow (Typer builds that
    line as a Text of its own, with the column's default overflow)."""
    from typer import rich_utils

    build = getattr(rich_utils, "_get_parameter_help", None)
    if build is None or getattr(build, "_dscall_folds", False):
        return

    def parameter_help(**kwargs: Any) -> Any:
        shown = build(**kwargs)
        for item in getattr(shown, "renderables", ()):
            if str(getattr(item, "plain", "")).startswith("[env var:"):
                item.overflow = "fold"
        return shown

    parameter_help._dscall_folds = True  # type: ignore[attr-defined]
    rich_utils._get_parameter_help = parameter_help


class HelpGroup(TyperGroup):
    """The root group: tidies the whole command tree once Typer has built it."""

    def __init__(self, **attrs: Any) -> None:
        super().__init__(**attrs)
        install_settings(self)  # env vars and --config, tidied with the rest below
        tidy_command(self)

    def format_help(self, ctx: Any, formatter: Any) -> None:
        # Typer appends --install-completion and --show-completion after building the group.
        for param in self.params:
            if getattr(param, "metavar", None) is None:
                tidy_param(param)
        super().format_help(ctx, formatter)
