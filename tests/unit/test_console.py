"""The console script's entry point: nearly free to import, since every extraction worker
imports the script again (Python 3.10/3.11's fork server does not preload it)."""

from __future__ import annotations

import subprocess
import sys


def _modules_after(statement: str) -> set[str]:
    code = f"import sys\n{statement}\nprint('\\n'.join(sys.modules))"
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    return set(done.stdout.split())


def test_importing_the_entry_point_loads_no_cli_library() -> None:
    loaded = _modules_after("import dscall.console")
    assert "dscall.console" in loaded
    assert not loaded & {"typer", "click", "rich", "pydantic", "aiohttp", "pyarrow"}


def test_the_entry_point_runs_the_cli() -> None:
    done = subprocess.run(
        [sys.executable, "-c", "from dscall.console import main; main()", "--version"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("dscall ")
