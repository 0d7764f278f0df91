"""``BulkOperationsRepository``: writes and aggregates over many rows in one statement each."""

from __future__ import annotations

import typing
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import (
    CursorResult,
    Float,
    Integer,
    Result,
    bindparam,
    case,
    cast,
    false,
    func,
    select,
    update,
)
from sqlalchemy.dialects.postgresql import ARRAY, insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.elements import BindParameter

from blog.models import Comment, Post, PostLike, User, UserFollow

UPSERT_UPDATED_COLUMNS = ("first_name", "last_name", "display_name")


@dataclass(frozen=True)
class UserEngagement:
    post_count: int
    comment_count: int
    received_likes: int
    avg_views_per_post: float
    last_post_date: datetime | None
    likes_per_post: float


class BulkOperationsRepository:
    """Set-based writes: a statement per operation, not per row. Each method commits."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def bulk_insert_users(self, users_data: Sequence[Mapping[str, Any]]) -> list[int]:
        """Insert users, or update the names of those whose email exists; ids in input order.

        One INSERT ... ON CONFLICT per 1,000 distinct emails (SQLAlchemy's insertmanyvalues
        pages). The reference's single multi-VALUES statement, eight parameters a row, passed
        asyncpg's limit of 32,767 parameters at about 4,100 users and failed.
        """
        if not users_data:
            return []
        # ON CONFLICT DO UPDATE refuses to touch the same row twice in one statement, so a
        # repeated email in the input failed the whole batch; the last occurrence wins.
        rows_by_email = {row["email"]: row for row in users_data}
        insert_users = insert(User)
        stmt = insert_users.on_conflict_do_update(
            index_elements=[User.email],
            set_={
                **{name: insert_users.excluded[name] for name in UPSERT_UPDATED_COLUMNS},
                "updated_at": func.now(),
                # The reference left the version alone, so an ORM holder of the old row could
                # still write over this update without a StaleDataError.
                "version": User.version + 1,
            },
        ).returning(User.id, User.email)
        result = await self.session.execute(stmt, list(rows_by_email.values()))
        # Ids are matched by email, not by position: RETURNING order is not input order once
        # some rows are updates (SQLAlchemy's sort_by_parameter_order sorts by the serial id,
        # which is right only for new rows).
        id_by_email = {row.email: row.id for row in result}
        await self.session.commit()
        return [id_by_email[email] for email in dict.fromkeys(row["email"] for row in users_data)]

    async def bulk_update_post_stats(self, post_updates: Sequence[Mapping[str, int]]) -> int:
        """Set ``view_count`` and ``like_count`` of many posts (``post_id`` keys); rows changed.

        One UPDATE ... FROM unnest(ids, views, likes): three array parameters however many posts,
        and a true count of rows changed. The reference's executemany of an ORM UPDATE with a
        WHERE clause raises InvalidRequestError in SQLAlchemy 2 ("bulk synchronize of
        persistent objects not supported"), and run as a Core executemany its rowcount is -1
        on asyncpg.
        """
        if not post_updates:
            return 0
        values = (
            func.unnest(
                _int_array("post_ids", [row["post_id"] for row in post_updates]),
                _int_array("view_counts", [row["view_count"] for row in post_updates]),
                _int_array("like_counts", [row["like_count"] for row in post_updates]),
            )
            .table_valued("post_id", "view_count", "like_count")
            .render_derived(name="new_stats")
        )
        stmt = (
            update(Post)
            .where(Post.id == values.c.post_id)
            .values(
                view_count=values.c.view_count,
                like_count=values.c.like_count,
                updated_at=func.now(),
                version=Post.version + 1,
            )
        )
        result = await self.session.execute(stmt)
        await self.session.commit()
        return _rowcount(result)

    async def bulk_soft_delete_posts(self, post_ids: Sequence[int]) -> int:
        """Soft-delete posts and their comments; returns how many posts were newly deleted.

        Two UPDATEs. Rows already deleted are left alone: the reference overwrote their
        ``deleted_at``, losing when they were really deleted, and counted them again.
        """
        if not post_ids:
            return 0
        posts_result = await self.session.execute(
            update(Post)
            .where(Post.id.in_(post_ids), Post.is_deleted == false())
            .values(is_deleted=True, deleted_at=func.now(), version=Post.version + 1)
        )
        await self.session.execute(
            update(Comment)
            .where(Comment.post_id.in_(post_ids), Comment.is_deleted == false())
            .values(is_deleted=True, deleted_at=func.now())
        )
        await self.session.commit()
        return _rowcount(posts_result)

    async def bulk_create_user_follows(self, follower_id: int, following_ids: Sequence[int]) -> int:
        """Make ``follower_id`` follow each of ``following_ids``; returns how many are new.

        One INSERT ... ON CONFLICT DO NOTHING; existing follows are kept. Oneself and repeats
        are dropped first: the reference sent them, and one self-follow failed the whole batch
        on ck_user_follows_not_self. An empty list sends nothing (the reference's
        ``values([])`` raised).
        """
        targets = [user_id for user_id in dict.fromkeys(following_ids) if user_id != follower_id]
        if not targets:
            return 0
        stmt = (
            insert(UserFollow)
            .on_conflict_do_nothing(constraint="uq_user_follows_pair")
            .returning(UserFollow.id)
        )
        result = await self.session.execute(
            stmt, [{"follower_id": follower_id, "following_id": user_id} for user_id in targets]
        )
        # Counted from RETURNING, which lists exactly the inserted rows.
        created = len(result.all())
        await self.session.commit()
        return created

    async def bulk_analyze_user_engagement(
        self, user_ids: Sequence[int]
    ) -> dict[int, UserEngagement]:
        """Posts, comments, likes received, average views and last post date per user.

        One statement with a CTE per table. The reference joined posts, comments and likes in
        one CTE: each user's comments multiplied their posts' rows, so the average views were
        weighted by comment and like counts (COUNT DISTINCT hid it for the counts only).
        """
        if not user_ids:
            return {}
        post_stats = (
            select(
                Post.author_id,
                func.count().label("post_count"),
                func.avg(Post.view_count).label("avg_views_per_post"),
                func.max(Post.created_at).label("last_post_date"),
            )
            .where(Post.author_id.in_(user_ids), Post.is_deleted == false())
            .group_by(Post.author_id)
            .cte("post_stats")
        )
        comment_stats = (
            select(Comment.author_id, func.count().label("comment_count"))
            .where(Comment.author_id.in_(user_ids), Comment.is_deleted == false())
            .group_by(Comment.author_id)
            .cte("comment_stats")
        )
        like_stats = (
            select(Post.author_id, func.count().label("received_likes"))
            .join(PostLike, PostLike.post_id == Post.id)
            .where(Post.author_id.in_(user_ids), Post.is_deleted == false())
            .group_by(Post.author_id)
            .cte("like_stats")
        )
        post_count = func.coalesce(post_stats.c.post_count, 0)
        received_likes = func.coalesce(like_stats.c.received_likes, 0)
        stmt = (
            select(
                User.id.label("user_id"),
                post_count.label("post_count"),
                func.coalesce(comment_stats.c.comment_count, 0).label("comment_count"),
                received_likes.label("received_likes"),
                func.coalesce(post_stats.c.avg_views_per_post, 0).label("avg_views_per_post"),
                post_stats.c.last_post_date,
                case(
                    (post_count == 0, 0.0),
                    else_=cast(received_likes, Float) / post_count,
                ).label("likes_per_post"),
            )
            .outerjoin(post_stats, post_stats.c.author_id == User.id)
            .outerjoin(comment_stats, comment_stats.c.author_id == User.id)
            .outerjoin(like_stats, like_stats.c.author_id == User.id)
            .where(User.id.in_(user_ids))
        )
        return {
            row.user_id: UserEngagement(
                post_count=row.post_count,
                comment_count=row.comment_count,
                received_likes=row.received_likes,
                avg_views_per_post=float(row.avg_views_per_post),
                last_post_date=row.last_post_date,
                likes_per_post=float(row.likes_per_post),
            )
            for row in await self.session.execute(stmt)
        }


def _int_array(name: str, values: Sequence[int]) -> BindParameter[Sequence[int]]:
    return bindparam(name, values, type_=ARRAY(Integer))


def _rowcount(result: Result[Any]) -> int:
    # Session.execute is typed as returning a Result; an UPDATE's is a CursorResult.
    return typing.cast("CursorResult[Any]", result).rowcount
