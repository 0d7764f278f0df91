"""README's main job, run as a test: the example project's suite under the plugin stays green."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_example_project_suite_passes_under_the_plugin() -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-c",
            "example_project/pytest.ini",
            "example_project",
            "-q",
            "-p",
            "no:cacheprovider",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "= sqlaperf =" in output
    assert "server: embedded PostgreSQL" in output
    assert "all within budget" in output
    for report in ("report.md", "report.html", "report.json"):
        assert f"example_project/sqlaperf-reports/{report}" in output
        assert (ROOT / "example_project" / "sqlaperf-reports" / report).stat().st_size > 0
    assert " failed" not in output.splitlines()[-1]
