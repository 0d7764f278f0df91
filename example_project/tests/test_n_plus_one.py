"""The plugin catching each naive N+1 sibling, and guarding the optimised paths against one.

Each naive test is a strict xfail on the plugin's own failure: the run is green only if the
plugin reported the N+1 (its finding, with the fix, is listed in the sqlaperf summary). The
optimised listing and feed run under constant_queries: the same statements for 2 posts as for 5.
"""

from __future__ import annotations

import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from blog.caching import CachingService, InMemoryCache
from blog.naive import (
    naive_analyze_user_engagement,
    naive_follow_users,
    naive_get_posts_with_everything,
    naive_get_user_feed,
    naive_get_user_with_stats,
    naive_insert_users,
    naive_soft_delete_posts,
    naive_update_post_stats,
)
from blog.repositories.cached_users import CachedUserRepository
from blog.repositories.optimized_loading import OptimizedLoadingRepository
from tests.factories import BlogFactory
from tests.test_naive import _reader_following, _threads, _user_row

CAUGHT = pytest.mark.xfail(
    strict=True,
    raises=pytest.fail.Exception,
    reason="pytest-sqlaperf reports the N+1 and fails the test (see the sqlaperf summary)",
)


@pytest.fixture
async def reader(make: BlogFactory, posts: int) -> int:
    """A reader following ``posts`` authors, each with a published post, a comment and a draft."""
    return (await _reader_following(make, posts)).id


@pytest.fixture
async def threads(make: BlogFactory, posts: int) -> None:
    """``posts`` posts, each with its own author, category, tag, comment, reply and like."""
    await _threads(make, posts)
    await make.forget()


# -- the optimised paths: constant whatever the data size ------------------------------------


@pytest.mark.no_n_plus_one
@pytest.mark.constant_queries("posts")
@pytest.mark.parametrize("posts", [2, 5])
async def test_listing_is_constant(threads: None, session: AsyncSession, posts: int) -> None:
    items = await OptimizedLoadingRepository(session).get_posts_with_everything_optimized()
    assert len(items) == posts


@pytest.mark.no_n_plus_one
@pytest.mark.constant_queries("posts")
@pytest.mark.parametrize("posts", [2, 5])
async def test_feed_is_constant(reader: int, session: AsyncSession, posts: int) -> None:
    feed = await OptimizedLoadingRepository(session).get_user_feed_optimized(reader)
    assert len(feed) == posts


# -- the naive siblings: each caught ----------------------------------------------------------


@pytest.mark.constant_queries("posts")
@pytest.mark.parametrize("posts", [1, pytest.param(2, marks=CAUGHT)])
async def test_naive_listing_grows_with_two_posts(
    threads: None, session: AsyncSession, posts: int
) -> None:
    """constant_queries catches the lazy loads with as little as two posts."""
    await naive_get_posts_with_everything(session)


@CAUGHT
@pytest.mark.parametrize("posts", [3])
async def test_naive_listing_is_an_n_plus_one(
    threads: None, session: AsyncSession, posts: int
) -> None:
    await naive_get_posts_with_everything(session)


@CAUGHT
@pytest.mark.parametrize("posts", [3])
async def test_naive_feed_is_an_n_plus_one(reader: int, session: AsyncSession, posts: int) -> None:
    await naive_get_user_feed(session, reader)


@CAUGHT
async def test_naive_insert_users_row_by_row(session: AsyncSession) -> None:
    await naive_insert_users(session, [_user_row(f"user{number}") for number in range(4)])


@CAUGHT
async def test_naive_update_post_stats_row_by_row(session: AsyncSession, make: BlogFactory) -> None:
    author = await make.user()
    posts = [await make.post(author) for _ in range(4)]
    await make.forget()
    await naive_update_post_stats(
        session, [{"post_id": post.id, "view_count": 1, "like_count": 1} for post in posts]
    )


@CAUGHT
async def test_naive_soft_delete_row_by_row(session: AsyncSession, make: BlogFactory) -> None:
    author = await make.user()
    doomed = [(await make.post(author)).id for _ in range(4)]
    await make.forget()
    await naive_soft_delete_posts(session, doomed)


@CAUGHT
async def test_naive_follow_users_row_by_row(session: AsyncSession, make: BlogFactory) -> None:
    follower = await make.user()
    targets = [(await make.user()).id for _ in range(4)]
    await make.forget()
    await naive_follow_users(session, follower.id, targets)


@CAUGHT
async def test_naive_engagement_per_user(session: AsyncSession, make: BlogFactory) -> None:
    fan = await make.user()
    authors = []
    for _ in range(4):
        author = await make.user()
        await make.like(await make.post(author), fan)
        authors.append(author.id)
    await make.forget()
    await naive_analyze_user_engagement(session, authors)


@CAUGHT
async def test_naive_cache_bypass_repeats_the_same_queries(
    session: AsyncSession, make: BlogFactory
) -> None:
    author = await make.user()
    await make.post(author)
    await make.forget()
    for _ in range(3):
        await naive_get_user_with_stats(session, author.id)


@pytest.mark.no_n_plus_one
async def test_cached_repository_is_not_an_n_plus_one(
    session: AsyncSession, make: BlogFactory
) -> None:
    author = await make.user()
    await make.post(author)
    await make.forget()
    repository = CachedUserRepository(session, CachingService(InMemoryCache()))
    for _ in range(3):
        await repository.get_user_with_stats_cached(author.id)
