"""N+1 check: lazy loads, repeated and duplicate selects, and row-by-row writes, with the fix."""

from __future__ import annotations

import fnmatch
import linecache
import re
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from itertools import compress, repeat
from operator import is_

from ..capture.ormloads import OrmLoad
from ..capture.querylog import CallSite, Statement, call_site_of, fingerprint_of, orm_load_of
from .findings import Finding
from .mapping import entity_for_table

KINDS = ("n_plus_one", "lazy_load", "repeated", "duplicate", "n_plus_one_write")
"""The kinds of finding this check makes."""

DEFAULT_THRESHOLD = 3
"""Repetitions from one call site that make an N+1. Two is what a page of a listing fetched twice,
an endpoint called twice in a test or a pair of health checks look like; three is a loop."""

_WHERE_EQUALS = re.compile(r"WHERE ([\w.\"]+) = \?")
_TABLE = {
    "insert": re.compile(r"^INSERT INTO ([\w.\"]+)"),
    "update": re.compile(r"^UPDATE ([\w.\"]+)"),
    "delete": re.compile(r"^DELETE FROM ([\w.\"]+)"),
}


@dataclass(frozen=True)
class Options:
    """How the check judges one test."""

    threshold: int = DEFAULT_THRESHOLD
    strict_loading: bool = False
    allow: tuple[str, ...] = ()
    """``Class.attr`` targets or display-SQL prefixes not to report; ``*`` allows everything."""
    ignore_call_sites: tuple[str, ...] = ()
    """Globs on ``path`` or ``path:line`` of call sites (paths relative to the rootdir)."""
    is_test_code: Callable[[str], bool] = field(default=lambda path: False)
    """Whether a path is test code (where row-by-row writes are test data set-up, not N+1)."""
    relative: Callable[[str], str] = field(default=lambda path: path)


def _site(call_site: CallSite | None, options: Options) -> str:
    if call_site is None:
        return "an unknown place"
    return f"{options.relative(call_site.path)}:{call_site.line} in {call_site.function}"


def _source_line(call_site: CallSite | None) -> str | None:
    if call_site is None:
        return None
    line = linecache.getline(call_site.path, call_site.line).strip()
    return line or None


def _evidence(group: Sequence[Statement], source: Statement | None, options: Options) -> list[str]:
    first = group[0]
    lines = [f"at {_site(first.call_site, options)}"]
    text = _source_line(first.call_site)
    if text:
        lines.append(f"    {text}")
    lines.append(f"statement: {first.display_sql}")
    if source is not None:
        lines.append(f"rows from: {_site(source.call_site, options)}  {source.display_sql}")
    return lines


def _lazy_chain(statement: Statement) -> list[OrmLoad]:
    """The loads ``Post.comments`` then ``Comment.author`` for a lazy load whose parent was lazily
    loaded: the path of loader options that fetches them all up front."""
    chain: list[OrmLoad] = []
    current: Statement | None = statement
    while current is not None and current.orm_load is not None and current.orm_load.kind == "lazy":
        chain.append(current.orm_load)
        current = current.orm_load.parent
    return list(reversed(chain))


def _root_query(statement: Statement) -> Statement | None:
    current = statement.orm_load.parent if statement.orm_load else None
    while current is not None and current.orm_load is not None and current.orm_load.kind == "lazy":
        current = current.orm_load.parent
    return current


def _loader_fix(statement: Statement, load: OrmLoad, options: Options) -> str:
    if load.kind == "column":
        if load.attribute and "," not in load.attribute and load.collection is False:
            return (
                f"load the column with the objects: .options(undefer({load.target})) on the "
                f"query, or refresh them once; after a commit, expire_on_commit=False"
            )
        return (
            f"{load.entity} objects were expired (e.g. by commit) and reloaded one by one: "
            "use expire_on_commit=False, or reload them with one query"
        )
    parts = [
        f"{'selectinload' if step.collection else 'joinedload'}({step.target})"
        for step in _lazy_chain(statement) or [load]
    ]
    root = _root_query(statement)
    where = f" to the query at {_site(root.call_site, options)}" if root else " to the query"
    fix = f"add .options({'.'.join(parts)}){where}"
    if not load.collection and len(parts) == 1:
        fix += f" (selectinload({load.target}) if that query already joins a collection)"
    return fix


def _group_by(
    statements: Iterable[Statement], key: Callable[[Statement], object]
) -> dict[object, list[Statement]]:
    groups: dict[object, list[Statement]] = {}
    for statement in statements:
        groups.setdefault(key(statement), []).append(statement)
    return groups


def _finding(
    kind: str,
    what: str,
    group: Sequence[Statement],
    source: Statement | None,
    fix: str,
    target: str,
    options: Options,
) -> Finding:
    """One finding about a group of statements from one call site."""
    first = group[0]
    return Finding(
        kind=kind,
        message=f"{what} ×{len(group)} at {_site(first.call_site, options)}",
        call_site=first.call_site,
        evidence=tuple(_evidence(group, source, options)),
        fix=fix,
        target=target,
        count=len(group),
        source=source.call_site if source is not None else None,
        fingerprint=first.fingerprint,
        display_sql=first.display_sql,
    )


def _lazy_key(statement: Statement) -> object:
    load = statement.orm_load
    parent = load.parent if load is not None else None
    if parent is not None and parent.orm_load is not None and parent.orm_load.kind == "lazy":
        # nested loads (posts -> comments -> author): the comments came from many lazy loads,
        # one per post; they are one loop, so group by that loop, not by each parent statement
        parent_key: object = ("lazy", parent.orm_load.target, parent.call_site)
    else:
        parent_key = id(parent) if parent is not None else None
    return (load and load.kind, load and load.target, statement.call_site, parent_key)


def _lazy_findings(loads: list[Statement], options: Options) -> list[Finding]:
    findings = []
    for group in _group_by(loads, _lazy_key).values():
        first = group[0]
        load = first.orm_load
        if load is None:
            continue
        strict = options.strict_loading and load.kind == "lazy"
        if len(group) < options.threshold and not strict:
            continue
        parent = load.parent
        root = _root_query(first) or parent
        immediate = load.configured_lazy == "immediate" or (
            parent is not None and parent.call_site == first.call_site
        )
        if load.kind == "lazy" and immediate:
            kind, what = "n_plus_one", f"immediateload of {load.target}"
            fix = f"immediateload runs one SELECT per row: use selectinload({load.target})"
        elif load.kind == "lazy":
            kind = "n_plus_one" if len(group) >= options.threshold else "lazy_load"
            what, fix = f"lazy load of {load.target}", _loader_fix(first, load, options)
        else:
            kind, what = "n_plus_one", f"load of {load.target}"
            fix = _loader_fix(first, load, options)
        findings.append(_finding(kind, what, group, root, fix, load.target, options))
    return findings


def _parameters_key(statement: Statement) -> str:
    return repr(statement.parameters)


def _is_batch(group: Sequence[Statement]) -> bool:
    """Hand-written IN batches (chunks of ids) fetch many rows per statement: not an N+1."""
    display = group[0].display_sql
    if "IN (...)" not in display:
        return False
    scalars = display.count("?")
    sizes = [len(s.parameters) if hasattr(s.parameters, "__len__") else 0 for s in group]
    return sum(sizes) / len(sizes) - scalars > 1


def _source_of(group: Sequence[Statement], counted: Sequence[Statement]) -> Statement | None:
    """The nearest earlier statement from another call site: the query whose rows drive the loop."""
    first_index = counted.index(group[0])
    for index in range(first_index - 1, -1, -1):
        statement = counted[index]
        if statement.call_site != group[0].call_site and statement.kind == "select":
            return statement
    return None


def _attribute(column: str) -> str:
    """``User.email`` for ``users.email`` when a mapped class has that table."""
    table, _, name = column.rpartition(".")
    entity = entity_for_table(table) if table else None
    return f"{entity}.{name}" if entity else column


def _select_fix(statement: Statement) -> str:
    match = _WHERE_EQUALS.search(statement.display_sql)
    if match:
        column = _attribute(match.group(1))
        return (
            f"fetch them with one query before the loop: .where({column}.in_(keys)) "
            f"instead of {column} == key per item"
        )
    return "fetch the rows with one query before the loop (IN (...) over the keys)"


def _write_fix(statement: Statement) -> str:
    match = _TABLE[statement.kind].search(statement.display_sql)
    table = match.group(1) if match else "the table"
    entity = entity_for_table(table) or table
    if statement.kind == "insert":
        return (
            f"insert the rows in one statement: session.execute(insert({entity}), rows) "
            "(or add them all, then flush once)"
        )
    if statement.kind == "update":
        return (
            f"update in one statement: session.execute(update({entity}), rows) with primary keys "
            f"(bulk UPDATE by key), or update({entity}).where(<key>.in_(keys)).values(...)"
        )
    return f"delete in one statement: session.execute(delete({entity}).where(<key>.in_(keys)))"


def _statement_findings(
    statements: Sequence[Statement], counted: Sequence[Statement], options: Options
) -> list[Finding]:
    findings: list[Finding] = []
    # Most tests repeat nothing: count the (shape, call site) keys in C first, and group only
    # the statements of the keys that repeat enough.
    keys = list(zip(map(fingerprint_of, statements), map(call_site_of, statements), strict=True))
    counts = Counter(keys)
    if max(counts.values(), default=0) < options.threshold:
        return findings
    repeated: dict[tuple[str, CallSite | None], list[Statement]] = {
        key: [] for key, n in counts.items() if n >= options.threshold
    }
    for key, statement in zip(keys, statements, strict=True):
        group = repeated.get(key)
        if group is not None:
            group.append(statement)
    for group in repeated.values():
        first = group[0]
        if first.kind == "select":
            if _is_batch(group) or " FROM " not in first.display_sql:
                continue  # IN batches fetch many rows; SELECT 1 / now() pings touch no table
            distinct = _group_by(group, _parameters_key)
            duplicated = max(len(same) for same in distinct.values())
            if len(distinct) == 1:
                kind, what, fix = (
                    "duplicate",
                    "the same query",
                    ("run it once and reuse the result (or cache it)"),
                )
            elif len(distinct) >= options.threshold or duplicated < options.threshold:
                kind, what, fix = "repeated", "repeated query", _select_fix(first)
            else:
                continue
        elif first.kind in _TABLE and all(s.executemany_rows <= 1 for s in group):
            if first.call_site is None or options.is_test_code(first.call_site.path):
                continue
            kind, what = "n_plus_one_write", f"row-by-row {first.kind.upper()}"
            fix = _write_fix(first)
        else:
            continue
        source = _source_of(group, counted) if kind == "repeated" else None
        findings.append(_finding(kind, what, group, source, fix, first.display_sql, options))
    return findings


def _allowed(finding: Finding, options: Options) -> bool:
    for target in options.allow:
        if target == "*" or finding.target == target:
            return True
        if finding.display_sql and finding.display_sql.upper().startswith(target.upper()):
            return True
    if finding.call_site is not None and options.ignore_call_sites:
        path = options.relative(finding.call_site.path)
        located = f"{path}:{finding.call_site.line}"
        return any(
            fnmatch.fnmatch(path, glob) or fnmatch.fnmatch(located, glob)
            for glob in options.ignore_call_sites
        )
    return False


def check(statements: Sequence[Statement], options: Options) -> list[Finding]:
    """The N+1 findings among a test's counted statements (call phase only), most costly first."""
    if not statements:
        return []
    loads = list(map(orm_load_of, statements))
    if loads.count(None) == len(loads):  # no ORM loads (the partition below, skipped)
        orm_loads, plain = [], statements
    else:
        orm_loads = [s for s in compress(statements, loads) if s.orm_load.kind != "eager"]  # type: ignore[union-attr]
        plain = list(compress(statements, map(is_, loads, repeat(None))))
    findings = _lazy_findings(orm_loads, options) + _statement_findings(plain, statements, options)
    findings = [finding for finding in findings if not _allowed(finding, options)]
    return sorted(findings, key=lambda finding: -finding.count)
