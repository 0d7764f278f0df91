"""The plan scenario suite: every labelled case on every PostgreSQL version, through psycopg and
asyncpg, with precision and recall of the plan findings both exactly 1.0."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

import pytest
from plan_scenarios import CASES, DATA, SIZES, Case
from sqlalchemy import Connection, bindparam, create_engine, event, text
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from pytest_sqlaperf.capture.fingerprint import shape_of
from pytest_sqlaperf.capture.querylog import Statement
from pytest_sqlaperf.checks.plans import PlanProblem, find_problems
from pytest_sqlaperf.checks.plantree import render
from pytest_sqlaperf.explain import ExplainRunner, ExplainSettings

Label = tuple[str, str, tuple[str, ...]]


@dataclass
class Outcome:
    """What the plan checks said about one case."""

    case: Case
    found: frozenset[Label]
    problems: list[PlanProblem]
    plan: dict[str, Any] | None
    skipped: str | None


@dataclass
class Run:
    version: str
    driver: str
    outcomes: list[Outcome]

    def score(self) -> tuple[float, float, int, int, int]:
        """Precision, recall, true positives, false positives, misses over all labels."""
        expected = {(o.case.id, label) for o in self.outcomes for label in o.case.expected}
        found = {(o.case.id, label) for o in self.outcomes for label in o.found}
        hits, false, missed = len(expected & found), len(found - expected), len(expected - found)
        precision = hits / (hits + false) if hits + false else 1.0
        recall = hits / (hits + missed) if hits + missed else 1.0
        return precision, recall, hits, false, missed


def _statement(captured: dict[str, Any]) -> Statement:
    shape = shape_of(captured["sql"])
    return Statement(
        sql=captured["sql"],
        display_sql=shape.display_sql,
        fingerprint=shape.fingerprint,
        kind=shape.kind,
        parameters=captured["parameters"],
        executemany_rows=1,
        call_site=None,
    )


def _run_cases(connection: Connection, runner: ExplainRunner, size: str) -> list[Outcome]:
    captured: dict[str, Any] = {}

    def capture(conn: Any, cursor: Any, sql: str, parameters: Any, *args: Any) -> None:
        captured.update(sql=sql, parameters=parameters)

    event.listen(connection, "before_cursor_execute", capture)
    for insert in DATA.format(**SIZES[size]).split(";"):
        if insert.strip():
            connection.execute(text(insert))
    outcomes = []
    for case in CASES:
        statement = text(case.sql).bindparams(
            *(bindparam(name, expanding=True) for name in case.expanding)
        )
        connection.execute(statement, case.params)
        explained = runner.explain(_statement(captured), connection)
        assert explained is not None, f"{case.id}: no plan expected?"
        problems = find_problems(explained.plan, explained.catalog) if explained.plan else []
        found = frozenset((p.kind, p.table, p.columns) for p in problems)
        outcomes.append(Outcome(case, found, problems, explained.plan, explained.skipped))
    return outcomes


def _sync_run(url: str, size: str) -> list[Outcome]:
    engine = create_engine(url, poolclass=NullPool)
    try:
        with engine.connect() as connection, connection.begin() as transaction:
            outcomes = _run_cases(connection, ExplainRunner(ExplainSettings()), size)
            transaction.rollback()
        return outcomes
    finally:
        engine.dispose()


def _async_run(url: str, size: str, driver: str = "asyncpg") -> list[Outcome]:
    async def run() -> list[Outcome]:
        engine = create_async_engine(url.replace("+psycopg", f"+{driver}"), poolclass=NullPool)
        try:
            async with engine.connect() as connection:
                await connection.begin()
                runner = ExplainRunner(ExplainSettings())
                outcomes = await connection.run_sync(_run_cases, runner, size)
                await connection.rollback()
                return outcomes
        finally:
            await engine.dispose()

    return asyncio.run(run())


@pytest.fixture(scope="module")
def runs(lab: tuple[str, str]) -> dict[str, Run]:
    url, version = lab
    return {
        "psycopg-small": Run(version, "psycopg, small tables", _sync_run(url, "small")),
        "asyncpg-small": Run(version, "asyncpg, small tables", _async_run(url, "small")),
        "psycopg-large": Run(version, "psycopg, large tables", _sync_run(url, "large")),
        "asyncpg-large": Run(version, "asyncpg, large tables", _async_run(url, "large")),
        "psycopg_async-small": Run(
            version, "psycopg_async, small tables", _async_run(url, "small", "psycopg_async")
        ),
    }


def _explain_mismatches(run: Run) -> str:
    lines = []
    for outcome in run.outcomes:
        if outcome.found != outcome.case.expected:
            lines.append(f"{outcome.case.id}: expected {sorted(outcome.case.expected)}")
            lines.append(f"  found {sorted(outcome.found)} {outcome.skipped or ''}")
            if outcome.plan is not None:
                lines += [f"    {line}" for line in render(outcome.plan)]
    return "\n".join(lines)


@pytest.mark.parametrize(
    "variant",
    ["psycopg-small", "asyncpg-small", "psycopg-large", "asyncpg-large", "psycopg_async-small"],
)
def test_precision_and_recall_are_one(runs: dict[str, Run], variant: str) -> None:
    run = runs[variant]
    assert len(CASES) >= 30
    assert not [o.case.id for o in run.outcomes if o.plan is None]
    precision, recall, hits, false, missed = run.score()
    expected_clean = sum(1 for o in run.outcomes if not o.case.expected)
    print(
        f"{run.version} {run.driver}: {len(CASES)} cases ({expected_clean} clean), "
        f"{hits} findings found of {hits + missed}, {false} false positives: "
        f"precision {precision:.2f}, recall {recall:.2f}"
    )
    assert (precision, recall) == (1.0, 1.0), _explain_mismatches(run)


def _problem(runs: dict[str, Run], case_id: str) -> PlanProblem:
    outcome = next(o for o in runs["psycopg-small"].outcomes if o.case.id == case_id)
    (problem,) = outcome.problems
    return problem


@pytest.mark.parametrize(
    ("case_id", "create_index", "sqlalchemy"),
    [
        (
            "eq_unindexed",
            "CREATE INDEX ix_books_isbn ON books (isbn);",
            'Index("ix_books_isbn", books.c.isbn)',
        ),
        (
            "eq_unindexed_with_flag",
            "CREATE INDEX ix_books_isbn ON books (isbn) WHERE NOT published;",
            'Index("ix_books_isbn", books.c.isbn, postgresql_where=text("NOT published"))',
        ),
        (
            "like_prefix_other_collation_btree",
            "CREATE INDEX ix_books_slug ON books (slug text_pattern_ops);",
            'Index("ix_books_slug", books.c.slug, postgresql_ops={"slug": "text_pattern_ops"})',
        ),
        (
            "like_contains",
            "CREATE INDEX ix_books_title_trgm ON books USING gin (title gin_trgm_ops);",
            'Index("ix_books_title_trgm", books.c.title, postgresql_using="gin", '
            'postgresql_ops={"title": "gin_trgm_ops"})',
        ),
        (
            "lower_unindexed",
            "CREATE INDEX ix_authors_lower_name ON authors ((lower(name)));",
            'Index("ix_authors_lower_name", func.lower(authors.c.name))',
        ),
        (
            "jsonb_no_gin",
            "CREATE INDEX ix_books_meta ON books USING gin (meta);",
            'Index("ix_books_meta", books.c.meta, postgresql_using="gin")',
        ),
        (
            "order_limit_unindexed",
            "CREATE INDEX ix_books_updated_at ON books (updated_at DESC);",
            'Index("ix_books_updated_at", books.c.updated_at.desc())',
        ),
        (
            "fk_join_unindexed",
            "CREATE INDEX ix_books_editor_id ON books (editor_id);",
            'Index("ix_books_editor_id", books.c.editor_id)',
        ),
        (
            "or_one_unindexed",
            "CREATE INDEX ix_books_isbn ON books (isbn);",
            'Index("ix_books_isbn", books.c.isbn)',
        ),
    ],
)
def test_findings_name_the_index_to_create(
    runs: dict[str, Run], case_id: str, create_index: str, sqlalchemy: str
) -> None:
    suggestion = _problem(runs, case_id).suggestion
    assert suggestion is not None
    assert suggestion.statements[0] == create_index
    assert suggestion.sqlalchemy[0] == sqlalchemy


def test_trigram_fix_says_it_needs_the_extension(runs: dict[str, Run]) -> None:
    suggestion = _problem(runs, "ilike_contains").suggestion
    assert suggestion is not None
    assert "CREATE EXTENSION pg_trgm;" in suggestion.text()


def test_plan_lines_mark_the_node_and_hide_values(runs: dict[str, Run]) -> None:
    problem = _problem(runs, "eq_unindexed")
    marked = [line for line in problem.plan_lines if line.endswith("<-- here")]
    assert len(marked) == 1
    assert "Seq Scan on books (disabled)" in marked[0]
    assert not any("'x'" in line for line in problem.plan_lines)
    assert any("'?'" in line for line in problem.plan_lines)
