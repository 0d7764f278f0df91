"""The Docker backend: detecting a daemon quickly, and a real container where there is one."""

from __future__ import annotations

import importlib.util
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from pytest_sqlaperf.errors import SqlaperfError
from pytest_sqlaperf.postgres.databases import RunDatabases
from pytest_sqlaperf.postgres.docker import DockerServer, docker_available
from pytest_sqlaperf.postgres.server import new_run_id

has_testcontainers = importlib.util.find_spec("testcontainers") is not None


@pytest.fixture
def fake_daemon(tmp_path: Path) -> Iterator[Path]:
    """A unix socket answering Docker's ``/_ping`` like a daemon does (not a PostgreSQL mock)."""
    path = tmp_path / "docker.sock"
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(str(path))
    listener.listen()

    def serve() -> None:
        connection, _ = listener.accept()
        with connection:
            connection.recv(1024)
            connection.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nOK")

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield path
    listener.close()
    thread.join(timeout=5)


def test_docker_available_pings_docker_host(
    fake_daemon: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DOCKER_HOST", f"unix://{fake_daemon}")
    assert docker_available() is True


def test_docker_available_is_false_without_a_daemon(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/docker.sock")
    assert docker_available() is False
    monkeypatch.setenv("DOCKER_HOST", "tcp://127.0.0.1:9")
    assert docker_available() is False


@pytest.mark.skipif(has_testcontainers, reason="testcontainers is installed")
def test_missing_testcontainers_says_what_to_install() -> None:
    with pytest.raises(SqlaperfError, match=r"install pytest-sqlaperf\[docker\]"):
        DockerServer(run_id=new_run_id()).start()


@pytest.mark.skipif(not has_testcontainers, reason="testcontainers is not installed")
@pytest.mark.skipif(not docker_available(), reason="no Docker daemon (docker_available() is False)")
def test_docker_server_runs_databases() -> None:
    server = DockerServer(run_id=new_run_id())
    info = server.start()
    try:
        assert info.backend == "docker"
        assert info.version.startswith("16.")
        run = RunDatabases(info.admin_url, server.run_id)
        run.open()
        try:
            run.create_database("gw0", template=run.create_template(None))
        finally:
            run.drop_all()
    finally:
        server.stop()
    server.stop()
