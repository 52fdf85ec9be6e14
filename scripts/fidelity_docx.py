"""The DOCX fixtures of tests/fixtures/documents/ (written by make_fidelity_fixtures.py)."""

from __future__ import annotations

from pathlib import Path


def write_docx_fixtures(out: Path) -> None:
    """Write each DOCX fixture into ``out``."""
