"""Capture overhead and cost per statement: the same ORM code with and without the plugin."""

from __future__ import annotations

import statistics
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.harness import BenchError, PytestRun, count_statements, run_pytest, summary
from pytest_sqlaperf.explain import MAX_VALUES_PER_SHAPE

CAPTURE_METHOD = (
    "N tests run the same ORM code (24 statements: inserts, filtered selects, a lazy-load "
    "loop over 4 posts, selectinload, joinedload, an aggregate, ORM and bulk updates and "
    "deletes, a refresh) on an engine and `Session` of their own (not the plugin's fixtures), "
    "in four variants run in turn, round after round: without the plugin (`-p no:sqlaperf`); "
    "with it only recording (counting and fingerprints; both checks off); with N+1 detection "
    "on and EXPLAIN off (`sqlaperf_n_plus_one=warn`, `sqlaperf_explain=off`): the issue's "
    '"capture overhead with N+1 detection", and what the other plugins do; and with it as '
    "installed (N+1 detection and EXPLAIN of each new statement shape, both set to warn so "
    "that the suite's deliberate N+1 does not fail it). Each step of that ladder adds one "
    "thing: recording, then N+1 detection, then EXPLAIN (`--sqlaperf-explain=warn` against "
    "off). "
    "Wall-clock and CPU time (`time.process_time()`) are taken inside the subprocess from "
    "session start to session finish; the overhead is the median of the per-round ratios to "
    "the run without the plugin. The CPU ratio is less exposed to other processes; with the "
    "checks off, when the plugin's work is all CPU work in the pytest process, it bounds the "
    "wall-clock overhead from above. The statements are counted in a run of their own, by a "
    "conftest listener on `Engine`; the measured runs have no listener of the suite's (one "
    "would make SQLAlchemy dispatch its engine events in the runs without a plugin too). The "
    "plugin's own count is the same in every variant and round. Async: the same code on "
    "`AsyncSession` (asyncpg, lazy loads through `awaitable_attrs`, pooled engine, tests on "
    "the session's loop). The conftest also counts the garbage collector's collections of "
    "each generation in the window (`gc.callbacks`): a plugin that keeps objects while the "
    "tests run moves the collector's runs, and a full collection costs as much as several "
    "tests."
)

STATEMENT_METHOD = (
    "One test times loops of M statements each (after 50 untimed): a raw DBAPI `SELECT 1` "
    "(below SQLAlchemy, the plugin never sees it: a control), "
    "`Connection.execute(text('SELECT 1'))` and an ORM select by primary key; runs with the "
    "plugin (default checks) and without it alternate, and the added cost is the paired "
    "difference, median over the pairs. Without the plugin the test also times the Core loop "
    "with a no-op `before_cursor_execute` listener and the ORM loop with a no-op "
    "`do_orm_execute` listener: SQLAlchemy's own price for dispatching to any listener. "
    "Each run loads or leaves out the whole plugin, which moves where the interpreter's data "
    "land (hence a spread of several µs even for the raw control, which the plugin never "
    "sees); so the runs with the plugin also time, in the same process, blocks of M/12 "
    "statements with the recorder installed and uninstalled (no listener at all) in "
    "alternation, {rounds} rounds per loop: the listeners' own work, median and quartiles "
    "over the blocks of every run."
)

# variant -> (label, plugin loaded, extra pytest arguments)
VARIANTS: dict[str, tuple[str, bool, tuple[str, ...]]] = {
    "without": ("`-p no:sqlaperf`", False, ()),
    "default": ("the plugin with its default checks (N+1 set to warn)", True, ()),
    "n_plus_one": (
        "the plugin with N+1 detection on and EXPLAIN off (`sqlaperf_n_plus_one=warn`, "
        "`sqlaperf_explain=off`)",
        True,
        ("-o", "sqlaperf_explain=off", "-o", "sqlaperf_n_plus_one=warn"),
    ),
    "capture_only": (
        "the plugin with its checks off (`sqlaperf_explain=off`, `sqlaperf_n_plus_one=off`)",
        True,
        ("-o", "sqlaperf_explain=off", "-o", "sqlaperf_n_plus_one=off"),
    ),
}
# What the suite's conftest must read back from the plugin's ini keys in each variant.
EXPECTED_SETTINGS: dict[str, dict[str, Callable[[Any], bool]]] = {
    "default": {
        "sqlaperf_explain": lambda value: value != "off",
        "sqlaperf_n_plus_one": lambda value: value == "warn",
    },
    "n_plus_one": {
        "sqlaperf_explain": lambda value: value == "off",
        "sqlaperf_n_plus_one": lambda value: value == "warn",
    },
    "capture_only": {
        "sqlaperf_explain": lambda value: value == "off",
        "sqlaperf_n_plus_one": lambda value: value == "off",
    },
}

LOOPS = ("raw", "core", "orm")
# loop with an idle listener -> the loop it is compared with
IDLE_LISTENER_LOOPS = {
    "core_idle_before_cursor_execute": "core",
    "orm_idle_do_orm_execute": "orm",
}


EXPLAIN_METHOD = (
    "In the capture-overhead runs with the plugin's default checks, the plugin's own "
    "`ExplainRunner` times every EXPLAIN it runs (`time.perf_counter()` around the savepoint, "
    "the EXPLAIN, the catalog reads and the rollback to the savepoint); the suite's sentinel "
    "test reads those durations after the window. An EXPLAIN runs for each new statement shape "
    "(fingerprint), and again for new bound values of a shape up to "
    f"{MAX_VALUES_PER_SHAPE} per shape; a repeated shape and values cost a dict lookup, not "
    "an EXPLAIN. The first EXPLAIN that gets a plan in a run also reads the database's "
    "catalog (indexes, foreign keys), and is usually the max. The target is on the sync "
    "suite's median."
)
# The variants whose runs EXPLAIN (their EXPLAIN durations are kept); the cost is the default's.
EXPLAIN_VARIANTS = ("default",)


def _figures(run: PytestRun) -> dict[str, float]:
    figures = {
        "session": run.session,
        "session_cpu": run.session_cpu,
        "window": run.window,
        "window_cpu": run.window_cpu,
        "wall": run.wall,
    }
    if "plugin_statements" in run.results:
        figures["plugin_statements"] = run.results["plugin_statements"]
    for generation, count in enumerate(run.results.get("collections", ())):
        figures[f"gc{generation}"] = count
    return figures


@dataclass(frozen=True)
class Explains:
    """The EXPLAINs the plugin ran in one run: their durations (s), the shapes it saw."""

    durations: list[float]
    shapes: int


def _run_variant(
    project: Path, module: str, environment: Mapping[str, str], variant: str
) -> tuple[dict[str, float], Explains]:
    """The run's figures, and the EXPLAINs the plugin ran in it."""
    _, plugin, args = VARIANTS[variant]
    run = run_pytest(project, [module, *args], environment=environment, plugin=plugin)
    if plugin:
        expected = EXPECTED_SETTINGS[variant]
        found = {name: run.results.get(name) for name in expected}
        if any(not accept(found[name]) for name, accept in expected.items()):
            raise BenchError(
                f"the plugin's settings in the {variant} variant are {found}: were "
                "sqlaperf_explain or sqlaperf_n_plus_one renamed? Update bench/overhead.py"
            )
        if "plugin_statements" not in run.results:
            raise BenchError(
                f"the {variant} run of {module} did not report the plugin's figures: "
                "bench_plugin_figures in bench/projects.py no longer finds them"
            )
    durations: list[float] = list(run.results.get("explain_durations", []))
    if variant in EXPLAIN_VARIANTS and not durations:
        raise BenchError(
            f"the plugin ran no EXPLAIN in the {variant} run of {module}: is its ExplainRunner "
            "still an extension's `runner` (bench_plugin_figures in bench/projects.py)?"
        )
    return _figures(run), Explains(durations, int(run.results.get("explain_shapes", 0)))


def _explain_summary(runs: list[Explains]) -> dict[str, Any]:
    """Per EXPLAIN, in ms: all of them, the first of each run (it reads the catalog), the rest."""
    rest = [duration * 1000 for run in runs for duration in run.durations[1:]]
    return {
        "explains_per_run": summary([len(run.durations) for run in runs]),
        "shapes_per_run": summary([run.shapes for run in runs]),
        "ms": summary([duration * 1000 for run in runs for duration in run.durations]),
        "first_ms": summary([run.durations[0] * 1000 for run in runs]),
        "after_first_ms": summary(rest) if rest else None,
    }


def measure_capture(
    project: Path, environment: Mapping[str, str], tests: int, rounds: int, warmup: bool
) -> dict[str, Any]:
    """Sync and async suites: ``rounds`` rounds of every variant, in turn (one untimed first).

    Also returns, under ``explain``, the EXPLAIN durations of the default variant's runs.
    """
    result: dict[str, Any] = {
        "method": CAPTURE_METHOD,
        "tests": tests,
        "rounds": rounds,
        "variants": {name: label for name, (label, _, _) in VARIANTS.items()},
    }
    samples: dict[str, list[dict[str, dict[str, float]]]] = {}
    summaries: dict[str, dict[str, Any]] = {}
    explain_samples: dict[str, list[list[float]]] = {}
    explain_summaries: dict[str, dict[str, Any]] = {}
    measures = ("session", "session_cpu", "window", "window_cpu", "wall")
    for driver in ("sync", "async"):
        module = f"test_{driver}_workload.py"
        if warmup:
            for variant in VARIANTS:
                _run_variant(project, module, environment, variant)
        driver_rounds = []
        explains: list[Explains] = []
        for _ in range(rounds):
            runs = {}
            for variant in VARIANTS:
                runs[variant], explained = _run_variant(project, module, environment, variant)
                if variant == "default":
                    explains.append(explained)
            driver_rounds.append(runs)
        recorded = {
            (variant, runs[variant]["plugin_statements"])
            for runs in driver_rounds
            for variant in runs
            if variant != "without"
        }
        if len({count for _, count in recorded}) != 1:
            raise BenchError(
                f"the plugin recorded {sorted(recorded)} statements of the {driver} suite "
                "across variants and rounds: the workload is not deterministic"
            )
        samples[driver] = driver_rounds
        figures: dict[str, Any] = {
            "statements": count_statements(project, module, environment=environment),
            "plugin_statements": {
                variant: driver_rounds[0][variant]["plugin_statements"]
                for variant, (_, plugin, _) in VARIANTS.items()
                if plugin
            },
        }
        for variant in VARIANTS:
            figures[variant] = {
                measure: summary([runs[variant][measure] for runs in driver_rounds])
                for measure in (*measures, "gc0", "gc1", "gc2")
                if all(measure in runs[variant] for runs in driver_rounds)
            }
            if variant != "without":
                figures[variant].update(
                    {
                        f"{measure}_ratio": summary(
                            [
                                runs[variant][measure] / runs["without"][measure]
                                for runs in driver_rounds
                            ]
                        )
                        for measure in measures
                    }
                )
        summaries[driver] = figures
        explain_samples[driver] = [
            [duration * 1000 for duration in explained.durations] for explained in explains
        ]
        explain_summaries[driver] = _explain_summary(explains)
    result["samples"] = samples
    result["summary"] = summaries
    result["explain"] = {
        "method": EXPLAIN_METHOD,
        "variant": "default",
        "samples": explain_samples,
        "summary": explain_summaries,
    }
    return result


def _quartiles(values: list[float]) -> dict[str, float | int]:
    """Median and quartiles of ``values`` (empty: no figures)."""
    if len(values) < 2:
        return {"count": len(values)}
    low, median, high = statistics.quantiles(values, n=4)
    return {"count": len(values), "median": median, "q1": low, "q3": high}


def measure_statement_cost(
    project: Path,
    environment: Mapping[str, str],
    statements: int,
    pairs: int,
    in_process_rounds: int = 2,
) -> dict[str, Any]:
    """µs per statement of each loop, with and without the plugin, in alternating pairs."""
    samples = []
    for _ in range(pairs):
        pair = {}
        for variant, plugin in (("with", True), ("without", False)):
            run = run_pytest(
                project, ["test_statement_cost.py"], environment=environment, plugin=plugin
            )
            names = [*LOOPS, *(IDLE_LISTENER_LOOPS if not plugin else ())]
            pair[variant] = {
                f"{name}{clock}": run.results[f"{name}{clock}"] / statements * 1e6
                for name in names
                for clock in ("", "_cpu")
            }
            if plugin:
                pair[variant].update(
                    {f"{loop}_in_process": run.results[f"{loop}_in_process"] for loop in LOOPS}
                )
        samples.append(pair)
    loops: dict[str, Any] = {}
    for loop in LOOPS:
        loops[loop] = {}
        for clock in ("", "_cpu"):
            key = loop + clock
            loops[loop][f"without_us{clock}"] = summary([pair["without"][key] for pair in samples])
            loops[loop][f"with_us{clock}"] = summary([pair["with"][key] for pair in samples])
            loops[loop][f"added_us{clock}"] = summary(
                [pair["with"][key] - pair["without"][key] for pair in samples]
            )
    in_process = {
        loop: _quartiles(
            [
                difference * 1e6
                for pair in samples
                for difference in pair["with"].get(f"{loop}_in_process", [])
            ]
        )
        for loop in LOOPS
    }
    idle_listeners = {
        name: {
            f"added_us{clock}": summary(
                [pair["without"][name + clock] - pair["without"][base + clock] for pair in samples]
            )
            for clock in ("", "_cpu")
        }
        for name, base in IDLE_LISTENER_LOOPS.items()
    }
    return {
        "method": STATEMENT_METHOD.format(rounds=in_process_rounds),
        "statements": statements,
        "pairs": pairs,
        "samples": samples,
        "summary": {"loops": loops, "idle_listeners": idle_listeners, "in_process": in_process},
    }
