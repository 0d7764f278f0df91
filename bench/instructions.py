"""Cost per statement in client instructions, counted by callgrind: deterministic, unlike time."""

from __future__ import annotations

import json
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, NamedTuple

from bench.harness import BenchError, child_environment, write_project
from bench.projects import MODELS

# Loops of each kind the script runs before the counted ones: SQLAlchemy's compiled cache, the
# identity map and the EXPLAIN cache (8 values per shape, 100 distinct ids) are warm after it.
WARMUP = 100
TIMEOUT = 900.0
# callgrind dumps its counters before each call of this C function (os.getppid), which the
# script calls between its loops; each dump holds the instructions since the previous one.
MARKER_SYMBOL = "os_getppid"
LOOPS = ("core", "orm")
# The dumps the script makes before exiting: after the warm-up, then after each counted loop.
DUMPS = 5

VARIANTS: dict[str, str] = {
    "none": "without the plugin",
    "listener": (
        "a no-op `before_cursor_execute` listener on `Engine` (`retval=True`): what SQLAlchemy "
        "charges any tool built on engine events before the tool does anything"
    ),
    "recorder": (
        "the plugin's recorder recording (`Recorder().install()`, a `QueryLog` active): "
        "fingerprint, call site, ORM load origin of each statement, by its C listener"
    ),
    "recorder_python": (
        "the same with the Python listener (`SQLAPERF_PURE_PYTHON=1`), the C one's reference"
    ),
    "explain": (
        "the recorder and the plan checks' step after each statement, as in one test of a run "
        "with the default checks (`planning.StatementPlans`, begun before the warm-up): each "
        "new shape and values is EXPLAINed and taken in, and the step then tells the recorder "
        "that they bring nothing new, so the counted loops, which repeat the warm-up's "
        "statements, cost the recorder's check of that and no call"
    ),
}
LOOP_LABELS = {
    "core": "Core `connection.execute(text('SELECT 1')).scalar_one()`",
    "orm": "ORM `session.execute(select(User).where(User.id == x)).scalar_one()`",
}

METHOD = (
    "A script runs loops of statements on the benchmark's server (psycopg, one connection, "
    "one transaction) under `valgrind --tool=callgrind`, which counts the instructions the "
    "Python process executes (the client's: SQLAlchemy, psycopg, libpq, the plugin; not the "
    "server's). After {warmup} statements of each loop (not counted), it runs the Core loop N1 and "
    "N2 times, then the ORM loop N1 and N2 times (100 distinct ids), and callgrind dumps its "
    "counters between the loops (`--dump-before={marker}`, the script calls `os.getppid()` "
    "there). Instructions per statement = (count for N2 - count for N1) / (N2 - N1): start-up, "
    "imports and set-up cancel out. Each variant runs in a process of its own, once per "
    "`PYTHONHASHSEED` ({seeds}). The count does not depend on the machine's load: the same "
    "interpreter and libraries on the same inputs execute the same instructions, so small "
    "differences that timing on this shared 2-core machine cannot resolve show here. But it "
    "depends on where the interpreter's data land: which of SQLAlchemy's attribute reads "
    "collide in CPython's 4,096-entry type-attribute cache and then walk its deep class "
    "hierarchies. Any change to the process (a hash seed, a module imported) draws another "
    "layout, which moves the ORM loop by up to tens of thousands of instructions with or "
    "without the plugin; so a variant's added count is the mean, over the seeds, of its "
    "count less the count without the plugin with the same seed, with the range beside it. "
    "It does not weigh instructions (a cache miss costs more than an add) nor see waiting on "
    "the server; the timed cost per statement above does."
)

SCRIPT = '''\
"""Counted loops for callgrind: usage: script.py VARIANT N1 N2 WARMUP (prints its checks)."""

import contextlib
import json
import os
import sys

from sqlalchemy import create_engine, event, select, text
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from models import User

variant = sys.argv[1]
n1, n2, warmup = (int(value) for value in sys.argv[2:5])
checks = {}


def _no_op(conn, cursor, statement, parameters, context, executemany):
    return statement, parameters


recorder = runner = None
recording = contextlib.nullcontext()
if variant == "listener":
    event.listen(Engine, "before_cursor_execute", _no_op, retval=True)
elif variant in ("recorder", "recorder_python", "explain"):
    from pytest_sqlaperf.capture import listeners
    from pytest_sqlaperf.capture.listeners import Recorder
    from pytest_sqlaperf.capture.querylog import QueryLog

    listeners.use_extension(variant != "recorder_python")

    recorder = Recorder()
    recorder.install()
    recording = recorder.recording(QueryLog("bench"))
    if variant == "explain":
        from pytest_sqlaperf.explain import ExplainRunner, ExplainSettings
        from pytest_sqlaperf.planning import StatementPlans

        runner = ExplainRunner(ExplainSettings())
        plans = StatementPlans(runner)
        recorder.after_statement = plans
        plans.begin(frozenset(), {})  # one test: PlanChecks.begin
        recorder.forget_quiet()
elif variant != "none":
    raise SystemExit(f"unknown variant {variant!r}")

engine = create_engine(os.environ["BENCH_DATABASE_URL"])
session = Session(engine)
users = [User(name=f"user {k}", email=f"user{k}@example.com") for k in range(100)]
session.add_all(users)
session.flush()
ids = [user.id for user in users]
connection = session.connection()


def core(n):
    for _ in range(n):
        connection.execute(text("SELECT 1")).scalar_one()


def orm(n):
    for k in range(n):
        session.execute(select(User).where(User.id == ids[k % len(ids)])).scalar_one()


mark = os.getppid  # callgrind dumps its counters before each call
with recording as log:
    core(warmup)
    orm(warmup)
    mark()
    core(n1)
    mark()
    core(n2)
    mark()
    orm(n1)
    mark()
    orm(n2)
    mark()
    if log is not None:
        checks["recorded"] = len(log.statements)
        checks["accelerated"] = listeners.accelerated()
if runner is not None:
    checks["explains"] = len(runner.durations)
    checks["explain_skips"] = dict(runner.skips)
    checks["plans_taken"] = len(plans.end().plans)
if variant == "listener":
    calls = []
    event.listen(Engine, "before_cursor_execute", lambda *args: calls.append(1))
    connection.execute(text("SELECT 1"))
    checks["engine_listeners_called"] = bool(calls)
session.rollback()
session.close()
engine.dispose()
print(json.dumps(checks))
'''


def available() -> str | None:
    """Why the benchmark cannot run here, or None when it can."""
    if shutil.which("valgrind") is None:
        return "valgrind is not on PATH"
    return None


def _totals(path: Path) -> int:
    for line in path.read_text(errors="replace").splitlines():
        if line.startswith(("totals:", "summary:")):
            return int(line.split()[1])
    raise BenchError(f"{path} has no totals line")


def _callgrind(
    arguments: Sequence[str],
    *,
    cwd: Path,
    environment: dict[str, str],
    dumps: int,
    label: str,
    timeout: float,
) -> tuple[list[int], int, str]:
    """Run a command under callgrind, dumping at each os.getppid() call: the instructions in
    each of the ``dumps`` numbered dumps (since the previous one), in the whole run, and the
    command's stdout."""
    with tempfile.TemporaryDirectory(prefix="callgrind-") as temporary:
        output = Path(temporary) / "callgrind.out"
        command = [
            "valgrind",
            "--tool=callgrind",
            f"--dump-before={MARKER_SYMBOL}",
            "--dump-line=no",
            f"--callgrind-out-file={output}",
            *arguments,
        ]
        try:
            completed = subprocess.run(
                command,
                cwd=cwd,
                env=environment,
                stdin=subprocess.DEVNULL,
                capture_output=True,
                text=True,
                timeout=timeout,
                check=False,
            )
        except subprocess.TimeoutExpired:
            raise BenchError(f"callgrind of {label} took over {timeout:.0f} s") from None
        collected = re.search(r"Collected : (\d+)", completed.stderr)
        if completed.returncode != 0 or collected is None:
            tail = "\n".join((completed.stdout + completed.stderr).strip().splitlines()[-30:])
            raise BenchError(f"{' '.join(command)} exited with {completed.returncode}:\n{tail}")
        found = sorted(
            (int(path.suffix[1:]), path)
            for path in Path(temporary).glob("callgrind.out.*")
            if path.suffix[1:].isdigit()
        )
        if [number for number, _ in found] != list(range(1, dumps + 1)):
            raise BenchError(
                f"callgrind made the dumps {[number for number, _ in found]} for {label}, not "
                f"1 .. {dumps}: does {arguments[0]} still have the symbol {MARKER_SYMBOL}, or "
                "does something else call os.getppid()?"
            )
        return [_totals(path) for _, path in found], int(collected.group(1)), completed.stdout


def _run(script: Path, url: str, variant: str, n1: int, n2: int, seed: str) -> dict[str, Any]:
    """Run the script for one variant under callgrind; its counted parts and its checks."""
    parts, collected, stdout = _callgrind(
        [sys.executable, str(script), variant, str(n1), str(n2), str(WARMUP)],
        cwd=script.parent,
        environment=child_environment({"BENCH_DATABASE_URL": url, "PYTHONHASHSEED": seed}),
        dumps=DUMPS,
        label=f"the {variant} loops (seed {seed})",
        timeout=TIMEOUT,
    )
    checks: dict[str, Any] = {}
    lines = stdout.strip().splitlines()
    if lines:
        checks = json.loads(lines[-1])
    # parts[0] is start-up and warm-up; then core N1, core N2, orm N1, orm N2.
    per_statement = {
        loop: (parts[2 + 2 * index] - parts[1 + 2 * index]) / (n2 - n1)
        for index, loop in enumerate(LOOPS)
    }
    return {
        "parts": parts,
        "collected": collected,
        "per_statement": per_statement,
        "checks": checks,
    }


def _check(variant: str, run: dict[str, Any], n1: int, n2: int) -> None:
    checks = run["checks"]
    if variant in ("recorder", "recorder_python", "explain") and checks.get("recorded", 0) < 2 * (
        n1 + n2
    ):
        raise BenchError(f"the recorder recorded {checks.get('recorded')} statements ({variant})")
    if variant in ("recorder", "explain") and checks.get("accelerated") is not True:
        raise BenchError(f"the {variant} variant recorded without the C listener (not built?)")
    if variant == "recorder_python" and checks.get("accelerated") is not False:
        raise BenchError("the recorder_python variant recorded with the C listener")
    if variant == "explain" and not (checks.get("explains") and checks.get("plans_taken")):
        raise BenchError(f"the EXPLAIN step ran no EXPLAIN or took in no plan: {checks}")
    if variant == "listener" and not checks.get("engine_listeners_called"):
        raise BenchError("the engine listeners were not called on the script's connection")


def measure(
    workdir: Path, url: str, n1: int, n2: int, *, repeat: bool, seeds: Sequence[str] = ("0",)
) -> dict[str, Any]:
    """Instructions per statement of each loop in each variant, once per hash seed in
    ``seeds``; ``{"skipped": why}`` if none.

    The runs go two at a time (the counts do not depend on the load); with ``repeat``, the
    variant without the plugin runs twice with the first seed, to show how exactly the count
    repeats.
    """
    reason = available()
    if reason is not None:
        return {"skipped": reason}
    if not seeds:
        raise BenchError("the instruction counts need at least one hash seed")
    directory = write_project(workdir / "instructions", {"models.py": MODELS, "loops.py": SCRIPT})
    script = directory / "loops.py"
    jobs = [(variant, seed) for seed in seeds for variant in VARIANTS]
    if repeat:
        jobs.append(("none", seeds[0]))
    with ThreadPoolExecutor(max_workers=2) as pool:
        finished = list(pool.map(lambda job: _run(script, url, job[0], n1, n2, job[1]), jobs))
    runs: dict[str, dict[str, Any]] = {variant: {} for variant in VARIANTS}
    for (variant, seed), run in zip(jobs[: len(VARIANTS) * len(seeds)], finished, strict=False):
        _check(variant, run, n1, n2)
        runs[variant][seed] = run
    repeated = finished[-1] if repeat else None
    summary: dict[str, dict[str, dict[str, Any]]] = {}
    for loop in LOOPS:
        summary[loop] = {}
        for variant, by_seed in runs.items():
            counts = [by_seed[seed]["per_statement"][loop] for seed in seeds]
            added = [
                by_seed[seed]["per_statement"][loop] - runs["none"][seed]["per_statement"][loop]
                for seed in seeds
            ]
            base = statistics.fmean(runs["none"][seed]["per_statement"][loop] for seed in seeds)
            summary[loop][variant] = {
                "instructions": statistics.fmean(counts),
                "per_seed": counts,
                "added": statistics.fmean(added),
                "added_range": [min(added), max(added)],
                "added_percent": statistics.fmean(added) / base * 100,
            }
    repeat_difference = (
        {
            loop: repeated["per_statement"][loop] - runs["none"][seeds[0]]["per_statement"][loop]
            for loop in LOOPS
        }
        if repeated is not None
        else None
    )
    return {
        "method": METHOD.format(warmup=WARMUP, marker=MARKER_SYMBOL, seeds=", ".join(seeds)),
        "n1": n1,
        "n2": n2,
        "warmup": WARMUP,
        "seeds": list(seeds),
        "variants": VARIANTS,
        "loops": LOOP_LABELS,
        "samples": {"runs": runs, "repeat_of_none": repeated},
        "summary": {"per_statement": summary, "repeat_difference": repeat_difference},
    }


# --- the capture-overhead workload, counted -----------------------------------------------------

WORKLOAD_METHOD = (
    "The capture-overhead workload (N tests of the same ORM code, 24 statements each, sync "
    "psycopg and async asyncpg) runs under `valgrind --tool=callgrind` once per variant: ours "
    "(without the plugin, recording only, + N+1 detection, + EXPLAIN) and each other tool "
    "without and with it, in its own virtualenv. The suite's conftest calls `os.getppid()` at "
    "the end of the warm-up test and at the start of the sentinel, where callgrind dumps its "
    "counters (`--dump-before={marker}`): the window holds the N measured tests only (no "
    "start-up, collection, session set-up or terminal summary). Just before the window opens, "
    "the conftest runs a full garbage collection (`gc.collect()`), in every variant: the "
    "collector's counters then start the window at zero. A full collection costs tens of "
    "millions of instructions (about half a million per test of the window) and comes about "
    "once in 200 tests of this suite, with or without the plugin (the collections per "
    "generation of the timed runs above); without that, whether one fell inside the window "
    "depended on how many objects start-up happened to leave counted. Instructions per test = the "
    "window's count / N; the overhead is a variant's count over the count without a plugin in "
    "the same virtualenv. The count does not depend on the machine's load, but it does depend "
    "on where the interpreter's data land, which any change to the process moves: which "
    "attribute lookups collide in CPython's 4,096-entry type-attribute cache, how long the "
    "probe chains of string-keyed dicts are, and whether a test's peak of live objects crosses "
    "the garbage collector's threshold (700), which adds a collection to every test at once "
    "(the plugin keeps no object per statement while a test runs, for that reason). "
    "Loading the plugin moves all three, so one run per variant is one draw of that layout: "
    "with identical code, PYTHONHASHSEED alone moves our overhead by points (the per-seed "
    "figures are in the table), while the Python bytecodes the plugin adds per test do not "
    "change with the seed (`python -m bench.bytecodes`). So our variants without the plugin, "
    "recording only and with N+1 detection run once per seed ({seeds}): their overhead is "
    "the mean of the per-seed overheads (each "
    "against the run without the plugin with the same seed), with the range beside it; the "
    "default checks and the other tools run with the first seed only. Timed runs draw a new "
    "layout every run (address-space randomisation, a random hash seed), which is part of "
    "why their ratios spread so widely."
)
WORKLOAD_TIMEOUT = 1800.0
# Numbered dumps of a workload run: start -> window start, then the window (the rest, to the
# exit, goes to the unnumbered file).
WORKLOAD_DUMPS = 2


def _run_workload(
    project: Path,
    args: Sequence[str],
    environment: dict[str, str],
    python: str,
    label: str,
    seed: str,
) -> tuple[int, dict[str, Any]]:
    """One pytest run of the workload under callgrind: the window's instructions, its results."""
    with tempfile.TemporaryDirectory(prefix="workload-results-") as temporary:
        results_file = Path(temporary) / "results.json"
        parts, _, _ = _callgrind(
            [python, "-m", "pytest", "-q", "-p", "no:cacheprovider", *args],
            cwd=project,
            environment={
                **environment,
                "BENCH_CALLGRIND_MARKS": "1",
                "BENCH_RESULTS_FILE": str(results_file),
                "PYTHONHASHSEED": seed,
            },
            dumps=WORKLOAD_DUMPS,
            label=f"the workload ({label}, PYTHONHASHSEED={seed})",
            timeout=WORKLOAD_TIMEOUT,
        )
        results: dict[str, Any] = json.loads(results_file.read_text())
    window = parts[1]
    return window, results


class ToolRuns(NamedTuple):
    """How to run the workload with and without another tool."""

    python: str  # its virtualenv's
    plugin: str  # its pytest11 name: ``-p no:<plugin>`` leaves it out
    args: tuple[str, ...]  # pytest arguments of the runs with it
    files: dict[str, str]  # the workload project with its conftest additions
    asynchronous: bool  # whether it records async code (else the sync suite only)


class _Job(NamedTuple):
    who: str  # "ours" or the tool
    variant: str
    driver: str
    project: Path
    args: list[str]
    python: str  # "" for ours (this interpreter)
    seed: str


def measure_workload(
    workdir: Path,
    environment: dict[str, str],
    tests: int,
    ours: dict[str, tuple[bool, tuple[str, ...]]],
    tools: dict[str, ToolRuns],
    drivers: Sequence[str] = ("sync", "async"),
    seeds: Sequence[str] = ("0",),
    seeded_variants: Sequence[str] = ("without", "capture_only", "n_plus_one"),
) -> dict[str, Any]:
    """Instructions per workload test, sync and async, for each variant of ours and each tool.

    ``ours``: variant -> (plugin loaded, pytest arguments of its runs). Our ``seeded_variants``
    run once per hash seed in ``seeds``, everything else with the first seed only; a variant's
    count is the mean over its seeds, its overhead the mean of the per-seed overheads (each
    over the run without the plugin with the same seed), with the range beside it.
    """
    reason = available()
    if reason is not None:
        return {"skipped": reason}
    from bench.projects import workload_project

    jobs: list[_Job] = []
    ours_project = write_project(workdir / "workload-ours", workload_project(tests, 10))
    for driver in drivers:
        module = f"test_{driver}_workload.py"
        for variant, (plugin, args) in ours.items():
            extra = [] if plugin else ["-p", "no:sqlaperf"]
            for seed in seeds if variant in seeded_variants else seeds[:1]:
                arguments = [*extra, module, *args]
                jobs.append(_Job("ours", variant, driver, ours_project, arguments, "", seed))
    for tool, spec in tools.items():
        project = write_project(workdir / f"workload-{tool}", spec.files)
        for driver in drivers if spec.asynchronous else [d for d in drivers if d == "sync"]:
            module = f"test_{driver}_workload.py"
            without = ["-p", f"no:{spec.plugin}", module]
            jobs.append(_Job(tool, "without", driver, project, without, spec.python, seeds[0]))
            jobs.append(
                _Job(tool, "with", driver, project, [module, *spec.args], spec.python, seeds[0])
            )

    def run(job: _Job) -> tuple[int, dict[str, Any]]:
        return _run_workload(
            job.project,
            job.args,
            environment,
            job.python or sys.executable,
            f"{job.who} {job.variant} {job.driver}",
            job.seed,
        )

    with ThreadPoolExecutor(max_workers=2) as pool:
        finished = list(pool.map(run, jobs))
    # who -> driver -> variant -> seed -> instructions per test
    by_seed: dict[str, dict[str, dict[str, dict[str, float]]]] = {}
    for job, (window, results) in zip(jobs, finished, strict=True):
        if job.who == "ours" and ours[job.variant][0] and not results.get("plugin_statements"):
            raise BenchError(f"the plugin recorded nothing in the {job.variant} {job.driver} run")
        if job.who != "ours" and job.variant == "with" and not results.get("tool_statements"):
            raise BenchError(f"{job.who} counted no statement in its {job.driver} run")
        by_who = by_seed.setdefault(job.who, {}).setdefault(job.driver, {})
        by_who.setdefault(job.variant, {})[job.seed] = window / tests
    per_test = {
        who: {
            driver: {variant: statistics.fmean(counts.values()) for variant, counts in v.items()}
            for driver, v in drivers_.items()
        }
        for who, drivers_ in by_seed.items()
    }
    summary: dict[str, dict[str, dict[str, float]]] = {}
    ranges: dict[str, dict[str, dict[str, list[float]]]] = {}
    for who, by_driver in by_seed.items():
        for driver, variants in by_driver.items():
            base = variants["without"]
            for variant, counts in variants.items():
                if variant == "without":
                    continue
                overheads = [(count / base[seed] - 1) * 100 for seed, count in counts.items()]
                summary.setdefault(who, {}).setdefault(driver, {})[variant] = statistics.fmean(
                    overheads
                )
                ranges.setdefault(who, {}).setdefault(driver, {})[variant] = [
                    min(overheads),
                    max(overheads),
                ]
    return {
        "method": WORKLOAD_METHOD.format(marker=MARKER_SYMBOL, seeds=", ".join(seeds)),
        "tests": tests,
        "seeds": list(seeds),
        "seeded_variants": list(seeded_variants),
        "per_test": per_test,
        "per_seed": by_seed,
        "summary": {"overhead_percent": summary, "overhead_range_percent": ranges},
    }
