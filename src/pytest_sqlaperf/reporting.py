"""pytest wiring of the baselines and reports: options, the CI gate, report files."""

from __future__ import annotations

import datetime
import importlib.metadata
import json
import os
import platform
from collections.abc import Generator
from typing import TYPE_CHECKING, Any

import pytest

from . import baseline as baselines
from .baseline import Baseline, BaselineError
from .records import Compact, by_kind_of, count_of
from .reports import delta, gate, github, jsonreport, terminal
from .reports.options import OPTIONS, REPORT_HELP, ReportingSettings, resolve
from .settings import SettingsError

if TYPE_CHECKING:
    from .plugin import SqlaperfPlugin

COMPLETE_ATTRIBUTE = "sqlaperf_complete"
"""TestReport attribute: whether the test's body returned, so its counts are whole."""
METAVARS = {"baseline": "PATH", "baseline_mode": "MODE", "compare": "REPORT"}
SEEN_KEY = "sqlaperf_seen"
"""workeroutput key: the node ids a worker collected or deselected (to tell stale entries)."""


def addoption(parser: pytest.Parser, group: pytest.OptionGroup) -> None:
    """Add the baseline and report options to the ``sqlaperf`` group (and their ini keys)."""
    for option in OPTIONS:
        if option.flag:
            group.addoption(
                option.cli,
                default=None,
                dest=option.dest,
                metavar=METAVARS.get(option.name, "VALUE"),
                help=option.help,
            )
        parser.addini(option.ini, option.help, type=option.ini_type, default=None)
    group.addoption(
        "--sqlaperf-report",
        action="append",
        default=None,
        dest="sqlaperf_report",
        metavar="PATH",
        help=REPORT_HELP,
    )
    parser.addini("sqlaperf_report", REPORT_HELP, type="paths", default=[])


def _now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")


def _version(distribution: str) -> str | None:
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return None


def _json_safe(value: object) -> object:
    try:
        json.dumps(value)
    except (TypeError, ValueError):
        return str(value)
    return value


class Reporting:
    """Baselines and reports of one run, registered as a pytest plugin by ``plugin.py``.

    Only the controller (no ``workerinput``) reads and writes files; workers send it the node ids
    they collected or deselected, which tell a removed test from one that was not selected.
    """

    def __init__(self, config: pytest.Config, core: SqlaperfPlugin) -> None:
        self.config = config
        self.core = core
        self.is_worker = hasattr(config, "workerinput")
        self.settings = ReportingSettings()
        self.before: Baseline | None = None
        self.before_text: str | None = None
        self.compare_with: Baseline | None = None
        self.seen: set[str] = set()
        self.deselected: set[str] = set()
        self._complete: set[int] = set()  # indexes in core.records of complete records
        self.incomplete: set[str] = set()
        self.started = _now()
        self.outcome: gate.Outcome | None = None
        self.compared_with: jsonreport.ComparedWith | None = None
        self.report: jsonreport.Report | None = None
        self.written: list[tuple[str, str]] = []
        self._finished = False
        if self.is_worker or config.option.help or config.option.version:
            return
        inipath = config.inipath
        try:
            self.settings = resolve(
                config,
                os.environ,
                invocation_dir=config.invocation_params.dir,
                ini_dir=inipath.parent if inipath else config.invocation_params.dir,
            )
        except SettingsError as error:
            raise pytest.UsageError(str(error)) from None
        self._read_inputs()

    def _read_inputs(self) -> None:
        settings = self.settings
        if settings.baseline is not None:
            exists = settings.baseline.exists()
            if settings.mode == "check" and not exists:
                raise pytest.UsageError(
                    f"--sqlaperf-baseline-mode=check: the baseline {settings.baseline} does not "
                    "exist; record it first with --sqlaperf-baseline-mode=update"
                )
            if exists:
                try:
                    self.before = baselines.read(settings.baseline)
                    self.before_text = settings.baseline.read_text(encoding="utf-8")
                except BaselineError as error:
                    raise pytest.UsageError(f"--sqlaperf-baseline: {error}") from None
        if settings.compare is not None:
            try:
                loaded = jsonreport.load(settings.compare)
            except BaselineError as error:
                raise pytest.UsageError(f"--sqlaperf-compare: {error}") from None
            self.compare_with = jsonreport.as_baseline(loaded)

    def close(self) -> None:
        """Called at unconfigure."""

    # -- per test: which tests exist, which ran to their end ------------------------------------

    def pytest_deselected(self, items: list[pytest.Item]) -> None:
        self.deselected.update(item.nodeid for item in items)

    def pytest_collection_finish(self, session: pytest.Session) -> None:
        self.seen.update(item.nodeid for item in session.items)
        self.seen |= self.deselected
        workeroutput: dict[str, Any] | None = getattr(self.config, "workeroutput", None)
        if workeroutput is not None:
            workeroutput[SEEN_KEY] = sorted(self.seen)

    @pytest.hookimpl(optionalhook=True)
    def pytest_testnodedown(self, node: Any, error: object) -> None:
        self.seen.update(getattr(node, "workeroutput", {}).get(SEEN_KEY, ()))

    def made(
        self, item: pytest.Item, report: pytest.TestReport, record: Compact, *, complete: bool
    ) -> None:
        """A call report got its record (called by the plugin's makereport hook)."""
        # A test failed after its body returned, by its budget or the N+1 check, still ran every
        # statement: its counts are whole ("complete").
        setattr(report, COMPLETE_ATTRIBUTE, complete)
        # JUnit XML writes the teardown report's properties, which pytest copies from the
        # item: so the counts go on the item (the total too, unless already there).
        properties = [("sqlaperf_statements", count_of(record))]
        properties += [(f"sqlaperf_{k}", n) for k, n in sorted(by_kind_of(record))]
        for name, value in properties:
            if (name, value) not in item.user_properties:
                item.user_properties.append((name, value))

    def stored(self, report: pytest.TestReport, index: int) -> None:
        """The run's store took a call report's record, at ``index`` (called by the plugin's
        logreport hook, for the reports of this process and of xdist's workers)."""
        if getattr(report, COMPLETE_ATTRIBUTE, False):
            self._complete.add(index)
        else:
            self.incomplete.add(report.nodeid)

    # -- the end of the run -----------------------------------------------------------------------

    def _server_info(self) -> Any:
        return self.core.server_info

    def _environment(self) -> dict[str, str | None]:
        info = self._server_info()
        environment = baselines.environment_of(info.version if info else None, _version)
        if self.before is not None:  # what this run could not tell, the file still knows
            for key, value in self.before.environment.items():
                if key in environment and environment[key] is None:
                    environment[key] = value
        return environment

    def _stale(self) -> set[str]:
        if self.before is None:
            return set()
        return baselines.stale_entries(
            self.before.tests,
            rootdir=self.config.rootpath,
            seen=self.seen,
            collected_files={nodeid.split("::", 1)[0] for nodeid in self.seen},
            whole_files=not any("::" in str(arg) for arg in self.config.args),
        )

    def _finish(self, *, write: bool) -> None:
        """Compare with the baseline and the ``--sqlaperf-compare`` file and, when ``write``,
        record the baseline (update, ratchet). A run cut short (Ctrl-C, ``-x``) still gets its
        comparison for the reports, but leaves the baseline alone."""
        if self._finished:
            return
        self._finished = True
        settings = self.settings
        if self.compare_with is None and settings.baseline is None:
            return
        records = baselines.select_records(
            record for index, record in enumerate(self.core.records) if index in self._complete
        )
        environment = self._environment()
        if self.compare_with is not None:
            self.compared_with = {
                "path": settings.compare_label,
                "comparison": delta.compare(
                    self.compare_with,
                    baselines.entries_of(records),
                    environment,
                    tolerance=settings.tolerance,
                    sites=delta.sites_of(records),
                ),
            }
        if settings.baseline is None:
            return
        mode = settings.mode or ("check" if self.before is not None else None)
        gate_settings = gate.GateSettings(
            path=settings.baseline,
            label=settings.baseline_label,
            mode=mode,
            tolerance=settings.tolerance,
            fail_on_missing=settings.fail_on_missing,
        )
        self.outcome = gate.run(
            gate_settings, self.before, self.before_text, records, environment, self._stale()
        )
        if write and self.outcome.text is not None:
            baselines.write_atomic(settings.baseline, self.outcome.text)
            self.outcome.use["written"] = True
        elif self.outcome.text is not None:
            self.outcome.note = f"{settings.baseline_label} not written: the run was cut short"

    @pytest.hookimpl(wrapper=True)
    def pytest_runtestloop(self, session: pytest.Session) -> Generator[None, object, object]:
        result = yield
        if not self.is_worker and not self.config.option.collectonly:
            self._finish(write=True)
            if self.outcome is not None and self.outcome.failures:
                # pytest turns a non-zero testsfailed into exit code 1 (as pytest-cov does).
                session.testsfailed += 1
        return result

    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        if self.is_worker or self.config.option.collectonly:
            return
        self._finish(write=False)
        if self.settings.reports:
            from .reports.writer import write_reports

            self.report = self._report()
            self.written = write_reports(
                self.report,
                self.settings.reports,
                rootdir=self.config.rootpath,
                start=self.config.invocation_params.dir,
                environ=os.environ,
            )

    def _report(self) -> jsonreport.Report:
        info = self._server_info()
        server: jsonreport.ServerRecord | None = None
        if info is not None:
            server = {
                "backend": info.backend,
                "description": info.description,
                "version": info.version,
            }
        unused = None
        for extension in self.core.extensions:
            value = getattr(extension, "unused_indexes", None)
            value = value() if callable(value) else value
            if isinstance(value, (list, tuple, set, frozenset)):
                unused = [_json_safe(item) for item in value]
        return jsonreport.build(
            self.core.records,
            run={
                "run_id": self.core.run_id,
                "started": self.started,
                "finished": _now(),
                "tool": _version("pytest-sqlaperf") or "unknown",
                "python": platform.python_version(),
                "pytest": pytest.__version__,
            },
            environment=self._environment(),
            server=server,
            baseline=self.outcome.use if self.outcome else None,
            compared_with=self.compared_with,
            incomplete=self.incomplete,
            unused_indexes=unused,
        )

    @pytest.hookimpl(trylast=True)
    def pytest_terminal_summary(self, terminalreporter: pytest.TerminalReporter) -> None:
        if self.is_worker or self.config.option.collectonly:
            return
        if self.outcome is not None or self.written:
            counted = self.core.records.statements_counted()
            if not counted and self._server_info() is None:
                terminalreporter.write_sep("=", "sqlaperf")  # the core printed no section
            if self.outcome is not None:
                terminal.baseline_summary(
                    terminalreporter,
                    self.outcome.use,
                    fail_on_missing=self.settings.fail_on_missing,
                    written=self.outcome.note,
                )
                for failure in self.outcome.failures:
                    terminalreporter.write_line(
                        f"sqlaperf failed the run: {failure}", red=True, bold=True
                    )
            terminal.report_paths(terminalreporter, self.written)
        if os.environ.get("GITHUB_ACTIONS") == "true":
            report = self.report or self._report()
            for line in github.workflow_commands(report, self.config.rootpath):
                terminalreporter.write_line(line)
