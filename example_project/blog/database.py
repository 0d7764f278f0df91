"""``DatabaseManager``: the engine and pool settings, the session factory, a unit-of-work scope."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.pool import NullPool


class DatabaseManager:
    """Owns one database's engine and hands out sessions.

    The reference read a global ``settings`` object and kept a module-level instance; the URL and
    the environment are constructor arguments here, so tests and scripts can make their own.
    """

    def __init__(self, url: str, *, app_name: str = "blog", testing: bool = False) -> None:
        self.url = url
        self.app_name = app_name
        self.testing = testing
        self.engine: AsyncEngine | None = None
        self.session_factory: async_sessionmaker[AsyncSession] | None = None

    async def initialize(self) -> None:
        """Create the engine and session factory, and check that the database answers."""
        connect_args: dict[str, Any] = {
            "command_timeout": 60,
            # JIT compilation costs more than it saves on short OLTP queries.
            "server_settings": {"application_name": self.app_name, "jit": "off"},
        }
        if self.testing:
            # No pool: asyncpg connections belong to the event loop that opened them, and test
            # runners give each test its own loop. The reference also set AUTOCOMMIT here, which
            # makes every statement commit at once, so a test's rollback undid nothing.
            self.engine = create_async_engine(
                self.url, poolclass=NullPool, connect_args=connect_args
            )
        else:
            # The reference passed poolclass=QueuePool, which create_async_engine rejects; its
            # default, AsyncAdaptedQueuePool, is the asyncio version of the same pool.
            self.engine = create_async_engine(
                self.url,
                pool_size=20,
                max_overflow=10,
                pool_timeout=30,
                pool_pre_ping=True,
                pool_recycle=3600,
                connect_args=connect_args,
            )
        # expire_on_commit=False: objects stay readable after commit without a reload (under
        # asyncio a reload on attribute access would raise MissingGreenlet). The reference also
        # passed autocommit=False, an argument SQLAlchemy 2.0 removed (TypeError).
        self.session_factory = async_sessionmaker(self.engine, expire_on_commit=False)
        async with self.engine.connect() as connection:
            await connection.execute(text("SELECT 1"))

    @asynccontextmanager
    async def get_session(self) -> AsyncIterator[AsyncSession]:
        """A session whose work is committed if the block succeeds and rolled back if it raises.

        The reference also closed the session in a ``finally``, which ``async with`` already
        does.
        """
        if self.session_factory is None:
            raise RuntimeError("DatabaseManager.initialize() has not been awaited")
        async with self.session_factory() as session:
            try:
                yield session
                await session.commit()
            # BaseException: a cancelled request (CancelledError) must roll back too.
            except BaseException:
                await session.rollback()
                raise

    async def close(self) -> None:
        """Close every pooled connection. Safe to call before ``initialize``."""
        if self.engine is not None:
            await self.engine.dispose()
            self.engine = None
            self.session_factory = None
