"""``dscall process --executor ray --ray-address HOST:PORT`` with nothing listening at PORT:
a one-line usage error and exit 2, where ``ray.init`` alone retries the GCS connection for
ever. No cluster is started: the driver stops before Ray is asked anything."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

import pytest

from tests.ray.conftest import ray_env

pytestmark = [pytest.mark.ray, pytest.mark.timeout(120)]


def test_an_address_where_nothing_listens_exits_2_with_one_line(tmp_path: Path) -> None:
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "a.txt").write_text("One short document.\n", encoding="utf-8")
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # closed on leaving: nothing listens there now
    address = f"127.0.0.1:{port}"
    env = ray_env(tmp_path)
    env.update({"DSCALL_NO_CONFIG": "1", "DEEPSEEK_API_KEY": "sk-test"})
    args = ["process", str(corpus), "--out", str(tmp_path / "out")]
    ended = subprocess.run(
        [sys.executable, "-m", "dscall", *args, "--executor", "ray", "--ray-address", address],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,  # a bound only: before the check, this run never ended
        check=False,
    )
    assert ended.returncode == 2, ended.stderr
    lines = [line for line in ended.stderr.splitlines() if f"cannot reach Ray at {address}" in line]
    assert len(lines) == 1, ended.stderr
    assert lines[0].endswith(f"cannot reach Ray at {address}: connection refused")
    assert "Failed to connect to GCS" not in ended.stderr + ended.stdout
