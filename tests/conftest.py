"""Shared helpers for the plugin's own tests: inner pytest runs through pytester."""

from __future__ import annotations

# Imported here so that pytester's in-process runs find them already imported: a module first
# imported inside an inner run is dropped after it; SQLAlchemy then warns when its dialects
# register their SQL functions a second time, and C extensions (asyncpg) crash when re-imported.
import asyncpg  # noqa: F401
import greenlet  # noqa: F401
import psycopg  # noqa: F401
import pytest
import sqlalchemy.dialects.postgresql.asyncpg
import sqlalchemy.dialects.postgresql.psycopg
import sqlalchemy.ext.asyncio  # noqa: F401

MODELS = """
from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship


class Base(DeclarativeBase):
    pass


class Author(Base):
    __tablename__ = "authors"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(50))
    books: Mapped[list["Book"]] = relationship(back_populates="author")


class Book(Base):
    __tablename__ = "books"
    id: Mapped[int] = mapped_column(primary_key=True)
    title: Mapped[str] = mapped_column(String(100))
    author_id: Mapped[int] = mapped_column(ForeignKey("authors.id"))
    author: Mapped[Author] = relationship(back_populates="books")
"""


@pytest.fixture
def pytester(pytester: pytest.Pytester) -> pytest.Pytester:
    """pytester with pytest-asyncio's loop scope set, so inner runs start without its warning."""
    pytester.makeini("[pytest]\nasyncio_default_fixture_loop_scope = function\n")
    return pytester


@pytest.fixture
def project(pytester: pytest.Pytester) -> pytest.Pytester:
    """A pytester project with a small schema (authors, books) wired through sqlaperf_metadata."""
    pytester.makepyfile(models=MODELS)
    pytester.makeini(
        """
        [pytest]
        sqlaperf_metadata = models:Base.metadata
        pythonpath = .
        asyncio_default_fixture_loop_scope = function
        """
    )
    return pytester
