"""Memory: how much the pytest process grows over a long suite, with and without the plugin."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from bench.harness import BenchError, PytestRun, run_pytest, write_project
from bench.projects import MODELS, TIMING_CONFTEST, WORKLOAD_CONFTEST, WORKLOAD_INI

MB = 1_000_000
STATEMENTS_PER_TEST = 3

METHOD = (
    "A generated suite of N tests, each running 3 statements through a session of the suite's "
    "own engine (not the plugin's fixtures): an ORM insert of a user, a select of it by "
    "primary key, and the lazy load of its `posts` relationship. It runs once without the "
    "plugin (`-p no:sqlaperf`) and once with it as installed (default checks: EXPLAIN of each "
    "new statement shape, N+1 detection set to warn). After the warm-up test's teardown, when "
    "imports, collection, mapper configuration and the first connection are done, the "
    "conftest reads the process's resident set (`/proc/self/statm`) and resets its peak "
    "(`5` into `/proc/self/clear_refs`); in the sentinel test, after the N tests, it reads the "
    "peak since then (`VmHWM` in `/proc/self/status`). Not `getrusage()`'s `ru_maxrss`: on "
    "Linux it starts from the resident set of the process that forked the interpreter (here "
    "the bench's own) and cannot be reset. The growth is that peak minus the resident set "
    "after the warm-up; the plugin's share is the growth with it minus the growth without it "
    "(what pytest itself keeps per test, its reports and the items, is in both). "
    "MB = 10^6 bytes. One run of each."
)

# The figures the suite records: after the warm-up test's teardown, and in the sentinel test.
MEMORY_CONFTEST = """

import re

PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")


def _resident_bytes():
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * PAGE_SIZE


def _peak_bytes():
    with open("/proc/self/status") as status:
        return int(re.search(r"VmHWM:\\s+(\\d+) kB", status.read()).group(1)) * 1024


def pytest_runtest_logreport(report):
    if report.when == "teardown" and report.nodeid.endswith("::test_warmup"):
        RESULTS["peak_before_reset"] = _peak_bytes()
        RESULTS["rss_after_warmup"] = _resident_bytes()
        try:
            with open("/proc/self/clear_refs", "w") as clear_refs:
                clear_refs.write("5")  # the peak resident set becomes the current one
        except OSError:
            RESULTS["peak_reset"] = False
        else:
            RESULTS["peak_reset"] = True


@pytest.fixture
def bench_memory():
    RESULTS["rss_at_sentinel"] = _resident_bytes()
    RESULTS["peak_at_sentinel"] = _peak_bytes()
"""

MEMORY_TEST = """\
import pytest
from sqlalchemy import select

from models import User


def _three_statements(session, i):
    user = User(name=f"user {{i}}", email=f"user{{i}}@example.com")
    session.add(user)
    session.flush()  # INSERT
    session.expunge_all()
    user = session.execute(select(User).where(User.id == user.id)).scalar_one()  # by primary key
    assert user.posts == []  # the lazy load of the relationship


def test_warmup(session):
    _three_statements(session, -1)


@pytest.mark.parametrize("i", range({tests}))
def test_memory(session, i):
    _three_statements(session, i)


def test_sentinel(session, bench_memory):
    pass
"""


def memory_project(tests: int) -> dict[str, str]:
    """``tests`` tests of 3 statements each, between a warm-up test and a sentinel."""
    return {
        "pytest.ini": WORKLOAD_INI,
        "models.py": MODELS,
        "conftest.py": TIMING_CONFTEST + WORKLOAD_CONFTEST + MEMORY_CONFTEST,
        "test_memory.py": MEMORY_TEST.format(tests=tests),
    }


def _figures(run: PytestRun, tests: int) -> dict[str, float]:
    results = run.results
    missing = [
        name
        for name in ("rss_after_warmup", "peak_at_sentinel", "rss_at_sentinel")
        if name not in results
    ]
    if missing:
        raise BenchError(f"the memory suite did not record {', '.join(missing)}")
    if not results["peak_reset"]:
        raise BenchError(
            "writing 5 to /proc/self/clear_refs failed: the peak resident set cannot be reset "
            "after the warm-up (Linux 4.0 or later is needed)"
        )
    if results["statements"] < STATEMENTS_PER_TEST * (tests + 1):
        raise BenchError(
            f"the memory suite ran {results['statements']} statements, fewer than "
            f"{STATEMENTS_PER_TEST} per test"
        )
    return {
        "peak_before_reset_mb": results["peak_before_reset"] / MB,
        "rss_after_warmup_mb": results["rss_after_warmup"] / MB,
        "peak_at_sentinel_mb": results["peak_at_sentinel"] / MB,
        "rss_at_sentinel_mb": results["rss_at_sentinel"] / MB,
        "growth_mb": (results["peak_at_sentinel"] - results["rss_after_warmup"]) / MB,
        "statements": results["statements"],
        "session": run.session,
        "wall": run.wall,
    }


def measure(workdir: Path, environment: Mapping[str, str], tests: int) -> dict[str, Any]:
    """One run without the plugin, one with it; the growth of each and the difference."""
    if not Path("/proc/self/statm").exists():
        raise BenchError("the memory benchmark reads /proc/self/statm: Linux only")
    project = write_project(workdir / "memory", memory_project(tests))
    samples = {
        variant: _figures(
            run_pytest(
                project,
                ["test_memory.py"],
                environment={**environment, "BENCH_COUNT_STATEMENTS": "1"},
                plugin=plugin,
            ),
            tests,
        )
        for variant, plugin in (("without", False), ("with", True))
    }
    if samples["without"]["statements"] != samples["with"]["statements"]:
        raise BenchError(
            f"the memory suite ran {samples['without']['statements']} statements without the "
            f"plugin and {samples['with']['statements']} with it"
        )
    return {
        "method": METHOD,
        "tests": tests,
        "statements_per_test": STATEMENTS_PER_TEST,
        "samples": samples,
        "summary": {
            "growth_without_mb": samples["without"]["growth_mb"],
            "growth_with_mb": samples["with"]["growth_mb"],
            "plugin_growth_mb": samples["with"]["growth_mb"] - samples["without"]["growth_mb"],
        },
    }
