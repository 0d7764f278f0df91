"""The benchmark harness runs end to end in quick mode and writes both files (no timing checks).

The benchmarks that need virtualenvs from PyPI (other plugins, pytest-postgresql) are left out:
making them takes minutes. The instruction counts need valgrind and are checked where it is.
The bytecode count (python -m bench.bytecodes) runs with 1 and 2 tests.
"""

from __future__ import annotations

import json
import numbers
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

REPOSITORY = Path(__file__).resolve().parent.parent
SECTIONS = (
    "startup",
    "isolation",
    "capture_overhead",
    "explain_cost",
    "statement_cost",
    "capture_profile",
    "memory",
)


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


def _bench(module: str, *args: str, timeout: float) -> str:
    """Run ``python -m <module> <args>`` from the repository; its output, once it succeeded."""
    completed = subprocess.run(
        [sys.executable, "-m", module, *args],
        cwd=REPOSITORY,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    assert completed.returncode == 0, completed.stdout + completed.stderr
    return completed.stdout


def test_quick_benchmark_writes_json_and_markdown(tmp_path: Path) -> None:
    _bench(
        "bench",
        "--quick",
        "--no-competitors",
        "--no-pytest-postgresql",
        "--output",
        str(tmp_path),
        timeout=600,
    )

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
    for driver in ("sync", "async"):
        assert set(capture[driver]) >= {"without", "default", "n_plus_one", "capture_only"}
        # The plugin records the call phases: fewer statements than the suite's listener sees.
        for variant, counted in capture[driver]["plugin_statements"].items():
            assert 0 < counted <= capture[driver]["statements"], (driver, variant)

    # Cost per statement: each run with the plugin timed 2 installed/uninstalled rounds a loop.
    cost = results["statement_cost"]
    for loop, figures in cost["summary"]["in_process"].items():
        assert figures["count"] == cost["pairs"] * 2, loop
        assert figures["q1"] <= figures["median"] <= figures["q3"], loop

    # Skipped on request, and said so.
    assert results["competitors"] == {"skipped": "--no-competitors"}
    assert results["pytest_postgresql_startup"] == {"skipped": "--no-pytest-postgresql"}
    assert results["testcontainers_startup"]["measured"] is False
    assert isinstance(results["testcontainers_startup"]["docker_available"], bool)

    # EXPLAIN: every default run EXPLAINs the workload's shapes, each in well under a second.
    for driver, explain in results["explain_cost"]["summary"].items():
        assert explain["explains_per_run"]["min"] > 5, driver
        assert explain["shapes_per_run"]["min"] > 5, driver
        assert 0 < explain["ms"]["min"] <= explain["ms"]["median"] < 1000, driver

    # Memory: both runs ran the same statements, 3 per test; resident sets in a sane range.
    memory = results["memory"]
    assert memory["tests"] == 200
    for variant in ("without", "with"):
        figures = memory["samples"][variant]
        assert figures["statements"] >= 3 * (memory["tests"] + 1), variant
        assert 10 < figures["rss_after_warmup_mb"] <= figures["peak_at_sentinel_mb"] < 2000
    summary = memory["summary"]
    assert summary["plugin_growth_mb"] == summary["growth_with_mb"] - summary["growth_without_mb"]

    counted = results["instructions"]
    if shutil.which("valgrind") is None:
        assert counted == {"skipped": "valgrind is not on PATH"}
    else:
        per_statement = counted["summary"]["per_statement"]
        for loop in ("core", "orm"):
            variants = per_statement[loop]
            assert set(variants) == {"none", "listener", "recorder", "recorder_python", "explain"}
            # A statement through SQLAlchemy takes some 10^5 instructions. What recording
            # adds is of the order of the memory layout's noise with one seed (the --quick
            # run's): bounded here, not signed.
            assert 10_000 < variants["none"]["instructions"] < 10_000_000, loop
            for variant in ("recorder", "recorder_python", "explain"):
                figures = variants[variant]
                assert abs(figures["added"]) < variants["none"]["instructions"] / 2, variant
                assert figures["per_seed"] == [figures["instructions"]], variant
        # SQLAlchemy's engine events cost a Core statement far more than the layout's noise.
        assert per_statement["core"]["listener"]["added"] > 0
        # The ORM loop does more than the Core SELECT 1.
        assert (
            per_statement["orm"]["none"]["instructions"]
            > (per_statement["core"]["none"]["instructions"])
        )

    workload = results["workload_instructions"]
    if shutil.which("valgrind") is None:
        assert workload == {"skipped": "valgrind is not on PATH"}
    else:
        per_test = workload["per_test"]["ours"]["sync"]
        assert set(per_test) == {"without", "n_plus_one"}
        # A workload test (24 statements) takes tens of millions of instructions; the plugin's
        # recording and N+1 check add to them.
        assert 10**6 < per_test["without"] < per_test["n_plus_one"] < 10**9
        rows = [
            row for row in results["verdicts"] if "instructions per workload test" in row["measure"]
        ]
        assert [row["unit"] for row in rows] == ["percent"]

    markdown = (tmp_path / "benchmarks.md").read_text()
    for heading in (
        "## Targets",
        "## Machine",
        "## Start-up: session start to first query",
        "## Per-test isolation cost",
        "## Capture overhead",
        "## Other plugins on the same workload",
        "## EXPLAIN cost per new fingerprint",
        "## Cost per statement",
        "## Cost per statement in client instructions",
        "## Memory over a long suite",
        "## Where the plugin's time goes",
    ):
        assert heading in markdown
    table_rows = [line for line in markdown.splitlines() if line.startswith("|")]
    assert len(table_rows) >= 40
    assert "| pytest-sqlaperf | cold | 3 |" in markdown
    assert "| pytest-sqlaperf | warm | 3 |" in markdown
    assert "| sync | n_plus_one |" in markdown
    assert "not measured in this run: --no-competitors" in markdown
    assert "not measured in this run: --no-pytest-postgresql" in markdown
    assert "testcontainers" in markdown
    assert "| EXPLAIN cost per new fingerprint" in markdown
    assert "| Memory growth over 200 tests" in markdown
    if shutil.which("valgrind") is not None:
        assert "| Core `connection.execute(text('SELECT 1')).scalar_one()` | recorder |" in markdown
        assert "## Capture overhead in client instructions per workload test" in markdown
        assert "| pytest-sqlaperf | sync | N+1 detection, EXPLAIN off |" in markdown

    # Sections measured again into the same results, which say so; the rest is kept.
    rerun_sections = ("startup", "statement_cost")
    _bench(
        "bench",
        "--quick",
        "--no-pytest-postgresql",
        *(argument for section in rerun_sections for argument in ("--rerun", section)),
        "--output",
        str(tmp_path),
        timeout=300,
    )
    rerun = json.loads((tmp_path / "benchmarks.json").read_text())
    [again] = rerun["reruns"]
    assert again["sections"] == list(rerun_sections)
    assert len(rerun["startup"]["samples"]["warm"]) == 3
    for section in SECTIONS:
        if section in rerun_sections:
            assert rerun[section]["samples"] != results[section]["samples"], section
        else:
            assert rerun[section] == results[section], section
    markdown = (tmp_path / "benchmarks.md").read_text()
    flags = "--rerun startup --rerun statement_cost"
    assert f"**Rerun on {again['date']}** (`python -m bench {flags}`)" in markdown
    assert "| pytest-sqlaperf | warm | 3 |" in markdown
    assert "## Cost per statement" in markdown

    # A later rerun of start-up takes it from the earlier rerun, which keeps the rest.
    _bench(
        "bench",
        *("--quick", "--no-pytest-postgresql", "--rerun", "startup", "--output", str(tmp_path)),
        timeout=300,
    )
    reruns = json.loads((tmp_path / "benchmarks.json").read_text())["reruns"]
    assert [again["sections"] for again in reruns] == [["statement_cost"], ["startup"]]
    markdown = (tmp_path / "benchmarks.md").read_text()
    assert "(`python -m bench --rerun statement_cost`): the cost per statement (timed)." in markdown


def test_bytecode_count_names_the_plugins_functions() -> None:
    output = _bench("bench.bytecodes", "--n1", "1", "--n2", "2", "--top", "15", timeout=300)
    first, *rows = output.splitlines()
    assert first.startswith("sync workload, n_plus_one: "), first
    # the listener records every statement: it is among the functions that add the most
    assert any("pytest_sqlaperf/capture/listeners.py" in row for row in rows), rows
