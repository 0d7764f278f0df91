"""Fingerprints: which statements share a shape, how the shape reads, and its kind."""

from __future__ import annotations

import re
from typing import Any

import pytest
from sqlalchemy import (
    Column,
    DateTime,
    ForeignKey,
    Integer,
    MetaData,
    String,
    Table,
    insert,
    select,
    tuple_,
)
from sqlalchemy.dialects.postgresql import array, asyncpg, psycopg
from sqlalchemy.orm import DeclarativeBase, Mapped, aliased, mapped_column

from pytest_sqlaperf.capture.fingerprint import Shape, normalize, shape_of, statement_kind

# Real statements captured from SQLAlchemy 2.1 sessions (ORM bulk inserts with RETURNING).
INSERTMANYVALUES_ASYNCPG_2 = (
    "INSERT INTO posts (user_id, title) SELECT p0::INTEGER, p1::VARCHAR FROM (VALUES "
    "($1::INTEGER, $2::VARCHAR, 0), ($3::INTEGER, $4::VARCHAR, 1)) AS imp_sen(p0, p1, sen_counter) "
    "ORDER BY sen_counter RETURNING posts.id, posts.id AS id__1"
)
INSERTMANYVALUES_ASYNCPG_3 = (
    "INSERT INTO posts (user_id, title) SELECT p0::INTEGER, p1::VARCHAR FROM (VALUES "
    "($1::INTEGER, $2::VARCHAR, 0), ($3::INTEGER, $4::VARCHAR, 1), ($5::INTEGER, $6::VARCHAR, 2)) "
    "AS imp_sen(p0, p1, sen_counter) ORDER BY sen_counter RETURNING posts.id, posts.id AS id__1"
)
INSERTMANYVALUES_PSYCOPG_3 = (
    "INSERT INTO posts (user_id, title) SELECT p0::INTEGER, p1::VARCHAR FROM (VALUES "
    "(%(user_id__0)s::INTEGER, %(title__0)s::VARCHAR, 0), "
    "(%(user_id__1)s::INTEGER, %(title__1)s::VARCHAR, 1), "
    "(%(user_id__2)s::INTEGER, %(title__2)s::VARCHAR, 2)) "
    "AS imp_sen(p0, p1, sen_counter) ORDER BY sen_counter RETURNING posts.id, posts.id AS id__1"
)

EQUAL = [
    pytest.param(
        "SELECT users.id, users.name \nFROM users \nWHERE users.id = %(pk_1)s::INTEGER",
        "SELECT users.id, users.name \nFROM users \nWHERE users.id = $1::INTEGER",
        id="psycopg-vs-asyncpg",
    ),
    pytest.param(
        "SELECT * FROM users WHERE id = 5",
        "SELECT * FROM users WHERE id = $1",
        id="number-literal-vs-param",
    ),
    pytest.param(
        "SELECT * FROM users WHERE name = 'alice'",
        "SELECT * FROM users WHERE name = 'bob'",
        id="string-literals",
    ),
    pytest.param(
        "SELECT * FROM users WHERE name = 'it''s'",
        "SELECT * FROM users WHERE name = 'x'",
        id="doubled-quote-escape",
    ),
    pytest.param(
        r"SELECT * FROM users WHERE name = E'it\'s; -- not a comment'",
        "SELECT * FROM users WHERE name = 'x'",
        id="escape-string",
    ),
    pytest.param(
        "SELECT $$it's /* not a comment$$, $fn$ a $$ b $fn$",
        "SELECT 'a', 'b'",
        id="dollar-quoted-strings",
    ),
    pytest.param(
        "SELECT * FROM users WHERE id = %s AND name = %s",
        "SELECT * FROM users WHERE id = ? AND name = ?",
        id="format-vs-qmark",
    ),
    pytest.param(
        "SELECT * FROM users WHERE id = :user_id",
        "SELECT * FROM users WHERE id = %(id_1)s",
        id="named-vs-pyformat",
    ),
    pytest.param(
        "UPDATE users SET name=%(name)s::VARCHAR WHERE users.id = %(id_1)s::INTEGER",
        "UPDATE users SET name=$1 WHERE users.id = $2",
        id="param-casts-dropped",
    ),
    pytest.param(
        "SELECT CAST(%(param_1)s AS INTEGER) AS anon_1",
        "SELECT $1::INTEGER AS anon_1",
        id="cast-function-on-param",
    ),
    pytest.param(
        "SELECT * FROM items WHERE price = $1::NUMERIC(10, 2) AND code = $2::VARCHAR(20)",
        "SELECT * FROM items WHERE price = %(price_1)s AND code = %(code_1)s",
        id="param-casts-with-type-arguments",
    ),
    pytest.param(
        "SELECT * FROM events WHERE events.ts > $1::TIMESTAMP WITH TIME ZONE",
        "SELECT * FROM events WHERE events.ts > %(ts_1)s::TIMESTAMP WITHOUT TIME ZONE",
        id="param-casts-multiword-types",
    ),
    pytest.param(
        "SELECT * FROM users WHERE users.id = ANY ($1::INTEGER[])",
        "SELECT * FROM users WHERE users.id = ANY (ARRAY[%(p_1)s::INTEGER, %(p_2)s::INTEGER])",
        id="any-array-param-vs-array-constructor",
    ),
    pytest.param(
        "SELECT * FROM t WHERE t.k = ANY (ARRAY[%(param_1)s::VARCHAR, %(param_2)s::VARCHAR])",
        "SELECT * FROM t WHERE t.k = ANY (ARRAY['a', 'b', 'c', 'd', 'e'])",
        id="any-array-lengths",
    ),
    pytest.param(
        "SELECT users.id FROM users WHERE users.id IN (%(id_1_1)s::INTEGER)",
        "SELECT users.id FROM users WHERE users.id IN "
        "(%(id_1_1)s::INTEGER, %(id_1_2)s::INTEGER, %(id_1_3)s::INTEGER)",
        id="in-list-lengths",
    ),
    pytest.param(
        "SELECT users.id FROM users WHERE users.id IN (__[POSTCOMPILE_id_1])",
        "SELECT users.id FROM users WHERE users.id IN ($1::INTEGER, $2::INTEGER)",
        id="in-postcompile-vs-rendered",
    ),
    pytest.param(
        "SELECT * FROM users WHERE (users.id, users.name) IN (($1, $2))",
        "SELECT * FROM users WHERE (users.id, users.name) IN (($1, $2), ($3, $4), ($5, $6))",
        id="tuple-in-lengths",
    ),
    pytest.param(
        "INSERT INTO users (name) VALUES (%(name_m0)s::VARCHAR)",
        "INSERT INTO users (name) VALUES "
        "(%(name_m0)s::VARCHAR), (%(name_m1)s::VARCHAR), (%(name_m2)s::VARCHAR)",
        id="values-row-counts",
    ),
    pytest.param(
        "INSERT INTO t (a, b) VALUES (1, NULL)",
        "INSERT INTO t (a, b) VALUES (NULL, 'x'), (3, 4)",
        id="null-in-values-is-a-value",
    ),
    pytest.param(
        INSERTMANYVALUES_ASYNCPG_2, INSERTMANYVALUES_ASYNCPG_3, id="insertmanyvalues-rows"
    ),
    pytest.param(
        INSERTMANYVALUES_ASYNCPG_3, INSERTMANYVALUES_PSYCOPG_3, id="insertmanyvalues-drivers"
    ),
    pytest.param(
        "SELECT users.id,\n\tusers.name\r\n   FROM users   WHERE users.id = $1",
        "SELECT users.id, users.name FROM users WHERE users.id = $1",
        id="whitespace",
    ),
    pytest.param(
        "select users.id from users where users.id = $1 order by users.id desc",
        "SELECT users.id FROM users WHERE users.id = $1 ORDER BY users.id DESC",
        id="keyword-case",
    ),
    pytest.param(
        "SELECT Users.ID FROM USERS",
        "SELECT users.id FROM users",
        id="unquoted-identifier-case",
    ),
    pytest.param(
        "SELECT 1 -- why\n, users.id /* outer /* nested 'quote */ still */ FROM users",
        "SELECT 1, users.id FROM users",
        id="comments",
    ),
    pytest.param("SAVEPOINT sa_savepoint_1", "SAVEPOINT sa_savepoint_7", id="savepoint-names"),
    pytest.param(
        "RELEASE SAVEPOINT sa_savepoint_1", "RELEASE SAVEPOINT sa_savepoint_12", id="release-names"
    ),
    pytest.param(
        "ROLLBACK TO SAVEPOINT sa_savepoint_2", "ROLLBACK TO SAVEPOINT sp", id="rollback-to-names"
    ),
    pytest.param(
        "SELECT users.id FROM users \n LIMIT %(param_1)s::INTEGER",
        "SELECT users.id FROM users \n LIMIT %(param_2)s::INTEGER",
        id="anonymous-param-names",
    ),
    pytest.param(
        "SELECT users.id FROM users LIMIT 10",
        "SELECT users.id FROM users LIMIT $1::INTEGER",
        id="limit-literal-vs-param",
    ),
    pytest.param(
        "SELECT * FROM t WHERE t.x > -1 AND t.y=-2.5e3",
        "SELECT * FROM t WHERE t.x > 1 AND t.y = 7",
        id="negative-numbers",
    ),
    pytest.param(
        "SELECT users.id FROM users ORDER BY users.id ASC",
        "SELECT users.id FROM users ORDER BY users.id",
        id="asc-is-the-default",
    ),
    pytest.param("SELECT 1;", "SELECT 1", id="trailing-semicolon"),
    pytest.param(
        "SELECT t.id FROM t WHERE t.x <> 1",
        "SELECT t.id FROM t WHERE t.x != 2",
        id="not-equal-spellings",
    ),
    pytest.param(
        "SELECT t.a %% %(m)s FROM t",
        "SELECT t.a % $1 FROM t",
        id="pyformat-escaped-modulo",
    ),
]

UNEQUAL = [
    pytest.param(
        "SELECT users.id FROM users WHERE users.id = $1",
        "SELECT posts.id FROM posts WHERE posts.id = $1",
        id="tables",
    ),
    pytest.param(
        "SELECT users.id FROM users WHERE users.id = $1",
        "SELECT users.id FROM users WHERE users.name = $1",
        id="columns",
    ),
    pytest.param(
        "SELECT users.id FROM users WHERE users.id = $1",
        "SELECT users.id FROM users WHERE users.id IN ($1)",
        id="equals-vs-in",
    ),
    pytest.param(
        "SELECT users.id FROM users WHERE users.id = ANY ($1::INTEGER[])",
        "SELECT users.id FROM users WHERE users.id IN ($1::INTEGER)",
        id="any-vs-in",
    ),
    pytest.param(
        "SELECT users.id FROM users WHERE users.id IN ($1, $2)",
        "SELECT users.id FROM users WHERE users.id NOT IN ($1, $2)",
        id="in-vs-not-in",
    ),
    pytest.param(
        "SELECT users.id FROM users WHERE users.id IN ($1, $2)",
        "SELECT users.id FROM users WHERE users.id IN (SELECT posts.user_id FROM posts)",
        id="in-list-vs-subquery",
    ),
    pytest.param(
        "SELECT users.id FROM users WHERE users.id IN ($1)",
        "SELECT users.id FROM users WHERE users.id IN (NULL) AND (1 != 1)",
        id="in-list-vs-empty-in",
    ),
    pytest.param(
        "SELECT users.id FROM users ORDER BY users.id ASC",
        "SELECT users.id FROM users ORDER BY users.id DESC",
        id="asc-vs-desc",
    ),
    pytest.param(
        "SELECT users.id FROM users ORDER BY users.id, users.name",
        "SELECT users.id FROM users ORDER BY users.name, users.id",
        id="order-by-order",
    ),
    pytest.param(
        "SELECT users.id FROM users WHERE users.name IS NULL",
        "SELECT users.id FROM users WHERE users.name = $1",
        id="is-null-vs-equals",
    ),
    pytest.param(
        "SELECT users.id FROM users WHERE users.name IS NULL",
        "SELECT users.id FROM users WHERE users.name IS NOT NULL",
        id="is-null-vs-is-not-null",
    ),
    pytest.param(
        "SELECT users.id FROM users LIMIT $1",
        "SELECT users.id FROM users",
        id="with-vs-without-limit",
    ),
    pytest.param(
        "SELECT users.id FROM users LIMIT $1",
        "SELECT users.id FROM users OFFSET $1",
        id="limit-vs-offset",
    ),
    pytest.param(
        "SELECT a.users.id FROM a.users",
        "SELECT b.users.id FROM b.users",
        id="schemas",
    ),
    pytest.param(
        "SELECT t.id FROM t WHERE t.x < $1",
        "SELECT t.id FROM t WHERE t.x <= $1",
        id="operators",
    ),
    pytest.param(
        "SELECT t.id FROM t WHERE t.x - 1 > $1",
        "SELECT t.id FROM t WHERE t.x + 1 > $1",
        id="binary-minus-vs-plus",
    ),
    pytest.param(
        "SELECT users.id FROM users JOIN posts ON users.id = posts.user_id",
        "SELECT users.id FROM users LEFT OUTER JOIN posts ON users.id = posts.user_id",
        id="inner-vs-left-join",
    ),
    pytest.param(
        "SELECT a.id FROM users AS a",
        "SELECT a.id FROM posts AS a",
        id="aliased-tables",
    ),
    pytest.param(
        "SELECT users_1.id FROM users AS users_1",
        "SELECT users_2.id FROM users AS users_2",
        id="alias-names-are-kept",
    ),
    pytest.param(
        'SELECT "Users".id FROM "Users"',
        "SELECT users.id FROM users",
        id="quoted-identifier-case",
    ),
    pytest.param(
        "SELECT users.id::TEXT FROM users",
        "SELECT users.id FROM users",
        id="column-cast-kept",
    ),
    pytest.param(
        "SELECT p0::INTEGER FROM (VALUES ($1, 0)) AS imp_sen(p0, sen_counter)",
        "SELECT p0::BIGINT FROM (VALUES ($1, 0)) AS imp_sen(p0, sen_counter)",
        id="column-cast-types",
    ),
    pytest.param(
        "SELECT t.id FROM t WHERE t.a = $1 AND t.b = $2",
        "SELECT t.id FROM t WHERE t.a = $1 OR t.b = $2",
        id="and-vs-or",
    ),
    pytest.param(
        "SELECT t.id FROM t WHERE t.active = true",
        "SELECT t.id FROM t WHERE t.active = false",
        id="boolean-literals-kept",
    ),
    pytest.param(
        "INSERT INTO users (name) VALUES ($1)",
        "INSERT INTO users (name, email) VALUES ($1, $2)",
        id="insert-columns",
    ),
    pytest.param(
        "INSERT INTO t (a, b) VALUES ($1, DEFAULT)",
        "INSERT INTO t (a, b) VALUES ($1, $2)",
        id="values-default-vs-value",
    ),
    pytest.param(
        "INSERT INTO users (name) VALUES ($1) RETURNING users.id",
        "INSERT INTO users (name) VALUES ($1)",
        id="returning",
    ),
    pytest.param(
        INSERTMANYVALUES_ASYNCPG_3,
        "INSERT INTO posts (user_id, title) VALUES ($1::INTEGER, $2::VARCHAR) RETURNING posts.id",
        id="insertmanyvalues-vs-plain-insert",
    ),
    pytest.param(
        "SELECT users.id FROM users WHERE users.id = $1 FOR UPDATE",
        "SELECT users.id FROM users WHERE users.id = $1",
        id="for-update",
    ),
    pytest.param(
        "SELECT DISTINCT users.name FROM users",
        "SELECT users.name FROM users",
        id="distinct",
    ),
    pytest.param(
        "SELECT users.id FROM users UNION SELECT posts.id FROM posts",
        "SELECT users.id FROM users UNION ALL SELECT posts.id FROM posts",
        id="union-vs-union-all",
    ),
    pytest.param(
        "SELECT count(*) FROM users",
        "SELECT max(users.id) FROM users",
        id="functions",
    ),
    pytest.param(
        "SELECT t.id FROM t WHERE t.data ? 'key'",
        "SELECT t.id FROM t WHERE t.data = 'key'",
        id="jsonb-question-mark-operator",
    ),
    pytest.param("SAVEPOINT sa_savepoint_1", "RELEASE SAVEPOINT sa_savepoint_1", id="tcl-verbs"),
]


@pytest.mark.parametrize(("first", "second"), EQUAL)
def test_same_shape(first: str, second: str) -> None:
    assert normalize(first) == normalize(second)
    assert shape_of(first).fingerprint == shape_of(second).fingerprint


@pytest.mark.parametrize(("first", "second"), UNEQUAL)
def test_different_shape(first: str, second: str) -> None:
    assert shape_of(first).fingerprint != shape_of(second).fingerprint


def test_tables_are_big_enough() -> None:
    assert len(EQUAL) >= 25
    assert len(UNEQUAL) >= 25


@pytest.mark.parametrize(
    ("sql", "display_sql"),
    [
        pytest.param(
            "SELECT users.id, users.name \nFROM users \nWHERE users.id IN "
            "(%(id_1_1)s::INTEGER, %(id_1_2)s::INTEGER) AND users.name = %(name_1)s::VARCHAR",
            "SELECT users.id, users.name FROM users WHERE users.id IN (...) AND users.name = ?",
            id="select",
        ),
        pytest.param(
            "INSERT INTO users (name) VALUES ($1::VARCHAR), ($2::VARCHAR) RETURNING users.id",
            "INSERT INTO users (name) VALUES (?) RETURNING users.id",
            id="multi-row-insert",
        ),
        pytest.param(
            INSERTMANYVALUES_PSYCOPG_3,
            "INSERT INTO posts (user_id, title) SELECT p0::INTEGER, p1::VARCHAR FROM "
            "(VALUES (?, ?, ?)) AS imp_sen(p0, p1, sen_counter) ORDER BY sen_counter "
            "RETURNING posts.id, posts.id AS id__1",
            id="insertmanyvalues",
        ),
        pytest.param(
            "select count(*) AS n, coalesce(t.a, 'x') from T /* c */ where t.ts > now() - "
            "interval '1 day' and t.tags = any(array['a','b']) and t.b is not null",
            "SELECT count(*) AS n, coalesce(t.a, ?) FROM t WHERE t.ts > now() - INTERVAL ? "
            "AND t.tags = ANY (?) AND t.b IS NOT NULL",
            id="functions-and-keywords",
        ),
        pytest.param(
            "SELECT CAST(users.id AS text), users.ts::timestamp with time zone FROM users",
            "SELECT CAST(users.id AS TEXT), users.ts::TIMESTAMP WITH TIME ZONE FROM users",
            id="column-casts",
        ),
        pytest.param(
            "SELECT t.x - 1, -1, CURRENT_DATE - 1 FROM t WHERE t.y > -5 AND t.z=-2",
            "SELECT t.x - ?, ?, CURRENT_DATE - ? FROM t WHERE t.y > ? AND t.z = ?",
            id="signs-fold-into-values-only-where-unary",
        ),
        pytest.param(
            'SELECT "Users"."Name" FROM "Users"',
            'SELECT "Users"."Name" FROM "Users"',
            id="quoted-identifiers",
        ),
        pytest.param(
            "ROLLBACK TO SAVEPOINT sa_savepoint_3", "ROLLBACK TO SAVEPOINT ?", id="savepoint"
        ),
    ],
)
def test_display_sql(sql: str, display_sql: str) -> None:
    assert shape_of(sql).display_sql == display_sql
    assert normalize(sql) == display_sql


@pytest.mark.parametrize(
    ("sql", "kind"),
    [
        ("SELECT 1", "select"),
        ("select users.id from users for update", "select"),
        ("/* app */ -- note\n SELECT 1", "select"),
        ("(SELECT 1) UNION (SELECT 2)", "select"),
        ("VALUES (1), (2)", "select"),
        ("INSERT INTO users (name) VALUES ($1)", "insert"),
        ("UPDATE users SET name=$1 WHERE users.id = $2", "update"),
        ("DELETE FROM posts WHERE posts.id > $1", "delete"),
        ("WITH new AS (SELECT $1 AS name) INSERT INTO users (name) SELECT name FROM new", "insert"),
        (
            "WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r) SELECT n FROM r",
            "select",
        ),
        ("WITH gone AS (DELETE FROM t RETURNING t.id) SELECT count(*) FROM gone", "select"),
        ("WITH x AS MATERIALIZED (SELECT 1) UPDATE t SET a = 1 FROM x", "update"),
        ("WITH x AS (SELECT 1) DELETE FROM t USING x", "delete"),
        ("BEGIN", "tcl"),
        ("START TRANSACTION ISOLATION LEVEL SERIALIZABLE", "tcl"),
        ("COMMIT", "tcl"),
        ("ROLLBACK", "tcl"),
        ("SAVEPOINT sa_savepoint_1", "tcl"),
        ("RELEASE SAVEPOINT sa_savepoint_1", "tcl"),
        ("ROLLBACK TO SAVEPOINT sa_savepoint_1", "tcl"),
        ("\nCREATE TABLE users (\n\tid SERIAL NOT NULL, \n\tPRIMARY KEY (id)\n)\n\n", "ddl"),
        ("ALTER TABLE users ADD COLUMN age INTEGER", "ddl"),
        ("DROP TABLE posts", "ddl"),
        ("TRUNCATE users CASCADE", "ddl"),
        ("COMMENT ON TABLE users IS 'people'", "ddl"),
        ("SET search_path TO public", "other"),
        ("SHOW work_mem", "other"),
        ("EXPLAIN SELECT 1", "other"),
        ("VACUUM users", "other"),
        ("", "other"),
    ],
)
def test_statement_kind(sql: str, kind: str) -> None:
    assert statement_kind(sql) == kind
    assert shape_of(sql).kind == kind


def test_fingerprint_is_sixteen_hex_characters() -> None:
    shape = shape_of("SELECT users.id FROM users")

    assert isinstance(shape, Shape)
    assert re.fullmatch(r"[0-9a-f]{16}", shape.fingerprint)


def test_shape_of_is_cached_by_raw_sql() -> None:
    sql = "SELECT cache_probe.id FROM cache_probe WHERE cache_probe.id = $1"
    first = shape_of(sql)
    hits_before = shape_of.cache_info().hits

    # An equal string built separately still finds the cached shape.
    again = shape_of(
        "".join(["SELECT cache_probe.id FROM cache_probe", " WHERE cache_probe.id = $1"])
    )

    assert again is first
    assert shape_of.cache_info().hits == hits_before + 1
    assert shape_of.cache_info().maxsize == 4096


def test_statement_kind_uses_the_shape_cache() -> None:
    sql = "DELETE FROM kind_probe WHERE kind_probe.id = $1"
    shape_of(sql)
    hits_before = shape_of.cache_info().hits

    assert statement_kind(sql) == "delete"
    assert shape_of.cache_info().hits == hits_before + 1


# SQLAlchemy itself, compiled for both PostgreSQL drivers.

DIALECTS = [
    pytest.param(psycopg.dialect(), id="psycopg"),
    pytest.param(asyncpg.dialect(), id="asyncpg"),
]

metadata = MetaData()
users = Table(
    "users",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("name", String(20)),
    Column("created", DateTime(timezone=True)),
)
posts = Table(
    "posts",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("user_id", ForeignKey("users.id")),
    Column("title", String),
)


class Base(DeclarativeBase):
    pass


class User(Base):
    __tablename__ = "users"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(20))


def compiled(statement: Any, dialect: Any) -> str:
    return str(statement.compile(dialect=dialect, compile_kwargs={"render_postcompile": True}))


@pytest.mark.parametrize("dialect", DIALECTS)
def test_sqlalchemy_in_lengths_and_row_counts_share_a_shape(dialect: Any) -> None:
    in_one = compiled(select(users).where(users.c.id.in_([1])), dialect)
    in_five = compiled(select(users).where(users.c.id.in_([1, 2, 3, 4, 5])), dialect)
    one_row = compiled(insert(users).values([{"name": "a"}]), dialect)
    three_rows = compiled(insert(users).values([{"name": n} for n in "abc"]), dialect)
    tuples_one = compiled(
        select(users).where(tuple_(users.c.id, users.c.name).in_([(1, "a")])), dialect
    )
    tuples_three = compiled(
        select(users).where(tuple_(users.c.id, users.c.name).in_([(1, "a"), (2, "b"), (3, "c")])),
        dialect,
    )
    any_two = compiled(select(users).where(users.c.name == array(["a", "b"]).any_()), dialect)
    any_four = compiled(select(users).where(users.c.name == array(list("abcd")).any_()), dialect)

    assert in_one != in_five  # the point: different SQL text, one shape
    assert shape_of(in_one) == shape_of(in_five)
    assert shape_of(in_one).display_sql == (
        "SELECT users.id, users.name, users.created FROM users WHERE users.id IN (...)"
    )
    assert one_row != three_rows
    assert shape_of(one_row) == shape_of(three_rows)
    assert shape_of(one_row).display_sql == "INSERT INTO users (name) VALUES (?)"
    assert shape_of(tuples_one) == shape_of(tuples_three)
    assert shape_of(any_two) == shape_of(any_four)


def test_sqlalchemy_dialects_share_a_shape() -> None:
    user_alias = aliased(User)
    statements = [
        select(users).where(users.c.id.in_([1, 2, 3])).limit(5),
        select(users).where(users.c.name == "x").where(users.c.created > "2020-01-01"),
        select(users).where(users.c.name.is_(None)).order_by(users.c.id.desc()).offset(3),
        select(User).join(user_alias, User.id == user_alias.id).where(user_alias.name.like("a%")),
        select(posts.c.title).join(users).where(users.c.id.between(1, 9)).with_for_update(),
        insert(users).values(name="x", created=None).returning(users.c.id),
        insert(posts).values([{"user_id": 1, "title": "t"}, {"user_id": 2, "title": "u"}]),
        users.update().where(users.c.id == 5).values(name="y"),
        users.delete().where(users.c.id.in_([1, 2])),
    ]
    for statement in statements:
        via_psycopg = compiled(statement, psycopg.dialect())
        via_asyncpg = compiled(statement, asyncpg.dialect())
        assert via_psycopg != via_asyncpg, "only parameter style should differ"
        assert shape_of(via_psycopg) == shape_of(via_asyncpg), via_psycopg


def test_sqlalchemy_changes_of_meaning_change_the_shape() -> None:
    dialect = psycopg.dialect()
    variants = [
        select(users).where(users.c.id == 1),
        select(users).where(users.c.id.in_([1])),
        select(users).where(users.c.id.not_in([1])),
        select(users).where(users.c.id.is_(None)),
        select(users).where(users.c.id != 1),
        select(users).where(users.c.id == 1).order_by(users.c.id),
        select(users).where(users.c.id == 1).order_by(users.c.id.desc()),
        select(users).where(users.c.id == 1).limit(1),
        select(users).where(users.c.name == "a"),
        select(posts).where(posts.c.id == 1),
        select(users).join(posts).where(users.c.id == 1),
        select(users).outerjoin(posts).where(users.c.id == 1),
    ]

    fingerprints = {shape_of(compiled(v, dialect)).fingerprint for v in variants}

    assert len(fingerprints) == len(variants)
