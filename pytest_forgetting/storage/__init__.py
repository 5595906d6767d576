"""Stored results: the per-item result cache and committed baselines."""
