"""An existing server by URL (the embedded one stands in for it), and choosing the backend."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from pytest_sqlaperf.errors import SqlaperfError
from pytest_sqlaperf.postgres import binaries
from pytest_sqlaperf.postgres.binaries import PgBinaries
from pytest_sqlaperf.postgres.docker import DockerServer
from pytest_sqlaperf.postgres.embedded import EmbeddedServer
from pytest_sqlaperf.postgres.external import UrlServer
from pytest_sqlaperf.postgres.server import ServerInfo, make_server, new_run_id
from pytest_sqlaperf.postgres.urls import normalize_url


def socket_dir(info: ServerInfo) -> str:
    return str(normalize_url(info.admin_url).query["host"])


@pytest.mark.parametrize(
    "scheme", ["postgresql", "postgres", "postgresql+psycopg", "postgresql+asyncpg"]
)
def test_url_server_reaches_the_server(server: ServerInfo, scheme: str) -> None:
    # Trust authentication ignores the password, which must still never be shown.
    url = f"{scheme}://postgres:s3cret@/postgres?host={socket_dir(server)}&port=5432"
    url_server = UrlServer(url, run_id=new_run_id())
    info = url_server.start()
    assert info.backend == "url"
    assert info.version == server.version
    assert normalize_url(info.admin_url).password == "s3cret"
    assert info.admin_url.startswith("postgresql+psycopg://postgres:s3cret@/postgres?")
    assert "s3cret" not in info.description
    assert "***" in info.description
    assert "s3cret" not in repr(url_server)
    url_server.stop()
    url_server.stop()


def test_url_server_connection_failure_is_masked(server: ServerInfo) -> None:
    url = f"postgresql://postgres:s3cret@/no_such_db?host={socket_dir(server)}&port=5432"
    with pytest.raises(SqlaperfError) as raised:
        UrlServer(url, run_id=new_run_id()).start()
    message = str(raised.value)
    assert 'database "no_such_db" does not exist' in message
    assert "postgresql://postgres:***@/no_such_db" in message
    assert "s3cret" not in message


def test_url_server_without_a_server(tmp_path: Path) -> None:
    url = f"postgresql://app:s3cret@/app?host={tmp_path}&port=5999"
    with pytest.raises(SqlaperfError) as raised:
        UrlServer(url, run_id=new_run_id()).start()
    message = str(raised.value)
    assert "Could not connect to --sqlaperf-url=postgresql://app:***@/app" in message
    assert "s3cret" not in message


def test_url_server_rejects_other_databases() -> None:
    with pytest.raises(SqlaperfError, match="is not a PostgreSQL URL"):
        UrlServer("mysql://app:s3cret@db/app", run_id=new_run_id())


def test_make_server_chooses_the_backend(pg16: PgBinaries) -> None:
    def make(backend: str, url: str | None, pg_bin: str | None = None) -> object:
        return make_server(backend, url=url, pg_bin=pg_bin, pg_user="nobody", run_id=new_run_id())

    url = "postgresql://app@db/app"
    assert isinstance(make("auto", url), UrlServer)
    assert isinstance(make("url", url), UrlServer)
    assert isinstance(make("auto", None), EmbeddedServer)
    assert isinstance(make("docker", None), DockerServer)
    embedded = make("embedded", None, str(pg16.bindir))
    assert isinstance(embedded, EmbeddedServer)
    assert embedded.binaries.bindir == pg16.bindir


def test_make_server_errors(tmp_path: Path) -> None:
    def make(backend: str, url: str | None, pg_bin: str | None = None) -> object:
        return make_server(backend, url=url, pg_bin=pg_bin, pg_user="nobody", run_id=new_run_id())

    with pytest.raises(SqlaperfError, match="needs a server URL; set --sqlaperf-url"):
        make("url", None)
    with pytest.raises(SqlaperfError, match="'kubernetes' is not a backend; choose one of auto"):
        make("kubernetes", None)
    # A wrong explicit path is reported even where Docker could have been used instead.
    with pytest.raises(SqlaperfError, match="--sqlaperf-pg-bin="):
        make("auto", None, str(tmp_path))


def test_auto_without_any_server_explains_all_three_ways(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setattr(binaries, "_SYSTEM_ROOT", tmp_path / "missing")
    monkeypatch.setattr(binaries, "_BUNDLE_PACKAGE", "no_such_package_for_sqlaperf")
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/docker.sock")
    with pytest.raises(SqlaperfError) as raised:
        make_server("auto", url=None, pg_bin=None, pg_user="nobody", run_id=new_run_id())
    message = str(raised.value)
    for way in ("apt-get install postgresql", "--sqlaperf-url", "Docker"):
        assert way in message


PRELOAD_SCRIPT = """
import sys
from pytest_sqlaperf.postgres.server import PRELOAD, preload_drivers
assert not any(name in sys.modules for name in PRELOAD), "imported before the preload"
thread = preload_drivers()
assert preload_drivers() is thread
thread.join(60)
print(thread.is_alive(), all(name in sys.modules for name in PRELOAD))
"""


def test_preload_imports_the_drivers_once_in_a_thread() -> None:
    # A fresh interpreter: this one imported the drivers long ago.
    completed = subprocess.run(
        [sys.executable, "-c", PRELOAD_SCRIPT], capture_output=True, text=True, timeout=120
    )
    assert completed.returncode == 0, completed.stderr
    assert completed.stdout.split() == ["False", "True"]
