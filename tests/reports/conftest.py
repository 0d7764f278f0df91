"""Fixtures of the baseline and report tests."""

from __future__ import annotations

import pytest
from report_helpers import APP_SELECTIN, TESTS, write_app


@pytest.fixture
def app_project(project: pytest.Pytester) -> pytest.Pytester:
    """The project of tests/conftest.py with app.py (selectinload) and test_app.py.

    Its tables have no indexes but primary keys, so the plan checks are off here: these tests
    are about counts and N+1 findings (the ones about plan facts turn them on themselves).
    """
    project.makeini(
        """
        [pytest]
        sqlaperf_metadata = models:Base.metadata
        pythonpath = .
        asyncio_default_fixture_loop_scope = function
        sqlaperf_explain = off
        """
    )
    write_app(project, APP_SELECTIN)
    project.makepyfile(test_app=TESTS)
    return project


@pytest.fixture(autouse=True)
def _not_in_github_actions(monkeypatch: pytest.MonkeyPatch) -> None:
    """Inner runs must not annotate or append to the job summary of CI running these tests."""
    for name in ("GITHUB_ACTIONS", "GITHUB_STEP_SUMMARY", "GITHUB_WORKSPACE"):
        monkeypatch.delenv(name, raising=False)
