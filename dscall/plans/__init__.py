"""Plans: what a mode does with documents. A plan turns ready inputs into call jobs for the
engine and the outcomes of those jobs into rows, or into further jobs (a reduce once the last
chunk answer is in, the next refine step)."""
