"""Factories for the blog's rows: unique names, creation times one minute apart, and a
``build_blog`` that makes a small, realistic site."""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from blog.models import Category, Comment, Post, PostLike, Tag, User, UserFollow

START = datetime(2024, 1, 1, tzinfo=timezone.utc)


class BlogFactory:
    """Adds rows to a session and flushes each, so ids are known at once.

    Creation times advance a minute per row: inside one transaction ``now()`` is constant, and
    "newest first" needs distinct times to mean anything.
    """

    def __init__(self, session: AsyncSession) -> None:
        self.session = session
        self._sequence = itertools.count(1)
        self._clock = START

    def _next(self) -> int:
        return next(self._sequence)

    def _tick(self) -> datetime:
        self._clock += timedelta(minutes=1)
        return self._clock

    async def _save(self, row: Any) -> None:
        if hasattr(row, "created_at"):
            row.created_at = self._tick()
        if hasattr(row, "updated_at"):
            row.updated_at = row.created_at
        self.session.add(row)
        await self.session.flush()

    async def user(self, **overrides: Any) -> User:
        number = self._next()
        values: dict[str, Any] = {
            "username": f"user{number}",
            "email": f"user{number}@example.com",
            "first_name": "Ada",
            "last_name": f"Writer{number}",
            "display_name": f"Ada W. {number}",
        }
        user = User(**(values | overrides))
        await self._save(user)
        return user

    async def category(self, **overrides: Any) -> Category:
        number = self._next()
        category = Category(
            **({"name": f"Category {number}", "slug": f"category-{number}"} | overrides)
        )
        await self._save(category)
        return category

    async def tag(self, **overrides: Any) -> Tag:
        tag = Tag(**({"name": f"tag{self._next()}"} | overrides))
        await self._save(tag)
        return tag

    async def post(
        self,
        author: User,
        *,
        category: Category | None = None,
        tags: Sequence[Tag] = (),
        **overrides: Any,
    ) -> Post:
        number = self._next()
        values: dict[str, Any] = {
            "title": f"Post number {number}",
            "content": f"Notes on query performance, part {number}.",
            "is_published": True,
            "view_count": 10 * number,
            "like_count": number,
        }
        post = Post(author=author, category=category, tags=list(tags), **(values | overrides))
        await self._save(post)
        return post

    async def comment(
        self, post: Post, author: User, *, parent: Comment | None = None, **overrides: Any
    ) -> Comment:
        values: dict[str, Any] = {"content": f"Comment {self._next()}"}
        comment = Comment(post=post, author=author, parent=parent, **(values | overrides))
        await self._save(comment)
        return comment

    async def like(self, post: Post, user: User) -> PostLike:
        like = PostLike(post_id=post.id, user_id=user.id)
        await self._save(like)
        return like

    async def follow(self, follower: User, followed: User) -> UserFollow:
        follow = UserFollow(follower_id=follower.id, following_id=followed.id)
        await self._save(follow)
        return follow

    async def forget(self) -> None:
        """Flush, then empty the session, as if the next request had a fresh one.

        The rows stay in the transaction; the objects stay readable (detached, loaded columns
        only). Statement counts then match production, where nothing is already loaded.
        """
        await self.session.flush()
        self.session.expunge_all()


@dataclass
class Blog:
    """A small site: ``reader`` follows every author but the last."""

    reader: User
    authors: list[User]
    commenters: list[User]
    categories: list[Category]
    tags: list[Tag]
    published: list[Post] = field(default_factory=list)
    drafts: list[Post] = field(default_factory=list)
    deleted: list[Post] = field(default_factory=list)
    comments: list[Comment] = field(default_factory=list)
    replies: list[Comment] = field(default_factory=list)
    deleted_comments: list[Comment] = field(default_factory=list)
    liked_by_reader: list[Post] = field(default_factory=list)

    @property
    def followed(self) -> list[User]:
        return self.authors[:-1]

    def published_by(self, authors: Sequence[User]) -> list[Post]:
        ids = {author.id for author in authors}
        return [post for post in self.published if post.author_id in ids]


async def build_blog(
    make: BlogFactory,
    *,
    authors: int = 3,
    posts_per_author: int = 2,
    comments_per_post: int = 2,
    replies_per_comment: int = 1,
) -> Blog:
    """Authors with published posts (a category, two tags), a draft and a deleted post each;
    live comments with replies and a deleted comment per post; likes; and a reader who follows
    every author but the last and liked each author's first post.
    """
    blog = Blog(
        reader=await make.user(),
        authors=[await make.user() for _ in range(authors)],
        commenters=[await make.user() for _ in range(3)],
        categories=[await make.category(), await make.category()],
        tags=[await make.tag() for _ in range(4)],
    )
    commenters = blog.commenters
    for author_number, author in enumerate(blog.authors):
        for number in range(posts_per_author):
            post = await make.post(
                author,
                category=blog.categories[number % 2],
                tags=[blog.tags[number % 4], blog.tags[(number + 1 + author_number % 3) % 4]],
            )
            blog.published.append(post)
            for comment_number in range(comments_per_post):
                comment = await make.comment(post, commenters[comment_number % 3])
                blog.comments.append(comment)
                for reply_number in range(replies_per_comment):
                    replier = commenters[(comment_number + reply_number + 1) % 3]
                    blog.replies.append(await make.comment(post, replier, parent=comment))
            blog.deleted_comments.append(
                await make.comment(post, commenters[0], is_deleted=True, deleted_at=START)
            )
            await make.like(post, commenters[1])
            if number == 0:
                await make.like(post, blog.reader)
                blog.liked_by_reader.append(post)
        blog.drafts.append(await make.post(author, is_published=False))
        blog.deleted.append(await make.post(author, is_deleted=True, deleted_at=START))
    for author in blog.followed:
        await make.follow(blog.reader, author)
    await make.forget()
    return blog
