"""``python -m bench [--quick] [--output DIR] [--rerun SECTION ...]``: run the benchmarks, write
JSON and Markdown."""

from __future__ import annotations

import argparse
import datetime
import json
import os
import statistics
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from bench import (
    competitors,
    instructions,
    isolation,
    machine,
    memory,
    overhead,
    pgstartup,
    profile,
    report,
    startup,
)
from bench.harness import BenchError, source_snapshot, write_project
from bench.projects import workload_project
from bench.server import bench_server


@dataclass(frozen=True)
class Sizes:
    """How much each benchmark runs."""

    startup_samples: int
    isolation_tests: int
    isolation_rounds: int
    capture_tests: int
    capture_rounds: int
    cost_statements: int
    cost_pairs: int
    cost_in_process_rounds: int  # installed/uninstalled blocks per loop in each run with it
    warmup: bool
    competitor_tests: int
    competitor_rounds: int
    pg_startup_samples: int
    memory_tests: int
    instruction_n1: int
    instruction_n2: int
    instruction_repeat: bool  # count the run without the plugin twice, to show it repeats
    instruction_seeds: tuple[str, ...]  # PYTHONHASHSEED values of the per-statement counts
    workload_instruction_tests: int  # the workload under callgrind: tests in the window
    workload_instruction_full: bool  # every variant, async too, and the other tools
    workload_instruction_seeds: tuple[str, ...]  # PYTHONHASHSEED values of our main variants


FULL = Sizes(
    startup_samples=5,
    isolation_tests=300,
    isolation_rounds=5,
    capture_tests=250,
    capture_rounds=8,
    cost_statements=5000,
    cost_pairs=15,
    cost_in_process_rounds=20,
    warmup=True,
    competitor_tests=250,
    competitor_rounds=5,
    pg_startup_samples=5,
    memory_tests=10_000,
    instruction_n1=300,
    instruction_n2=1300,
    instruction_repeat=True,
    instruction_seeds=("0", "1", "2", "3", "4"),
    workload_instruction_tests=60,
    workload_instruction_full=True,
    workload_instruction_seeds=("0", "1", "2", "3", "4"),
)
QUICK = Sizes(
    startup_samples=3,
    isolation_tests=20,
    isolation_rounds=2,
    capture_tests=10,
    capture_rounds=2,
    cost_statements=200,
    cost_pairs=2,
    cost_in_process_rounds=2,
    warmup=False,
    competitor_tests=10,
    competitor_rounds=1,
    pg_startup_samples=1,
    memory_tests=200,
    instruction_n1=50,
    instruction_n2=150,
    instruction_repeat=False,
    instruction_seeds=("0",),
    workload_instruction_tests=2,
    workload_instruction_full=False,
    workload_instruction_seeds=("0",),
)

# The virtualenvs of the compared tools: kept between runs (making them takes minutes).
VENVS_VARIABLE = "SQLAPERF_BENCH_VENVS"


def venv_cache() -> Path:
    """``$SQLAPERF_BENCH_VENVS``, else ``~/.cache/sqlaperf-bench/venvs`` (XDG_CACHE_HOME)."""
    configured = os.environ.get(VENVS_VARIABLE)
    if configured:
        return Path(configured).expanduser().absolute()
    cache_home = os.environ.get("XDG_CACHE_HOME") or "~/.cache"
    return Path(cache_home).expanduser().absolute() / "sqlaperf-bench" / "venvs"


def testcontainers_startup() -> dict[str, Any]:
    """Whether a Docker daemon answers; container start-up itself is not measured (yet)."""
    from pytest_sqlaperf.postgres.docker import docker_available

    answers = docker_available()
    if answers:
        reason = (
            "a Docker daemon answers on this machine, but the benchmark does not measure a "
            "container's start-up yet"
        )
    else:
        reason = (
            "no Docker daemon answers on this machine "
            "(`pytest_sqlaperf.postgres.docker.docker_available()` is false)"
        )
    return {"measured": False, "docker_available": answers, "reason": reason}


def _notes(results: dict[str, Any]) -> list[str]:
    load = results["load_average"]
    notes = [
        "Medians are quoted because the machine is shared (load average "
        f"{load['start'][0]} at the start, {load['end'][0]} at the end): other processes add "
        "noise that a mean would carry; min .. max shows the spread.",
        "Per-test figures include pytest's own per-test work (hooks, reporting) equally in "
        "every variant; only the differences are the fixture's or the plugin's cost.",
    ]
    capture = results["capture_overhead"]
    for driver, rounds in capture["samples"].items():
        spreads = []
        for clock in ("session", "session_cpu"):
            without = [runs["without"][clock] for runs in rounds]
            spread = (max(without) - min(without)) / statistics.median(without) * 100
            spreads.append(f"{min(without):.2f} .. {max(without):.2f} s ({spread:.0f} %)")
        notes.append(
            f"Resolution: identical runs of the {driver} suite without the plugin took "
            f"{spreads[0]} of wall-clock time and {spreads[1]} of CPU time, so one round resolves "
            f"little; the median over {len(rounds)} rounds is what the table quotes."
        )
    ours = results.get("workload_instructions", {}).get("per_test", {}).get("ours", {})
    if "without" in ours.get("sync", {}):
        cpu = capture["summary"]["sync"]["without"]["window_cpu"]["median"]
        per_test_us = cpu / capture["tests"] * 1e6
        notes.append(
            "This machine's speed in this run: the sync suite without the plugin ran "
            f"{ours['sync']['without'] / 1e6:.2f} M instructions per test (callgrind) in "
            f"{per_test_us / 1000:.1f} ms of CPU per test (timed runs, median), "
            f"{ours['sync']['without'] / per_test_us:,.0f} instructions per µs. The instruction "
            "counts do not depend on it; every timed figure (start-up, isolation, cost per "
            "statement) scales with it, so compare timed figures across runs through it."
        )
    collections = []
    for driver, figures in capture["summary"].items():
        plain, recorded = (report.collections(figures[v]) for v in ("without", "n_plus_one"))
        if plain is not None and recorded is not None:
            collections.append(f"{driver}: {plain} without the plugin, {recorded} with it")
    if collections:
        notes.append(
            "Garbage collections of generations 0, 1 and 2 in the capture-overhead window "
            f"(median per run, {capture['tests']} tests, N+1 detection on): "
            + "; ".join(collections)
            + ". The plugin keeps no object per statement while a test runs, so the collector "
            "runs as often in the user's tests as without it."
        )
    for comparison in results["isolation"]["summary"]["comparisons"].values():
        added = comparison["added_ms_per_test"]
        if added["min"] < 0 < added["max"]:
            notes.append(
                f"Resolution: the rounds for {comparison['label']} range from "
                f"{added['min']:.3f} to {added['max']:.3f} ms per test, so its median is within "
                "the noise of this machine."
            )
    cost = results["statement_cost"]["summary"]
    orm_added = cost["loops"]["orm"]["added_us_cpu"]["median"]
    idle_orm = cost["idle_listeners"]["orm_idle_do_orm_execute"]["added_us_cpu"]["median"]
    notes.append(
        f"The plugin adds {orm_added:.1f} µs of CPU to an ORM select by primary key. It does not "
        "listen to `do_orm_execute` (it reads the ORM's load options from the execution "
        f"context), which costs any tool that does {idle_orm:.1f} µs per ORM execution here "
        "(SQLAlchemy builds an `ORMExecuteState` for each), nor to the engine's cursor events "
        "(see the instruction counts)."
    )
    comparisons = results["isolation"]["summary"]["comparisons"]
    connect = comparisons["async_connect"]["added_ms_per_test"]["median"]
    isolate = comparisons["async"]["added_ms_per_test"]["median"]
    shared = comparisons["async_session_loop"]["added_ms_per_test"]["median"]
    notes.append(
        "With an event loop per test (pytest-asyncio's default), `sqlaperf_async_session` "
        "connects once per test, as the plain async variant does (an asyncpg connection "
        "belongs to the loop that opened it): that connection costs "
        f"{connect:.1f} ms per test over a pooled connection on the session's loop, against "
        f"{isolate:.1f} ms for the isolation itself. On a loop that serves several tests, the "
        "fixture takes its connections from a pool of that loop's: on the session's loop it "
        f"adds {shared:.1f} ms per test to a plain pooled connection."
    )
    notes += _listener_notes(results)
    for again in results.get("reruns", []):
        notes.append(
            f"Rerun on {again['date']} ({', '.join(again['sections'])}; source digest "
            f"{again['source_digest']}, load average {again['load_average']['start'][0]} at "
            f"its start): those tables replace the full run's; every other figure is from the "
            "full run. Timed figures of two runs are not comparable with each other: the "
            "machine's speed changes from day to day."
        )
    digests = results["source_digest"]
    if digests["measured"] != digests["tree_at_end"]:
        notes.append(
            "The plugin's source in the working tree changed while the benchmarks ran; every run "
            f"used the copy taken at the start (digest {digests['measured']})."
        )
    for row in report.verdicts(results):
        if not row["met"]:
            notes.append(
                f"MISSED: {row['measure']}: {report.format_value(row)} against {row['target']}."
            )
    return notes


def _listener_notes(results: dict[str, Any]) -> list[str]:
    """The C listener against the Python one, from the instruction counts of this run."""
    notes = []
    counted = results.get("instructions", {})
    if report.measured(counted) and "recorder_python" in counted["variants"]:
        per_loop = []
        for loop, variants in counted["summary"]["per_statement"].items():
            c, python = variants["recorder"]["added"], variants["recorder_python"]["added"]
            per_loop.append(
                f"{loop}: {c:+,.0f} instructions per statement in C, {python:+,.0f} in Python"
            )
        notes.append(
            "The statement listener in C (`_speedups.c`, the default where a C compiler built "
            "it) against the same listener in Python (`SQLAPERF_PURE_PYTHON=1`), mean over "
            f"the hash seeds {', '.join(counted.get('seeds', ['0']))}: "
            + "; ".join(per_loop)
            + ". The ORM loop's figures swing by tens of thousands of instructions with memory "
            "layout (hash seed, code size): SQLAlchemy's attribute reads miss the interpreter's "
            "type attribute cache more or less often depending on which entries collide; the "
            "counts average several seeds for that reason."
        )
    workload = results.get("workload_instructions", {})
    if report.measured(workload):
        overheads = workload["summary"]["overhead_percent"]["ours"]
        per_driver = [
            f"{driver}: {figures['n_plus_one']:+.1f} % in C, "
            f"{figures['n_plus_one_python']:+.1f} % in Python"
            for driver, figures in overheads.items()
            if "n_plus_one_python" in figures
        ]
        if per_driver:
            notes.append(
                "Capture overhead with N+1 detection, instructions per workload test, mean over "
                "the seeds: " + "; ".join(per_driver) + "."
            )
    return notes


def run(
    output: Path,
    sizes: Sizes,
    quick: bool,
    *,
    with_competitors: bool = True,
    with_pytest_postgresql: bool = True,
) -> dict[str, Any]:
    """Run everything in a temporary directory; return the results (also written to ``output``).

    ``with_competitors`` and ``with_pytest_postgresql`` false skip the benchmarks that need
    virtualenvs made from PyPI (``--no-competitors``, ``--no-pytest-postgresql``).
    """
    started = time.monotonic()
    results: dict[str, Any] = {"quick": quick, "sizes": asdict(sizes)}
    venvs = venv_cache()
    load_start = machine.load_average()
    with (
        tempfile.TemporaryDirectory(prefix="sqlaperf-bench-") as temporary,
        source_snapshot(Path(temporary) / "source") as snapshot_digest,
    ):
        workdir = Path(temporary)
        # A private cache home: the cold runs never empty, and no run fills, the user's cache.
        warm_cache_home = workdir / "warm-cache"
        results.update(_startup(workdir, warm_cache_home, sizes, with_pytest_postgresql))
        results["testcontainers_startup"] = testcontainers_startup()
        clusters = warm_cache_home / "pytest-sqlaperf" / "clusters"
        with bench_server(clusters) as server:
            results["machine"] = machine.describe(server.version, server.admin_url)
            _progress("per-test isolation")
            results["isolation"] = isolation.measure(
                workdir,
                server.admin_url,
                sizes.isolation_tests,
                sizes.isolation_rounds,
                sizes.warmup,
            )
            project = _workload(workdir, sizes)
            environment = {
                "BENCH_DATABASE_URL": server.url,
                "BENCH_ASYNC_DATABASE_URL": server.async_url,
            }
            _progress("capture overhead")
            results["capture_overhead"] = overhead.measure_capture(
                project, environment, sizes.capture_tests, sizes.capture_rounds, sizes.warmup
            )
            results["explain_cost"] = results["capture_overhead"].pop("explain")
            if with_competitors:
                _progress(f"other plugins on the same workload (virtualenvs in {venvs})")
                results["competitors"] = competitors.measure(
                    workdir / "competitors",
                    environment,
                    sizes.competitor_tests,
                    sizes.competitor_rounds,
                    venvs,
                    warmup=sizes.warmup,
                )
            else:
                results["competitors"] = {"skipped": "--no-competitors"}
            results["statement_cost"] = _statement_cost(project, environment, sizes)
            results["capture_profile"] = _profile(project, environment)
            _progress(f"memory over {sizes.memory_tests} tests")
            results["memory"] = memory.measure(workdir, environment, sizes.memory_tests)
            results["instructions"] = _instructions(workdir, server.url, sizes)
            _progress("instructions per workload test (callgrind)")
            results["workload_instructions"] = _workload_instructions(
                workdir, environment, sizes, venvs if with_competitors else None
            )
    results["load_average"] = {"start": load_start, "end": machine.load_average()}
    results["source_digest"] = {"measured": snapshot_digest, "tree_at_end": machine.source_digest()}
    results["duration_s"] = time.monotonic() - started
    results["targets"] = report.TARGETS
    results["verdicts"] = report.verdicts(results)
    results["notes"] = _notes(results)
    output.mkdir(parents=True, exist_ok=True)
    report.write_json(output / "benchmarks.json", results)
    report.write_markdown(output / "benchmarks.md", results)
    return results


def _startup(
    workdir: Path, warm_cache_home: Path, sizes: Sizes, with_pytest_postgresql: bool
) -> dict[str, Any]:
    """Our start-up and pytest-postgresql's, side by side: their two entries of the results."""
    _progress("start-up (cold and warm)")
    found = {"startup": startup.measure(workdir, warm_cache_home, sizes.startup_samples)}
    if with_pytest_postgresql:
        _progress("start-up of pytest-postgresql")
        found["pytest_postgresql_startup"] = pgstartup.measure(
            workdir, sizes.pg_startup_samples, pgstartup.venv_directory(venv_cache())
        )
    else:
        found["pytest_postgresql_startup"] = {"skipped": "--no-pytest-postgresql"}
    return found


def _statement_cost(project: Path, environment: dict[str, str], sizes: Sizes) -> dict[str, Any]:
    _progress("cost per statement")
    return overhead.measure_statement_cost(
        project, environment, sizes.cost_statements, sizes.cost_pairs, sizes.cost_in_process_rounds
    )


def _profile(project: Path, environment: dict[str, str]) -> dict[str, Any]:
    _progress("profile of the capture path")
    return profile.measure(project, environment)


def _instructions(workdir: Path, url: str, sizes: Sizes) -> dict[str, Any]:
    _progress("instructions per statement (callgrind)")
    return instructions.measure(
        workdir,
        url,
        sizes.instruction_n1,
        sizes.instruction_n2,
        repeat=sizes.instruction_repeat,
        seeds=sizes.instruction_seeds,
    )


def _workload(workdir: Path, sizes: Sizes) -> Path:
    return write_project(
        workdir / "workload",
        workload_project(sizes.capture_tests, sizes.cost_statements, sizes.cost_in_process_rounds),
    )


def rerun(
    output: Path,
    sections: list[str],
    sizes: Sizes,
    quick: bool,
    *,
    with_pytest_postgresql: bool = True,
) -> dict[str, Any]:
    """Measure ``sections`` again and put them into the results in ``output`` (of a run as
    quick).

    Each section keeps its comparisons within one run: start-up is measured beside
    pytest-postgresql's, the cost per statement and the instruction counts with and without
    the plugin, as in a full run. The rerun's date, source and load are kept under ``reruns``;
    the Markdown says which tables come from it.
    """
    unknown = [section for section in sections if section not in report.RERUNNABLE]
    if unknown or not sections:
        raise BenchError(
            f"--rerun {', '.join(unknown) or '(nothing)'}: choose among "
            + ", ".join(report.RERUNNABLE)
        )
    path = output / "benchmarks.json"
    try:
        results: dict[str, Any] = json.loads(path.read_text())
    except (OSError, ValueError) as error:
        raise BenchError(
            f"--rerun needs the results of a run in {path} ({error}); run python -m bench"
        ) from None
    if bool(results.get("quick")) != quick:
        held, asked = ("a --quick", "a full") if quick is False else ("a full", "a --quick")
        raise BenchError(f"{path} holds {held} run: {asked} rerun cannot go into it")
    started = time.monotonic()
    load_start = machine.load_average()
    measured: list[str] = []  # the sections this rerun measured
    replaced: list[str] = []  # and those it left skipped, which it replaces too
    with (
        tempfile.TemporaryDirectory(prefix="sqlaperf-bench-") as temporary,
        source_snapshot(Path(temporary) / "source") as snapshot_digest,
    ):
        workdir = Path(temporary)
        if "startup" in sections:
            # Both entries are replaced, so that start-up is never compared with a
            # pytest-postgresql figure of another run (it is marked skipped instead).
            found = _startup(workdir, workdir / "warm-cache", sizes, with_pytest_postgresql)
            results.update(found)
            replaced += found
            measured += [name for name, figures in found.items() if "skipped" not in figures]
        if {"statement_cost", "capture_profile", "instructions"} & set(sections):
            with bench_server(workdir / "clusters") as server:
                environment = {
                    "BENCH_DATABASE_URL": server.url,
                    "BENCH_ASYNC_DATABASE_URL": server.async_url,
                }
                if "statement_cost" in sections or "capture_profile" in sections:
                    project = _workload(workdir, sizes)
                if "statement_cost" in sections:
                    results["statement_cost"] = _statement_cost(project, environment, sizes)
                    measured.append("statement_cost")
                    replaced.append("statement_cost")
                if "capture_profile" in sections:
                    results["capture_profile"] = _profile(project, environment)
                    measured.append("capture_profile")
                    replaced.append("capture_profile")
                if "instructions" in sections:
                    results["instructions"] = _instructions(workdir, server.url, sizes)
                    measured.append("instructions")
                    replaced.append("instructions")
    # An earlier rerun no longer holds what this one replaced.
    earlier = [
        {**again, "sections": [name for name in again["sections"] if name not in replaced]}
        for again in results.get("reruns", [])
    ]
    results["reruns"] = [again for again in earlier if again["sections"]]
    results["reruns"].append(
        {
            "sections": measured,
            "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
            "source_digest": snapshot_digest,
            "load_average": {"start": load_start, "end": machine.load_average()},
            "duration_s": time.monotonic() - started,
        }
    )
    results["verdicts"] = report.verdicts(results)
    results["notes"] = _notes(results)
    report.write_json(output / "benchmarks.json", results)
    report.write_markdown(output / "benchmarks.md", results)
    return results


def _workload_instructions(
    workdir: Path, environment: dict[str, str], sizes: Sizes, venvs: Path | None
) -> dict[str, Any]:
    """The capture-overhead workload under callgrind: our variants and (``venvs``) the tools.
    The quick size counts the sync suite without the plugin and with N+1 detection only."""
    full = sizes.workload_instruction_full
    ours = {
        variant: (plugin, args)
        for variant, (_, plugin, args) in overhead.VARIANTS.items()
        if full or variant in ("without", "n_plus_one")
    }
    if full:  # the same with the Python listener (SQLAPERF_PURE_PYTHON=1): what C saves
        ours["n_plus_one_python"] = (True, ("-p", "bench_pure_python", *ours["n_plus_one"][1]))
    tools = {}
    if venvs is not None and full:
        for tool, spec in competitors.TOOLS.items():
            tools[tool] = instructions.ToolRuns(
                python=competitors.ensure_venv(tool, venvs),
                plugin=spec.plugin,
                args=spec.args,
                files=competitors.project_files(tool, sizes.workload_instruction_tests),
                asynchronous=spec.asynchronous,
            )
    return instructions.measure_workload(
        workdir / "workload-instructions",
        environment,
        sizes.workload_instruction_tests,
        ours,
        tools,
        drivers=("sync", "async") if full else ("sync",),
        seeds=sizes.workload_instruction_seeds,
        seeded_variants=("without", "capture_only", "n_plus_one", "n_plus_one_python"),
    )


def _progress(what: str) -> None:
    print(f"bench: {what} ...", file=sys.stderr, flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument(
        "--quick", action="store_true", help="Tiny sizes and few repetitions (a smoke test)"
    )
    parser.add_argument(
        "--output",
        type=Path,
        default=Path("docs"),
        help="Directory for benchmarks.md and benchmarks.json (default: docs)",
    )
    parser.add_argument(
        "--no-competitors",
        action="store_true",
        help="Skip the other plugins' capture overhead (their virtualenvs need PyPI)",
    )
    parser.add_argument(
        "--no-pytest-postgresql",
        action="store_true",
        help="Skip pytest-postgresql's start-up (its virtualenv needs PyPI)",
    )
    parser.add_argument(
        "--rerun",
        action="append",
        choices=report.RERUNNABLE,
        help="Measure this section again (side by side with its comparisons) and put it into "
        "the results in --output, which say so; repeat it for several sections",
    )
    options = parser.parse_args(argv)
    sizes = QUICK if options.quick else FULL
    try:
        if options.rerun is not None:
            results = rerun(
                options.output,
                options.rerun,
                sizes,
                options.quick,
                with_pytest_postgresql=not options.no_pytest_postgresql,
            )
        else:
            results = run(
                options.output,
                sizes,
                options.quick,
                with_competitors=not options.no_competitors,
                with_pytest_postgresql=not options.no_pytest_postgresql,
            )
    except BenchError as error:
        print(f"bench: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(
            "bench: interrupted; every server and subprocess it started is stopped", file=sys.stderr
        )
        return 130
    for row in report.verdicts(results):
        verdict = "met" if row["met"] else "MISSED"
        print(f"{row['measure']}: {report.format_value(row)} (target {row['target']}, {verdict})")
    print(f"wrote {options.output / 'benchmarks.md'} and {options.output / 'benchmarks.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
