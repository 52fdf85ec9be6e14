"""`dscall mock-server` (pending)."""
