"""A PostgreSQL server in a Docker container, through testcontainers (an optional dependency)."""

from __future__ import annotations

import os
import secrets
import socket
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from pytest_sqlaperf.errors import SqlaperfError
from pytest_sqlaperf.postgres.server import ServerInfo
from pytest_sqlaperf.postgres.urls import connect, normalize_url

__all__ = ["DEFAULT_IMAGE", "DockerServer", "docker_available"]

DEFAULT_IMAGE = "postgres:16-alpine"
_PING_TIMEOUT = 0.5


def docker_available() -> bool:
    """Whether a Docker daemon answers ``/_ping``: quick (< 1 s), without testcontainers."""
    host = os.environ.get("DOCKER_HOST", "")
    if host.startswith("tcp://"):
        parts = urlsplit(host)
        if parts.hostname is None:
            return False
        return _ping(socket.AF_INET, (parts.hostname, parts.port or 2375))
    if host.startswith("unix://"):
        return _ping(socket.AF_UNIX, host[len("unix://") :])
    if host:
        # ssh:// and others need the Docker client: leave the answer to testcontainers.
        return False
    candidates = [Path("/var/run/docker.sock"), Path("~/.docker/run/docker.sock").expanduser()]
    runtime_dir = os.environ.get("XDG_RUNTIME_DIR")
    if runtime_dir:
        candidates.append(Path(runtime_dir) / "docker.sock")
    return any(path.exists() and _ping(socket.AF_UNIX, str(path)) for path in candidates)


def _ping(family: int, address: Any) -> bool:
    try:
        with socket.socket(family, socket.SOCK_STREAM) as connection:
            connection.settimeout(_PING_TIMEOUT)
            connection.connect(address)
            connection.sendall(b"GET /_ping HTTP/1.0\r\nHost: docker\r\n\r\n")
            reply = connection.recv(64)
    except OSError:
        return False
    return reply.startswith(b"HTTP/1.") and b" 200 " in reply.split(b"\r\n", 1)[0] + b" "


class DockerServer:
    """A throwaway ``postgres`` container for the run, removed at stop()."""

    def __init__(self, image: str = DEFAULT_IMAGE, *, run_id: str) -> None:
        self.image = image
        self.run_id = run_id
        self._container: Any = None

    def __repr__(self) -> str:
        return f"DockerServer({self.image!r}, run_id={self.run_id!r})"

    def start(self) -> ServerInfo:
        """Start the container and wait until PostgreSQL in it accepts connections."""
        try:
            # An optional dependency, absent (and so without types) in most installs.
            from testcontainers.postgres import (  # type: ignore[import-not-found,unused-ignore]
                PostgresContainer,
            )
        except ImportError:
            raise SqlaperfError(
                "--sqlaperf-backend=docker needs testcontainers; install pytest-sqlaperf[docker] "
                "(pip install 'pytest-sqlaperf[docker]'), or use the embedded or url backend"
            ) from None
        # A random password: the container's port is published on the host.
        container = PostgresContainer(
            self.image,
            username="postgres",
            password=secrets.token_urlsafe(16),
            dbname="postgres",
            driver="psycopg",
        )
        container.with_name(f"sqlaperf-{self.run_id}")
        try:
            container.start()
        except Exception as error:
            raise SqlaperfError(
                f"Could not start the Docker container {self.image}: {error}\n"
                "Check that Docker is running (docker info) and that the image can be pulled, "
                "or use the embedded backend or --sqlaperf-url"
            ) from None
        self._container = container
        try:
            url = normalize_url(container.get_connection_url(), what="docker container URL")
            with connect(url) as connection:
                row = connection.execute("SHOW server_version").fetchone()
        except BaseException:
            self.stop()
            raise
        version = str(row[0]) if row else "unknown"
        return ServerInfo(
            backend="docker",
            admin_url=url.render_as_string(hide_password=False),
            description=(
                f"PostgreSQL {version.split()[0]} in Docker ({self.image}, "
                f"{url.render_as_string(hide_password=True)})"
            ),
            version=version,
        )

    def stop(self) -> None:
        """Stop and remove the container; idempotent."""
        container, self._container = self._container, None
        if container is not None:
            try:
                container.stop()
            except Exception:
                # Stop is best effort: testcontainers' reaper (Ryuk) removes it otherwise.
                return
