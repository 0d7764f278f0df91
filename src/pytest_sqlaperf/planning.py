"""pytest wiring of the plan checks (EXPLAIN): options, the no_seq_scan marker, per-test plan
findings, the catalog checks at session end, and the ``sqlaperf plans`` summary."""

from __future__ import annotations

import functools
import os
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pytest

from . import markers
from .capture.listeners import QUIET_SHAPE, QUIET_VALUES
from .checks.plans import find_problems
from .checks.plantree import indexes_used, shape
from .explain import UNKNOWN, ExplainRunner, ExplainSettings
from .markers import MarkerError, MarkerSpec
from .reports import plans as plans_report
from .settings import Option, SettingsError, choice, resolve_values

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection

    from .capture.querylog import Statement
    from .checks.findings import Finding
    from .checks.plans import PlanProblem
    from .explain import Explained
    from .plugin import SqlaperfPlugin, TestState
    from .records import FindingRecord

MODES = ("warn", "fail", "off")
OPTIONS: tuple[Option, ...] = (
    Option(
        "explain",
        "EXPLAIN each new statement shape with sequential scans disabled and report reads no "
        "index serves: warn (list them in the summary; the default), fail (fail the test), "
        "or off (run no EXPLAIN)",
    ),
    Option(
        "explain_analyze",
        "EXPLAIN ANALYZE SELECT statements (read-only, in a rolled-back savepoint) instead of a "
        "plain EXPLAIN (default: false)",
        flag=False,
        ini_type="bool",
    ),
    Option(
        "explain_timeout",
        "statement_timeout of each EXPLAIN, in milliseconds; its lock_timeout is half of it "
        "(default: 2000)",
        flag=False,
    ),
)
IGNORE_INI = "sqlaperf_seq_scan_ignore"
WORKER_OUTPUT_KEY = "sqlaperf_plans"
"""workeroutput key: a worker's catalog findings and index use, for the controller."""


@dataclass(frozen=True)
class PlanSettings:
    """The plan checks' settings, resolved once (CLI > ini > default)."""

    explain: str = "warn"
    explain_analyze: bool = False
    explain_timeout: int = 2000
    seq_scan_ignore: frozenset[str] = frozenset()


def _timeout(option: Option, value: str) -> int:
    text = value.strip()
    if not text.isdigit() or not 1 <= int(text) <= 600_000:
        raise SettingsError(
            f"{option.ini} got {value!r}; give a whole number of milliseconds, 1 to 600000"
        )
    return int(text)


VALIDATORS = {
    "explain": lambda option, value: choice(option, value.strip().lower(), MODES),
    "explain_timeout": _timeout,
}


def resolve(config: pytest.Config) -> PlanSettings:
    """The plan settings of the run; raises :class:`SettingsError` naming a bad value."""
    values = resolve_values(OPTIONS, config, os.environ, VALIDATORS)
    ignore = config.getini(IGNORE_INI) or []
    values["seq_scan_ignore"] = frozenset(name for name in ignore if name)
    return PlanSettings(**values)  # type: ignore[arg-type]  # keys are the dataclass's fields


def addoption(parser: pytest.Parser, group: pytest.OptionGroup) -> None:
    """Add the plan checks' options to the ``sqlaperf`` group (and their ini keys)."""
    for option in OPTIONS:
        if option.flag:
            group.addoption(option.cli, default=None, dest=option.dest, help=option.help)
        # A bool ini key is read as a string: pytest's own parsing of "maybe" fails with a
        # message that does not name the key; ours does.
        parser.addini(option.ini, option.help, type="string", default=None)
    parser.addini(
        IGNORE_INI,
        "Tables whose sequential scans, index walks and sorts are never reported "
        "(names or schema.name, separated by spaces or newlines)",
        type="args",
        default=[],
    )


def no_seq_scan_marker(*, ignore: str | Iterable[str] = ()) -> frozenset[str]:
    """no_seq_scan(*, ignore=())."""
    names = (ignore,) if isinstance(ignore, str) else ignore
    try:
        tables = tuple(names)
    except TypeError:
        raise MarkerError(
            f"ignore must be a table name or a list of them, got {ignore!r}"
        ) from None
    for table in tables:
        if not isinstance(table, str) or not table.strip():
            raise MarkerError(f"ignore must hold table names, got {table!r}")
    return frozenset(table.strip() for table in tables)


NO_SEQ_SCAN = MarkerSpec(
    "no_seq_scan",
    no_seq_scan_marker,
    "no_seq_scan(*, ignore=())",
    "fail the test when EXPLAIN finds a read no index serves (a sequential scan, a whole-index "
    "walk, a sort without index) in a statement its call phase ran; ignore names tables not to "
    "report",
)


def _parse_marker(mark: pytest.Mark, nodeid: str) -> frozenset[str]:
    """Validate the marker's arguments; a bad call fails set-up with one line, no traceback."""
    tables: frozenset[str] = markers.parse(mark, nodeid, NO_SEQ_SCAN)
    return tables


class _TestPlans:
    """What EXPLAIN found during one test's call phase."""

    __slots__ = ("found", "ignore", "keys", "plans", "seen")

    def __init__(self, ignore: frozenset[str], plans: dict[str, Any]) -> None:
        self.ignore = ignore
        self.plans = plans
        self.seen: dict[tuple[str, int], Explained] = {}
        """Outcomes already taken into account (held, so that their ids stay theirs)."""
        self.found: list[tuple[Statement, PlanProblem]] = []
        self.keys: set[tuple[str, str, str, tuple[str, ...]]] = set()


@functools.lru_cache(maxsize=64)
def _skipped(reason: str) -> dict[str, Any]:
    """The plan facts of a statement not EXPLAINed, one object per reason (the record store
    keeps facts once per object)."""
    return {"skipped": reason}


def _ignored(problem: PlanProblem, tables: frozenset[str]) -> bool:
    return problem.table in tables or f"{problem.schema}.{problem.table}" in tables


class StatementPlans:
    """The plan checks' step after each statement (the recorder's after_statement hook): the
    plan of each new shape and values, EXPLAINed once per run (:class:`ExplainRunner`), taken
    into the test's plans and problems once per test.

    It answers the recorder when a statement's values, or its whole shape, can bring nothing
    new to the test (a plan taken in, no plan): the recorder's listeners then skip the call
    for them until the next test (``Recorder.forget_quiet``). Nearly every statement of a
    test repeats one it ran before, so that is most of what the checks cost per statement.
    """

    def __init__(self, runner: ExplainRunner) -> None:
        self.runner = runner
        self.current: _TestPlans | None = None
        """The running test's plans; None between tests' call phases."""

    def begin(self, ignore: frozenset[str], plans: dict[str, Any]) -> None:
        """A test's call phase starts: take in its plans (into ``plans``) and problems, but
        for tables in ``ignore``. The recorder must forget what was said of earlier tests'
        statements (``Recorder.forget_quiet``)."""
        self.current = _TestPlans(ignore, plans)

    def end(self) -> _TestPlans | None:
        """The test's call phase ended: what it found (None when it had not begun)."""
        current, self.current = self.current, None
        return current

    def __call__(
        self, statement: Statement, connection: Connection, cursor: Any, context: Any
    ) -> int | None:
        state, runner = self.current, self.runner
        if state is None:
            return None
        try:
            executemany = bool(getattr(context, "executemany", False))
            known = runner.known(statement, executemany)
            if known is None:
                return QUIET_SHAPE  # no plan for this shape
            if known is UNKNOWN:
                self._take(
                    state, statement, runner.explain(statement, connection, executemany=executemany)
                )
                return None  # known() answers next time, once the outcome is cached
            fingerprint = statement.fingerprint
            seen = state.seen
            if (fingerprint, id(known)) not in seen:
                self._take(state, statement, known)
            outcomes = runner.every_outcome(fingerprint)
            if outcomes is not None and all((fingerprint, id(each)) in seen for each in outcomes):
                return QUIET_SHAPE  # whatever its values, the shape's plans are all taken in
            return QUIET_VALUES
        except Exception as error:  # a bug of ours must never reach the user's code
            reason = f"internal error ({type(error).__name__})"
            runner.skips[reason] += 1
            state.plans.setdefault(statement.fingerprint, _skipped(reason))
            return None

    def _take(self, state: _TestPlans, statement: Statement, explained: Explained | None) -> None:
        if explained is None:
            return
        seen = (statement.fingerprint, id(explained))
        if seen in state.seen:
            return
        state.seen[seen] = explained
        problems, facts = self._analysis(explained)
        state.plans.setdefault(statement.fingerprint, facts)
        for problem in problems:
            key = (problem.kind, problem.schema, problem.table, problem.columns)
            if key not in state.keys and not _ignored(problem, state.ignore):
                state.keys.add(key)
                state.found.append((statement, problem))

    @staticmethod
    def _analysis(explained: Explained) -> tuple[list[PlanProblem], dict[str, Any]]:
        if explained.analysis is None:
            if explained.plan is None:
                explained.analysis = ([], {"skipped": explained.skipped})
            else:
                problems = find_problems(explained.plan, explained.catalog)
                explained.analysis = (
                    problems,
                    {
                        "method": explained.method,
                        "shape": shape(explained.plan),
                        "indexes": indexes_used(explained.plan),
                        "findings": [problem.kind for problem in problems],
                    },
                )
        analysis: tuple[list[PlanProblem], dict[str, Any]] = explained.analysis
        return analysis


class PlanChecks:
    """The plan checks of one run, registered as a pytest plugin by ``plugin.py``."""

    def __init__(self, config: pytest.Config, core: SqlaperfPlugin) -> None:
        self.config = config
        self.core = core
        config.addinivalue_line("markers", NO_SEQ_SCAN.line)
        try:
            self.settings = resolve(config)
        except SettingsError as error:
            raise pytest.UsageError(str(error)) from None
        self.catalog_findings: list[FindingRecord] = []
        """Foreign keys without an index, of every database EXPLAIN ran on (informational)."""
        self.unused_indexes: list[dict[str, Any]] = []
        """Non-unique indexes no test used, with the table's reads (informational)."""
        self.notes: list[str] = []
        self._index_use: list[dict[str, Any]] = []
        self.runner: ExplainRunner | None = None
        self.statements: StatementPlans | None = None
        if self.settings.explain != "off":
            self.runner = ExplainRunner(
                ExplainSettings(
                    timeout_ms=self.settings.explain_timeout,
                    analyze=self.settings.explain_analyze,
                )
            )
            self.statements = StatementPlans(self.runner)
            core.recorder.after_statement = self.statements

    def close(self) -> None:
        """Called at unconfigure: stop explaining."""
        if self.statements is not None and self.core.recorder.after_statement is self.statements:
            self.core.recorder.after_statement = None

    # -- per test --------------------------------------------------------------------------------

    def setup(self, item: pytest.Item, state: TestState) -> None:
        """At the test's set-up (called by the plugin's hook): its marker checked."""
        if NO_SEQ_SCAN.name in markers.names(item):
            mark = item.get_closest_marker(NO_SEQ_SCAN.name)
            state.seq_scan = None if mark is None else _parse_marker(mark, item.nodeid)

    def begin(self, state: TestState) -> None:
        """Before the test's call phase: EXPLAIN its statements from now on."""
        if self.statements is not None:
            if state.plans is None:
                state.plans = {}
            self.statements.begin(
                self.settings.seq_scan_ignore | (state.seq_scan or frozenset()), state.plans
            )
            # what the hook said of the last test's statements holds no more
            self.core.recorder.forget_quiet()

    def after_call(self, state: TestState, *, may_fail: bool) -> str | None:
        """After the test's call phase (called by the plugin's hook): its plan findings
        recorded; the failure message when they fail the test."""
        current = self.statements.end() if self.statements is not None else None
        if current is None:
            return None
        findings = [self._finding(statement, problem) for statement, problem in current.found]
        if findings:
            state.findings += tuple(findings)
        marked = state.seq_scan is not None
        if may_fail and findings and (marked or self.settings.explain == "fail"):
            why = "@pytest.mark.no_seq_scan" if marked else "--sqlaperf-explain=fail"
            return plans_report.failure(findings, why)
        return None

    def _finding(self, statement: Statement, problem: PlanProblem) -> Finding:
        from .checks.findings import Finding

        return Finding(
            kind=problem.kind,
            message=problem.reason,
            call_site=statement.call_site,
            evidence=(statement.display_sql, *problem.plan_lines),
            fix=problem.suggestion.text() if problem.suggestion is not None else None,
            target=problem.target,
            fingerprint=statement.fingerprint,
        )

    # -- session end: catalog checks -------------------------------------------------------------

    @pytest.hookimpl(tryfirst=True)
    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        if self.runner is not None and self.runner.catalogs:
            from .checks.catalog import session_results

            findings, uses, notes = session_results(
                self.runner.catalogs,
                self.runner.databases,
                database_prefix=f"sqlaperf_{self.core.run_id}_",
                rootdir=str(self.config.rootpath),
            )
            self._merge(findings, uses)
            self.notes += notes
            workeroutput: dict[str, Any] | None = getattr(self.config, "workeroutput", None)
            if workeroutput is not None:
                workeroutput[WORKER_OUTPUT_KEY] = {"findings": findings, "index_use": uses}
        if self._index_use:
            from .checks.catalog import unused_indexes

            self.unused_indexes = unused_indexes(self._index_use)

    @pytest.hookimpl(optionalhook=True)
    def pytest_testnodedown(self, node: Any, error: object) -> None:
        output = getattr(node, "workeroutput", {}).get(WORKER_OUTPUT_KEY)
        if output:
            self._merge(output["findings"], output["index_use"])

    def _merge(self, findings: list[FindingRecord], uses: list[dict[str, Any]]) -> None:
        known = {(finding["target"], finding["message"]) for finding in self.catalog_findings}
        for finding in findings:
            if (finding["target"], finding["message"]) not in known:
                known.add((finding["target"], finding["message"]))
                self.catalog_findings.append(finding)
        self._index_use += uses

    # -- terminal --------------------------------------------------------------------------------

    @pytest.hookimpl(trylast=True)
    def pytest_terminal_summary(self, terminalreporter: pytest.TerminalReporter) -> None:
        if self.settings.explain == "off":
            return
        plans_report.summary(
            terminalreporter,
            list(self.core.records.summaries()),
            mode=self.settings.explain,
            catalog_findings=self.catalog_findings,
            unused_indexes=self.unused_indexes,
            notes=self.notes,
        )
