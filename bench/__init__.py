"""Benchmarks: latency, quality and throughput, writing JSON and Markdown."""
