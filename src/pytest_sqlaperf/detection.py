"""pytest wiring of the N+1 check: its options and markers, strict loading and constant_queries."""

from __future__ import annotations

import fnmatch
import functools
import os
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pytest

from . import markers, settings
from .checks import nplusone
from .checks.findings import Finding
from .checks.scaling import Sample, compare_samples

if TYPE_CHECKING:
    from .plugin import SqlaperfPlugin, TestState
    from .records import FindingRecord

MODES = ("fail", "warn", "off")
TEST_CODE = ("conftest.py", "factories.py", "*/tests/*", "*/factories/*")
"""Besides pytest's ``python_files``: where row-by-row writes are test data set-up, not N+1."""

OPTIONS = (
    settings.Option(
        "n_plus_one",
        "What an N+1 does to its test: fail, warn (listed in the summary) or off (default: fail)",
    ),
    settings.Option(
        "n_plus_one_threshold",
        f"Repetitions from one call site that make an N+1 (default: {nplusone.DEFAULT_THRESHOLD})",
        flag=False,
    ),
    settings.Option(
        "ignore",
        "N+1 findings never to report: Class.attr targets, display-SQL prefixes, or call-site "
        "globs (path or path:line, relative to the rootdir), one per line",
        flag=False,
        ini_type="linelist",
    ),
)

GROUP_KEY = pytest.StashKey[tuple[Any, ...]]()


@dataclass(frozen=True)
class DetectionSettings:
    n_plus_one: str = "fail"
    n_plus_one_threshold: int = nplusone.DEFAULT_THRESHOLD
    ignore: tuple[str, ...] = ()


def _validators() -> dict[str, Any]:
    return {
        "n_plus_one": lambda option, value: settings.choice(option, value.strip().lower(), MODES),
        "n_plus_one_threshold": lambda option, value: settings.whole_number(option, value, 1),
    }


def addoption(parser: pytest.Parser, group: pytest.OptionGroup) -> None:
    for option in OPTIONS:
        if option.flag:
            group.addoption(option.cli, default=None, dest=option.dest, help=option.help)
        parser.addini(option.ini, option.help, type=option.ini_type, default=None)


def test_code_matcher(config: pytest.Config) -> Callable[[str], bool]:
    """Whether a path is test code: pytest's ``python_files``, conftest files and factories."""
    globs = (*config.getini("python_files"), *TEST_CODE)

    def is_test_code(path: str) -> bool:
        name = os.path.basename(path)
        return any(fnmatch.fnmatch(name, glob) or fnmatch.fnmatch(path, glob) for glob in globs)

    return is_test_code


_OPTION_MARKERS = frozenset({"allow_n_plus_one", "no_n_plus_one", "strict_loading"})


class Detection:
    """The N+1 check of one run, registered as a pytest plugin by ``plugin.py``."""

    def __init__(self, config: pytest.Config, core: SqlaperfPlugin) -> None:
        self.config = config
        self.core = core
        try:
            values = settings.resolve_values(OPTIONS, config, os.environ, _validators())
        except settings.SettingsError as error:
            raise pytest.UsageError(str(error)) from None
        self.settings = DetectionSettings(**values)  # type: ignore[arg-type]  # dataclass fields
        rootdir = str(config.rootpath)
        # cached: every finding's call sites go through it, for every test that has findings
        self._relative = functools.lru_cache(maxsize=4096)(
            lambda path: (
                os.path.relpath(path, rootdir) if path.startswith(rootdir + os.sep) else path
            )
        )
        self._is_test_code = test_code_matcher(config)
        self._groups: dict[tuple[Any, ...], list[pytest.Item]] = {}
        self._samples: dict[tuple[Any, ...], list[Sample]] = {}
        self.uncompared: list[str] = []
        """constant_queries tests whose instances did not all run in this process."""
        self._default: tuple[str, nplusone.Options] | None = None
        """The options of a test with none of the N+1 markers (most tests: made once)."""

    def close(self) -> None:
        """Nothing to release; the records carry the findings."""

    # -- per test -------------------------------------------------------------------------------

    def _options(self, item: pytest.Item) -> tuple[str, nplusone.Options]:
        if not markers.names(item) & _OPTION_MARKERS:
            if self._default is None:
                self._default = self._options_from_markers(item)
            return self._default
        return self._options_from_markers(item)

    def _options_from_markers(self, item: pytest.Item) -> tuple[str, nplusone.Options]:
        mode = self.settings.n_plus_one
        threshold = self.settings.n_plus_one_threshold
        # an ignore entry is a target, a statement prefix or a call-site glob: try it as each
        allow: list[str] = list(self.settings.ignore)
        call_sites = list(self.settings.ignore)
        strict = False
        for mark in item.iter_markers("allow_n_plus_one"):
            allow.extend(markers.parse(mark, item.nodeid) or ("*",))
        no_n_plus_one = item.get_closest_marker("no_n_plus_one")
        if no_n_plus_one is not None:
            chosen = markers.parse(no_n_plus_one, item.nodeid)
            mode = "fail"
            threshold = chosen if chosen is not None else threshold
        strict_loading = item.get_closest_marker("strict_loading")
        if strict_loading is not None:
            markers.parse(strict_loading, item.nodeid)
            strict, mode = True, "fail"
        options = nplusone.Options(
            threshold=threshold,
            strict_loading=strict,
            allow=tuple(allow),
            ignore_call_sites=tuple(call_sites),
            is_test_code=self._is_test_code,
            relative=self._relative,
        )
        return mode, options

    def setup(self, item: pytest.Item, state: TestState) -> None:
        """At the test's set-up (called by the plugin's hook): its options, its markers checked."""
        state.n_plus_one = self._options(item)
        if "constant_queries" not in markers.names(item):
            return
        mark = item.get_closest_marker("constant_queries")
        if mark is not None:
            argname, _ = markers.parse(mark, item.nodeid)
            callspec = getattr(item, "callspec", None)
            if callspec is None or argname not in callspec.params:
                pytest.fail(
                    f"{item.nodeid}: @pytest.mark.constant_queries({argname!r}) needs the test "
                    f"parametrized over {argname!r}, e.g. "
                    f"@pytest.mark.parametrize({argname!r}, [2, 5])",
                    pytrace=False,
                )

    def after_call(self, item: pytest.Item, state: TestState, *, may_fail: bool) -> str | None:
        """After the test's call phase (called by the plugin's hook): its findings recorded; the
        failure message when it fails the test. ``may_fail`` is False when the test failed
        already: its findings are only recorded."""
        findings = self._detect(state)
        if not may_fail:
            return None
        if findings and state.n_plus_one is not None and state.n_plus_one[0] == "fail":
            return describe(findings)
        return self._check_constant(item, state)

    def _detect(self, state: TestState) -> list[Finding]:
        if state.n_plus_one is None or state.n_plus_one[0] == "off" or state.log.empty:
            return []
        findings = nplusone.check(state.log.checked(), state.n_plus_one[1])
        if findings:
            state.findings += tuple(findings)
        return findings

    # -- constant_queries -----------------------------------------------------------------------

    def pytest_collection_modifyitems(self, items: list[pytest.Item]) -> None:
        for item in items:
            mark = item.get_closest_marker("constant_queries")
            callspec = getattr(item, "callspec", None)
            if mark is None or callspec is None or not mark.args:
                continue
            argname = mark.args[0]
            others = tuple(
                sorted(
                    (key, repr(value)) for key, value in callspec.params.items() if key != argname
                )
            )
            key = (item.parent.nodeid if item.parent else "", item.originalname, others)  # type: ignore[attr-defined]
            item.stash[GROUP_KEY] = key
            self._groups.setdefault(key, []).append(item)
            if self.config.pluginmanager.hasplugin("xdist"):
                # with --dist loadgroup, xdist keeps the instances on one worker to compare
                item.add_marker(pytest.mark.xdist_group(f"sqlaperf-constant-{len(self._groups)}"))

    def _check_constant(self, item: pytest.Item, state: TestState) -> str | None:
        """The failure message of a ``constant_queries`` group, at its last instance."""
        key = item.stash.get(GROUP_KEY, None)
        if key is None:
            return None
        mark = item.get_closest_marker("constant_queries")
        if mark is None:
            return None
        argname, slope = markers.parse(mark, item.nodeid)
        log = state.log
        samples = self._samples.setdefault(key, [])
        samples.append(
            Sample(
                scale=item.callspec.params[argname],  # type: ignore[attr-defined]
                count=log.count,
                fingerprints=Counter(s.display_sql for s in log.counted),
            )
        )
        group = self._groups.get(key, [])
        if not group or item is not group[-1]:
            return None
        if len(group) < 2:
            return (
                f"{item.nodeid}: constant_queries({argname!r}) compares the instances of a "
                f"test over {argname!r}; give it two values or more"
            )
        if len(samples) < len(group):
            # pytest-xdist ran some instances on other workers (or they were deselected)
            self.uncompared.append(item.nodeid)
            return None
        return compare_samples(argname, samples, slope=slope)

    # -- terminal -------------------------------------------------------------------------------

    def pytest_terminal_summary(self, terminalreporter: pytest.TerminalReporter) -> None:
        for nodeid in self.uncompared:
            terminalreporter.write_line(
                f"sqlaperf: constant_queries not compared for {nodeid}: its instances ran in "
                "different processes (use --dist loadgroup or assert_constant_queries)",
                yellow=True,
            )
        # failed tests show their findings in the failure itself; these did not fail (warn mode)
        # or failed as expected (xfail), so the summary is the only place they are seen
        titles = {
            "passed": "N+1 findings in passing tests",
            "xfailed": "N+1 findings in tests marked xfail (caught as expected)",
        }
        by_outcome: dict[str, list[tuple[str, FindingRecord]]] = {outcome: [] for outcome in titles}
        for record in self.core.records.summaries():
            found = by_outcome.get(record["outcome"])
            if found is not None:
                found.extend(
                    (record["nodeid"], finding)
                    for finding in record["findings"]
                    if finding["kind"] in nplusone.KINDS
                )
        for outcome, title in titles.items():
            listed = by_outcome[outcome]
            if not listed:
                continue
            terminalreporter.write_sep("-", f"sqlaperf: {len(listed)} {title}")
            for nodeid, finding in listed:
                terminalreporter.write_line(f"{nodeid}: {finding['message']}", yellow=True)
                if finding["fix"]:
                    terminalreporter.write_line(f"    fix: {finding['fix']}")


def describe(findings: list[Finding]) -> str:
    """A failure message: each finding with its call site, the source line, and the fix."""
    lines = [f"N+1: {len(findings)} finding{'s' if len(findings) > 1 else ''}"]
    for number, finding in enumerate(findings, start=1):
        lines.append(f"{number}. {finding.kind}: {finding.message}")
        lines.extend(f"     {line}" for line in finding.evidence[1:])
        if finding.fix:
            lines.append(f"     fix: {finding.fix}")
    return "\n".join(lines)
