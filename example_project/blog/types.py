"""Column types: a UUID, a JSONB with a JSON fallback, and a Fernet-encrypted string."""

from __future__ import annotations

import os
import uuid
from typing import Any

from cryptography.fernet import Fernet
from sqlalchemy import CHAR, JSON, Dialect, Text
from sqlalchemy.dialects import postgresql
from sqlalchemy.types import TypeDecorator, TypeEngine

FIELD_KEY_VARIABLE = "BLOG_FIELD_KEY"


class UUIDType(TypeDecorator[uuid.UUID]):
    """A UUID: PostgreSQL's native ``uuid``, 32 hex characters elsewhere.

    The reference kept ``impl = String(36)`` on every database, so PostgreSQL stored UUIDs as
    varchar: 37 bytes instead of 16, compared and indexed as text.
    """

    impl = CHAR(32)
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name == "postgresql":
            return dialect.type_descriptor(postgresql.UUID(as_uuid=True))
        return dialect.type_descriptor(CHAR(32))

    def process_bind_param(self, value: uuid.UUID | None, dialect: Dialect) -> Any:
        if value is None or dialect.name == "postgresql":
            return value
        return value.hex

    def process_result_value(self, value: Any, dialect: Dialect) -> uuid.UUID | None:
        if value is None or isinstance(value, uuid.UUID):
            return value
        return uuid.UUID(value)


class JSONBType(TypeDecorator[Any]):
    """JSON stored as ``jsonb`` on PostgreSQL (indexable, compact) and as JSON elsewhere."""

    impl = JSON
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name == "postgresql":
            return dialect.type_descriptor(postgresql.JSONB())
        return dialect.type_descriptor(JSON())


def field_cipher() -> Fernet:
    """The Fernet cipher of encrypted columns, keyed by the ``BLOG_FIELD_KEY`` environment variable.

    Read on each use, not at import, so the key can come from the environment after start-up.
    """
    key = os.environ.get(FIELD_KEY_VARIABLE)
    if not key:
        raise RuntimeError(
            f"{FIELD_KEY_VARIABLE} is not set; generate a key with `python -c 'from "
            "cryptography.fernet import Fernet; print(Fernet.generate_key().decode())'`"
        )
    return Fernet(key)


class EncryptedString(TypeDecorator[str]):
    """A string stored as a Fernet token (AES-128-CBC with HMAC-SHA256).

    Tokens are longer than their plaintext, so the column is ``text``: the reference's bare
    ``String`` invited a length that tokens outgrow. Encryption is randomised, so the column
    cannot be searched or compared with ``==`` in SQL; look rows up by another column.
    """

    impl = Text
    cache_ok = True

    def process_bind_param(self, value: str | None, dialect: Dialect) -> str | None:
        if value is None:
            return None
        return field_cipher().encrypt(value.encode()).decode()

    def process_result_value(self, value: str | None, dialect: Dialect) -> str | None:
        if value is None:
            return None
        return field_cipher().decrypt(value.encode()).decode()
