"""``OptimizedLoadingRepository``: pages of posts with everything a page shows, in a fixed
number of statements however many posts, comments and tags there are."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import Select, distinct, false, func, select, true
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased, joinedload, selectinload

from blog.indexes import search_document, search_matches, search_query
from blog.models import Comment, Post, PostLike, UserFollow

FEED_COMMENT_PREVIEW = 3


@dataclass(frozen=True)
class PostStats:
    comment_count: int = 0
    like_count: int = 0
    unique_commenters: int = 0


@dataclass(frozen=True)
class PostWithStats:
    post: Post
    stats: PostStats


@dataclass(frozen=True)
class FeedItem:
    post: Post
    is_liked: bool
    comment_preview: Sequence[Comment]


class OptimizedLoadingRepository:
    """Loads posts with their relations eagerly, so that rendering them runs no further SQL.

    Many-to-one relations (author, category) are joined into the main query, where the
    reference spent a round trip on each with selectinload; a join adds no rows when each post
    has one author and one category. Collections use selectinload: one ``WHERE ... IN (...)``
    query per collection, where a join would repeat each post once per related row.
    """

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def get_posts_with_everything_optimized(self, limit: int = 20) -> list[PostWithStats]:
        """The newest published posts with author, category, tags, comments (with authors),
        replies (with authors), and per-post counts.

        Five statements: posts joined to author and category; tags; comments; replies; stats.
        """
        comments = selectinload(Post.comments.and_(Comment.is_deleted == false()))
        stmt = (
            select(Post)
            .options(
                joinedload(Post.author),
                joinedload(Post.category),
                selectinload(Post.tags),
                # The reference gave Post.comments two loader options, one filtered and one not;
                # both name the same path, the unfiltered one won, and deleted comments came
                # back. One option carries both nested loads.
                comments.joinedload(Comment.author),
                comments.selectinload(
                    Comment.replies.and_(Comment.is_deleted == false())
                ).joinedload(Comment.author),
            )
            .where(Post.is_published == true(), Post.is_deleted == false())
            .order_by(Post.created_at.desc())
            .limit(limit)
        )
        posts = (await self.session.scalars(stmt)).all()
        if not posts:
            return []

        # The reference counted comments and likes over one join of both, so each count came
        # out multiplied by the other (2 comments and 3 likes read as 6 and 6); distinct ids
        # count each row once.
        stats_stmt = (
            select(
                Post.id,
                func.count(distinct(Comment.id)).label("comment_count"),
                func.count(distinct(PostLike.id)).label("like_count"),
                func.count(distinct(Comment.author_id)).label("unique_commenters"),
            )
            .outerjoin(Comment, (Comment.post_id == Post.id) & (Comment.is_deleted == false()))
            .outerjoin(PostLike, PostLike.post_id == Post.id)
            .where(Post.id.in_([post.id for post in posts]))
            .group_by(Post.id)
        )
        stats_by_post_id = {
            row.id: PostStats(row.comment_count, row.like_count, row.unique_commenters)
            for row in await self.session.execute(stats_stmt)
        }
        return [PostWithStats(post, stats_by_post_id.get(post.id, PostStats())) for post in posts]

    async def get_user_feed_optimized(self, user_id: int, limit: int = 20) -> list[FeedItem]:
        """The newest published posts of the users ``user_id`` follows, with author, category,
        tags, the three newest comments (with authors), and whether ``user_id`` liked each.

        Four statements: posts joined to author and category; tags; the latest comments with
        their authors; likes.
        """
        # The followed ids are a subquery rather than a first round trip whose result is sent
        # back as a list (a long IN list for users who follow many).
        following = select(UserFollow.following_id).where(UserFollow.follower_id == user_id)
        stmt = (
            select(Post)
            .options(
                joinedload(Post.author),
                joinedload(Post.category),
                selectinload(Post.tags),
            )
            .where(
                Post.author_id.in_(following),
                Post.is_published == true(),
                Post.is_deleted == false(),
            )
            .order_by(Post.created_at.desc())
            .limit(limit)
        )
        posts = (await self.session.scalars(stmt)).all()
        if not posts:
            return []

        post_ids = [post.id for post in posts]
        previews = await self._latest_comments(post_ids)
        liked_stmt = select(PostLike.post_id).where(
            PostLike.user_id == user_id, PostLike.post_id.in_(post_ids)
        )
        liked_post_ids = set((await self.session.scalars(liked_stmt)).all())
        return [
            FeedItem(post, post.id in liked_post_ids, previews.get(post.id, [])) for post in posts
        ]

    @staticmethod
    def latest_comments_statement(post_ids: Sequence[int]) -> Select[Comment]:
        """Each post's newest live top-level comments, with authors, in one statement.

        The reference wrote ``selectinload(Post.comments.and_(...).limit(3))``, which does not
        exist (AttributeError), then sliced ``post.comments[:3]`` after loading every comment.
        A LATERAL subquery takes at most FEED_COMMENT_PREVIEW rows per post, read in order
        from idx_comments_post_latest. (The other usual recipe, a relationship to a subquery
        ranked by a window function, ranks every comment in the table: PostgreSQL does not push
        the posts' ids into the subquery.)
        """
        latest = (
            select(Comment)
            .where(
                Comment.post_id == Post.id,
                Comment.is_deleted == false(),
                Comment.parent_id.is_(None),
            )
            .order_by(Comment.created_at.desc(), Comment.id.desc())
            .limit(FEED_COMMENT_PREVIEW)
            .lateral("latest_comments")
        )
        latest_comment = aliased(Comment, latest)
        return (
            select(latest_comment)
            .select_from(Post)
            .join(latest, true())
            .where(Post.id.in_(post_ids))
            .options(joinedload(latest_comment.author))
        )

    async def _latest_comments(self, post_ids: Sequence[int]) -> dict[int, list[Comment]]:
        previews: dict[int, list[Comment]] = {}
        stmt = self.latest_comments_statement(post_ids)
        for comment in (await self.session.scalars(stmt)).all():
            previews.setdefault(comment.post_id, []).append(comment)
        return previews

    @staticmethod
    def search_statement(terms: str, limit: int = 20) -> Select[Post]:
        """The SELECT behind ``search_posts`` (for EXPLAIN)."""
        rank = func.ts_rank(search_document(Post.title, Post.content), search_query(terms))
        return (
            select(Post)
            .options(joinedload(Post.author))
            .where(
                search_matches(Post.title, Post.content, terms),
                Post.is_published == true(),
                Post.is_deleted == false(),
            )
            .order_by(rank.desc(), Post.id)
            .limit(limit)
        )

    async def search_posts(self, terms: str, limit: int = 20) -> list[Post]:
        """Published posts matching ``terms`` (full-text, English), best match first, with author.

        One statement, which idx_posts_search_gin can serve: ``search_matches`` repeats the
        indexed expression exactly.
        """
        return list((await self.session.scalars(self.search_statement(terms, limit))).all())
