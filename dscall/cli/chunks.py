"""`dscall chunks` (pending)."""
