"""The ``dscall`` console script's entry point, kept nearly free to import.

Every extraction worker runs the console script again as ``__mp_main__`` before it takes a
file: multiprocessing's fork server means to preload the main module once for all workers, but
on Python 3.10 and 3.11 it looks for it under the wrong key and never does. Importing this
module costs nothing; importing the CLI (Typer, Rich, every command's options) costs each worker
0.1-0.2 s of CPU, on the critical path of the first file's first request.
"""


def main() -> None:
    """Load the CLI and run it."""
    from dscall.cli import main as run_cli

    run_cli()
