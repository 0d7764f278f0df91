"""A small blog on SQLAlchemy 2.0 (asyncio, asyncpg): the application the example suite tests."""
