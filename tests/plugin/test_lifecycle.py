"""The embedded server's life in a real pytest process: normal end, Ctrl-C, SIGKILL, root or not."""

from __future__ import annotations

import os
import pwd
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import pytest

WAIT_SECONDS = 60

BLOCKING_TEST = """
import pathlib, time
from sqlalchemy import text

def test_block(sqlaperf_session, sqlaperf_url):
    sqlaperf_session.execute(text("SELECT 1"))
    pathlib.Path("url.txt").write_text(sqlaperf_url)
    deadline = time.monotonic() + {wait}
    while time.monotonic() < deadline and not pathlib.Path("never").exists():
        time.sleep(0.05)
"""

QUICK_TEST = """
from sqlalchemy import text

def test_quick(sqlaperf_session, sqlaperf_url):
    assert sqlaperf_session.execute(text("SELECT 1")).scalar() == 1
    print("URL", sqlaperf_url)
"""


def _private_dir(url: str) -> Path:
    match = re.search(r"host=([^&]+)", url)
    assert match, url
    return Path(unquote(match.group(1))).parent


def _postgres_processes(private_dir: Path) -> list[str]:
    listing = subprocess.run(
        ["ps", "-ww", "-eo", "pid,args"], capture_output=True, text=True, check=True
    ).stdout
    return [line for line in listing.splitlines() if str(private_dir) in line]


def _wait_for(path: Path, process: subprocess.Popen[str]) -> str:
    deadline = time.monotonic() + WAIT_SECONDS
    while time.monotonic() < deadline:
        if path.exists() and path.read_text():
            return path.read_text()
        if process.poll() is not None:
            raise AssertionError(f"pytest ended early: {process.communicate()}")
        time.sleep(0.02)
    raise AssertionError(f"{path} never appeared")


@pytest.fixture
def start(tmp_path: Path) -> Iterator[Callable[[Path], subprocess.Popen[str]]]:
    """Starts a blocking pytest run; interrupts it at teardown if a failed test left it going."""
    started: list[subprocess.Popen[str]] = []

    def _start_and_keep(directory: Path) -> subprocess.Popen[str]:
        started.append(_start(directory))
        return started[-1]

    yield _start_and_keep
    for process in started:
        if process.poll() is None:
            process.send_signal(signal.SIGINT)  # Ctrl-C: the run stops its server itself
            process.communicate(timeout=WAIT_SECONDS)


def _start(directory: Path) -> subprocess.Popen[str]:
    (directory / "test_block.py").write_text(BLOCKING_TEST.format(wait=WAIT_SECONDS))
    return subprocess.Popen(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "test_block.py"],
        cwd=directory,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def _run_quick(directory: Path) -> str:
    (directory / "test_quick.py").write_text(QUICK_TEST)
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-s", "-p", "no:cacheprovider", "test_quick.py"],
        cwd=directory,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def test_normal_run_leaves_nothing(tmp_path: Path) -> None:
    output = _run_quick(tmp_path)
    private_dir = _private_dir(output.split("URL ", 1)[1].split()[0])
    assert not private_dir.exists()
    assert _postgres_processes(private_dir) == []


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_interrupt_stops_the_server_and_removes_its_directory(
    tmp_path: Path, signum: signal.Signals, start: Callable[[Path], subprocess.Popen[str]]
) -> None:
    process = start(tmp_path)
    private_dir = _private_dir(_wait_for(tmp_path / "url.txt", process))
    assert private_dir.exists()
    assert _postgres_processes(private_dir)
    process.send_signal(signum)
    output, _ = process.communicate(timeout=WAIT_SECONDS)
    assert "KeyboardInterrupt" in output
    assert not private_dir.exists()
    assert _postgres_processes(private_dir) == []


def test_sigkill_leftovers_are_swept_by_the_next_run(
    tmp_path: Path, start: Callable[[Path], subprocess.Popen[str]]
) -> None:
    process = start(tmp_path)
    private_dir = _private_dir(_wait_for(tmp_path / "url.txt", process))
    process.kill()
    process.communicate(timeout=WAIT_SECONDS)
    assert private_dir.exists(), "the killed run had no chance to clean up"
    assert _postgres_processes(private_dir), "its server outlived it"
    _run_quick(tmp_path)
    assert not private_dir.exists()
    assert _postgres_processes(private_dir) == []


def _readable_by(user: str, path: Path) -> bool:
    account = pwd.getpwnam(user)
    probe = subprocess.run(
        ["test", "-r", str(path)], user=account.pw_uid, group=account.pw_gid, check=False
    )
    return probe.returncode == 0


def _interpreter_for(user: str) -> tuple[Path, str] | None:
    """An interpreter the account can run, of this Python version, and a PYTHONPATH to our packages.

    The virtualenv's own interpreter may live under /root (pyenv), out of the account's reach; a
    system interpreter of the same version can load the virtualenv's packages instead.
    """
    version = f"python{sys.version_info.major}.{sys.version_info.minor}"
    import sysconfig

    paths = [sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]]
    paths.append(str(Path(__file__).resolve().parents[2] / "src"))
    for candidate in (
        Path(sys.executable),
        Path("/usr/bin") / version,
        Path("/usr/local/bin") / version,
    ):
        usable = candidate.exists() and _readable_by(user, candidate.resolve())
        if usable and all(_readable_by(user, Path(path)) for path in paths):
            return candidate, os.pathsep.join(dict.fromkeys(paths))
    return None


@pytest.mark.skipif(os.geteuid() != 0, reason="this run is already an ordinary user's")
def test_runs_as_an_ordinary_user(request: pytest.FixtureRequest) -> None:
    """As root the server drops privileges; here the whole pytest runs as an ordinary account."""
    found = _interpreter_for("nobody")
    if found is None:
        pytest.skip(
            f"no python{sys.version_info.major}.{sys.version_info.minor} that nobody can run "
            f"with this virtualenv's packages ({sys.prefix})"
        )
    interpreter, python_path = found
    # pytest's tmp_path is private to root; the account needs a directory of its own
    home = Path(tempfile.mkdtemp(prefix="sqlaperf-user-"))
    request.addfinalizer(lambda: shutil.rmtree(home, ignore_errors=True))
    (home / "test_quick.py").write_text(QUICK_TEST)
    account = pwd.getpwnam("nobody")
    shutil.chown(home, account.pw_uid, account.pw_gid)
    shutil.chown(home / "test_quick.py", account.pw_uid, account.pw_gid)
    environment = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(home),
        "XDG_CACHE_HOME": str(home / "cache"),
        "PYTHONPATH": python_path,
    }
    result = subprocess.run(
        [str(interpreter), "-m", "pytest", "-q", "-s", "-p", "no:cacheprovider", "test_quick.py"],
        cwd=home,
        env=environment,
        user=account.pw_uid,
        group=account.pw_gid,
        extra_groups=[],
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 passed" in result.stdout
    private_dir = _private_dir(result.stdout.split("URL ", 1)[1].split()[0])
    assert not private_dir.exists()
    assert "run as nobody" not in result.stdout


URL_BACKEND_TEST = """
import threading
from sqlalchemy import select, func
from models import Author

import pytest

@pytest.mark.parametrize("round", [1, 2])
def test_on_the_given_server(sqlaperf_session, round):
    assert sqlaperf_session.scalar(select(func.count()).select_from(Author)) == 0
    sqlaperf_session.add(Author(name="rolled back"))
    sqlaperf_session.commit()
    # The drivers' preload is over: no import runs behind a test (one that forks copies locks).
    assert "sqlaperf-preload" not in [thread.name for thread in threading.enumerate()]
"""


@pytest.mark.parametrize("workers", [None, "2"], ids=["one_process", "xdist"])
def test_url_backend_makes_and_drops_only_its_own_databases(
    project: pytest.Pytester, sqlaperf_engine: Any, workers: str | None
) -> None:
    def databases() -> set[str]:
        with sqlaperf_engine.connect() as connection:
            rows = connection.exec_driver_sql("SELECT datname FROM pg_database").all()
        return {name for (name,) in rows}

    before = databases()
    project.makepyfile(test_url_backend=URL_BACKEND_TEST)
    url = sqlaperf_engine.url.render_as_string(hide_password=False)
    xdist = ["-n", workers] if workers else []
    result = project.runpytest_subprocess("--sqlaperf-backend=url", f"--sqlaperf-url={url}", *xdist)
    result.assert_outcomes(passed=2)
    assert any("backend url" in line for line in result.outlines), result.outlines[:5]
    assert databases() == before
