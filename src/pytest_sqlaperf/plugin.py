"""pytest hooks and wiring: options, markers, the per-test lifecycle and the terminal summary."""

from __future__ import annotations

import contextlib
import importlib
import secrets
import signal
import threading
from collections.abc import Generator
from typing import TYPE_CHECKING, Any

import pytest

from . import detection, hookspecs, markers, planning, reporting, settings
from .capture.listeners import Recorder
from .capture.querylog import QueryLog
from .checks import budget as budget_check
from .checks.budget import Budget
from .checks.findings import Finding
from .errors import SqlaperfError
from .fixtures import (  # noqa: F401  # pytest finds fixtures in the plugin module's namespace
    _sqlaperf_loop_pools,
    sqlaperf,
    sqlaperf_async_engine,
    sqlaperf_async_session,
    sqlaperf_async_url,
    sqlaperf_database,
    sqlaperf_engine,
    sqlaperf_session,
    sqlaperf_url,
)
from .records import RECORD_ATTRIBUTE, Compact, RecordStore, StoredRecord, encode_record
from .reports import terminal

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection

    from .postgres.server import ServerInfo
    from .provision import Provisioner, WorkerDatabase

PLUGIN_KEY = pytest.StashKey["SqlaperfPlugin"]()
STATE_KEY = pytest.StashKey["TestState"]()
_PER_TEST_KEYS: tuple[pytest.StashKey[Any], ...] = (STATE_KEY, markers.NAMES_KEY)


class TestState:
    """One test's state, from its set-up to its teardown (one stash entry: the per-test hooks
    read it several times each, and run for every test)."""

    __test__ = False  # not a test class, whatever pytest's python_classes say

    __slots__ = (
        "budget",
        "complete",
        "findings",
        "log",
        "n_plus_one",
        "plans",
        "record",
        "seq_scan",
        "violation",
    )

    def __init__(self, log: QueryLog) -> None:
        self.log = log
        self.budget: Budget | None = None
        self.violation: str | None = None
        # (an empty tuple and None until needed: the fewer objects a test's state makes, the
        # less the plugin moves the garbage collector's timing in the user's tests)
        self.findings: tuple[Finding, ...] = ()
        """The test's findings so far; checks add to it, the record carries it."""
        self.plans: dict[str, Any] | None = None
        """Plan facts per fingerprint for the test's record (filled by the plan checks)."""
        self.complete = False
        """Whether the test's body returned (all its statements ran), failed after or not."""
        self.record: Compact | None = None
        """The test's record as the store keeps it, from its call report on."""
        self.n_plus_one: tuple[str, Any] | None = None
        """(mode, options) of the N+1 check for this test (set by the detection at set-up)."""
        self.seq_scan: frozenset[str] | None = None
        """The tables of the test's @no_seq_scan marker, when it has one."""


def pytest_addhooks(pluginmanager: pytest.PytestPluginManager) -> None:
    pluginmanager.add_hookspecs(hookspecs)


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("sqlaperf", "SQLAlchemy performance (pytest-sqlaperf)")
    for option in settings.OPTIONS:
        if option.flag:
            if option.ini_type == "bool":
                group.addoption(
                    option.cli,
                    action="store_true",
                    default=None,
                    dest=option.dest,
                    help=option.help,
                )
            else:
                group.addoption(option.cli, default=None, dest=option.dest, help=option.help)
        parser.addini(option.ini, option.help, type=option.ini_type, default=None)
    detection.addoption(parser, group)
    planning.addoption(parser, group)
    reporting.addoption(parser, group)


def pytest_configure(config: pytest.Config) -> None:
    for spec in markers.MARKERS:
        config.addinivalue_line("markers", spec.line)
    try:
        resolved = settings.resolve(config)
    except settings.SettingsError as error:
        raise pytest.UsageError(str(error)) from None
    plugin = SqlaperfPlugin(config, resolved)
    config.stash[PLUGIN_KEY] = plugin
    config.pluginmanager.register(plugin, "sqlaperf-session")
    plugin.detection = detection.Detection(config, plugin)
    plugin.plan_checks = planning.PlanChecks(config, plugin)
    plugin.reporting = reporting.Reporting(config, plugin)
    plugin.extensions = [plugin.detection, plugin.plan_checks, plugin.reporting]
    for extension in plugin.extensions:
        config.pluginmanager.register(extension, f"sqlaperf-{type(extension).__name__.lower()}")


def pytest_unconfigure(config: pytest.Config) -> None:
    plugin = config.stash.get(PLUGIN_KEY, None)
    if plugin is not None:
        del config.stash[PLUGIN_KEY]
        try:
            for extension in plugin.extensions:
                config.pluginmanager.unregister(extension)
                extension.close()
        finally:
            config.pluginmanager.unregister(plugin)
            plugin.close()


def plugin_of(config: pytest.Config) -> SqlaperfPlugin:
    """The run's plugin object (raises a usage error if the plugin was not configured)."""
    plugin = config.stash.get(PLUGIN_KEY, None)
    if plugin is None:
        raise pytest.UsageError(
            "pytest-sqlaperf is not active in this run (was it disabled with -p no:sqlaperf?)"
        )
    return plugin


def _load_attribute(reference: str) -> Any:
    module_name, _, attribute_path = reference.partition(":")
    try:
        value: Any = importlib.import_module(module_name.strip())
    except Exception as error:  # any import failure is the user's to fix; say which
        raise SqlaperfError(
            f"sqlaperf_metadata = {reference!r}: cannot import {module_name!r} "
            f"({type(error).__name__}: {error}); check the name and that it is importable "
            "(e.g. set pythonpath in your pytest configuration)"
        ) from None
    for part in attribute_path.strip().split("."):
        try:
            value = getattr(value, part)
        except AttributeError:
            raise SqlaperfError(
                f"sqlaperf_metadata = {reference!r}: {module_name} has no attribute "
                f"{attribute_path!r}; point it at a MetaData, e.g. myapp.models:Base.metadata"
            ) from None
    return value


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def _stop_cleanly_on_sigterm() -> signal.Handlers | None:
    """Treat SIGTERM (CI cancelling a job) like Ctrl-C, so the server is stopped and removed.

    Python's default SIGTERM ends the process without running cleanup. Only installed when
    nobody else handles SIGTERM, and only in the main thread (where signals are delivered).
    """
    if threading.current_thread() is not threading.main_thread():
        return None
    if signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL:
        return None
    signal.signal(signal.SIGTERM, _interrupt)
    return signal.SIG_DFL


def _outcome(report: pytest.TestReport) -> str:
    """passed, failed or skipped; xfailed and xpassed told apart, as pytest's summary does."""
    if hasattr(report, "wasxfail"):
        return "xfailed" if report.skipped else "xpassed"
    return report.outcome


class SqlaperfPlugin:
    """The run's state: settings, the statement recorder, the database provisioner and records."""

    def __init__(self, config: pytest.Config, resolved: settings.Settings) -> None:
        self.config = config
        self.settings = resolved
        self.recorder = Recorder()
        self.recorder.install()
        self.records = RecordStore()
        self._logged_report: pytest.TestReport | None = None
        """The last call report whose record the store took (its attribute goes at the next)."""
        self._provisioner: Provisioner | None = None
        self._database: WorkerDatabase | None = None
        self._handoff_error: str | None = None
        self._server_description: str | None = None
        workerinput: dict[str, Any] | None = getattr(config, "workerinput", None)
        self._handoff: dict[str, Any] | None = None
        if workerinput is not None and "sqlaperf" in workerinput:
            self.run_id = workerinput["sqlaperf"]["run_id"]
            self._handoff = workerinput["sqlaperf"].get("handoff")
            self._handoff_error = workerinput["sqlaperf"].get("error")
            self._worker_id: str = workerinput.get("workerid", "worker")
        else:
            self.run_id = secrets.token_hex(6)
            self._worker_id = "main"
        self._previous_sigterm = _stop_cleanly_on_sigterm()
        self.extensions: list[detection.Detection | planning.PlanChecks | reporting.Reporting] = []
        # the checks, made and registered by pytest_configure right after this
        self.detection: detection.Detection
        self.plan_checks: planning.PlanChecks
        self.reporting: reporting.Reporting
        self.current_item: pytest.Item | None = None
        """The test whose call phase is running (checks that run per statement need it)."""

    @property
    def server_info(self) -> ServerInfo | None:
        """The run's server, once started or attached to; None when no test asked for one."""
        return self._provisioner.info if self._provisioner is not None else None

    @property
    def show_parameters(self) -> bool:
        return self.settings.show_params or self.config.get_verbosity() > 0

    # -- databases ------------------------------------------------------------------------------

    def _setup_database(self, connection: Connection) -> None:
        if self.settings.metadata is not None:
            metadata = _load_attribute(self.settings.metadata)
            create_all = getattr(metadata, "create_all", None)
            if create_all is None:
                raise SqlaperfError(
                    f"sqlaperf_metadata = {self.settings.metadata!r} is a "
                    f"{type(metadata).__name__}, not a MetaData; point it at one, "
                    "e.g. myapp.models:Base.metadata"
                )
            create_all(connection)
        self.config.hook.pytest_sqlaperf_setup_database(connection=connection)

    def _get_provisioner(self) -> Provisioner:
        if self._provisioner is None:
            from .provision import Provisioner

            self._provisioner = Provisioner(
                self.settings, self.run_id, self._setup_database, attached=self._handoff
            )
        return self._provisioner

    def worker_database(self) -> WorkerDatabase:
        """This process's database (started on first use); a set-up failure fails the test."""
        if self._handoff_error is not None:
            pytest.fail(self._handoff_error, pytrace=False)
        if self._database is None:
            try:
                with self.recorder.paused():
                    self._database = self._get_provisioner().database(self._worker_id)
            except SqlaperfError as error:
                self._handoff_error = str(error)
        if self._database is None:  # failed outside the except: no chained traceback
            pytest.fail(self._handoff_error or "the test database could not be made", pytrace=False)
        return self._database

    def close(self) -> None:
        self.recorder.uninstall()
        try:
            if self._provisioner is not None:
                self._provisioner.close()
        finally:
            if self._previous_sigterm is not None:
                signal.signal(signal.SIGTERM, self._previous_sigterm)

    @pytest.hookimpl(optionalhook=True)
    def pytest_configure_node(self, node: Any) -> None:
        """xdist controller: one server and template for all workers, started before they are."""
        entry: dict[str, Any] = {"run_id": self.run_id}
        try:
            entry["handoff"] = self._get_provisioner().handoff()
        except SqlaperfError as error:
            entry["error"] = str(error)
        node.workerinput["sqlaperf"] = entry

    # -- per test -------------------------------------------------------------------------------

    def state_of(self, item: pytest.Item) -> TestState:
        """The test's state (made at set-up, dropped at teardown)."""
        state = item.stash.get(STATE_KEY, None)
        if state is None:
            log = QueryLog(
                item.nodeid, count_transaction_control=self.settings.count_transaction_control
            )
            state = item.stash[STATE_KEY] = TestState(log)
        return state

    def log_of(self, item: pytest.Item) -> QueryLog:
        """The test's QueryLog (made at set-up; it records during the call phase only)."""
        return self.state_of(item).log

    # The per-test hooks of the plugin and its checks are these four: one call each per phase,
    # the checks' parts called from here, rather than a hook (or wrapper) per check.

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_setup(self, item: pytest.Item) -> None:
        state = self.state_of(item)
        if "max_queries" in markers.names(item):
            mark = item.get_closest_marker("max_queries")
            state.budget = None if mark is None else markers.parse(mark, item.nodeid)
        self.detection.setup(item, state)
        self.plan_checks.setup(item, state)

    @pytest.hookimpl(wrapper=True, trylast=True)
    def pytest_runtest_call(self, item: pytest.Item) -> Generator[None, None, None]:
        # trylast: the innermost wrapper, so "complete" means the test's body returned
        state = self.state_of(item)
        self.plan_checks.begin(state)
        self.current_item = item
        recorder = self.recorder
        recorder.start(state.log)  # not a context manager: two objects fewer per test
        try:
            try:
                result = yield
            finally:
                recorder.stop(state.log)
        except BaseException:
            self.current_item = None
            self._checks(item, state, may_fail=False)  # recorded for reports; it failed already
            raise
        self.current_item = None
        state.complete = True
        failure = self._checks(item, state, may_fail=True)
        if failure is not None:
            pytest.fail(failure, pytrace=False)
        return result

    def _checks(self, item: pytest.Item, state: TestState, *, may_fail: bool) -> str | None:
        """Run the checks on a test's call phase: its findings go to its record, and the first
        check that fails the test (budget, then N+1, then plans) gives the failure message."""
        failure = None
        if may_fail and state.budget is not None:
            finding = budget_check.check(
                state.log, state.budget, show_parameters=self.show_parameters
            )
            if finding is not None:
                state.violation = finding.message
                failure = "\n".join((finding.message, *finding.evidence))
        failure = (
            self.detection.after_call(item, state, may_fail=failure is None and may_fail) or failure
        )
        return self.plan_checks.after_call(state, may_fail=failure is None and may_fail) or failure

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_makereport(
        self, item: pytest.Item, call: pytest.CallInfo[None]
    ) -> Generator[None, pytest.TestReport, pytest.TestReport]:
        report = yield
        if call.when != "call":
            if call.when == "teardown":
                # made once the teardown ran, raised or not: items live for the whole run, so
                # what the test's record summarises goes now
                state = item.stash.get(STATE_KEY, None)
                if state is not None:
                    state.log.clear()
                for key in _PER_TEST_KEYS:
                    if key in item.stash:
                        del item.stash[key]
            return report
        state = item.stash.get(STATE_KEY, None)
        if state is not None:
            budget = state.budget
            compact = state.record = self.records.make(
                item.nodeid,
                state.log,
                rootdir=str(self.config.rootpath),
                outcome=_outcome(report),
                budget=None if budget is None else budget.describe(),
                violation=state.violation,
                findings=state.findings,
                plans=state.plans,
            )
            setattr(report, RECORD_ATTRIBUTE, StoredRecord(self.records, compact))
            self.reporting.made(item, report, compact, complete=state.complete)
        return report

    @pytest.hookimpl(wrapper=True)
    def pytest_report_to_serializable(
        self, config: pytest.Config, report: pytest.CollectReport | pytest.TestReport
    ) -> Generator[None, dict[str, Any] | None, dict[str, Any] | None]:
        """A report leaving the process (xdist's worker) takes its record as JSON text."""
        data = yield
        if data is not None:
            value = data.get(RECORD_ATTRIBUTE)
            if isinstance(value, StoredRecord):
                data[RECORD_ATTRIBUTE] = encode_record(value.record())
        return data

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        # Every logreport hook has seen the previous call report by now (xdist's worker has
        # sent it): its record goes, so the reports pytest keeps to the end stay small.
        previous = self._logged_report
        if previous is not None and previous is not report:
            with contextlib.suppress(AttributeError):
                delattr(previous, RECORD_ATTRIBUTE)
            self._logged_report = None
        if report.when != "call":
            return
        value = getattr(report, RECORD_ATTRIBUTE, None)
        if isinstance(value, StoredRecord):
            if value.store is self.records:
                self.records.add(value.compact)
            else:  # made by another run's store (a pytest run inside a test, say)
                self.records.append(value.record())
        elif isinstance(value, str):  # from an xdist worker
            self.records.append_encoded(value)
        else:
            return
        self._logged_report = report
        self.reporting.stored(report, len(self.records) - 1)

    # -- terminal -------------------------------------------------------------------------------

    def pytest_report_header(self, config: pytest.Config) -> str:
        return terminal.header(self.settings)

    def pytest_terminal_summary(self, terminalreporter: pytest.TerminalReporter) -> None:
        terminal.summary(terminalreporter, self.records.summaries(), self.server_info)
