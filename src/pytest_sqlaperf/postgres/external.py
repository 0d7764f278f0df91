"""An existing PostgreSQL server given by URL; we create databases on it but never stop it."""

from __future__ import annotations

from pytest_sqlaperf.errors import SqlaperfError
from pytest_sqlaperf.postgres.server import ServerInfo
from pytest_sqlaperf.postgres.urls import connect, mask_url, normalize_url

__all__ = ["UrlServer"]


class UrlServer:
    """A server reached by a libpq URL (``postgresql://``, ``postgres://``) or a SQLAlchemy URL.

    Any driver suffix is accepted; the admin URL always uses ``postgresql+psycopg``. The URL is
    validated at construction, and a connection is made at start() to read the version.
    """

    def __init__(self, url: str, *, run_id: str) -> None:
        self.run_id = run_id
        self._url = normalize_url(url)
        self.masked_url = mask_url(url)

    def __repr__(self) -> str:
        return f"UrlServer({self.masked_url!r}, run_id={self.run_id!r})"

    def start(self) -> ServerInfo:
        """Connect once to check the server and read its version."""
        import psycopg

        try:
            with connect(self._url) as connection:
                row = connection.execute("SHOW server_version").fetchone()
        except psycopg.Error as error:
            message = mask_url(str(error).strip()) or type(error).__name__
            raise SqlaperfError(
                f"Could not connect to --sqlaperf-url={self.masked_url}: {message}\n"
                "Check that the server is running and that the host, port, user, password and "
                "database in the URL are right, or leave --sqlaperf-url unset to use an embedded "
                "server"
            ) from None
        version = str(row[0]) if row else "unknown"
        shown = self._url.render_as_string(hide_password=True)
        return ServerInfo(
            backend="url",
            admin_url=self._url.render_as_string(hide_password=False),
            description=f"PostgreSQL {version.split()[0]} at {shown}",
            version=version,
        )

    def stop(self) -> None:
        """Nothing to stop: the server is not ours."""
