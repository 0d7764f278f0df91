"""What each captured Statement records, sync and async, through the plugin's fixtures."""

from __future__ import annotations

import pytest


def test_statement_attributes_sync(project: pytest.Pytester) -> None:
    project.makepyfile(
        test_attrs="""
        from sqlalchemy import insert, select, update
        from models import Author

        def test_attrs(sqlaperf_session, sqlaperf):
            sqlaperf_session.execute(insert(Author), [{"name": f"a{i}"} for i in range(3)])
            sqlaperf_session.execute(update(Author).where(Author.name == "a1").values(name="b"))
            rows = sqlaperf_session.execute(select(Author).where(Author.id > 0)).all()
            assert len(rows) == 3
            inserted, updated, selected = sqlaperf.log.counted
            assert inserted.kind == "insert"
            assert inserted.executemany_rows == 3
            assert updated.kind == "update" and updated.rowcount == 1
            assert selected.kind == "select"
            assert selected.display_sql == (
                "SELECT authors.id, authors.name FROM authors WHERE authors.id > ?"
            )
            assert "%(id_1)s" in selected.sql
            assert selected.parameters == {"id_1": 0}
            assert len(selected.fingerprint) == 16
            assert selected.duration is not None and selected.duration > 0
            assert selected.call_site.path.endswith("test_attrs.py")
            assert selected.call_site.line == 7
            assert selected.call_site.function == "test_attrs"
            assert selected.connection is not None
        """
    )
    project.runpytest().assert_outcomes(passed=1)


def test_statement_attributes_async_and_lazy_load(project: pytest.Pytester) -> None:
    project.makepyfile(
        test_async_attrs="""
        import pytest
        import pathlib
        import pytest_asyncio
        from sqlalchemy import select
        from models import Author, Book

        async def helper(session):
            return (await session.execute(select(Author))).scalars().all()

        @pytest_asyncio.fixture
        async def books(sqlaperf_async_session):
            author = Author(name="a")
            sqlaperf_async_session.add_all([Book(title="t1", author=author)])
            await sqlaperf_async_session.commit()
            sqlaperf_async_session.expunge_all()

        @pytest.mark.asyncio
        async def test_async(books, sqlaperf_async_session, sqlaperf):
            authors = await helper(sqlaperf_async_session)
            book = (await sqlaperf_async_session.execute(select(Book))).scalars().one()
            author = await sqlaperf_async_session.run_sync(lambda s: book.author)
            assert author.name == "a"
            first, second = sqlaperf.log.counted
            assert first.call_site.function == "helper"
            assert first.call_site.line == 8
            assert second.call_site.function == "test_async"
            source = pathlib.Path(__file__).read_text().splitlines()
            assert "book = (await" in source[second.call_site.line - 1]
            assert len(authors) == 1
            # the author was in the identity map: no lazy-load statement ran
            assert [s.lazy_load for s in sqlaperf.log.counted] == [None, None]

        @pytest.mark.asyncio
        async def test_lazy(books, sqlaperf_async_session, sqlaperf):
            book = (await sqlaperf_async_session.execute(select(Book))).scalars().one()
            await sqlaperf_async_session.run_sync(lambda s: book.author)
            lazy = sqlaperf.statements[-1]
            assert lazy.lazy_load == "Book.author"
            assert lazy.kind == "select"
        """
    )
    project.runpytest().assert_outcomes(passed=2)


def test_records_released_after_the_test(project: pytest.Pytester) -> None:
    project.makepyfile(
        test_release="""
        import pytest
        from sqlalchemy import text

        logs = []

        def test_first(sqlaperf_session, sqlaperf):
            sqlaperf_session.execute(text("SELECT 1"))
            logs.append(sqlaperf.log)

        def test_second():
            assert logs[0].statements == []
        """
    )
    project.runpytest().assert_outcomes(passed=2)
