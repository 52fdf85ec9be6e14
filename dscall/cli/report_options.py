"""The options of ``dscall process`` that report a run to a monitoring system (SPEC §12)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from dscall.cli.options import OUTPUT

MetricsPort = Annotated[
    int | None,
    typer.Option(
        "--metrics-port",
        metavar="PORT",
        min=1,
        max=65535,
        help="Serve Prometheus metrics on http://127.0.0.1:PORT/metrics while the run lasts "
        "(needs the metrics extra).",
        rich_help_panel=OUTPUT,
    ),
]
MetricsTextfile = Annotated[
    Path | None,
    typer.Option(
        "--metrics-textfile",
        metavar="FILE",
        help="Write the final metrics for node_exporter's textfile collector (replaced "
        "atomically), the run's exit code among them (needs the metrics extra).",
        rich_help_panel=OUTPUT,
    ),
]
