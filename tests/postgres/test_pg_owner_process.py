"""The process owning a server: killed (swept later), exiting, Ctrl-C, forking, not root."""

from __future__ import annotations

import contextlib
import json
import os
import pwd
import signal
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pg_helpers import needs_root, server_processes

import pytest_sqlaperf
from pytest_sqlaperf.postgres.binaries import PgBinaries
from pytest_sqlaperf.postgres.rundir import (
    DIR_PREFIX,
    MARKER,
    create_private_dir,
    process_start_time,
    sweep_orphans,
)
from pytest_sqlaperf.postgres.server import new_run_id

# Starts a server, reports where, then waits: the test decides how this process ends.
OWNER = """
import json, sys
from pathlib import Path
from pytest_sqlaperf.postgres.binaries import find_binaries
from pytest_sqlaperf.postgres.embedded import EmbeddedServer
bindir, run_id, cache = sys.argv[1:4]
server = EmbeddedServer(find_binaries(bindir), run_id=run_id, cache_dir=Path(cache))
server.start()
pid = int((server.directory / "data" / "postmaster.pid").read_text().split()[0])
print(json.dumps({"dir": str(server.directory), "postmaster": pid}), flush=True)
sys.stdin.read()
"""


@contextlib.contextmanager
def started_owner(
    binaries: PgBinaries, cache: Path, **popen: Any
) -> Iterator[tuple[subprocess.Popen[str], Path, int]]:
    with subprocess.Popen(
        [sys.executable, "-c", OWNER, str(binaries.bindir), new_run_id(), str(cache)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        **popen,
    ) as owner:
        assert owner.stdout is not None
        facts = json.loads(owner.stdout.readline())
        yield owner, Path(facts["dir"]), facts["postmaster"]


@pytest.mark.usefixtures("subreaper")
def test_sigkilled_owner_leaves_a_server_that_the_next_start_sweeps(
    pg16: PgBinaries, cluster_cache: Path
) -> None:
    with started_owner(pg16, cluster_cache) as (owner, directory, postmaster):
        owner.kill()
    processes = server_processes(directory)
    assert postmaster in processes  # orphaned, still running
    assert directory.exists()

    assert directory in sweep_orphans()

    assert not directory.exists()
    assert server_processes(directory) == []
    assert process_start_time(postmaster) is None
    for pid in processes:  # this process adopted them (subreaper): reap the zombies
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, 0)


def test_owner_exit_without_stop_stops_the_server_at_exit(
    pg16: PgBinaries, cluster_cache: Path
) -> None:
    with started_owner(pg16, cluster_cache) as (owner, directory, _):
        assert owner.stdin is not None
        owner.stdin.close()  # the owner returns from its script without calling stop()
        assert owner.wait(timeout=60) == 0
    assert not directory.exists()
    assert server_processes(directory) == []


def test_ctrl_c_in_the_owner_stops_the_server(pg16: PgBinaries, cluster_cache: Path) -> None:
    starting = started_owner(pg16, cluster_cache, start_new_session=True)
    with starting as (owner, directory, postmaster):
        # What a terminal does on Ctrl-C: SIGINT to the whole foreground process group.
        os.killpg(owner.pid, signal.SIGINT)
        owner.wait(timeout=60)
    assert not directory.exists()
    assert server_processes(directory) == []
    assert process_start_time(postmaster) is None


FORKING_OWNER = """
import json, os, sys
from pathlib import Path
import psycopg
from pytest_sqlaperf.postgres.binaries import find_binaries
from pytest_sqlaperf.postgres.embedded import EmbeddedServer
server = EmbeddedServer(find_binaries(sys.argv[1]), run_id=sys.argv[2], cache_dir=Path(sys.argv[3]))
server.start()
child = os.fork()
if child == 0:
    sys.exit(0)  # a normal exit: runs the atexit handlers inherited from the parent
os.waitpid(child, 0)
with psycopg.connect(host=str(server.socket_dir), user="postgres", dbname="postgres") as conn:
    alive = conn.execute("SELECT 1").fetchone() == (1,)
directory = server.directory
server.stop()
print(json.dumps({"alive_after_child_exit": alive, "dir_after_stop": directory.exists()}))
"""


def test_a_forked_child_exiting_does_not_stop_the_server(
    pg16: PgBinaries, cluster_cache: Path
) -> None:
    completed = subprocess.run(
        [sys.executable, "-c", FORKING_OWNER, str(pg16.bindir), new_run_id(), str(cluster_cache)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr
    facts = json.loads(completed.stdout)
    assert facts == {"alive_after_child_exit": True, "dir_after_stop": False}


def test_sweep_touches_only_our_orphans(tmp_path: Path) -> None:
    ours_dead = create_private_dir(tmp_path, "aaaaaaaaaaaa")
    marker = json.loads((ours_dead / MARKER).read_text())
    finished = subprocess.Popen(["true"])
    finished.wait()
    marker.update(pid=finished.pid, start_time=1)  # a dead owner
    (ours_dead / MARKER).write_text(json.dumps(marker))

    ours_alive = create_private_dir(tmp_path, "bbbbbbbbbbbb")  # owner: this process
    reused_pid = create_private_dir(tmp_path, "cccccccccccc")
    marker = json.loads((reused_pid / MARKER).read_text())
    marker.update(start_time=marker["start_time"] - 1)  # our pid, but not us: a reused pid
    (reused_pid / MARKER).write_text(json.dumps(marker))

    no_marker = tmp_path / f"{DIR_PREFIX}dddddddddddd"
    no_marker.mkdir()
    foreign_marker = tmp_path / f"{DIR_PREFIX}eeeeeeeeeeee"
    foreign_marker.mkdir()
    (foreign_marker / MARKER).write_text(json.dumps({"pid": finished.pid, "start_time": 1}))
    unrelated = tmp_path / "other-dead-thing"
    unrelated.mkdir()
    kept = [ours_alive, no_marker, foreign_marker, unrelated]
    if os.geteuid() == 0:
        # Our marker, but written by another account: not ours to sweep.
        other_user = create_private_dir(tmp_path, "ffffffffffff")
        (other_user / MARKER).write_text(json.dumps(marker | {"start_time": 1}))
        os.chown(other_user / MARKER, pwd.getpwnam("nobody").pw_uid, -1)
        kept.append(other_user)

    removed = sweep_orphans([tmp_path])

    assert sorted(removed) == sorted([ours_dead, reused_pid])
    assert sorted(tmp_path.iterdir()) == sorted(kept)


NORMAL_USER = """
import json, os, sys
from pathlib import Path
from pytest_sqlaperf.postgres.binaries import find_binaries
from pytest_sqlaperf.postgres.embedded import EmbeddedServer
server = EmbeddedServer(find_binaries(sys.argv[1]), run_id=sys.argv[2])
info = server.start()
directory = server.directory
pid = int((directory / "data" / "postmaster.pid").read_text().split()[0])
facts = {
    "euid": os.geteuid(),
    "server_uid": os.stat(f"/proc/{pid}").st_uid,
    "dir_uid": directory.stat().st_uid,
    "version": info.version,
    "description": info.description,
}
server.stop()
facts["dir_exists_after_stop"] = directory.exists()
facts["server_running_after_stop"] = Path(f"/proc/{pid}/cmdline").exists() and bool(
    Path(f"/proc/{pid}/cmdline").read_bytes()
)
print(json.dumps(facts))
"""


def python_for(user: pwd.struct_passwd, pythonpath: str) -> str:
    """An interpreter of this Python version that ``user`` can run (ours may be under /root)."""
    version = f"python{sys.version_info.major}.{sys.version_info.minor}"
    for candidate in (sys.executable, f"/usr/bin/{version}", f"/usr/local/bin/{version}"):
        try:
            probe = subprocess.run(
                [candidate, "-c", "import psycopg, sqlalchemy, pytest_sqlaperf.postgres.embedded"],
                env={"PYTHONPATH": pythonpath, "PATH": os.environ["PATH"]},
                user=user.pw_uid,
                group=user.pw_gid,
                extra_groups=[],
                capture_output=True,
                check=False,
            )
        except OSError:
            continue
        if probe.returncode == 0:
            return candidate
    pytest.skip(f"no Python interpreter with our dependencies that {user.pw_name} can run")


@needs_root
def test_embedded_server_as_a_normal_user(pg16: PgBinaries) -> None:
    nobody = pwd.getpwnam("nobody")
    sources = Path(pytest_sqlaperf.__file__).parent.parent
    site_packages = Path(pytest.__file__).parent.parent
    pythonpath = f"{sources}{os.pathsep}{site_packages}"
    python = python_for(nobody, pythonpath)
    # HOME=/nonexistent: no cache directory can be made, the server must start regardless.
    env = {"PYTHONPATH": pythonpath, "PATH": os.environ["PATH"], "HOME": "/nonexistent"}
    with tempfile.TemporaryDirectory() as cwd:
        os.chmod(cwd, 0o755)
        completed = subprocess.run(
            [python, "-c", NORMAL_USER, str(pg16.bindir), new_run_id()],
            env=env,
            cwd=cwd,
            user=nobody.pw_uid,
            group=nobody.pw_gid,
            extra_groups=[],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
    assert completed.returncode == 0, completed.stderr
    facts = json.loads(completed.stdout)
    assert facts["euid"] == facts["server_uid"] == facts["dir_uid"] == nobody.pw_uid
    assert facts["version"] == pg16.version
    assert "run as" not in facts["description"]  # no privilege drop for a normal user
    assert facts["dir_exists_after_stop"] is False
    assert facts["server_running_after_stop"] is False
