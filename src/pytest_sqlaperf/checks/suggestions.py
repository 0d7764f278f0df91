"""The index to create for a plan finding: ``CREATE INDEX`` and SQLAlchemy's ``Index(...)``."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from .predicates import EQUALITY, FLAG, GIN, JOIN, NULL, OR, PREFIX, RANGE, TRIGRAM, Conjunct

_PLAIN_NAME = re.compile(r"[a-z_][a-z0-9_$]*")
_SIMPLE_CALL = re.compile(r"([a-z_][a-z0-9_]*)\(([a-z_][a-z0-9_$]*)\)")
# Words that must be quoted as column or table names (PostgreSQL's reserved keywords).
_RESERVED = frozenset(
    (
        "all",
        "analyse",
        "analyze",
        "and",
        "any",
        "array",
        "as",
        "asc",
        "asymmetric",
        "both",
        "case",
        "cast",
        "check",
        "collate",
        "column",
        "constraint",
        "create",
        "current_catalog",
        "current_date",
        "current_role",
        "current_time",
        "current_timestamp",
        "current_user",
        "default",
        "deferrable",
        "desc",
        "distinct",
        "do",
        "else",
        "end",
        "except",
        "false",
        "fetch",
        "for",
        "foreign",
        "from",
        "grant",
        "group",
        "having",
        "in",
        "initially",
        "intersect",
        "into",
        "lateral",
        "leading",
        "limit",
        "localtime",
        "localtimestamp",
        "not",
        "null",
        "offset",
        "on",
        "only",
        "or",
        "order",
        "placing",
        "primary",
        "references",
        "returning",
        "select",
        "session_user",
        "some",
        "symmetric",
        "system_user",
        "table",
        "then",
        "to",
        "trailing",
        "true",
        "union",
        "unique",
        "user",
        "using",
        "variadic",
        "when",
        "where",
        "window",
        "with",
    )
)
_MAX_NAME = 63
_WORD = re.compile(r"[a-z_][a-z0-9_]*")
_VALUE = re.compile(r"'|(?<![a-z_0-9])\d")
# Type names in casts, left out of index names made from expressions.
_TYPE_WORDS = frozenset(
    (
        "text",
        "varchar",
        "character",
        "varying",
        "bpchar",
        "double",
        "precision",
        "numeric",
        "integer",
        "bigint",
        "smallint",
        "real",
        "boolean",
        "date",
        "time",
        "timestamp",
        "timestamptz",
        "with",
        "without",
        "zone",
        "interval",
        "json",
        "jsonb",
    )
)

IsCCollation = Callable[[str], bool]
"""Whether a column (by name) of the table sorts bytewise, so a plain btree serves LIKE 'x%'."""
HasIndex = Callable[[str], bool]
"""Whether an index of the table already leads with a column or expression."""


@dataclass(frozen=True)
class IndexKey:
    """One key of an index: a column or an expression, its order and operator class."""

    key: str
    is_expression: bool = False
    descending: bool = False
    opclass: str | None = None


@dataclass(frozen=True)
class IndexSuggestion:
    """Indexes to create, as SQL and as SQLAlchemy ``Index`` objects, with notes."""

    statements: tuple[str, ...]
    sqlalchemy: tuple[str, ...]
    notes: tuple[str, ...] = ()

    def text(self) -> str:
        """The fix as printed: the SQL, then the SQLAlchemy form, then notes."""
        lines = [*self.statements]
        lines += [f"SQLAlchemy: {form}" for form in self.sqlalchemy]
        lines += list(self.notes)
        return "\n".join(lines)


def quote(name: str) -> str:
    if _PLAIN_NAME.fullmatch(name) and name not in _RESERVED:
        return name
    return '"' + name.replace('"', '""') + '"'


def qualified_table(schema: str, table: str) -> str:
    if schema in ("", "public") or schema.startswith("pg_temp"):
        return quote(table)
    return f"{quote(schema)}.{quote(table)}"


def _table_variable(table: str) -> str:
    return table if table.isidentifier() else f"metadata.tables[{_py(table)}]"


def _column_reference(table: str, column: str) -> str:
    variable = _table_variable(table)
    return f"{variable}.c.{column}" if column.isidentifier() else f"{variable}.c[{_py(column)}]"


def _py(text: str) -> str:
    """A Python string literal in double quotes, as the project's code is formatted."""
    return json.dumps(text)


def _name_part(key: IndexKey) -> str:
    if not key.is_expression:
        return re.sub(r"[^a-z0-9]+", "_", key.key.lower()).strip("_") or "col"
    words = [w for w in _WORD.findall(key.key.lower()) if w not in _TYPE_WORDS]
    return "_".join(dict.fromkeys(words)) or "expr"


def holds_value(key: IndexKey) -> bool:
    """Whether an expression key holds a literal: a bound value, as plans print them."""
    return key.is_expression and bool(_VALUE.search(key.key))


def _index_name(table: str, keys: Sequence[IndexKey], suffix: str = "") -> str:
    name = "_".join(["ix", table.lower(), *(_name_part(key) for key in keys)]) + suffix
    return re.sub(r"[^a-z0-9_]+", "_", name)[:_MAX_NAME]


def _sql_key(key: IndexKey) -> str:
    text = f"({key.key})" if key.is_expression else quote(key.key)
    if key.opclass:
        text += f" {key.opclass}"
    if key.descending:
        text += " DESC"
    return text


def _sqlalchemy_key(table: str, key: IndexKey) -> str:
    if not key.is_expression:
        text = _column_reference(table, key.key)
    else:
        call = _SIMPLE_CALL.fullmatch(key.key)
        if call is not None:
            text = f"func.{call.group(1)}({_column_reference(table, call.group(2))})"
        else:
            text = f"text({_py(key.key)})"
    return f"{text}.desc()" if key.descending else text


def build(
    schema: str,
    table: str,
    keys: Sequence[IndexKey],
    *,
    using: str | None = None,
    where: str | None = None,
    suffix: str = "",
) -> tuple[str, str]:
    """One index as ``CREATE INDEX ...;`` and as ``Index(...)``."""
    name = _index_name(table, keys, suffix)
    method = f" USING {using}" if using else ""
    partial = f" WHERE {where}" if where else ""
    sql = (
        f"CREATE INDEX {name} ON {qualified_table(schema, table)}{method} "
        f"({', '.join(_sql_key(key) for key in keys)}){partial};"
    )
    arguments = [_py(name), *(_sqlalchemy_key(table, key) for key in keys)]
    if using:
        arguments.append(f"postgresql_using={_py(using)}")
    ops = {key.key: key.opclass for key in keys if key.opclass and not key.is_expression}
    if ops:
        arguments.append(f"postgresql_ops={json.dumps(ops)}")
    if where:
        arguments.append(f"postgresql_where=text({_py(where)})")
    return sql, f"Index({', '.join(arguments)})"


def column_index(schema: str, table: str, columns: Sequence[str]) -> IndexSuggestion:
    """A plain btree on ``columns``, e.g. for a foreign key."""
    sql, form = build(schema, table, [IndexKey(column) for column in columns])
    return IndexSuggestion((sql,), (form,))


def _key_of(conjunct: Conjunct, is_c: IsCCollation) -> IndexKey:
    opclass = None
    if conjunct.kind == PREFIX and conjunct.column is not None and not is_c(conjunct.column):
        opclass = "text_pattern_ops"
    return IndexKey(conjunct.key or "", is_expression=conjunct.column is None, opclass=opclass)


def suggest(
    schema: str,
    table: str,
    parts: Sequence[Conjunct],
    is_c: IsCCollation,
    order: Sequence[IndexKey] = (),
    has_index: HasIndex = lambda key: False,
) -> IndexSuggestion | None:
    """The indexes that would serve ``parts`` (conjuncts of one table), then ``order``.

    Equalities (and joins, IS NULL) lead a btree, then one range or prefix column, then the
    ORDER BY keys; boolean conditions become the WHERE of a partial index. Trigram and GIN
    conditions get an index each; so does each side of an OR that no index leads with.
    """
    statements: list[str] = []
    forms: list[str] = []
    notes: list[str] = []

    def add(pair: tuple[str, str]) -> None:
        if pair[0] not in statements:
            statements.append(pair[0])
            forms.append(pair[1])

    leading = [part for part in parts if part.kind in (EQUALITY, JOIN, NULL) and part.key]
    ranged = [part for part in parts if part.kind in (RANGE, PREFIX) and part.key]
    keys: list[IndexKey] = []
    for part in [*leading, *ranged[:1]]:
        key = _key_of(part, is_c)
        if all(existing.key != key.key for existing in keys):
            keys.append(key)
    keys += [key for key in order if all(existing.key != key.key for existing in keys)]
    flags = [part for part in parts if part.kind == FLAG]
    if keys and any(holds_value(key) for key in keys):
        # An index on an expression with a bound value in it matches no statement that binds
        # the value: the fix is in the query (the constant inlined, or an indexed expression).
        notes.append(
            "no index suggested: the expression holds a bound value; write the constant into "
            "the SQL (literal_column) or use an expression that an index already holds"
        )
    elif keys:
        where = " AND ".join(part.text for part in flags) or None
        add(build(schema, table, keys, where=where))
    for part in parts:
        disjuncts = part.parts if part.kind == OR else (part,)
        for disjunct in disjuncts:
            if disjunct.kind == OR or not disjunct.key:
                continue
            key = _key_of(disjunct, is_c)
            if disjunct.kind == TRIGRAM:
                trigram = IndexKey(key.key, key.is_expression, opclass="gin_trgm_ops")
                add(build(schema, table, [trigram], using="gin", suffix="_trgm"))
                note = "trigram indexes need the pg_trgm extension: CREATE EXTENSION pg_trgm;"
                if note not in notes:
                    notes.append(note)
            elif disjunct.kind == GIN:
                add(build(schema, table, [key], using="gin"))
            elif part.kind == OR and not has_index(key.key):
                add(build(schema, table, [key]))
    if not statements and not notes:
        return None
    return IndexSuggestion(tuple(statements), tuple(forms), tuple(notes))
