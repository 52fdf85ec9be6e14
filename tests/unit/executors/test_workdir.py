"""A shard runs in the driver's working directory (``dscall.executors.workdir``)."""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path

import pytest

from dscall.config import ProcessSettings
from dscall.errors import UsageError
from dscall.executors.workdir import in_directory, relative_paths


def settings(tmp_path: Path, *inputs: str) -> ProcessSettings:
    base = ProcessSettings(inputs=tuple(inputs))
    return replace(base, cache=replace(base.cache, directory=tmp_path / "cache"))


def test_the_block_runs_in_the_drivers_folder_and_comes_back(tmp_path: Path) -> None:
    here = os.getcwd()
    with in_directory(str(tmp_path), settings(tmp_path, "docs")):
        assert os.getcwd() == str(tmp_path)
    assert os.getcwd() == here


def test_a_missing_folder_is_an_error_only_for_relative_paths(tmp_path: Path) -> None:
    gone = str(tmp_path / "not-here")
    absolute = settings(tmp_path, str(tmp_path / "docs"))
    absolute = replace(absolute, output=replace(absolute.output, out=tmp_path / "r.parquet"))
    assert relative_paths(absolute) == []
    with in_directory(gone, absolute):
        pass
    relative = settings(tmp_path, "docs")
    with (
        pytest.raises(UsageError, match=r"docs, results\.parquet named relative to"),
        in_directory(gone, relative),
    ):
        pass
