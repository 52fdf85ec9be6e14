"""The options ``dscall process`` and ``dscall chunks`` share, declared once.

Each is an ``Annotated`` alias: the type, the flag names, the help and the help panel together,
so that the two commands cannot drift apart in wording or in limits. ``--force`` and
``--quiet`` mean the same in both but say it differently (``process`` writes several files and
shows progress), so they take their help text from the command. The ``*_settings`` functions
turn the shared options into the settings dataclasses, the same way for both commands.
"""

from __future__ import annotations

from typing import Annotated, Any

import typer

from dscall import config

# The help panels both commands have.
INPUT = "Input"
CHUNKING = "Chunking and extraction"
OUTPUT = "Output and reporting"

# Typer reads these aliases at run time: each must be an expression it can evaluate
# (``list[str] | None`` is, on Python 3.10).
Paths = Annotated[
    list[str],
    typer.Argument(metavar="PATH", help="Files, folders (walked recursively) or glob patterns."),
]
Include = Annotated[
    list[str] | None,
    typer.Option(
        "--include",
        metavar="PATTERN",
        help="Only files matching this pattern (fnmatch on the relative path or the file name; "
        "repeatable).",
        rich_help_panel=INPUT,
    ),
]
Exclude = Annotated[
    list[str] | None,
    typer.Option(
        "--exclude",
        metavar="PATTERN",
        help="Skip files and folders matching this pattern (repeatable).",
        rich_help_panel=INPUT,
    ),
]
Hidden = Annotated[
    bool,
    typer.Option(
        "--hidden/--no-hidden",
        help="Include hidden files and folders (names starting with '.').",
        rich_help_panel=INPUT,
    ),
]
ChunkTokens = Annotated[
    int,
    typer.Option(
        "--chunk-tokens", help="Token budget per chunk.", min=16, rich_help_panel=CHUNKING
    ),
]
OverlapTokens = Annotated[
    int,
    typer.Option(
        "--overlap-tokens",
        help="Tokens of whole sentences repeated between chunks.",
        min=0,
        rich_help_panel=CHUNKING,
    ),
]
Tokenizer = Annotated[
    config.TokenizerChoice,
    typer.Option(
        "--tokenizer",
        # Not "dscall[tokenizer]": rich reads square brackets as markup and drops them.
        help="Token counter: exact needs the tokenizer extra; auto uses it when installed.",
        rich_help_panel=CHUNKING,
    ),
]
PdfBackend = Annotated[
    config.PdfBackendChoice,
    typer.Option(
        "--pdf-backend",
        help="PDF text extractor: auto tries pypdfium2 first, then pypdf.",
        rich_help_panel=CHUNKING,
    ),
]
# A plain string checked by documents.ocr.ocr_mode, so that a wrong value is dscall's one-line
# usage error rather than Click's boxed one.
Ocr = Annotated[
    str | None,
    typer.Option(
        "--ocr",
        metavar="auto|always|never",
        help="Read scanned PDF pages with tesseract: auto = pages without a text layer, "
        "always = every page. Default: auto when the ocr extra and tesseract are installed, "
        "else never.",
        show_default=False,
        rich_help_panel=CHUNKING,
    ),
]
ExtractTimeout = Annotated[
    float,
    typer.Option(
        "--extract-timeout",
        help="Time limit per file for extraction, seconds.",
        min=0.001,
        rich_help_panel=CHUNKING,
    ),
]
Headers = Annotated[
    bool,
    typer.Option(
        "--headers",
        help="Include DOCX headers and footers in the text (each distinct one once).",
        rich_help_panel=CHUNKING,
    ),
]
Workers = Annotated[
    int,
    typer.Option(
        "--workers",
        help="Extraction worker processes; 0 means one per CPU.",
        min=0,
        rich_help_panel=CHUNKING,
    ),
]


def force(help: str) -> Any:  # typer.Option is typed Any
    """``--force``: replace outputs dscall did not write; ``help`` says which."""
    return typer.Option("--force", help=help, rich_help_panel=OUTPUT)


def quiet(help: str) -> Any:
    """``--quiet``/``-q``; ``help`` says what the command leaves out."""
    return typer.Option("--quiet", "-q", help=help, rich_help_panel=OUTPUT)


def discovery_settings(
    include: list[str] | None, exclude: list[str] | None, hidden: bool
) -> config.DiscoverySettings:
    return config.DiscoverySettings(
        include=tuple(include or ()), exclude=tuple(exclude or ()), include_hidden=hidden
    )


def extract_settings(
    extract_timeout: float,
    pdf_backend: config.PdfBackendChoice,
    workers: int,
    ocr: str | None = None,
    headers: bool = False,
) -> config.ExtractSettings:
    """``ocr`` None: the default (``documents.ocr.default_mode``, auto where OCR can run)."""
    from dscall.documents.ocr import ocr_mode

    return config.ExtractSettings(
        timeout_s=extract_timeout,
        pdf_backend=pdf_backend,
        ocr=ocr_mode(ocr),
        workers=workers,
        docx_headers_footers=headers,
    )


def chunk_settings(
    chunk_tokens: int, overlap_tokens: int, tokenizer: config.TokenizerChoice
) -> config.ChunkSettings:
    return config.ChunkSettings(
        chunk_tokens=chunk_tokens, overlap_tokens=overlap_tokens, tokenizer=tokenizer
    )
