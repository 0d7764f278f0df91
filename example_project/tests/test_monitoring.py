"""``PerformanceMonitor`` (server views) and ``PoolMonitor`` (pool events and status)."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, create_async_engine
from sqlalchemy.pool import NullPool

from blog.monitoring import PerformanceMonitor, PoolMonitor

ODD_TABLE = "Post Archive"


# One query on pg_stat_activity.
@pytest.mark.max_queries(1)
async def test_connection_stats(session: AsyncSession) -> None:
    stats = await PerformanceMonitor(session).get_connection_stats()

    # At least this test's own connection, busy running the query.
    assert stats["active"].count >= 1


@pytest.fixture
async def odd_table(session: AsyncSession) -> str:
    await session.execute(text(f'CREATE TABLE "{ODD_TABLE}" (id integer PRIMARY KEY)'))
    return ODD_TABLE


# One query on pg_class.
@pytest.mark.max_queries(1)
async def test_table_sizes_include_tables_with_odd_names(
    session: AsyncSession, odd_table: str
) -> None:
    # The reference rebuilt each name as schemaname || '.' || tablename, and PostgreSQL failed
    # to parse "public.Post Archive" back ("invalid name syntax").
    sizes = await PerformanceMonitor(session).get_table_sizes()

    by_name = {size.table: size for size in sizes}
    assert {"users", "posts", "comments", odd_table} <= set(by_name)
    assert by_name["posts"].size_bytes > 0
    assert by_name["posts"].schema == "public"
    assert sizes == sorted(sizes, key=lambda size: (-size.size_bytes, size.table))


@pytest.fixture
async def pooled_engine(sqlaperf_async_url: str) -> AsyncIterator[AsyncEngine]:
    """A small pooled engine on the test database, for pool behaviour (it only reads)."""
    engine = create_async_engine(sqlaperf_async_url, pool_size=2, max_overflow=1)
    yield engine
    await engine.dispose()


async def test_pool_events_and_status(pooled_engine: AsyncEngine) -> None:
    # The reference registered these events on the AsyncEngine itself: NotImplementedError.
    monitor = PoolMonitor(pooled_engine)
    monitor.setup_listeners()

    async with pooled_engine.connect() as first, pooled_engine.connect() as second:
        await first.execute(text("SELECT 1"))
        await second.execute(text("SELECT 1"))
        busy = monitor.get_pool_status()
    idle = monitor.get_pool_status()

    assert (busy.size, busy.checked_out, busy.checked_in, busy.overflow) == (2, 2, 0, 0)
    assert (idle.checked_out, idle.checked_in, idle.open_connections) == (0, 2, 2)
    assert (monitor.events.connects, monitor.events.checkouts, monitor.events.checkins) == (2, 2, 2)
    assert monitor.events.long_lived_checkouts == 0


async def test_pool_status_counts_overflow(pooled_engine: AsyncEngine) -> None:
    monitor = PoolMonitor(pooled_engine)

    async with (
        pooled_engine.connect() as first,
        pooled_engine.connect() as second,
        pooled_engine.connect() as third,
    ):
        for connection in (first, second, third):
            await connection.execute(text("SELECT 1"))
        status = monitor.get_pool_status()

    # The reference's "total" (size + overflow) is open_connections; overflow alone is never
    # negative here.
    assert (status.checked_out, status.overflow, status.open_connections) == (3, 1, 3)


async def test_invalidated_connections_are_counted(pooled_engine: AsyncEngine) -> None:
    monitor = PoolMonitor(pooled_engine)
    monitor.setup_listeners()

    async with pooled_engine.connect() as connection:
        await connection.execute(text("SELECT 1"))
        await connection.invalidate()

    assert monitor.events.invalidations == 1


async def test_long_lived_connections_are_reported(
    pooled_engine: AsyncEngine, caplog: pytest.LogCaptureFixture
) -> None:
    async with pooled_engine.connect() as early:
        await early.execute(text("SELECT 1"))
    # Any age counts as long here, so that the test need not wait.
    monitor = PoolMonitor(pooled_engine, max_connection_age=0.0)
    monitor.setup_listeners()

    with caplog.at_level(logging.WARNING, logger="blog.monitoring"):
        async with pooled_engine.connect() as reused:
            await reused.execute(text("SELECT 1"))
            # Opened before the listeners: its age is unknown, so it is not reported (the
            # reference's default of 0 made it decades old).
            assert monitor.events.long_lived_checkouts == 0
            async with pooled_engine.connect() as fresh:
                await fresh.execute(text("SELECT 1"))
    monitor.remove_listeners()

    assert monitor.events.long_lived_checkouts == 1
    assert "long-lived connection checked out" in caplog.text


async def test_pool_status_of_a_pool_without_counts(sqlaperf_async_url: str) -> None:
    # The reference called size() on any pool; NullPool has none.
    engine = create_async_engine(sqlaperf_async_url, poolclass=NullPool)
    try:
        status = PoolMonitor(engine).get_pool_status()
    finally:
        await engine.dispose()

    assert status.pool_class == "NullPool"
    assert status.size is None
