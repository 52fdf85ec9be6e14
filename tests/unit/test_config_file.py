"""Settings files read from disk: where each key is written, which files are read, secrets
refused, and the arrays of tables handed on with their origins (cli/config_file.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from dscall.cli.config_file import (
    NO_CONFIG_ENV,
    config_tables,
    find_settings_files,
    looks_secret,
    read_settings_file,
    shown_path,
    user_file,
)
from dscall.cli.toml_lines import key_lines
from dscall.errors import UsageError

DOCUMENT = '''\
# a comment = not a key
model = "deepseek-flash"
system = """
not_a_key = 1
[not.a.table]
"""
include = [
  "*.pdf",  # a comment ] inside
  "*.docx",
]
"quoted.name" = 1
process.max-tokens = 10

[chunks]
chunk-tokens = 64

[[endpoints]]
name = "a"
prices = { input = 1 }

[endpoints.extra]
weight = 2

[[endpoints]]
name = "b"
'''


def test_every_key_and_header_has_its_line() -> None:
    lines = key_lines(DOCUMENT)
    assert lines[("model",)] == 2
    assert lines[("system",)] == 3
    assert lines[("include",)] == 7
    assert lines[("quoted.name",)] == 11
    assert lines[("process",)] == 12
    assert lines[("process", "max-tokens")] == 12
    assert lines[("chunks",)] == 14
    assert lines[("chunks", "chunk-tokens")] == 15
    assert lines[("endpoints", 0)] == 17
    assert lines[("endpoints", 0, "prices")] == 19
    assert lines[("endpoints", 0, "extra", "weight")] == 22
    assert lines[("endpoints", 1)] == 24
    assert lines[("endpoints", 1, "name")] == 25
    # Text inside the multi-line string and array is not taken for keys or tables.
    assert ("not_a_key",) not in lines
    assert ("not", "a", "table") not in lines


def test_tables_keep_their_values_and_origins(tmp_path: Path) -> None:
    path = tmp_path / "dscall.toml"
    path.write_text(DOCUMENT, encoding="utf-8")
    settings = read_settings_file(path, "dscall.toml")
    first, second = settings.tables("endpoints")
    assert first.values == {"name": "a", "prices": {"input": 1}, "extra": {"weight": 2}}
    assert first.origin == "dscall.toml:17"
    assert first.key_origins == {
        "name": "dscall.toml:18",
        "prices": "dscall.toml:19",
        "extra": "dscall.toml:21",
    }
    assert second.origin == "dscall.toml:24"
    assert settings.tables("pipelines") == []


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('model = "a"\nmodel = "b"\n', "dscall.toml:2: not valid TOML: "),
        ("a = \n", "dscall.toml:1: not valid TOML: "),
        ('[process\nmodel = "a"\n', "dscall.toml:1: not valid TOML: "),
    ],
)
def test_a_syntax_error_is_one_line_with_the_line(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "dscall.toml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(UsageError) as caught:
        read_settings_file(path, "dscall.toml")
    assert str(caught.value).startswith(message)
    assert "\n" not in str(caught.value)


@pytest.mark.parametrize(
    ("text", "where"),
    [
        ('api_key = "sk-live-123456"\n', "dscall.toml:1: 'api_key'"),
        ('[process]\nmodel = "x"\napi-key = "sk-live-123456"\n', "dscall.toml:3: 'api-key'"),
        ('[[endpoints]]\nname = "a"\ntoken = "sk-live-123456"\n', "dscall.toml:3: 'token'"),
        ('[[endpoints]]\nname = "a"\n[endpoints.more]\nsecret = "sk-live-123456"\n', ":4:"),
    ],
)
def test_a_secret_in_a_file_is_refused_without_showing_it(
    tmp_path: Path, text: str, where: str
) -> None:
    path = tmp_path / "dscall.toml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(UsageError) as caught:
        read_settings_file(path, "dscall.toml")
    message = str(caught.value)
    assert where in message
    assert 'api_key_env = "MY_VAR"' in message
    assert "sk-live" not in message


@pytest.mark.parametrize(
    "text",
    [
        'headers = ["Authorization: Bearer abcdefgh12345678"]\n',
        '[process]\nbase-url = "https://sk-live-0123456789abcdefXYZ@example.com"\n',
    ],
)
def test_a_key_written_as_a_value_is_refused_without_showing_it(tmp_path: Path, text: str) -> None:
    path = tmp_path / "dscall.toml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(UsageError, match="looks like a key") as caught:
        read_settings_file(path, "dscall.toml")
    assert "abcdefgh" not in str(caught.value)
    assert "sk-live" not in str(caught.value)


def test_paths_and_names_are_not_taken_for_keys(tmp_path: Path) -> None:
    path = tmp_path / "dscall.toml"
    path.write_text('out = "/data/desk-reports/results.parquet"\nmodel = "task-x"\n', "utf-8")
    assert read_settings_file(path, "dscall.toml").data["model"] == "task-x"


@pytest.mark.parametrize(
    ("key", "secret"),
    [
        ("api_key", True),
        ("api-key", True),
        ("key", True),
        ("token", True),
        ("access_token", True),
        ("password", True),
        ("api_key_env", False),
        ("max-tokens", False),
        ("chunk-tokens", False),
        ("namespace", False),
    ],
)
def test_what_looks_like_a_secret(key: str, secret: bool) -> None:
    assert looks_secret(key) is secret


def test_files_found_lowest_first_and_missing_ones_skipped(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(NO_CONFIG_ENV)
    monkeypatch.chdir(tmp_path)
    assert find_settings_files(None).files == ()
    user_file().parent.mkdir(parents=True)
    user_file().write_text("workers = 1\n", encoding="utf-8")
    Path("dscall.toml").write_text("workers = 2\n", encoding="utf-8")
    found = find_settings_files(None)
    assert [settings.shown for settings in found.files] == [
        "~/.config/dscall/config.toml",
        "./dscall.toml",
    ]
    other = tmp_path / "other.toml"
    other.write_text("workers = 3\n", encoding="utf-8")
    explicit = find_settings_files(other)  # instead of ./dscall.toml, over the user file
    assert [settings.data for settings in explicit.files] == [{"workers": 1}, {"workers": 3}]
    monkeypatch.setenv(NO_CONFIG_ENV, "1")
    assert [settings.data for settings in find_settings_files(other).files] == [{"workers": 3}]
    assert find_settings_files(None).files == ()


def test_a_missing_config_file_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match=r"--config .*nope\.toml does not exist"):
        find_settings_files(tmp_path / "nope.toml")
    with pytest.raises(UsageError, match="is not a file"):
        find_settings_files(tmp_path)


def test_paths_under_home_are_shown_with_a_tilde(isolated_env: Path) -> None:
    assert shown_path(isolated_env / ".config" / "x.toml") == "~/.config/x.toml"
    assert shown_path(Path("/etc/dscall.toml")) == "/etc/dscall.toml"


def test_config_tables_outside_a_command_reads_the_files_found(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(NO_CONFIG_ENV)
    monkeypatch.chdir(tmp_path)
    user_file().parent.mkdir(parents=True)
    user_file().write_text('[[endpoints]]\nname = "user"\n', encoding="utf-8")
    assert [table.values for table in config_tables("endpoints")] == [{"name": "user"}]
    # The project file's endpoints replace the user file's, not add to them.
    Path("dscall.toml").write_text(
        'workers = 1\n\n[[endpoints]]\nname = "a"\n\n[[endpoints]]\nname = "b"\n',
        encoding="utf-8",
    )
    tables = config_tables("endpoints")
    assert [table.values["name"] for table in tables] == ["a", "b"]
    assert [table.origin for table in tables] == ["./dscall.toml:3", "./dscall.toml:6"]
    assert tables[1].key_origins == {"name": "./dscall.toml:7"}


def test_config_tables_in_a_command_are_those_of_its_config(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What cli/process.py reads at run time: the tables of this invocation's --config, not
    those of a ./dscall.toml it replaced."""
    import typer

    from dscall.cli import app

    monkeypatch.delenv(NO_CONFIG_ENV)
    monkeypatch.chdir(tmp_path)
    Path("dscall.toml").write_text('[[endpoints]]\nname = "here"\n', encoding="utf-8")
    nightly = tmp_path / "nightly.toml"
    nightly.write_text('workers = 1\n[[endpoints]]\nname = "nightly"\n', encoding="utf-8")
    group = typer.main.get_command(app)
    root = typer.Context(group, info_name="dscall")
    command = group.commands["chunks"]  # type: ignore[attr-defined]
    args = ["--config", str(nightly), "docs"]
    with command.make_context("chunks", args, parent=root) as ctx, ctx:
        [table] = config_tables("endpoints")
    assert table.values == {"name": "nightly"}
    assert table.origin == f"{nightly}:2"
    assert [table.values["name"] for table in config_tables("endpoints")] == ["here"]
