"""Measured speed: the library's benchmarks, the served app's, and the load generator."""
