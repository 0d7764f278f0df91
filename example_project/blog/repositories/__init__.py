"""Data access for the blog: loading, bulk writes, and a cached user repository."""
