"""The naive siblings, measured: each test shows today's cost of one slow pattern and how it grows
with the data, next to the optimised method's fixed cost on the same data.

Statement counts come from ``sqlaperf.capture()``; the two index problems (a search no index can
serve, an ORDER BY no index holds) run one statement either way, so their cost is shown by the
plan instead: rows read and discarded, or a sort of every candidate row.
"""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from blog.caching import CachingService, InMemoryCache
from blog.indexes import search_matches
from blog.models import Comment, Post, User, UserFollow
from blog.naive import (
    naive_analyze_user_engagement,
    naive_follow_users,
    naive_get_popular_posts,
    naive_get_posts_with_everything,
    naive_get_user_feed,
    naive_get_user_with_stats,
    naive_insert_users,
    naive_popular_posts_statement,
    naive_search_posts,
    naive_search_statement,
    naive_soft_delete_posts,
    naive_update_post_stats,
)
from blog.query_optimization import QueryOptimizer
from blog.repositories.bulk_operations import BulkOperationsRepository
from blog.repositories.cached_users import CachedUserRepository
from blog.repositories.optimized_loading import OptimizedLoadingRepository
from pytest_sqlaperf import Sqlaperf
from tests.factories import BlogFactory
from tests.helpers import kinds, prefer_indexes, rows_removed_by_filter

SIZES = [2, 5]

# These tests measure what the naive code costs, on purpose; tests/test_n_plus_one.py shows the
# plugin catching each of them.
pytestmark = pytest.mark.allow_n_plus_one


async def _threads(make: BlogFactory, posts: int) -> None:
    """``posts`` published posts, each by its own author, with its own category and tag, one
    comment with one reply, and one like; nobody appears twice, so no load is skipped."""
    for _ in range(posts):
        post = await make.post(
            await make.user(), category=await make.category(), tags=[await make.tag()]
        )
        comment = await make.comment(post, await make.user())
        await make.comment(post, await make.user(), parent=comment)
        await make.like(post, await make.user())


@pytest.mark.parametrize("posts", SIZES)
async def test_posts_with_everything_loads_relations_per_post(
    session: AsyncSession, make: BlogFactory, sqlaperf: Sqlaperf, posts: int
) -> None:
    await _threads(make, posts)
    await make.forget()

    with sqlaperf.capture() as naive:
        items = await naive_get_posts_with_everything(session)
    session.expunge_all()
    with sqlaperf.capture() as optimized:
        fixed = await OptimizedLoadingRepository(session).get_posts_with_everything_optimized()

    assert [item.stats for item in items] == [item.stats for item in fixed]
    # The posts, then per post: author, category, tags, comments, likes, the comment's author,
    # its replies, and the reply's author.
    assert naive.count == 1 + 8 * posts
    assert optimized.count == 5


async def _reader_following(make: BlogFactory, authors: int) -> User:
    """A reader following ``authors`` authors, each with a published post, a comment and a
    draft; the session emptied afterwards."""
    reader = await make.user()
    for _ in range(authors):
        author = await make.user()
        await make.follow(reader, author)
        post = await make.post(author, category=await make.category(), tags=[await make.tag()])
        await make.comment(post, await make.user())
        await make.post(author, is_published=False)
    await make.forget()
    return reader


@pytest.mark.parametrize("authors", SIZES)
async def test_user_feed_walks_followed_users_and_posts(
    session: AsyncSession, make: BlogFactory, sqlaperf: Sqlaperf, authors: int
) -> None:
    reader = await _reader_following(make, authors)

    with sqlaperf.capture() as naive:
        feed = await naive_get_user_feed(session, reader.id)
    session.expunge_all()
    with sqlaperf.capture() as optimized:
        fixed = await OptimizedLoadingRepository(session).get_user_feed_optimized(reader.id)

    assert [item.post.id for item in feed] == [item.post.id for item in fixed]
    # The reader and whom they follow; per followed user their posts; per feed post its
    # category, tags, comments, like check, and the comment's author (the post's author is the
    # followed user, already loaded).
    assert naive.count == 2 + 6 * authors
    assert optimized.count == 4


@pytest.mark.parametrize("others", [4, 12])
async def test_search_with_ilike_reads_every_post(
    session: AsyncSession, make: BlogFactory, others: int
) -> None:
    author = await make.user()
    await make.post(author, title="Tuning autovacuum", content="Thresholds for busy tables.")
    for _ in range(others):
        await make.post(author)
    await make.forget()
    await prefer_indexes(session)
    optimizer = QueryOptimizer(session)

    naive_plan = await optimizer.analyze_query_performance(
        naive_search_statement("autovacuum"), analyze=True
    )
    fixed_plan = await optimizer.analyze_query_performance(
        select(Post.id).where(search_matches(Post.title, Post.content, "autovacuum")),
        analyze=True,
    )

    assert [post.title for post in await naive_search_posts(session, "autovacuum")] == [
        "Tuning autovacuum"
    ]
    # ILIKE '%...%' cannot use an index: every other post is read, then thrown away.
    assert "idx_posts_search_gin" not in naive_plan.index_names
    assert rows_removed_by_filter(naive_plan) == others
    # The full-text condition goes to the matching row through the GIN index.
    assert "idx_posts_search_gin" in fixed_plan.index_names
    assert rows_removed_by_filter(fixed_plan) == 0


@pytest.mark.parametrize("posts", [5, 15])
async def test_popular_posts_sorts_every_published_post(
    session: AsyncSession, make: BlogFactory, posts: int
) -> None:
    author = await make.user()
    for _ in range(posts):
        await make.post(author)
    await make.forget()
    await prefer_indexes(session)
    optimizer = QueryOptimizer(session)

    naive_plan = await optimizer.analyze_query_performance(
        naive_popular_posts_statement(limit=3), analyze=True
    )
    first = await naive_get_popular_posts(session, limit=3)
    fixed = await CachingService(InMemoryCache()).get_popular_posts_cached(session, limit=3)

    # Same ranking here (likes and views grow together in the factory), different cost: the
    # naive ORDER BY is not the indexed expression, so all published posts are sorted.
    assert [post["id"] for post in first] == [post["id"] for post in fixed]
    assert "Sort" in naive_plan.node_types
    sort = next(node for node in naive_plan.nodes() if node["Node Type"] == "Sort")
    assert sort["Plans"][0]["Actual Rows"] >= posts
    assert "idx_posts_engagement_score" not in naive_plan.index_names


@pytest.mark.parametrize("rows", SIZES)
async def test_insert_users_row_by_row(
    session: AsyncSession, make: BlogFactory, sqlaperf: Sqlaperf, rows: int
) -> None:
    existing = await make.user()
    await make.forget()
    users = [_user_row(f"new{number}") for number in range(rows - 1)]
    users.append(_user_row(existing.username, email=existing.email))

    with sqlaperf.capture() as naive:
        await naive_insert_users(session, users)
    with sqlaperf.capture() as optimized:
        await BulkOperationsRepository(session).bulk_insert_users(
            [_user_row(f"bulk{number}") for number in range(rows)]
        )

    # A SELECT by email and an INSERT (or UPDATE) per row.
    assert naive.count == 2 * rows
    assert kinds(naive) == {"select": rows, "insert": rows - 1, "update": 1}
    assert optimized.count == 1


@pytest.mark.parametrize("rows", SIZES)
async def test_update_post_stats_row_by_row(
    session: AsyncSession, make: BlogFactory, sqlaperf: Sqlaperf, rows: int
) -> None:
    author = await make.user()
    posts = [await make.post(author) for _ in range(rows)]
    await make.forget()
    updates = [{"post_id": post.id, "view_count": 100, "like_count": 7} for post in posts]

    with sqlaperf.capture() as naive:
        assert await naive_update_post_stats(session, updates) == rows
    session.expunge_all()
    with sqlaperf.capture() as optimized:
        assert await BulkOperationsRepository(session).bulk_update_post_stats(updates) == rows

    assert kinds(naive) == {"select": rows, "update": rows}
    assert optimized.count == 1


@pytest.mark.parametrize("posts", SIZES)
async def test_soft_delete_posts_row_by_row(
    session: AsyncSession, make: BlogFactory, sqlaperf: Sqlaperf, posts: int
) -> None:
    author = await make.user()
    commenter = await make.user()
    doomed = []
    for _ in range(posts):
        post = await make.post(author)
        await make.comment(post, commenter)
        doomed.append(post.id)
    await make.forget()

    with sqlaperf.capture() as naive:
        assert await naive_soft_delete_posts(session, doomed) == posts

    # Per post: SELECT the post, SELECT its comments, UPDATE the post, UPDATE its comment.
    assert kinds(naive) == {"select": 2 * posts, "update": 2 * posts}
    deleted = await session.scalars(select(Comment.is_deleted).where(Comment.post_id.in_(doomed)))
    assert all(deleted)


@pytest.mark.parametrize("follows", SIZES)
async def test_follow_users_row_by_row(
    session: AsyncSession, make: BlogFactory, sqlaperf: Sqlaperf, follows: int
) -> None:
    follower = await make.user()
    targets = [(await make.user()).id for _ in range(follows)]
    await make.forget()

    with sqlaperf.capture() as naive:
        assert await naive_follow_users(session, follower.id, targets) == follows

    # A SELECT to check, an INSERT to follow, per user.
    assert kinds(naive) == {"select": follows, "insert": follows}
    rows = await session.scalars(
        select(UserFollow.following_id).where(UserFollow.follower_id == follower.id)
    )
    assert sorted(rows) == sorted(targets)


@pytest.mark.parametrize("users", SIZES)
async def test_user_engagement_per_user_and_post(
    session: AsyncSession, make: BlogFactory, sqlaperf: Sqlaperf, users: int
) -> None:
    fan = await make.user()
    authors = []
    for _ in range(users):
        author = await make.user()
        post = await make.post(author)
        await make.like(post, fan)
        authors.append(author.id)
    await make.forget()

    with sqlaperf.capture() as naive:
        slow = await naive_analyze_user_engagement(session, authors)
    with sqlaperf.capture() as optimized:
        fast = await BulkOperationsRepository(session).bulk_analyze_user_engagement(authors)

    assert slow == fast
    # Per user: their posts, their comment count, and the likes of their one post.
    assert naive.count == 3 * users
    assert optimized.count == 1


async def test_cache_built_per_call_is_never_hit(
    session: AsyncSession, make: BlogFactory, sqlaperf: Sqlaperf
) -> None:
    author = await make.user()
    await make.post(author)
    await make.forget()

    with sqlaperf.capture() as first:
        await naive_get_user_with_stats(session, author.id)
    with sqlaperf.capture() as second:
        await naive_get_user_with_stats(session, author.id)
    repository = CachedUserRepository(session, CachingService(InMemoryCache()))
    await repository.get_user_with_stats_cached(author.id)
    with sqlaperf.capture() as cached:
        await repository.get_user_with_stats_cached(author.id)

    # The second call pays the full price again: user, posts, stats.
    assert first.count == second.count == 3
    assert cached.count == 0


def _user_row(username: str, *, email: str | None = None) -> dict[str, Any]:
    return {
        "username": username,
        "email": email or f"{username}@example.com",
        "first_name": "Grace",
        "last_name": "Bulk",
        "display_name": None,
    }
