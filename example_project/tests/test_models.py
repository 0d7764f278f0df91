"""The models' custom types and mixins, on PostgreSQL."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import select, text, update
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.dialects.sqlite.base import SQLiteDialect
from sqlalchemy.exc import StatementError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm.exc import StaleDataError
from sqlalchemy.types import JSON

from blog.models import Base, Post, User
from blog.types import FIELD_KEY_VARIABLE, JSONBType, UUIDType
from tests.factories import BlogFactory

PHONE = "+81 3-1234-5678"


@pytest.fixture
async def user(make: BlogFactory) -> User:
    user = await make.user(phone_number=PHONE, settings={"theme": "dark", "digest": ["weekly"]})
    await make.forget()
    return user


@pytest.fixture
async def post(make: BlogFactory) -> Post:
    post = await make.post(await make.user(), like_count=3, view_count=40)
    await make.forget()
    return post


async def _column_types(session: AsyncSession, table: str) -> dict[str, str]:
    rows = await session.execute(
        text("SELECT column_name, data_type FROM information_schema.columns WHERE table_name = :t"),
        {"t": table},
    )
    return {name: data_type for name, data_type in rows}


# The user by primary key.
@pytest.mark.max_queries(1)
async def test_custom_types_round_trip(session: AsyncSession, user: User) -> None:
    loaded = await session.get(User, user.id)

    assert loaded is not None
    assert isinstance(loaded.public_id, uuid.UUID)
    assert loaded.public_id == user.public_id
    assert loaded.settings == {"theme": "dark", "digest": ["weekly"]}
    assert loaded.phone_number == PHONE


async def test_columns_use_native_postgresql_types(session: AsyncSession) -> None:
    # The reference's UUID type stored text on PostgreSQL too.
    types = await _column_types(session, "users")

    assert (types["public_id"], types["settings"], types["phone_number"]) == (
        "uuid",
        "jsonb",
        "text",
    )


async def test_types_fall_back_off_postgresql(session: AsyncSession) -> None:
    value = uuid.UUID("12345678-1234-5678-1234-567812345678")
    uuid_type, json_type = UUIDType(), JSONBType()
    postgresql = (await session.connection()).dialect
    other = SQLiteDialect()

    assert isinstance(json_type.load_dialect_impl(postgresql), JSONB)
    fallback = json_type.load_dialect_impl(other)
    assert isinstance(fallback, JSON)
    assert not isinstance(fallback, JSONB)
    stored = uuid_type.process_bind_param(value, other)
    assert stored == value.hex
    assert uuid_type.process_result_value(stored, other) == value


async def test_encrypted_column_is_not_stored_in_clear(session: AsyncSession, user: User) -> None:
    stored = await session.scalar(
        text("SELECT phone_number FROM users WHERE id = :id"), {"id": user.id}
    )

    assert stored is not None
    assert PHONE not in stored
    assert stored.startswith("gAAAAA")  # a Fernet token
    assert "phone_number" not in repr(user)


async def test_encryption_without_a_key_says_how_to_make_one(
    make: BlogFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(FIELD_KEY_VARIABLE)

    with pytest.raises(StatementError, match="BLOG_FIELD_KEY is not set; generate a key") as error:
        await make.user(phone_number=PHONE)
    assert isinstance(error.value.orig, RuntimeError)


# The UPDATE, with updated_at and version in its RETURNING: no SELECT afterwards.
@pytest.mark.max_queries(1)
async def test_update_sets_timestamp_and_version_in_one_statement(
    session: AsyncSession, post: Post
) -> None:
    session.add(post)
    post.title = "Retitled"
    await session.flush()

    # Read without a reload: under asyncio an expired attribute would raise MissingGreenlet.
    assert post.updated_at > post.created_at
    assert post.version == 2


# The load, the out-of-band UPDATE, and the ORM's version-checked UPDATE, which matches no row.
@pytest.mark.max_queries(3)
async def test_optimistic_lock_detects_a_concurrent_update(
    session: AsyncSession, post: Post
) -> None:
    loaded = await session.get(Post, post.id)
    assert loaded is not None
    table = Base.metadata.tables["posts"]
    await session.execute(
        update(table).where(table.c.id == post.id).values(version=table.c.version + 1)
    )

    loaded.title = "Lost update"
    with pytest.raises(StaleDataError, match="expected to update 1 row"):
        await session.flush()


async def test_soft_delete_and_timestamp_defaults(session: AsyncSession, make: BlogFactory) -> None:
    author = User(username="fresh", email="fresh@example.com", first_name="F", last_name="R")
    session.add(author)
    await session.flush()

    assert (author.is_deleted, author.deleted_at, author.version) == (False, None, 1)
    assert author.created_at == author.updated_at
    assert author.status == "active"
    assert await session.scalar(select(User.is_active).where(User.id == author.id))


def test_engagement_score_in_python_and_sql() -> None:
    post = Post(
        author=User(username="u", email="u@e", first_name="U", last_name="S"),
        title="t",
        content="c",
        like_count=3,
        view_count=40,
    )

    assert post.engagement_score == pytest.approx(10.0)
    assert str(Post.engagement_score.compile()) == "posts.like_count * 2 + posts.view_count * 0.1"
