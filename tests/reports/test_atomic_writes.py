"""A baseline is never left truncated: not by a writer killed mid-write, nor by writers racing."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from pytest_sqlaperf import baseline
from pytest_sqlaperf.baseline import Baseline

WAIT_SECONDS = 60

# A writer that stops between writing its temporary file and renaming it, and says so.
STALLING_WRITER = """
import os, pathlib, sys, threading
from pytest_sqlaperf import baseline

marker = pathlib.Path(sys.argv[2])

def stall(descriptor):
    marker.write_text("stalled")
    threading.Event().wait()  # until killed

os.fsync = stall
baseline.write_atomic(pathlib.Path(sys.argv[1]), "x" * 3_000_000)
"""

REPEATING_WRITER = """
import pathlib, sys
from pytest_sqlaperf import baseline

text = pathlib.Path(sys.argv[2]).read_text()
for _ in range(int(sys.argv[3])):
    baseline.write_atomic(pathlib.Path(sys.argv[1]), text)
"""


def _big_baseline(tag: str) -> str:
    tests = {
        f"tests/test_{tag}.py::test_{index}": {
            "count": index,
            "by_kind": {"select": index} if index else {},
            "fingerprints": {
                f"{index:016x}": {"count": index, "kind": "select", "sql": f"SELECT {tag} " * 40}
            }
            if index
            else {},
            "findings": [],
            "plans": {},
        }
        for index in range(400)
    }
    return baseline.dumps(Baseline(environment={"sqlalchemy": "2.1"}, tests=tests))  # type: ignore[arg-type]


def _wait_for(path: Path, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + WAIT_SECONDS
    while not path.exists():
        if process.poll() is not None:
            raise AssertionError(f"the writer ended early: {process.communicate()}")
        if time.monotonic() > deadline:
            raise AssertionError(f"{path} never appeared")
        time.sleep(0.01)


def test_a_writer_killed_mid_write_leaves_the_old_file(tmp_path: Path) -> None:
    target = tmp_path / "sqlaperf-baseline.json"
    old = _big_baseline("old")
    target.write_text(old)
    marker = tmp_path / "stalled"
    writer = subprocess.Popen(
        [sys.executable, "-c", STALLING_WRITER, str(target), str(marker)],
        stderr=subprocess.PIPE,
    )
    try:
        _wait_for(marker, writer)
    finally:
        writer.send_signal(signal.SIGKILL)
        writer.communicate(timeout=WAIT_SECONDS)
    assert target.read_text() == old
    baseline.read(target)
    leftovers = list(tmp_path.glob(".sqlaperf-baseline.json.*.tmp"))
    assert len(leftovers) == 1  # the dead writer's temporary file; the target never saw it
    assert leftovers[0].stat().st_size > 0


def test_concurrent_writers_never_leave_a_partial_file(tmp_path: Path) -> None:
    target = tmp_path / "sqlaperf-baseline.json"
    candidates = {_big_baseline(tag) for tag in ("a", "b", "c")}
    target.write_text(_big_baseline("a"))
    writers = []
    for index, text in enumerate(sorted(candidates)):
        source = tmp_path / f"source{index}.json"
        source.write_text(text)
        writers.append(
            subprocess.Popen(
                [sys.executable, "-c", REPEATING_WRITER, str(target), str(source), "40"],
                stderr=subprocess.PIPE,
            )
        )
    reads = 0
    deadline = time.monotonic() + WAIT_SECONDS
    while any(writer.poll() is None for writer in writers):
        assert time.monotonic() < deadline, "the writers did not finish"
        assert target.read_text() in candidates
        reads += 1
    for writer in writers:
        _, errors = writer.communicate()
        assert writer.returncode == 0, errors
    assert target.read_text() in candidates
    assert reads > 0
    assert list(tmp_path.glob("*.tmp")) == []


NO_DATABASE_TESTS = """
import pytest

@pytest.mark.parametrize("n", range(30))
def test_plain(n):
    pass
"""

# Installed by the inner run's conftest: the baseline write stalls until the run is killed.
STALLING_CONFTEST = """
import os, pathlib, threading

def stall(descriptor):
    pathlib.Path("stalled").write_text("stalled")
    threading.Event().wait()

os.fsync = stall
"""


def _pytest(directory: Path, *arguments: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *arguments],
        cwd=directory,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )


def test_a_pytest_run_killed_while_writing_the_baseline(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_plain=NO_DATABASE_TESTS)  # no SQL: no server to leave behind
    update = ("--sqlaperf-baseline=b.json", "--sqlaperf-baseline-mode=update")
    first = _pytest(pytester.path, *update, "-k", "test_plain[0]")
    output, _ = first.communicate(timeout=WAIT_SECONDS)
    assert first.returncode == 0, output
    old = (pytester.path / "b.json").read_text()
    assert list(json.loads(old)["tests"]) == ["test_plain.py::test_plain[0]"]

    pytester.makeconftest(STALLING_CONFTEST)
    killed = _pytest(pytester.path, *update)
    try:
        _wait_for(pytester.path / "stalled", killed)
    finally:
        killed.send_signal(signal.SIGKILL)
        killed.communicate(timeout=WAIT_SECONDS)
    assert (pytester.path / "b.json").read_text() == old


def test_two_pytest_runs_updating_one_baseline(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_plain=NO_DATABASE_TESTS)
    update = ("--sqlaperf-baseline=b.json", "--sqlaperf-baseline-mode=update")
    runs = [_pytest(pytester.path, *update, "-k", expression) for expression in ("1", "2")]
    for run in runs:
        output, _ = run.communicate(timeout=WAIT_SECONDS)
        assert run.returncode == 0, output
    written = baseline.read(pytester.path / "b.json")  # whole, whichever run won
    assert written.tests
    assert all(nodeid.startswith("test_plain.py::") for nodeid in written.tests)
