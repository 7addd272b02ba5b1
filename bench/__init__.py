"""Benchmarks (`make bench`): bench/engine.py measures the alarm engine against a straightforward implementation."""
