"""Database URLs: masking passwords, normalising to SQLAlchemy + psycopg, connecting."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from pytest_sqlaperf.errors import SqlaperfError

if TYPE_CHECKING:
    import psycopg
    from sqlalchemy.engine import URL

__all__ = ["connect", "mask_url", "normalize_url", "with_database"]

_MASK = "***"
_EXAMPLE = "postgresql://user:password@localhost:5432/postgres"
_POSTGRES_SCHEMES = ("postgresql", "postgres")
_SSL_PARAMETER = {"psycopg": "sslmode", "asyncpg": "ssl"}
# password=... as a URL query parameter or as a libpq keyword/value pair, quoted or not.
_PASSWORD_PARAM_RE = re.compile(r"(\bpassword\s*=\s*)('(?:[^'\\]|\\.)*'|[^&\s]*)", re.IGNORECASE)


def mask_url(url: str) -> str:
    """Return ``url`` with any password replaced by ``***``; other text is left as it is.

    Handles URLs (``scheme://user:password@host/db?password=...``) and libpq keyword/value
    strings (``host=h password=secret``).
    """
    scheme_end = url.find("://")
    if scheme_end < 0:
        return _PASSWORD_PARAM_RE.sub(_mask_param, url)
    authority_start = scheme_end + 3
    query_start = min((i for i in (url.find("?"), url.find("#")) if i >= 0), default=len(url))
    # The userinfo ends at the last "@" before the query, so an unencoded "@" or "/" in a password
    # cannot leak the rest of it; failing that, at the first "@" after "user:" when no "/" comes
    # between (an unencoded "?" in a password).
    at = url.rfind("@", authority_start, query_start)
    if at < 0:
        colon = url.find(":", authority_start)
        first_at = url.find("@", colon) if colon >= 0 else -1
        if first_at >= 0 and "/" not in url[colon:first_at]:
            at = first_at
    userinfo = url[authority_start:at] if at >= 0 else ""
    if ":" not in userinfo:
        return url[:authority_start] + _PASSWORD_PARAM_RE.sub(_mask_param, url[authority_start:])
    user = userinfo.split(":", 1)[0]
    rest = _PASSWORD_PARAM_RE.sub(_mask_param, url[at:])
    return f"{url[:authority_start]}{user}:{_MASK}{rest}"


def _mask_param(match: re.Match[str]) -> str:
    return match.group(1) + _MASK


def normalize_url(url: str, *, what: str = "--sqlaperf-url") -> URL:
    """Parse a libpq or SQLAlchemy PostgreSQL URL into a SQLAlchemy URL using psycopg."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    scheme = url.split("://", 1)[0] if "://" in url else ""
    dialect = scheme.split("+", 1)[0].lower()
    if dialect not in _POSTGRES_SCHEMES:
        found = f"scheme {scheme!r}" if scheme else "no scheme"
        raise SqlaperfError(
            f"{what}={mask_url(url)} is not a PostgreSQL URL ({found}); "
            f"give one like {_EXAMPLE} (postgres://, or a SQLAlchemy URL such as "
            "postgresql+psycopg://, postgresql+asyncpg:// is accepted too)"
        )
    try:
        parsed = with_database(make_url(f"{scheme}://{url.split('://', 1)[1]}"), None)
    except (ArgumentError, ValueError) as error:
        raise SqlaperfError(
            f"{what}={mask_url(url)} cannot be parsed ({mask_url(str(error))}); "
            f"give one like {_EXAMPLE}, with special characters in the password percent-encoded"
        ) from None
    return parsed


def with_database(url: URL, database: str | None, *, driver: str = "psycopg") -> URL:
    """The same server and credentials as ``url``, with another driver (and database if given)."""
    if driver not in _SSL_PARAMETER:
        raise ValueError(f"driver must be 'psycopg' or 'asyncpg', not {driver!r}")
    converted = url.set(drivername=f"postgresql+{driver}")
    if database is not None:
        converted = converted.set(database=database)
    # The one query parameter both drivers have under different names: libpq's sslmode is
    # asyncpg's ssl, with the same values.
    wanted = _SSL_PARAMETER[driver]
    for other in set(_SSL_PARAMETER.values()) - {wanted}:
        if other in converted.query and wanted not in converted.query:
            value = converted.query[other]
            converted = converted.difference_update_query([other])
            converted = converted.update_query_dict({wanted: value})
    return converted


def connect(
    url: URL, *, autocommit: bool = True, connect_timeout: int = 10
) -> psycopg.Connection[Any]:
    """Open a psycopg connection to a SQLAlchemy URL, without going through an engine."""
    import psycopg

    params: dict[str, Any] = url.translate_connect_args(username="user", database="dbname")
    params.update(url.query)
    params.setdefault("connect_timeout", connect_timeout)
    return psycopg.connect(autocommit=autocommit, **params)
