"""Benchmark scripts: `python -m bench.run` (docs/performance.md)."""
