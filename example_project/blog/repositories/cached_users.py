"""``CachedUserRepository``: a user with their statistics, through ``CachingService``."""

from __future__ import annotations

from typing import Any

from sqlalchemy import false, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from blog.caching import CachingService
from blog.models import Post, User, UserFollow
from blog.repositories.users import UserRepository

USER_STATS_TTL = 300


class CachedUserRepository(UserRepository):
    """``UserRepository`` with a cached "user with stats" read."""

    def __init__(self, session: AsyncSession, cache_service: CachingService) -> None:
        super().__init__(session)
        self.cache = cache_service

    async def get_user_with_stats_cached(self, user_id: int) -> dict[str, Any] | None:
        """The user, their live posts and their stats, as plain data; None if there is no
        such user (cached too).

        A miss runs three SELECTs (user, posts, stats); a hit runs none.
        """

        async def fetch_user_stats(user_id: int) -> dict[str, Any] | None:
            user = await self.get_by_id_with_posts(user_id)
            if user is None:
                return None
            # The reference joined posts and followers in one FROM and counted both, so every
            # count and sum came out multiplied by the other table's rows (2 posts and 3
            # followers read as 6 posts and 6 followers). The follower count is a subquery.
            followers = (
                select(func.count())
                .select_from(UserFollow)
                .where(UserFollow.following_id == user_id)
                .scalar_subquery()
            )
            stats_stmt = select(
                func.count(Post.id).label("post_count"),
                followers.label("follower_count"),
                func.coalesce(func.sum(Post.view_count), 0).label("total_views"),
                func.coalesce(func.sum(Post.like_count), 0).label("total_likes"),
            ).where(Post.author_id == user_id, Post.is_deleted == false())
            stats = (await self.session.execute(stats_stmt)).one()
            return {
                "user": _user_data(user),
                "stats": {
                    "post_count": stats.post_count,
                    "follower_count": stats.follower_count,
                    "total_views": stats.total_views,
                    "total_likes": stats.total_likes,
                },
            }

        result: dict[str, Any] | None = await self.cache.get_cached_query_result(
            "user_stats", fetch_user_stats, ttl=USER_STATS_TTL, user_id=user_id
        )
        return result

    async def invalidate_user_cache(self, user_id: int) -> bool:
        """Drop this user's cached stats; True if there were any.

        The reference deleted the pattern ``user_stats:*user_id*{user_id}*``, which matched no
        key (keys were md5 digests) and, with readable keys, would also match users 41 and 142
        for user 4. The exact key is known, so it is deleted by name.
        """
        return await self.cache.invalidate("user_stats", user_id=user_id)


def _user_data(user: User) -> dict[str, Any]:
    # Public fields only: phone_number is encrypted at rest and must not sit in a cache in clear.
    return {
        "id": user.id,
        "public_id": str(user.public_id),
        "username": user.username,
        "display_name": user.display_name,
        "posts": [{"id": post.id, "title": post.title} for post in user.posts],
    }
