"""``BulkOperationsRepository``: one statement per operation, whatever the number of rows."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from blog.models import Comment, Post, User, UserFollow
from blog.repositories.bulk_operations import BulkOperationsRepository
from tests.factories import START, Blog, BlogFactory


def _user_row(name: str, **overrides: str | None) -> dict[str, str | None]:
    row: dict[str, str | None] = {
        "username": name,
        "email": f"{name}@example.com",
        "first_name": "Bulk",
        "last_name": name.title(),
        "display_name": None,
    }
    return row | overrides


@pytest.fixture
async def existing_user(make: BlogFactory) -> User:
    user = await make.user(username="grace", email="grace@example.com", first_name="Grace")
    await make.forget()
    return user


# One INSERT ... ON CONFLICT DO UPDATE ... RETURNING for all rows (under 1,000).
@pytest.mark.max_queries(1)
async def test_bulk_insert_users(session: AsyncSession, existing_user: User) -> None:
    rows = [_user_row(f"new{number}") for number in range(50)]
    rows.insert(10, _user_row("grace2", email=existing_user.email, first_name="Hopper"))

    ids = await BulkOperationsRepository(session).bulk_insert_users(rows)

    assert len(ids) == 51
    assert ids[10] == existing_user.id
    assert len(set(ids)) == 51


# 4,100 rows: five pages of at most 1,000 (SQLAlchemy's insertmanyvalues page size).
@pytest.mark.max_queries(5)
async def test_bulk_insert_users_past_the_parameter_limit(session: AsyncSession) -> None:
    # As one multi-VALUES statement (the reference), 4,100 rows are 32,800 parameters, over
    # asyncpg's 32,767.
    rows = [_user_row(f"many{number}") for number in range(4100)]

    ids = await BulkOperationsRepository(session).bulk_insert_users(rows)

    assert len(set(ids)) == 4100


# The upsert, then the check.
@pytest.mark.max_queries(2)
async def test_bulk_insert_users_updates_names_and_version_of_existing_rows(
    session: AsyncSession, existing_user: User
) -> None:
    # The reference's upsert left the version alone, defeating the optimistic lock.
    [user_id] = await BulkOperationsRepository(session).bulk_insert_users(
        [_user_row("ignored", email=existing_user.email, first_name="Hopper")]
    )

    row = (
        await session.execute(
            select(User.username, User.first_name, User.version).where(User.id == user_id)
        )
    ).one()
    assert tuple(row) == ("grace", "Hopper", existing_user.version + 1)


# One upsert even with the email twice (the last occurrence wins), then the check.
@pytest.mark.max_queries(2)
async def test_bulk_insert_users_with_a_repeated_email(session: AsyncSession) -> None:
    # ON CONFLICT DO UPDATE cannot touch a row twice: the reference failed the whole batch.
    ids = await BulkOperationsRepository(session).bulk_insert_users(
        [_user_row("twin", first_name="First"), _user_row("twin", first_name="Second")]
    )

    assert len(ids) == 1
    assert await session.scalar(select(User.first_name).where(User.id == ids[0])) == "Second"


@pytest.fixture
async def three_posts(make: BlogFactory) -> list[Post]:
    author = await make.user()
    posts = [await make.post(author) for _ in range(3)]
    await make.forget()
    return posts


# One UPDATE ... FROM unnest(...).
@pytest.mark.max_queries(1)
async def test_bulk_update_post_stats(session: AsyncSession, three_posts: list[Post]) -> None:
    updates = [
        {"post_id": post.id, "view_count": 1000 + number, "like_count": number}
        for number, post in enumerate(three_posts)
    ]

    # The reference returned asyncpg's executemany rowcount, which is not the total.
    assert await BulkOperationsRepository(session).bulk_update_post_stats(updates) == 3


# The update, then one SELECT to check it.
@pytest.mark.max_queries(2)
async def test_bulk_update_post_stats_writes_counts_and_bumps_versions(
    session: AsyncSession, three_posts: list[Post]
) -> None:
    first, second, _ = three_posts
    updates = [
        {"post_id": first.id, "view_count": 500, "like_count": 5},
        {"post_id": second.id, "view_count": 700, "like_count": 7},
    ]

    await BulkOperationsRepository(session).bulk_update_post_stats(updates)

    rows = await session.execute(
        select(Post.id, Post.view_count, Post.like_count, Post.version).order_by(Post.id)
    )
    assert [tuple(row) for row in rows] == [
        (first.id, 500, 5, 2),
        (second.id, 700, 7, 2),
        (three_posts[2].id, three_posts[2].view_count, three_posts[2].like_count, 1),
    ]


@dataclass
class Thread:
    posts: list[Post]
    already_deleted: Comment


@pytest.fixture
async def thread(make: BlogFactory) -> Thread:
    """Two posts with a comment and a reply each, and a comment deleted long ago."""
    author, commenter = await make.user(), await make.user()
    posts = []
    for _ in range(2):
        post = await make.post(author)
        comment = await make.comment(post, commenter)
        await make.comment(post, author, parent=comment)
        posts.append(post)
    old = await make.comment(posts[0], commenter, is_deleted=True, deleted_at=START)
    await make.forget()
    return Thread(posts, old)


# An UPDATE of the posts, an UPDATE of their comments.
@pytest.mark.max_queries(2)
async def test_bulk_soft_delete_posts(session: AsyncSession, thread: Thread) -> None:
    deleted = await BulkOperationsRepository(session).bulk_soft_delete_posts(
        [post.id for post in thread.posts]
    )

    assert deleted == 2


# Two UPDATEs, two more for the repeat (which match nothing), then one SELECT to check.
@pytest.mark.max_queries(5)
async def test_bulk_soft_delete_keeps_earlier_deletions(
    session: AsyncSession, thread: Thread
) -> None:
    repository = BulkOperationsRepository(session)
    post_ids = [post.id for post in thread.posts]

    await repository.bulk_soft_delete_posts(post_ids)
    assert await repository.bulk_soft_delete_posts(post_ids) == 0

    comments = (
        await session.execute(select(Comment.id, Comment.is_deleted, Comment.deleted_at))
    ).all()
    assert all(is_deleted for _, is_deleted, _ in comments)
    # The reference overwrote deleted_at of comments deleted long before.
    [(_, _, deleted_at)] = [row for row in comments if row.id == thread.already_deleted.id]
    assert deleted_at == thread.already_deleted.deleted_at


@pytest.fixture
async def people(make: BlogFactory) -> list[User]:
    users = [await make.user() for _ in range(5)]
    await make.follow(users[0], users[1])
    await make.forget()
    return users


# One INSERT ... ON CONFLICT DO NOTHING ... RETURNING.
@pytest.mark.max_queries(1)
async def test_bulk_create_user_follows(session: AsyncSession, people: list[User]) -> None:
    me, already, *others = people
    # Existing follow, self and a repeat are skipped; the reference failed on the self-follow.
    targets = [already.id, me.id, *[user.id for user in others], others[0].id]

    created = await BulkOperationsRepository(session).bulk_create_user_follows(me.id, targets)

    assert created == len(others)


# Follow, then read the follows back.
@pytest.mark.max_queries(2)
async def test_bulk_create_user_follows_writes_each_pair_once(
    session: AsyncSession, people: list[User]
) -> None:
    me, *others = people
    await BulkOperationsRepository(session).bulk_create_user_follows(me.id, [u.id for u in others])

    rows = await session.scalars(
        select(UserFollow.following_id).where(UserFollow.follower_id == me.id)
    )
    assert sorted(rows) == sorted(user.id for user in others)


# Nothing to insert: no statement at all.
@pytest.mark.max_queries(0)
async def test_bulk_create_user_follows_with_only_oneself(
    session: AsyncSession, people: list[User]
) -> None:
    me = people[0]
    assert await BulkOperationsRepository(session).bulk_create_user_follows(me.id, [me.id]) == 0


# One statement with three CTEs.
@pytest.mark.max_queries(1)
async def test_bulk_analyze_user_engagement(session: AsyncSession, blog: Blog) -> None:
    author = blog.authors[0]
    commenter = blog.commenters[0]

    engagement = await BulkOperationsRepository(session).bulk_analyze_user_engagement(
        [author.id, commenter.id]
    )

    # Drafts count as posts; deleted posts do not.
    posts = blog.published_by([author]) + [p for p in blog.drafts if p.author_id == author.id]
    stats = engagement[author.id]
    assert (stats.post_count, stats.comment_count, stats.received_likes) == (len(posts), 0, 3)
    assert stats.avg_views_per_post == pytest.approx(sum(p.view_count for p in posts) / len(posts))
    assert stats.last_post_date == max(post.created_at for post in posts)
    assert stats.likes_per_post == pytest.approx(3 / len(posts))
    assert engagement[commenter.id].post_count == 0
    assert engagement[commenter.id].comment_count > 0


@pytest.fixture
async def busy_author(make: BlogFactory) -> User:
    """Two posts with 10 and 30 views; three likes on the first; two comments by the author."""
    author, fan = await make.user(), await make.user()
    first = await make.post(author, view_count=10)
    await make.post(author, view_count=30)
    for liker in (fan, await make.user(), await make.user()):
        await make.like(first, liker)
    await make.comment(first, author)
    await make.comment(first, author)
    await make.forget()
    return author


# One statement.
@pytest.mark.max_queries(1)
async def test_engagement_average_is_not_weighted_by_joins(
    session: AsyncSession, busy_author: User
) -> None:
    # The reference joined each user's posts to their comments and their posts' likes in one
    # FROM: the first post's row came 2 x 3 times, the second's 2 times, and the average was 15.
    engagement = await BulkOperationsRepository(session).bulk_analyze_user_engagement(
        [busy_author.id]
    )

    stats = engagement[busy_author.id]
    assert (stats.post_count, stats.comment_count, stats.received_likes) == (2, 2, 3)
    assert stats.avg_views_per_post == 20.0
    assert stats.likes_per_post == 1.5
