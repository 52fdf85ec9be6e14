"""Output: typed rows, the Parquet writer, the audit log, output safety and locks."""
