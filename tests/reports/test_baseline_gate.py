"""The baseline in real runs: record it, fail on a regression, ratchet an improvement, prune."""

from __future__ import annotations

import json

import pytest
import sqlalchemy
from report_helpers import APP_COUNT, APP_LAZY, APP_SELECTIN, write_app

BASELINE = "--sqlaperf-baseline=sqlaperf-baseline.json"
# The N+1 check only warns here, so that what fails the run is the baseline gate alone.
WARN = "--sqlaperf-n-plus-one=warn"


def _baseline(pytester: pytest.Pytester) -> dict[str, object]:
    loaded: dict[str, object] = json.loads((pytester.path / "sqlaperf-baseline.json").read_text())
    return loaded


def _tests(pytester: pytest.Pytester) -> dict[str, dict[str, object]]:
    tests: dict[str, dict[str, object]] = _baseline(pytester)["tests"]  # type: ignore[assignment]
    return tests


def test_lazy_loop_fails_check_and_ratchet_records_the_improvement(
    app_project: pytest.Pytester,
) -> None:
    recorded = app_project.runpytest(BASELINE, "--sqlaperf-baseline-mode=update", WARN)
    recorded.assert_outcomes(passed=2)
    recorded.stdout.fnmatch_lines(["baseline: sqlaperf-baseline.json written (update): 2 tests*"])
    assert _tests(app_project)["test_app.py::test_books"]["count"] == 4  # 2 inserts, 2 selects
    text = (app_project.path / "sqlaperf-baseline.json").read_text()
    # the selectinload batch (SQLAlchemy 2.0 labels its columns: "books.author_id AS ...")
    assert '\n          "sql": "SELECT books.author_id' in text

    write_app(app_project, APP_LAZY)
    checked = app_project.runpytest(BASELINE, WARN)  # check: the default when the file exists
    checked.assert_outcomes(passed=2)
    assert checked.ret == pytest.ExitCode.TESTS_FAILED
    checked.stdout.fnmatch_lines(
        [
            "baseline: sqlaperf-baseline.json (check): 1 regression, 0 improvements,*",
            "REGRESSION test_app.py::test_books: 4 → 6 statements",
            "    statements 4 → 6 (+2)",
            "    new finding: n_plus_one Author.books at app.py",
            "    +3 (new, ×3) SELECT  SELECT books.id*, books.title*, books.author_id* FROM books "
            "WHERE ? = books.author_id",
            "        at app.py:17 in book_counts",
            "sqlaperf failed the run: 1 regression against sqlaperf-baseline.json",
        ]
    )
    assert _tests(app_project)["test_app.py::test_books"]["count"] == 4  # check writes nothing

    ratchet_regressed = app_project.runpytest(BASELINE, "--sqlaperf-baseline-mode=ratchet", WARN)
    assert ratchet_regressed.ret == pytest.ExitCode.TESTS_FAILED
    assert _tests(app_project)["test_app.py::test_books"]["count"] == 4  # regressions not taken

    write_app(app_project, APP_COUNT)
    ratcheted = app_project.runpytest(BASELINE, "--sqlaperf-baseline-mode=ratchet", WARN)
    assert ratcheted.ret == pytest.ExitCode.OK
    ratcheted.stdout.fnmatch_lines(
        ["baseline: sqlaperf-baseline.json written (ratchet): 1 improvement and 0 new tests*"]
    )
    entry = _tests(app_project)["test_app.py::test_books"]
    assert entry["count"] == 3  # 2 inserts and the count
    assert entry["by_kind"] == {"insert": 2, "select": 1}

    write_app(app_project, APP_SELECTIN)  # worse than the ratcheted 3: a regression again
    assert app_project.runpytest(BASELINE, WARN).ret == pytest.ExitCode.TESTS_FAILED


def test_a_test_failed_by_the_n_plus_one_check_is_still_compared(
    app_project: pytest.Pytester,
) -> None:
    app_project.runpytest(BASELINE, "--sqlaperf-baseline-mode=update").assert_outcomes(passed=2)
    write_app(app_project, APP_LAZY)
    result = app_project.runpytest(BASELINE)  # the N+1 check fails the test after its body ran
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(["REGRESSION test_app.py::test_books: 4 → 6 statements"])


def test_a_test_that_raised_is_neither_compared_nor_recorded(
    app_project: pytest.Pytester,
) -> None:
    app_project.runpytest(BASELINE, "--sqlaperf-baseline-mode=update").assert_outcomes(passed=2)
    app_project.makepyfile(
        test_app="""
        from sqlalchemy import text

        def test_books(sqlaperf_session):
            sqlaperf_session.execute(text("SELECT 1"))
            raise AssertionError("stopped half way")

        def test_ping(sqlaperf_session):
            sqlaperf_session.execute(text("SELECT 1"))
        """
    )
    result = app_project.runpytest(BASELINE, "--sqlaperf-baseline-mode=update")
    result.assert_outcomes(passed=1, failed=1)
    assert _tests(app_project)["test_app.py::test_books"]["count"] == 4  # kept as it was


def test_missing_file_says_how_to_create_it(app_project: pytest.Pytester) -> None:
    result = app_project.runpytest(BASELINE)
    assert result.ret == pytest.ExitCode.OK
    result.stdout.fnmatch_lines(
        [
            "baseline: sqlaperf-baseline.json does not exist yet; record it with "
            "--sqlaperf-baseline-mode=update and commit it"
        ]
    )
    assert not (app_project.path / "sqlaperf-baseline.json").exists()


def test_new_tests_are_reported_and_fail_only_when_asked(app_project: pytest.Pytester) -> None:
    app_project.runpytest(BASELINE, "--sqlaperf-baseline-mode=update", "-k", "ping")
    assert list(_tests(app_project)) == ["test_app.py::test_ping"]
    result = app_project.runpytest(BASELINE)
    assert result.ret == pytest.ExitCode.OK
    result.stdout.fnmatch_lines(["not in the baseline (not failed; *): test_app.py::test_books"])
    app_project.makeini(
        """
        [pytest]
        sqlaperf_metadata = models:Base.metadata
        pythonpath = .
        asyncio_default_fixture_loop_scope = function
        sqlaperf_fail_on_missing = true
        """
    )
    failing = app_project.runpytest(BASELINE)
    assert failing.ret == pytest.ExitCode.TESTS_FAILED
    failing.stdout.fnmatch_lines(["sqlaperf failed the run: 1 test not in sqlaperf-baseline.json"])


def test_tolerance_is_absolute_per_test(app_project: pytest.Pytester) -> None:
    app_project.runpytest(BASELINE, "--sqlaperf-baseline-mode=update").assert_outcomes(passed=2)
    write_app(app_project, APP_LAZY)
    app_project.makeini(
        """
        [pytest]
        sqlaperf_metadata = models:Base.metadata
        pythonpath = .
        asyncio_default_fixture_loop_scope = function
        sqlaperf_explain = off
        sqlaperf_tolerance = 2
        """
    )
    result = app_project.runpytest(BASELINE, "--sqlaperf-n-plus-one=off")
    assert result.ret == pytest.ExitCode.OK  # 4 → 6 is within 2 (and no finding when off)
    result.stdout.fnmatch_lines(["*1 within tolerance 2*"])


def test_partial_runs_update_only_what_ran_and_removed_tests_are_pruned(
    app_project: pytest.Pytester,
) -> None:
    app_project.makepyfile(test_other="def test_other(sqlaperf_session): pass")
    app_project.runpytest(BASELINE, "--sqlaperf-baseline-mode=update")
    assert set(_tests(app_project)) == {
        "test_app.py::test_books",
        "test_app.py::test_ping",
        "test_other.py::test_other",
    }
    update = ("--sqlaperf-baseline-mode=update", BASELINE)
    app_project.runpytest(*update, "-k", "ping")  # deselected tests stay
    app_project.runpytest(*update, "test_app.py::test_ping")  # so do unselected ones
    app_project.runpytest(*update, "test_other.py")  # and those of files not collected
    assert len(_tests(app_project)) == 3

    app_project.makepyfile(test_app="def test_ping(sqlaperf_session): pass")  # books removed
    result = app_project.runpytest(*update, "test_app.py")
    result.stdout.fnmatch_lines(["*1 removed (tests that no longer exist)"])
    assert set(_tests(app_project)) == {"test_app.py::test_ping", "test_other.py::test_other"}

    (app_project.path / "test_other.py").unlink()  # a deleted file goes even when not run
    app_project.runpytest(*update, "test_app.py")
    assert set(_tests(app_project)) == {"test_app.py::test_ping"}


def test_another_environment_is_reported_not_failed(app_project: pytest.Pytester) -> None:
    app_project.runpytest(BASELINE, "--sqlaperf-baseline-mode=update").assert_outcomes(passed=2)
    path = app_project.path / "sqlaperf-baseline.json"
    data = json.loads(path.read_text())
    data["environment"]["sqlalchemy"] = "1.4"
    path.write_text(json.dumps(data))
    write_app(app_project, APP_LAZY)
    result = app_project.runpytest(BASELINE, WARN)
    assert result.ret == pytest.ExitCode.OK
    this_run = ".".join(sqlalchemy.__version__.split(".")[:2])
    result.stdout.fnmatch_lines(
        [
            f"environment differs: sqlalchemy 1.4 (baseline) vs {this_run} (this run); "
            "differences are not counted as regressions*",
            "difference test_app.py::test_books: 4 → 6 statements",
        ]
    )


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{not json", "*sqlaperf-baseline.json is not valid JSON (line 1, column 2*"),
        (
            '{"kind": "sqlaperf-baseline", "schema_version": 99, "environment": {}, "tests": {}}',
            "*has schema_version 99; this pytest-sqlaperf reads version 1: upgrade*",
        ),
        ('{"tests": {"t.py::t": {"by_kind": {}}}}', "*has schema_version None*"),
        ("[1, 2]", "*is not a sqlaperf baseline*"),
    ],
    ids=["corrupt", "future-version", "no-version", "not-a-baseline"],
)
def test_unusable_baseline_is_a_usage_error_never_a_reset(
    app_project: pytest.Pytester, content: str, message: str
) -> None:
    path = app_project.path / "sqlaperf-baseline.json"
    path.write_text(content)
    for mode in ("check", "update", "ratchet"):
        result = app_project.runpytest(BASELINE, f"--sqlaperf-baseline-mode={mode}")
        assert result.ret == pytest.ExitCode.USAGE_ERROR
        result.stderr.fnmatch_lines(
            [
                f"ERROR: --sqlaperf-baseline: {message}*; fix the file (see its git history), or "
                "delete it and record a new one with --sqlaperf-baseline-mode=update"
            ]
        )
        assert path.read_text() == content


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (
            ("--sqlaperf-baseline-mode=fix",),
            "ERROR: --sqlaperf-baseline-mode (ini sqlaperf_baseline_mode) got 'fix'; choose one "
            "of: check, update, ratchet",
        ),
        (
            ("--sqlaperf-baseline-mode=update",),
            "ERROR: --sqlaperf-baseline-mode=update needs a baseline file: set "
            "--sqlaperf-baseline=PATH*",
        ),
        (
            (BASELINE, "--sqlaperf-baseline-mode=check"),
            "ERROR: --sqlaperf-baseline-mode=check: the baseline * does not exist; record it "
            "first with --sqlaperf-baseline-mode=update",
        ),
        (
            ("--sqlaperf-report=out.txt",),
            "ERROR: --sqlaperf-report (ini sqlaperf_report) got '*out.txt': unknown report format "
            "'.txt'; choose one of: .json, .md, .html, .sarif",
        ),
        (
            ("--sqlaperf-compare=nothere.json",),
            "ERROR: --sqlaperf-compare: *nothere.json: no such file",
        ),
    ],
    ids=["bad-mode", "mode-without-file", "check-without-file", "bad-report", "no-compare-file"],
)
def test_bad_options_are_usage_errors(
    app_project: pytest.Pytester, arguments: tuple[str, ...], message: str
) -> None:
    result = app_project.runpytest(*arguments)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([message])


def test_bad_tolerance_is_a_usage_error(app_project: pytest.Pytester) -> None:
    app_project.makeini(
        """
        [pytest]
        sqlaperf_metadata = models:Base.metadata
        pythonpath = .
        asyncio_default_fixture_loop_scope = function
        sqlaperf_tolerance = -1
        """
    )
    result = app_project.runpytest()
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        ["ERROR: sqlaperf_tolerance got '-1'; give a whole number of statements, 0 or more"]
    )


def test_collect_only_and_ctrl_c_leave_the_baseline_alone(app_project: pytest.Pytester) -> None:
    update = (BASELINE, "--sqlaperf-baseline-mode=update")
    app_project.runpytest(*update, "--collect-only")
    assert not (app_project.path / "sqlaperf-baseline.json").exists()
    app_project.makepyfile(
        test_stop="""
        def test_stop(sqlaperf_session):
            raise KeyboardInterrupt
        """
    )
    result = app_project.runpytest(*update, no_reraise_ctrlc=True)
    assert result.ret == pytest.ExitCode.INTERRUPTED
    assert not (app_project.path / "sqlaperf-baseline.json").exists()


INDEXED = """
from sqlalchemy import func, select, text
from models import Book


def pytest_sqlaperf_setup_database(connection):
    connection.execute(text("CREATE INDEX ix_books_title ON books (title)"))
"""

TITLE_TEST = """
from sqlalchemy import func, select
from models import Book


def test_title(sqlaperf_session):
    sqlaperf_session.scalars(select(Book).where(Book.title == "x")).all()
"""


def test_an_index_no_longer_used_is_a_regression(project: pytest.Pytester) -> None:
    # In a subprocess, as users run pytest: nested in-process runs got no plan facts here.
    project.makeconftest(INDEXED)
    project.makepyfile(test_title=TITLE_TEST)
    project.runpytest_subprocess(BASELINE, "--sqlaperf-baseline-mode=update").assert_outcomes(
        passed=1
    )
    plans = _tests(project)["test_title.py::test_title"]["plans"]
    assert ["ix_books_title"] in [plan["indexes"] for plan in plans.values()]  # type: ignore[attr-defined]
    project.makepyfile(
        test_title=TITLE_TEST.replace('Book.title == "x"', 'func.lower(Book.title) == "x"')
    )
    result = project.runpytest_subprocess(BASELINE)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(
        [
            "REGRESSION test_title.py::test_title: 1 → 1 statements",
            "    new finding: seq_scan books at test_title.py",
            "    index no longer used: ix_books_title",
        ]
    )
