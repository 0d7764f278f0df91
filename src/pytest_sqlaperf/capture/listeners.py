"""SQLAlchemy event wiring: every engine's statements go to the QueryLogs that are active."""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.orm import ORMExecuteState, Session

from .callsite import CallSiteFinder
from .fingerprint import shape_of
from .querylog import QueryLog, Statement

_STATEMENT_ATTRIBUTE = "_sqlaperf_statement"

AfterStatement = Callable[[Statement, Connection, Any, Any], None]
"""``(statement, connection, dbapi_cursor, execution_context)`` after a recorded statement ran."""


def _lazy_load_origin(state: ORMExecuteState) -> str | None:
    """``Class.attr`` for a load fired by attribute access on an already loaded object."""
    if not state.is_select or state.lazy_loaded_from is None:
        return None
    path = state.loader_strategy_path
    if path is not None and len(path) >= 2:
        prop = path[-1]
        parent = getattr(prop, "parent", None)
        class_ = getattr(parent, "class_", None)
        key = getattr(prop, "key", None)
        if class_ is not None and key is not None:
            return f"{class_.__name__}.{key}"
    return f"{state.lazy_loaded_from.class_.__name__}.<lazy load>"


class Recorder:
    """Class-level listeners on ``Engine`` and ``Session`` routing statements to active QueryLogs.

    Class-level listening means any engine the code under test creates, sync or async, is captured
    without wiring. The active logs are shared by all threads on purpose: statements from threads
    the test starts belong to the test.
    """

    def __init__(self) -> None:
        self._active: tuple[QueryLog, ...] = ()
        self._switch = threading.Lock()
        self._callsites = CallSiteFinder()
        self._lazy_origin = threading.local()
        self._installed = False
        self.after_statement: AfterStatement | None = None
        """Called after each recorded statement ran (the plan checks EXPLAIN it there)."""

    @property
    def active(self) -> tuple[QueryLog, ...]:
        return self._active

    def install(self) -> None:
        if self._installed:
            return
        event.listen(Engine, "before_cursor_execute", self._before_cursor_execute)
        event.listen(Engine, "after_cursor_execute", self._after_cursor_execute)
        event.listen(Session, "do_orm_execute", self._do_orm_execute)
        self._installed = True

    def uninstall(self) -> None:
        if not self._installed:
            return
        event.remove(Engine, "before_cursor_execute", self._before_cursor_execute)
        event.remove(Engine, "after_cursor_execute", self._after_cursor_execute)
        event.remove(Session, "do_orm_execute", self._do_orm_execute)
        self._installed = False

    @contextmanager
    def recording(self, log: QueryLog) -> Iterator[QueryLog]:
        """Send statements to ``log`` (as well as to the logs already active) inside the block."""
        with self._switch:
            self._active = (*self._active, log)
        try:
            yield log
        finally:
            with self._switch:
                self._active = tuple(active for active in self._active if active is not log)

    @contextmanager
    def paused(self) -> Iterator[None]:
        """Record nothing inside the block (the plugin's own statements, e.g. fixture set-up)."""
        with self._switch:
            saved, self._active = self._active, ()
        try:
            yield
        finally:
            with self._switch:
                self._active = saved

    def _do_orm_execute(self, state: ORMExecuteState) -> None:
        if self._active:
            self._lazy_origin.value = _lazy_load_origin(state)

    def _before_cursor_execute(
        self,
        conn: Connection,
        cursor: Any,
        statement: str,
        parameters: Any,
        context: Any,
        executemany: bool,
    ) -> None:
        active = self._active
        if not active:
            return
        lazy_load = getattr(self._lazy_origin, "value", None)
        if lazy_load is not None:
            self._lazy_origin.value = None
        shape = shape_of(statement)
        rows = len(parameters) if executemany else _insertmanyvalues_rows(context, parameters)
        record = Statement(
            sql=statement,
            display_sql=shape.display_sql,
            fingerprint=shape.fingerprint,
            kind=shape.kind,
            parameters=parameters,
            executemany_rows=rows,
            call_site=self._callsites.find(sys._getframe(1)),
            lazy_load=lazy_load,
            connection=conn,
            started=time.perf_counter(),
        )
        for log in active:
            log.append(record)
        if context is not None:
            setattr(context, _STATEMENT_ATTRIBUTE, record)

    def _after_cursor_execute(
        self,
        conn: Connection,
        cursor: Any,
        statement: str,
        parameters: Any,
        context: Any,
        executemany: bool,
    ) -> None:
        record: Statement | None = getattr(context, _STATEMENT_ATTRIBUTE, None)
        if record is None:
            return
        record.duration = time.perf_counter() - record.started
        rowcount = getattr(cursor, "rowcount", -1)
        record.rowcount = rowcount if isinstance(rowcount, int) and rowcount >= 0 else None
        setattr(context, _STATEMENT_ATTRIBUTE, None)
        if self.after_statement is not None:
            self.after_statement(record, conn, cursor, context)


def _insertmanyvalues_rows(context: Any, parameters: Any) -> int:
    """Rows in one insertmanyvalues batch: its parameters over the parameters of one row."""
    compiled_parameters = getattr(context, "compiled_parameters", None)
    if (
        not compiled_parameters
        or len(compiled_parameters) < 2
        or getattr(getattr(context, "execute_style", None), "name", "") != "INSERTMANYVALUES"
    ):
        return 1
    per_row = len(compiled_parameters[0]) or 1
    return max(1, len(parameters) // per_row)
