"""SQLAlchemy event wiring: every engine's statements go to the QueryLogs that are active."""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, ClassVar

from sqlalchemy import event
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.engine.interfaces import ExecuteStyle
from sqlalchemy.orm import Mapper
from sqlalchemy.orm.base import instance_state

from . import ormloads
from .callsite import CallSiteFinder
from .fingerprint import shape_of
from .querylog import QueryLog, Statement

_STATEMENT_ATTRIBUTE = "_sqlaperf_statement"

AfterStatement = Callable[[Statement, Connection, Any, Any], None]
"""``(statement, connection, dbapi_cursor, execution_context)`` after a recorded statement ran."""


class Recorder:
    """Class-level listeners on ``Engine`` and ``Session`` routing statements to active QueryLogs.

    Class-level listening means any engine the code under test creates, sync or async, is captured
    without wiring. The active logs are shared by all threads on purpose: statements from threads
    the test starts belong to the test.
    """

    _installed_stack: ClassVar[list[Recorder]] = []
    """Recorders installed, innermost last: a pytest run inside a test (pytester) owns its own
    statements, so only the innermost recorder records."""

    def __init__(self) -> None:
        self._active: tuple[QueryLog, ...] = ()
        self._switch = threading.Lock()
        self._callsites = CallSiteFinder()
        self._thread = threading.local()  # the pending ORM load and the last statement, per thread
        self._loaded_by: dict[int, Statement] = {}  # id(InstanceState) -> statement that loaded it
        self._installed = False
        self.after_statement: AfterStatement | None = None
        """Called after each recorded statement ran (the plan checks EXPLAIN it there)."""

    @property
    def active(self) -> tuple[QueryLog, ...]:
        return self._active

    def install(self) -> None:
        if self._installed:
            return
        # retval=True: SQLAlchemy calls the listener directly instead of through a wrapper
        event.listen(Engine, "before_cursor_execute", self._before_cursor_execute, retval=True)
        event.listen(Engine, "after_cursor_execute", self._after_cursor_execute)
        event.listen(Mapper, "load", self._on_load)
        Recorder._installed_stack.append(self)
        self._installed = True

    def uninstall(self) -> None:
        if not self._installed:
            return
        event.remove(Engine, "before_cursor_execute", self._before_cursor_execute)
        event.remove(Engine, "after_cursor_execute", self._after_cursor_execute)
        event.remove(Mapper, "load", self._on_load)
        Recorder._installed_stack.remove(self)
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
                if not self._active:
                    self._loaded_by = {}

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

    def _recording(self) -> bool:
        return bool(self._active) and Recorder._installed_stack[-1] is self

    def _on_load(self, target: object, context: object) -> None:
        if self._recording():
            statement = getattr(self._thread, "statement", None)
            if statement is not None:
                self._loaded_by[id(instance_state(target))] = statement

    def _before_cursor_execute(
        self,
        conn: Connection,
        cursor: Any,
        statement: str,
        parameters: Any,
        context: Any,
        executemany: bool,
    ) -> tuple[str, Any]:
        active = self._active
        if not active or Recorder._installed_stack[-1] is not self:
            return statement, parameters
        orm_load = ormloads.from_context(context, self._loaded_by) if context is not None else None
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
            lazy_load=orm_load.target if orm_load and orm_load.kind == "lazy" else None,
            orm_load=orm_load,
            connection=conn,
            started=time.perf_counter(),
        )
        self._thread.statement = record
        for log in active:
            log.append(record)
        if context is not None:
            setattr(context, _STATEMENT_ATTRIBUTE, record)
        return statement, parameters

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
        # only the innermost recorder (the one that recorded it) finishes the statement
        if record is None or Recorder._installed_stack[-1] is not self:
            return
        record.duration = time.perf_counter() - record.started
        rowcount = getattr(cursor, "rowcount", -1)
        record.rowcount = rowcount if isinstance(rowcount, int) and rowcount >= 0 else None
        setattr(context, _STATEMENT_ATTRIBUTE, None)
        if self.after_statement is not None:
            self.after_statement(record, conn, cursor, context)


def _insertmanyvalues_rows(context: Any, parameters: Any) -> int:
    """Rows in one insertmanyvalues batch: its parameters over the parameters of one row."""
    if getattr(context, "execute_style", None) is not ExecuteStyle.INSERTMANYVALUES:
        return 1
    compiled_parameters = context.compiled_parameters
    if not compiled_parameters or len(compiled_parameters) < 2:
        return 1
    per_row = len(compiled_parameters[0]) or 1
    return max(1, len(parameters) // per_row)
