"""Chunking: the splitter, windows over big texts, token estimates and the exact tokenizer."""
