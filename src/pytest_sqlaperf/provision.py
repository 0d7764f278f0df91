"""The run's PostgreSQL server and databases: started on first use, dropped and stopped once."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

from sqlalchemy.engine import Connection

from .postgres.databases import RunDatabases, database_url
from .postgres.server import Server, ServerInfo, make_server, preload_drivers
from .settings import Settings

SetupDatabase = Callable[[Connection], None]


@dataclass(frozen=True)
class WorkerDatabase:
    """One database of the run (a worker's, or the only one in a serial run), by driver."""

    name: str
    url: str
    async_url: str


class Provisioner:
    """Owns the run's server (when this process started it) and the databases made on it.

    In a serial run it starts the server and builds the template on first use. Under xdist the
    controller does that once and hands :meth:`handoff` to the workers, which ``attach`` and clone
    their own database from the template.
    """

    def __init__(
        self,
        settings: Settings,
        run_id: str,
        setup: SetupDatabase,
        *,
        attached: dict[str, Any] | None = None,
    ) -> None:
        self._settings = settings
        self._run_id = run_id
        self._setup = setup
        self._lock = threading.Lock()
        self._server: Server | None = None
        self._info: ServerInfo | None = None
        self._databases: RunDatabases | None = None
        self._template: str | None = None
        if attached is not None:
            self._info = ServerInfo(**attached["server"])
            self._template = attached["template"]

    @property
    def info(self) -> ServerInfo | None:
        """The server, once started or attached; None before first use."""
        return self._info

    def _start(self) -> tuple[ServerInfo, RunDatabases, str]:
        preload = preload_drivers()  # imports while the server starts (or the URL's is reached)
        if self._info is None:
            server = make_server(
                self._settings.backend,
                url=self._settings.url,
                pg_bin=self._settings.pg_bin,
                pg_user=self._settings.pg_user,
                docker_image=self._settings.docker_image,
                run_id=self._run_id,
            )
            self._server = server
            self._info = server.start()
        if self._databases is None:
            self._databases = RunDatabases(
                self._info.admin_url, self._run_id, file_copy=self._info.backend == "embedded"
            )
            self._databases.open()
        if self._template is None:
            self._template = self._databases.create_template(self._setup)
        # Done by now (the steps above import the same modules); joined so that no import is
        # left running when tests start (a test that forks must not copy a held import lock).
        preload.join()
        return self._info, self._databases, self._template

    def handoff(self) -> dict[str, Any]:
        """What a worker needs to attach: the server and the template (starts them if needed)."""
        with self._lock:
            info, _, template = self._start()
            return {"server": asdict(info), "template": template}

    def database(self, suffix: str) -> WorkerDatabase:
        """A new database cloned from the template, e.g. ``main`` or the xdist worker id."""
        with self._lock:
            info, databases, template = self._start()
            name = databases.create_database(suffix, template=template)
            return WorkerDatabase(
                name=name,
                url=database_url(info.admin_url, name, driver="psycopg"),
                async_url=database_url(info.admin_url, name, driver="asyncpg"),
            )

    def close(self) -> None:
        """Drop the databases this process made and stop the server if this process started it."""
        with self._lock:
            try:
                if self._databases is not None:
                    self._databases.drop_all()
            finally:
                self._databases = None
                if self._server is not None:
                    self._server.stop()
                    self._server = None
