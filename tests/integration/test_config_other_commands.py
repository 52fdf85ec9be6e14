"""Settings of `dscall mock-server`, `show` and `export` (SPEC §12): the simulator's options come
from a `[mock-server]` table and DSCALL_MOCK_SERVER_* only (each level overriding the one
below, in what the server does and in what `config show` says), never from the keys and
variables that set the client's; `show` and `export` take --config and report a bad file as
every command does."""

from __future__ import annotations

import http.client
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import TEST_API_KEY
from tests.integration.conftest import invoke, write_corpus
from tests.integration.test_config import user_file

LEVELS = ["user", "project", "env", "flag"]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def models_status(port: int, key: str) -> int:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        connection.request("GET", "/models", headers={"Authorization": f"Bearer {key}"})
        response = connection.getresponse()
        response.read()
        return response.status
    finally:
        connection.close()


@pytest.mark.parametrize("level", LEVELS)
def test_mock_server_listens_where_the_highest_level_says(
    project: Path, isolated_env: Path, level: str
) -> None:
    """Each level names another port; the server, a process of its own, listens on the
    highest level's. DEEPSEEK_API_KEY is set, and is not the key the simulator asks for."""
    ports = {name: free_port() for name in LEVELS}
    upto = LEVELS.index(level)
    env = {**os.environ, "COLUMNS": "200"}
    user_file(isolated_env, f"[mock-server]\nport = {ports['user']}\n")
    if upto >= LEVELS.index("project"):
        text = f"[mock-server]\nport = {ports['project']}\nlatency_ms = 1\n"
        Path("dscall.toml").write_text(text, encoding="utf-8")
    if upto >= LEVELS.index("env"):
        env["DSCALL_MOCK_SERVER_PORT"] = str(ports["env"])
    flag = ["--port", str(ports["flag"])] if level == "flag" else []
    server = subprocess.Popen(
        [sys.executable, "-m", "dscall", "mock-server", *flag],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert server.stdout is not None
        first_line = server.stdout.readline()
        assert first_line.strip() == (
            f"dscall mock-server listening on http://127.0.0.1:{ports[level]}"
        ), server.stderr.read() if server.stderr else ""
        assert env["DEEPSEEK_API_KEY"] == TEST_API_KEY
        assert models_status(ports[level], "sk-another-key-entirely") == 200
        server.terminate()
        _, stderr = server.communicate(timeout=30)
    finally:
        if server.poll() is None:
            server.kill()
            server.communicate()
    assert server.returncode == 0, stderr


def config_lines(args: list[str] | None = None) -> dict[str, dict[str, tuple[str, str]]]:
    """`config show`'s plain output: section -> key -> (value, source)."""
    result = invoke(["config", "show", *(args or [])])
    assert result.exit_code == 0, result.output
    sections: dict[str, dict[str, tuple[str, str]]] = {}
    current: dict[str, tuple[str, str]] = {}
    for line in result.stdout.splitlines():
        if line.startswith("["):
            current = sections.setdefault(line.split("]")[0].strip("["), {})
        elif " = " in line:
            setting, _, source = line.partition("  # ")
            key, _, value = setting.partition(" = ")
            current[key.strip()] = (value.strip(), source.strip())
    return sections


def test_config_show_names_where_each_mock_server_setting_came_from(
    project: Path, isolated_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert config_lines()["mock-server"]["port"] == ("8089", "default")
    user_file(isolated_env, "[mock-server]\nseed = 5\nport = 7001\n")
    Path("dscall.toml").write_text("[mock-server]\nport = 7002\n", encoding="utf-8")
    monkeypatch.setenv("DSCALL_MOCK_SERVER_LATENCY_MS", "3.5")
    # The client's variable and top-level key are the client's: not the simulator's limit.
    monkeypatch.setenv("DSCALL_MAX_CONCURRENCY", "9")
    shown = config_lines()
    mock = shown["mock-server"]
    assert mock["seed"] == ("5", "~/.config/dscall/config.toml:2")
    assert mock["port"] == ("7002", "./dscall.toml:2")
    assert mock["latency-ms"] == ("3.5", "env DSCALL_MOCK_SERVER_LATENCY_MS")
    assert mock["max-concurrency"] == ("(not set)", "default")
    assert "api-key" not in mock
    assert shown["process"]["max-concurrency"] == ("9", "env DSCALL_MAX_CONCURRENCY")
    # cache-dir from a [cache] table differs from process's, and config show says so.
    Path("dscall.toml").write_text('[cache]\ncache-dir = "/srv/cache"\n', encoding="utf-8")
    cache = config_lines()["cache"]
    assert cache == {"cache-dir": ('"/srv/cache"', "./dscall.toml:2")}


def test_a_simulator_option_at_the_top_level_is_one_line_naming_its_table(
    project: Path,
) -> None:
    Path("dscall.toml").write_text("latency-ms = 5\n", encoding="utf-8")
    result = invoke(["mock-server", "--port", "0"])
    assert result.exit_code == 2
    assert result.stderr.strip() == (
        "error: ./dscall.toml:1: 'latency-ms' is an option of mock-server: "
        "set it in a [mock-server] table"
    )


@pytest.mark.parametrize("command", ["show", "export"])
def test_show_and_export_take_config_and_report_its_errors(
    project: Path, tmp_path: Path, command: str
) -> None:
    write_corpus(project / "docs", docs=2)
    out = tmp_path / "chunks.parquet"
    made = invoke(["chunks", "docs", "--out", str(out), "--tokenizer", "estimate", "--quiet"])
    assert made.exit_code == 0, made.output
    good = tmp_path / "good.toml"
    good.write_text("max-concurrency = 4\n", encoding="utf-8")
    extra = ["-f", "jsonl"] if command == "export" else []
    result = invoke([command, str(out), *extra, "--config", str(good)])
    assert result.exit_code == 0, result.output
    assert "doc_0000.txt" in result.stdout
    bad = tmp_path / "bad.toml"
    bad.write_text("max-concurency = 4\n", encoding="utf-8")
    for args in (["--config", str(bad)], []):  # named, or the project file found
        if not args:
            Path("dscall.toml").write_text("max-concurency = 4\n", encoding="utf-8")
        result = invoke([command, str(out), *extra, *args])
        assert result.exit_code == 2
        shown = str(bad) if args else "./dscall.toml"
        assert result.stderr.strip() == (
            f"error: {shown}:1: unknown key 'max-concurency' (did you mean 'max-concurrency'?)"
        )
        assert result.stdout == ""


def test_which_options_of_the_other_commands_are_settings() -> None:
    """Every option of mock-server is a key of its table with a DSCALL_MOCK_SERVER_* variable
    (but --api-key, a secret); cache takes only where the cache is; show and export none."""
    import typer

    from dscall.cli import app
    from dscall.cli.config_keys import settings_params, table_params

    group = typer.main.get_command(app)
    tables = table_params(group)
    mock = group.commands["mock-server"]  # type: ignore[attr-defined]
    options = {p.name for p in mock.params if p.param_type_name == "option" and p.expose_value}
    assert options - {p.name for p in tables["mock-server"].values()} == {"api_key"}
    for key, param in tables["mock-server"].items():
        assert param.envvar == "DSCALL_MOCK_SERVER_" + key.upper().replace("-", "_")
    assert set(tables["cache"]) == {"cache-dir", "cache-url"}
    assert {p.envvar for p in tables["cache"].values()} == {"DSCALL_CACHE_DIR", "DSCALL_CACHE_URL"}
    for name in ("show", "export"):
        assert settings_params(group.commands[name]) == {}  # type: ignore[attr-defined]
