"""``CachingService`` and ``CachedUserRepository``: a miss costs a fixed number of statements, a
hit costs none, and invalidation really drops entries."""

from __future__ import annotations

import json
from dataclasses import dataclass

import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from blog.caching import Cache, CachingService, InMemoryCache, RedisCache
from blog.models import Post, User
from blog.query_optimization import QueryOptimizer
from blog.repositories.cached_users import CachedUserRepository
from pytest_sqlaperf import Sqlaperf
from tests.factories import BlogFactory
from tests.helpers import prefer_indexes


@pytest.fixture
def cache() -> InMemoryCache:
    return InMemoryCache()


@pytest.fixture
def service(cache: InMemoryCache) -> CachingService:
    return CachingService(cache)


@dataclass
class Author:
    user: User
    posts: list[Post]


@pytest.fixture
async def author(make: BlogFactory) -> Author:
    """An author (with a phone number) of two posts and a deleted one, with three followers."""
    user = await make.user(phone_number="+44 20 7946 0000")
    posts = [
        await make.post(user, view_count=10, like_count=1),
        await make.post(user, view_count=5, like_count=0),
    ]
    await make.post(user, is_deleted=True, view_count=1000)
    for _ in range(3):
        await make.follow(await make.user(), user)
    await make.forget()
    return Author(user, posts)


# A miss: the user, their posts (selectinload), and the stats.
@pytest.mark.max_queries(3)
async def test_user_with_stats_miss(
    session: AsyncSession, service: CachingService, author: Author
) -> None:
    result = await CachedUserRepository(session, service).get_user_with_stats_cached(author.user.id)

    assert result is not None
    assert result["user"]["username"] == author.user.username
    assert sorted(post["id"] for post in result["user"]["posts"]) == sorted(
        post.id for post in author.posts
    )
    # The reference joined posts and followers and counted both: 2 posts x 3 followers = 6.
    assert result["stats"] == {
        "post_count": 2,
        "follower_count": 3,
        "total_views": 15,
        "total_likes": 1,
    }


@pytest.fixture
async def warm_repository(
    session: AsyncSession, service: CachingService, author: Author
) -> CachedUserRepository:
    """A repository whose cache already holds the author's stats."""
    repository = CachedUserRepository(session, service)
    await repository.get_user_with_stats_cached(author.user.id)
    return repository


# A hit: nothing reaches the database.
@pytest.mark.max_queries(0)
async def test_user_with_stats_hit(warm_repository: CachedUserRepository, author: Author) -> None:
    result = await warm_repository.get_user_with_stats_cached(author.user.id)

    assert result is not None
    assert result["stats"]["follower_count"] == 3


# No such user: the user SELECT only; the None is cached as well.
@pytest.mark.max_queries(1)
async def test_missing_user_is_cached_too(session: AsyncSession, service: CachingService) -> None:
    repository = CachedUserRepository(session, service)

    assert await repository.get_user_with_stats_cached(999_999) is None
    assert await repository.get_user_with_stats_cached(999_999) is None


async def test_cached_value_is_json_without_orm_objects_or_secrets(
    cache: InMemoryCache, warm_repository: CachedUserRepository, author: Author
) -> None:
    # The reference pickled the User object into the cache: a detached instance, code run on
    # unpickling, and the decrypted phone number stored in clear.
    raw = await cache.get(CachingService.make_key("user_stats", user_id=author.user.id))

    assert raw is not None
    assert json.loads(raw)["user"]["id"] == author.user.id
    assert b"7946" not in raw


# The invalidation is cache-only; the next read is a miss: user, posts, stats.
@pytest.mark.max_queries(3)
async def test_invalidate_user_cache(
    warm_repository: CachedUserRepository, author: Author, sqlaperf: Sqlaperf
) -> None:
    # The reference's pattern matched no key, so the stale entry kept being served.
    assert await warm_repository.invalidate_user_cache(author.user.id)

    result = await warm_repository.get_user_with_stats_cached(author.user.id)

    assert result is not None
    assert sqlaperf.count == 3


async def test_invalidate_user_cache_leaves_other_users_alone(
    session: AsyncSession, service: CachingService
) -> None:
    # With readable keys, the reference's pattern user_stats:*user_id*4* would also have hit
    # users 41 and 142.
    for user_id in (4, 41, 142):
        await service.cache.set(service.make_key("user_stats", user_id=user_id), b"{}", 60)
    repository = CachedUserRepository(session, service)

    assert await repository.invalidate_user_cache(4)
    assert sorted(await service.cache.keys("user_stats:*")) == [
        'user_stats:{"user_id":142}',
        'user_stats:{"user_id":41}',
    ]


async def test_invalidate_pattern_removes_matching_entries(service: CachingService) -> None:
    # The reference's keys were md5 digests, so no glob pattern could ever match one.
    await service.cache.set(service.make_key("user_stats", user_id=1), b"{}", 60)
    await service.cache.set(service.make_key("user_stats", user_id=2), b"{}", 60)
    await service.cache.set(service.make_key("popular_posts", limit=10), b"[]", 60)

    assert await service.invalidate_pattern("user_stats:*") == 2

    assert await service.cache.keys("*") == ['popular_posts:{"limit":10}']


async def test_get_cached_query_result_calls_the_query_once(service: CachingService) -> None:
    calls = []

    async def query(user_id: int) -> list[int]:
        calls.append(user_id)
        return []

    # An empty result is cached like any other.
    assert await service.get_cached_query_result("things", query, user_id=1) == []
    assert await service.get_cached_query_result("things", query, user_id=1) == []
    assert await service.get_cached_query_result("things", query, user_id=2) == []
    assert calls == [1, 2]


async def test_get_cached_query_result_refuses_orm_objects(
    service: CachingService, author: Author
) -> None:
    async def query() -> User:
        return author.user

    with pytest.raises(TypeError, match="not JSON serializable"):
        await service.get_cached_query_result("users", query)


@pytest.fixture
async def ranked_posts(make: BlogFactory) -> list[Post]:
    """Four published posts from least to most engaging, a draft and a deleted post."""
    author = await make.user()
    posts = [
        await make.post(author, like_count=likes, view_count=views)
        for likes, views in ((0, 10), (5, 0), (1, 200), (20, 500))
    ]
    await make.post(author, is_published=False, like_count=99)
    await make.post(author, is_deleted=True, like_count=99)
    await make.forget()
    return posts


# A miss: one SELECT of posts joined to their authors.
@pytest.mark.max_queries(1)
async def test_popular_posts_miss(
    session: AsyncSession, service: CachingService, ranked_posts: list[Post]
) -> None:
    popular = await service.get_popular_posts_cached(session, limit=3)

    # Scores: 1.0, 10.0, 22.0, 90.0.
    assert [post["id"] for post in popular] == [post.id for post in reversed(ranked_posts)][:3]


@pytest.fixture
async def warm_service(
    session: AsyncSession, service: CachingService, ranked_posts: list[Post]
) -> CachingService:
    await service.get_popular_posts_cached(session, limit=3)
    return service


# A hit: nothing reaches the database.
@pytest.mark.max_queries(0)
async def test_popular_posts_hit(session: AsyncSession, warm_service: CachingService) -> None:
    assert len(await warm_service.get_popular_posts_cached(session, limit=3)) == 3


async def test_popular_posts_are_read_through_the_engagement_index(
    session: AsyncSession, ranked_posts: list[Post]
) -> None:
    await prefer_indexes(session)

    plan = await QueryOptimizer(session).analyze_query_performance(
        CachingService.popular_posts_statement(limit=3), analyze=True
    )

    # The index yields posts in score order: no Sort, and the scan stops after three rows.
    assert "idx_posts_engagement_score" in plan.index_names
    assert "Sort" not in plan.node_types


async def test_in_memory_cache_expires_entries() -> None:
    now = [100.0]
    cache = InMemoryCache(clock=lambda: now[0])
    await cache.set("key", b"value", ttl=30)

    now[0] = 129.0
    assert await cache.get("key") == b"value"
    now[0] = 130.0
    assert await cache.get("key") is None
    assert await cache.keys("*") == []


async def test_both_caches_implement_the_protocol() -> None:
    # No Redis server here: building the client does not connect.
    redis_cache = RedisCache.from_url("redis://localhost:6379/0")
    try:
        assert isinstance(redis_cache, Cache)
        assert isinstance(InMemoryCache(), Cache)
    finally:
        await redis_cache.client.aclose()
