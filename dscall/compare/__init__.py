"""``dscall compare``: prompt and model variants on the same sample of chunks, side by side.

Modules: ``sample`` (the deterministic, stratified sample), ``judge`` (the judge's prompt, its
verdicts, win/tie/loss and their interval), ``plan`` (the jobs: one per chunk and variant,
then the judge calls), ``table`` (the Parquet of every answer), ``report`` (the figures per
variant and per pair, from the rows alone), ``setup`` (settings, request builders, drawing
the sample, the dry run's estimate), ``run`` (the composition root). The terminal table and
the summary JSON are ``cli/compare_run.py``'s.
"""
