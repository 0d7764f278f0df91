"""Watching the database: ``PerformanceMonitor`` (server views) and ``PoolMonitor`` (the pool)."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine, event, text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession
from sqlalchemy.pool import ConnectionPoolEntry, PoolProxiedConnection, QueuePool

logger = logging.getLogger(__name__)

_CONNECT_TIME = "blog_connect_time"


@dataclass(frozen=True)
class ConnectionStats:
    count: int
    avg_duration: float


@dataclass(frozen=True)
class TableSize:
    schema: str
    table: str
    size: str
    size_bytes: int


class PerformanceMonitor:
    """Reads PostgreSQL's activity and size views for the session's database."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def get_connection_stats(self) -> dict[str, ConnectionStats]:
        """Connections to this database by state, with the mean seconds spent in that state."""
        result = await self.session.execute(
            text(
                """
                SELECT state,
                       count(*) AS connection_count,
                       avg(extract(epoch FROM now() - state_change)) AS avg_duration
                FROM pg_stat_activity
                WHERE datname = current_database()
                GROUP BY state
                """
            )
        )
        return {
            row.state or "unknown": ConnectionStats(
                count=row.connection_count, avg_duration=float(row.avg_duration or 0)
            )
            for row in result
        }

    async def get_table_sizes(self) -> list[TableSize]:
        """The public schema's tables, largest first, with indexes and TOAST counted.

        The reference passed ``schemaname || '.' || tablename`` to pg_total_relation_size,
        which parses the text as a name again: a table named with a space failed the whole
        report with "invalid name syntax", a mixed-case one with "relation does not exist".
        Sizes are taken by the table's oid instead.
        """
        result = await self.session.execute(
            text(
                """
                SELECT n.nspname AS schema_name,
                       c.relname AS table_name,
                       pg_size_pretty(pg_total_relation_size(c.oid)) AS size,
                       pg_total_relation_size(c.oid) AS size_bytes
                FROM pg_class AS c
                JOIN pg_namespace AS n ON n.oid = c.relnamespace
                WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p')
                ORDER BY size_bytes DESC, table_name
                """
            )
        )
        return [
            TableSize(
                schema=row.schema_name,
                table=row.table_name,
                size=row.size,
                size_bytes=row.size_bytes,
            )
            for row in result
        ]


@dataclass
class PoolEvents:
    """What the pool has done since ``setup_listeners``."""

    connects: int = 0
    checkouts: int = 0
    checkins: int = 0
    invalidations: int = 0
    long_lived_checkouts: int = 0


@dataclass(frozen=True)
class PoolStatus:
    """A pool's state; the counts are None for pools that keep none (e.g. NullPool)."""

    pool_class: str
    size: int | None
    checked_in: int | None
    checked_out: int | None
    overflow: int | None
    open_connections: int | None


class PoolMonitor:
    """Counts an engine's pool events and reports its pool's state.

    An instance, not the reference's static methods: the counts need somewhere to live.
    """

    def __init__(self, engine: Engine | AsyncEngine, *, max_connection_age: float = 300.0) -> None:
        # Pool events are synchronous; the reference registered them on the AsyncEngine, which
        # raises NotImplementedError. They go on the sync engine underneath.
        self.engine = engine.sync_engine if isinstance(engine, AsyncEngine) else engine
        self.max_connection_age = max_connection_age
        self.events = PoolEvents()

    def setup_listeners(self) -> None:
        """Start counting connects, checkouts, checkins and invalidations."""
        event.listen(self.engine, "connect", self._on_connect)
        event.listen(self.engine, "checkout", self._on_checkout)
        event.listen(self.engine, "checkin", self._on_checkin)
        event.listen(self.engine, "invalidate", self._on_invalidate)

    def remove_listeners(self) -> None:
        """Stop counting."""
        event.remove(self.engine, "connect", self._on_connect)
        event.remove(self.engine, "checkout", self._on_checkout)
        event.remove(self.engine, "checkin", self._on_checkin)
        event.remove(self.engine, "invalidate", self._on_invalidate)

    def get_pool_status(self) -> PoolStatus:
        """The pool's size, idle and busy connections, and overflow in use.

        The reference called ``pool.checked_out()``, which does not exist (it is
        ``checkedout()``), and read ``size()`` on any pool, which only QueuePool has. Its
        "total", size + overflow, was the number of open connections: QueuePool's overflow
        counter starts at -size and only turns positive once overflow connections are open.
        """
        pool = self.engine.pool
        if not isinstance(pool, QueuePool):
            return PoolStatus(type(pool).__name__, None, None, None, None, None)
        return PoolStatus(
            pool_class=type(pool).__name__,
            size=pool.size(),
            checked_in=pool.checkedin(),
            checked_out=pool.checkedout(),
            overflow=max(pool.overflow(), 0),
            open_connections=pool.checkedin() + pool.checkedout(),
        )

    def _on_connect(self, dbapi_connection: Any, record: ConnectionPoolEntry) -> None:
        self.events.connects += 1
        # Monotonic: wall-clock time can jump and make a connection look ancient or negative.
        record.info[_CONNECT_TIME] = time.monotonic()

    def _on_checkout(
        self, dbapi_connection: Any, record: ConnectionPoolEntry, proxy: PoolProxiedConnection
    ) -> None:
        self.events.checkouts += 1
        connected_at = record.info.get(_CONNECT_TIME)
        # The reference defaulted an unknown connect time to 0, so every connection opened
        # before the listeners were set up was reported as decades old.
        if connected_at is None:
            return
        age = time.monotonic() - connected_at
        if age > self.max_connection_age:
            self.events.long_lived_checkouts += 1
            logger.warning("long-lived connection checked out: open for %.0f s", age)

    def _on_checkin(self, dbapi_connection: Any, record: ConnectionPoolEntry) -> None:
        self.events.checkins += 1

    def _on_invalidate(
        self, dbapi_connection: Any, record: ConnectionPoolEntry, exception: BaseException | None
    ) -> None:
        # The reference looked for an "invalidated" flag in record.info that nothing sets.
        self.events.invalidations += 1
        logger.info("pooled connection invalidated: %s", exception)
