"""Where a run's stages run: this process, or shards on Ray (``run_shard``, SPEC §14)."""
