"""The header line and the sqlaperf section of the terminal summary."""

from __future__ import annotations

import pytest

from pytest_sqlaperf.capture import listeners


def test_summary_section(project: pytest.Pytester) -> None:
    project.makepyfile(
        test_sum="""
        import pytest
        from sqlalchemy import text

        @pytest.mark.max_queries(1)
        def test_heavy(sqlaperf_session):
            for i in range(5):
                sqlaperf_session.execute(text("SELECT 1"))

        @pytest.mark.max_queries(2)
        def test_light(sqlaperf_session):
            sqlaperf_session.execute(text("SELECT 1"))

        def test_none():
            pass
        """
    )
    result = project.runpytest()
    result.assert_outcomes(passed=2, failed=1)
    result.stdout.fnmatch_lines(
        [
            "sqlaperf: backend auto (embedded, started on first use); statements recorded in "
            + ("C" if listeners.accelerated() else "Python*"),
            "*= sqlaperf =*",
            "server: embedded PostgreSQL*",
            "measured: 3 tests, 2 ran statements; 6 statements (select 6)",
            "top 2 tests by statements:",
            "  5  test_sum.py::test_heavy  [[]max_queries(1)[]]",
            "  1  test_sum.py::test_light  [[]max_queries(2)[]]",
            "budget violations: 1",
            "  test_sum.py::test_heavy: max_queries(1): expected at most 1 statement, ran 5*",
        ]
    )


def test_no_section_when_no_test_ran_sql(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_plain="def test_x(): pass")
    result = pytester.runpytest()
    result.assert_outcomes(passed=1)
    result.stdout.no_fnmatch_line("*= sqlaperf =*")
