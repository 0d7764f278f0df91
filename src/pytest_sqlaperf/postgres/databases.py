"""The databases of one run (a template and clones of it), and removing those of dead runs."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from pytest_sqlaperf.errors import SqlaperfError
from pytest_sqlaperf.postgres.urls import connect, mask_url, normalize_url, with_database

if TYPE_CHECKING:
    import psycopg
    import sqlalchemy
    from psycopg import sql

__all__ = ["RunDatabases", "database_name", "database_url", "run_lock_key"]

_RUN_ID_RE = re.compile(r"[0-9a-f]{12}")
_SUFFIX_RE = re.compile(r"[a-z0-9_]{1,40}")
_OUR_DATABASE_RE = re.compile(r"sqlaperf_([0-9a-f]{12})_[a-z0-9_]+")
# Advisory lock keys of runs: this tag in the high bits, the 48-bit run id below, so that
# distinct runs never share a key.
_LOCK_TAG = 0x5351 << 48
TEMPLATE_SUFFIX = "template"


def database_url(admin_url: str, dbname: str, *, driver: str = "psycopg") -> str:
    """The URL of database ``dbname`` on the server of ``admin_url``; driver psycopg or asyncpg."""
    url = with_database(normalize_url(admin_url, what="admin URL"), dbname, driver=driver)
    return url.render_as_string(hide_password=False)


def database_name(run_id: str, suffix: str) -> str:
    """``sqlaperf_<run_id>_<suffix>``, checked so that it needs no quoting and fits in 63 bytes."""
    if not _RUN_ID_RE.fullmatch(run_id):
        raise ValueError(f"run id must be 12 lowercase hex characters, not {run_id!r}")
    if not _SUFFIX_RE.fullmatch(suffix):
        raise ValueError(f"database suffix must match [a-z0-9_]{{1,40}}, not {suffix!r}")
    return f"sqlaperf_{run_id}_{suffix}"


def run_lock_key(run_id: str) -> int:
    """The advisory lock key that every process of a live run holds (shared)."""
    return _LOCK_TAG | int(run_id, 16)


class RunDatabases:
    """Creates the databases of run ``run_id`` and drops them at the end.

    While open, a session holds a shared advisory lock keyed on the run id: other runs (and other
    processes of this run, such as xdist workers, which may open their own RunDatabases) see the
    run as alive. A run whose key no session holds, in any database, is dead, and its databases
    are dropped.

    With ``file_copy``, databases are created with ``STRATEGY FILE_COPY`` on PostgreSQL 15 and
    later: it copies the template's files (10 ms here, on our embedded server's tmpfs with fsync
    off) instead of writing each page to the WAL (22-36 ms), but asks for two checkpoints, which
    can be slow on a server other work shares. So only for servers of our own.
    """

    def __init__(self, admin_url: str, run_id: str, *, file_copy: bool = False) -> None:
        self.run_id = run_id
        self.file_copy = file_copy
        self._url = normalize_url(admin_url, what="admin URL")
        self._masked_url = mask_url(admin_url)
        database_name(run_id, TEMPLATE_SUFFIX)  # validates the run id early
        self._connection: psycopg.Connection[Any] | None = None
        self._server_major = 0
        self.created: list[str] = []
        self.dropped_leftovers: list[str] = []

    def __repr__(self) -> str:
        return f"RunDatabases({self._masked_url!r}, run_id={self.run_id!r})"

    def open(self) -> None:
        """Connect, take this run's lock, and drop the databases of dead runs."""
        if self._connection is not None:
            return
        connection = self._connect(self._url)
        self._connection = connection
        self._server_major = connection.info.server_version // 10000
        connection.execute("SELECT pg_advisory_lock_shared(%s)", (run_lock_key(self.run_id),))
        self.dropped_leftovers = self._sweep()

    def create_template(self, setup: Callable[[sqlalchemy.Connection], None] | None) -> str:
        """Create the run's template database, run ``setup`` in it (one transaction), commit.

        The engine is disposed afterwards: a template with open connections cannot be cloned.
        """
        name = self.create_database(TEMPLATE_SUFFIX)
        if setup is not None:
            import sqlalchemy
            from sqlalchemy.pool import NullPool

            engine = sqlalchemy.create_engine(with_database(self._url, name), poolclass=NullPool)
            try:
                with engine.begin() as connection:
                    setup(connection)
            finally:
                engine.dispose()
        return name

    def create_database(self, suffix: str, template: str | None = None) -> str:
        """Create ``sqlaperf_<run_id>_<suffix>``, empty or as a copy of ``template``."""
        from psycopg import sql

        connection = self._require_open()
        name = database_name(self.run_id, suffix)
        statement = sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name))
        if template is not None:
            statement += sql.SQL(" TEMPLATE {}").format(sql.Identifier(template))
        if self.file_copy and self._server_major >= 15:
            statement += sql.SQL(" STRATEGY FILE_COPY")
        self._execute(connection, statement, f"create database {name}")
        self.created.append(name)
        return name

    def drop_all(self) -> None:
        """Drop every database this object created, release the run's lock, close; idempotent."""
        connection, self._connection = self._connection, None
        if connection is None:
            return
        try:
            for name in reversed(self.created):
                self._drop(connection, name)
            self.created.clear()
        finally:
            connection.close()

    def _connect(self, url: sqlalchemy.URL) -> psycopg.Connection[Any]:
        import psycopg

        try:
            return connect(url)
        except psycopg.Error as error:
            raise SqlaperfError(
                f"Could not connect to {self._masked_url}: {mask_url(str(error).strip())}\n"
                "Check that the server is running and that the URL is right"
            ) from None

    def _require_open(self) -> psycopg.Connection[Any]:
        if self._connection is None:
            raise RuntimeError("RunDatabases.open() must be called first")
        return self._connection

    def _sweep(self) -> list[str]:
        connection = self._require_open()
        rows = connection.execute(
            "SELECT datname FROM pg_database WHERE datname LIKE 'sqlaperf\\_%' ORDER BY datname"
        ).fetchall()
        runs: dict[str, list[str]] = {}
        for (name,) in rows:
            match = _OUR_DATABASE_RE.fullmatch(name)
            if match and match.group(1) != self.run_id:
                runs.setdefault(match.group(1), []).append(name)
        if not runs:
            return []
        # Advisory locks belong to the database of the session that takes them, and runs connect
        # to whichever database their URL names: a run is alive when a session in any database
        # holds its key (an int8 key shows as classid, its high half, and objid, objsubid 1).
        held = connection.execute(
            "SELECT (classid::bigint << 32) | objid::bigint FROM pg_locks "
            "WHERE locktype = 'advisory' AND objsubid = 1 AND granted"
        ).fetchall()
        alive = {key for (key,) in held}
        dropped: list[str] = []
        for run_id, names in runs.items():
            if run_lock_key(run_id) in alive:
                continue
            for name in names:
                self._drop(connection, name)
                dropped.append(name)
        return dropped

    def _drop(self, connection: psycopg.Connection[Any], name: str) -> None:
        from psycopg import sql

        statement = sql.SQL("DROP DATABASE IF EXISTS {}").format(sql.Identifier(name))
        if self._server_major >= 13:
            statement += sql.SQL(" WITH (FORCE)")
        else:
            connection.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s",
                (name,),
            )
        self._execute(connection, statement, f"drop database {name}")

    def _execute(
        self, connection: psycopg.Connection[Any], statement: sql.Composed, what: str
    ) -> None:
        import psycopg

        try:
            connection.execute(statement)
        except psycopg.Error as error:
            raise SqlaperfError(
                f"Could not {what} on {self._masked_url}: {str(error).strip()}\n" + _hint(error)
            ) from None


def _hint(error: Exception) -> str:
    text = str(error)
    if "being accessed by other users" in text:
        return (
            "Close every connection to the template database (dispose engines created in the "
            "template setup) before worker databases are cloned from it"
        )
    if "permission denied" in text:
        return "The server URL's user needs the CREATEDB privilege (ALTER ROLE ... CREATEDB)"
    return "Check the server's log for the cause"
