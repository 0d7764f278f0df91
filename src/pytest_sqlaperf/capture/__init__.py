"""Capture of SQLAlchemy statements; knows nothing of pytest."""
