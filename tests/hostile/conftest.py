"""Shared inputs of the hostile tests: seeds, mutated corpora and bombs, made once a session."""

from __future__ import annotations

from pathlib import Path

import psutil
import pytest

from tests.hostile.mutations import bombs, mutated_corpus, seed_documents
from tests.integration.conftest import sim  # the simulator fixture, shared

__all__ = ["sim"]

SAMPLES = Path(__file__).resolve().parents[2] / "samples"
# The seed of the mutated corpus: a failure names its file, and this replays it.
FUZZ_SEED = 20261128


@pytest.fixture(scope="session")
def hostile_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("hostile")


@pytest.fixture(scope="session")
def seeds(hostile_root: Path) -> list[Path]:
    return seed_documents(hostile_root / "seeds", SAMPLES)


@pytest.fixture(scope="session")
def mutated(hostile_root: Path, seeds: list[Path]) -> list[Path]:
    return mutated_corpus(seeds, 500, FUZZ_SEED, hostile_root / "mutated")


@pytest.fixture(scope="session")
def bomb_files(hostile_root: Path, seeds: list[Path]) -> dict[str, Path]:
    docx_base = next(path for path in seeds if path.name == "seed-tables.docx")
    return bombs(hostile_root / "bombs", docx_base)


def vm_hwm_mb(pid: int) -> float | None:
    """The kernel's high-water mark of the resident memory of ``pid``, in MB."""
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def dead(pid: int) -> bool:
    try:
        return bool(psutil.Process(pid).status() == psutil.STATUS_ZOMBIE)
    except psutil.NoSuchProcess:
        return True
