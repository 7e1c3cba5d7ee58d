"""Benchmarks: each figure beside the raw library doing the same work, in the same run."""
