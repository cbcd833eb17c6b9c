"""Benchmarks: workloads, the decode runner and run metrics."""
