"""Relative paths mean, in a shard, what they meant where ``dscall`` was started.

A Ray worker runs in a folder of Ray's own, so a relative input, ``--out``, ``--cache-dir``,
audit log or prices file would be read and written there (the parts lost to the driver, every
document a "file not found"). The driver sends its working directory with each shard, and the
shard runs in it: on a cluster the inputs and outputs are on a filesystem every node sees at the
same path (README), and so is the folder they were named from. On a node where that folder is
missing, a run with only absolute paths goes on; a relative one is a one-line error.
"""

from __future__ import annotations

import contextlib
import os
import socket
from collections.abc import Iterator
from pathlib import Path

from dscall.config import ProcessSettings
from dscall.errors import UsageError


def relative_paths(settings: ProcessSettings) -> list[str]:
    """The inputs and files of ``settings`` named relative to the working directory."""
    out, cache = settings.output, settings.cache
    files: list[Path | None] = [
        out.out,
        out.documents_out,
        out.audit_log,
        cache.directory,
        settings.prices_file,
    ]
    named = [path for path in settings.inputs if not os.path.isabs(path)]
    return named + [str(path) for path in files if path is not None and not path.is_absolute()]


@contextlib.contextmanager
def in_directory(directory: str | None, settings: ProcessSettings) -> Iterator[None]:
    """Run the block in ``directory`` (the driver's), and back where it was after."""
    if directory is None:
        yield
        return
    here = os.getcwd()
    try:
        os.chdir(directory)
    except OSError as exc:
        relative = relative_paths(settings)
        if relative:
            raise UsageError(
                f"{', '.join(relative[:3])} named relative to {directory}, which is not on "
                f"{socket.gethostname()} ({exc.strerror}): give absolute paths on a filesystem "
                "every node sees"
            ) from exc
        yield
        return
    try:
        yield
    finally:
        with contextlib.suppress(OSError):
            os.chdir(here)
