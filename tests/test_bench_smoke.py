"""The benchmark harness runs end to end in quick mode and writes both files (no timing checks)."""

from __future__ import annotations

import json
import numbers
import subprocess
import sys
from pathlib import Path
from typing import Any

REPOSITORY = Path(__file__).resolve().parent.parent
SECTIONS = ("startup", "isolation", "capture_overhead", "statement_cost", "capture_profile")


def _numbers(value: Any) -> list[float]:
    """Every number in a JSON value, however deeply nested."""
    if isinstance(value, bool):
        return []
    if isinstance(value, numbers.Real):
        return [float(value)]
    if isinstance(value, dict):
        return [number for item in value.values() for number in _numbers(item)]
    if isinstance(value, list):
        return [number for item in value for number in _numbers(item)]
    return []


def test_quick_benchmark_writes_json_and_markdown(tmp_path: Path) -> None:
    completed = subprocess.run(
        [sys.executable, "-m", "bench", "--quick", "--output", str(tmp_path)],
        cwd=REPOSITORY,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert completed.returncode == 0, completed.stdout + completed.stderr

    results = json.loads((tmp_path / "benchmarks.json").read_text())
    assert results["quick"] is True
    for key in ("cpu", "cores", "python", "sqlalchemy", "psycopg", "asyncpg", "postgresql", "date"):
        assert results["machine"][key], key
    for section in SECTIONS:
        assert results[section]["method"], section
        samples = _numbers(results[section]["samples"])
        assert samples, f"{section} has no numeric samples"
    startup = results["startup"]["samples"]
    assert len(startup["cold"]) == len(startup["warm"]) == 3
    capture = results["capture_overhead"]["summary"]
    assert capture["sync"]["statements"] == capture["async"]["statements"] > 0

    markdown = (tmp_path / "benchmarks.md").read_text()
    for heading in (
        "## Targets",
        "## Machine",
        "## Start-up: session start to first query",
        "## Per-test isolation cost",
        "## Capture overhead",
        "## Cost per statement",
        "## Where the plugin's time goes",
    ):
        assert heading in markdown
    table_rows = [line for line in markdown.splitlines() if line.startswith("|")]
    assert len(table_rows) >= 30
    assert "| cold | 3 |" in markdown
    assert "| warm | 3 |" in markdown
