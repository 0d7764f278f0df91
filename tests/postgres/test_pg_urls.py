"""URLs: masking passwords everywhere, normalising libpq and SQLAlchemy forms, clear errors."""

from __future__ import annotations

import pytest

from pytest_sqlaperf.errors import SqlaperfError
from pytest_sqlaperf.postgres.databases import database_url
from pytest_sqlaperf.postgres.server import ServerInfo, mask_url
from pytest_sqlaperf.postgres.urls import normalize_url


@pytest.mark.parametrize(
    ("url", "masked"),
    [
        ("postgresql://app:s3cret@db:5432/app", "postgresql://app:***@db:5432/app"),
        ("postgresql+asyncpg://app:s3cret@db/app", "postgresql+asyncpg://app:***@db/app"),
        ("postgres://app:p@ss/w@rd@db/app", "postgres://app:***@db/app"),
        ("postgresql://app:pa?ss@db/app", "postgresql://app:***@db/app"),
        ("postgresql://app@db/app?password=s3cret&sslmode=require",
         "postgresql://app@db/app?password=***&sslmode=require"),
        ("host=db user=app password=s3cret dbname=app", "host=db user=app password=*** dbname=app"),
        ("host=db password='s3 cret' dbname=app", "host=db password=*** dbname=app"),
        ("postgresql://app@db/app", "postgresql://app@db/app"),
        ("postgresql://db:5432/app?application_name=a@b", "postgresql://db:5432/app?application_name=a@b"),
        ("postgresql+psycopg://postgres@/postgres?host=/dev/shm/sqlaperf-1/sock&port=5432",
         "postgresql+psycopg://postgres@/postgres?host=/dev/shm/sqlaperf-1/sock&port=5432"),
        ("not a url at all", "not a url at all"),
    ],
)  # fmt: skip
def test_mask_url(url: str, masked: str) -> None:
    assert mask_url(url) == masked


@pytest.mark.parametrize(
    "url",
    [
        "postgresql://app:s3cret@db:6543/appdb",
        "postgres://app:s3cret@db:6543/appdb",
        "postgresql+psycopg://app:s3cret@db:6543/appdb",
        "postgresql+asyncpg://app:s3cret@db:6543/appdb",
        "postgresql+psycopg2://app:s3cret@db:6543/appdb",
        "postgresql+pg8000://app:s3cret@db:6543/appdb",
        "POSTGRESQL://app:s3cret@db:6543/appdb",
    ],
)
def test_normalize_url_accepts_libpq_and_any_driver(url: str) -> None:
    parsed = normalize_url(url)
    assert parsed.drivername == "postgresql+psycopg"
    assert (parsed.username, parsed.password, parsed.host, parsed.port, parsed.database) == (
        "app",
        "s3cret",
        "db",
        6543,
        "appdb",
    )


def test_normalize_url_decodes_percent_encoded_passwords() -> None:
    assert normalize_url("postgresql://app:p%40ss%2Fword@db/app").password == "p@ss/word"


@pytest.mark.parametrize(
    ("url", "found"),
    [
        ("mysql://app:s3cret@db/app", "scheme 'mysql'"),
        ("sqlite:///app.db", "scheme 'sqlite'"),
        ("db.example.com:5432", "no scheme"),
    ],
)
def test_not_a_postgres_url(url: str, found: str) -> None:
    with pytest.raises(SqlaperfError) as raised:
        normalize_url(url)
    message = str(raised.value)
    assert found in message
    assert "s3cret" not in message
    assert "postgresql://user:password@localhost:5432/postgres" in message


def test_unparsable_url_is_reported_masked() -> None:
    with pytest.raises(SqlaperfError) as raised:
        normalize_url("postgresql://app:s3cret@db:notaport/app")
    message = str(raised.value)
    assert "cannot be parsed" in message
    assert "postgresql://app:***@db:notaport/app" in message
    assert "s3cret" not in message


def test_database_url_keeps_server_and_credentials() -> None:
    admin = "postgresql+psycopg://postgres:s3cret@/postgres?host=/dev/shm/sqlaperf-x/sock&port=5432"
    sync = normalize_url(database_url(admin, "sqlaperf_0123456789ab_gw0"))
    assert sync.drivername == "postgresql+psycopg"
    assert sync.database == "sqlaperf_0123456789ab_gw0"
    assert sync.password == "s3cret"
    assert sync.query == {"host": "/dev/shm/sqlaperf-x/sock", "port": "5432"}
    async_url = database_url(admin, "db", driver="asyncpg")
    assert async_url.startswith("postgresql+asyncpg://postgres:s3cret@/db?")
    with pytest.raises(ValueError, match="driver"):
        database_url(admin, "db", driver="pg8000")


def test_ssl_parameter_follows_the_driver() -> None:
    assert normalize_url("postgresql+asyncpg://app@db/app?ssl=require").query == {
        "sslmode": "require"
    }
    admin = "postgresql+psycopg://app@db/app?sslmode=verify-full&application_name=t"
    assert "ssl=verify-full" in database_url(admin, "db", driver="asyncpg")
    assert "sslmode" not in database_url(admin, "db", driver="asyncpg")


def test_server_info_repr_hides_the_password() -> None:
    info = ServerInfo("url", "postgresql+psycopg://app:s3cret@db/app", "PostgreSQL 16.4", "16.4")
    assert "s3cret" not in repr(info)
    assert info.admin_url.endswith("app:s3cret@db/app")
