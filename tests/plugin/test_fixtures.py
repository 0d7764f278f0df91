"""Fixtures: schema from sqlaperf_metadata and the hook, isolation, async modes, xdist workers."""

from __future__ import annotations

import pytest

ISOLATION = """
import pytest
from sqlalchemy import func, select, text
from sqlalchemy.exc import DBAPIError
from models import Author

@pytest.mark.parametrize("round", [1, 2])
def test_commit_is_rolled_back(sqlaperf_session, round):
    assert sqlaperf_session.scalar(select(func.count()).select_from(Author)) == 0
    sqlaperf_session.add(Author(name="kept?"))
    sqlaperf_session.commit()
    assert sqlaperf_session.scalar(select(func.count()).select_from(Author)) == 1

@pytest.mark.asyncio
@pytest.mark.parametrize("round", [1, 2])
async def test_async_commit_is_rolled_back(sqlaperf_async_session, round):
    count = select(func.count()).select_from(Author)
    assert await sqlaperf_async_session.scalar(count) == 0
    sqlaperf_async_session.add(Author(name="kept?"))
    await sqlaperf_async_session.commit()
    assert await sqlaperf_async_session.scalar(count) == 1

@pytest.mark.parametrize("round", [1, 2])
def test_rollback_keeps_what_was_committed(sqlaperf_session, round):
    assert sqlaperf_session.scalar(select(func.count()).select_from(Author)) == 0
    sqlaperf_session.add(Author(name="committed"))
    sqlaperf_session.commit()
    sqlaperf_session.add(Author(name="rolled back"))
    sqlaperf_session.flush()
    sqlaperf_session.rollback()
    assert sqlaperf_session.scalars(select(Author.name)).all() == ["committed"]

@pytest.mark.parametrize("round", [1, 2])
def test_a_failed_statement_left_as_it_is(sqlaperf_session, round):
    assert sqlaperf_session.scalar(select(func.count()).select_from(Author)) == 0
    sqlaperf_session.add(Author(name="before the error"))
    sqlaperf_session.flush()
    with pytest.raises(DBAPIError):
        sqlaperf_session.execute(text("SELECT 1/0"))

@pytest.mark.asyncio
@pytest.mark.parametrize("round", [1, 2])
async def test_async_failed_statement_left_as_it_is(sqlaperf_async_session, round):
    assert await sqlaperf_async_session.scalar(select(func.count()).select_from(Author)) == 0
    sqlaperf_async_session.add(Author(name="before the error"))
    await sqlaperf_async_session.flush()
    with pytest.raises(DBAPIError):
        await sqlaperf_async_session.execute(text("SELECT 1/0"))
"""


def test_sessions_roll_back_everything_the_test_wrote(project: pytest.Pytester) -> None:
    project.makepyfile(test_isolation=ISOLATION)
    project.runpytest().assert_outcomes(passed=10)


@pytest.mark.parametrize("mode", ["strict", "auto"])
def test_async_fixtures_under_pytest_asyncio_modes(project: pytest.Pytester, mode: str) -> None:
    project.makepyfile(
        test_modes="""
        import pytest
        from sqlalchemy import text

        async def test_plain(sqlaperf_async_session):
            assert (await sqlaperf_async_session.execute(text("SELECT 41 + 1"))).scalar() == 42

        @pytest.mark.asyncio
        async def test_marked(sqlaperf_async_engine):
            async with sqlaperf_async_engine.connect() as connection:
                assert (await connection.execute(text("SELECT 1"))).scalar() == 1
        """
    )
    result = project.runpytest(f"--asyncio-mode={mode}")
    if mode == "auto":
        result.assert_outcomes(passed=2)
    else:
        # strict mode leaves an unmarked coroutine test alone (pytest-asyncio's own rule)
        result.assert_outcomes(passed=1, failed=1)


SESSION_LOOP_TESTS = """
import pytest
from sqlalchemy import func, select
from models import Author

pytestmark = pytest.mark.asyncio(loop_scope="session")

@pytest.mark.parametrize("round", [1, 2])
async def test_on_the_session_loop(sqlaperf_async_session, round):
    count = select(func.count()).select_from(Author)
    assert await sqlaperf_async_session.scalar(count) == 0
    sqlaperf_async_session.add(Author(name="kept?"))
    await sqlaperf_async_session.commit()
    assert await sqlaperf_async_session.scalar(count) == 1
"""


def test_async_session_on_a_session_scoped_loop(project: pytest.Pytester) -> None:
    project.makepyfile(test_loops=SESSION_LOOP_TESTS)
    project.runpytest("-o", "asyncio_default_fixture_loop_scope=session").assert_outcomes(passed=2)


POOLED_LOOP_TESTS = """
import pytest
from sqlalchemy import text

pytestmark = pytest.mark.asyncio(loop_scope="module")
PIDS = []

@pytest.mark.parametrize("round", range(4))
async def test_connection(sqlaperf_async_session, round):
    PIDS.append(await sqlaperf_async_session.scalar(text("SELECT pg_backend_pid()")))
"""

POOLED_LOOP_CHECK = """
import pytest
from sqlalchemy import text
import test_first

pytestmark = pytest.mark.asyncio(loop_scope="module")

async def test_pool_of_the_ended_loop_was_disposed(sqlaperf_async_session):
    first, *pooled = test_first.PIDS
    # the loop's first test connects on its own (its loop may be its alone); the others share
    assert len(set(pooled)) == 1 and first not in pooled
    live = (await sqlaperf_async_session.scalars(text("SELECT pid FROM pg_stat_activity"))).all()
    assert pooled[0] not in live  # closed when the first module's loop ended
"""


def test_async_sessions_on_a_longer_lived_loop_share_pooled_connections(
    project: pytest.Pytester,
) -> None:
    project.makepyfile(test_first=POOLED_LOOP_TESTS, test_second=POOLED_LOOP_CHECK)
    result = project.runpytest(
        "-p", "no:randomly", "-o", "asyncio_default_fixture_loop_scope=module", "-W", "error"
    )
    result.assert_outcomes(passed=5)


def test_async_session_on_another_loop_than_the_fixtures_is_one_clear_error(
    project: pytest.Pytester,
) -> None:
    # the project's ini runs fixtures on function-scoped loops; the tests ask for the session's:
    # asyncpg would fail deep inside the test with "attached to a different loop"
    project.makepyfile(test_loops=SESSION_LOOP_TESTS)
    result = project.runpytest()
    result.assert_outcomes(errors=2)
    result.stdout.fnmatch_lines(
        [
            "sqlaperf_async_session: this test runs on the session-scoped event loop, but "
            "pytest-asyncio runs fixtures on the function-scoped one*"
            "Set asyncio_default_fixture_loop_scope = session*",
        ]
    )
    result.stdout.no_fnmatch_line("*attached to a different loop*")
    result.stdout.no_fnmatch_line("*Traceback*")


def test_setup_database_hook_runs_once_after_metadata(project: pytest.Pytester) -> None:
    project.makeconftest(
        """
        from sqlalchemy import text

        calls = []

        def pytest_sqlaperf_setup_database(connection):
            calls.append(1)
            connection.execute(text("CREATE TABLE extra (id int)"))
            connection.execute(text("INSERT INTO extra SELECT count(*) FROM authors"))
        """
    )
    project.makepyfile(
        test_hook="""
        from sqlalchemy import text
        import conftest

        def test_a(sqlaperf_session):
            assert sqlaperf_session.execute(text("SELECT id FROM extra")).scalar() == 0

        def test_b(sqlaperf_session):
            assert conftest.calls == [1]
        """
    )
    project.runpytest().assert_outcomes(passed=2)


@pytest.mark.parametrize(
    ("reference", "message"),
    [
        ("nosuchmodule:Base.metadata", "cannot import 'nosuchmodule' (ModuleNotFoundError"),
        ("models:Nope.metadata", "models has no attribute 'Nope.metadata'"),
        ("models:Base", "models:Base' is a *, not a MetaData; point it at one"),
    ],
)
def test_bad_metadata_reference_is_one_clear_error(
    project: pytest.Pytester, reference: str, message: str
) -> None:
    project.makepyfile(test_meta="def test_m(sqlaperf_session): pass")
    result = project.runpytest(f"-osqlaperf_metadata={reference}")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines([f"*{message}*"])
    result.stdout.no_fnmatch_line("*Traceback*")


def test_xdist_workers_each_get_their_own_database(project: pytest.Pytester) -> None:
    project.makepyfile(
        test_workers="""
        import pytest
        from sqlalchemy import text

        @pytest.mark.parametrize("i", range(4))
        def test_db(sqlaperf_session, worker_id, i):
            name = sqlaperf_session.execute(text("SELECT current_database()")).scalar()
            assert name.endswith("_" + worker_id), (name, worker_id)
            assert sqlaperf_session.execute(text("SELECT count(*) FROM books")).scalar() == 0
        """
    )
    result = project.runpytest_subprocess("-n", "2", "-p", "xdist")
    result.assert_outcomes(passed=4)
    result.stdout.fnmatch_lines(["*sqlaperf*", "*measured: 4 tests, 4 ran statements*"])
