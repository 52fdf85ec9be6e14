"""The pipeline: the composition root of a run, the engine, the budget and the dry run."""
