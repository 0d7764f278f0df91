"""The slow siblings: how each optimised method tends to be written first.

Each returns what its optimised sibling returns, and each docstring says what is wrong, how the
cost grows, and which method fixes it. The suite runs them to show what pytest-sqlaperf sees.
Under asyncio a plain lazy load raises MissingGreenlet, so the loops load through
``awaitable_attrs`` or one query per row, as real asyncio code bases do.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timezone
from typing import Any

from sqlalchemy import Select, false, func, select, true
from sqlalchemy.ext.asyncio import AsyncSession

from blog.caching import CachingService, InMemoryCache
from blog.models import Comment, Post, PostLike, User, UserFollow
from blog.repositories.bulk_operations import UserEngagement
from blog.repositories.cached_users import CachedUserRepository
from blog.repositories.optimized_loading import FeedItem, PostStats, PostWithStats


async def naive_get_posts_with_everything(
    session: AsyncSession, limit: int = 20
) -> list[PostWithStats]:
    """N+1: loads each post's relations one attribute at a time, and counts in Python.

    One SELECT for the posts, then per post its author, category, tags, comments and likes
    (all of them, to count them), per comment its author and replies, per reply its author:
    ``1 + posts * (5 + comments * (2 + replies))`` when no author repeats (a many-to-one already
    in the session is not loaded again). Fixed by
    ``OptimizedLoadingRepository.get_posts_with_everything_optimized``: five statements.
    """
    posts = (
        await session.scalars(
            select(Post)
            .where(Post.is_published == true(), Post.is_deleted == false())
            .order_by(Post.created_at.desc())
            .limit(limit)
        )
    ).all()
    items = []
    for post in posts:
        await post.awaitable_attrs.author
        await post.awaitable_attrs.category
        await post.awaitable_attrs.tags
        comments = [
            comment for comment in await post.awaitable_attrs.comments if not comment.is_deleted
        ]
        everyone = list(comments)
        for comment in comments:
            await comment.awaitable_attrs.author
            for reply in await comment.awaitable_attrs.replies:
                await reply.awaitable_attrs.author
                if not reply.is_deleted:
                    everyone.append(reply)
        likes = await post.awaitable_attrs.likes
        stats = PostStats(
            comment_count=len(everyone),
            like_count=len(likes),
            unique_commenters=len({comment.author_id for comment in everyone}),
        )
        items.append(PostWithStats(post, stats))
    return items


async def naive_get_user_feed(
    session: AsyncSession, user_id: int, limit: int = 20
) -> list[FeedItem]:
    """N+1 twice over: walks the followed users, then their posts, one query per object.

    Loads the reader and whom they follow (2), every post of each followed user, drafts and
    deleted ones included, to filter in Python (1 each), then per feed post its category, tags,
    every comment (sliced to three in Python) and its own "did I like it" query (4 each), and
    each previewed comment's author (1 per new commenter). Fixed by
    ``OptimizedLoadingRepository.get_user_feed_optimized``: four statements.
    """
    reader = await session.get(User, user_id)
    if reader is None:
        return []
    candidates: list[Post] = []
    for author in await reader.awaitable_attrs.following:
        candidates.extend(
            post
            for post in await author.awaitable_attrs.posts
            if post.is_published and not post.is_deleted
        )
    candidates.sort(key=lambda post: post.created_at, reverse=True)
    feed = []
    for post in candidates[:limit]:
        await post.awaitable_attrs.author
        await post.awaitable_attrs.category
        await post.awaitable_attrs.tags
        preview = [
            comment for comment in await post.awaitable_attrs.comments if not comment.is_deleted
        ][:3]
        for comment in preview:
            await comment.awaitable_attrs.author
        liked = await session.scalar(
            select(PostLike.id).where(PostLike.post_id == post.id, PostLike.user_id == user_id)
        )
        feed.append(FeedItem(post, liked is not None, preview))
    return feed


def naive_search_statement(terms: str, limit: int = 20) -> Select[Post]:
    """``ILIKE '%terms%'`` over title and content: no index can serve a leading wildcard, so
    every published post is read and matched. Fixed by
    ``OptimizedLoadingRepository.search_posts``, which the GIN full-text index serves.
    """
    pattern = f"%{terms}%"
    return (
        select(Post)
        .where(
            Post.title.ilike(pattern) | Post.content.ilike(pattern),
            Post.is_published == true(),
            Post.is_deleted == false(),
        )
        .order_by(Post.created_at.desc())
        .limit(limit)
    )


async def naive_search_posts(session: AsyncSession, terms: str, limit: int = 20) -> list[Post]:
    """Runs ``naive_search_statement``: one statement, but a full scan (see there)."""
    return list((await session.scalars(naive_search_statement(terms, limit))).all())


def naive_popular_posts_statement(limit: int = 10) -> Select[Post, str]:
    """The reference's "popular posts" query: it orders by ``like_count + view_count * 0.1``,
    which is not the indexed ``like_count * 2 + view_count * 0.1``, so PostgreSQL reads and sorts
    every published post to return ten. Fixed by ``CachingService.get_popular_posts_cached``,
    which orders by ``Post.engagement_score`` (the indexed expression) and caches the result.
    """
    return (
        select(Post, User.username.label("author_username"))
        .join(User, Post.author_id == User.id)
        .where(Post.is_published == true(), Post.is_deleted == false())
        .order_by((Post.like_count + Post.view_count * 0.1).desc())
        .limit(limit)
    )


async def naive_get_popular_posts(session: AsyncSession, limit: int = 10) -> list[dict[str, Any]]:
    """Runs ``naive_popular_posts_statement`` on every call: no cache, and a full sort."""
    return [
        {
            "id": row.Post.id,
            "title": row.Post.title,
            "author_username": row.author_username,
            "like_count": row.Post.like_count,
            "view_count": row.Post.view_count,
            "created_at": row.Post.created_at.isoformat(),
        }
        for row in await session.execute(naive_popular_posts_statement(limit))
    ]


async def naive_insert_users(
    session: AsyncSession, users_data: Sequence[Mapping[str, Any]]
) -> list[int]:
    """Per-row upsert: a SELECT by email, then an INSERT or UPDATE, flushed row by row.

    ``2 * rows`` statements. Fixed by ``BulkOperationsRepository.bulk_insert_users``: one
    INSERT ... ON CONFLICT per thousand rows.
    """
    ids = []
    for row in users_data:
        user = await session.scalar(select(User).where(User.email == row["email"]))
        if user is None:
            user = User(**row)
            session.add(user)
        else:
            user.first_name = row["first_name"]
            user.last_name = row["last_name"]
            user.display_name = row.get("display_name")
        await session.flush()
        ids.append(user.id)
    await session.commit()
    return ids


async def naive_update_post_stats(
    session: AsyncSession, post_updates: Sequence[Mapping[str, int]]
) -> int:
    """Per-row update: loads each post by id, sets its counters, and lets the flush write them.

    ``2 * rows`` statements: a SELECT each, and an UPDATE each (versioned rows are updated one
    by one, so that each version check can be verified). Fixed by
    ``BulkOperationsRepository.bulk_update_post_stats``: one UPDATE ... FROM unnest(...).
    """
    updated = 0
    for row in post_updates:
        post = await session.get(Post, row["post_id"])
        if post is None:
            continue
        post.view_count = row["view_count"]
        post.like_count = row["like_count"]
        updated += 1
    await session.commit()
    return updated


async def naive_soft_delete_posts(session: AsyncSession, post_ids: Sequence[int]) -> int:
    """Per-row soft delete: loads each post and its comments, flags them, flushes.

    Per post a SELECT of the post, a SELECT of its comments, and an UPDATE of the post; then
    an UPDATE per comment: ``3 * posts + comments``. Fixed by
    ``BulkOperationsRepository.bulk_soft_delete_posts``: two UPDATEs.
    """
    deleted = 0
    for post_id in post_ids:
        post = await session.get(Post, post_id)
        if post is None or post.is_deleted:
            continue
        now = datetime.now(timezone.utc)
        post.is_deleted = True
        post.deleted_at = now
        for comment in await session.scalars(select(Comment).where(Comment.post_id == post_id)):
            if not comment.is_deleted:
                comment.is_deleted = True
                comment.deleted_at = now
        deleted += 1
    await session.commit()
    return deleted


async def naive_follow_users(
    session: AsyncSession, follower_id: int, following_ids: Sequence[int]
) -> int:
    """Per-row follow: a SELECT to check each follow, then an INSERT flushed on its own.

    ``2 * new follows`` statements (plus one per follow that exists). Fixed by
    ``BulkOperationsRepository.bulk_create_user_follows``: one INSERT ... ON CONFLICT DO
    NOTHING.
    """
    created = 0
    for following_id in following_ids:
        existing = await session.scalar(
            select(UserFollow.id).where(
                UserFollow.follower_id == follower_id, UserFollow.following_id == following_id
            )
        )
        if existing is None and following_id != follower_id:
            session.add(UserFollow(follower_id=follower_id, following_id=following_id))
            await session.flush()
            created += 1
    await session.commit()
    return created


async def naive_analyze_user_engagement(
    session: AsyncSession, user_ids: Sequence[int]
) -> dict[int, UserEngagement]:
    """Per-user statistics in Python: loads each user's posts and every like of every post.

    Per user a SELECT of their posts and a COUNT of their comments, and per post a SELECT of
    its likes: ``users * (2 + posts)``. Fixed by
    ``BulkOperationsRepository.bulk_analyze_user_engagement``: one statement.
    """
    engagement = {}
    for user_id in user_ids:
        posts = (
            await session.scalars(
                select(Post).where(Post.author_id == user_id, Post.is_deleted == false())
            )
        ).all()
        comment_count = await session.scalar(
            select(func.count())
            .select_from(Comment)
            .where(Comment.author_id == user_id, Comment.is_deleted == false())
        )
        received_likes = 0
        for post in posts:
            received_likes += len(await post.awaitable_attrs.likes)
        engagement[user_id] = UserEngagement(
            post_count=len(posts),
            comment_count=comment_count or 0,
            received_likes=received_likes,
            avg_views_per_post=sum(post.view_count for post in posts) / len(posts)
            if posts
            else 0.0,
            last_post_date=max((post.created_at for post in posts), default=None),
            likes_per_post=received_likes / len(posts) if posts else 0.0,
        )
    return engagement


async def naive_get_user_with_stats(session: AsyncSession, user_id: int) -> dict[str, Any] | None:
    """A cache that is never hit: the service and its in-process cache are built per call (as
    a per-request dependency would), so every call starts empty and runs the three SELECTs.
    Fixed by ``CachedUserRepository.get_user_with_stats_cached`` on one long-lived
    ``CachingService``: the second call runs none.
    """
    repository = CachedUserRepository(session, CachingService(InMemoryCache()))
    return await repository.get_user_with_stats_cached(user_id)
