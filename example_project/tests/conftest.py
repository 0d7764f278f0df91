"""Fixtures of the example suite: the field-encryption key, factories, and a small blog."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from cryptography.fernet import Fernet
from sqlalchemy.ext.asyncio import AsyncSession

from blog.types import FIELD_KEY_VARIABLE
from tests.factories import Blog, BlogFactory, build_blog


@pytest.fixture(autouse=True, scope="session")
def field_key() -> Iterator[str]:
    """A fresh encryption key for EncryptedString columns, for the whole run."""
    key = Fernet.generate_key().decode()
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(FIELD_KEY_VARIABLE, key)
        yield key


@pytest.fixture
def session(sqlaperf_async_session: AsyncSession) -> AsyncSession:
    """The plugin's isolated AsyncSession, under a shorter name."""
    return sqlaperf_async_session


@pytest.fixture
def make(session: AsyncSession) -> BlogFactory:
    """Factories writing to ``session``."""
    return BlogFactory(session)


@pytest.fixture
async def blog(make: BlogFactory) -> Blog:
    """A small site (see ``build_blog``), flushed, with the session emptied."""
    return await build_blog(make)
