"""dscall: batch document processing against the DeepSeek API (and OpenAI-compatible endpoints)."""

__version__ = "0.1.0"
