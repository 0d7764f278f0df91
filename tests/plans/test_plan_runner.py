"""The EXPLAIN runner on its own: what it skips and why, the generic-plan fallback, the cache
per shape and values."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import Connection, create_engine, text
from sqlalchemy.exc import ProgrammingError
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from pytest_sqlaperf.capture.fingerprint import shape_of
from pytest_sqlaperf.capture.listeners import Recorder
from pytest_sqlaperf.capture.querylog import QueryLog, Statement
from pytest_sqlaperf.explain import MAX_VALUES_PER_SHAPE, UNKNOWN, ExplainRunner, ExplainSettings

BY_ISBN = "SELECT * FROM books WHERE isbn = %(i)s"


def statement(sql: str, parameters: Any) -> Statement:
    shape = shape_of(sql)
    return Statement(
        sql=sql,
        display_sql=shape.display_sql,
        fingerprint=shape.fingerprint,
        kind=shape.kind,
        parameters=parameters,
        executemany_rows=1,
        call_site=None,
    )


@pytest.fixture
def connection(lab: tuple[str, str]) -> Iterator[Connection]:
    engine = create_engine(lab[0], poolclass=NullPool)
    with engine.connect() as connection:
        connection.begin()
        connection.execute(text("SELECT 1"))
        yield connection
        connection.rollback()
    engine.dispose()


def _major(lab: tuple[str, str]) -> int:
    return int(lab[1].split()[1].split(".")[0])


def test_values_that_cannot_be_bound_get_a_generic_plan(
    connection: Connection, lab: tuple[str, str]
) -> None:
    runner = ExplainRunner(ExplainSettings())
    explained = runner.explain(statement(BY_ISBN, None), connection)
    assert explained is not None
    if _major(lab) >= 16:
        assert (explained.method, explained.skipped) == ("generic", None)
        assert explained.plan is not None
        assert explained.plan["Node Type"] == "Seq Scan"
    else:
        assert explained.skipped == "values cannot be bound (GENERIC_PLAN needs PostgreSQL 16)"


def test_asyncpg_cannot_run_a_generic_plan(lab: tuple[str, str]) -> None:
    async def run() -> str | None:
        engine = create_async_engine(lab[0].replace("+psycopg", "+asyncpg"), poolclass=NullPool)
        try:
            async with engine.connect() as connection:
                await connection.begin()
                await connection.execute(text("SELECT 1"))
                sql = "SELECT * FROM books WHERE isbn = $1"
                explained = await connection.run_sync(
                    lambda sync: ExplainRunner(ExplainSettings()).explain(
                        statement(sql, None), sync
                    )
                )
                await connection.rollback()
                return None if explained is None else explained.skipped
        finally:
            await engine.dispose()

    reason = asyncio.run(run())
    if _major(lab) >= 16:
        assert reason == "values cannot be bound (asyncpg cannot run GENERIC_PLAN)"
    else:
        assert reason == "values cannot be bound (GENERIC_PLAN needs PostgreSQL 16)"


def test_plans_are_cached_per_shape_and_a_bounded_number_of_values(
    connection: Connection,
) -> None:
    runner = ExplainRunner(ExplainSettings())
    fingerprint = shape_of(BY_ISBN).fingerprint
    assert runner.every_outcome(fingerprint) is None
    for _ in range(3):
        runner.explain(statement(BY_ISBN, {"i": "same"}), connection)
    assert len(runner.durations) == 1
    assert runner.every_outcome(fingerprint) is None  # new values may still be EXPLAINed
    outcomes = [
        runner.explain(statement(BY_ISBN, {"i": f"isbn-{number}"}), connection)
        for number in range(20)
    ]
    assert all(outcomes)
    assert len(runner.durations) == MAX_VALUES_PER_SHAPE
    # past the bound, the outcomes of any values are among the shape's cached ones
    every = runner.every_outcome(fingerprint)
    assert every is not None
    assert len(every) == MAX_VALUES_PER_SHAPE + 1
    assert {id(outcome) for outcome in outcomes} <= {id(outcome) for outcome in every}
    insert = statement("INSERT INTO countries (code, name) VALUES (%(c)s, %(n)s)", {})
    assert runner.explain(insert, connection) is None


def test_connection_states_are_skipped_and_tried_again(connection: Connection) -> None:
    runner = ExplainRunner(ExplainSettings())
    connection.commit()  # idle: no transaction to open a savepoint in
    idle = runner.explain(statement(BY_ISBN, {"i": "x"}), connection)
    assert idle is not None
    assert idle.skipped == "not in a transaction"
    connection.begin()
    savepoint = connection.begin_nested()
    with pytest.raises(ProgrammingError):
        connection.execute(text("SELECT * FROM no_such_table"))
    aborted = runner.explain(statement(BY_ISBN, {"i": "x"}), connection)
    assert aborted is not None
    assert aborted.skipped == "aborted transaction"
    savepoint.rollback()
    again = runner.explain(statement(BY_ISBN, {"i": "x"}), connection)
    assert again is not None
    assert again.plan is not None
    assert runner.skips == {"not in a transaction": 1, "aborted transaction": 1}


def test_known_says_what_explain_would_return_without_running_it(
    connection: Connection,
) -> None:
    runner = ExplainRunner(ExplainSettings())
    first = statement(BY_ISBN, {"i": "isbn-0"})
    assert runner.known(first) is UNKNOWN
    explained = runner.explain(first, connection)
    assert explained is not None
    assert runner.known(statement(BY_ISBN, {"i": "isbn-0"})) is explained
    assert runner.known(statement(BY_ISBN, {"i": "isbn-1"})) is UNKNOWN
    # executemany: EXPLAIN binds the first set of values
    many = statement(BY_ISBN, [{"i": "isbn-0"}, {"i": "isbn-1"}])
    assert runner.known(many, executemany=True) is explained
    # A statement of a QueryLog keeps its parameters' form in the field: the same answer.
    recorder = Recorder()
    recorder.install()  # innermost: the plugin's own recorder records nothing meanwhile
    try:
        with recorder.recording(QueryLog("t")) as log:
            connection.execute(text("SELECT * FROM books WHERE isbn = :i"), {"i": "isbn-0"})
    finally:
        recorder.uninstall()
    [logged] = log.statements
    assert logged.fingerprint == first.fingerprint
    assert logged.parameters == {"i": "isbn-0"}
    assert runner.known(logged) is explained
    # Saturated: new values take the first plan; known values keep theirs.
    for number in range(1, MAX_VALUES_PER_SHAPE):
        runner.explain(statement(BY_ISBN, {"i": f"isbn-{number}"}), connection)
    assert runner.known(statement(BY_ISBN, {"i": "new"})) is explained
    assert runner.known(statement(BY_ISBN, {"i": "isbn-3"})) is runner.explain(
        statement(BY_ISBN, {"i": "isbn-3"}), connection
    )
    assert runner.known(statement(BY_ISBN, {"i": "isbn-3"})) is not explained
    # No plan for the shape: None, as explain() gives.
    insert = statement("INSERT INTO countries (code, name) VALUES (%(c)s, %(n)s)", {})
    assert runner.explain(insert, connection) is None
    assert runner.known(insert) is None
