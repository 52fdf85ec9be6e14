"""The Ray driver never runs the run path (the shards do, in their workers), so it does not
import it: about 0.2 s of CPU at the start of every `--executor ray` run, before the shards are
even sent (a local run imports it where it runs)."""

from __future__ import annotations

import subprocess
import sys

RUN_PATH = ("dscall.pipeline.run", "dscall.pipeline.dryrun", "aiohttp")


def test_the_ray_driver_loads_no_part_of_the_run_path() -> None:
    code = (
        "import sys\n"
        "import dscall.cli.process_run, dscall.cli.process_ray\n"
        f"print([name for name in {RUN_PATH!r} if name in sys.modules])\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert done.stdout.strip() == "[]", done.stdout
