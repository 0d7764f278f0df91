"""The plan scenario suite: a schema, test-sized data, and labelled statements.

Each case says which findings the plan checks must report for it, as ``(kind, table, columns)``,
or none (a clean plan). The suite runs them on every PostgreSQL version it has and computes
precision and recall over these labels.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

# {collation} is a collation that is not C (C.utf8 from libc, or an ICU one): under it a plain
# btree cannot serve LIKE 'x%', text_pattern_ops can. The cluster itself is initdb --no-locale.
SCHEMA = """
CREATE TABLE countries (id serial PRIMARY KEY, code text NOT NULL UNIQUE, name text NOT NULL);
CREATE TABLE authors (
    id serial PRIMARY KEY,
    name text NOT NULL,
    email text NOT NULL,
    country_id int REFERENCES countries (id),
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX ix_authors_name ON authors (name);
CREATE INDEX ix_authors_lower_email ON authors (lower(email));
CREATE TABLE books (
    id serial PRIMARY KEY,
    author_id int NOT NULL REFERENCES authors (id),
    editor_id int REFERENCES authors (id),
    title varchar(200) NOT NULL,
    isbn text,
    slug text COLLATE "{collation}",
    code text COLLATE "{collation}",
    price numeric NOT NULL DEFAULT 0,
    published boolean NOT NULL DEFAULT false,
    status text NOT NULL DEFAULT 'draft',
    shelf int,
    row_no int,
    data jsonb NOT NULL DEFAULT '{{}}',
    meta jsonb NOT NULL DEFAULT '{{}}',
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX ix_books_author_id ON books (author_id);
CREATE INDEX ix_books_title ON books (title);
CREATE INDEX ix_books_slug ON books (slug);
CREATE INDEX ix_books_code_pattern ON books (code text_pattern_ops);
CREATE INDEX ix_books_data ON books USING gin (data);
CREATE INDEX ix_books_created_at ON books (created_at);
CREATE INDEX ix_books_shelf_row ON books (shelf, row_no);
CREATE INDEX ix_books_status_published ON books (status) WHERE published;
"""

# Inserted inside each run's transaction, as a test inserts its data: never committed, never
# analysed. Small is a test's handful of rows; large is what a table looks like to the planner
# late in a long suite (pages written by earlier, rolled-back tests count for its estimates).
SIZES = {"small": {"authors": 6, "books": 12}, "large": {"authors": 300, "books": 3000}}
DATA = """
INSERT INTO countries (code, name) VALUES ('FR', 'France'), ('DE', 'Germany'), ('IT', 'Italy');
INSERT INTO authors (name, email, country_id)
    SELECT 'author ' || g, 'A' || g || '@example.org', (SELECT min(id) FROM countries) + g % 3
    FROM generate_series(1, {authors}) g;
INSERT INTO books (author_id, editor_id, title, isbn, slug, code, price, published, status,
                   shelf, row_no, data, meta)
    SELECT first.id + g % {authors}, first.id + g % 4, 'Title ' || g, 'isbn-' || g, 'slug-' || g,
           'code-' || g, g, g % 2 = 0, CASE WHEN g % 3 = 0 THEN 'sold' ELSE 'draft' END, g % 3,
           g, jsonb_build_object('k', g % 2), jsonb_build_object('k', g % 2)
    FROM generate_series(1, {books}) g, (SELECT min(id) AS id FROM authors) AS first;
"""

SEQ = "seq_scan"
WALK = "index_walk"
SORT = "sort_without_index"


@dataclass(frozen=True)
class Case:
    """One labelled statement: SQL with :name parameters, its values, the expected findings."""

    id: str
    sql: str
    params: dict[str, Any] = field(default_factory=dict)
    expected: frozenset[tuple[str, str, tuple[str, ...]]] = frozenset()
    expanding: tuple[str, ...] = ()


def case(
    name: str, sql: str, /, *expected: tuple[str, str, tuple[str, ...]], **params: Any
) -> Case:
    expanding = tuple(key for key, value in params.items() if isinstance(value, list))
    return Case(name, sql, params, frozenset(expected), expanding)


CASES: tuple[Case, ...] = (
    # equality, indexed or not
    case("eq_indexed", "SELECT * FROM books WHERE title = :t", t="Title 3"),
    case("eq_unindexed", "SELECT * FROM books WHERE isbn = :i", (SEQ, "books", ("isbn",)), i="x"),
    case(
        "eq_unindexed_with_flag",
        "SELECT * FROM books WHERE isbn = :i AND NOT published",
        (SEQ, "books", ("isbn",)),
        i="x",
    ),
    case("primary_key", "SELECT * FROM books WHERE id = :id", id=3),
    case("in_list_indexed", "SELECT * FROM books WHERE title IN :v", v=["Title 1", "Title 2"]),
    case(
        "in_list_unindexed",
        "SELECT * FROM books WHERE isbn IN :v",
        (SEQ, "books", ("isbn",)),
        v=["isbn-1", "isbn-2"],
    ),
    case("is_null_unindexed", "SELECT * FROM books WHERE isbn IS NULL", (SEQ, "books", ("isbn",))),
    case("range_indexed", "SELECT * FROM books WHERE created_at > now() - interval '1 day'"),
    case("not_sargable", "SELECT * FROM books WHERE price <> :p", p=3),
    case("flag_only", "SELECT * FROM books WHERE NOT published"),
    # foreign keys: filters and joins, with and without an index
    case("fk_filter_indexed", "SELECT * FROM books WHERE author_id = :a", a=2),
    case(
        "fk_filter_unindexed",
        "SELECT * FROM books WHERE editor_id = :e",
        (SEQ, "books", ("editor_id",)),
        e=2,
    ),
    case(
        "fk_join_indexed",
        "SELECT b.* FROM books b JOIN authors a ON b.author_id = a.id WHERE a.name = :n",
        n="author 1",
    ),
    case(
        "fk_join_unindexed",
        "SELECT b.* FROM books b JOIN authors a ON b.editor_id = a.id WHERE a.name = :n",
        (SEQ, "books", ("editor_id",)),
        n="author 1",
    ),
    case(
        "fk_in_subquery_unindexed",
        "SELECT * FROM books WHERE editor_id IN (SELECT id FROM authors WHERE name = :n)",
        (SEQ, "books", ("editor_id",)),
        n="author 1",
    ),
    case("full_join", "SELECT b.title, a.name FROM books b JOIN authors a ON a.id = b.author_id"),
    case(
        "exists_unfiltered",
        "SELECT * FROM authors a WHERE EXISTS (SELECT 1 FROM books b WHERE b.editor_id = a.id)",
    ),
    # LIKE: prefix under the C collation, under another collation, and anywhere in the text
    case("like_prefix_indexed", "SELECT * FROM books WHERE title LIKE :p", p="Title 1%"),
    case(
        "like_prefix_unindexed",
        "SELECT * FROM books WHERE isbn LIKE :p",
        (SEQ, "books", ("isbn",)),
        p="isbn-1%",
    ),
    case(
        "like_prefix_other_collation_btree",
        "SELECT * FROM books WHERE slug LIKE :p",
        (SEQ, "books", ("slug",)),
        p="slug-1%",
    ),
    case("like_prefix_pattern_ops", "SELECT * FROM books WHERE code LIKE :p", p="code-1%"),
    case(
        "like_contains",
        "SELECT * FROM books WHERE title LIKE :p",
        (SEQ, "books", ("title",)),
        p="%itle 1%",
    ),
    case(
        "ilike_contains",
        "SELECT * FROM books WHERE title ILIKE :p",
        (SEQ, "books", ("title",)),
        p="%TITLE%",
    ),
    # functional indexes
    case("lower_indexed", "SELECT * FROM authors WHERE lower(email) = :e", e="a1@example.org"),
    case(
        "lower_unindexed",
        "SELECT * FROM authors WHERE lower(name) = :n",
        (SEQ, "authors", ("lower(name)",)),
        n="author 1",
    ),
    # partial indexes
    case("partial_match", "SELECT * FROM books WHERE status = :s AND published", s="sold"),
    case(
        "partial_miss",
        "SELECT * FROM books WHERE status = :s",
        (SEQ, "books", ("status",)),
        s="sold",
    ),
    # composite indexes
    case("composite_prefix", "SELECT * FROM books WHERE shelf = :s", s=1),
    case("composite_both", "SELECT * FROM books WHERE shelf = :s AND row_no = :r", s=1, r=4),
    case(
        "composite_second_only",
        "SELECT * FROM books WHERE row_no = :r",
        (WALK, "books", ("row_no",)),
        r=4,
    ),
    # ORDER BY ... LIMIT
    case("order_limit_indexed", "SELECT * FROM books ORDER BY created_at DESC LIMIT 5"),
    case(
        "order_limit_unindexed",
        "SELECT * FROM books ORDER BY updated_at DESC LIMIT 5",
        (SORT, "books", ("updated_at",)),
    ),
    case("order_without_limit", "SELECT * FROM books ORDER BY isbn"),
    case(
        "order_limit_after_index_condition",
        "SELECT * FROM books WHERE author_id = :a ORDER BY updated_at DESC LIMIT 3",
        a=2,
    ),
    case(
        "index_walk_with_filter",
        "SELECT * FROM books WHERE title ILIKE :p ORDER BY created_at DESC LIMIT 3",
        (WALK, "books", ("title",)),
        p="%title%",
    ),
    case(
        "order_limit_over_join_unindexed",
        "SELECT b.title, a.name FROM books b JOIN authors a ON a.id = b.author_id "
        "ORDER BY b.updated_at DESC LIMIT 3",
        (SORT, "books", ("updated_at",)),
    ),
    case(
        "order_limit_over_join_indexed",
        "SELECT b.title, a.name FROM books b JOIN authors a ON a.id = b.author_id "
        "ORDER BY b.created_at DESC LIMIT 3",
    ),
    case(
        "order_limit_over_narrowing_join",
        "SELECT b.title FROM books b JOIN authors a ON a.id = b.author_id WHERE a.name = :n "
        "ORDER BY b.updated_at DESC LIMIT 3",
        n="author 1",
    ),
    # JSONB containment
    case("jsonb_gin", "SELECT * FROM books WHERE data @> CAST(:j AS jsonb)", j='{"k": 1}'),
    case(
        "jsonb_no_gin",
        "SELECT * FROM books WHERE meta @> CAST(:j AS jsonb)",
        (SEQ, "books", ("meta",)),
        j='{"k": 1}',
    ),
    # reads that are meant to be full
    case("full_read", "SELECT * FROM books"),
    case("count_all", "SELECT count(*) FROM books"),
    case("group_all", "SELECT author_id, count(*) FROM books GROUP BY author_id"),
    case(
        "count_filtered_unindexed",
        "SELECT count(*) FROM books WHERE isbn = :i",
        (SEQ, "books", ("isbn",)),
        i="x",
    ),
    # small lookup tables: no exception for size (test tables are all small)
    case("lookup_indexed", "SELECT * FROM countries WHERE code = :c", c="FR"),
    case(
        "lookup_unindexed",
        "SELECT * FROM countries WHERE name = :n",
        (SEQ, "countries", ("name",)),
        n="France",
    ),
    case(
        "lookup_join_unindexed_fk",
        "SELECT a.* FROM authors a JOIN countries c ON a.country_id = c.id WHERE c.code = :c",
        (SEQ, "authors", ("country_id",)),
        c="FR",
    ),
    # OR
    case("or_indexed", "SELECT * FROM books WHERE title = :t OR author_id = :a", t="x", a=2),
    case(
        "or_one_unindexed",
        "SELECT * FROM books WHERE title = :t OR isbn = :i",
        (SEQ, "books", ("title", "isbn")),
        t="x",
        i="y",
    ),
    # shapes the ORM emits: a LIMIT in a subquery (joinedload), IN batches (selectinload),
    # a LATERAL top-N, aggregates over joins
    case(
        "joinedload_limit_unindexed_order",
        "SELECT anon_1.*, authors_1.name FROM (SELECT books.* FROM books "
        "ORDER BY books.updated_at DESC LIMIT :n) AS anon_1 LEFT OUTER JOIN authors AS authors_1 "
        "ON authors_1.id = anon_1.author_id ORDER BY anon_1.updated_at DESC",
        (SORT, "books", ("updated_at",)),
        n=5,
    ),
    case(
        "selectin_batch_indexed",
        "SELECT books.author_id, books.id, books.title FROM books WHERE books.author_id IN :v",
        v=[1, 2, 3],
    ),
    case(
        "selectin_batch_unindexed",
        "SELECT books.editor_id, books.id, books.title FROM books WHERE books.editor_id IN :v",
        (SEQ, "books", ("editor_id",)),
        v=[1, 2, 3],
    ),
    case(
        "lateral_latest_indexed",
        "SELECT a.id, latest.title FROM authors a JOIN LATERAL (SELECT b.title FROM books b "
        "WHERE b.author_id = a.id ORDER BY b.author_id, b.id DESC LIMIT 2) latest ON true "
        "WHERE a.id IN :v",
        v=[1, 2],
    ),
    case(
        "stats_join_unindexed",
        "SELECT a.id, count(b.id) FROM authors a LEFT JOIN books b ON b.editor_id = a.id "
        "WHERE a.id IN :v GROUP BY a.id",
        (SEQ, "books", ("editor_id",)),
        v=[1, 2],
    ),
    case(
        "exists_filtered_unindexed",
        "SELECT * FROM authors a WHERE a.name = :n "
        "AND EXISTS (SELECT 1 FROM books b WHERE b.editor_id = a.id)",
        (SEQ, "books", ("editor_id",)),
        n="author 1",
    ),
    case(
        "index_then_residual_filter",
        "SELECT * FROM books WHERE author_id = :a AND isbn = :i",
        a=2,
        i="isbn-2",
    ),
    case(
        "order_by_expression_unindexed",
        "SELECT * FROM books ORDER BY lower(title) LIMIT 3",
        (SORT, "books", ("lower(title)",)),
    ),
    # writes and CTEs
    case(
        "update_unindexed",
        "UPDATE books SET price = price + 1 WHERE isbn = :i",
        (SEQ, "books", ("isbn",)),
        i="isbn-2",
    ),
    case(
        "update_primary_key",
        "UPDATE books SET price = :p WHERE id = :id RETURNING id",
        p=1,
        id=2,
    ),
    case(
        "delete_unindexed",
        "DELETE FROM books WHERE editor_id = :e",
        (SEQ, "books", ("editor_id",)),
        e=99,
    ),
    case("delete_indexed", "DELETE FROM books WHERE author_id = :a", a=99),
    case(
        "insert_select_unindexed",
        "INSERT INTO countries (code, name) SELECT isbn, title FROM books WHERE isbn = :i",
        (SEQ, "books", ("isbn",)),
        i="nope",
    ),
    case("cte_indexed", "WITH t AS (SELECT * FROM books WHERE title = :t) SELECT * FROM t", t="x"),
)
