"""Helpers of the baseline and report tests: an inner app whose loading strategy the tests change
between runs, and a record factory for the pytest-free units."""

from __future__ import annotations

import shutil
from typing import Any

import pytest

from pytest_sqlaperf.records import CallSiteRecord, FindingRecord, TestRecord

# The listing three ways: selectinload (2 selects), a lazy load per author (1 + 3), and a count
# (1). Each version has a different length, so no stale bytecode can stand in for another.
APP_SELECTIN = """
from sqlalchemy import select
from sqlalchemy.orm import selectinload
from models import Author, Book


def seed(session):
    for i in range(3):
        session.add(Author(name=f"a{i}", books=[Book(title=f"b{i}{j}") for j in range(2)]))
    session.flush()
    session.expire_all()


def book_counts(session):
    query = select(Author).options(selectinload(Author.books)).order_by(Author.id)
    counts = []
    for author in session.scalars(query):
        counts.append(len(author.books))
    return counts
"""

APP_LAZY = APP_SELECTIN.replace(
    "select(Author).options(selectinload(Author.books)).order_by(Author.id)",
    "select(Author).order_by(Author.id)",
)

APP_COUNT = APP_SELECTIN.replace(
    """    query = select(Author).options(selectinload(Author.books)).order_by(Author.id)
    counts = []
    for author in session.scalars(query):
        counts.append(len(author.books))
    return counts""",
    """    from sqlalchemy import func

    query = select(func.count(Book.id)).group_by(Book.author_id).order_by(Book.author_id)
    return list(session.scalars(query))""",
)

TESTS = """
from sqlalchemy import text

from app import book_counts, seed


def test_books(sqlaperf_session):
    seed(sqlaperf_session)
    assert book_counts(sqlaperf_session) == [2, 2, 2]


def test_ping(sqlaperf_session):
    sqlaperf_session.execute(text("SELECT 1"))
"""


def write_app(pytester: pytest.Pytester, source: str) -> None:
    """Replace app.py (and its bytecode, whose mtime check has a one-second grain)."""
    pytester.makepyfile(app=source)
    shutil.rmtree(pytester.path / "__pycache__", ignore_errors=True)


def site(path: str = "app.py", line: int = 10, function: str = "load") -> CallSiteRecord:
    return {"path": path, "line": line, "function": function}


def finding(kind: str = "n_plus_one", **values: Any) -> FindingRecord:
    made: FindingRecord = {
        "kind": kind,
        "message": f"{kind} of Author.books ×3",
        "target": "Author.books",
        "count": 3,
        "call_site": site(),
        "source": None,
        "fingerprint": "f00d",
        "fix": "add .options(selectinload(Author.books))",
        "evidence": [],
    }
    made.update(values)  # type: ignore[typeddict-item]
    return made


def record(
    nodeid: str = "tests/test_a.py::test_a",
    fingerprints: dict[str, tuple[int, str]] | None = None,
    **values: Any,
) -> TestRecord:
    """A record whose statements are ``{fingerprint: (count, display SQL)}``."""
    fingerprints = {"aaaa": (1, "SELECT a FROM t")} if fingerprints is None else fingerprints
    made: TestRecord = {
        "version": 1,
        "nodeid": nodeid,
        "outcome": "passed",
        "count": sum(count for count, _ in fingerprints.values()),
        "by_kind": {"select": sum(count for count, _ in fingerprints.values())},
        "fingerprints": {
            fp: {"display_sql": sql, "kind": "select", "count": count, "call_sites": [site()]}
            for fp, (count, sql) in fingerprints.items()
        },
        "budget": None,
        "violation": None,
        "findings": [],
        "plans": {},
        "duration": 0.001,
    }
    made.update(values)  # type: ignore[typeddict-item]
    return made
