"""The databases of a run: template, clones, dropping them, sweeping those of dead runs."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
import sqlalchemy
from sqlalchemy.ext.asyncio import create_async_engine

from pytest_sqlaperf.errors import SqlaperfError
from pytest_sqlaperf.postgres.databases import RunDatabases, database_url, run_lock_key
from pytest_sqlaperf.postgres.server import ServerInfo, new_run_id
from pytest_sqlaperf.postgres.urls import connect, normalize_url


@pytest.fixture
def admin(server: ServerInfo) -> Iterator[psycopg.Connection[Any]]:
    """An autocommit connection to the maintenance database."""
    with connect(normalize_url(server.admin_url)) as connection:
        yield connection


def databases(admin: psycopg.Connection[Any]) -> set[str]:
    return {row[0] for row in admin.execute("SELECT datname FROM pg_database").fetchall()}


def create_schema(connection: sqlalchemy.Connection) -> None:
    connection.execute(sqlalchemy.text("CREATE TABLE author (id serial PRIMARY KEY, name text)"))
    connection.execute(sqlalchemy.text("INSERT INTO author (name) VALUES ('Ada'), ('Grace')"))


def count_authors(url: str) -> int:
    engine = sqlalchemy.create_engine(url, poolclass=sqlalchemy.pool.NullPool)
    try:
        with engine.connect() as connection:
            return int(
                connection.execute(sqlalchemy.text("SELECT count(*) FROM author")).scalar_one()
            )
    finally:
        engine.dispose()


@pytest.mark.parametrize("file_copy", [False, True], ids=["wal_log", "file_copy"])
def test_template_and_worker_databases(
    server: ServerInfo,
    admin: psycopg.Connection[Any],
    monkeypatch: pytest.MonkeyPatch,
    file_copy: bool,
) -> None:
    executed: list[str] = []
    execute = RunDatabases._execute

    def spy(
        self: RunDatabases, connection: psycopg.Connection[Any], statement: Any, what: str
    ) -> None:
        executed.append(statement.as_string(connection))
        execute(self, connection, statement, what)

    monkeypatch.setattr(RunDatabases, "_execute", spy)
    run = RunDatabases(server.admin_url, new_run_id(), file_copy=file_copy)
    run.open()
    try:
        template = run.create_template(create_schema)
        assert template == f"sqlaperf_{run.run_id}_template"
        workers = [run.create_database(suffix, template=template) for suffix in ("gw0", "gw1")]
        assert workers == [f"sqlaperf_{run.run_id}_gw0", f"sqlaperf_{run.run_id}_gw1"]
        for name in workers:
            assert count_authors(database_url(server.admin_url, name)) == 2
        assert {template, *workers} <= databases(admin)
        creates = [statement for statement in executed if statement.startswith("CREATE")]
        assert len(creates) == 3
        # The server is PostgreSQL 16: FILE_COPY exists there (15 and later).
        assert all(statement.endswith(" STRATEGY FILE_COPY") == file_copy for statement in creates)
    finally:
        run.drop_all()
    assert not any(run.run_id in name for name in databases(admin))
    run.drop_all()  # idempotent


def test_asyncpg_url_reaches_a_worker_database_over_the_socket(server: ServerInfo) -> None:
    run = RunDatabases(server.admin_url, new_run_id())
    run.open()
    try:
        name = run.create_database("main", template=run.create_template(create_schema))
        url = database_url(server.admin_url, name, driver="asyncpg")

        async def count() -> int:
            engine = create_async_engine(url)
            try:
                async with engine.connect() as connection:
                    result = await connection.execute(
                        sqlalchemy.text("SELECT count(*) FROM author")
                    )
                    return int(result.scalar_one())
            finally:
                await engine.dispose()

        assert asyncio.run(count()) == 2
    finally:
        run.drop_all()


def test_drop_all_forces_out_open_connections(server: ServerInfo) -> None:
    run = RunDatabases(server.admin_url, new_run_id())
    run.open()
    name = run.create_database("main")
    lingering = connect(normalize_url(database_url(server.admin_url, name)))
    try:
        run.drop_all()
    finally:
        lingering.close()
    with connect(normalize_url(server.admin_url)) as admin:
        assert name not in databases(admin)


def test_template_in_use_is_a_clear_error(server: ServerInfo) -> None:
    run = RunDatabases(server.admin_url, new_run_id())
    run.open()
    try:
        template = run.create_template(None)
        template_url = normalize_url(database_url(server.admin_url, template))
        # PostgreSQL waits 5 s for the other session to go before it gives up.
        with connect(template_url), pytest.raises(SqlaperfError) as raised:
            run.create_database("gw0", template=template)
        assert "being accessed by other users" in str(raised.value)
        assert "Close every connection to the template database" in str(raised.value)
    finally:
        run.drop_all()


def test_open_sweeps_dead_runs_only(server: ServerInfo, admin: psycopg.Connection[Any]) -> None:
    dead, alive = new_run_id(), new_run_id()
    dead_names = [f"sqlaperf_{dead}_template", f"sqlaperf_{dead}_gw0"]
    alive_names = [f"sqlaperf_{alive}_template", f"sqlaperf_{alive}_gw3"]
    foreign = ["sqlaperf_demo", f"sqlaperf_{dead}", f"app_{dead}_gw0", "sqlaperf_XYZ_gw0"]
    for name in dead_names + alive_names + foreign:
        admin.execute(psycopg.sql.SQL("CREATE DATABASE {}").format(psycopg.sql.Identifier(name)))
    # A session of the dead run's database is still connected: FORCE takes care of it.
    leftover = connect(normalize_url(database_url(server.admin_url, dead_names[1])))
    try:
        with connect(normalize_url(server.admin_url)) as alive_run:
            alive_run.execute("SELECT pg_advisory_lock_shared(%s)", (run_lock_key(alive),))
            run = RunDatabases(server.admin_url, new_run_id())
            run.open()
            try:
                assert sorted(run.dropped_leftovers) == sorted(dead_names)
                remaining = databases(admin)
                assert not set(dead_names) & remaining
                assert set(alive_names + foreign) <= remaining
            finally:
                run.drop_all()
    finally:
        leftover.close()
        for name in alive_names + foreign:
            admin.execute(
                psycopg.sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(
                    psycopg.sql.Identifier(name)
                )
            )


def test_a_run_is_alive_to_runs_connected_to_another_database(
    server: ServerInfo, admin: psycopg.Connection[Any]
) -> None:
    # Advisory locks belong to a database: a run whose URL names another database than the
    # live run's must still see the live run's lock (it once took it for dead, and dropped its
    # databases).
    other = f"app_{new_run_id()}"
    admin.execute(psycopg.sql.SQL("CREATE DATABASE {}").format(psycopg.sql.Identifier(other)))
    alive = RunDatabases(server.admin_url, new_run_id())
    alive.open()
    try:
        template = alive.create_template(create_schema)
        sweeper = RunDatabases(database_url(server.admin_url, other), new_run_id())
        sweeper.open()
        try:
            assert sweeper.dropped_leftovers == []
            assert template in databases(admin)
        finally:
            sweeper.drop_all()
    finally:
        alive.drop_all()
        admin.execute(
            psycopg.sql.SQL("DROP DATABASE {} WITH (FORCE)").format(psycopg.sql.Identifier(other))
        )


def test_workers_of_one_run_share_its_lock(server: ServerInfo) -> None:
    run_id = new_run_id()
    controller, worker = (
        RunDatabases(server.admin_url, run_id),
        RunDatabases(server.admin_url, run_id),
    )
    controller.open()
    worker.open()  # does not block: the run's lock is shared
    try:
        template = controller.create_template(create_schema)
        worker.create_database("gw0", template=template)
        other_run = RunDatabases(server.admin_url, new_run_id())
        other_run.open()
        assert other_run.dropped_leftovers == []
        other_run.drop_all()
    finally:
        worker.drop_all()
        controller.drop_all()


def test_bad_suffix_and_run_id_are_refused(server: ServerInfo) -> None:
    with pytest.raises(ValueError, match="run id"):
        RunDatabases(server.admin_url, "not-a-run-id")
    run = RunDatabases(server.admin_url, new_run_id())
    run.open()
    try:
        with pytest.raises(ValueError, match="suffix"):
            run.create_database('gw0"; DROP DATABASE postgres; --')
    finally:
        run.drop_all()


def test_unreachable_server_is_a_masked_error(tmp_path: Any) -> None:
    url = f"postgresql+psycopg://postgres:s3cret@/postgres?host={tmp_path}&port=5999"
    with pytest.raises(SqlaperfError) as raised:
        RunDatabases(url, new_run_id()).open()
    assert "postgres:***@" in str(raised.value)
    assert "s3cret" not in str(raised.value)
