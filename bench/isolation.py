"""Per-test isolation: what ``sqlaperf_session`` costs a test over a plain connection."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bench.harness import run_pytest, summary, write_project
from bench.projects import ISOLATION_VARIANTS, isolation_project

METHOD = (
    "N tests, each running one `SELECT 1` through the fixture under test, run in a subprocess "
    "against the benchmark's server (`--sqlaperf-url`), timed inside it from the end of a "
    "warm-up test to the start of a sentinel test (no start-up, no session teardown). "
    "Variants run round-robin; the cost is the paired difference of the windows per test, "
    "median over the rounds. Plain sync: a connection from a pooled session-scoped engine on "
    "`sqlaperf_url`; plain async: a connection from a NullPool engine on `sqlaperf_async_url` "
    "with a loop per test, as the plugin's async engine; pooled async: a pooled engine, tests "
    "on the session's loop; `sqlaperf_async_session` on the session loop: tests and fixtures "
    "on the session's loop (`asyncio_default_fixture_loop_scope = session`), where the "
    "fixture takes its connections from a pool of that loop's."
)

# (label, measured variant, baseline variant)
COMPARISONS: dict[str, tuple[str, str, str]] = {
    "sync": ("`sqlaperf_session` over a plain connection (psycopg)", "sync_isolated", "sync_plain"),
    "async": (
        "`sqlaperf_async_session` over a plain connection, NullPool (asyncpg)",
        "async_isolated",
        "async_plain",
    ),
    "async_connect": (
        "a connection per test (NullPool, loop per test) over a pooled one on the session loop",
        "async_plain",
        "async_pooled",
    ),
    "async_session_loop": (
        "`sqlaperf_async_session` over a pooled connection, tests and fixtures on the session "
        "loop (asyncpg)",
        "async_isolated_session_loop",
        "async_pooled",
    ),
}


def _arguments(variant: str, admin_url: str) -> list[str]:
    """The variant's test module and options: fixtures on the session's loop when its tests are."""
    arguments = [f"test_{variant}.py", f"--sqlaperf-url={admin_url}"]
    if ISOLATION_VARIANTS[variant][2]:
        arguments += ["-o", "asyncio_default_fixture_loop_scope=session"]
    return arguments


def measure(workdir: Path, admin_url: str, tests: int, rounds: int, warmup: bool) -> dict[str, Any]:
    """Run every variant ``rounds`` times, round-robin; one untimed round first if ``warmup``."""
    project = write_project(workdir / "isolation", isolation_project(tests))
    if warmup:
        for variant in ISOLATION_VARIANTS:
            run_pytest(project, _arguments(variant, admin_url))
    samples: dict[str, list[dict[str, float]]] = {variant: [] for variant in ISOLATION_VARIANTS}
    for _ in range(rounds):
        for variant in ISOLATION_VARIANTS:
            run = run_pytest(project, _arguments(variant, admin_url))
            samples[variant].append(
                {
                    "window": run.window,
                    "window_cpu": run.window_cpu,
                    "session": run.session,
                    "wall": run.wall,
                }
            )
    per_test_ms = {
        variant: summary([run["window"] / tests * 1000 for run in runs])
        for variant, runs in samples.items()
    }
    comparisons = {}
    for name, (label, measured, baseline) in COMPARISONS.items():
        added = [
            (a["window"] - b["window"]) / tests * 1000
            for a, b in zip(samples[measured], samples[baseline], strict=True)
        ]
        comparisons[name] = {
            "label": label,
            "measured": measured,
            "baseline": baseline,
            "added_ms_per_test": summary(added),
            "added_ms_per_test_samples": added,
        }
    return {
        "method": METHOD,
        "tests": tests,
        "rounds": rounds,
        "variants": {
            variant: {"fixture": fixture, "asynchronous": asynchronous, "session_loop": loop}
            for variant, (fixture, asynchronous, loop) in ISOLATION_VARIANTS.items()
        },
        "samples": samples,
        "summary": {"per_test_ms": per_test_ms, "comparisons": comparisons},
    }
