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


def test_capture_leaves_sqlalchemy_behaviour_alone(project: pytest.Pytester) -> None:
    """The plugin runs each statement itself (at the dialect's do_execute events): whatever the
    user's own do_execute listener does still happens, errors reach the code under test unchanged
    and are recorded without a duration, and statements without parameters, executemany and
    insertmanyvalues batches are all recorded once each. The dialect's first-connect queries of
    an engine the test creates are not the test's."""
    project.makepyfile(
        test_behaviour="""
        import pytest
        from sqlalchemy import create_engine, event, insert, text
        from sqlalchemy.engine.interfaces import Dialect
        from sqlalchemy.exc import ProgrammingError
        from sqlalchemy.pool import NullPool

        from models import Author

        def test_behaviour(sqlaperf_url, sqlaperf):
            seen = []

            def users_listener(cursor, statement, parameters, context):
                seen.append(statement)
                cursor.execute(statement, parameters)
                return True

            event.listen(Dialect, "do_execute", users_listener)
            engine = create_engine(sqlaperf_url, poolclass=NullPool)
            try:
                with engine.connect() as connection:
                    assert connection.execute(text("SELECT :x"), {"x": 7}).scalar() == 7
                    assert seen[-1] == "SELECT %(x)s"  # after the dialect's first-connect queries
                    # no_parameters: SQLAlchemy calls do_execute_no_params
                    connection.execution_options(no_parameters=True).exec_driver_sql(
                        "SELECT 1 AS no_params"
                    )
                    connection.execute(
                        text("INSERT INTO authors (name) VALUES (:name)"),
                        [{"name": "a"}, {"name": "b"}],
                    )
                    connection.execute(insert(Author), [{"name": f"c{i}"} for i in range(4)])
                    with pytest.raises(ProgrammingError, match="no_such_table"):
                        connection.execute(text("SELECT * FROM no_such_table"))
                    connection.rollback()
            finally:
                event.remove(Dialect, "do_execute", users_listener)
                engine.dispose()
            recorded = [s for s in sqlaperf.log.statements if s.kind != "tcl"]
            assert [s.display_sql for s in recorded] == [
                "SELECT ?",
                "SELECT ? AS no_params",
                "INSERT INTO authors (name) VALUES (?)",
                "INSERT INTO authors (name) VALUES (?)",  # one insertmanyvalues batch
                "SELECT * FROM no_such_table",
            ]
            assert recorded[0].parameters == {"x": 7}
            assert recorded[1].parameters is None
            assert recorded[2].executemany_rows == 2
            assert recorded[3].executemany_rows == 4
            assert all(s.duration is not None for s in recorded[:4])
            assert recorded[4].duration is None and recorded[4].rowcount is None
        """
    )
    project.runpytest().assert_outcomes(passed=1)


def test_frames_the_call_site_walk_skips_are_sqlalchemys(project: pytest.Pytester) -> None:
    """The walk starts a fixed number of frames above the listener (listeners._FIRST_FRAME):
    on every path that runs a statement, sync and async, the frames it does not look at are
    SQLAlchemy's, so no user frame is passed over."""
    project.makepyfile(
        test_frames="""
        import os
        import sys

        import pytest
        import sqlalchemy
        from sqlalchemy import Sequence, func, insert, select, text
        from sqlalchemy.orm import Session, selectinload

        from models import Author, Book
        from pytest_sqlaperf.capture import listeners

        SQLALCHEMY = os.path.dirname(sqlalchemy.__file__) + os.sep
        ours = os.path.dirname(listeners.__file__) + os.sep
        seen, passed_over = [], []

        @pytest.fixture(autouse=True)
        def checked(monkeypatch):
            def getframe(depth):
                # this function is one frame more: run is its caller (1)
                for above in range(2, depth + 1):
                    try:
                        code = sys._getframe(above).f_code
                    except ValueError:  # a greenlet's stack, shallower than depth
                        break
                    if not code.co_filename.startswith((SQLALCHEMY, ours)):
                        passed_over.append((depth, above - 1, code.co_filename, code.co_name))
                seen.append(depth)
                return sys._getframe(depth + 1)

            monkeypatch.setattr(listeners, "_getframe", getframe)
            seen.clear()

        def run_sync_paths(connection, session):
            connection.execute(text("SELECT 1"))
            connection.execute(select(func.now()))
            connection.scalar(func.count(Author.id))
            connection.exec_driver_sql("SELECT 2")
            connection.execution_options(no_parameters=True).exec_driver_sql("SELECT 3")
            connection.execute(Sequence("frames_seq"))  # _execute_default
            connection.execute(insert(Author), [{"name": "a"}, {"name": "b"}])  # executemany
            session.add_all([Author(name=f"x{i}", books=[Book(title="t")]) for i in range(3)])
            session.flush()  # insertmanyvalues
            session.expunge_all()
            for author in session.scalars(select(Author)):
                author.books  # lazy loads
            session.scalars(select(Author).options(selectinload(Author.books))).all()
            session.get(Author, 1)
            session.commit()

        def test_sync(sqlaperf_engine, sqlaperf):
            with sqlaperf_engine.connect() as connection:
                connection.exec_driver_sql("CREATE SEQUENCE IF NOT EXISTS frames_seq")
                with Session(bind=connection) as session:
                    run_sync_paths(connection, session)
                connection.rollback()
            assert len(seen) >= 15 and len(seen) == len(sqlaperf.log.statements)
            assert passed_over == [], "; ".join(map(str, passed_over))

        @pytest.mark.asyncio
        async def test_async(sqlaperf_async_session, sqlaperf):
            sqlaperf_async_session.add_all([Author(name="a", books=[Book(title="t")])])
            await sqlaperf_async_session.flush()
            sqlaperf_async_session.expunge_all()
            authors = (await sqlaperf_async_session.scalars(select(Author))).all()
            await sqlaperf_async_session.run_sync(lambda s: authors[0].books)  # lazy load
            await sqlaperf_async_session.execute(text("SELECT 1"))
            connection = await sqlaperf_async_session.connection()
            await connection.exec_driver_sql("SELECT 2")
            await sqlaperf_async_session.run_sync(lambda s: s.get(Author, authors[0].id))
            assert len(seen) >= 6 and len(seen) == len(sqlaperf.log.statements)
            assert passed_over == [], "; ".join(map(str, passed_over))
        """
    )
    project.runpytest("-o", "sqlaperf_n_plus_one=warn").assert_outcomes(passed=2)
