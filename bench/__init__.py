"""Reproducible benchmarks for pa. Run them all with ``python -m bench`` (see run.py)."""
