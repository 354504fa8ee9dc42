"""Benchmarks: every speed claim measured beside its baseline, in the same run."""
