"""`dscall process` (pending)."""
