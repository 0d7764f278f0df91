"""The one PostgreSQL server the benchmarks share, started through the plugin's server layer."""

from __future__ import annotations

import sys
import types
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.engine import Connection

from bench.projects import MODELS
from pytest_sqlaperf.postgres.binaries import find_binaries
from pytest_sqlaperf.postgres.databases import RunDatabases, database_url
from pytest_sqlaperf.postgres.embedded import EmbeddedServer
from pytest_sqlaperf.postgres.server import new_run_id


@dataclass(frozen=True)
class BenchServer:
    """The server's admin URL and version, and the workload database with the schema created."""

    admin_url: str
    version: str
    url: str
    async_url: str


def _create_schema(connection: Connection) -> None:
    # The models the generated projects import, from the same source; registered in sys.modules
    # while they are used because SQLAlchemy resolves string annotations through it.
    module = types.ModuleType("bench_models")
    sys.modules[module.__name__] = module
    try:
        exec(compile(MODELS, "<bench models>", "exec"), module.__dict__)
        module.Base.metadata.create_all(connection)
    finally:
        del sys.modules[module.__name__]


@contextmanager
def bench_server(cluster_cache: Path) -> Iterator[BenchServer]:
    """Start an embedded server (cluster cache in ``cluster_cache``), create the workload database.

    Everything is dropped and stopped on the way out, whatever happens.
    """
    run_id = new_run_id()
    server = EmbeddedServer(find_binaries(), run_id=run_id, cache_dir=cluster_cache)
    try:
        info = server.start()
        databases = RunDatabases(info.admin_url, run_id)
        try:
            databases.open()
            # The template database serves as the workload database: nothing is cloned from it.
            name = databases.create_template(_create_schema)
            yield BenchServer(
                admin_url=info.admin_url,
                version=info.version,
                url=database_url(info.admin_url, name, driver="psycopg"),
                async_url=database_url(info.admin_url, name, driver="asyncpg"),
            )
        finally:
            databases.drop_all()
    finally:
        server.stop()
