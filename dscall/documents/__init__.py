"""Files -> Documents: discovery, per-format extraction, and the extraction worker pool."""
