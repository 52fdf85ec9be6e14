"""Benchmarks: `make bench` runs them all and prints every figure with its target."""
