"""``UserRepository``: user lookups that the cached repository builds on."""

from __future__ import annotations

from sqlalchemy import false, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload

from blog.models import Post, User


class UserRepository:
    """Reads users (the reference's cached repository extends a class it never showed)."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def get_by_id(self, user_id: int) -> User | None:
        """The live user with this id, or None: one SELECT (none if already in the session)."""
        user = await self.session.get(User, user_id)
        return None if user is None or user.is_deleted else user

    async def get_by_id_with_posts(self, user_id: int) -> User | None:
        """The live user with their live posts loaded: two SELECTs (user, then posts)."""
        stmt = (
            select(User)
            .where(User.id == user_id, User.is_deleted == false())
            .options(selectinload(User.posts.and_(Post.is_deleted == false())))
        )
        return (await self.session.scalars(stmt)).one_or_none()
