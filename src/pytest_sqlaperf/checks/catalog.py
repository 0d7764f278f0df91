"""Catalog checks and facts: foreign keys without an index, unused indexes, the indexes and
collations the plan checks need to judge a plan (no pytest here)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..records import FindingRecord, finding_record
from .findings import Finding
from .suggestions import IndexSuggestion, column_index

if TYPE_CHECKING:
    from sqlalchemy.engine import URL

Query = Callable[[str], Sequence[Sequence[Any]]]
"""Runs one catalog query (no parameters) and returns its rows as sequences."""

_USER_SCHEMAS = (
    "n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\\_toast%'"
)

INDEXES_SQL = f"""
SELECT n.nspname, t.relname, i.relname, am.amname, x.indisunique, x.indpred IS NOT NULL,
       ARRAY(SELECT pg_get_indexdef(x.indexrelid, k, true)
             FROM generate_series(1, x.indnkeyatts) AS k ORDER BY k),
       ARRAY(SELECT opc.opcname
             FROM unnest(x.indclass::oid[]) WITH ORDINALITY AS c(oid, k)
             JOIN pg_opclass opc ON opc.oid = c.oid ORDER BY c.k),
       ARRAY(SELECT (o & 1) = 1
             FROM unnest(string_to_array(x.indoption::text, ' ')::int2[])
                  WITH ORDINALITY AS d(o, k)
             ORDER BY d.k)
FROM pg_index x
JOIN pg_class i ON i.oid = x.indexrelid
JOIN pg_class t ON t.oid = x.indrelid
JOIN pg_namespace n ON n.oid = t.relnamespace
JOIN pg_am am ON am.oid = i.relam
WHERE {_USER_SCHEMAS}
"""

# Columns whose collation is not the database default, and the default itself: a btree serves
# LIKE 'x%' only under a C collation, otherwise it needs text_pattern_ops.
COLLATIONS_SQL = f"""
SELECT n.nspname, c.relname, a.attname, co.collprovider::text, coalesce(co.collcollate, '')
FROM pg_attribute a
JOIN pg_class c ON c.oid = a.attrelid
JOIN pg_namespace n ON n.oid = c.relnamespace
JOIN pg_collation co ON co.oid = a.attcollation
WHERE a.attnum > 0 AND NOT a.attisdropped AND co.collname <> 'default'
  AND c.relkind IN ('r', 'p', 'm', 'f') AND {_USER_SCHEMAS}
UNION ALL
SELECT '', '', '', 'c', datcollate FROM pg_database WHERE datname = current_database()
"""

# A foreign key is served by an index whose leading key columns are the key's columns (in any
# order). Partial indexes do not count: they cannot serve every lookup (ON DELETE checks).
UNINDEXED_FOREIGN_KEYS_SQL = f"""
SELECT n.nspname, cl.relname, co.conname,
       ARRAY(SELECT a.attname FROM unnest(co.conkey) WITH ORDINALITY AS k(attnum, ord)
             JOIN pg_attribute a ON a.attrelid = co.conrelid AND a.attnum = k.attnum
             ORDER BY k.ord),
       fn.nspname, fc.relname
FROM pg_constraint co
JOIN pg_class cl ON cl.oid = co.conrelid
JOIN pg_namespace n ON n.oid = cl.relnamespace
JOIN pg_class fc ON fc.oid = co.confrelid
JOIN pg_namespace fn ON fn.oid = fc.relnamespace
WHERE co.contype = 'f' AND {_USER_SCHEMAS}
  AND NOT EXISTS (
    SELECT 1 FROM pg_index x
    WHERE x.indrelid = co.conrelid AND x.indpred IS NULL
      AND (string_to_array(x.indkey::text, ' ')::int2[])
          [1:least(cardinality(co.conkey), x.indnkeyatts)] @> co.conkey
  )
ORDER BY 1, 2, 3
"""

# Index use since the database was created (it is a fresh clone of the template). Indexes that
# enforce something (primary keys, unique, exclusion) are used by their existence, not scans.
INDEX_USE_SQL = """
SELECT s.schemaname, s.relname, s.indexrelname, s.idx_scan,
       coalesce(t.seq_scan, 0) + coalesce(t.idx_scan, 0), pg_get_indexdef(s.indexrelid)
FROM pg_stat_user_indexes s
JOIN pg_index x ON x.indexrelid = s.indexrelid
JOIN pg_stat_user_tables t ON t.relid = s.relid
WHERE NOT x.indisunique AND NOT x.indisprimary
  AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = s.indexrelid)
ORDER BY 1, 2, 3
"""


@dataclass(frozen=True)
class IndexInfo:
    """One index: its table, access method and key columns (names, or expressions as text),
    with each key's operator class and direction."""

    schema: str
    table: str
    name: str
    method: str
    unique: bool
    partial: bool
    columns: tuple[str, ...]
    opclasses: tuple[str, ...] = ()
    descending: tuple[bool, ...] = ()


@dataclass
class Catalog:
    """What the plan checks need to know of one database: its indexes and collations."""

    indexes: dict[tuple[str, str], IndexInfo] = field(default_factory=dict)
    """By (schema, index name): an index lives in its table's schema."""
    column_collations: dict[tuple[str, str, str], bool] = field(default_factory=dict)
    """(schema, table, column) -> whether the column's own collation is C-like."""
    default_is_c: bool = True
    unindexed_foreign_keys: list[ForeignKeyGap] = field(default_factory=list)

    def index(self, schema: str, name: str) -> IndexInfo | None:
        return self.indexes.get((schema, name))

    def is_c_collation(self, schema: str, table: str, column: str) -> bool:
        """Whether the column sorts bytewise (C), so that a plain btree serves LIKE 'x%'."""
        return self.column_collations.get((schema, table, column), self.default_is_c)


@dataclass(frozen=True)
class ForeignKeyGap:
    """A foreign key whose columns no index leads with."""

    schema: str
    table: str
    constraint: str
    columns: tuple[str, ...]
    referenced_schema: str
    referenced_table: str


def _is_c_like(provider: str, collate: str) -> bool:
    # libc "C"/"POSIX" sort bytewise; so do the builtin provider's collations (PostgreSQL 17+).
    # ICU collations and libc "C.UTF-8" are not treated as C by the planner's LIKE optimisation.
    return provider == "b" or (provider == "c" and collate in ("C", "POSIX"))


def _unquoted(name: str) -> str:
    # pg_get_indexdef quotes a column name that needs it; plans name the column bare.
    if len(name) > 1 and name[0] == name[-1] == '"':
        return name[1:-1].replace('""', '"')
    return name


def read_indexes(query: Query) -> dict[tuple[str, str], IndexInfo]:
    """Every index of the user's schemas (temporary schemas included)."""
    indexes = {}
    for schema, table, name, method, unique, partial, columns, opclasses, descending in query(
        INDEXES_SQL
    ):
        indexes[(schema, name)] = IndexInfo(
            schema,
            table,
            name,
            method,
            bool(unique),
            bool(partial),
            tuple(_unquoted(column) for column in columns or ()),
            tuple(opclasses or ()),
            tuple(bool(flag) for flag in descending or ()),
        )
    return indexes


def read_catalog(query: Query) -> Catalog:
    """The indexes, collations and unindexed foreign keys of the connection's database."""
    catalog = Catalog(indexes=read_indexes(query))
    for schema, table, column, provider, collate in query(COLLATIONS_SQL):
        if not table:
            catalog.default_is_c = _is_c_like("c", collate)
        else:
            catalog.column_collations[(schema, table, column)] = _is_c_like(provider, collate)
    catalog.unindexed_foreign_keys = [
        ForeignKeyGap(schema, table, constraint, tuple(columns), ref_schema, ref_table)
        for schema, table, constraint, columns, ref_schema, ref_table in query(
            UNINDEXED_FOREIGN_KEYS_SQL
        )
    ]
    return catalog


def index_use(query: Query) -> list[dict[str, Any]]:
    """Scans per non-unique index since the database was made, as plain data."""
    return [
        {
            "schema": schema,
            "table": table,
            "index": index,
            "scans": int(scans or 0),
            "table_reads": int(reads or 0),
            "definition": definition,
        }
        for schema, table, index, scans, reads, definition in query(INDEX_USE_SQL)
    ]


def unused_indexes(uses: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """The indexes no test used, from the index use of one or more databases (xdist workers)."""
    merged: dict[tuple[str, str, str], dict[str, Any]] = {}
    for use in uses:
        key = (use["schema"], use["table"], use["index"])
        entry = merged.get(key)
        if entry is None:
            merged[key] = dict(use)
        else:
            entry["scans"] += use["scans"]
            entry["table_reads"] += use["table_reads"]
    return [entry for _, entry in sorted(merged.items()) if entry["scans"] == 0]


def foreign_key_findings(gaps: Iterable[ForeignKeyGap]) -> list[Finding]:
    """One finding per foreign key without an index, with the index to create."""
    findings = []
    for gap in gaps:
        suggestion: IndexSuggestion = column_index(gap.schema, gap.table, gap.columns)
        referenced = _qualified(gap.referenced_schema, gap.referenced_table)
        table = _qualified(gap.schema, gap.table)
        columns = ", ".join(gap.columns)
        findings.append(
            Finding(
                kind="unindexed_foreign_key",
                message=(
                    f"foreign key {gap.constraint} ({table}.{columns} -> {referenced}) has no "
                    f"index: joins from {referenced} to {table}, and every delete or key update "
                    f"in {referenced}, read {table} in full"
                ),
                evidence=(f"constraint {gap.constraint} on {table} ({columns})",),
                fix=suggestion.text(),
                target=f"{table}.{columns}" if len(gap.columns) == 1 else table,
            )
        )
    return findings


def _qualified(schema: str, table: str) -> str:
    return (
        table if schema in ("public", "") or schema.startswith("pg_temp") else f"{schema}.{table}"
    )


OPEN_CONNECTIONS_WAIT = 3.0
"""Seconds to wait at session end for the tests' connections to close: a backend reports its
index use when it exits (or up to 10 s after going idle, PostgreSQL 15+)."""


def session_results(
    catalogs: Mapping[str, Catalog],
    urls: Mapping[str, URL],
    *,
    database_prefix: str,
    rootdir: str,
) -> tuple[list[FindingRecord], list[dict[str, Any]], list[str]]:
    """At session end: foreign-key findings of every database EXPLAIN ran on, and the index
    use of the run's own databases (those named ``database_prefix...``), with notes on what
    could not be read. Plain data, so that xdist workers can send it to the controller."""
    findings: list[FindingRecord] = []
    for catalog in catalogs.values():
        for finding in foreign_key_findings(catalog.unindexed_foreign_keys):
            record = finding_record(finding, rootdir)
            if record not in findings:
                findings.append(record)
    uses: list[dict[str, Any]] = []
    notes: list[str] = []
    for key, url in urls.items():
        if not (url.database or "").startswith(database_prefix):
            continue
        try:
            database_uses, still_open = _index_use_of(url)
        except Exception as error:  # informational: never fail a run over it
            notes.append(f"index use of {key} could not be read ({type(error).__name__})")
            continue
        uses += database_uses
        if still_open:
            notes.append(
                f"{still_open} connection(s) to {url.database} were still open at the end: "
                "index use in their last seconds may be missing from the unused indexes"
            )
    return findings, uses, notes


def _index_use_of(url: URL) -> tuple[list[dict[str, Any]], int]:
    from ..postgres.urls import connect, with_database

    connection = connect(with_database(url, None))
    try:
        deadline = time.monotonic() + OPEN_CONNECTIONS_WAIT
        while True:
            row = connection.execute(
                "SELECT count(*) FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid()"
            ).fetchone()
            still_open = int(row[0]) if row else 0
            if not still_open or time.monotonic() > deadline:
                break
            time.sleep(0.02)
        return index_use(lambda sql: connection.execute(sql).fetchall()), still_open
    finally:
        connection.close()
