"""QueryLog (the statements of one scope) and Statement (one execution the database saw)."""

from __future__ import annotations

import os
import threading
from collections import Counter
from operator import attrgetter
from typing import TYPE_CHECKING, Any, NamedTuple

if TYPE_CHECKING:
    from .ormloads import OrmLoad

KINDS = ("select", "insert", "update", "delete", "ddl", "tcl", "other")

# A Statement's fields read in C, for map() over a test's statements (QueryLog's counts, the
# records, the N+1 check): a lambda or a generator would make a Python call per statement.
kind_of = attrgetter("kind")
fingerprint_of = attrgetter("fingerprint")
call_site_of = attrgetter("call_site")
orm_load_of = attrgetter("orm_load")
duration_of = attrgetter("duration")


class CallSite(NamedTuple):
    """The user's frame that ran a statement: the first one outside SQLAlchemy, asyncio and us.

    A named tuple, not a frozen dataclass: one is made for every statement, and a tuple is made
    several times faster.
    """

    path: str
    line: int
    function: str

    @property
    def relative_path(self) -> str:
        """The path relative to the working directory when under it (as pytest shows paths)."""
        cwd = os.getcwd()
        if self.path.startswith(cwd + os.sep):
            return self.path[len(cwd) + 1 :]
        return self.path

    def __str__(self) -> str:
        return f"{self.relative_path}:{self.line} in {self.function}"


class _StatementFields(NamedTuple):
    """Statement's fields (a subclass of a NamedTuple class can change how it compares)."""

    sql: str
    display_sql: str
    fingerprint: str
    kind: str
    parameters: Any
    executemany_rows: int
    call_site: CallSite | None
    orm_load: OrmLoad | None = None
    duration: float | None = None
    rowcount: int | None = None


class Statement(_StatementFields):
    """One statement sent to the database.

    ``parameters`` are kept in memory only (for EXPLAIN and ``-v`` output) and are never written to
    files unless the user asks. ``duration`` and ``rowcount`` stay ``None`` when the statement
    failed.

    A named tuple, made once the statement has run, with all its fields: the recorder builds one
    for every statement the database sees, and ``tuple.__new__`` with the ten values costs a
    fraction of a Python ``__init__`` setting ten slots (callgrind, docs/benchmarks.md). Two
    statements are equal only when they are the same statement: two runs of the same SQL with the
    same values from the same line are two statements (``list.index`` must find the right one).
    """

    __slots__ = ()

    # identity, compared in C (list.index and ``in`` over a test's statements)
    __eq__ = object.__eq__
    __ne__ = object.__ne__
    __hash__ = object.__hash__

    @property
    def lazy_load(self) -> str | None:
        """``Class.attr`` when the ORM ran this statement to lazy-load that relationship."""
        load = self.orm_load
        return load.target if load is not None and load.kind == "lazy" else None

    def __repr__(self) -> str:
        return (
            f"Statement(kind={self.kind!r}, display_sql={self.display_sql!r}, "
            f"call_site={self.call_site!r}, lazy_load={self.lazy_load!r})"
        )


class QueryLog:
    """The statements run in one scope (a test's call phase, or a nested ``capture()`` block).

    ``count`` and budgets leave out transaction control unless ``count_transaction_control``.
    Appends come from any thread the test starts, so they are guarded by a lock.
    """

    __slots__ = ("_lock", "count_transaction_control", "exempt", "name", "statements")

    def __init__(self, name: str = "", *, count_transaction_control: bool = False) -> None:
        self.name = name
        self.count_transaction_control = count_transaction_control
        self.statements: list[Statement] = []
        self.exempt: list[tuple[int, int]] = []
        """Index ranges of ``statements`` that the N+1 check leaves alone (allow_n_plus_one())."""
        self._lock = threading.Lock()

    def append(self, statement: Statement) -> None:
        # list.append is atomic: statements from the test's other threads need no lock here
        self.statements.append(statement)

    def counts(self, statement: Statement) -> bool:
        """Whether a statement counts toward budgets in this log."""
        return self.count_transaction_control or statement.kind != "tcl"

    # The properties below run for every test (budgets, the N+1 check): each reads the
    # statements with one C-level pass (map, Counter, list.count) rather than a call per statement.

    @property
    def counted(self) -> list[Statement]:
        """The statements that count toward budgets, in the order they ran."""
        statements = self.statements
        if self.count_transaction_control or "tcl" not in map(kind_of, statements):
            return list(statements)
        return [s for s in statements if s.kind != "tcl"]

    @property
    def count(self) -> int:
        """How many statements count toward budgets so far."""
        statements = self.statements
        if self.count_transaction_control:
            return len(statements)
        return len(statements) - list(map(kind_of, statements)).count("tcl")

    def count_by_kind(self) -> dict[str, int]:
        """Counted statements per kind, every kind present (zero when none ran)."""
        tally = Counter(map(kind_of, self.statements))
        if not self.count_transaction_control:
            tally["tcl"] = 0
        return {kind: tally.get(kind, 0) for kind in KINDS}

    def fingerprints(self) -> Counter[str]:
        """How often each fingerprint ran among the counted statements."""
        return Counter(map(fingerprint_of, self.counted))

    def checked(self) -> list[Statement]:
        """Counted statements outside the exempt ranges: what the N+1 check looks at."""
        if not self.exempt:
            return self.counted
        return [
            statement
            for index, statement in enumerate(self.statements)
            if self.counts(statement)
            and not any(start <= index < end for start, end in self.exempt)
        ]

    def clear(self) -> None:
        """Drop the statements (and with them parameters and connections) once a record is made."""
        with self._lock:
            self.statements = []
            self.exempt = []

    def __len__(self) -> int:
        return self.count

    def __repr__(self) -> str:
        return f"<QueryLog {self.name!r} count={self.count} statements={len(self.statements)}>"
