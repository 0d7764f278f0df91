"""Where the plugin's time goes: its functions in a cProfile of the sync ORM suite."""

from __future__ import annotations

import os
import pstats
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from bench.harness import run_pytest

METHOD = (
    "The sync ORM suite of the capture-overhead benchmark runs once more with the plugin "
    "(default checks), under `python -m cProfile`. Listed are the plugin's own functions with "
    "the most cumulative time (module imports left out). cProfile inflates small, "
    "often-called functions, and a function's cumulative time includes the functions it calls "
    "(`find` inside `_before_cursor_execute`), so read the figures as proportions, not as "
    "added seconds."
)
TOP = 15


def measure(project: Path, environment: Mapping[str, str]) -> dict[str, Any]:
    """Profile one run of the sync suite; the plugin's functions by cumulative time."""
    output = project / "capture.prof"
    run_pytest(project, ["test_sync_workload.py"], environment=environment, profile_to=output)
    stats = pstats.Stats(str(output))
    # The subprocess may import a snapshot of the package, not the working tree: match by name.
    marker = f"{os.sep}pytest_sqlaperf{os.sep}"
    functions: list[dict[str, Any]] = []
    # pstats.Stats keeps its table in an attribute typeshed does not declare.
    table: dict[tuple[str, int, str], tuple[Any, ...]] = getattr(stats, "stats", {})
    for (filename, line, name), (_, calls, own, cumulative, _) in table.items():
        if marker not in filename or name == "<module>":
            continue
        functions.append(
            {
                "function": f"{filename.split(marker, 1)[1]}:{line}({name})",
                "calls": calls,
                "own_s": own,
                "cumulative_s": cumulative,
            }
        )
    functions.sort(key=lambda entry: entry["cumulative_s"], reverse=True)
    return {
        "method": METHOD,
        "profiled_total_s": getattr(stats, "total_tt", None),
        "samples": {"functions": functions[:TOP]},
    }
