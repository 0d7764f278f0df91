"""EXPLAIN is safe: it changes no data or sequence, leaks no setting, never breaks or joins the
test's transaction, never counts as a statement, and gives up within its timeouts."""

from __future__ import annotations

import json

import pytest

# Writes of every kind, RETURNING, sequences, a data-modifying CTE, a locking read: run once
# with EXPLAIN off, once on, once with ANALYZE; everything the test sees must be identical.
CORPUS_TEST = """
import json
import os

import pytest
from sqlalchemy import text

CORPUS = [
    "INSERT INTO authors (name) VALUES ('ada') RETURNING id",
    "INSERT INTO books (title, author_id) SELECT 'b' || id, id FROM authors RETURNING id",
    "INSERT INTO books (title, author_id) SELECT title || '2', author_id FROM books RETURNING id",
    "UPDATE books SET title = title || '!' WHERE title LIKE 'b%' RETURNING id, title",
    "UPDATE authors SET name = 'bea' WHERE id IN (SELECT author_id FROM books) RETURNING name",
    "DELETE FROM books WHERE id = (SELECT max(id) FROM books) RETURNING id",
    "WITH made AS (INSERT INTO authors (name) VALUES ('cy') RETURNING id) SELECT id FROM made",
    "SELECT nextval('authors_id_seq')",
    "SELECT id FROM authors ORDER BY id FOR UPDATE",
    "DELETE FROM books WHERE title = 'nope' RETURNING id",
]
STATE = [
    "SELECT id, name FROM authors ORDER BY id",
    "SELECT id, title, author_id FROM books ORDER BY id",
    "SELECT last_value, is_called FROM authors_id_seq",
    "SELECT last_value, is_called FROM books_id_seq",
    "SHOW enable_seqscan",
    "SHOW jit",
    "SHOW statement_timeout",
    "SHOW lock_timeout",
    "SHOW transaction_read_only",
    "SELECT count(*) FROM pg_prepared_statements WHERE statement LIKE 'EXPLAIN%'",
]


@pytest.mark.allow_n_plus_one  # the repeated read below is on purpose
def test_corpus(sqlaperf_session, sqlaperf):
    returned = []
    for sql in CORPUS:
        returned.append([list(row) for row in sqlaperf_session.execute(text(sql)).all()])
    # Past psycopg's prepare threshold: its prepared statements must not be ours.
    for _ in range(6):
        sqlaperf_session.execute(text("SELECT name FROM authors WHERE id = 1")).all()
    state = [
        [[str(value) for value in row] for row in sqlaperf_session.execute(text(sql)).all()]
        for sql in STATE
    ]
    with open(os.environ["SQLAPERF_DUMP"], "w") as dump:
        json.dump(
            {
                "returned": returned,
                "state": state,
                "statements": [s.display_sql for s in sqlaperf.statements],
            },
            dump,
        )
"""

RECORD_PLANS = """
import json, os
from pytest_sqlaperf import record_of

def pytest_runtest_logreport(report):
    record = record_of(report)
    if record is not None and report.when == "call":
        with open(os.environ["SQLAPERF_PLANS"], "w") as out:
            json.dump(record["plans"], out)
"""


def _corpus_run(
    project: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, *options: str
) -> tuple[dict[str, object], dict[str, dict[str, object]], str]:
    dump = project.path / f"dump{len(options)}{'-'.join(options)}.json"
    plans = project.path / "plans.json"
    monkeypatch.setenv("SQLAPERF_DUMP", str(dump))
    monkeypatch.setenv("SQLAPERF_PLANS", str(plans))
    result = project.runpytest(*options)
    result.assert_outcomes(passed=1)
    recorded = json.loads(plans.read_text()) if plans.exists() else {}
    return json.loads(dump.read_text()), recorded, result.stdout.str()


def test_explain_changes_nothing_the_test_sees(
    project: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    project.makepyfile(test_corpus=CORPUS_TEST)
    project.makeconftest(RECORD_PLANS)
    off, _, _ = _corpus_run(project, monkeypatch, "--sqlaperf-explain=off")
    warn, warn_plans, output = _corpus_run(project, monkeypatch, "--sqlaperf-explain=warn")
    project.makeini(
        """
        [pytest]
        sqlaperf_metadata = models:Base.metadata
        pythonpath = .
        asyncio_default_fixture_loop_scope = function
        sqlaperf_explain_analyze = true
        """
    )
    analyzed, analyzed_plans, _ = _corpus_run(project, monkeypatch, "--sqlaperf-explain=warn")

    # Same rows returned, same tables and sequences after, same settings, same statements.
    assert warn == off
    assert analyzed == off
    assert off["state"][4:] == [[["on"]], [["off"]], [["0"]], [["0"]], [["off"]], [["0"]]]
    # EXPLAIN did run: writes and reads have plans, and ANALYZE ran on plain SELECTs only.
    assert "EXPLAIN: " in output
    methods = {facts.get("method") for facts in warn_plans.values()}
    assert methods == {"custom"}
    analyzed_methods = {facts.get("method") for facts in analyzed_plans.values()}
    assert analyzed_methods == {"custom", "analyze"}
    shapes = {fingerprint: facts["shape"][0] for fingerprint, facts in warn_plans.items()}
    assert sum(1 for top in shapes.values() if top.startswith("ModifyTable")) >= 5


TIMEOUT_SETUP = """
from sqlalchemy import text

def pytest_sqlaperf_setup_database(connection):
    # Immutable functions are run by the planner (constant folding): these two make EXPLAIN,
    # and only EXPLAIN (it disables seq scans), slow or blocked on a lock.
    connection.execute(text('''
        CREATE TABLE guarded (id int);
        CREATE FUNCTION slow_when_explained() RETURNS int LANGUAGE plpgsql IMMUTABLE AS $$
        BEGIN
            IF current_setting('enable_seqscan') = 'off' THEN PERFORM pg_sleep(5); END IF;
            RETURN 1;
        END $$;
        CREATE FUNCTION locked_when_explained() RETURNS int LANGUAGE plpgsql IMMUTABLE AS $$
        BEGIN
            IF current_setting('enable_seqscan') = 'off' THEN PERFORM count(*) FROM guarded; END IF;
            RETURN 1;
        END $$;
    '''))
"""

TIMEOUT_TEST = """
import time

from sqlalchemy import text
from models import Author


def test_goes_on(sqlaperf_engine, sqlaperf_session):
    sqlaperf_session.add(Author(name="kept"))
    sqlaperf_session.flush()
    with sqlaperf_engine.connect() as other:
        other.execute(text("LOCK TABLE guarded IN ACCESS EXCLUSIVE MODE"))
        started = time.monotonic()
        sqlaperf_session.execute(text("SELECT * FROM authors WHERE id = slow_when_explained()"))
        sqlaperf_session.execute(text("SELECT * FROM authors WHERE id = locked_when_explained()"))
        elapsed = time.monotonic() - started
        other.rollback()
    assert elapsed < 2.5, elapsed
    names = sqlaperf_session.execute(text("SELECT name FROM authors")).scalars().all()
    assert names == ["kept"]
    assert sqlaperf_session.execute(text("SHOW statement_timeout")).scalar() == "0"
    assert sqlaperf_session.execute(text("SHOW lock_timeout")).scalar() == "0"
"""


def test_timeouts_bound_a_slow_or_blocked_explain(project: pytest.Pytester) -> None:
    project.makeconftest(TIMEOUT_SETUP)
    project.makepyfile(test_timeouts=TIMEOUT_TEST)
    project.makeini(
        """
        [pytest]
        sqlaperf_metadata = models:Base.metadata
        pythonpath = .
        asyncio_default_fixture_loop_scope = function
        sqlaperf_explain_timeout = 300
        """
    )
    result = project.runpytest()
    result.assert_outcomes(passed=1)
    output = result.stdout.str()
    assert "statement_timeout (300 ms) 1" in output
    assert "lock_timeout (150 ms) 1" in output


def test_autocommit_and_async_connections(project: pytest.Pytester) -> None:
    project.makepyfile(
        test_connections="""
        import pytest
        from sqlalchemy import select, text
        from models import Author, Book

        def test_autocommit(sqlaperf_engine):
            with sqlaperf_engine.connect().execution_options(
                isolation_level="AUTOCOMMIT"
            ) as connection:
                connection.execute(select(Book).where(Book.title == "t")).all()

        @pytest.mark.asyncio
        async def test_async(sqlaperf_async_session):
            sqlaperf_async_session.add(Author(name="kept"))
            await sqlaperf_async_session.flush()
            await sqlaperf_async_session.execute(select(Author).where(Author.name == "x"))
            await sqlaperf_async_session.execute(select(Book).where(Book.author_id == 1))
            names = (await sqlaperf_async_session.scalars(select(Author.name))).all()
            assert names == ["kept"]
            setting = await sqlaperf_async_session.execute(text("SHOW enable_seqscan"))
            assert setting.scalar() == "on"
            ours = await sqlaperf_async_session.execute(
                text("SELECT count(*) FROM pg_prepared_statements WHERE statement LIKE 'EXPLAIN%'")
            )
            assert ours.scalar() == 0
        """
    )
    result = project.runpytest()
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(
        [
            "EXPLAIN: * skipped (autocommit connection 1)",
            "*[[]seq_scan[]] authors is read in full to find rows by name*",
            "*at test_connections.py:* in test_async*",
            "*[[]seq_scan[]] books is read in full to find rows by author_id*",
        ]
    )
