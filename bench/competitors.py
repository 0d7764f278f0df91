"""Other pytest plugins on the same ORM workload: their capture overhead, side by side with ours.

Each tool is installed from PyPI in a virtualenv of its own, with the same SQLAlchemy, drivers,
pytest and pytest-asyncio as the interpreter running the bench (and without pytest-sqlaperf).
The workload project is the one the capture-overhead benchmark runs (bench/projects.py), with
a conftest addition that turns the tool's features on for every test and reads back, through
the tool's own recorder, how many statements it counted.
"""

from __future__ import annotations

import importlib.metadata
import os
import shutil
import subprocess
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.harness import BenchError, count_statements, run_pytest, summary, write_project
from bench.projects import workload_project

METHOD = (
    "The capture-overhead workload (the same N tests of ORM code, sync and async, on the "
    "suite's own engine and `Session`) runs under other pytest plugins from PyPI, each in a "
    "virtualenv of its own with the same SQLAlchemy, psycopg, asyncpg, greenlet, pytest and "
    "pytest-asyncio versions as ours and without pytest-sqlaperf. In each round the suite runs "
    "in the tool's virtualenv without the tool (`-p no:NAME`), then with it, its query "
    "counting and N+1 detection on for every test in a mode that reports without failing "
    "(the workload's lazy-load loop is a deliberate N+1) and, where it has one, a per-test "
    "statement budget too high to be reached. The overhead is the median of the per-round "
    "ratios with/without, over the window from the end of the warm-up test to the start of "
    "the sentinel, in CPU time of the pytest process and in wall-clock time. The statements "
    "are counted in a run of their own, by a conftest listener on `Engine` (the measured runs "
    "have none: it would make SQLAlchemy dispatch engine events in the runs without the tool "
    "too, and hide what the tools' own engine listeners cost); the tool's own count, read "
    "from its recorder, shows it was active. All three tools measure the test's call phase "
    "only (not fixtures)."
)

# The packages whose versions a tool's virtualenv shares with the running interpreter.
SHARED_PACKAGES = ("sqlalchemy", "psycopg", "asyncpg", "greenlet", "pytest", "pytest-asyncio")
# Written into a tool's virtualenv once everything is installed: the requirements, one a line.
MARKER = "bench-requirements.txt"
PIP_TIMEOUT = 900.0
# A per-test statement budget no workload test comes near (each runs about 30 statements).
BUDGET = 1000
DRIVERS = {"sync": "test_sync_workload.py", "async": "test_async_workload.py"}
MEASURES = ("session", "session_cpu", "window", "window_cpu", "wall")


@dataclass(frozen=True)
class Tool:
    """A pytest plugin from PyPI and how the benchmark turns its features on."""

    requirement: str  # pinned to the version the bench was written and tried against
    plugin: str  # its pytest11 entry-point name: ``-p no:<plugin>`` leaves it out
    licence: str
    description: str  # what it does and which of its features the benchmark turns on
    asynchronous: bool  # whether it records AsyncSession / AsyncEngine code
    conftest: str = ""  # appended to the workload's conftest
    args: tuple[str, ...] = ()  # pytest arguments of the runs with the tool
    ini: str = ""  # appended to the workload's pytest.ini


# Shared by every tool's conftest addition: whether the tool is loaded in this run (the runs
# without it pass ``-p no:<plugin>``), and the figures the tool's own recorder gave.
_TOOL_CONFTEST_HEAD = """

# --- the compared tool: {plugin} ---

TOOL_PLUGIN = {plugin!r}
RESULTS["tool_active"] = False
RESULTS["tool_statements"] = 0  # statements the tool counted, over the session
RESULTS["tool_n_plus_one_tests"] = 0  # tests the tool reported an N+1 (or repeat) in


def pytest_collection_modifyitems(config, items):
    RESULTS["tool_active"] = config.pluginmanager.has_plugin(TOOL_PLUGIN)
    if RESULTS["tool_active"]:
        _tool_collected(items)
"""

# queryspy records only when a policy asks for something: the report (N+1 detection for
# every test, findings collected, nothing enforced) and an ini budget. Its recorder lives in a
# context variable while its pytest_runtest_call wrapper runs; this conftest's wrapper is the
# innermost one (trylast), inside queryspy's window.
_QUERYSPY_CONFTEST = (
    _TOOL_CONFTEST_HEAD.format(plugin="queryspy")
    + """
_findings_seen = [0]


def _tool_collected(items):
    pass


@pytest.hookimpl(wrapper=True, trylast=True)
def pytest_runtest_call(item):
    if not RESULTS["tool_active"]:
        return (yield)
    from queryspy._recorder import _active

    recorders = _active.get()
    try:
        return (yield)
    finally:
        if recorders:
            RESULTS["tool_statements"] += recorders[-1].query_count


def pytest_runtest_teardown(item):
    if RESULTS["tool_active"]:
        from queryspy.pytest_plugin import _FINDINGS

        found = len(item.config.stash.get(_FINDINGS, []))
        if found > _findings_seen[0]:
            RESULTS["tool_n_plus_one_tests"] += 1
        _findings_seen[0] = found
"""
)

# pytest-querycount records every test's call phase whatever the options; the duplicate-shape
# analysis (its N+1 detection) runs for every test and feeds the --querycount-report table.
# Its recorder stays in the item's stash.
_QUERYCOUNT_CONFTEST = (
    _TOOL_CONFTEST_HEAD.format(plugin="querycount")
    + """

def _tool_collected(items):
    pass


def pytest_runtest_teardown(item):
    if RESULTS["tool_active"]:
        from pytest_querycount.plugin import _STATS, RECORDER_KEY

        recorder = item.stash.get(RECORDER_KEY, None)
        if recorder is not None:
            RESULTS["tool_statements"] += recorder.count
        stats = _STATS.get(item.nodeid)
        if stats is not None and stats.worst_duplicate:
            RESULTS["tool_n_plus_one_tests"] += 1
"""
)

# pytest-queryguard checks every test by default; in warn mode each test's findings become a
# QueryGuardWarning (the workload's filterwarnings = error would turn it into a failure: the
# runs with the tool pass -W always::...). Its budget is a marker only: added to every test.
_QUERYGUARD_CONFTEST = (
    _TOOL_CONFTEST_HEAD.format(plugin="queryguard")
    + f"""

def _tool_collected(items):
    for item in items:
        item.add_marker(pytest.mark.max_queries({BUDGET}))


@pytest.hookimpl(wrapper=True, trylast=True)
def pytest_runtest_call(item):
    if not RESULTS["tool_active"]:
        return (yield)
    from pytest_queryguard.collector import active

    collectors = active()
    try:
        return (yield)
    finally:
        if collectors:
            RESULTS["tool_statements"] += collectors[-1].statement_count


def pytest_warning_recorded(warning_message, when, nodeid, location):
    if warning_message.category.__name__ == "QueryGuardWarning":
        RESULTS["tool_n_plus_one_tests"] += 1
"""
)

TOOLS: dict[str, Tool] = {
    "queryspy": Tool(
        requirement="queryspy==0.6.0",
        plugin="queryspy",
        licence="MIT",
        description=(
            "Counts the statements that reach the driver and detects N+1 (per-relationship "
            "lazy loads, per-instance column loads, repeated statements) with the source line "
            "of each; listeners on the Session and Engine classes (do_orm_execute, "
            "before/after_cursor_execute), a context-variable recorder around each test's "
            "call phase. Turned on: `--queryspy-report` (detection for every test, findings "
            f"written as JSON, nothing enforced) and `queryspy_budget = {BUDGET}`."
        ),
        asynchronous=True,
        conftest=_QUERYSPY_CONFTEST,
        args=("--queryspy-report=queryspy-report.json",),
        ini=f"queryspy_budget = {BUDGET}\n",
    ),
    "pytest-querycount": Tool(
        requirement="pytest-querycount==0.4.0",
        plugin="querycount",
        licence="MIT",
        description=(
            "Counts each test's statements (call phase) with a fingerprint and the calling "
            "line of each; N+1 detection is repeated statement shapes; per-test budgets; an "
            "optional PostgreSQL missing-index check (EXPLAIN). Listeners on the Engine class "
            "(before/after_cursor_execute), installed at configure; it always records. Turned "
            "on: `--querycount-report` (the per-test table, whose duplicate-shape column is "
            "its only non-failing N+1 report: the `no_n_plus_one` marker can only fail) and "
            f"`querycount_max = {BUDGET}`."
        ),
        asynchronous=True,
        conftest=_QUERYCOUNT_CONFTEST,
        args=("--querycount-report",),
        ini=f"querycount_max = {BUDGET}\n",
    ),
    "pytest-queryguard": Tool(
        requirement="pytest-queryguard==0.4.1",
        plugin="queryguard",
        licence="MIT",
        description=(
            "Counts each test's statements (call phase) with their call sites and detects N+1 "
            "(relationship lazy loads, repeated SELECTs, column reloads), budgets by marker, "
            "optional missing-index check. Listeners on the Session and Engine classes "
            "(do_orm_execute, after_begin, after_flush, before/after_cursor_execute), on by "
            "default. Turned on: `queryguard_mode = warn` (findings as warnings, with "
            "`-W always::pytest_queryguard.QueryGuardWarning` against the suite's "
            f"`filterwarnings = error`), `--queryguard-report`, `max_queries({BUDGET})` on "
            "every test."
        ),
        asynchronous=True,
        conftest=_QUERYGUARD_CONFTEST,
        args=("--queryguard-report", "-W", "always::pytest_queryguard.QueryGuardWarning"),
        ini="queryguard_mode = warn\n",
    ),
}


def shared_requirements() -> list[str]:
    """The running interpreter's versions of SHARED_PACKAGES, as pinned pip requirements."""
    requirements = []
    for name in SHARED_PACKAGES:
        try:
            version = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            raise BenchError(f"{name} is not installed in {sys.executable}") from None
        requirements.append(
            f"{name}[binary]=={version}" if name == "psycopg" else f"{name}=={version}"
        )
    return requirements


def _clean_environment() -> dict[str, str]:
    """Our environment without what would point a venv's interpreter at other packages."""
    return {
        key: value
        for key, value in os.environ.items()
        if key not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV", "PYTHONSTARTUP")
    }


def _run(command: Sequence[str], what: str) -> None:
    try:
        completed = subprocess.run(
            list(command),
            env=_clean_environment(),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            timeout=PIP_TIMEOUT,
            check=False,
        )
    except subprocess.TimeoutExpired:
        raise BenchError(f"{what} took more than {PIP_TIMEOUT:.0f} s") from None
    if completed.returncode != 0:
        text = completed.stdout.decode(errors="replace")
        tail = "\n".join(text.strip().splitlines()[-40:])
        raise BenchError(f"{what} exited with {completed.returncode}:\n{tail}")


def ensure_venv(tool: str, directory: Path) -> str:
    """The python of ``directory/<tool>``, a virtualenv with the tool and the shared packages.

    One whose marker file lists the same requirements is reused; any other is made anew.
    """
    requirements = [TOOLS[tool].requirement, *shared_requirements()]
    expected = "".join(f"{requirement}\n" for requirement in requirements)
    target = directory / tool
    python = target / "bin" / "python"
    marker = target / MARKER
    try:
        if python.exists() and marker.read_text() == expected:
            return str(python)
    except OSError:
        pass
    if target.exists():
        shutil.rmtree(target)
    directory.mkdir(parents=True, exist_ok=True)
    _run([sys.executable, "-m", "venv", str(target)], f"creating the virtualenv of {tool}")
    _run(
        [str(python), "-m", "pip", "install", "--disable-pip-version-check", *requirements],
        f"pip install {' '.join(requirements)} (for {tool})",
    )
    # Nothing of ours in there: the runs without pytest-sqlaperf must not find it installed.
    _run(
        [
            str(python),
            "-c",
            "import importlib.util, sys; sys.exit(importlib.util.find_spec('pytest_sqlaperf') "
            "is not None)",
        ],
        f"checking that pytest-sqlaperf is not installed in the virtualenv of {tool}",
    )
    marker.write_text(expected)
    return str(python)


def project_files(tool: str, tests: int) -> dict[str, str]:
    """The workload project (``tests`` measured tests) with the tool's additions."""
    spec = TOOLS[tool]
    files = workload_project(tests, 10)
    files["conftest.py"] += spec.conftest
    files["pytest.ini"] += spec.ini
    return files


def _figures(
    project: Path, module: str, environment: Mapping[str, str], tool: str, python: str, on: bool
) -> dict[str, float]:
    spec = TOOLS[tool]
    args = [module, *(spec.args if on else ("-p", f"no:{spec.plugin}"))]
    run = run_pytest(project, args, environment=environment, plugin=False, python=python)
    results = run.results
    if results.get("sqlaperf_n_plus_one") is not None:
        raise BenchError(f"pytest-sqlaperf was loaded in the virtualenv of {tool}")
    if bool(results.get("tool_active")) != on:
        raise BenchError(
            f"{tool} was {'not ' if on else ''}loaded in a run {'with' if on else 'without'} "
            f"it: is its pytest11 entry point still named {spec.plugin!r}?"
        )
    if on and not results["tool_statements"]:
        raise BenchError(
            f"{tool} counted no statement of the {module} suite: it was not recording, or "
            "bench/competitors.py no longer reads its recorder right"
        )
    figures = {name: float(getattr(run, name)) for name in MEASURES}
    if on:
        figures["tool_statements"] = results["tool_statements"]
        figures["tool_n_plus_one_tests"] = results["tool_n_plus_one_tests"]
    return figures


def measure(
    project_dir_parent: Path,
    environment: Mapping[str, str],
    tests: int,
    rounds: int,
    venv_dir: Path,
    *,
    warmup: bool = False,
    tools: Sequence[str] | None = None,
) -> dict[str, Any]:
    """For each tool and driver: ``rounds`` rounds of the suite without the tool, then with it.

    Each tool's project is (re)written into ``project_dir_parent/<tool>`` and its virtualenv
    made (or reused) in ``venv_dir/<tool>``. With ``warmup``, an untimed pair runs first.
    ``tools`` (default: all of TOOLS) names the tools to run.
    """
    tools = list(TOOLS) if tools is None else list(tools)
    result: dict[str, Any] = {
        "method": METHOD,
        "tests": tests,
        "rounds": rounds,
        "shared_requirements": shared_requirements(),
        "tools": {
            name: {
                "requirement": TOOLS[name].requirement,
                "licence": TOOLS[name].licence,
                "description": TOOLS[name].description,
                "asynchronous": TOOLS[name].asynchronous,
                "args": list(TOOLS[name].args),
                "ini": TOOLS[name].ini,
            }
            for name in tools
        },
    }
    samples: dict[str, dict[str, list[dict[str, dict[str, float]]]]] = {}
    summaries: dict[str, dict[str, dict[str, Any]]] = {}
    for tool in tools:
        python = ensure_venv(tool, venv_dir)
        project = write_project(project_dir_parent / tool, project_files(tool, tests))
        drivers = [driver for driver in DRIVERS if driver == "sync" or TOOLS[tool].asynchronous]
        samples[tool] = {}
        summaries[tool] = {}
        for driver in drivers:
            module = DRIVERS[driver]
            if warmup:
                for on in (False, True):
                    _figures(project, module, environment, tool, python, on)
            driver_rounds = []
            for _ in range(rounds):
                runs = {
                    variant: _figures(project, module, environment, tool, python, on)
                    for variant, on in (("without", False), ("with", True))
                }
                driver_rounds.append(runs)
            tool_counts = {runs["with"]["tool_statements"] for runs in driver_rounds}
            if len(tool_counts) != 1:
                raise BenchError(f"{tool} counted {sorted(tool_counts)} statements in the rounds")
            first = driver_rounds[0]["with"]
            figures: dict[str, Any] = {
                "statements": count_statements(
                    project,
                    module,
                    environment=environment,
                    python=python,
                    plugin_args=("-p", f"no:{TOOLS[tool].plugin}"),
                ),
                "tool_statements": first["tool_statements"],
                "tool_n_plus_one_tests": first["tool_n_plus_one_tests"],
                "without": {
                    name: summary([runs["without"][name] for runs in driver_rounds])
                    for name in MEASURES
                },
                "with": {
                    name: summary([runs["with"][name] for runs in driver_rounds])
                    for name in MEASURES
                },
            }
            figures["with"].update(
                {
                    f"{name}_ratio": summary(
                        [runs["with"][name] / runs["without"][name] for runs in driver_rounds]
                    )
                    for name in MEASURES
                }
            )
            samples[tool][driver] = driver_rounds
            summaries[tool][driver] = figures
    result["samples"] = samples
    result["summary"] = summaries
    return result
