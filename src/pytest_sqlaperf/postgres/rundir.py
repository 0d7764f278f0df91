"""The private directory of one embedded server, its owner marker, and sweeping dead runs' ones."""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import shutil
import signal
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

__all__ = [
    "DIR_PREFIX",
    "candidate_parents",
    "choose_parent",
    "create_private_dir",
    "kill_postmaster",
    "process_start_time",
    "sweep_orphans",
]

DIR_PREFIX = "sqlaperf-"
MARKER = "owner.json"
_MAGIC = "pytest-sqlaperf embedded server directory"
_SHM = Path("/dev/shm")
# Docker gives containers a 64 MB /dev/shm; a cluster needs ~40 MB plus whatever the tests write.
_MIN_SHM_FREE = 256 * 1024 * 1024
# Unix socket paths are limited to 107 bytes; ".s.PGSQL.5432" and "sock/" need room.
_MAX_DIR_LENGTH = 80


def process_start_time(pid: int) -> int | None:
    """Start time of ``pid`` in clock ticks since boot (/proc/<pid>/stat field 22), or None.

    A zombie counts as gone. Comparing start times tells a live owner from a reused pid.
    """
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name (field 2) is in parentheses and may contain spaces and ")".
    fields = text[text.rindex(")") + 2 :].split()
    if fields[0] in ("Z", "X"):
        return None
    return int(fields[19])


def candidate_parents() -> list[Path]:
    """Directories that may hold private directories: /dev/shm and the temporary directory."""
    parents = [_SHM, Path(tempfile.gettempdir())]
    return [parent for i, parent in enumerate(parents) if parent not in parents[:i]]


def choose_parent(reachable: Callable[[Path], bool] = lambda path: True) -> Path:
    """/dev/shm when it is there and has room (tmpfs: fast, no disk), else the temporary dir.

    ``reachable`` tells whether the server's account can enter a directory.
    """
    for parent in candidate_parents():
        if not (parent.is_dir() and os.access(parent, os.W_OK | os.X_OK) and reachable(parent)):
            continue
        if len(str(parent)) > _MAX_DIR_LENGTH - len(DIR_PREFIX) - 12:
            continue
        if parent == _SHM:
            info = os.statvfs(parent)
            if info.f_bavail * info.f_frsize < _MIN_SHM_FREE:
                continue
        return parent
    return Path("/tmp")


def create_private_dir(parent: Path, run_id: str) -> Path:
    """Create ``<parent>/sqlaperf-<run_id>`` (mode 0700) holding our owner marker."""
    path = parent / f"{DIR_PREFIX}{run_id}"
    os.mkdir(path, 0o700)
    # mkdir's mode is filtered by the umask; this is our own new directory.
    os.chmod(path, 0o700)
    start_time = process_start_time(os.getpid())
    marker = {"magic": _MAGIC, "pid": os.getpid(), "start_time": start_time, "run_id": run_id}
    partial = path / f".{MARKER}.partial"
    partial.write_text(json.dumps(marker))
    os.replace(partial, path / MARKER)
    return path


def sweep_orphans(parents: list[Path] | None = None) -> list[Path]:
    """Stop the servers of dead runs and remove their directories; return what was removed.

    Only directories carrying our marker, written by this user, whose owner process is gone
    (or whose pid now belongs to another process) are touched.
    """
    removed: list[Path] = []
    for parent in candidate_parents() if parents is None else parents:
        try:
            entries = list(parent.glob(f"{DIR_PREFIX}*"))
        except OSError:
            continue
        for path in entries:
            try:
                if _is_orphan(path):
                    kill_postmaster(path / "data")
                    shutil.rmtree(path, ignore_errors=True)
                    if not path.exists():
                        removed.append(path)
            except OSError:
                # Sweeping is housekeeping: it must never stop a run from starting.
                continue
    return removed


def _is_orphan(path: Path) -> bool:
    if path.is_symlink() or not path.is_dir():
        return False
    marker_path = path / MARKER
    try:
        if marker_path.stat(follow_symlinks=False).st_uid != os.geteuid():
            return False
        marker = json.loads(marker_path.read_text())
    except (OSError, ValueError):
        return False
    if not isinstance(marker, dict) or marker.get("magic") != _MAGIC:
        return False
    pid, start_time = marker.get("pid"), marker.get("start_time")
    if not isinstance(pid, int) or not isinstance(start_time, (int, type(None))):
        return False
    current = process_start_time(pid)
    if start_time is None:
        return current is None
    return bool(current != start_time)


def kill_postmaster(data_dir: Path, *, timeout: float = 10.0) -> None:
    """Immediately stop the postmaster of ``data_dir`` named in its postmaster.pid, if running."""
    try:
        pid = int((data_dir / "postmaster.pid").read_text().split("\n", 1)[0])
    except (OSError, ValueError):
        return
    start_time = process_start_time(pid)
    if start_time is None or not _is_postmaster_of(pid, data_dir):
        return
    children = _children(pid)
    # SIGQUIT is PostgreSQL's immediate shutdown: the postmaster takes its children down too.
    _signal_and_wait({pid: start_time}, signal.SIGQUIT, timeout)
    _signal_and_wait({pid: start_time} | children, signal.SIGKILL, timeout)


def _is_postmaster_of(pid: int, data_dir: Path) -> bool:
    try:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace").split("\0")
    except OSError:
        return False
    if not argv or Path(argv[0]).name not in ("postgres", "postmaster"):
        return False
    return any(flag == "-D" and value == str(data_dir) for flag, value in itertools.pairwise(argv))


def _children(pid: int) -> dict[int, int]:
    children: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            text = (entry / "stat").read_text()
        except OSError:
            continue
        fields = text[text.rindex(")") + 2 :].split()
        if int(fields[1]) == pid and fields[0] not in ("Z", "X"):
            children[int(entry.name)] = int(fields[19])
    return children


def _signal_and_wait(processes: dict[int, int], signum: int, timeout: float) -> None:
    def alive() -> list[int]:
        return [pid for pid, start in processes.items() if process_start_time(pid) == start]

    for pid in alive():
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signum)
    deadline = time.monotonic() + timeout
    while alive() and time.monotonic() < deadline:
        time.sleep(0.005)
