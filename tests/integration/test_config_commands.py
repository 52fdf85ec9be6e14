"""``--config FILE`` on process, chunks and compare: the file's settings drive a real run
against the simulator, paths in it are relative to its folder, flags still win."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from dscall.simulator import SimulatorConfig, SimulatorThread
from tests.integration.conftest import invoke, read_rows, write_corpus


@pytest.fixture
def job(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A cron-like job folder (/etc/dscall/nightly.toml, say) apart from the working one."""
    monkeypatch.delenv("DSCALL_NO_CONFIG")
    write_corpus(tmp_path / "corpus", docs=3)
    (tmp_path / "job").mkdir()
    (tmp_path / "work").mkdir()
    monkeypatch.chdir(tmp_path / "work")
    return tmp_path / "job"


@pytest.fixture
def kept() -> Iterator[SimulatorThread]:
    with SimulatorThread(SimulatorConfig(keep_requests=1000)) as running:
        yield running


def settings(job: Path, sim: SimulatorThread, text: str) -> Path:
    path = job / "nightly.toml"
    path.write_text(
        f'base-url = "{sim.base_url}"\ncache-dir = "cache"\ntokenizer = "estimate"\n'
        f"chunk-tokens = 64\noverlap-tokens = 0\nworkers = 1\nquiet = true\n{text}",
        encoding="utf-8",
    )
    return path


def test_process_runs_with_the_settings_of_config(job: Path, kept: SimulatorThread) -> None:
    config = settings(
        job,
        kept,
        '[process]\nmodel = "deepseek-v4-pro"\nout = "results.parquet"\nmax-tokens = 77\n',
    )
    corpus = str(job.parent / "corpus")
    result = invoke(["process", corpus, "--config", str(config)])
    assert result.exit_code == 0, result.output
    rows = read_rows(job / "results.parquet")  # beside the file, not in the working folder
    assert len({row["doc_path"] for row in rows}) == 3
    assert {row["model"] for row in rows} == {"deepseek-v4-pro"}
    assert {body["max_tokens"] for body in kept.requests()} == {77}
    assert (job / "cache").is_dir()
    assert not list(Path().iterdir())  # nothing in the working folder
    # A flag beats the file.
    again = invoke(["process", corpus, "--config", str(config), "--model", "deepseek-flash",
                    "--out", "here.parquet"])  # fmt: skip
    assert again.exit_code == 0, again.output
    assert {row["model"] for row in read_rows(Path("here.parquet"))} == {"deepseek-flash"}


def test_chunks_reads_config_too(job: Path, sim: SimulatorThread) -> None:
    config = settings(job, sim, '[chunks]\nout = "chunks.parquet"\nno-text = true\n')
    result = invoke(["chunks", str(job.parent / "corpus"), "--config", str(config)])
    assert result.exit_code == 0, result.output
    rows = read_rows(job / "chunks.parquet")
    assert rows
    assert {row["chunk_tokens"] <= 64 for row in rows} == {True}
    assert "chunk_text" not in rows[0]


def test_compare_reads_its_table(job: Path, sim: SimulatorThread) -> None:
    config = settings(
        job,
        sim,
        '[compare]\nmodel-variant = ["flash=deepseek-flash", "pro=deepseek-v4-pro"]\n'
        'sample = 2\nout = "compare.parquet"\n',
    )
    result = invoke(["compare", str(job.parent / "corpus"), "--config", str(config)])
    assert result.exit_code == 0, result.output
    rows = read_rows(job / "compare.parquet")
    assert {row["variant"] for row in rows} == {"flash", "pro"}
    assert len({(row["doc_path"], row["chunk_index"]) for row in rows}) == 2


def test_the_key_comes_from_the_variable_the_file_names(
    job: Path, sim: SimulatorThread, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = settings(job, sim, 'api_key_env = "NIGHTLY_KEY"\nout = "results.parquet"\n')
    corpus = str(job.parent / "corpus")
    # Unset, it is an error, even with DEEPSEEK_API_KEY set: that key is not meant for here.
    result = invoke(["process", corpus, "--config", str(config)])
    assert result.exit_code == 2
    assert result.stderr.splitlines() == [
        f"error: no API key: NIGHTLY_KEY is not set (api-key-env, {config}:8)"
    ]
    assert sim.stats()["requests_received"] == 0
    monkeypatch.delenv("DEEPSEEK_API_KEY")
    monkeypatch.setenv("NIGHTLY_KEY", "sk-nightly-0123456789abcdef")
    result = invoke(["process", corpus, "--config", str(config)])
    assert result.exit_code == 0, result.output
    assert read_rows(job / "results.parquet")
