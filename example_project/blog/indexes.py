"""The reference's ``OptimizedIndexes``, bound to the tables so that ``create_all`` builds them.

The ranking and search expressions live here too: an expression index serves a query only when the
query repeats the indexed expression exactly, so both sides build it from the same function.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import (
    Index,
    SQLColumnExpression,
    String,
    Table,
    false,
    func,
    literal_column,
    text,
    true,
)
from sqlalchemy.sql.elements import ColumnElement

SEARCH_CONFIG = "english"


def engagement_score(
    like_count: SQLColumnExpression[Any], view_count: SQLColumnExpression[Any]
) -> ColumnElement[Any]:
    """``like_count * 2 + view_count * 0.1``, with the constants inlined.

    Bound parameters (what ``* 2`` would compile to) make the expression differ from the indexed
    one, so PostgreSQL could not use the index to order by it.
    """
    return like_count * literal_column("2") + view_count * literal_column("0.1")


def search_document(
    title: SQLColumnExpression[Any], content: SQLColumnExpression[Any]
) -> ColumnElement[Any]:
    """A post's full-text vector: ``to_tsvector('english'::regconfig, title || ' ' || content)``.

    The two-argument ``to_tsvector`` is immutable, which an index expression must be.
    """
    return func.to_tsvector(
        text(f"'{SEARCH_CONFIG}'::regconfig"), title + literal_column("' '", String) + content
    )


def search_query(terms: str) -> ColumnElement[Any]:
    """``plainto_tsquery`` of user-typed terms (bound as a parameter), in English."""
    return func.plainto_tsquery(text(f"'{SEARCH_CONFIG}'::regconfig"), terms)


def search_matches(
    title: SQLColumnExpression[Any], content: SQLColumnExpression[Any], terms: str
) -> ColumnElement[bool]:
    """``search_document(...) @@ search_query(terms)``: what idx_posts_search_gin serves."""
    return search_document(title, content).bool_op("@@")(search_query(terms))


class OptimizedIndexes:
    """The reference's index set, corrected.

    The reference named columns by string in free-standing ``Index`` objects: such an index belongs
    to no table, so ``create_all`` never creates it. Building it from ``Table`` columns attaches
    it to the table's metadata.
    """

    @staticmethod
    def create_advanced_indexes(posts: Table, users: Table) -> list[Index]:
        """Create the indexes on ``posts`` and ``users`` (once, when the models are defined)."""
        return [
            # Composite, for a feed: one author's live posts, newest first.
            Index(
                "idx_posts_author_published_created",
                posts.c.author_id,
                posts.c.is_published,
                posts.c.created_at,
                postgresql_where=posts.c.is_deleted == false(),
            ),
            # Partial, for the front page: the newest published posts.
            Index(
                "idx_posts_published_only",
                posts.c.created_at,
                postgresql_where=(posts.c.is_published == true()) & (posts.c.is_deleted == false()),
            ),
            # GIN. The reference indexed ``posts.tags``, but tags are a many-to-many table
            # (post_tags) and posts has no such column, so the DDL failed; full-text search over
            # title and content is what a GIN index on posts is for.
            Index(
                "idx_posts_search_gin",
                search_document(posts.c.title, posts.c.content),
                postgresql_using="gin",
            ),
            # Expression, for "popular posts" ordered by engagement.
            Index(
                "idx_posts_engagement_score",
                engagement_score(posts.c.like_count, posts.c.view_count),
                postgresql_where=posts.c.is_published == true(),
            ),
            # Composite, for listing users by status.
            Index(
                "idx_users_search_composite",
                users.c.status,
                users.c.is_active,
                users.c.created_at,
                postgresql_where=users.c.is_deleted == false(),
            ),
        ]
