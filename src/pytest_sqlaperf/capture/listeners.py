"""SQLAlchemy event wiring: every engine's statements go to the QueryLogs that are active.

Statements are taken at the dialect's ``do_execute`` / ``do_executemany`` /
``do_execute_no_params`` events, not at the engine's ``before_cursor_execute`` and
``after_cursor_execute``. Any engine-level listener makes SQLAlchemy dispatch six engine events
around every statement (``before_execute``, ``after_execute``, the cursor events, transaction
events), which cost a Core ``SELECT 1`` 12 % more client instructions with a listener that does
nothing (callgrind, docs/benchmarks.md); a dialect-level listener costs nothing measurable. The
listener runs the statement itself (through the dialect, or through listeners registered after
it), so one call sees it before and after: the call site, the duration, the row count, and the
moment right after it ran, where the plan checks EXPLAIN it. A listener that another library
registers later with ``insert=True`` runs before ours; if it returns True (it ran the
statement itself), SQLAlchemy calls no other listener and the statement is not recorded.

The listener is in C where the package was built with a C compiler (``_speedups.c``): the same
steps as ``run`` below, about half its instructions on a Core statement. ``run`` stays the
reference and the fallback (no compiler, or ``SQLAPERF_PURE_PYTHON=1``); the capture tests run
against both and compare their records.
"""

from __future__ import annotations

import itertools
import os
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from time import perf_counter
from typing import Any, ClassVar

from sqlalchemy import event
from sqlalchemy.engine import Connection
from sqlalchemy.engine.interfaces import Dialect, ExecuteStyle
from sqlalchemy.orm import Mapper

try:  # what SQLAlchemy's dispatch holds for an event with class-level listeners only
    from sqlalchemy.event.attr import _EmptyListener
except ImportError:  # pragma: no cover - a SQLAlchemy without it: every statement checks them all

    class _EmptyListener:  # type: ignore[no-redef]
        parent_listeners: Any = ()


from . import ormloads
from .callsite import CallSiteFinder
from .fingerprint import shape_of
from .querylog import QueryLog, Statement

try:  # the listeners in C (_speedups.c), built at install when a C compiler is there
    from . import _speedups  # type: ignore[attr-defined]
except ImportError:  # without: the listeners run in Python, with the same results
    _speedups = None

AfterStatement = Callable[[Statement, Connection, Any, Any], "int | None"]
"""``(statement, connection, dbapi_cursor, execution_context)`` after a recorded statement ran.

It may answer :data:`QUIET_VALUES` or :data:`QUIET_SHAPE`: the listeners then do not call it
again for the statement's values, or for its shape, until :meth:`Recorder.forget_quiet`.
"""

QUIET_VALUES = 1
"""An after_statement hook's answer: statements of this shape with these values bring it
nothing new (the plan checks: a plan this test has already taken in)."""
QUIET_SHAPE = 2
"""An after_statement hook's answer: no statement of this shape brings it anything new (a
shape without a plan)."""

_INSERTMANYVALUES = ExecuteStyle.INSERTMANYVALUES
"""Read once: an enum member read through its class costs ten times a module global."""

_EVENTS = ("do_execute", "do_executemany", "do_execute_no_params")


class Recorder:
    """Class-level listeners on ``Dialect`` and ``Mapper`` routing statements to active QueryLogs.

    Class-level listening means any engine the code under test creates, sync or async, is captured
    without wiring. The active logs are shared by all threads on purpose: statements from threads
    the test starts belong to the test.
    """

    _installed_stack: ClassVar[list[Recorder]] = []
    """Recorders installed, innermost last: a pytest run inside a test (pytester) owns its own
    statements, so only the innermost recorder records. The dialect listeners are registered once
    for all of them (see :func:`_listen`)."""

    def __init__(self) -> None:
        self._active: tuple[QueryLog, ...] = ()
        self._switch = threading.Lock()
        self._thread = threading.local()  # the serial of the last statement, per thread
        self._serials = itertools.count()  # each recorded statement's serial (QueryLog)
        self._loaded_by: dict[int, int] = {}  # id(InstanceState) -> serial of the statement
        self._installed = False
        self._after: AfterStatement | None = None
        # what the C listeners read (see _speedups.c): kept equal to the attributes above
        self._state = _speedups.State(self._serials) if _speedups is not None else None
        self._quiet: dict[str, Any] = {}
        """What the hook said brings it nothing new: fingerprint -> True (the whole shape) or
        the set of the keys of the values (:func:`_quiet_key`); the State's ``quiet`` too."""
        self.forget_quiet()
        self._callsites = CallSiteFinder()

    @property
    def _callsites(self) -> CallSiteFinder:
        """Finds and caches the call sites of statements."""
        return self._finder

    @_callsites.setter
    def _callsites(self, finder: CallSiteFinder) -> None:
        self._finder = finder
        if self._state is not None:
            state = self._state
            state.skipped, state.user, state.sites = finder.skipped, finder.user, finder.sites
            state.find = finder.find

    @property
    def after_statement(self) -> AfterStatement | None:
        """Called after each recorded statement ran (the plan checks EXPLAIN it there)."""
        return self._after

    @after_statement.setter
    def after_statement(self, after: AfterStatement | None) -> None:
        self._after = after
        if self._state is not None:
            self._state.after_statement = after
        self.forget_quiet()

    def forget_quiet(self) -> None:
        """Call the after_statement hook again for every statement, whatever it answered
        before (the plan checks: at the start of each test, whose plans it takes in anew)."""
        self._quiet = {}
        if self._state is not None:
            self._state.quiet = self._quiet

    def _set_active(self, logs: tuple[QueryLog, ...]) -> None:
        # with self._switch held
        self._active = logs
        if not logs:
            self._loaded_by = {}
        if self._state is not None:
            self._state.logs = tuple(log._data for log in logs)
            self._state.loaded_by = self._loaded_by

    @property
    def active(self) -> tuple[QueryLog, ...]:
        return self._active

    def install(self) -> None:
        if self._installed:
            return
        if not Recorder._installed_stack:
            _listen()
        event.listen(Mapper, "load", self._on_load, raw=True)
        Recorder._installed_stack.append(self)
        _set_current()
        self._installed = True

    def uninstall(self) -> None:
        if not self._installed:
            return
        event.remove(Mapper, "load", self._on_load)
        Recorder._installed_stack.remove(self)
        _set_current()
        if not Recorder._installed_stack:
            _unlisten()
        self._installed = False

    def start(self, log: QueryLog) -> None:
        """Send statements to ``log`` as well as to the logs already active, until :meth:`stop`.

        (The plugin's per-test path: :meth:`recording` is the same as a context manager.)
        """
        with self._switch:
            self._set_active((*self._active, log))

    def stop(self, log: QueryLog) -> None:
        """Stop sending statements to ``log``."""
        with self._switch:
            self._set_active(tuple(active for active in self._active if active is not log))

    @contextmanager
    def recording(self, log: QueryLog) -> Iterator[QueryLog]:
        """Send statements to ``log`` (as well as to the logs already active) inside the block."""
        self.start(log)
        try:
            yield log
        finally:
            self.stop(log)

    @contextmanager
    def paused(self) -> Iterator[None]:
        """Record nothing inside the block (the plugin's own statements, e.g. fixture set-up)."""
        with self._switch:
            saved = self._active
            self._set_active(())
        try:
            yield
        finally:
            with self._switch:
                self._set_active(saved)

    def _on_load(self, state: object, context: object) -> None:
        # once per object the ORM loads: raw=True hands the InstanceState without a wrapper
        if self._active and _current is self:
            serial = (
                self._state.last_serial()
                if _accelerated and self._state is not None
                else getattr(self._thread, "serial", None)
            )
            if serial is not None:
                self._loaded_by[id(state)] = serial


_current: Recorder | None = None
"""The innermost installed recorder (the last of ``Recorder._installed_stack``): the one that
records. A module global, read once per statement."""


def _set_current() -> None:
    global _current
    _current = Recorder._installed_stack[-1] if Recorder._installed_stack else None
    if _accelerated:  # the C listeners read the recording recorder's State
        state = _current._state if _current is not None else None
        listener: Any
        for listener in _LISTENERS.values():
            listener.state = state


_NO_PARAMETERS: Any = object()
_NO_LOAD = ormloads.NO_LOAD

_FIRST_FRAME = 4
"""Frames from ``run`` to the first the call-site walk looks at: the ones between are always
SQLAlchemy's. ``run`` (0) is called by ``Connection._exec_single_context`` or
``_exec_insertmany_context`` (1) or ``_cursor_execute`` (1), called by ``_execute_context``
(2) or ``DefaultExecutionContext._execute_scalar`` (2), called by one of Connection's private
``_execute_*`` / ``_exec_driver_sql`` methods or ``_exec_default`` (3), called by SQLAlchemy's
``_execute_on_connection``, ``exec_driver_sql`` or ``_execute_default`` (4). Only code that
calls SQLAlchemy's private methods itself could be skipped; its caller is then the call site.
``tests/plugin/test_capture.py`` checks the frames skipped are SQLAlchemy's on every path."""

_getframe = sys._getframe
_new_statement = tuple.__new__
"""``tuple.__new__(Statement, values)``: a Statement without a Python-level constructor."""


def _quiet_key(parameters: Any) -> int | None:
    """The key of a statement's values among its shape's quiet ones: ``hash(tuple(values))``
    as ``explain.values_key`` computes it, for a dict, a list, a tuple or None (no parameters);
    None for other forms and for values that cannot be hashed (the hook is then called for
    every statement). The C listener computes the same (``quiet_key`` in _speedups.c)."""
    form = type(parameters)
    try:
        if form is dict:
            return hash(tuple(parameters.values()))
        if form is list:
            return hash(tuple(parameters))
        if form is tuple or parameters is None:
            return hash(parameters)
    except Exception:  # values that cannot be hashed (lists, dicts: arrays and JSON)
        return None
    return None


def _insertmanyvalues_rows(context: Any, parameters: Any) -> int:
    """Rows in one insertmanyvalues batch: its parameters over the parameters of one row."""
    compiled_parameters = context.compiled_parameters
    if not compiled_parameters or len(compiled_parameters) < 2:
        return 1
    per_row = len(compiled_parameters[0]) or 1
    return max(1, len(parameters) // per_row)


def _listener(name: str) -> Callable[..., bool]:
    """The listener of one of the dialect's execute events: it records the statement, runs it
    as SQLAlchemy would have without us (through the listeners of the event registered after
    ours, the first to return True having run it, else the dialect), then times it, reads its
    row count and hands it to the EXPLAIN step. True tells SQLAlchemy it ran.

    One function per event, with what differs between them (the event's name, whether it
    has parameters, whether they are many) bound in: the listener runs for every statement.
    """
    executemany = name == "do_executemany"
    # do_execute_no_params has a wrapper of its own (below) between SQLAlchemy and run
    first_frame = _FIRST_FRAME + (name == "do_execute_no_params")
    listener: Callable[..., bool]

    def run(cursor: Any, statement: str, parameters: Any, context: Any) -> bool:
        # Runs for every statement of every test, measured with callgrind and a bytecode count
        # (docs/benchmarks.md): hence one flat function, local names, no keyword arguments, and
        # the call-site walk's usual case inlined.
        if parameters is _NO_PARAMETERS:
            arguments: tuple[Any, ...] = (cursor, statement, context)
            parameters = None
        else:
            arguments = (cursor, statement, parameters, context)
        recorder = _current
        if (
            recorder is None
            or not recorder._active
            # not the dialect's own first-connect queries (server version, schema, settings):
            # they run on a connection SQLAlchemy makes without autobegin and engine events.
            # (SQLAlchemy always passes a context: None fails here, as it would in the dialect.)
            or not context.root_connection._allow_autobegin
        ):
            _execute(name, listener, context.dialect, arguments)
            return True
        # The call site: the first frame, from the statement outwards, of a file that is not
        # SQLAlchemy's, ours or the standard library's. The walk starts past the frames that
        # are always SQLAlchemy's (see _FIRST_FRAME); each frame it steps through costs a frame
        # object, so it is one set-membership test per frame.
        callsites = recorder._finder
        skipped = callsites.skipped
        try:
            frame: Any = _getframe(first_frame)
        except ValueError:  # a stack shallower than _FIRST_FRAME (a greenlet's)
            frame = None
        # (no exception at the bottom of a greenlet's stack, inside AsyncSession and
        # AsyncConnection, the usual case there: raising one costs half a microsecond)
        while frame and frame.f_code.co_filename in skipped:
            frame = frame.f_back
        if frame is None:  # the bottom of this stack: the user's frame is in another greenlet
            site = None
        else:
            code = frame.f_code
            site = (
                callsites.sites.get((code.co_filename, code.co_firstlineno, frame.f_lasti))
                if code.co_filename in callsites.user
                else None
            )
        if site is None:  # a file or a line not seen before, or the bottom of the stack
            site = callsites.find(frame)
        shape = shape_of(statement)
        if executemany:
            rows = len(parameters)
        elif shape.kind == "insert" and context.execute_style is _INSERTMANYVALUES:
            rows = _insertmanyvalues_rows(context, parameters)
        else:
            rows = 1
        orm_load, parent = (
            ormloads.from_context(context, recorder._loaded_by)
            if "_sa_orm_load_options" in context.execution_options
            else _NO_LOAD
        )
        serial = next(recorder._serials)
        dialect = context.dialect
        listeners = getattr(dialect.dispatch, name)
        duration = rowcount = None  # they stay None when the statement fails
        started = perf_counter()
        try:
            # ours is the only listener (the usual case): the dialect runs the statement
            if type(listeners) is _EmptyListener and len(listeners.parent_listeners) == 1:
                getattr(dialect, name)(*arguments)
            else:
                _execute(name, listener, dialect, arguments)
            duration = perf_counter() - started
            rowcount = getattr(cursor, "rowcount", -1)
            if type(rowcount) is not int or rowcount < 0:
                rowcount = None
        finally:  # recorded, ran or failed
            # the QueryLog's record (see QueryLog): no new object kept per statement
            form = type(parameters)
            # fmt: off
            if form is dict:
                record = (statement, shape.display_sql, shape.fingerprint, shape.kind, dict, rows,
                          site, orm_load, duration, rowcount, parent, serial, 2 * len(parameters),
                          *parameters, *parameters.values())
            elif (form is tuple or form is list) and not executemany:
                record = (statement, shape.display_sql, shape.fingerprint, shape.kind, form, rows,
                          site, orm_load, duration, rowcount, parent, serial, len(parameters),
                          *parameters)
            else:
                record = (statement, shape.display_sql, shape.fingerprint, shape.kind, parameters,
                          rows, site, orm_load, duration, rowcount, parent, serial, 0)
            # fmt: on
            # what the ORM loads next, in this thread, came from it
            recorder._thread.serial = serial
            for log in recorder._active:
                log._data.extend(record)
        after = recorder._after
        if after is not None:
            # unless the hook said the shape, or these values of it, bring it nothing new
            quiet = recorder._quiet
            fingerprint = shape.fingerprint
            said = quiet.get(fingerprint)
            if said is not True:
                key = None if executemany else _quiet_key(parameters)
                if key is None or said is None or key not in said:
                    # the parameters as they are (what EXPLAIN reads), not as the log's
                    # record keeps them
                    fields = (statement, shape.display_sql, fingerprint, shape.kind, parameters,
                              rows, site, orm_load, duration, rowcount)  # fmt: skip
                    verdict = after(
                        _new_statement(Statement, fields), context.root_connection, cursor, context
                    )
                    if type(verdict) is int:
                        if verdict == QUIET_SHAPE:
                            quiet[fingerprint] = True
                        elif verdict == QUIET_VALUES and key is not None:
                            quiet.setdefault(fingerprint, set()).add(key)
        return True

    if name == "do_execute_no_params":

        def listener(cursor: Any, statement: str, context: Any) -> bool:
            return run(cursor, statement, _NO_PARAMETERS, context)

        return listener
    listener = run
    return listener


def _execute(
    name: str, listener: Callable[..., bool], dialect: Any, arguments: tuple[Any, ...]
) -> None:
    """Run the statement through the listeners of the event registered after ours (the first
    to return True has run it), else through the dialect."""
    listeners = getattr(dialect.dispatch, name)
    if len(listeners) > 1:
        after_ours = False
        for other in listeners:
            if after_ours:
                if other(*arguments):
                    return
            elif other is listener:
                after_ours = True
    getattr(dialect, name)(*arguments)


def _runner(name: str) -> Callable[..., bool]:
    """The listener of one of the dialect's execute events in C (_speedups.c): ``run`` above,
    step for step, without the interpreter's cost per bytecode."""
    runner: Callable[..., bool] = _speedups.Runner(
        name,
        name == "do_executemany",
        name == "do_execute_no_params",
        # it has no frame of its own, and no wrapper for do_execute_no_params: the caller's
        # frame is run's frame 1
        _FIRST_FRAME - 1,
        execute=_execute,
        shape_of=shape_of,
        from_context=ormloads.from_context,
        insertmany_rows=_insertmanyvalues_rows,
        insertmanyvalues=_INSERTMANYVALUES,
        empty_listener=_EmptyListener,
        statement_type=Statement,
        perf_counter=perf_counter,
    )
    return runner


def _listeners(accelerated: bool) -> dict[str, Callable[..., bool]]:
    make = _runner if accelerated else _listener
    return {name: make(name) for name in _EVENTS}


EXTENSION_ERROR: str | None = None
"""Why the listener runs in Python, or None when it runs in C."""
if _speedups is None:
    EXTENSION_ERROR = "the C extension was not built (no C compiler when it was installed?)"
elif os.environ.get("SQLAPERF_PURE_PYTHON", "") not in ("", "0"):
    EXTENSION_ERROR = "SQLAPERF_PURE_PYTHON is set"
_accelerated = EXTENSION_ERROR is None
"""Whether the listeners that record statements are the C ones."""
_LISTENERS: dict[str, Callable[..., bool]] = _listeners(_accelerated)


def accelerated() -> bool:
    """Whether the listeners that record statements are the C ones."""
    return _accelerated


def use_extension(enabled: bool) -> bool:
    """Record with the C listeners (True) or the Python ones; returns the previous choice.

    For tests, which run the capture tests with both; the environment variable
    ``SQLAPERF_PURE_PYTHON=1`` chooses Python for a whole run.
    """
    global _LISTENERS, _accelerated
    previous = _accelerated
    if enabled and _speedups is None:
        raise RuntimeError(EXTENSION_ERROR)
    if enabled != previous:
        installed = bool(Recorder._installed_stack)
        if installed:
            _unlisten()
        _LISTENERS = _listeners(enabled)
        _accelerated = enabled
        if installed:
            _listen()
        _set_current()
    return previous


def _listen() -> None:
    # insert=True: ours runs first, and runs the listeners after it itself (see _execute)
    for name, listener in _LISTENERS.items():
        event.listen(Dialect, name, listener, insert=True)


def _unlisten() -> None:
    for name, listener in _LISTENERS.items():
        event.remove(Dialect, name, listener)
