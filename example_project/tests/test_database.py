"""``DatabaseManager``: the reference's engine and pool settings, and the session scope."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from sqlalchemy import event, text
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.pool import AsyncAdaptedQueuePool, NullPool

from blog.database import DatabaseManager


@pytest.fixture
async def manager(sqlaperf_async_url: str) -> AsyncIterator[DatabaseManager]:
    """A production-configured manager on the test database (the tests only read)."""
    manager = DatabaseManager(sqlaperf_async_url, app_name="blog-tests")
    await manager.initialize()
    yield manager
    await manager.close()


async def test_production_engine_settings(manager: DatabaseManager) -> None:
    assert manager.engine is not None
    pool = manager.engine.pool
    assert isinstance(pool, AsyncAdaptedQueuePool)
    assert (pool.size(), pool.timeout()) == (20, 30)
    assert (pool._max_overflow, pool._recycle, pool._pre_ping) == (10, 3600, True)
    async with manager.get_session() as session:
        application_name = await session.scalar(text("SHOW application_name"))
        jit = await session.scalar(text("SHOW jit"))
    assert (application_name, jit) == ("blog-tests", "off")


async def test_testing_engine_keeps_no_pool(sqlaperf_async_url: str) -> None:
    manager = DatabaseManager(sqlaperf_async_url, testing=True)
    await manager.initialize()
    try:
        assert manager.engine is not None
        assert isinstance(manager.engine.pool, NullPool)
        # Not AUTOCOMMIT (the reference's test setting), where every statement is its own
        # transaction and a rollback undoes nothing: both statements share one transaction.
        async with manager.get_session() as session:
            first = await session.scalar(text("SELECT txid_current()"))
            second = await session.scalar(text("SELECT txid_current()"))
        assert first == second
    finally:
        await manager.close()


def _record_outcome(session: AsyncSession, outcomes: list[str]) -> None:
    event.listen(session.sync_session, "after_commit", lambda _: outcomes.append("commit"))
    event.listen(
        session.sync_session, "after_soft_rollback", lambda *_: outcomes.append("rollback")
    )


async def test_get_session_commits_a_successful_block(manager: DatabaseManager) -> None:
    outcomes: list[str] = []
    async with manager.get_session() as session:
        _record_outcome(session, outcomes)
        await session.execute(text("SELECT 1"))

    assert outcomes == ["commit"]


async def test_get_session_rolls_back_a_failing_block(manager: DatabaseManager) -> None:
    outcomes: list[str] = []

    async def fail_midway() -> None:
        async with manager.get_session() as session:
            _record_outcome(session, outcomes)
            await session.execute(text("SELECT 1"))
            raise LookupError

    with pytest.raises(LookupError):
        await fail_midway()

    assert outcomes[0] == "rollback"


async def test_session_before_initialize_and_close_are_safe(sqlaperf_async_url: str) -> None:
    manager = DatabaseManager(sqlaperf_async_url)

    with pytest.raises(RuntimeError, match="initialize"):
        async with manager.get_session():
            pass
    await manager.close()
