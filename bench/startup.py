"""Start-up: from pytest's session start to the first query of the first test, cold and warm."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from bench.harness import run_pytest, summary, write_project
from bench.projects import startup_project

METHOD = (
    "A generated one-test project (the test requests `sqlaperf_session` and runs `SELECT 1`) "
    "runs in a subprocess, `python -m pytest -q -p no:cacheprovider`; the test records the "
    "`time.monotonic()` elapsed since `pytest_sessionstart`. Cold: `XDG_CACHE_HOME` is a new "
    "empty directory, so the plugin runs initdb; warm: a private one whose cluster cache an "
    "untimed run filled. Cold and warm runs alternate; wall is the whole subprocess."
)


def _sample(project: Path, cache_home: Path) -> dict[str, float]:
    run = run_pytest(project, environment={"XDG_CACHE_HOME": str(cache_home)})
    return {"first_query": run.results["first_query"], "session": run.session, "wall": run.wall}


def measure(workdir: Path, warm_cache_home: Path, samples: int) -> dict[str, Any]:
    """Alternate cold and warm runs, ``samples`` of each."""
    project = write_project(workdir / "startup", startup_project())
    _sample(project, warm_cache_home)  # fills the warm cache (and the OS page cache); not counted
    runs: dict[str, list[dict[str, float]]] = {"cold": [], "warm": []}
    for index in range(samples):
        cold_home = workdir / f"cold-cache-{index}"
        try:
            runs["cold"].append(_sample(project, cold_home))
        finally:
            shutil.rmtree(cold_home, ignore_errors=True)
        runs["warm"].append(_sample(project, warm_cache_home))
    return {"method": METHOD, "samples": runs, "summary": summarise(runs)}


def summarise(runs: dict[str, list[dict[str, float]]]) -> dict[str, dict[str, Any]]:
    """Per kind of start: median, min and max of the first query and of the wall time."""
    return {
        kind: {
            "first_query": summary([run["first_query"] for run in kind_runs]),
            "wall": summary([run["wall"] for run in kind_runs]),
        }
        for kind, kind_runs in runs.items()
    }
