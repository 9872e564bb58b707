"""Benchmarks of the worker (scripts, not tests)."""
