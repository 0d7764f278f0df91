"""What each captured Statement records, sync and async, through the plugin's fixtures."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from pytest_sqlaperf.capture import listeners


@pytest.fixture(autouse=True, params=["C", "Python"])
def implementation(request: pytest.FixtureRequest) -> Iterator[str]:
    """Each test here runs with the C listeners (_speedups.c) and with the Python ones: the
    same tests, the same results."""
    if request.param == "C" and listeners._speedups is None:
        pytest.fail(f"the C listener cannot be tested: {listeners.EXTENSION_ERROR}")
    previous = listeners.use_extension(request.param == "C")
    try:
        yield request.param
    finally:
        listeners.use_extension(previous)


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


@pytest.mark.parametrize("implementation", ["Python"], indirect=True)
def test_frames_the_call_site_walk_skips_are_sqlalchemys(project: pytest.Pytester) -> None:
    """The walk starts a fixed number of frames above the listener (listeners._FIRST_FRAME):
    on every path that runs a statement, sync and async, the frames it does not look at are
    SQLAlchemy's, so no user frame is passed over. (The Python listener's walk: the next test
    shows the C listener's starts at the same frame.)"""
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


COMPARED_PATHS = """
import threading

import pytest
from sqlalchemy import Sequence, func, insert, select, text
from sqlalchemy.orm import Session, selectinload

from models import Author, Book
from pytest_sqlaperf.capture import listeners


def sync_paths(connection):
    connection.execute(text("SELECT :x"), {"x": 1})
    connection.execute(select(func.now()))
    connection.scalar(func.count(Author.id))
    connection.exec_driver_sql("SELECT 2")
    connection.exec_driver_sql("SELECT %s, %s", (1, 2))
    connection.execution_options(no_parameters=True).exec_driver_sql("SELECT 3")
    connection.scalar(Sequence("paths_seq"))
    connection.execute(insert(Author), [{"name": "a"}, {"name": "b"}])
    with Session(bind=connection) as session:
        authors = [Author(name=f"x{i}", books=[Book(title="t")]) for i in range(3)]
        session.add_all(authors)
        session.flush()
        first = authors[0].id
        session.expunge_all()
        for author in session.scalars(select(Author)):
            author.books
        session.scalars(select(Author).options(selectinload(Author.books))).all()
        session.expunge_all()
        session.get(Author, first)
        thread = threading.Thread(target=lambda: session.scalar(select(func.count(Book.id))))
        thread.start()
        thread.join()
    with pytest.raises(Exception):
        with connection.begin_nested():
            connection.execute(text("SELECT * FROM no_such_table"))


async def async_paths(session):
    session.add_all([Author(name="a", books=[Book(title="t")])])
    await session.flush()
    session.expunge_all()
    authors = (await session.scalars(select(Author))).all()
    await session.run_sync(lambda s: authors[0].books)
    await session.execute(text("SELECT CAST(:x AS integer)"), {"x": 1})
    connection = await session.connection()
    await connection.exec_driver_sql("SELECT 2")
    await session.run_sync(lambda s: s.get(Author, authors[0].id))


def summary(statement):
    load = statement.orm_load
    parameters = statement.parameters
    return (
        statement.sql if statement.kind != "tcl" else None,  # savepoint names are counted
        statement.display_sql, statement.fingerprint, statement.kind,
        type(parameters), sorted(parameters) if isinstance(parameters, dict) else None,
        statement.executemany_rows, statement.call_site, statement.rowcount,
        statement.duration is None,
        load and (load.kind, load.target, load.parent and load.parent.sql),
    )
"""


@pytest.mark.parametrize("implementation", ["C"], indirect=True)  # both, inside
def test_c_and_python_listeners_record_the_same(project: pytest.Pytester) -> None:
    """The same statements, sync, async, from a thread, failed, give the same records in C and
    in Python: SQL, shape, parameters' form, rows, call site, ORM load and its source, row count."""
    project.makepyfile(
        paths=COMPARED_PATHS,
        test_same="""
        import pytest
        from paths import async_paths, listeners, summary, sync_paths

        def test_sync(sqlaperf_engine, sqlaperf):
            recorded = {}
            for accelerated in (True, False):
                listeners.use_extension(accelerated)
                with sqlaperf_engine.connect() as connection:
                    connection.exec_driver_sql("CREATE SEQUENCE IF NOT EXISTS paths_seq")
                    with sqlaperf.capture() as log:
                        sync_paths(connection)
                    connection.rollback()
                recorded[accelerated] = [summary(s) for s in log.statements]
            assert len(recorded[True]) >= 20
            assert recorded[True] == recorded[False]

        @pytest.mark.asyncio
        async def test_async(sqlaperf_async_session, sqlaperf):
            recorded = {}
            for accelerated in (True, False):
                listeners.use_extension(accelerated)
                with sqlaperf.capture() as log:
                    await async_paths(sqlaperf_async_session)
                await sqlaperf_async_session.rollback()
                recorded[accelerated] = [summary(s) for s in log.statements]
            assert len(recorded[True]) >= 6
            assert recorded[True] == recorded[False]
        """,
    )
    project.runpytest("-o", "sqlaperf_n_plus_one=off").assert_outcomes(passed=2)


@pytest.mark.parametrize("implementation", ["C"], indirect=True)  # both, inside
def test_c_and_python_walks_start_at_the_same_frame(project: pytest.Pytester) -> None:
    """With no file known, the walk stops at the first frame it looks at and asks the finder
    about it: that frame is the same in C and in Python on every path (the test before the
    previous one shows that the frames the Python walk skips are SQLAlchemy's)."""
    project.makepyfile(
        paths=COMPARED_PATHS,
        test_walk="""
        import pytest
        from paths import async_paths, listeners, sync_paths

        class Blank:
            # a CallSiteFinder that knows no file: every walk stops at its first frame

            def __init__(self):
                self.skipped, self.user, self.sites, self.asked = set(), set(), {}, []

            def find(self, frame):
                self.asked.append(frame and (frame.f_code, frame.f_lineno))
                return None

        def test_sync(sqlaperf_engine):
            recorder = listeners._current
            real = recorder._callsites
            asked = {}
            try:
                for accelerated in (True, False):
                    listeners.use_extension(accelerated)
                    with sqlaperf_engine.connect() as connection:
                        connection.exec_driver_sql("CREATE SEQUENCE IF NOT EXISTS paths_seq")
                        recorder._callsites = finder = Blank()
                        sync_paths(connection)
                        recorder._callsites = real
                        connection.rollback()
                    asked[accelerated] = finder.asked
            finally:
                recorder._callsites = real
            assert len(asked[True]) >= 20
            assert asked[True] == asked[False]

        @pytest.mark.asyncio
        async def test_async(sqlaperf_async_session):
            recorder = listeners._current
            real = recorder._callsites
            asked = {}
            try:
                for accelerated in (True, False):
                    listeners.use_extension(accelerated)
                    recorder._callsites = finder = Blank()
                    await async_paths(sqlaperf_async_session)
                    recorder._callsites = real
                    await sqlaperf_async_session.rollback()
                    asked[accelerated] = finder.asked
            finally:
                recorder._callsites = real
            assert len(asked[True]) >= 6
            assert asked[True] == asked[False]
        """,
    )
    project.runpytest("-o", "sqlaperf_n_plus_one=off").assert_outcomes(passed=2)


def test_recording_keeps_no_new_object_per_statement(project: pytest.Pytester) -> None:
    """A test's statements are kept without a new garbage-collected object each (see QueryLog):
    the collector's runs fall in the user's tests as they would without the plugin."""
    project.makepyfile(
        test_objects="""
        import gc
        from sqlalchemy import text
        from pytest_sqlaperf.capture.listeners import Recorder
        from pytest_sqlaperf.capture.querylog import QueryLog

        def kept(connection, n):
            '''Objects the collector counts that n statements made and did not free.'''
            for i in range(20):  # warm caches: SQLAlchemy's compiled cache, our shapes and sites
                connection.execute(text("SELECT :x"), {"x": i})
            gc.disable()
            gc.collect()
            # the count stops at zero: objects freed then would go uncounted
            ballast = [[] for _ in range(10_000)]
            try:
                before = gc.get_count()[0]
                for i in range(n):
                    connection.execute(text("SELECT :x"), {"x": i})
                return gc.get_count()[0] - before
            finally:
                del ballast
                gc.enable()

        def test_objects(sqlaperf_engine):
            recorder = Recorder()
            recorder.install()  # the innermost recorder: the plugin's records nothing meanwhile
            try:
                differences = []
                with sqlaperf_engine.connect() as connection:
                    for _ in range(3):
                        without = kept(connection, 1000)
                        log = QueryLog("t")
                        with recorder.recording(log):
                            recording = kept(connection, 1000)
                        differences.append((recording - without, recording, without))
            finally:
                recorder.uninstall()
            assert len(log.statements) == 1020
            assert log.statements[-1].parameters == {"x": 999}
            # one object kept per statement would be 1,000 more in every round (a Statement and
            # its parameters' dict were 2,000); the rest is the noise of the process's other
            # threads and SQLAlchemy's caches, a few hundred now and then: the best round counts
            assert min(differences)[0] < 250, differences
        """
    )
    project.runpytest().assert_outcomes(passed=1)


def test_parameters_read_back_in_the_form_they_were_sent(project: pytest.Pytester) -> None:
    project.makepyfile(
        test_forms="""
        import pytest
        from sqlalchemy import insert, select, text
        from models import Author

        def test_sync(sqlaperf_engine, sqlaperf):
            with sqlaperf_engine.begin() as connection:
                connection.execute(text("SELECT :x, :y"), {"x": 1, "y": "a"})
                connection.exec_driver_sql("SELECT %s, %s", (2, "b"))
                connection.execute(text("SELECT 4"))
                connection.execute(insert(Author), [{"name": "p"}, {"name": "q"}])
                connection.execute(
                    insert(Author).returning(Author.id), [{"name": "r"}, {"name": "s"}]
                )
            named, positional, plain, many, batch = sqlaperf.log.counted
            assert named.parameters == {"x": 1, "y": "a"}
            assert positional.parameters == (2, "b") and type(positional.parameters) is tuple
            assert plain.parameters == {}
            assert many.parameters == [{"name": "p"}, {"name": "q"}]
            assert many.executemany_rows == 2
            assert batch.executemany_rows == 2  # one insertmanyvalues batch
            assert sorted(batch.parameters.values()) == ["r", "s"]
            # the same object each time it is read: list.index and identity need it
            assert sqlaperf.log.counted[0] is named

        @pytest.mark.asyncio
        async def test_async(sqlaperf_async_engine, sqlaperf):
            async with sqlaperf_async_engine.connect() as connection:
                await connection.execute(text("SELECT CAST(:x AS integer), :y"), {"x": 5, "y": "c"})
                await connection.execute(select(Author).where(Author.name.in_(["t", "u"])))
            first, second = [s for s in sqlaperf.log.counted if s.kind == "select"]
            assert list(first.parameters) == [5, "c"]
            assert list(second.parameters) == [["t", "u"]] or list(second.parameters) == ["t", "u"]
        """
    )
    project.runpytest().assert_outcomes(passed=2)


def test_a_nested_capture_sees_the_source_query_only_when_it_ran_inside(
    project: pytest.Pytester,
) -> None:
    project.makepyfile(
        test_nested="""
        from sqlalchemy import select
        from models import Author, Book

        def test_nested(sqlaperf_session, sqlaperf):
            sqlaperf_session.add_all(
                [Book(title=f"t{i}", author=Author(name=f"a{i}")) for i in range(2)]
            )
            sqlaperf_session.commit()
            sqlaperf_session.expunge_all()
            books = sqlaperf_session.scalars(select(Book).order_by(Book.id)).all()
            with sqlaperf.capture() as outer_loads:
                books[0].author
                with sqlaperf.capture() as inner:
                    more = sqlaperf_session.scalars(select(Book).where(Book.id > 0)).all()
                    sqlaperf_session.expunge_all()
                    more = sqlaperf_session.scalars(select(Book).order_by(Book.id)).all()
                    more[1].author
            source = [s for s in sqlaperf.statements if s.kind == "select"][0]
            lazy = [s for s in sqlaperf.statements if s.lazy_load == "Book.author"]
            assert lazy[0].orm_load.parent is source
            assert lazy[1].orm_load.parent.call_site.line == 16
            # the nested scopes make their own Statements: the first load's source ran before
            first, also = [s for s in outer_loads.statements if s.lazy_load]
            assert first.orm_load.parent is None
            assert also.orm_load.parent is outer_loads.statements[2]
            (second,) = [s for s in inner.statements if s.lazy_load]
            assert second.orm_load.parent.call_site.line == 16
            assert second.orm_load.parent is inner.statements[1]
        """
    )
    project.runpytest().assert_outcomes(passed=1)


def test_after_statement_answers_spare_it_the_statements_it_has_nothing_new_from(
    project: pytest.Pytester,
) -> None:
    """The hook's QUIET_VALUES / QUIET_SHAPE answers (what the plan checks answer for a plan
    already taken in): the listeners do not call it again for those values, or that shape,
    until forget_quiet; values without a key (unhashable, executemany) are always handed over,
    and so is everything after an answer that is not one of the two (True is not 1)."""
    project.makepyfile(
        test_quiet="""
        from sqlalchemy import insert, text
        from models import Author
        from pytest_sqlaperf.capture.listeners import QUIET_SHAPE, QUIET_VALUES, accelerated
        from pytest_sqlaperf.plugin import plugin_of

        ANSWERS = {  # by the statement's SQL
            "SELECT abs(%(y)s)": QUIET_SHAPE,
            "SELECT 2": QUIET_SHAPE,
            "SELECT length(%(z)s)": True,
        }

        INSERT = "INSERT INTO authors (name) VALUES (%(name)s::VARCHAR)"

        def test_quiet(sqlaperf_engine, request):
            recorder = plugin_of(request.config).recorder
            calls = []

            def hook(statement, connection, cursor, context):
                calls.append((statement.sql, statement.parameters))
                return ANSWERS.get(statement.sql, QUIET_VALUES)

            previous = recorder.after_statement
            recorder.after_statement = hook
            try:
                with sqlaperf_engine.begin() as connection:
                    for x in (1, 1, 2, 1, 2):
                        connection.execute(text("SELECT :x"), {"x": x})
                    for x in (3, 3):
                        connection.exec_driver_sql("SELECT %s::int + %s", (x, 1))
                    for _ in range(2):
                        connection.execute(text("SELECT CAST(:a AS integer[])"), {"a": [1, 2]})
                    for y in (1, 2, 3):
                        connection.execute(text("SELECT abs(:y)"), {"y": y})
                    plain = connection.execution_options(no_parameters=True)
                    for _ in range(2):
                        plain.exec_driver_sql("SELECT 2")
                    for _ in range(2):
                        connection.execute(text("SELECT length(:z)"), {"z": "a"})
                    for _ in range(2):
                        connection.execute(insert(Author), [{"name": "p"}, {"name": "q"}])
                    recorder.forget_quiet()
                    connection.execute(text("SELECT :x"), {"x": 1})
            finally:
                recorder.after_statement = previous
            assert calls == [
                ("SELECT %(x)s", {"x": 1}),
                ("SELECT %(x)s", {"x": 2}),
                ("SELECT %s::int + %s", (3, 1)),
                ("SELECT CAST(%(a)s AS integer[])", {"a": [1, 2]}),
                ("SELECT CAST(%(a)s AS integer[])", {"a": [1, 2]}),
                ("SELECT abs(%(y)s)", {"y": 1}),
                ("SELECT 2", None),
                ("SELECT length(%(z)s)", {"z": "a"}),
                ("SELECT length(%(z)s)", {"z": "a"}),
                (INSERT, [{"name": "p"}, {"name": "q"}]),
                (INSERT, [{"name": "p"}, {"name": "q"}]),
                ("SELECT %(x)s", {"x": 1}),
            ]
            assert accelerated() is IMPLEMENTATION_IS_C
        """.replace("IMPLEMENTATION_IS_C", "True" if listeners.accelerated() else "False")
    )
    project.runpytest("-o", "sqlaperf_n_plus_one=off").assert_outcomes(passed=1)
