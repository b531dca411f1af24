"""Benchmarks: scripts that print their figures (run them with python benchmarks/NAME.py)."""
