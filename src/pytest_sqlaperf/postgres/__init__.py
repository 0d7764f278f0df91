"""PostgreSQL servers and databases for a test run; knows nothing of pytest."""
