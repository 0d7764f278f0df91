"""Checks over a QueryLog; knows nothing of pytest."""
