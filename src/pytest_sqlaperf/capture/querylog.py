"""QueryLog (the statements of one scope) and Statement (one execution the database saw)."""

from __future__ import annotations

import os
import threading
from bisect import bisect_left
from collections import Counter
from operator import attrgetter, itemgetter
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

    A named tuple, made with all its fields by ``tuple.__new__``, a fraction of what a Python
    ``__init__`` setting ten slots costs (callgrind, docs/benchmarks.md). Two statements are equal
    only when they are the same statement: two runs of the same SQL with the same values from the
    same line are two statements (``list.index`` must find the right one).

    The recorder's statements carry their parameters' items in the tuple, after the fields (see
    QueryLog): field ``parameters`` then holds their form (``dict``, ``tuple`` or ``list``), and
    the property below gives them back as that form. A Statement made with its ten fields holds
    its parameters in the field itself.
    """

    __slots__ = ()

    # identity, compared in C (list.index and ``in`` over a test's statements)
    __eq__ = object.__eq__
    __ne__ = object.__ne__
    __hash__ = object.__hash__

    @property
    def parameters(self) -> Any:
        """The parameters the statement was sent with (a dict, a tuple or list, or None...)."""
        form = self[4]
        if form is dict:
            items = self[_ITEMS:]
            half = len(items) // 2
            return dict(zip(items[:half], items[half:], strict=True))
        if form is tuple:
            return self[_ITEMS:]
        if form is list:
            return list(self[_ITEMS:])
        return form

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


# A record in a QueryLog's flat list: Statement's ten fields (parameters as their form), then
# these three, then the parameters' items (a dict's keys then its values, or a sequence's items).
_PARENT = 10
"""The serial of the statement that loaded the object a lazy load or refresh is for, or None."""
_SERIAL = 11
"""The statement's serial (the recorder counts the statements it records)."""
_COUNT = 12
"""How many parameter items follow."""
_ITEMS = 13

_serial_of = itemgetter(_SERIAL)


class QueryLog:
    """The statements run in one scope (a test's call phase, or a nested ``capture()`` block).

    ``count`` and budgets leave out transaction control unless ``count_transaction_control``.

    While a test runs, the recorder adds each statement to one flat list as a record: the ten
    fields of its Statement (its parameters' form in place of the parameters), the serial of the
    statement that loaded the object of its lazy load, its own serial, how many parameter items
    follow, and the items (a dict's keys then its values; a tuple's or a list's items; any other
    form is the parameters object itself, with no item). One ``list.extend`` per statement,
    atomic under the GIL, so statements from the test's threads need no lock. What the record
    holds was there already (the SQL string, the cached shape and call site, the parameters'
    values): a test that runs statements makes no new garbage-collected object that outlives
    the statement. One Statement and one parameters dict per statement did (about 50 per test
    in the benchmark's workload): enough to put its tests' peak of live objects past the
    collector's threshold, which doubled its collections there (docs/benchmarks.md). The
    Statements are made when something reads them, each once (a slice of the list): the same
    object every time, as ``list.index`` and identity comparisons need.
    """

    __slots__ = (
        "_data",
        "_lock",
        "_made",
        "_offset",
        "count_transaction_control",
        "exempt",
        "name",
    )

    def __init__(self, name: str = "", *, count_transaction_control: bool = False) -> None:
        self.name = name
        self.count_transaction_control = count_transaction_control
        # Made once read: a log costs as few objects as it can while its test runs (see above)
        self._data: list[Any] = []
        self._made: list[Statement] | None = None  # the Statements of the records before _offset
        self._offset = 0
        self.exempt: tuple[tuple[int, int], ...] = ()
        """Index ranges of ``statements`` that the N+1 check leaves alone (allow_n_plus_one())."""
        self._lock = threading.Lock()

    def append(self, statement: Statement) -> None:
        """Add a statement made elsewhere (the recorder writes records itself)."""
        if len(statement) > _PARENT:  # a recorder's, with its items
            self._data.extend(statement)
        else:
            self._data.extend((*statement, None, None, 0))

    @property
    def statements(self) -> list[Statement]:
        """Every statement so far, transaction control included, in the order they ran.

        The log's own list: read it, do not change it.
        """
        if self._offset != len(self._data):
            self._make()
        made = self._made
        return made if made is not None else []

    @property
    def empty(self) -> bool:
        """Whether no statement has run in this scope (makes no Statement)."""
        return not self._data

    def _make(self) -> None:
        """Make the Statements of the records added since the last call."""
        with self._lock:
            data = self._data
            end = len(data)  # records are whole: each was added by one list.extend
            at = self._offset
            made = self._made
            if made is None:
                made = self._made = []
            add = made.append
            new = tuple.__new__
            while at < end:
                stop = at + 13 + data[at + 12]  # _ITEMS + the record's _COUNT
                if data[at + 10] is None:  # _PARENT
                    add(new(Statement, data[at:stop]))
                else:  # a lazy load or a refresh: its OrmLoad gets the statement it came from
                    fields = data[at:stop]
                    fields[7] = fields[7].with_parent(self._by_serial(fields[_PARENT]))
                    add(new(Statement, fields))
                at = stop
            self._offset = at

    def _by_serial(self, serial: int) -> Statement | None:
        """The Statement made with this serial, if this log has it."""
        made = self._made or []
        # in serial order, but for statements of two threads that finished out of order and
        # statements added with append() (no serial)
        try:
            index = bisect_left(made, serial, key=_serial_of)
        except TypeError:  # None among the serials
            index = len(made)
        if index < len(made) and made[index][_SERIAL] == serial:
            return made[index]
        return next((statement for statement in made if statement[_SERIAL] == serial), None)

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
        """Drop the statements (and with them their parameters) once a record is made."""
        with self._lock:
            # in place: the recorder's C listeners hold the active logs' lists (_speedups.c)
            del self._data[:]
            self._made = None
            self._offset = 0
            self.exempt = ()

    def __len__(self) -> int:
        return self.count

    def __repr__(self) -> str:
        return f"<QueryLog {self.name!r} count={self.count} statements={len(self.statements)}>"
