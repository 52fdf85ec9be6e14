"""Structured output (SPEC §10): the schema an answer must follow, its typed columns, and
validation."""
