"""``--summary-json``: a run's figures as one JSON object, to standard output (``-``) or to a
file replaced atomically (a temporary file renamed over it), for CI to read."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

from dscall.errors import UsageError
from dscall.output.safety import STDOUT


def write_summary(path: Path, summary: dict[str, Any]) -> None:
    text = json.dumps(summary, indent=2, sort_keys=True) + "\n"
    if str(path) == STDOUT:
        sys.stdout.write(text)
        sys.stdout.flush()
        return
    temp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        temp.write_text(text, encoding="utf-8")
        os.replace(temp, path)
    except OSError as exc:
        raise UsageError(f"cannot write --summary-json {path}: {exc}") from exc
