"""Document -> chunks under a token budget, with overlap and provenance.

(Interface fixed by the foundation; implementation pending.)
"""

from __future__ import annotations

from dscall.config import ChunkSettings
from dscall.tokens import TokenCounter
from dscall.types import Chunk, Document


def chunk_document(
    doc: Document, settings: ChunkSettings, counter: TokenCounter
) -> tuple[Chunk, ...]:
    """Split ``doc.text`` into chunks of at most ``settings.chunk_tokens`` tokens."""
    raise NotImplementedError
