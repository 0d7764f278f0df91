"""Raw driver connections beside SQLAlchemy, for SQL that capture must never see: what runs on
them fires no SQLAlchemy event (psycopg, sync or async, and asyncpg under the asyncio engine)."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection

_PLACEHOLDER = re.compile(r"%%|%\((\w+)\)[sbt]|%[sbt]")


class Channel:
    """A raw driver connection, beside SQLAlchemy, so that nothing we run is captured."""

    numbered = False
    """Whether placeholders are ``$1`` (asyncpg) rather than ``%(name)s`` (psycopg)."""
    generic = True
    """Whether EXPLAIN (GENERIC_PLAN) can run: asyncpg binds every placeholder it sees."""

    def state(self) -> str | None:
        """Why EXPLAIN cannot run now, or None."""
        raise NotImplementedError

    def run(self, sql: str) -> None:
        """Statements without parameters (several, separated by semicolons)."""
        raise NotImplementedError

    def fetch(self, sql: str, parameters: Any) -> list[tuple[Any, ...]]:
        """The rows of one statement, bound as the driver bound the original."""
        raise NotImplementedError

    def fetch_generic(self, sql: str) -> list[tuple[Any, ...]]:
        """The rows of an EXPLAIN (GENERIC_PLAN): ``$n`` placeholders, nothing bound."""
        raise NotImplementedError

    def query(self, sql: str) -> list[tuple[Any, ...]]:
        return self.fetch(sql, None)


def _numbered(sql: str) -> str:
    """``%(name)s`` and ``%s`` placeholders as ``$n``, ``%%`` as ``%``."""
    numbers: dict[str, int] = {}
    counter = 0

    def replace(match: re.Match[str]) -> str:
        nonlocal counter
        if match.group() == "%%":
            return "%"
        name = match.group(1)
        if name is None or name not in numbers:
            counter += 1
            if name is not None:
                numbers[name] = counter
            return f"${counter}"
        return f"${numbers[name]}"

    return _PLACEHOLDER.sub(replace, sql)


class _Psycopg(Channel):
    def __init__(self, raw: Any, awaiter: Any = None) -> None:
        from psycopg import pq
        from psycopg.rows import tuple_row

        self.raw = raw
        self.awaiter = awaiter
        self._status = pq.TransactionStatus
        self._tuple_row = tuple_row

    def _wait(self, value: Any) -> Any:
        return value if self.awaiter is None else self.awaiter(value)

    def state(self) -> str | None:
        if self.raw.autocommit:
            return "autocommit connection"
        # Statements queued in a pipeline have not run yet: ours would interleave with them.
        if getattr(self.raw, "_pipeline", None) is not None:
            return "pipeline mode"
        status = self.raw.info.transaction_status
        if status == self._status.INTRANS:
            return None
        if status == self._status.IDLE:
            return "not in a transaction"
        if status == self._status.INERROR:
            return "aborted transaction"
        return "connection busy or lost"

    def run(self, sql: str) -> None:
        # prepare=False: psycopg prepares a statement run five times, and prepared statements
        # outlive ROLLBACK; ours are never prepared, so there is nothing to DEALLOCATE.
        self._wait(self.raw.execute(sql, prepare=False))

    def fetch(self, sql: str, parameters: Any) -> list[tuple[Any, ...]]:
        cursor = self.raw.cursor(row_factory=self._tuple_row)
        try:
            self._wait(cursor.execute(sql, parameters, prepare=False))
            rows: list[tuple[Any, ...]] = self._wait(cursor.fetchall())
            return rows
        finally:
            self._wait(cursor.close())

    def fetch_generic(self, sql: str) -> list[tuple[Any, ...]]:
        return self.fetch(_numbered(sql), None)


class _Asyncpg(Channel):
    numbered = True
    generic = False

    def __init__(self, adapted: Any, raw: Any, awaiter: Any) -> None:
        self.adapted = adapted
        self.raw = raw
        self.awaiter = awaiter

    def state(self) -> str | None:
        if self.adapted.autocommit:
            return "autocommit connection"
        if not self.raw.is_in_transaction():
            return "not in a transaction"
        return None

    def run(self, sql: str) -> None:
        self.awaiter(self.raw.execute(sql))

    def fetch(self, sql: str, parameters: Any) -> list[tuple[Any, ...]]:
        async def fetch() -> list[tuple[Any, ...]]:
            # name="": the unnamed statement, replaced by the next one; a named one (asyncpg's
            # default) would stay prepared on the server after the savepoint is gone.
            prepared = await self.raw.prepare(sql, name="")
            return [tuple(row) for row in await prepared.fetch(*(parameters or ()))]

        rows: list[tuple[Any, ...]] = self.awaiter(fetch())
        return rows


def _awaiter() -> Any:
    import sqlalchemy.util

    # await_ in SQLAlchemy 2.1, await_only in 2.0: run a coroutine from the greenlet that the
    # asyncio engine runs the event in.
    return getattr(sqlalchemy.util, "await_", None) or sqlalchemy.util.await_only


def channel_for(connection: Connection) -> Channel | str:
    """A channel on the connection's driver, or why there is none."""
    dialect = connection.dialect
    try:
        pooled = connection.connection
    except Exception as error:  # closed or invalidated
        return f"no connection ({type(error).__name__})"
    raw = pooled.driver_connection
    # The asyncio dialects share their sync twin's driver name (psycopg): is_async tells.
    awaiter = _awaiter() if dialect.is_async else None
    if dialect.driver == "psycopg":
        return _Psycopg(raw, awaiter)
    if dialect.driver == "asyncpg" and awaiter is not None:
        return _Asyncpg(pooled.dbapi_connection, raw, awaiter)
    return f"driver {dialect.driver} not supported (psycopg and asyncpg are)"
