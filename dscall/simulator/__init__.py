"""A DeepSeek-compatible HTTP server with fault injection, for demos, tests and benchmarks."""
