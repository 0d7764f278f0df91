"""``OptimizedLoadingRepository``: fixed statement counts, whatever the size of the page.

Every test reads the loaded relations after the call: under asyncio an unloaded relation raises
MissingGreenlet instead of loading, so a missing eager load fails the test outright.
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from blog.indexes import search_matches
from blog.models import Comment, Post, User
from blog.query_optimization import QueryOptimizer
from blog.repositories.optimized_loading import (
    FEED_COMMENT_PREVIEW,
    OptimizedLoadingRepository,
    PostStats,
)
from tests.factories import Blog, BlogFactory, build_blog
from tests.helpers import prefer_indexes


# Posts joined to their author and category; tags; live comments with their authors; replies
# with their authors; per-post counts.
@pytest.mark.max_queries(5)
async def test_posts_with_everything(session: AsyncSession, blog: Blog) -> None:
    items = await OptimizedLoadingRepository(session).get_posts_with_everything_optimized()

    assert [item.post.id for item in items] == [post.id for post in reversed(blog.published)]
    deleted_ids = {comment.id for comment in blog.deleted_comments}
    for item in items:
        post = item.post
        assert post.author.username
        assert post.category is not None
        assert len(post.tags) == 2
        assert len(post.comments) == 2
        # The reference's second, unfiltered option on Post.comments brought these back.
        assert not deleted_ids & {comment.id for comment in post.comments}
        for comment in post.comments:
            assert comment.author.username
            assert [reply.author.username for reply in comment.replies]
        # Two live comments and their replies; the deleted comment is not counted.
        assert item.stats.comment_count == 4


@pytest.fixture
async def big_blog(make: BlogFactory) -> Blog:
    return await build_blog(make, authors=6, posts_per_author=4, comments_per_post=3)


# Same five statements for a page four times the size.
@pytest.mark.max_queries(5)
async def test_posts_with_everything_does_not_grow_with_the_page(
    session: AsyncSession, big_blog: Blog
) -> None:
    items = await OptimizedLoadingRepository(session).get_posts_with_everything_optimized(limit=24)

    assert len(items) == 24


@pytest.fixture
async def liked_post(make: BlogFactory) -> Post:
    """A post with two comments (no replies) and three likes."""
    author, first, second = await make.user(), await make.user(), await make.user()
    post = await make.post(author)
    await make.comment(post, first)
    await make.comment(post, second)
    for fan in (author, first, second):
        await make.like(post, fan)
    await make.forget()
    return post


# Posts with author and category; tags; comments; replies (none, but there are comments to
# ask about); stats.
@pytest.mark.max_queries(5)
async def test_post_stats_count_comments_and_likes_separately(
    session: AsyncSession, liked_post: Post
) -> None:
    # The reference counted over one join of comments and likes: 2 comments and 3 likes on a
    # post read as 6 comments and 6 likes.
    [item] = await OptimizedLoadingRepository(session).get_posts_with_everything_optimized()

    assert item.stats == PostStats(comment_count=2, like_count=3, unique_commenters=2)


# Only the posts query runs when there is nothing to show.
@pytest.mark.max_queries(1)
async def test_posts_with_everything_on_an_empty_site(session: AsyncSession) -> None:
    assert await OptimizedLoadingRepository(session).get_posts_with_everything_optimized() == []


# Posts (followed ids as a subquery) joined to author and category; tags; latest comments with
# their authors; the reader's likes.
@pytest.mark.max_queries(4)
async def test_user_feed(session: AsyncSession, blog: Blog) -> None:
    feed = await OptimizedLoadingRepository(session).get_user_feed_optimized(blog.reader.id)

    expected = blog.published_by(blog.followed)
    assert [item.post.id for item in feed] == [post.id for post in reversed(expected)]
    liked = {post.id for post in blog.liked_by_reader}
    for item in feed:
        assert item.is_liked == (item.post.id in liked)
        assert item.post.category is not None
        assert item.post.tags
        assert [comment.author.username for comment in item.comment_preview]


@dataclass
class Discussion:
    reader: User
    post: Post
    comments: list[Comment]


@pytest.fixture
async def discussion(make: BlogFactory) -> Discussion:
    """A followed author's post with six comments, a reply, and a deleted comment."""
    reader, author, commenter = await make.user(), await make.user(), await make.user()
    await make.follow(reader, author)
    post = await make.post(author)
    comments = [await make.comment(post, commenter) for _ in range(6)]
    await make.comment(post, commenter, parent=comments[-1])
    await make.comment(post, commenter, is_deleted=True)
    await make.forget()
    return Discussion(reader, post, comments)


# Posts; tags; latest comments with authors; likes.
@pytest.mark.max_queries(4)
async def test_feed_reads_at_most_three_comments_per_post(
    session: AsyncSession, discussion: Discussion
) -> None:
    # The reference loaded every comment of every post, then kept post.comments[:3]. Only rows
    # the database returns become objects in the session, so counting the Comment objects
    # there shows how many rows were read.
    repository = OptimizedLoadingRepository(session)
    [item] = await repository.get_user_feed_optimized(discussion.reader.id)

    newest = [comment.id for comment in reversed(discussion.comments)][:FEED_COMMENT_PREVIEW]
    assert [comment.id for comment in item.comment_preview] == newest
    in_session = [obj for obj in session.identity_map.values() if isinstance(obj, Comment)]
    assert sorted(comment.id for comment in in_session) == sorted(newest)


async def test_feed_preview_reads_three_comments_per_post_from_the_index(
    session: AsyncSession, discussion: Discussion
) -> None:
    await prefer_indexes(session)

    plan = await QueryOptimizer(session).analyze_query_performance(
        OptimizedLoadingRepository.latest_comments_statement([discussion.post.id]), analyze=True
    )

    # The post has six live comments; the scan stops after the three it shows.
    [scan] = [node for node in plan.nodes() if node.get("Relation Name") == "comments"]
    assert scan["Index Name"] == "idx_comments_post_latest"
    assert scan["Actual Rows"] == FEED_COMMENT_PREVIEW


# Posts only: nothing else to load when nobody is followed.
@pytest.mark.max_queries(1)
async def test_feed_of_a_reader_who_follows_nobody(session: AsyncSession, blog: Blog) -> None:
    loner = blog.commenters[0]
    assert await OptimizedLoadingRepository(session).get_user_feed_optimized(loner.id) == []


@pytest.fixture
async def searchable(make: BlogFactory) -> Post:
    """Three posts; only the returned one is published and about indexes."""
    author = await make.user()
    wanted = await make.post(author, title="Partial indexes", content="Index only live rows.")
    await make.post(author, title="Connection pools", content="Sizing a pool.")
    await make.post(author, title="Indexing drafts", content="Unpublished.", is_published=False)
    await make.forget()
    return wanted


# One statement: the search, with authors joined.
@pytest.mark.max_queries(1)
async def test_search_posts(session: AsyncSession, searchable: Post) -> None:
    found = await OptimizedLoadingRepository(session).search_posts("indexes")

    assert [(post.id, post.author_id) for post in found] == [(searchable.id, searchable.author_id)]
    assert found[0].author.username


async def test_search_condition_is_served_by_the_gin_index(
    session: AsyncSession, blog: Blog
) -> None:
    # The condition alone: with sequential scans priced out, the GIN index is the only way
    # left to evaluate it, unless the expression differs from the indexed one. (The whole
    # search statement also has the partial index on published posts to choose from, and on
    # tables this small the choice between them is a toss-up.)
    await prefer_indexes(session)

    plan = await QueryOptimizer(session).analyze_query_performance(
        select(Post.id).where(search_matches(Post.title, Post.content, "performance"))
    )

    assert "idx_posts_search_gin" in plan.index_names
