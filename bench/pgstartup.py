"""pytest-postgresql's start-up: from pytest's session start to the first query of the first test.

The same measure as bench/startup.py, for the plugin most projects would otherwise use, so the two
can be compared. PostgreSQL refuses to run as root, and so does pytest-postgresql, which starts it
in pytest's own process: when we are root, its pytest runs as ``nobody`` (the account our embedded
servers use), from a virtualenv of Debian's Python and a project directory that account can reach.
"""

from __future__ import annotations

import contextlib
import importlib.metadata
import json
import os
import shutil
import stat
import subprocess
import tempfile
import time
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bench.harness import (
    RUN_TIMEOUT,
    BenchError,
    PytestRun,
    child_environment,
    read_run,
    stop,
    write_project,
)
from bench.projects import TIMING_CONFTEST
from bench.startup import summarise
from pytest_sqlaperf.errors import SqlaperfError
from pytest_sqlaperf.postgres.account import RunAs, binaries_for, resolve_run_as
from pytest_sqlaperf.postgres.binaries import PgBinaries, find_binaries
from pytest_sqlaperf.postgres.rundir import kill_postmaster

PYTEST_POSTGRESQL_VERSION = "10.0.0"
PSYCOPG_VERSION = "3.3.9"
# Debian's interpreter: the pyenv one lives under /root (mode 0700), which nobody cannot enter.
BASE_PYTHON = "/usr/bin/python3.11"
# The account pytest-postgresql's pytest runs as when we are root (PostgreSQL refuses root).
RUN_AS = "nobody"
VENV_MARKER = "bench-requirements.json"
# Where the virtualenv goes when the account cannot reach the bench's cache of virtualenvs.
FALLBACK_VENV_PARENT = Path("/var/tmp/sqlaperf-bench-venvs")
PIP_TIMEOUT = 900.0
# pytest-postgresql keeps nothing between sessions (see METHOD): every run is cold and warm.
KIND = "cold_and_warm"
# Unix-domain socket paths are limited to 107 bytes; the sockets go in the project directory.
_MAX_PARENT_LENGTH = 60

METHOD = (
    "A generated one-test project (the test requests pytest-postgresql "
    f"{PYTEST_POSTGRESQL_VERSION}'s `postgresql` fixture, a psycopg connection to a new database "
    "on the server `postgresql_proc` starts, and runs `SELECT 1`) runs in a subprocess, "
    "`python -m pytest -q -p no:cacheprovider`, as the unprivileged account `nobody` "
    "(PostgreSQL refuses root), from a virtualenv of Debian's Python 3.11, on the same "
    "PostgreSQL binaries as ours; the test records the `time.monotonic()` elapsed since "
    "`pytest_sessionstart`. pytest-postgresql keeps nothing between sessions: every session "
    "runs `pg_ctl initdb` (which syncs the new cluster to disk) into a new data directory under "
    "pytest's basetemp, kept in the project directory in the temporary directory (on disk unless "
    "that is a tmpfs, as by default; no fsync=off), starts the server "
    "with `pg_ctl start -w`, creates a template database and the test's database from it, and "
    "at the end stops the server and removes the data directory. So it has no cold or warm "
    "start: each run is both, and they are reported as one kind; one untimed run first fills "
    "the OS page cache. Wall is the whole subprocess."
)

STARTUP_TEST = """\
import time


def test_first_query(postgresql, bench_results):
    with postgresql.cursor() as cursor:
        cursor.execute("SELECT 1")
        assert cursor.fetchone() == (1,)
    bench_results["first_query"] = time.monotonic() - bench_results["session_start"]
"""

INI = """\
[pytest]
filterwarnings =
    error
postgresql_exec = {pg_ctl}
postgresql_host = 127.0.0.1
postgresql_unixsocketdir = {socket_dir}
"""


def pgstartup_project(pg_ctl: Path, socket_dir: Path) -> dict[str, str]:
    """One test that asks for pytest-postgresql's ``postgresql`` and runs ``SELECT 1``.

    The port is pytest-postgresql's default: a free one it picks at random.
    """
    return {
        "pytest.ini": INI.format(pg_ctl=pg_ctl, socket_dir=socket_dir),
        "conftest.py": TIMING_CONFTEST,
        "test_first_query.py": STARTUP_TEST,
    }


# --- the virtualenv --------------------------------------------------------------------------


def requirements() -> list[str]:
    """What the virtualenv holds: pytest-postgresql, psycopg and our pytest's version."""
    return [
        f"pytest=={importlib.metadata.version('pytest')}",
        f"pytest-postgresql=={PYTEST_POSTGRESQL_VERSION}",
        f"psycopg[binary]=={PSYCOPG_VERSION}",
    ]


def venv_directory(cache: Path) -> Path:
    """Where the virtualenv goes: ``cache/pytest-postgresql`` if the account pytest-postgresql
    runs as can reach ``cache``, else FALLBACK_VENV_PARENT's (a home directory is often closed
    to other accounts: root's is)."""
    cache.mkdir(parents=True, exist_ok=True)
    if _run_as().can_reach(cache):
        return cache / "pytest-postgresql"
    FALLBACK_VENV_PARENT.mkdir(parents=True, exist_ok=True)
    os.chmod(FALLBACK_VENV_PARENT, 0o755)
    return FALLBACK_VENV_PARENT / "pytest-postgresql"


def ensure_venv(directory: Path) -> str:
    """A virtualenv in ``directory`` with ``requirements()``, usable by ``nobody``; its python.

    Reused when its marker file names the same interpreter and requirements.
    """
    run_as = _run_as()
    directory = directory.absolute()
    python = directory / "bin" / "python"
    marker = directory / VENV_MARKER
    wanted = {"base_python": BASE_PYTHON, "requirements": requirements()}
    with contextlib.suppress(OSError, ValueError):
        if json.loads(marker.read_text()) == wanted and python.exists():
            return str(python)
    if directory.exists() and any(directory.iterdir()) and not (directory / "pyvenv.cfg").exists():
        raise BenchError(f"{directory} is not empty and not a virtualenv; not replacing it")
    directory.mkdir(parents=True, exist_ok=True)
    if not run_as.can_reach(directory):
        raise BenchError(
            f"the account {run_as.name!r} cannot reach {directory}; put the virtualenv where it "
            "can (under /tmp or /var/tmp)"
        )
    marker.unlink(missing_ok=True)
    _check([BASE_PYTHON, "-m", "venv", "--clear", str(directory)], "creating the virtualenv")
    _check(
        [
            str(python),
            "-m",
            "pip",
            "install",
            "--disable-pip-version-check",
            "--no-input",
            *requirements(),
        ],
        "installing pytest-postgresql",
    )
    _make_readable(directory)
    _check(
        [str(python), "-c", "import psycopg, pytest_postgresql"],
        f"importing pytest-postgresql as {run_as.name!r}",
        run_as,
    )
    marker.write_text(json.dumps(wanted))
    return str(python)


def _check(command: Sequence[str], what: str, run_as: RunAs | None = None) -> None:
    """Run a set-up command; raise BenchError with the end of its output if it fails."""
    try:
        completed = subprocess.run(
            command,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            timeout=PIP_TIMEOUT,
            check=False,
            cwd="/",
            env=_clean_environment(),
            **(run_as.popen_kwargs() if run_as is not None else {}),
        )
    except (OSError, subprocess.SubprocessError) as error:
        raise BenchError(f"{what} failed: {' '.join(command)}: {error}") from None
    if completed.returncode != 0:
        tail = "\n".join(completed.stdout.decode(errors="replace").strip().splitlines()[-40:])
        raise BenchError(
            f"{what} failed: {' '.join(command)} exited with {completed.returncode}:\n{tail}"
        )


def _make_readable(root: Path) -> None:
    """Let every account read the virtualenv we just made (and run what its owner may run)."""
    for directory, _dirnames, filenames in os.walk(root):
        os.chmod(directory, os.stat(directory).st_mode | 0o755)
        for name in filenames:
            path = os.path.join(directory, name)
            if os.path.islink(path):
                continue
            mode = os.stat(path).st_mode
            os.chmod(path, mode | (0o755 if mode & stat.S_IXUSR else 0o644))


def _run_as() -> RunAs:
    try:
        return resolve_run_as(RUN_AS)
    except SqlaperfError as error:
        raise BenchError(str(error)) from None


def _binaries(run_as: RunAs) -> PgBinaries:
    """Ours (the ones the plugin finds), or a copy of them ``run_as`` can run."""
    try:
        return binaries_for(find_binaries(), run_as)
    except SqlaperfError as error:
        raise BenchError(str(error)) from None


# --- running it ------------------------------------------------------------------------------


def _project_root(workdir: Path, run_as: RunAs) -> Path:
    """A new directory ``run_as`` owns, in ``workdir`` if it can reach it, else in /tmp."""
    for parent in (workdir, Path(tempfile.gettempdir()), Path("/tmp"), Path("/var/tmp")):
        parent = parent.absolute()
        if len(str(parent)) <= _MAX_PARENT_LENGTH and parent.is_dir() and run_as.can_reach(parent):
            root = Path(tempfile.mkdtemp(prefix="bench-pgstartup-", dir=parent))
            os.chmod(root, 0o755)
            return root.resolve()
    raise BenchError(f"no directory the account {run_as.name!r} can reach for the project")


def _clean_environment() -> dict[str, str]:
    """Ours without PYTHONPATH (our plugin is not in that virtualenv) or libpq's PG* variables."""
    return {
        key: value
        for key, value in child_environment().items()
        if key != "PYTHONPATH" and not key.startswith("PG")
    }


def _environment(project: Path, results_file: Path, run_as: RunAs) -> dict[str, str]:
    """The clean environment, with the results file, and a home and TMPDIR ``run_as`` can use."""
    environment = _clean_environment()
    environment.update(BENCH_RESULTS_FILE=str(results_file), TMPDIR=str(project))
    if run_as.drop:
        environment.update(HOME=str(project), USER=run_as.name, LOGNAME=run_as.name)
    return environment


def run_pytest_as(python: str, project: Path, run_as: RunAs) -> PytestRun:
    """Run ``python -m pytest -q`` in ``project`` as ``run_as``; BenchError unless it passed.

    pytest's basetemp (where pytest-postgresql puts its data directory) is in the project; any
    server a failed run left there is stopped, and the basetemp removed, before this returns.
    """
    results_file = project / f".results-{uuid.uuid4().hex}.json"
    basetemp = project / "basetemp"
    command = [python, "-m", "pytest", "-q", "-p", "no:cacheprovider", f"--basetemp={basetemp}"]
    try:
        started = time.monotonic()
        process = subprocess.Popen(
            command,
            cwd=project,
            env=_environment(project, results_file, run_as),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            **run_as.popen_kwargs(),
        )
        try:
            output, _ = process.communicate(timeout=RUN_TIMEOUT)
        except BaseException:
            stop(process)
            raise
        wall = time.monotonic() - started
    finally:
        _remove_servers(basetemp)
    return read_run(command, project, process.returncode, output, results_file, wall)


def _remove_servers(basetemp: Path) -> None:
    """Stop any server still running on a data directory under ``basetemp``; remove it all."""
    for pid_file in basetemp.glob("**/postmaster.pid"):
        kill_postmaster(pid_file.parent)
    shutil.rmtree(basetemp, ignore_errors=True)


def _sample(python: str, project: Path, run_as: RunAs) -> dict[str, float]:
    run = run_pytest_as(python, project, run_as)
    return {"first_query": run.results["first_query"], "session": run.session, "wall": run.wall}


def measure(workdir: Path, samples: int, venv_dir: Path) -> dict[str, Any]:
    """``samples`` runs of pytest-postgresql's start-up, after an untimed one."""
    python = ensure_venv(venv_dir)
    run_as = _run_as()
    binaries = _binaries(run_as)
    root = _project_root(workdir, run_as)
    try:
        project = write_project(root, pgstartup_project(binaries.bindir / "pg_ctl", root))
        run_as.chown_tree(root)
        _sample(python, project, run_as)  # fills the OS page cache; not counted
        runs: dict[str, list[dict[str, float]]] = {
            KIND: [_sample(python, project, run_as) for _ in range(samples)]
        }
    finally:
        _remove_servers(root / "basetemp")
        shutil.rmtree(root, ignore_errors=True)
    return {
        "method": METHOD,
        "version": PYTEST_POSTGRESQL_VERSION,
        "venv": python,
        "samples": runs,
        "summary": summarise(runs),
    }
