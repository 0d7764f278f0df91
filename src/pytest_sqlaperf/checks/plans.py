"""Plan findings: a walker over EXPLAIN (FORMAT JSON, VERBOSE) output, planned with sequential
scans disabled, that finds reads no index serves (no pytest here).

The rules are structural (a predicate against the indexes the planner could use), never about
sizes: test tables are tiny, and a rule about row counts would flip with the data.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from .catalog import Catalog, IndexInfo
from .plantree import Node, nodes, render
from .predicates import (
    EQUALITY,
    FLAG,
    GIN,
    JOIN,
    NULL,
    OR,
    PREFIX,
    RANGE,
    TRIGRAM,
    Conjunct,
    classify_all,
    column_refs,
    conjuncts,
    mask_values,
    own_key,
    same_key,
    tokenize,
)
from .suggestions import IndexKey, IndexSuggestion, qualified_table, suggest

SEQ_SCAN = "seq_scan"
INDEX_WALK = "index_walk"
SORT_WITHOUT_INDEX = "sort_without_index"
KINDS = (SEQ_SCAN, INDEX_WALK, SORT_WITHOUT_INDEX)


_SCANS = frozenset({"Seq Scan", "Index Scan", "Index Only Scan", "Bitmap Heap Scan"})
_JOINS = frozenset({"Nested Loop", "Hash Join", "Merge Join"})
# Nodes that pass a scan's rows on unchanged in number (or only de-duplicated) toward a join.
_TOWARD_JOIN = frozenset(
    {"Hash", "Materialize", "Memoize", "Sort", "Incremental Sort", "Result", "Gather"}
    | {"Gather Merge", "Aggregate", "Unique"}
)
_UNDER_SORT = frozenset({"Result", "Subquery Scan", "Materialize", "Gather", "Hash", "Memoize"})
# Inputs that are bounded whatever the tables hold.
_BOUNDED = frozenset({"Function Scan", "Values Scan", "Limit", "Table Function Scan"})
_SYSTEM_SCHEMAS = ("pg_catalog", "information_schema", "pg_toast")
_ORDER_WORDS = frozenset({"ASC", "DESC", "NULLS", "FIRST", "LAST"})


@dataclass(frozen=True)
class PlanProblem:
    """One read no index serves: which table, on which columns, why, and the index to create."""

    kind: str
    schema: str
    table: str
    columns: tuple[str, ...]
    reason: str
    plan_lines: tuple[str, ...]
    suggestion: IndexSuggestion | None

    @property
    def target(self) -> str:
        return qualified_table(self.schema, self.table)


class _Walk:
    """One plan's analysis: the rules applied to every node."""

    def __init__(self, plan: Node, catalog: Catalog | None) -> None:
        self.plan = plan
        self.catalog = catalog if catalog is not None else Catalog()
        self.problems: list[PlanProblem] = []

    def run(self) -> list[PlanProblem]:
        for node, parents in nodes(self.plan):
            kind = node.get("Node Type")
            if kind in _SCANS and self._is_user_table(node):
                self._scan(node, parents)
            elif kind == "Sort" and _under_limit(parents):
                self._sort(node)
        return self.problems

    # -- helpers ---------------------------------------------------------------------------------

    @staticmethod
    def _is_user_table(node: Node) -> bool:
        schema = str(node.get("Schema", "public"))
        return schema not in _SYSTEM_SCHEMAS and not str(node.get("Relation Name", "")).startswith(
            "pg_"
        )

    def _is_c(self, node: Node) -> Any:
        schema, table = str(node.get("Schema", "public")), str(node["Relation Name"])
        return lambda column: self.catalog.is_c_collation(schema, table, column)

    def _add(
        self,
        kind: str,
        node: Node,
        parts: Sequence[Conjunct],
        reason: str,
        order: Sequence[IndexKey] = (),
    ) -> None:
        schema, table = str(node.get("Schema", "public")), str(node["Relation Name"])
        columns = tuple(dict.fromkeys(_columns(parts) + [key.key for key in order]))
        if any(p.kind == kind and p.table == table and p.columns == columns for p in self.problems):
            return
        leading = {
            index.columns[0]
            for index in self.catalog.indexes.values()
            if index.table == table and index.schema == schema and index.columns
        }
        suggestion = suggest(
            schema, table, parts, self._is_c(node), order, has_index=leading.__contains__
        )
        self.problems.append(
            PlanProblem(
                kind,
                schema,
                table,
                columns,
                mask_values(reason),
                tuple(render(self.plan, mark=node)),
                suggestion,
            )
        )

    # -- scans -----------------------------------------------------------------------------------

    def _scan(self, node: Node, parents: tuple[Node, ...]) -> None:
        alias = str(node.get("Alias", node["Relation Name"]))
        table = qualified_table(str(node.get("Schema", "public")), str(node["Relation Name"]))
        parts = classify_all(node.get("Filter"), alias)
        local = [part for part in parts if part.indexable and part.kind != JOIN]
        join = _join_context(node, parents)
        joined = [part for part in parts if part.kind == JOIN]
        if join is not None and _restricted(join[1]):
            joined += [
                part
                for key in ("Hash Cond", "Merge Cond", "Join Filter")
                for part in classify_all(join[0].get(key), alias)
                if part.kind == JOIN
            ]
        else:
            joined = []
        flags = [part for part in parts if part.kind in (FLAG, NULL)]
        flags += _partial_flags(node, alias)
        wanted = [*local, *joined]
        node_type = node["Node Type"]
        if node_type == "Seq Scan":
            if wanted:
                why = "to join on" if not local else "to find rows by"
                reason = (
                    f"{table} is read in full {why} {', '.join(_columns(wanted))}: "
                    "no index serves that"
                )
                self._add(SEQ_SCAN, node, [*wanted, *flags], reason)
            return
        if _has_index_condition(node):
            self._leading_column(node, alias, table)
            return
        # An index that serves the predicate exists (and could be used): the planner walked
        # another one by choice (for an ORDER BY, or on cost); that is not a missing index.
        unserved = [part for part in wanted if not self._served(node, part)]
        if unserved:
            index = node.get("Index Name") or _bitmap_index(node)
            reason = (
                f"{table}: the whole index {index} is walked to find rows by "
                f"{', '.join(_columns(unserved))}: no index serves that"
            )
            self._add(INDEX_WALK, node, [*unserved, *flags], reason)

    def _usable_indexes(self, node: Node) -> list[IndexInfo]:
        """The table's indexes the planner could use here: a partial index only if the plan
        uses it on this scan (its predicate is implied)."""
        schema, table = str(node.get("Schema", "public")), str(node["Relation Name"])
        used = {str(child["Index Name"]) for child, _ in nodes(node) if "Index Name" in child}
        return [
            index
            for index in self.catalog.indexes.values()
            if index.schema == schema
            and index.table == table
            and index.columns
            and (not index.partial or index.name in used)
        ]

    def _served(self, node: Node, part: Conjunct) -> bool:
        indexes = self._usable_indexes(node)
        is_c = self._is_c(node)
        each = part.parts if part.kind == OR else (part,)
        return all(any(_serves(index, one, is_c) for index in indexes) for one in each)

    def _sort_served(self, scan: Node, order: Sequence[IndexKey]) -> bool:
        for index in self._usable_indexes(scan):
            keys = index.columns[: len(order)]
            if (
                index.method != "btree"
                or len(keys) < len(order)
                or not all(same_key(k, o.key) for k, o in zip(keys, order, strict=False))
            ):
                continue
            directions = index.descending[: len(order)] or (False,) * len(order)
            # A btree is read forwards or backwards: every key flipped, or none.
            flips = {key.descending != flag for key, flag in zip(order, directions, strict=True)}
            if len(flips) == 1:
                return True
        return False

    def _leading_column(self, node: Node, alias: str, table: str) -> None:
        """An index searched on columns other than its first: the whole index is read."""
        schema = str(node.get("Schema", "public"))
        searches = [(node, node.get("Index Name"))] if "Index Name" in node else []
        searches += [
            (child, child.get("Index Name"))
            for child, _ in nodes(node)
            if child.get("Node Type") == "Bitmap Index Scan"
        ]
        for search, name in searches:
            index = self.catalog.index(schema, str(name))
            condition = search.get("Index Cond")
            if index is None or index.method != "btree" or not condition or not index.columns:
                continue
            parts = classify_all(condition, alias)
            if not parts or any(part.column is None for part in parts):
                continue  # expressions and ORs: leave them be
            if any(same_key(index.columns[0], str(part.column)) for part in parts):
                continue
            reason = (
                f"{table}: index {index.name} ({', '.join(index.columns)}) is searched on "
                f"{', '.join(_columns(parts))}, not on its first column, so all of it is read"
            )
            self._add(INDEX_WALK, node, parts, reason)

    # -- sorts -----------------------------------------------------------------------------------

    @staticmethod
    def _sorted_scan(sort: Node) -> Node | None:
        """The scan of the table whose columns the sort keys are, when the sort's input is
        that table's rows: directly, or joined to inputs that do not narrow them."""
        qualifiers = {
            qualifier
            for key in sort.get("Sort Key", ())
            for qualifier, _ in column_refs(tokenize(key))
        }
        if len(qualifiers) != 1:
            return None
        (alias,) = qualifiers
        node = sort
        while True:
            children = list(node.get("Plans", ()))
            if node.get("Node Type") in _JOINS:
                holding = [c for c in children if any(n.get("Alias") == alias for n, _ in nodes(c))]
                others = [c for c in children if all(c is not h for h in holding)]
                if len(holding) != 1 or _restricted(others):
                    return None
                node = holding[0]
            elif len(children) == 1 and (node is sort or node.get("Node Type") in _UNDER_SORT):
                node = children[0]
            else:
                return None
            if node.get("Node Type") in _SCANS:
                return node if node.get("Alias") == alias else None

    def _sort(self, node: Node) -> None:
        scan = self._sorted_scan(node)
        if scan is None:
            return
        if not self._is_user_table(scan) or _has_index_condition(scan):
            return
        alias = str(scan.get("Alias", scan["Relation Name"]))
        order = _sort_keys(node.get("Sort Key", ()), alias)
        if not order:
            return
        if self._sort_served(scan, order):
            return  # an index has that order: the planner sorted by choice (on cost)
        conditions = classify_all(scan.get("Filter"), alias)
        if any(part.indexable and self._served(scan, part) for part in conditions):
            return  # an index could narrow the rows first: the planner read them all on cost
        parts = [part for part in conditions if part.kind in (EQUALITY, FLAG)]
        parts += _partial_flags(scan, alias)
        table = qualified_table(str(scan.get("Schema", "public")), str(scan["Relation Name"]))
        reason = (
            f"{table} is read in full and sorted on {', '.join(key.key for key in order)} to "
            "return the first rows: no index has that order"
        )
        self._add(SORT_WITHOUT_INDEX, scan, parts, reason, order)


def find_problems(plan: Node, catalog: Catalog | None = None) -> list[PlanProblem]:
    """The plan's reads that no index serves (see the module docstring and docs/plans.md)."""
    return _Walk(plan, catalog).run()


def _partial_flags(node: Node, alias: str) -> list[Conjunct]:
    """Boolean conditions of a bitmap scan over a whole partial index: its predicate, which a
    new index should keep."""
    if node.get("Node Type") != "Bitmap Heap Scan" or _has_index_condition(node):
        return []
    return [part for part in classify_all(node.get("Recheck Cond"), alias) if part.kind == FLAG]


def _serves(index: IndexInfo, part: Conjunct, is_c: Any) -> bool:
    """Whether ``index`` can serve one conjunct (by its first key for a btree)."""
    key = part.key
    if key is None:
        return False
    if part.kind in (EQUALITY, RANGE, NULL, JOIN, PREFIX):
        if index.method != "btree" or not same_key(index.columns[0], key):
            return False
        if part.kind == PREFIX:
            opclass = index.opclasses[0] if index.opclasses else ""
            return "pattern_ops" in opclass or (part.column is not None and is_c(part.column))
        return True
    if part.kind == GIN:
        return index.method == "gin" and any(same_key(column, key) for column in index.columns)
    if part.kind == TRIGRAM:
        return index.method in ("gin", "gist") and any(
            same_key(column, key) and "trgm" in opclass
            for column, opclass in zip(index.columns, index.opclasses, strict=False)
        )
    return False


def _columns(parts: Sequence[Conjunct]) -> list[str]:
    names: list[str] = []
    for part in parts:
        for each in part.parts if part.kind == OR else (part,):
            if each.key and each.key not in names and each.kind != FLAG:
                names.append(each.key)
    return names


def _under_limit(parents: tuple[Node, ...]) -> bool:
    for parent in reversed(parents):
        kind = parent.get("Node Type")
        if kind == "Limit":
            return True
        if kind not in ("Result", "Gather Merge"):
            return False
    return False


def _has_index_condition(node: Node) -> bool:
    if node.get("Index Cond"):
        return True
    return (
        any(child.get("Index Cond") for child, _ in nodes(node) if child is not node)
        and node.get("Node Type") == "Bitmap Heap Scan"
    )


def _bitmap_index(node: Node) -> str:
    names = [str(child["Index Name"]) for child, _ in nodes(node) if "Index Name" in child]
    return ", ".join(names) or "?"


def _join_context(node: Node, parents: tuple[Node, ...]) -> tuple[Node, list[Node]] | None:
    """The join the scan's rows feed (through hashes, sorts, ...) and that join's other inputs."""
    below: Node = node
    for parent in reversed(parents):
        kind = parent.get("Node Type")
        if kind in _JOINS:
            others = [child for child in parent.get("Plans", ()) if child is not below]
            return parent, others
        if kind not in _TOWARD_JOIN:
            return None
        below = parent
    return None


def _restricted(inputs: list[Node]) -> bool:
    """Whether a join's other input is narrowed by a condition of its own (so an index on the
    join key would let the join read only the matching rows), or bounded."""
    for root in inputs:
        for node, _ in nodes(root):
            if node.get("Node Type") in _BOUNDED:
                return True
            alias = node.get("Alias")
            if alias is None:
                continue  # a Bitmap Index Scan: its heap scan's Recheck Cond says the same
            for key in ("Index Cond", "Recheck Cond", "Filter"):
                text = node.get(key)
                if not text:
                    continue
                for part in conjuncts(str(text)):
                    refs = column_refs(part)
                    if refs and all(qualifier == alias for qualifier, _ in refs):
                        return True
    return False


def _sort_keys(keys: Sequence[str], alias: str) -> list[IndexKey]:
    """The ORDER BY keys as index keys when all are columns or expressions of ``alias``."""
    order = []
    for key in keys:
        tokens = tokenize(key)
        descending = False
        while tokens and tokens[-1].kind == "word" and tokens[-1].text.upper() in _ORDER_WORDS:
            descending = descending or tokens[-1].text.upper() == "DESC"
            tokens = tokens[:-1]
        column, expression = own_key(tokens, alias)
        if column is None and expression is None:
            return []
        key_text = column or expression or ""
        order.append(IndexKey(key_text, is_expression=column is None, descending=descending))
    return order
