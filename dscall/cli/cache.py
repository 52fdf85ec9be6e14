"""`dscall cache` (pending)."""
