"""Benchmarks (not run by CI). How to run them and the figures: docs/benchmarks.md."""
