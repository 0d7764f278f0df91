"""Application code of the scenarios: the loops live here, as they would in a real code base."""

from __future__ import annotations

from scenario_models import Author, Post, Setting, Tag
from sqlalchemy import delete, insert, select, text, update


def add_tags_one_by_one(session, names):
    for name in names:
        session.execute(insert(Tag).values(name=name))


def bump_views_one_by_one(session, ids):
    for post_id in ids:
        session.execute(update(Post).where(Post.id == post_id).values(views=Post.views + 1))


def delete_tags_one_by_one(session, ids):
    for tag_id in ids:
        session.execute(delete(Tag).where(Tag.id == tag_id))


def flush_each_author(session, names):
    for name in names:
        session.add(Author(name=name))
        session.flush()


def setting(session, key):
    return session.get(Setting, key, populate_existing=True)


def render_page(session):
    return [setting(session, "theme").value for _ in range(3)]


def authors_by_raw_sql(session, ids):
    return [
        session.execute(text("SELECT name FROM authors WHERE id = :id"), {"id": i}).scalar()
        for i in ids
    ]


def insert_all_tags(session, names):
    session.execute(insert(Tag), [{"name": name} for name in names])


def post_with_author(session, post_id):
    post = session.get(Post, post_id)
    return post.title, post.author.name


def listing_page(session, page):
    return session.scalars(select(Post).order_by(Post.id).limit(2).offset(2 * page)).all()


async def add_tags_one_by_one_async(session, names):
    for name in names:
        await session.execute(insert(Tag).values(name=name))
