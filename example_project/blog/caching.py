"""``CachingService`` over a small cache protocol, with an in-process cache and a Redis one."""

from __future__ import annotations

import fnmatch
import json
import time
from collections.abc import Awaitable, Callable
from typing import Any, Protocol, cast, runtime_checkable

import redis.asyncio as redis
from sqlalchemy import Select, false, select, true
from sqlalchemy.ext.asyncio import AsyncSession

from blog.models import Post, User


@runtime_checkable
class Cache(Protocol):
    """What ``CachingService`` needs from a cache: bytes under string keys, with expiry.

    Patterns are glob patterns as Redis reads them (``*``, ``?``, ``[...]``).
    """

    async def get(self, key: str) -> bytes | None: ...

    async def set(self, key: str, value: bytes, ttl: int) -> None: ...

    async def delete(self, *keys: str) -> int: ...

    async def keys(self, pattern: str) -> list[str]: ...


class InMemoryCache:
    """A per-process cache: for tests and single-process deployments."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._entries: dict[str, tuple[float, bytes]] = {}

    async def get(self, key: str) -> bytes | None:
        entry = self._entries.get(key)
        if entry is None:
            return None
        expires_at, value = entry
        if self._clock() >= expires_at:
            del self._entries[key]
            return None
        return value

    async def set(self, key: str, value: bytes, ttl: int) -> None:
        self._entries[key] = (self._clock() + ttl, value)

    async def delete(self, *keys: str) -> int:
        return sum(self._entries.pop(key, None) is not None for key in keys)

    async def keys(self, pattern: str) -> list[str]:
        now = self._clock()
        return [
            key
            for key, (expires_at, _) in self._entries.items()
            if expires_at > now and fnmatch.fnmatchcase(key, pattern)
        ]


class RedisCache:
    """A cache shared by processes, on ``redis.asyncio``."""

    def __init__(self, client: redis.Redis) -> None:
        self.client = client

    @classmethod
    def from_url(cls, url: str = "redis://localhost:6379") -> RedisCache:
        """A cache on the Redis server at ``url`` (connects on first use)."""
        return cls(redis.from_url(url, decode_responses=False))

    async def get(self, key: str) -> bytes | None:
        # decode_responses=False (from_url): values come back as bytes.
        return cast("bytes | None", await self.client.get(key))

    async def set(self, key: str, value: bytes, ttl: int) -> None:
        await self.client.setex(key, ttl, value)

    async def delete(self, *keys: str) -> int:
        if not keys:
            return 0
        deleted: int = await self.client.delete(*keys)
        return deleted

    async def keys(self, pattern: str) -> list[str]:
        # SCAN walks the keyspace in small steps; the reference's KEYS blocks the whole server
        # until it has matched every key.
        return [key.decode() async for key in self.client.scan_iter(match=pattern)]


class CachingService:
    """Caches JSON-serialisable query results under readable keys.

    Fixed from the reference:

    - keys are ``prefix:{"param":value}``, not md5 digests, so that ``invalidate_pattern`` can
      match them (a glob such as ``user_stats:*`` never matched a hex digest);
    - values are JSON, not pickles: a pickled ORM object is a detached instance whose unloaded
      attributes fail on access, unpickling runs code chosen by whoever can write to the cache,
      and it carried decrypted ``EncryptedString`` values into the cache in clear;
    - the session is an argument of the method that queries: the reference read a
      ``self.session`` it never set, and a service shared between requests cannot hold one.
    """

    def __init__(self, cache: Cache) -> None:
        self.cache = cache

    @staticmethod
    def make_key(prefix: str, **params: Any) -> str:
        """The cache key of ``prefix`` with ``params``: stable, and readable by patterns."""
        return f"{prefix}:{json.dumps(params, sort_keys=True, separators=(',', ':'))}"

    async def get_cached_query_result(
        self,
        cache_key: str,
        query_func: Callable[..., Awaitable[Any]],
        ttl: int = 300,
        **query_params: Any,
    ) -> Any:
        """``await query_func(**query_params)``, cached for ``ttl`` seconds under ``cache_key``.

        The result must be JSON-serialisable (plain dicts, lists, strings, numbers, None).
        """
        key = self.make_key(cache_key, **query_params)
        cached = await self.cache.get(key)
        if cached is not None:
            return json.loads(cached)
        result = await query_func(**query_params)
        await self.cache.set(key, json.dumps(result).encode(), ttl)
        return result

    async def invalidate(self, cache_key: str, **params: Any) -> bool:
        """Drop the entry of ``cache_key`` with exactly these ``params``; True if there was one."""
        return await self.cache.delete(self.make_key(cache_key, **params)) > 0

    async def invalidate_pattern(self, pattern: str) -> int:
        """Drop every entry whose key matches the glob ``pattern``; returns how many."""
        keys = await self.cache.keys(pattern)
        return await self.cache.delete(*keys)

    @staticmethod
    def popular_posts_statement(limit: int = 10) -> Select[Post, str]:
        """The SELECT behind ``get_popular_posts_cached`` (for EXPLAIN)."""
        return (
            select(Post, User.username.label("author_username"))
            .join(User, Post.author_id == User.id)
            .where(Post.is_published == true(), Post.is_deleted == false())
            .order_by(Post.engagement_score.desc())
            .limit(limit)
        )

    async def get_popular_posts_cached(
        self, session: AsyncSession, limit: int = 10, ttl: int = 600
    ) -> list[dict[str, Any]]:
        """The published posts with the highest engagement score, cached for ``ttl`` seconds.

        On a miss, one SELECT. It orders by ``Post.engagement_score``, the expression of
        idx_posts_engagement_score; the reference ordered by ``like_count + view_count * 0.1``,
        which no index holds, so every miss read and sorted every published post.
        """
        key = self.make_key("popular_posts", limit=limit)
        cached = await self.cache.get(key)
        if cached is not None:
            posts: list[dict[str, Any]] = json.loads(cached)
            return posts

        posts = [
            {
                "id": row.Post.id,
                "title": row.Post.title,
                "author_username": row.author_username,
                "like_count": row.Post.like_count,
                "view_count": row.Post.view_count,
                "created_at": row.Post.created_at.isoformat(),
            }
            for row in await session.execute(self.popular_posts_statement(limit))
        ]
        await self.cache.set(key, json.dumps(posts).encode(), ttl)
        return posts
