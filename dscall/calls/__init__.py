"""Calling the model: HTTP backend, retry policy, limits, circuit breaker, cache."""
