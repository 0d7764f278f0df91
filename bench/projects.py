"""The pytest projects the benchmarks generate: models, application code, conftests and tests."""

from __future__ import annotations

INI = """\
[pytest]
pythonpath = .
asyncio_mode = auto
asyncio_default_fixture_loop_scope = function
filterwarnings =
    error
"""

# The suite's clocks: stamps in time.monotonic() (comparable across processes) and in
# time.process_time() (this process's CPU time, "_cpu"), written as JSON at session finish to the
# file the bench names. The window runs from the end of test_warmup to the
# start of test_sentinel, so it holds the measured tests only: no collection, no server or
# database set-up, no session teardown.
TIMING_CONFTEST = '''\
import gc
import json
import os
import time
from pathlib import Path

import pytest

RESULTS = {}


# Under callgrind (bench/instructions.py), a call of os.getppid() at each edge of the window
# makes callgrind dump its counters there (--dump-before=os_getppid). The window opens on a
# full collection: every run starts it with the collector's counters at zero, so whether one
# of its rare full collections (tens of millions of instructions) falls inside a short window
# does not depend on how many objects start-up happened to leave counted.
_CALLGRIND_MARKS = bool(os.environ.get("BENCH_CALLGRIND_MARKS"))


# The garbage collector's collections per generation in the window (gc.callbacks): what the
# plugin's objects do to when the collector runs in the user's tests.
_COLLECTIONS = [0, 0, 0]
_IN_WINDOW = [False]


def _count_collection(phase, info):
    if phase == "start" and _IN_WINDOW[0]:
        _COLLECTIONS[info["generation"]] += 1


gc.callbacks.append(_count_collection)


def _stamp(name):
    if _CALLGRIND_MARKS and name == "window_start":
        gc.collect()
    if _CALLGRIND_MARKS and name in ("window_start", "window_end"):
        os.getppid()
    if name == "window_start":
        _IN_WINDOW[0] = True
    elif name == "window_end":
        _IN_WINDOW[0] = False
        RESULTS["collections"] = list(_COLLECTIONS)
    RESULTS[name] = time.monotonic()
    RESULTS[name + "_cpu"] = time.process_time()


def pytest_sessionstart(session):
    _stamp("session_start")


def pytest_runtest_logfinish(nodeid, location):
    if nodeid.endswith("::test_warmup"):
        _stamp("window_start")


def pytest_runtest_logstart(nodeid, location):
    if nodeid.endswith("::test_sentinel"):
        _stamp("window_end")


@pytest.hookimpl(tryfirst=True)
def pytest_sessionfinish(session, exitstatus):
    _stamp("session_finish")
    Path(os.environ["BENCH_RESULTS_FILE"]).write_text(json.dumps(RESULTS))


@pytest.fixture
def bench_results():
    """Figures the tests measure themselves, written with the stamps."""
    return RESULTS
'''

MODELS = '''\
"""The benchmark's mapped classes: users write posts, posts have comments."""

from __future__ import annotations

from sqlalchemy import ForeignKey, String, Text
from sqlalchemy.ext.asyncio import AsyncAttrs
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship


class Base(AsyncAttrs, DeclarativeBase):
    pass


class User(Base):
    __tablename__ = "users"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    email: Mapped[str] = mapped_column(String(200), index=True)
    posts: Mapped[list[Post]] = relationship(back_populates="author")


class Post(Base):
    __tablename__ = "posts"
    id: Mapped[int] = mapped_column(primary_key=True)
    author_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    title: Mapped[str] = mapped_column(String(200))
    body: Mapped[str] = mapped_column(Text)
    author: Mapped[User] = relationship(back_populates="posts")
    comments: Mapped[list[Comment]] = relationship(back_populates="post")


class Comment(Base):
    __tablename__ = "comments"
    id: Mapped[int] = mapped_column(primary_key=True)
    post_id: Mapped[int] = mapped_column(ForeignKey("posts.id"), index=True)
    author_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    text: Mapped[str] = mapped_column(Text)
    post: Mapped[Post] = relationship(back_populates="comments")
    author: Mapped[User] = relationship()
'''

# The application code under test: 24 statements per call, the same ones sync and async.
WORKLOAD = '''\
"""Application code the benchmark suites exercise: 24 statements per call."""

from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import joinedload, selectinload

from models import Comment, Post, User

POSTS = 4
COMMENTS_PER_POST = 2


def _new_rows(i):
    user = User(name=f"user {i}", email=f"user{i}@example.com")
    posts = [Post(author=user, title=f"post {i}.{n}", body="draft") for n in range(POSTS)]
    comments = [
        Comment(post=post, author=user, text=f"comment {n}")
        for post in posts
        for n in range(COMMENTS_PER_POST)
    ]
    return user, posts, comments


def exercise(session, i):
    user, posts, comments = _new_rows(i)
    session.add(user)
    session.flush()
    session.add_all(posts)
    session.flush()
    session.add_all(comments)
    session.flush()
    session.expunge_all()

    user = session.scalars(select(User).where(User.email == f"user{i}@example.com")).one()
    posts = session.scalars(
        select(Post).where(Post.author_id == user.id).order_by(Post.id)
    ).all()
    comment_count = 0
    for post in posts:  # lazy loads: one SELECT per post
        comment_count += len(post.comments)
    session.scalars(select(Post.title).where(Post.title.like(f"post {i}.%"))).all()
    session.scalar(select(func.count(Comment.id)).join(Post).where(Post.author_id == user.id))
    session.scalars(select(Post).where(Post.id.in_([post.id for post in posts[:3]]))).all()
    session.scalars(
        select(User).options(selectinload(User.posts)).where(User.id == user.id)
    ).all()
    session.scalars(
        select(Post).options(joinedload(Post.author)).where(Post.author_id == user.id)
    ).unique().all()
    session.execute(
        select(Post.author_id, func.count(Post.id))
        .where(Post.author_id == user.id)
        .group_by(Post.author_id)
    ).all()
    session.scalars(
        select(Comment).where(Comment.author_id == user.id).order_by(Comment.id.desc()).limit(5)
    ).all()
    session.scalar(select(select(Post.id).where(Post.author_id == user.id).exists()))
    user.name = f"renamed {i}"
    session.flush()
    session.execute(update(Post).where(Post.author_id == user.id).values(body="edited"))
    session.delete(posts[0].comments[0])
    session.flush()
    session.execute(delete(Comment).where(Comment.post_id == posts[1].id))
    session.expire(user)
    assert user.name == f"renamed {i}"
    session.scalars(select(User).where(User.name.startswith("renamed")).limit(3)).all()
    assert comment_count == POSTS * COMMENTS_PER_POST


async def exercise_async(session, i):
    user, posts, comments = _new_rows(i)
    session.add(user)
    await session.flush()
    session.add_all(posts)
    await session.flush()
    session.add_all(comments)
    await session.flush()
    session.expunge_all()

    user = (await session.scalars(select(User).where(User.email == f"user{i}@example.com"))).one()
    posts = (
        await session.scalars(select(Post).where(Post.author_id == user.id).order_by(Post.id))
    ).all()
    comment_count = 0
    for post in posts:  # lazy loads: one SELECT per post
        comment_count += len(await post.awaitable_attrs.comments)
    (await session.scalars(select(Post.title).where(Post.title.like(f"post {i}.%")))).all()
    await session.scalar(
        select(func.count(Comment.id)).join(Post).where(Post.author_id == user.id)
    )
    (await session.scalars(select(Post).where(Post.id.in_([post.id for post in posts[:3]])))).all()
    (
        await session.scalars(
            select(User).options(selectinload(User.posts)).where(User.id == user.id)
        )
    ).all()
    (
        await session.scalars(
            select(Post).options(joinedload(Post.author)).where(Post.author_id == user.id)
        )
    ).unique().all()
    (
        await session.execute(
            select(Post.author_id, func.count(Post.id))
            .where(Post.author_id == user.id)
            .group_by(Post.author_id)
        )
    ).all()
    (
        await session.scalars(
            select(Comment)
            .where(Comment.author_id == user.id)
            .order_by(Comment.id.desc())
            .limit(5)
        )
    ).all()
    await session.scalar(select(select(Post.id).where(Post.author_id == user.id).exists()))
    user.name = f"renamed {i}"
    await session.flush()
    await session.execute(update(Post).where(Post.author_id == user.id).values(body="edited"))
    await session.delete(posts[0].comments[0])
    await session.flush()
    await session.execute(delete(Comment).where(Comment.post_id == posts[1].id))
    session.expire(user)
    assert await user.awaitable_attrs.name == f"renamed {i}"
    (await session.scalars(select(User).where(User.name.startswith("renamed")).limit(3))).all()
    assert comment_count == POSTS * COMMENTS_PER_POST
'''

# --- start-up --------------------------------------------------------------------------------

STARTUP_TEST = """\
import time

from sqlalchemy import text


def test_first_query(sqlaperf_session, bench_results):
    assert sqlaperf_session.execute(text("SELECT 1")).scalar_one() == 1
    bench_results["first_query"] = time.monotonic() - bench_results["session_start"]
"""


def startup_project() -> dict[str, str]:
    """One test that asks for ``sqlaperf_session`` and runs ``SELECT 1``."""
    return {
        "pytest.ini": INI + "sqlaperf_metadata = models:Base.metadata\n",
        "models.py": MODELS,
        "conftest.py": TIMING_CONFTEST,
        "test_first_query.py": STARTUP_TEST,
    }


# --- isolation -------------------------------------------------------------------------------

ISOLATION_CONFTEST = """

from sqlalchemy import create_engine
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

import pytest_asyncio


@pytest.fixture(scope="session")
def plain_engine(sqlaperf_url):
    engine = create_engine(sqlaperf_url)
    yield engine
    engine.dispose()


@pytest.fixture
def plain_connection(plain_engine):
    with plain_engine.connect() as connection:
        yield connection


@pytest.fixture(scope="session")
def plain_async_engine(sqlaperf_async_url):
    # NullPool, like the plugin's async engine: an asyncpg connection belongs to the event loop
    # that opened it, and each test has its own loop.
    engine = create_async_engine(sqlaperf_async_url, poolclass=NullPool)
    yield engine
    engine.sync_engine.dispose()


@pytest_asyncio.fixture
async def plain_async_connection(plain_async_engine):
    async with plain_async_engine.connect() as connection:
        yield connection


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def pooled_async_engine(sqlaperf_async_url):
    engine = create_async_engine(sqlaperf_async_url)
    yield engine
    await engine.dispose()


@pytest_asyncio.fixture(loop_scope="session")
async def pooled_async_connection(pooled_async_engine):
    async with pooled_async_engine.connect() as connection:
        yield connection
"""

ISOLATION_TEST = """\
import pytest
from sqlalchemy import text
{marker}

{async_}def test_warmup({fixture}):
    assert ({await_}{fixture}.execute(text("SELECT 1"))).scalar_one() == 1


@pytest.mark.parametrize("i", range({tests}))
{async_}def test_select_one({fixture}, i):
    assert ({await_}{fixture}.execute(text("SELECT 1"))).scalar_one() == 1


{async_}def test_sentinel({fixture}):
    pass
"""

# variant name -> (fixture, asynchronous, tests on the session's event loop)
ISOLATION_VARIANTS: dict[str, tuple[str, bool, bool]] = {
    "sync_isolated": ("sqlaperf_session", False, False),
    "sync_plain": ("plain_connection", False, False),
    "async_isolated": ("sqlaperf_async_session", True, False),
    "async_plain": ("plain_async_connection", True, False),
    "async_pooled": ("pooled_async_connection", True, True),
    "async_isolated_session_loop": ("sqlaperf_async_session", True, True),
}


def isolation_project(tests: int) -> dict[str, str]:
    """One test module per variant, each: a warm-up test, ``tests`` measured tests, a sentinel."""
    files = {
        "pytest.ini": INI + "sqlaperf_metadata = models:Base.metadata\n",
        "models.py": MODELS,
        "conftest.py": TIMING_CONFTEST + ISOLATION_CONFTEST,
    }
    for name, (fixture, asynchronous, session_loop) in ISOLATION_VARIANTS.items():
        files[f"test_{name}.py"] = ISOLATION_TEST.format(
            marker='\npytestmark = pytest.mark.asyncio(loop_scope="session")\n'
            if session_loop
            else "",
            async_="async " if asynchronous else "",
            await_="await " if asynchronous else "",
            fixture=fixture,
            tests=tests,
        )
    return files


# --- capture overhead and statement cost -----------------------------------------------------

WORKLOAD_CONFTEST = """

from sqlalchemy import create_engine, event
from sqlalchemy.engine import Engine
from sqlalchemy.ext.asyncio import AsyncSession, create_async_engine
from sqlalchemy.orm import Session

import pytest_asyncio

# Statements the suite ran, counted by an engine listener only in the runs that ask for it
# (BENCH_COUNT_STATEMENTS): a listener on Engine makes SQLAlchemy dispatch its engine events
# around every statement (about 35,000 instructions per ORM select, docs/benchmarks.md), which
# would weigh on the runs without a plugin and hide what the plugins' own listeners cost.
RESULTS["statements"] = None


def pytest_configure(config):
    # What the plugin was told, so the bench can check each variant ran as it meant to.
    for name in ("sqlaperf_explain", "sqlaperf_n_plus_one"):
        try:
            RESULTS[name] = config.getini(name)
        except ValueError:  # unknown key: the plugin is not loaded
            RESULTS[name] = None


def _count_statement(conn, cursor, statement, parameters, context, executemany):
    RESULTS["statements"] += 1


if os.environ.get("BENCH_COUNT_STATEMENTS"):
    RESULTS["statements"] = 0
    event.listen(Engine, "before_cursor_execute", _count_statement)


@pytest.fixture(scope="session")
def engine():
    engine = create_engine(os.environ["BENCH_DATABASE_URL"])
    yield engine
    engine.dispose()


@pytest.fixture
def session(engine):
    with Session(engine) as session:
        yield session
        session.rollback()


@pytest.fixture
def bench_plugin_figures(request):
    # At the sentinel, after the window: what the plugin recorded and EXPLAINed until then.
    if not request.config.pluginmanager.has_plugin("sqlaperf"):
        return
    from pytest_sqlaperf.plugin import plugin_of

    plugin = plugin_of(request.config)
    # Statements in the records of the tests so far (call phases: warm-up and measured tests).
    RESULTS["plugin_statements"] = plugin.records.statements_counted()
    for extension in plugin.extensions:
        runner = getattr(extension, "runner", None)
        if runner is not None:  # the plan checks' ExplainRunner (None with sqlaperf_explain=off)
            RESULTS["explain_durations"] = list(runner.durations)
            RESULTS["explain_shapes"] = len(getattr(runner, "_shapes", ()))


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def async_engine():
    engine = create_async_engine(os.environ["BENCH_ASYNC_DATABASE_URL"])
    yield engine
    await engine.dispose()


@pytest_asyncio.fixture(loop_scope="session")
async def async_session(async_engine):
    async with AsyncSession(async_engine) as session:
        yield session
        await session.rollback()
"""

WORKLOAD_SYNC_TEST = """\
import pytest

from workload import exercise


def test_warmup(session):
    exercise(session, -1)


@pytest.mark.parametrize("i", range({tests}))
def test_workload(session, i):
    exercise(session, i)


def test_sentinel(session, bench_plugin_figures):
    pass
"""

WORKLOAD_ASYNC_TEST = """\
import pytest

from workload import exercise_async

pytestmark = pytest.mark.asyncio(loop_scope="session")


async def test_warmup(async_session):
    await exercise_async(async_session, -1)


@pytest.mark.parametrize("i", range({tests}))
async def test_workload(async_session, i):
    await exercise_async(async_session, i)


async def test_sentinel(async_session, bench_plugin_figures):
    pass
"""

STATEMENT_COST_TEST = """\
import time

from sqlalchemy import event, select, text
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from models import User

STATEMENTS = {statements}
WARMUP = 50
IN_PROCESS_ROUNDS = {in_process_rounds}
IN_PROCESS_BLOCK = max(10, STATEMENTS // 12)


def _ignore(*args):
    pass


def test_statement_cost(session, bench_results, request):
    users = [User(name=f"user {{k}}", email=f"user{{k}}@example.com") for k in range(100)]
    session.add_all(users)
    session.flush()
    ids = [user.id for user in users]
    connection = session.connection()
    cursor = connection.connection.cursor()

    def raw(n):
        for _ in range(n):
            cursor.execute("SELECT 1")
            cursor.fetchone()

    def core(n):
        for _ in range(n):
            connection.execute(text("SELECT 1")).scalar_one()

    def orm(n):
        for k in range(n):
            session.execute(select(User).where(User.id == ids[k % len(ids)])).scalar_one()

    def timed(name, loop):
        loop(WARMUP)
        started, started_cpu = time.perf_counter(), time.process_time()
        loop(STATEMENTS)
        bench_results[name] = time.perf_counter() - started
        bench_results[name + "_cpu"] = time.process_time() - started_cpu

    for name, loop in (("raw", raw), ("core", core), ("orm", orm)):
        timed(name, loop)
    if request.config.pluginmanager.has_plugin("sqlaperf"):
        # In this one process: blocks with the recorder installed (recording into this
        # test's log, the plan checks on) and uninstalled (no listener at all) alternate, so
        # the difference holds the listeners' work and not the process's memory layout.
        from pytest_sqlaperf.plugin import plugin_of

        recorder = plugin_of(request.config).recorder
        for name, loop in (("raw", raw), ("core", core), ("orm", orm)):
            differences = []
            for round_ in range(IN_PROCESS_ROUNDS):
                spent = {{}}
                for installed in (True, False) if round_ % 2 == 0 else (False, True):
                    if not installed:
                        recorder.uninstall()
                    try:
                        started = time.process_time()
                        loop(IN_PROCESS_BLOCK)
                        spent[installed] = time.process_time() - started
                    finally:
                        if not installed:
                            recorder.install()
                differences.append((spent[True] - spent[False]) / IN_PROCESS_BLOCK)
            bench_results[f"{{name}}_in_process"] = differences
    else:
        # What SQLAlchemy itself charges for having any listener at all, whatever it does.
        for target, name, loop in (
            (Engine, "before_cursor_execute", core),
            (Session, "do_orm_execute", orm),
        ):
            event.listen(target, name, _ignore)
            try:
                timed(f"{{loop.__name__}}_idle_{{name}}", loop)
            finally:
                event.remove(target, name, _ignore)
"""


# The workload's lazy-load loop is an N+1 and the statement loops repeat one statement: the
# plugin's checks run and report them, but must not fail the tests (a failing test costs more to
# report). With -p no:sqlaperf the plugin's keys are unknown, and pytest says so.
WORKLOAD_INI = (
    INI
    + """\
    ignore:Unknown config option:pytest.PytestConfigWarning
sqlaperf_n_plus_one = warn
"""
)


PURE_PYTHON_PLUGIN = '''\
"""Loaded with ``-p bench_pure_python``: the plugin records statements with its Python
listener, the reference of the C one (what SQLAPERF_PURE_PYTHON=1 chooses)."""

from pytest_sqlaperf.capture import listeners


def pytest_configure(config):
    listeners.use_extension(False)
'''


def workload_project(tests: int, statements: int, in_process_rounds: int = 2) -> dict[str, str]:
    """The ORM suite (sync and async modules) on engines of its own, and the statement loops."""
    return {
        "pytest.ini": WORKLOAD_INI,
        "bench_pure_python.py": PURE_PYTHON_PLUGIN,
        "models.py": MODELS,
        "workload.py": WORKLOAD,
        "conftest.py": TIMING_CONFTEST + WORKLOAD_CONFTEST,
        "test_sync_workload.py": WORKLOAD_SYNC_TEST.format(tests=tests),
        "test_async_workload.py": WORKLOAD_ASYNC_TEST.format(tests=tests),
        "test_statement_cost.py": STATEMENT_COST_TEST.format(
            statements=statements, in_process_rounds=in_process_rounds
        ),
    }
