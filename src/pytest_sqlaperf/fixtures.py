"""The fixtures users request: database URLs, engines, isolated sessions and the query log."""

from __future__ import annotations

import asyncio
import inspect
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, final

import pytest
import pytest_asyncio

from .asyncpools import LoopPools
from .capture.querylog import QueryLog, Statement
from .checks import budget as budget_check
from .checks.scaling import Sample, compare_samples
from .markers import max_queries_marker

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine
    from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession
    from sqlalchemy.orm import Session

    from .plugin import SqlaperfPlugin
    from .provision import WorkerDatabase


class BudgetExceeded(AssertionError):
    """A ``with sqlaperf.max_queries(...)`` block ran more statements than it allows."""


@final
class Sqlaperf:
    """The current test's query log: what its call phase ran so far, and budgets for blocks of it.

    Statements of fixture set-up are not in it; statements from threads the test starts are.
    """

    def __init__(
        self,
        plugin: SqlaperfPlugin,
        log: QueryLog,
        *,
        show_parameters: bool,
        request: pytest.FixtureRequest | None = None,
    ) -> None:
        self._plugin = plugin
        self._log = log
        self._show_parameters = show_parameters
        self._request = request

    @property
    def log(self) -> QueryLog:
        """The test's QueryLog."""
        return self._log

    @property
    def count(self) -> int:
        """Statements counted so far (transaction control left out unless configured)."""
        return self._log.count

    @property
    def statements(self) -> list[Statement]:
        """Every statement so far, transaction control included, in the order they ran."""
        return list(self._log.statements)

    def count_by_kind(self) -> dict[str, int]:
        """Counted statements per kind: select, insert, update, delete, ddl, tcl, other."""
        return self._log.count_by_kind()

    @contextmanager
    def capture(self) -> Iterator[QueryLog]:
        """A nested scope: ``with sqlaperf.capture() as log:`` collects the block's statements.

        They count toward the test as well.
        """
        log = QueryLog("capture()", count_transaction_control=self._log.count_transaction_control)
        with self._plugin.recorder.recording(log):
            yield log

    @contextmanager
    def max_queries(
        self,
        n: int | None = None,
        *,
        select: int | None = None,
        insert: int | None = None,
        update: int | None = None,
        delete: int | None = None,
    ) -> Iterator[QueryLog]:
        """A block budget: ``with sqlaperf.max_queries(2):`` fails if the block runs more."""
        __tracebackhide__ = True
        limit = max_queries_marker(n, select=select, insert=insert, update=update, delete=delete)
        with self.capture() as log:
            yield log
        finding = budget_check.check(log, limit, show_parameters=self._show_parameters)
        if finding is not None:
            raise BudgetExceeded("\n".join((finding.message, *finding.evidence)))

    @contextmanager
    def allow_n_plus_one(self) -> Iterator[None]:
        """``with sqlaperf.allow_n_plus_one():`` the N+1 check leaves the block's statements alone.

        They still count toward budgets.
        """
        start = len(self._log.statements)
        try:
            yield
        finally:
            self._log.exempt += ((start, len(self._log.statements)),)

    def assert_constant_queries(
        self,
        populate: Callable[[int], Any],
        run: Callable[[], Any],
        scales: Sequence[int] = (2, 5),
        *,
        session: Any = None,
        slope: float = 0,
    ) -> Any:
        """Fail unless ``run()`` runs as many statements after ``populate(n)`` for every n in
        ``scales`` (or at most ``slope`` more per unit of n).

        Each scale runs in its own SAVEPOINT, rolled back after it, on ``session`` (by default the
        test's ``sqlaperf_async_session`` or ``sqlaperf_session``); ``populate``'s statements
        are not counted, and the session is flushed and emptied before ``run()`` so that it loads
        what it needs from the database. ``populate`` and ``run`` may be coroutine functions:
        with them, or with an AsyncSession, await the call.
        """
        __tracebackhide__ = True
        if len(scales) < 2:
            raise ValueError(f"assert_constant_queries needs two scales or more, got {scales!r}")
        session = session if session is not None else self._test_session()
        if (
            inspect.iscoroutinefunction(populate)
            or inspect.iscoroutinefunction(run)
            or hasattr(session, "sync_session")
        ):
            return self._constant_async(populate, run, scales, session, slope)
        samples = []
        for scale in scales:
            savepoint = session.begin_nested() if session is not None else None
            try:
                with self._plugin.recorder.paused():
                    populate(scale)
                    if session is not None:
                        session.flush()
                        session.expunge_all()
                # the scales repeat run() on purpose: the comparison judges it, not the N+1 check
                with self.allow_n_plus_one(), self.capture() as log:
                    run()
                samples.append(_sample(scale, log))
            finally:
                if savepoint is not None:
                    savepoint.rollback()
                    session.expunge_all()
        self._judge(samples, slope)
        return None

    async def _constant_async(
        self,
        populate: Callable[[int], Any],
        run: Callable[[], Any],
        scales: Sequence[int],
        session: Any,
        slope: float,
    ) -> None:
        __tracebackhide__ = True
        samples = []
        for scale in scales:
            savepoint = await session.begin_nested() if session is not None else None
            try:
                with self._plugin.recorder.paused():
                    await _maybe_await(populate(scale))
                    if session is not None:
                        await session.flush()
                        session.expunge_all()
                with self.allow_n_plus_one(), self.capture() as log:
                    await _maybe_await(run())
                samples.append(_sample(scale, log))
            finally:
                if savepoint is not None:
                    await savepoint.rollback()
                    session.expunge_all()
        self._judge(samples, slope)

    def _judge(self, samples: list[Sample], slope: float) -> None:
        __tracebackhide__ = True
        problem = compare_samples("n", samples, slope=slope)
        if problem is not None:
            raise BudgetExceeded(problem)

    def _test_session(self) -> Any:
        if self._request is None:
            return None
        for name in ("sqlaperf_async_session", "sqlaperf_session"):
            if name in self._request.fixturenames:
                return self._request.getfixturevalue(name)
        return None

    def __repr__(self) -> str:
        return f"<sqlaperf count={self.count}>"


def _sample(scale: int, log: QueryLog) -> Sample:
    return Sample(
        scale=scale, count=log.count, fingerprints=Counter(s.display_sql for s in log.counted)
    )


async def _maybe_await(value: Any) -> Any:
    return await value if inspect.isawaitable(value) else value


def _plugin(config: pytest.Config) -> SqlaperfPlugin:
    from .plugin import plugin_of

    return plugin_of(config)


@pytest.fixture(scope="session")
def sqlaperf_database(request: pytest.FixtureRequest) -> WorkerDatabase:
    """This run's (or this xdist worker's) own database, cloned from the template.

    The server starts on first use: embedded by default, or the one chosen by --sqlaperf-backend.
    """
    return _plugin(request.config).worker_database()


@pytest.fixture(scope="session")
def sqlaperf_url(sqlaperf_database: WorkerDatabase) -> str:
    """URL (``postgresql+psycopg://``) of this run's own database, with the schema created."""
    return sqlaperf_database.url


@pytest.fixture(scope="session")
def sqlaperf_async_url(sqlaperf_database: WorkerDatabase) -> str:
    """URL (``postgresql+asyncpg://``) of this run's own database, with the schema created."""
    return sqlaperf_database.async_url


@pytest.fixture(scope="session")
def sqlaperf_engine(sqlaperf_url: str) -> Iterator[Engine]:
    """A synchronous SQLAlchemy Engine (psycopg) on this run's database; disposed at the end."""
    from sqlalchemy import create_engine

    engine = create_engine(sqlaperf_url)
    yield engine
    engine.dispose()


@pytest.fixture(scope="session")
def sqlaperf_async_engine(sqlaperf_async_url: str) -> Iterator[AsyncEngine]:
    """An asyncio SQLAlchemy AsyncEngine (asyncpg) on this run's database.

    It keeps no pooled connections, so it serves tests on any event loop (asyncpg connections are
    bound to the loop that opened them, and pytest-asyncio gives each test its own loop by default).
    """
    from sqlalchemy.ext.asyncio import create_async_engine
    from sqlalchemy.pool import NullPool

    engine = create_async_engine(sqlaperf_async_url, poolclass=NullPool)
    yield engine
    engine.sync_engine.dispose()


@pytest.fixture
def sqlaperf_session(sqlaperf_engine: Engine) -> Iterator[Session]:
    """A Session in a transaction rolled back after the test: all it writes, commits included.

    ``session.commit()`` inside the test releases a SAVEPOINT instead of committing, so code under
    test behaves as usual while nothing reaches other tests.
    """
    from sqlalchemy.orm import Session

    with sqlaperf_engine.connect() as connection:
        transaction = connection.begin()
        session = Session(bind=connection, join_transaction_mode="create_savepoint")
        try:
            yield session
        finally:
            # The outer rollback first: it discards the session's SAVEPOINT with it, so the
            # session's close has nothing left to roll back (one round trip fewer per test).
            transaction.rollback()
            session.close()


def _ini_or_none(config: pytest.Config, name: str) -> Any:
    try:
        return config.getini(name)
    except ValueError:  # a pytest-asyncio without this option
        return None


def loop_scope_mismatch(item: pytest.Item) -> str | None:
    """Why ``sqlaperf_async_session`` cannot serve this test, or None: pytest-asyncio runs the
    fixture on the event loop of ``asyncio_default_fixture_loop_scope`` and the test on the loop
    of its ``asyncio`` marker (or ``asyncio_default_test_loop_scope``), and an asyncpg connection
    works only on the loop that opened it. Read from pytest-asyncio's documented options."""
    marker = item.get_closest_marker("asyncio")
    if marker is None:  # not an asyncio test: it cannot await the session anyway
        return None
    config = item.config
    test_scope = (
        marker.kwargs.get("loop_scope")
        or marker.kwargs.get("scope")
        or _ini_or_none(config, "asyncio_default_test_loop_scope")
        or "function"
    )
    fixture_scope = _ini_or_none(config, "asyncio_default_fixture_loop_scope")
    if not fixture_scope or fixture_scope == "fixture-scope":  # the fixture's own scope
        fixture_scope = "function"
    if test_scope == fixture_scope:
        return None
    return (
        f"sqlaperf_async_session: this test runs on the {test_scope}-scoped event loop, but "
        f"pytest-asyncio runs fixtures on the {fixture_scope}-scoped one "
        f"(asyncio_default_fixture_loop_scope = {fixture_scope}), and an asyncpg connection "
        "works only on the loop that opened it. Set asyncio_default_fixture_loop_scope = "
        f"{test_scope} in the pytest configuration, or run the test on the {fixture_scope} loop "
        f'(@pytest.mark.asyncio(loop_scope="{fixture_scope}")).'
    )


@pytest.fixture(scope="session")
def _sqlaperf_loop_pools(sqlaperf_async_url: str) -> Iterator[LoopPools]:
    """Pooled connections for sqlaperf_async_session on event loops that serve several tests."""
    pools = LoopPools(sqlaperf_async_url)
    yield pools
    pools.close()


@pytest_asyncio.fixture
async def sqlaperf_async_session(
    sqlaperf_async_engine: AsyncEngine,
    _sqlaperf_loop_pools: LoopPools,
    request: pytest.FixtureRequest,
) -> AsyncIterator[AsyncSession]:
    """An AsyncSession in a transaction rolled back after the test: all it writes, commits included.

    The asyncio twin of ``sqlaperf_session`` (asyncpg); works under pytest-asyncio strict and auto,
    with the test on the same event loop as the fixtures (``asyncio_default_fixture_loop_scope``).
    On a loop that serves several tests (not pytest-asyncio's default of one per test), its
    connections come from a pool of that loop's.
    """
    from sqlalchemy.ext.asyncio import AsyncSession

    mismatch = loop_scope_mismatch(request.node)
    if mismatch is not None:
        pytest.fail(mismatch, pytrace=False)
    engine = await _sqlaperf_loop_pools.engine_for(
        asyncio.get_running_loop(), sqlaperf_async_engine
    )
    async with engine.connect() as connection:
        transaction = await connection.begin()
        session = AsyncSession(bind=connection, join_transaction_mode="create_savepoint")
        try:
            yield session
        finally:
            # as in sqlaperf_session; with asyncpg the ROLLBACK TO SAVEPOINT saved is two round
            # trips (prepare, then execute)
            await transaction.rollback()
            await session.close()


@pytest.fixture
def sqlaperf(request: pytest.FixtureRequest) -> Sqlaperf:
    """The current test's query log: ``count``, ``statements``, ``count_by_kind()``,
    ``with sqlaperf.capture() as log:``, ``with sqlaperf.max_queries(2):``,
    ``with sqlaperf.allow_n_plus_one():`` and ``sqlaperf.assert_constant_queries(populate, run)``.
    """
    plugin = _plugin(request.config)
    return Sqlaperf(
        plugin, plugin.log_of(request.node), show_parameters=plugin.show_parameters, request=request
    )


__all__: list[str] = []
_FIXTURES: tuple[Any, ...] = (
    sqlaperf_database,
    sqlaperf_url,
    sqlaperf_async_url,
    sqlaperf_engine,
    sqlaperf_async_engine,
    sqlaperf_session,
    _sqlaperf_loop_pools,
    sqlaperf_async_session,
    sqlaperf,
)
