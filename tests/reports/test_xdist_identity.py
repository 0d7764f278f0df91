"""Under pytest-xdist the controller alone writes files, and they are the serial run's files."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from report_helpers import APP_LAZY, write_app

MORE_TESTS = """
import pytest
from sqlalchemy import select, text

from app import book_counts, seed
from models import Author


@pytest.mark.parametrize("times", [1, 2, 3, 4])
def test_repeat(sqlaperf_session, times):
    for _ in range(times):
        sqlaperf_session.execute(text("SELECT 1"))


def test_authors(sqlaperf_session):
    seed(sqlaperf_session)
    assert len(sqlaperf_session.scalars(select(Author)).all()) == 3
    assert book_counts(sqlaperf_session) == [2, 2, 2]


def test_failing(sqlaperf_session):
    sqlaperf_session.execute(text("SELECT 2"))
    raise AssertionError("on purpose")
"""


def _without_timing(path: Path) -> str:
    """The report as text, less what differs between any two runs: times, the run id and the
    server's run directory (in its description)."""
    report: dict[str, Any] = json.loads(path.read_text())
    for field in ("started", "finished", "run_id"):
        report["run"][field] = "-"
    report["server"]["description"] = "-"
    for record in report["tests"]:
        record["duration"] = 0
    return json.dumps(report, indent=2, sort_keys=True)


def test_two_workers_write_what_a_serial_run_writes(app_project: pytest.Pytester) -> None:
    app_project.makepyfile(test_more=MORE_TESTS)
    write_app(app_project, APP_LAZY)  # findings travel from the workers too
    common = ("-p", "no:cacheprovider", "--sqlaperf-n-plus-one=warn")

    def run(*extra: str) -> tuple[bytes, str]:
        baseline = app_project.path / "sqlaperf-baseline.json"
        baseline.unlink(missing_ok=True)
        result = app_project.runpytest_subprocess(
            *common,
            "--sqlaperf-baseline=sqlaperf-baseline.json",
            "--sqlaperf-baseline-mode=update",
            "--sqlaperf-report=report.json",
            *extra,
        )
        result.assert_outcomes(passed=7, failed=1)
        return baseline.read_bytes(), _without_timing(app_project.path / "report.json")

    serial_baseline, serial_report = run()
    xdist_baseline, xdist_report = run("-n", "2", "-p", "xdist")
    assert serial_baseline == xdist_baseline
    assert b"test_more.py::test_repeat[4]" in serial_baseline
    assert b"test_more.py::test_failing" not in serial_baseline  # stopped half way
    assert serial_report == xdist_report

    # Under xdist too, the workers tell the controller what they collected and deselected:
    # a -k run keeps the tests it did not select, and a removed test is pruned.
    update = (*common, "--sqlaperf-baseline=sqlaperf-baseline.json")
    update += ("--sqlaperf-baseline-mode=update", "-n", "2", "-p", "xdist")
    app_project.runpytest_subprocess(*update, "-k", "repeat").assert_outcomes(passed=4)
    assert (app_project.path / "sqlaperf-baseline.json").read_bytes() == serial_baseline
    app_project.makepyfile(test_more=MORE_TESTS.replace("def test_authors", "def _authors"))
    result = app_project.runpytest_subprocess(*update, "test_more.py")
    result.stdout.fnmatch_lines(["*1 removed (tests that no longer exist)"])
    written = (app_project.path / "sqlaperf-baseline.json").read_bytes()
    assert b"test_more.py::test_authors" not in written
    assert b"test_app.py::test_books" in written
