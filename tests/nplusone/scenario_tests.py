"""Labelled N+1 scenarios: EXPECTED maps each test to the finding kinds it must produce."""

import threading

import scenario_app as app
from scenario_models import Author, Comment, Folder, Post, Tag
from sqlalchemy import func, select, text
from sqlalchemy.orm import (
    contains_eager,
    defer,
    immediateload,
    joinedload,
    selectinload,
    subqueryload,
)

N1, REPEATED, DUPLICATE, WRITE = "n_plus_one", "repeated", "duplicate", "n_plus_one_write"
EXPECTED = {}


def ids(session, model):
    return session.scalars(select(model.id).order_by(model.id)).all()


def expect(*kinds):
    def mark(function):
        EXPECTED[function.__name__] = sorted(kinds)
        return function

    return mark


# -- real N+1, sync ------------------------------------------------------------------------


@expect(N1)
def test_lazy_many_to_one_loop(db):
    for post in db.scalars(select(Post)).all():
        post.author.name


@expect(N1)
def test_lazy_one_to_many_loop(db):
    for post in db.scalars(select(Post)).all():
        len(post.comments)


@expect(N1)
def test_lazy_many_to_many_loop(db):
    for post in db.scalars(select(Post)).all():
        [tag.name for tag in post.tags]


@expect(N1)
def test_nested_lazy_loads(db):
    for post in db.scalars(select(Post)).all():
        for comment in post.comments:
            comment.author.name


@expect(N1)
def test_nested_fixed_at_first_level_only(db):
    posts = db.scalars(select(Post).options(selectinload(Post.comments))).all()
    for post in posts:
        for comment in post.comments:
            comment.author.name


@expect(REPEATED)
def test_loop_of_session_get(db):
    for author_id in db.scalars(select(Post.author_id).distinct()).all():
        db.get(Author, author_id)


@expect(REPEATED)
def test_loop_of_select_where_equals(db):
    for post in db.scalars(select(Post)).all():
        db.scalars(select(Comment).where(Comment.post_id == post.id)).all()


@expect(REPEATED)
def test_core_loop(db):
    connection = db.connection()
    for post_id in ids(db, Post)[:5]:
        connection.execute(select(Post.__table__).where(Post.__table__.c.id == post_id)).all()


@expect(REPEATED)
def test_text_loop(db):
    app.authors_by_raw_sql(db, ids(db, Author))


@expect(WRITE)
def test_insert_per_row(db):
    app.add_tags_one_by_one(db, ["a", "b", "c", "d"])


@expect(WRITE)
def test_update_per_row(db):
    app.bump_views_one_by_one(db, ids(db, Post)[:4])


@expect(WRITE)
def test_delete_per_row(db):
    app.insert_all_tags(db, ["old1", "old2", "old3"])
    stale = db.scalars(select(Tag.id).where(Tag.name.like("old%"))).all()
    app.delete_tags_one_by_one(db, stale)


@expect(WRITE)
def test_flush_per_object(db):
    app.flush_each_author(db, ["x", "y", "z", "w"])


@expect(N1)
def test_immediateload_option(db):
    db.scalars(select(Post).options(immediateload(Post.comments))).all()


@expect(N1)
def test_immediate_relationship(db):
    db.scalars(select(Folder)).all()


@expect(N1)
def test_deferred_column_in_loop(db):
    for post in db.scalars(select(Post).options(defer(Post.title))).all():
        post.title


@expect(N1)
def test_expired_after_commit_in_loop(db):
    posts = db.scalars(select(Post)).all()
    db.commit()
    for post in posts:
        post.title


@expect(DUPLICATE)
def test_same_query_same_parameters(db):
    for _ in range(3):
        app.render_page(db)


@expect(REPEATED)
def test_threads_each_fetching_one_row(sqlaperf_engine, db):
    def fetch(post_id):
        with sqlaperf_engine.connect() as connection:
            connection.execute(text("SELECT id FROM authors WHERE id = :id"), {"id": post_id})

    threads = [threading.Thread(target=fetch, args=(i,)) for i in ids(db, Author)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


# -- real N+1, async -----------------------------------------------------------------------


@expect(N1)
async def test_async_awaitable_attrs_collection(adb):
    for post in (await adb.scalars(select(Post))).all():
        await post.awaitable_attrs.comments


@expect(N1)
async def test_async_awaitable_attrs_many_to_one(adb):
    for post in (await adb.scalars(select(Post))).all():
        (await post.awaitable_attrs.author).name


@expect(N1)
async def test_async_refresh_attribute_in_loop(adb):
    for post in (await adb.scalars(select(Post))).all():
        await adb.refresh(post, ["comments"])


@expect(REPEATED)
async def test_async_loop_of_get(adb):
    for author_id in (await adb.scalars(select(Post.author_id).distinct())).all():
        await adb.get(Author, author_id)


@expect(WRITE)
async def test_async_insert_per_row(adb):
    await app.add_tags_one_by_one_async(adb, ["a", "b", "c"])


@expect(N1)
async def test_async_expired_after_commit(adb):
    posts = (await adb.scalars(select(Post))).all()
    await adb.commit()
    for post in posts:
        await post.awaitable_attrs.title


@expect(N1)
async def test_async_nested(adb):
    for post in (await adb.scalars(select(Post))).all():
        for comment in await post.awaitable_attrs.comments:
            await comment.awaitable_attrs.author


# -- clean code, sync ----------------------------------------------------------------------


@expect()
def test_selectinload(db):
    for post in db.scalars(select(Post).options(selectinload(Post.comments))).all():
        len(post.comments)


@expect()
def test_joinedload(db):
    for post in db.scalars(select(Post).options(joinedload(Post.author))).all():
        post.author.name


@expect()
def test_subqueryload(db):
    for post in db.scalars(select(Post).options(subqueryload(Post.tags))).all():
        len(post.tags)


@expect()
def test_contains_eager(db):
    query = select(Post).join(Post.author).options(contains_eager(Post.author))
    for post in db.scalars(query).all():
        post.author.name


@expect()
def test_nested_eager(db):
    query = select(Post).options(selectinload(Post.comments).joinedload(Comment.author))
    for post in db.scalars(query).all():
        for comment in post.comments:
            comment.author.name


@expect()
def test_identity_map_hits(db):
    first = ids(db, Author)[0]
    author = db.get(Author, first)
    for _ in range(5):
        assert db.get(Author, first) is author


@expect()
def test_single_lazy_load_outside_loop(db):
    post = db.scalars(select(Post).limit(1)).one()
    post.author.name


@expect()
def test_loop_of_one(db):
    for post in db.scalars(select(Post).limit(1)).all():
        post.author.name
        len(post.comments)


@expect()
def test_different_shape_each_iteration(db):
    for model in (Author, Post, Tag, Comment):
        db.scalars(select(model)).all()


@expect()
def test_insertmanyvalues_batch(db):
    db.add_all([Author(name=f"new{i}") for i in range(50)])
    db.flush()


@expect()
def test_core_executemany_insert(db):
    app.insert_all_tags(db, [f"t{i}" for i in range(20)])


@expect()
def test_selectinload_in_chunks(db):
    author_id = ids(db, Author)[0]
    db.execute(
        Post.__table__.insert(),
        [
            {"title": f"bulk{i}", "author_id": author_id, "views": 0, "body": ""}
            for i in range(1100)
        ],
    )
    posts = db.scalars(select(Post).options(selectinload(Post.comments))).all()
    assert len(posts) > 1000


@expect()
def test_hand_written_in_batches(db):
    keys = ids(db, Post)
    for start in range(0, len(keys), 2):
        db.scalars(select(Post).where(Post.id.in_(keys[start : start + 2]))).all()


@expect()
def test_two_pages_of_one_listing(db):
    for post in app.listing_page(db, 0) + app.listing_page(db, 1):
        post.title


@expect()
def test_same_endpoint_called_twice(db):
    first, second = ids(db, Post)[:2]
    app.post_with_author(db, first)
    app.post_with_author(db, second)


@expect()
def test_health_checks(db):
    db.execute(text("SELECT 1"))
    db.execute(text("SELECT 1"))


@expect()
def test_factory_in_test_body(db):
    for i in range(5):
        db.add(Author(name=f"factory{i}"))
        db.flush()


@expect()
def test_aggregate_instead_of_loop(db):
    db.execute(select(Post.id, func.count(Comment.id)).join(Post.comments).group_by(Post.id)).all()


@expect()
def test_threads_running_different_queries(sqlaperf_engine, db):
    def run(sql):
        with sqlaperf_engine.connect() as connection:
            connection.execute(text(sql))

    threads = [
        threading.Thread(target=run, args=(sql,))
        for sql in ("SELECT count(*) FROM posts", "SELECT count(*) FROM tags")
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


# -- clean code, async ---------------------------------------------------------------------


@expect()
async def test_async_selectinload(adb):
    for post in (await adb.scalars(select(Post).options(selectinload(Post.comments)))).all():
        len(post.comments)


@expect()
async def test_async_joinedload(adb):
    for post in (await adb.scalars(select(Post).options(joinedload(Post.author)))).all():
        post.author.name


@expect()
async def test_async_identity_map_hits(adb):
    first = (await adb.scalars(select(Author.id).limit(1))).one()
    author = await adb.get(Author, first)
    for _ in range(4):
        assert await adb.get(Author, first) is author


@expect()
async def test_async_two_pages(adb):
    for page in (0, 1):
        await adb.scalars(select(Post).order_by(Post.id).limit(2).offset(2 * page))


@expect()
async def test_async_single_awaitable_attr(adb):
    post = (await adb.scalars(select(Post).limit(1))).one()
    await post.awaitable_attrs.comments
