"""Safe EXPLAIN of recorded statements: on the statement's own connection, right after it ran,
in a savepoint that is always rolled back, once per statement shape and values (no pytest here)."""

from __future__ import annotations

import enum
import json
import re
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from .checks.catalog import Catalog, read_catalog, read_indexes
from .rawconnection import Channel, channel_for

if TYPE_CHECKING:
    from collections.abc import Sequence

    from sqlalchemy.engine import URL, Connection

    from .capture.querylog import Statement

SAVEPOINT = "sqlaperf_explain"
MAX_VALUES_PER_SHAPE = 8
"""Distinct parameter values EXPLAINed per statement shape: values can change a plan (a LIKE
pattern, a partial index's predicate), but a loop of a thousand lookups must not cost a
thousand EXPLAINs. Past this, the shape's first plan stands for the others."""
PLANNABLE_KINDS = frozenset({"select", "update", "delete"})
_BIND_ERRORS = frozenset({"08P01", "42P02", "42P18", "42P08"})
_READ_ONLY = "25006"
# Functions whose effects a rolled-back savepoint does not undo, or that read-only forbids
# only in part: statements calling them are never ANALYZEd (they are still EXPLAINed).
_SIDE_EFFECTS = re.compile(
    r"\b(pg_advisory\w*|pg_notify|nextval|setval|pg_sleep\w*|dblink\w*|lo_\w+|pg_terminate"
    r"\w*|pg_cancel\w*|pg_reload_conf|pg_switch_wal|txid_current|pg_current_xact_id)\s*\(",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class ExplainSettings:
    """How EXPLAIN runs: its time and lock limits, and whether SELECTs are ANALYZEd."""

    timeout_ms: int = 2000
    analyze: bool = False


@dataclass(eq=False)
class Explained:
    """The outcome of explaining one statement shape with one set of values."""

    plan: dict[str, Any] | None
    """The top ``Plan`` node of EXPLAIN (FORMAT JSON, VERBOSE); None when skipped."""
    method: str
    """``custom`` (with the statement's values), ``generic`` (GENERIC_PLAN) or ``analyze``."""
    skipped: str | None = None
    """Why there is no plan (``autocommit connection``, ``lock_timeout (2000 ms)``, ...)."""
    catalog: Catalog | None = None
    analysis: Any = None
    """Room for the caller's analysis of the plan, computed once per outcome."""


class _Skip(Exception):
    """EXPLAIN cannot run or failed; the message is the reason shown in the summary."""


class _Retry(Exception):
    """The attempt failed in a way another method can avoid (ANALYZE under read-only,
    parameters the server cannot bind)."""


@dataclass
class _Shape:
    plannable: bool
    by_values: dict[int, Explained] = field(default_factory=dict)
    first: Explained | None = None


def plannable(statement: Statement) -> bool:
    """Whether a statement can have a plan: SELECT, UPDATE, DELETE, INSERT ... SELECT, WITH."""
    if statement.kind in PLANNABLE_KINDS:
        return True
    sql = statement.display_sql
    return sql.startswith("WITH ") or (statement.kind == "insert" and " SELECT " in sql)


class _Unknown(enum.Enum):
    UNKNOWN = "unknown"


UNKNOWN = _Unknown.UNKNOWN
"""ExplainRunner.known(): the outcome is not cached; explain() would run EXPLAIN."""
_PARAMETERS = 4
"""Statement's field ``parameters``, read by index where every call counts."""


def values_key(parameters: Any) -> int:
    """A cheap key for bound values (hashable ones hashed as a tuple, others by their repr)."""
    try:
        if isinstance(parameters, dict):
            return hash(tuple(parameters.values()))
        if isinstance(parameters, (tuple, list)):
            return hash(tuple(parameters))
        return hash(parameters)
    except TypeError:  # lists (arrays) and dicts (JSON) among the values
        return hash(repr(parameters))


class ExplainRunner:
    """EXPLAINs statements as they run and caches the outcome per shape and values.

    Never raises into the caller's code and never leaves a trace in its transaction: every
    failure becomes a skip reason, counted in :attr:`skips`.
    """

    def __init__(self, settings: ExplainSettings) -> None:
        self.settings = settings
        self._shapes: dict[str, _Shape] = {}
        self.catalogs: dict[str, Catalog] = {}
        """Per database (URL without password): its indexes, collations, foreign keys."""
        self.databases: dict[str, URL] = {}
        """Per database: its URL (password included, kept in memory only)."""
        self.skips: Counter[str] = Counter()
        self.durations: list[float] = []
        """Seconds each EXPLAIN took, savepoint and catalog reads included."""

    def explain(
        self, statement: Statement, connection: Connection, *, executemany: bool = False
    ) -> Explained | None:
        """The plan of ``statement``, which just ran on ``connection``; None when it has none.

        Cheap for shapes already explained: a dict lookup and a hash of the values.
        """
        known = self.known(statement, executemany)
        if known is not UNKNOWN:
            return known
        parameters = statement.parameters
        if executemany and isinstance(parameters, (list, tuple)):
            parameters = parameters[0] if parameters else None
        shape = self._shapes.get(statement.fingerprint)
        if shape is None:
            is_postgres = connection.dialect.name == "postgresql"
            shape = self._shapes[statement.fingerprint] = _Shape(
                is_postgres and plannable(statement)
            )
            if not shape.plannable:
                return None
        key = values_key(parameters)
        outcome, lasting = self._explain(statement, parameters, connection)
        if outcome.skipped is not None:
            self.skips[outcome.skipped] += 1
        if lasting:
            shape.by_values[key] = outcome
            if shape.first is None:
                shape.first = outcome
        return outcome

    def known(
        self, statement: Statement, executemany: bool = False
    ) -> Explained | Literal[_Unknown.UNKNOWN] | None:
        """What :meth:`explain` would return without running EXPLAIN: the outcome cached for
        the statement's shape and values, None when the shape has no plan, or :data:`UNKNOWN`.

        The cheap part of :meth:`explain`, apart so that a caller learns from it that there is
        nothing new (planning's ``_after_statement``): it runs for nearly every statement, so
        it is written for speed (no call it can avoid).
        """
        shape = self._shapes.get(statement.fingerprint)
        if shape is None:
            return UNKNOWN
        if not shape.plannable:
            return None
        parameters = statement[_PARAMETERS]
        if parameters is dict or parameters is tuple or parameters is list:
            # A statement of a QueryLog keeps its parameters' form there (see Statement);
            # a statement given to after_statement hooks keeps the parameters themselves.
            parameters = statement.parameters
        if executemany and isinstance(parameters, (list, tuple)):
            parameters = parameters[0] if parameters else None
        by_values = shape.by_values
        if type(parameters) is dict:
            try:
                key = hash(tuple(parameters.values()))
            except TypeError:
                key = values_key(parameters)
        else:
            key = values_key(parameters)
        found = by_values.get(key)
        if found is None and len(by_values) >= MAX_VALUES_PER_SHAPE:
            found = shape.first
        return UNKNOWN if found is None else found

    def every_outcome(self, fingerprint: str) -> tuple[Explained, ...] | None:
        """Every outcome :meth:`known` can return for the shape from now on, whatever the
        values, once it holds :data:`MAX_VALUES_PER_SHAPE` of them (its values' ones, and the
        first for new values); None before, when new values may still run EXPLAIN."""
        shape = self._shapes.get(fingerprint)
        if shape is None or shape.first is None or len(shape.by_values) < MAX_VALUES_PER_SHAPE:
            return None
        return (*shape.by_values.values(), shape.first)

    # -- one EXPLAIN -----------------------------------------------------------------------------

    def _explain(
        self, statement: Statement, parameters: Any, connection: Connection
    ) -> tuple[Explained, bool]:
        """The outcome, and whether it lasts (a connection's state is not the statement's)."""
        channel = channel_for(connection)
        if isinstance(channel, str):
            return Explained(None, "", skipped=channel), True
        state = channel.state()
        if state is not None:
            return Explained(None, "", skipped=state), False
        database = self._database(connection)
        version = connection.dialect.server_version_info or (0,)
        major = version[0] if isinstance(version[0], int) else 0
        methods = []
        if (
            self.settings.analyze
            and statement.kind == "select"
            and not _SIDE_EFFECTS.search(statement.sql)
        ):
            methods.append("analyze")
        if parameters is not None or not _has_placeholders(statement.sql, channel):
            methods.append("custom")
        if major >= 16 and channel.generic:
            methods.append("generic")
        started = time.perf_counter()
        try:
            for method in methods:
                try:
                    plan = self._attempt(channel, statement.sql, parameters, method, database)
                except _Retry:
                    continue
                return Explained(plan, method, catalog=self.catalogs.get(database)), True
            if major < 16:
                reason = "values cannot be bound (GENERIC_PLAN needs PostgreSQL 16)"
            elif not channel.generic:
                reason = "values cannot be bound (asyncpg cannot run GENERIC_PLAN)"
            else:
                reason = "values cannot be bound"
            return Explained(None, "", skipped=reason), True
        except _Skip as skip:
            return Explained(None, "", skipped=str(skip)), True
        finally:
            self.durations.append(time.perf_counter() - started)

    def _database(self, connection: Connection) -> str:
        url = connection.engine.url
        # One key per database whatever the driver: psycopg and asyncpg engines share catalogs.
        key = url.set(drivername="postgresql").render_as_string(hide_password=True)
        self.databases.setdefault(key, url)
        return key

    def _attempt(
        self, channel: Channel, sql: str, parameters: Any, method: str, database: str
    ) -> dict[str, Any]:
        timeout = self.settings.timeout_ms
        # A lock wait gives up first, so that it is reported as what it is.
        begin = (
            f"SAVEPOINT {SAVEPOINT}; SET LOCAL enable_seqscan = off; SET LOCAL jit = off; "
            f"SET LOCAL statement_timeout = {timeout}; "
            f"SET LOCAL lock_timeout = {lock_timeout(timeout)}"
        )
        if method == "analyze":
            # Blocks writes and nextval(): ANALYZE runs the statement.
            begin += "; SET LOCAL transaction_read_only = on"
        options = {"analyze": "ANALYZE, ", "generic": "GENERIC_PLAN, "}.get(method, "")
        explain = f"EXPLAIN ({options}FORMAT JSON, VERBOSE) "
        failure: BaseException | None = None
        try:
            channel.run(begin)
            if method == "generic":
                rows = channel.fetch_generic(explain + sql)
            else:
                rows = channel.fetch(explain + sql, parameters)
            plan = _plan_of(rows)
            self._read_catalog(channel, database, plan)
        except Exception as error:
            failure = error
        finally:
            # Always undone, even on KeyboardInterrupt: the planner settings, the catalog reads
            # and whatever an ANALYZE did (read-only as it is) go with the savepoint.
            try:
                channel.run(f"ROLLBACK TO SAVEPOINT {SAVEPOINT}; RELEASE SAVEPOINT {SAVEPOINT}")
            except Exception as error:
                raise _Skip(
                    f"savepoint could not be rolled back ({_describe(error, timeout)})"
                ) from None
        if failure is not None:
            code = getattr(failure, "sqlstate", None)
            if (method == "analyze" and code == _READ_ONLY) or (
                method == "custom" and code in _BIND_ERRORS
            ):
                raise _Retry() from None
            raise _Skip(_describe(failure, timeout)) from None
        return plan

    def _read_catalog(self, channel: Channel, database: str, plan: dict[str, Any]) -> None:
        catalog = self.catalogs.get(database)
        if catalog is None:
            self.catalogs[database] = read_catalog(channel.query)
            return
        names = _index_names(plan, "public")
        if any(name not in catalog.indexes for name in names):
            # An index the test made, or one whose schema a Bitmap Index Scan does not name.
            catalog.indexes.update(read_indexes(channel.query))


def _index_names(plan: dict[str, Any], schema: str) -> set[tuple[str, str]]:
    """``(schema, index)`` of every index in the plan; a Bitmap Index Scan names no schema, its
    heap scan above it does."""
    schema = str(plan.get("Schema", schema))
    names = {(schema, str(plan["Index Name"]))} if "Index Name" in plan else set()
    for child in plan.get("Plans", ()):
        names |= _index_names(child, schema)
    return names


def _plan_of(rows: Sequence[Sequence[Any]]) -> dict[str, Any]:
    document = rows[0][0]
    if isinstance(document, (str, bytes)):
        document = json.loads(document)
    plan: dict[str, Any] = document[0]["Plan"]
    return plan


def lock_timeout(timeout_ms: int) -> int:
    """The lock_timeout that goes with a statement_timeout: half of it."""
    return max(1, timeout_ms // 2)


def _describe(error: BaseException, timeout_ms: int) -> str:
    code = getattr(error, "sqlstate", None)
    if code == "57014":
        return f"statement_timeout ({timeout_ms} ms)"
    if code == "55P03":
        return f"lock_timeout ({lock_timeout(timeout_ms)} ms)"
    name = type(error).__name__
    return f"{name} ({code})" if code else name


def _has_placeholders(sql: str, channel: Channel) -> bool:
    return channel.numbered or "%" in sql
