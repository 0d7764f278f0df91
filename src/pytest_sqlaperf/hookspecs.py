"""Hooks pytest-sqlaperf offers to users' conftest.py files and plugins."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection


@pytest.hookspec()
def pytest_sqlaperf_setup_database(connection: Connection) -> None:
    """Build the test database's schema once per run, for what ``sqlaperf_metadata`` cannot do.

    Called after ``sqlaperf_metadata`` (if set) was created, inside the transaction that builds the
    template database every worker's database is cloned from; it is committed after the last
    implementation returns. Use it for Alembic, extensions or raw DDL.

    :param connection: a synchronous SQLAlchemy ``Connection`` to the template database.

    Example, in ``conftest.py``::

        from sqlalchemy import text

        def pytest_sqlaperf_setup_database(connection):
            connection.execute(text("CREATE EXTENSION IF NOT EXISTS pg_trgm"))
            Base.metadata.create_all(connection)
    """
