"""``QueryOptimizer`` and ``OptimizedIndexes``: plans without side effects, statistics with
quoted names, and the reference's indexes present in the schema."""

from __future__ import annotations

import pytest
from sqlalchemy import MetaData, delete, false, func, select, text, true
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession

from blog.indexes import OptimizedIndexes
from blog.models import Base, Post
from blog.query_optimization import QueryOptimizer, StatementStatisticsUnavailable
from tests.factories import Blog

ODD_TABLE = 'Post Archive"; DROP TABLE users; --'


# One EXPLAIN; the SELECT itself is not run.
@pytest.mark.max_queries(1)
async def test_explain_a_select(session: AsyncSession, blog: Blog) -> None:
    plan = await QueryOptimizer(session).analyze_query_performance(
        select(Post).where(Post.author_id == blog.authors[0].id)
    )

    assert plan.total_cost > 0
    assert plan.actual_rows is None
    assert plan.execution_time is None


# SET LOCAL transaction_read_only, then EXPLAIN ANALYZE (the SAVEPOINT around them is not
# counted).
@pytest.mark.max_queries(2)
async def test_explain_analyze_a_select(session: AsyncSession, blog: Blog) -> None:
    plan = await QueryOptimizer(session).analyze_query_performance(
        select(Post).where(Post.is_published == true(), Post.is_deleted == false()), analyze=True
    )

    assert plan.actual_rows == len(blog.published)
    assert plan.execution_time is not None
    assert plan.planning_time is not None


# Refused before anything is sent.
@pytest.mark.max_queries(0)
async def test_refuses_statements_other_than_select(session: AsyncSession) -> None:
    # The reference ran EXPLAIN ANALYZE on whatever SQL it was given: a DELETE deleted.
    optimizer = QueryOptimizer(session)

    with pytest.raises(TypeError, match="takes a SQLAlchemy Select, got Delete"):
        await optimizer.analyze_query_performance(delete(Post), analyze=True)  # type: ignore[arg-type]  # the wrong type is the point
    with pytest.raises(TypeError, match="got TextClause"):
        await optimizer.analyze_query_performance(text("DELETE FROM posts"), analyze=True)  # type: ignore[arg-type]  # likewise


async def test_analyze_cannot_write_through_a_select(session: AsyncSession, blog: Blog) -> None:
    # A SELECT can still write, from a data-modifying CTE: ANALYZE runs read-only and the
    # attempt fails, leaving every post in place.
    deleted_ids = delete(Post).returning(Post.id).cte("deleted_ids")
    sneaky = select(deleted_ids.c.id)
    optimizer = QueryOptimizer(session)

    with pytest.raises(DBAPIError, match="read-only transaction"):
        await optimizer.analyze_query_performance(sneaky, analyze=True)
    plan = await optimizer.analyze_query_performance(sneaky)

    assert plan.actual_rows is None
    posts = len(blog.published) + len(blog.drafts) + len(blog.deleted)
    assert await session.scalar(select(func.count()).select_from(Post)) == posts


# A probe of pg_stat_statements, nothing else.
@pytest.mark.max_queries(1)
async def test_slow_queries_report_says_how_to_enable_it(session: AsyncSession) -> None:
    with pytest.raises(StatementStatisticsUnavailable, match="shared_preload_libraries"):
        await QueryOptimizer(session).get_slow_queries_report()


@pytest.fixture
async def new_index(session: AsyncSession, blog: Blog) -> str:
    """An index no scan has used yet (usage counts of older ones depend on earlier tests)."""
    await session.execute(text("CREATE INDEX idx_follows_created ON user_follows (created_at)"))
    return "idx_follows_created"


# ANALYZE and the index usage query, per table.
@pytest.mark.max_queries(4)
async def test_optimize_table_statistics(session: AsyncSession, new_index: str) -> None:
    unused = await QueryOptimizer(session).optimize_table_statistics(["posts", "user_follows"])

    assert set(unused) == {"posts", "user_follows"}
    assert new_index in unused["user_follows"]
    assert set(unused["posts"]) <= {
        index.name for index in Base.metadata.tables["posts"].indexes
    } | {"posts_pkey"}


@pytest.fixture
async def odd_table(session: AsyncSession) -> str:
    """A table whose name needs quoting, and would inject SQL if it were not quoted."""
    quoted = '"' + ODD_TABLE.replace('"', '""') + '"'
    await session.execute(text(f"CREATE TABLE {quoted} (id integer PRIMARY KEY)"))
    return ODD_TABLE


async def test_optimize_table_statistics_quotes_table_names(
    session: AsyncSession, odd_table: str
) -> None:
    # The reference sent ANALYZE {table_name} as it came: a syntax error here, and with the
    # right name, an injected statement.
    unused = await QueryOptimizer(session).optimize_table_statistics([odd_table])

    assert unused == {odd_table: [f"{odd_table}_pkey"]}
    assert await session.scalar(text("SELECT to_regclass('users') IS NOT NULL"))


INDEX_TABLES = {
    "idx_posts_author_published_created": "posts",
    "idx_posts_published_only": "posts",
    "idx_posts_search_gin": "posts",
    "idx_posts_engagement_score": "posts",
    "idx_users_search_composite": "users",
}


def test_create_advanced_indexes_binds_them_to_tables() -> None:
    # The reference's free-standing Index("name", "column") objects belonged to no table, so
    # create_all never made them.
    metadata = MetaData()
    posts = Base.metadata.tables["posts"].to_metadata(metadata)
    users = Base.metadata.tables["users"].to_metadata(metadata)

    indexes = OptimizedIndexes.create_advanced_indexes(posts, users)

    assert {index.name: getattr(index.table, "name", None) for index in indexes} == INDEX_TABLES


async def test_reference_indexes_are_in_the_schema(session: AsyncSession) -> None:
    rows = await session.execute(
        text("SELECT indexname, tablename, indexdef FROM pg_indexes WHERE schemaname = 'public'")
    )
    definitions = {name: (table, definition) for name, table, definition in rows}

    assert {name: definitions[name][0] for name in INDEX_TABLES} == INDEX_TABLES
    composite, partial, gin, expression, users = (definitions[name][1] for name in INDEX_TABLES)
    assert "(author_id, is_published, created_at) WHERE (is_deleted = false)" in composite
    assert "(created_at) WHERE ((is_published = true) AND (is_deleted = false))" in partial
    assert "USING gin (to_tsvector('english'::regconfig" in gin
    assert "((like_count * 2))::numeric + ((view_count)::numeric * 0.1)" in expression
    assert "(status, is_active, created_at) WHERE (is_deleted = false)" in users
