"""max_queries: the marker, the block budget, and what a violation says."""

from __future__ import annotations

import pytest

THREE_SELECTS = """
import pytest
from sqlalchemy import select, text
from models import Author, Book

@pytest.mark.max_queries({budget})
def test_three(sqlaperf_session):
    sqlaperf_session.execute(select(Author)).all()
    sqlaperf_session.execute(select(Book)).all()
    sqlaperf_session.execute(text("SELECT 1")).all()
"""


def test_budget_broken_lists_every_statement_with_call_site(project: pytest.Pytester) -> None:
    project.makepyfile(test_three=THREE_SELECTS.format(budget=2))
    result = project.runpytest()
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "*max_queries(2): expected at most 2 statements, ran 3 (select 3)*",
            "1. SELECT  SELECT authors.id, authors.name FROM authors*",
            "     at test_three.py:7 in test_three",
            "2. SELECT  SELECT books.id*, books.title*, books.author_id* FROM books*",
            "     at test_three.py:8 in test_three",
            "3. SELECT  SELECT ?",
            "     at test_three.py:9 in test_three",
            "*(use -v to list parameters)*",
        ]
    )
    result.stdout.no_fnmatch_line("*Traceback*")


def test_budget_met_passes(project: pytest.Pytester) -> None:
    project.makepyfile(test_three=THREE_SELECTS.format(budget=3))
    project.runpytest().assert_outcomes(passed=1)


def test_async_session_budget(project: pytest.Pytester) -> None:
    project.makepyfile(
        test_async="""
        import pytest
        from sqlalchemy import select, text
        from models import Author, Book

        @pytest.mark.asyncio
        @pytest.mark.max_queries(2)
        async def test_three(sqlaperf_async_session):
            await sqlaperf_async_session.execute(select(Author))
            await sqlaperf_async_session.execute(select(Book))
            await sqlaperf_async_session.execute(text("SELECT 1"))

        @pytest.mark.asyncio
        @pytest.mark.max_queries(3)
        async def test_three_within(sqlaperf_async_session):
            await sqlaperf_async_session.execute(select(Author))
            await sqlaperf_async_session.execute(select(Book))
            await sqlaperf_async_session.execute(text("SELECT 1"))
        """
    )
    result = project.runpytest()
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(
        [
            "*max_queries(2): expected at most 2 statements, ran 3*",
            "*at *test_async.py:8 in test_three*",
            "*at *test_async.py:9 in test_three*",
            "*at *test_async.py:10 in test_three*",
        ]
    )


def test_engine_the_test_creates_itself_is_captured(project: pytest.Pytester) -> None:
    project.makepyfile(
        test_own_engine="""
        import pytest
        from sqlalchemy import create_engine, text

        @pytest.mark.max_queries(2)
        def test_own(sqlaperf_url):
            engine = create_engine(sqlaperf_url)
            with engine.connect() as connection:
                for _ in range(3):
                    connection.execute(text("SELECT 1"))
            engine.dispose()
        """
    )
    result = project.runpytest()
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "*expected at most 2 statements, ran 3*",
            "*1. SELECT ×3  SELECT ?*",
            "*at *test_own_engine.py:9 in test_own*",
        ]
    )


def test_async_engine_the_test_creates_itself_is_captured(project: pytest.Pytester) -> None:
    project.makepyfile(
        test_own_async="""
        import pytest
        from sqlalchemy import text
        from sqlalchemy.ext.asyncio import create_async_engine

        @pytest.mark.asyncio
        @pytest.mark.max_queries(1)
        async def test_own(sqlaperf_async_url):
            engine = create_async_engine(sqlaperf_async_url)
            async with engine.connect() as connection:
                await connection.execute(text("SELECT 1"))
                await connection.execute(text("SELECT 2"))
            await engine.dispose()
        """
    )
    result = project.runpytest()
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        ["*expected at most 1 statement, ran 2*", "*at *test_own_async.py:10 in test_own*"]
    )


def test_fixture_setup_and_transaction_control_do_not_count(project: pytest.Pytester) -> None:
    project.makepyfile(
        test_setup="""
        import pytest
        from sqlalchemy import select
        from models import Author

        @pytest.fixture
        def authors(sqlaperf_session):
            sqlaperf_session.add_all([Author(name=f"a{i}") for i in range(5)])
            sqlaperf_session.commit()
            return sqlaperf_session.scalars(select(Author)).all()

        @pytest.mark.max_queries(1)
        def test_one(authors, sqlaperf_session, sqlaperf):
            sqlaperf_session.add(Author(name="new"))
            sqlaperf_session.commit()
            assert sqlaperf.count == 1
            kinds = [s.kind for s in sqlaperf.statements]
            assert "tcl" in kinds, kinds
        """
    )
    project.runpytest().assert_outcomes(passed=1)


def test_per_kind_limits(project: pytest.Pytester) -> None:
    project.makepyfile(
        test_kinds="""
        import pytest
        from sqlalchemy import select
        from models import Author

        @pytest.mark.max_queries(select=1)
        def test_selects(sqlaperf_session):
            sqlaperf_session.add(Author(name="x"))
            sqlaperf_session.flush()
            sqlaperf_session.execute(select(Author)).all()
            sqlaperf_session.execute(select(Author.id)).all()

        @pytest.mark.max_queries(10, insert=0)
        def test_inserts(sqlaperf_session):
            sqlaperf_session.add(Author(name="x"))
            sqlaperf_session.flush()
        """
    )
    result = project.runpytest()
    result.assert_outcomes(failed=2)
    result.stdout.fnmatch_lines(
        [
            "*max_queries(select=1): expected at most 1 select, ran 2 (select 2, insert 1)*",
            "*max_queries(10, insert=0): expected at most 0 insert, ran 1 (insert 1)*",
        ]
    )


def test_statements_from_threads_the_test_starts_count(project: pytest.Pytester) -> None:
    project.makepyfile(
        test_threads="""
        import threading
        import pytest
        from sqlalchemy import text

        @pytest.mark.max_queries(3)
        def test_threads(sqlaperf_engine):
            def work():
                with sqlaperf_engine.connect() as connection:
                    connection.execute(text("SELECT 1"))
            threads = [threading.Thread(target=work) for _ in range(4)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
        """
    )
    result = project.runpytest()
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*expected at most 3 statements, ran 4*", "*SELECT ×4*"])


def test_verbose_lists_parameters(project: pytest.Pytester) -> None:
    project.makepyfile(
        test_params="""
        import pytest
        from sqlalchemy import select
        from models import Author

        @pytest.mark.max_queries(1)
        def test_params(sqlaperf_session):
            for name in ("alice", "bob"):
                sqlaperf_session.execute(select(Author).where(Author.name == name)).all()
        """
    )
    quiet = project.runpytest()
    quiet.stdout.no_fnmatch_line("*alice*")
    verbose = project.runpytest("-v")
    verbose.assert_outcomes(failed=1)
    verbose.stdout.fnmatch_lines(
        [
            "*1. SELECT ×2  SELECT authors.id, authors.name FROM authors WHERE authors.name = ?*",
            "*parameters: *alice*",
            "*parameters: *bob*",
        ]
    )


def test_block_budget_and_nested_capture(project: pytest.Pytester) -> None:
    project.makepyfile(
        test_block="""
        import pytest
        from sqlalchemy import text
        from pytest_sqlaperf import BudgetExceeded

        def test_block(sqlaperf_session, sqlaperf):
            sqlaperf_session.execute(text("SELECT 1"))
            with sqlaperf.capture() as log:
                sqlaperf_session.execute(text("SELECT 2"))
                sqlaperf_session.execute(text("SELECT 3"))
            assert log.count == 2
            assert sqlaperf.count == 3
            with sqlaperf.max_queries(1):
                sqlaperf_session.execute(text("SELECT 4"))
            with pytest.raises(BudgetExceeded, match="expected at most 1 statement, ran 2"):
                with sqlaperf.max_queries(1):
                    sqlaperf_session.execute(text("SELECT 5"))
                    sqlaperf_session.execute(text("SELECT 6"))
            assert sqlaperf.count_by_kind()["select"] == 6

        @pytest.mark.asyncio
        async def test_block_async(sqlaperf_async_session, sqlaperf):
            with sqlaperf.max_queries(1) as log:
                await sqlaperf_async_session.execute(text("SELECT 1"))
            assert log.count == 1
        """
    )
    project.runpytest().assert_outcomes(passed=2)


def test_marker_importable_as_decorator(project: pytest.Pytester) -> None:
    project.makepyfile(
        test_decorator="""
        from sqlalchemy import text
        from pytest_sqlaperf import max_queries

        @max_queries(1)
        def test_decorated(sqlaperf_session):
            sqlaperf_session.execute(text("SELECT 1"))
            sqlaperf_session.execute(text("SELECT 2"))
        """
    )
    result = project.runpytest("--strict-markers")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*max_queries(1): expected at most 1 statement, ran 2*"])
