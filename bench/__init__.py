"""Benchmarks. Each writes one JSON line of figures to ``bench/results.jsonl``."""
