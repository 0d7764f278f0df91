"""Running a generated pytest project in a subprocess and reading what its conftest recorded."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pytest_sqlaperf.postgres.rundir import DIR_PREFIX, candidate_parents, kill_postmaster

RUN_TIMEOUT = 300.0
# How long an interrupted pytest gets to tear down (and stop the server it started).
INTERRUPT_GRACE = 20.0


class BenchError(RuntimeError):
    """A benchmark run failed; the message carries the end of its output."""


@dataclass(frozen=True)
class PytestRun:
    """One pytest subprocess: its wall time and the stamps and figures its conftest wrote."""

    wall: float
    results: dict[str, Any]

    @property
    def session(self) -> float:
        """Seconds from pytest_sessionstart to pytest_sessionfinish, inside the subprocess."""
        return float(self.results["session_finish"] - self.results["session_start"])

    @property
    def window(self) -> float:
        """Seconds from the end of ``test_warmup`` to the start of ``test_sentinel``."""
        return float(self.results["window_end"] - self.results["window_start"])

    @property
    def session_cpu(self) -> float:
        """CPU seconds the pytest process used between session start and finish."""
        return float(self.results["session_finish_cpu"] - self.results["session_start_cpu"])

    @property
    def window_cpu(self) -> float:
        """CPU seconds the pytest process used in the window."""
        return float(self.results["window_end_cpu"] - self.results["window_start_cpu"])


def write_project(directory: Path, files: Mapping[str, str]) -> Path:
    """Write a generated project's files (relative path -> text) into ``directory``."""
    directory.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        path = directory / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return directory


# Set by source_snapshot(): the directory holding the copy of the plugin the subprocesses import.
_SNAPSHOT_VARIABLE = "BENCH_SOURCE_SNAPSHOT"


@contextmanager
def source_snapshot(directory: Path) -> Iterator[str]:
    """Copy the plugin's package into ``directory``; inside the block, subprocesses import it.

    The working tree may change while the benchmarks run (others work on it); every subprocess
    of one run then still runs the same code. Yields the copy's digest.
    """
    import pytest_sqlaperf

    package = Path(pytest_sqlaperf.__file__).resolve().parent
    shutil.copytree(package, directory / package.name, ignore=shutil.ignore_patterns("__pycache__"))
    saved = os.environ.get(_SNAPSHOT_VARIABLE)
    os.environ[_SNAPSHOT_VARIABLE] = str(directory)
    try:
        yield package_digest(directory / package.name)
    finally:
        if saved is None:
            del os.environ[_SNAPSHOT_VARIABLE]
        else:
            os.environ[_SNAPSHOT_VARIABLE] = saved


def package_digest(package: Path) -> str:
    """A digest of a package's Python files (names and contents)."""
    digest = hashlib.sha256()
    for path in sorted(package.rglob("*.py")):
        digest.update(path.relative_to(package).as_posix().encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:16]


def child_environment(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """Our environment without anything that would change how the inner pytest runs.

    Inside source_snapshot(), PYTHONPATH puts the snapshot ahead of the editable install.
    """
    environment = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("PYTEST_", "SQLAPERF_", "BENCH_")) and key != "PYTHONPATH"
    }
    snapshot = os.environ.get(_SNAPSHOT_VARIABLE)
    if snapshot is not None:
        environment["PYTHONPATH"] = snapshot
    environment.update(extra or {})
    return environment


def run_pytest(
    project: Path,
    args: Sequence[str] = (),
    *,
    environment: Mapping[str, str] | None = None,
    plugin: bool = True,
    profile_to: Path | None = None,
    python: str | None = None,
    runner: Sequence[str] = ("-m", "pytest"),
) -> PytestRun:
    """Run ``python -m pytest -q`` in ``project``; raise BenchError unless every test passed.

    With ``profile_to``, pytest runs under cProfile, which writes its statistics there. With
    ``python``, that interpreter (another virtualenv's) runs it instead of ours. ``runner``
    replaces ``-m pytest``: a script that runs pytest with the arguments it is given.
    """
    results_file = project / f".results-{uuid.uuid4().hex}.json"
    command = [python or sys.executable]
    if profile_to is not None:
        command += ["-m", "cProfile", "-o", str(profile_to)]
    command += [*runner, "-q", "-p", "no:cacheprovider"]
    if not plugin:
        command += ["-p", "no:sqlaperf"]
    command += list(args)
    env = child_environment({**(environment or {}), "BENCH_RESULTS_FILE": str(results_file)})
    started = time.monotonic()
    process = subprocess.Popen(
        command,
        cwd=project,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        output, _ = process.communicate(timeout=RUN_TIMEOUT)
    except BaseException:
        _interrupt(process)
        raise
    wall = time.monotonic() - started
    return read_run(command, project, process.returncode, output, results_file, wall)


def count_statements(
    project: Path,
    module: str,
    *,
    environment: Mapping[str, str] | None = None,
    python: str | None = None,
    plugin_args: Sequence[str] = ("-p", "no:sqlaperf"),
) -> int:
    """The statements a workload module runs, counted by its conftest's engine listener in a
    run of its own (the measured runs have no such listener: see WORKLOAD_CONFTEST)."""
    run = run_pytest(
        project,
        [*plugin_args, module],
        environment={**(environment or {}), "BENCH_COUNT_STATEMENTS": "1"},
        python=python,
    )
    statements = run.results.get("statements")
    if not statements:
        raise BenchError(f"the counting run of {module} in {project} counted no statement")
    return int(statements)


def read_run(
    command: Sequence[str],
    project: Path,
    returncode: int,
    output: bytes,
    results_file: Path,
    wall: float,
) -> PytestRun:
    """The run's figures from its results file; BenchError with its output's end if it failed."""
    text = output.decode(errors="replace")
    if returncode != 0:
        tail = "\n".join(text.strip().splitlines()[-40:])
        raise BenchError(f"{' '.join(command)} in {project} exited with {returncode}:\n{tail}")
    try:
        results = json.loads(results_file.read_text())
    except (OSError, ValueError) as error:
        raise BenchError(f"{' '.join(command)} in {project} wrote no results: {error}") from None
    finally:
        results_file.unlink(missing_ok=True)
    return PytestRun(wall=wall, results=results)


def stop(process: subprocess.Popen[bytes]) -> None:
    """Ctrl-C first, so the pytest run stops the server it started; then kill it."""
    if process.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            process.send_signal(signal.SIGINT)
        try:
            process.communicate(timeout=INTERRUPT_GRACE)
        except subprocess.TimeoutExpired:
            process.kill()
            process.communicate()


def _interrupt(process: subprocess.Popen[bytes]) -> None:
    """Stop a pytest we started, and any embedded server it left."""
    stop(process)
    remove_servers_of(process.pid)


def remove_servers_of(pid: int) -> None:
    """Stop and remove the embedded servers whose directory names ``pid`` as its owner."""
    for parent in candidate_parents():
        for directory in parent.glob(f"{DIR_PREFIX}*"):
            try:
                marker = json.loads((directory / "owner.json").read_text())
            except (OSError, ValueError):
                continue
            if isinstance(marker, dict) and marker.get("pid") == pid:
                kill_postmaster(directory / "data")
                shutil.rmtree(directory, ignore_errors=True)


def summary(samples: Sequence[float]) -> dict[str, float]:
    """Median, min and max of some samples."""
    return {
        "median": statistics.median(samples),
        "min": min(samples),
        "max": max(samples),
    }
