"""The blog's tables: users who follow each other, posts with categories and tags, threaded
comments, and likes; with the timestamp, soft-delete and optimistic-locking mixins."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import (
    CheckConstraint,
    Column,
    DateTime,
    ForeignKey,
    Index,
    String,
    Table,
    Text,
    UniqueConstraint,
    false,
    func,
    text,
    true,
)
from sqlalchemy.ext.asyncio import AsyncAttrs
from sqlalchemy.ext.hybrid import hybrid_property
from sqlalchemy.orm import (
    DeclarativeBase,
    Mapped,
    MappedAsDataclass,
    declared_attr,
    mapped_column,
    relationship,
)
from sqlalchemy.sql.elements import ColumnElement

from blog.indexes import OptimizedIndexes, engagement_score
from blog.types import EncryptedString, JSONBType, UUIDType


class Base(AsyncAttrs, MappedAsDataclass, DeclarativeBase):
    """Declarative base: typed dataclass constructors, ``awaitable_attrs`` for asyncio.

    Every model says ``kw_only=True, eq=False`` (dataclass options do not pass from a base to its
    subclasses): keyword-only lets columns with defaults precede required ones, and eq=False
    keeps identity equality and hashing, which sets of ORM objects rely on. Relationships are
    left out of ``repr``: reading an unloaded one from ``repr`` would emit SQL (and raise
    MissingGreenlet under asyncio).
    """

    @declared_attr.directive
    def __mapper_args__(cls: type[Base]) -> dict[str, Any]:
        # One __mapper_args__ for every model: a mixin with its own (the reference's
        # VersionMixin) would hide this one, or be hidden by it, depending on the order of bases.
        # Without eager defaults, the server-set updated_at of an UPDATE is left expired, and
        # reading it later is a lazy load: an extra SELECT, or MissingGreenlet under asyncio.
        # RETURNING fetches it in the same statement.
        args: dict[str, Any] = {"eager_defaults": True}
        if issubclass(cls, VersionMixin):
            # The reference's version_id_generator, (v or 0) + 1, is SQLAlchemy's default.
            args["version_id_col"] = cls.version
        return args


class TimestampMixin(MappedAsDataclass, kw_only=True, eq=False):
    """``created_at`` and ``updated_at``, set by the database."""

    created_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), init=False
    )
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), onupdate=func.now(), init=False
    )


class SoftDeleteMixin(MappedAsDataclass, kw_only=True, eq=False):
    """``is_deleted`` and ``deleted_at``: rows are flagged, not removed.

    The reference indexed ``is_deleted`` on its own; a boolean that is false for almost every row
    is not selective, so the partial indexes (``WHERE is_deleted = false``) serve it instead.
    """

    is_deleted: Mapped[bool] = mapped_column(default=False, server_default=false())
    deleted_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), default=None)


class VersionMixin(MappedAsDataclass, kw_only=True, eq=False):
    """Optimistic locking: every ORM UPDATE checks and bumps ``version``.

    The server default covers bulk INSERTs, which do not run the ORM's version counter.
    """

    version: Mapped[int] = mapped_column(server_default=text("1"), init=False)


post_tags = Table(
    "post_tags",
    Base.metadata,
    Column("post_id", ForeignKey("posts.id", ondelete="CASCADE"), primary_key=True),
    # The primary key serves lookups by post; this serves "posts with tag X".
    Column("tag_id", ForeignKey("tags.id", ondelete="CASCADE"), primary_key=True, index=True),
)


class User(TimestampMixin, SoftDeleteMixin, VersionMixin, Base, kw_only=True, eq=False):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True, init=False)
    public_id: Mapped[uuid.UUID] = mapped_column(
        UUIDType(), unique=True, server_default=func.gen_random_uuid(), init=False
    )
    username: Mapped[str] = mapped_column(String(50), unique=True)
    email: Mapped[str] = mapped_column(String(255), unique=True)
    first_name: Mapped[str] = mapped_column(String(100))
    last_name: Mapped[str] = mapped_column(String(100))
    display_name: Mapped[str | None] = mapped_column(String(100), default=None)
    status: Mapped[str] = mapped_column(String(20), default="active", server_default="active")
    is_active: Mapped[bool] = mapped_column(default=True, server_default=true())
    # Kept out of repr so that logs and test failure output do not show it in clear.
    phone_number: Mapped[str | None] = mapped_column(EncryptedString(), default=None, repr=False)
    settings: Mapped[dict[str, Any]] = mapped_column(
        JSONBType(), default_factory=dict, server_default=text("'{}'")
    )

    posts: Mapped[list[Post]] = relationship(
        back_populates="author",
        order_by="(Post.created_at.desc(), Post.id.desc())",
        default_factory=list,
        repr=False,
    )
    following: Mapped[list[User]] = relationship(
        secondary="user_follows",
        primaryjoin="User.id == UserFollow.follower_id",
        secondaryjoin="User.id == UserFollow.following_id",
        viewonly=True,
        init=False,
        repr=False,
    )
    followers: Mapped[list[User]] = relationship(
        secondary="user_follows",
        primaryjoin="User.id == UserFollow.following_id",
        secondaryjoin="User.id == UserFollow.follower_id",
        viewonly=True,
        init=False,
        repr=False,
    )


class Category(TimestampMixin, Base, kw_only=True, eq=False):
    __tablename__ = "categories"

    id: Mapped[int] = mapped_column(primary_key=True, init=False)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    slug: Mapped[str] = mapped_column(String(100), unique=True)
    description: Mapped[str | None] = mapped_column(Text, default=None)

    posts: Mapped[list[Post]] = relationship(
        back_populates="category", default_factory=list, repr=False
    )


class Tag(Base, kw_only=True, eq=False):
    __tablename__ = "tags"

    id: Mapped[int] = mapped_column(primary_key=True, init=False)
    name: Mapped[str] = mapped_column(String(50), unique=True)

    posts: Mapped[list[Post]] = relationship(
        secondary=post_tags, back_populates="tags", default_factory=list, repr=False
    )


class Post(TimestampMixin, SoftDeleteMixin, VersionMixin, Base, kw_only=True, eq=False):
    __tablename__ = "posts"

    id: Mapped[int] = mapped_column(primary_key=True, init=False)
    # Plain indexes for foreign keys: PostgreSQL does not create them, and the partial composite
    # index cannot serve a lookup that does not also say "is_deleted = false".
    author_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True, init=False)
    category_id: Mapped[int | None] = mapped_column(
        ForeignKey("categories.id"), index=True, init=False
    )
    title: Mapped[str] = mapped_column(String(200))
    content: Mapped[str] = mapped_column(Text)
    is_published: Mapped[bool] = mapped_column(default=False, server_default=false())
    view_count: Mapped[int] = mapped_column(default=0, server_default=text("0"))
    like_count: Mapped[int] = mapped_column(default=0, server_default=text("0"))

    author: Mapped[User] = relationship(back_populates="posts", repr=False)
    category: Mapped[Category | None] = relationship(
        back_populates="posts", default=None, repr=False
    )
    tags: Mapped[list[Tag]] = relationship(
        secondary=post_tags,
        back_populates="posts",
        order_by="Tag.name",
        default_factory=list,
        repr=False,
    )
    # Top-level comments, newest first; replies hang off each comment.
    comments: Mapped[list[Comment]] = relationship(
        primaryjoin="and_(Comment.post_id == Post.id, Comment.parent_id.is_(None))",
        order_by="(Comment.created_at.desc(), Comment.id.desc())",
        viewonly=True,
        init=False,
        repr=False,
    )
    likes: Mapped[list[PostLike]] = relationship(back_populates="post", init=False, repr=False)

    @hybrid_property
    def engagement_score(self) -> float:
        """Ranking for "popular posts": likes count twice, views a tenth."""
        return self.like_count * 2 + self.view_count * 0.1

    @engagement_score.inplace.expression
    @classmethod
    def _engagement_score_expression(cls) -> ColumnElement[Any]:
        # The same expression as idx_posts_engagement_score, so ORDER BY can use the index.
        return engagement_score(cls.like_count, cls.view_count)


class Comment(TimestampMixin, SoftDeleteMixin, Base, kw_only=True, eq=False):
    __tablename__ = "comments"
    __table_args__ = (
        # A post's newest live top-level comments, in order: the feed's preview reads exactly
        # the rows it shows, instead of every comment of the post, then sorting.
        Index(
            "idx_comments_post_latest",
            "post_id",
            text("created_at DESC"),
            text("id DESC"),
            postgresql_where=text("is_deleted = false AND parent_id IS NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True, init=False)
    post_id: Mapped[int] = mapped_column(ForeignKey("posts.id"), index=True, init=False)
    author_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True, init=False)
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("comments.id"), index=True, init=False)
    content: Mapped[str] = mapped_column(Text)

    post: Mapped[Post] = relationship(repr=False)
    author: Mapped[User] = relationship(repr=False)
    parent: Mapped[Comment | None] = relationship(
        back_populates="replies", remote_side="Comment.id", default=None, repr=False
    )
    replies: Mapped[list[Comment]] = relationship(
        back_populates="parent",
        order_by="(Comment.created_at, Comment.id)",
        init=False,
        repr=False,
    )


class PostLike(Base, kw_only=True, eq=False):
    __tablename__ = "post_likes"
    # The unique constraint's index also serves lookups by post_id, its leading column.
    __table_args__ = (UniqueConstraint("post_id", "user_id", name="uq_post_likes_post_user"),)

    id: Mapped[int] = mapped_column(primary_key=True, init=False)
    # Association rows are made from ids (a request names the post and the user), so the keys
    # are constructor arguments and the relationships are not.
    post_id: Mapped[int] = mapped_column(ForeignKey("posts.id"))
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    created_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), init=False
    )

    post: Mapped[Post] = relationship(back_populates="likes", init=False, repr=False)
    user: Mapped[User] = relationship(init=False, repr=False)


class UserFollow(Base, kw_only=True, eq=False):
    __tablename__ = "user_follows"
    __table_args__ = (
        # bulk_create_user_follows' ON CONFLICT names these columns; it needs this constraint.
        UniqueConstraint("follower_id", "following_id", name="uq_user_follows_pair"),
        CheckConstraint("follower_id <> following_id", name="ck_user_follows_not_self"),
    )

    id: Mapped[int] = mapped_column(primary_key=True, init=False)
    # Made from ids, like PostLike.
    follower_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    following_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    created_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), init=False
    )

    follower: Mapped[User] = relationship(foreign_keys=[follower_id], init=False, repr=False)
    followed: Mapped[User] = relationship(foreign_keys=[following_id], init=False, repr=False)


OptimizedIndexes.create_advanced_indexes(
    posts=Base.metadata.tables["posts"], users=Base.metadata.tables["users"]
)
