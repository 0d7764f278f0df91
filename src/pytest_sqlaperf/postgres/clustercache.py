"""A cache of freshly initdb'd clusters, so a run copies a cluster instead of running initdb."""

from __future__ import annotations

import contextlib
import hashlib
import os
import secrets
import shutil
import subprocess
import threading
from pathlib import Path

from pytest_sqlaperf.errors import SqlaperfError
from pytest_sqlaperf.postgres.account import RunAs, run_tool
from pytest_sqlaperf.postgres.binaries import PgBinaries
from pytest_sqlaperf.postgres.rundir import process_start_time

__all__ = ["INITDB_OPTIONS", "ClusterCache", "copy_tree", "initdb", "server_environment"]

SUPERUSER = "postgres"
# Trust on the unix socket is safe: the socket lives in a 0700 directory of the server account.
INITDB_OPTIONS = ("-U", SUPERUSER, "--auth=trust", "-E", "UTF8", "--no-locale", "--no-sync")
_BUILDING = ".building-"


def server_environment() -> dict[str, str]:
    """Our environment without PG* variables, which would point initdb or postgres elsewhere."""
    return {key: value for key, value in os.environ.items() if not key.startswith("PG")}


def copy_tree(source: Path, destination: Path) -> None:
    """Copy a cluster directory (symlinks as symlinks, modes and times kept).

    ``cp`` first: it copies a cluster (~1,000 files) in about half the time ``shutil.copytree``
    takes, and in another process, so the caller's thread is free meanwhile (the embedded server
    imports the drivers then). ``shutil.copytree`` where ``cp`` is missing or fails.
    """
    if destination.exists() or destination.is_symlink():
        # As shutil.copytree (cp would copy into it instead, and the fallback remove it).
        raise FileExistsError(f"{destination} exists")
    if run_tool("cp", "-RPp", str(source), str(destination)):
        return
    shutil.rmtree(destination, ignore_errors=True)
    shutil.copytree(source, destination, symlinks=True)


def initdb(binaries: PgBinaries, run_as: RunAs, data_dir: Path) -> None:
    """Create a new cluster in ``data_dir`` (which must not exist yet)."""
    command = [str(binaries.bindir / "initdb"), "-D", str(data_dir), *INITDB_OPTIONS]
    try:
        completed = subprocess.run(
            command,
            capture_output=True,
            text=True,
            errors="replace",
            timeout=300,
            check=False,
            cwd=data_dir.parent,
            env=server_environment(),
            **run_as.popen_kwargs(),
        )
    except (OSError, subprocess.SubprocessError) as error:
        raise SqlaperfError(
            f"Could not run {command[0]} as {run_as.name!r}: {error}; set --sqlaperf-pg-bin to "
            "another PostgreSQL installation, or use --sqlaperf-url or --sqlaperf-backend=docker"
        ) from None
    if completed.returncode != 0:
        output = (completed.stdout + completed.stderr).strip().splitlines()
        tail = "\n".join(output[-15:])
        raise SqlaperfError(
            f"initdb ({binaries.bindir}) failed with exit code {completed.returncode}:\n{tail}\n"
            "Check the PostgreSQL installation, set --sqlaperf-pg-bin to another one, or use "
            "--sqlaperf-url or --sqlaperf-backend=docker"
        )


class ClusterCache:
    """initdb output per (version, binaries, initdb options), under a cache directory.

    An entry is only ever a fresh initdb output, never a data directory a server ran on, so a
    cluster that did not shut down cleanly can never be reused. Entries appear atomically by
    rename; the cache is an optimisation, so failing to write it is not an error.
    """

    def __init__(self, root: Path | None) -> None:
        self.root = root

    @staticmethod
    def default_root() -> Path:
        import platformdirs

        return Path(platformdirs.user_cache_dir("pytest-sqlaperf")) / "clusters"

    def key(self, binaries: PgBinaries) -> str:
        identity = "\0".join([binaries.version, str(binaries.bindir), *INITDB_OPTIONS])
        return f"pg{binaries.version}-{hashlib.sha256(identity.encode()).hexdigest()[:16]}"

    def restore(self, binaries: PgBinaries, data_dir: Path) -> bool:
        """Copy the cached cluster to ``data_dir``; False when there is none."""
        if self.root is None:
            return False
        entry = self.root / self.key(binaries)
        try:
            if not (entry / "PG_VERSION").is_file():
                return False
            copy_tree(entry, data_dir)
        except OSError:
            shutil.rmtree(data_dir, ignore_errors=True)
            return False
        return True

    def store_in_background(self, binaries: PgBinaries, pristine: Path) -> threading.Thread:
        """Store ``pristine`` in a thread, then remove it; join the thread before cleaning up."""

        def store_and_remove() -> None:
            try:
                self.store(binaries, pristine)
            finally:
                shutil.rmtree(pristine, ignore_errors=True)

        thread = threading.Thread(target=store_and_remove, name="sqlaperf-cluster-cache")
        # Daemon: an interpreter exiting without stop() must not hang on a slow disk.
        thread.daemon = True
        thread.start()
        return thread

    def store(self, binaries: PgBinaries, data_dir: Path) -> None:
        """Keep a copy of ``data_dir``, which must be initdb output no server has run on."""
        if self.root is None:
            return
        entry = self.root / self.key(binaries)
        owner = f"{os.getpid()}-{process_start_time(os.getpid())}"
        building = self.root / f"{_BUILDING}{owner}-{secrets.token_hex(4)}"
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            _remove_abandoned(self.root)
            copy_tree(data_dir, building)
            # Concurrent runs race to the same entry: rename is atomic, the loser drops its copy.
            with contextlib.suppress(OSError):
                os.rename(building, entry)
        except OSError:
            pass
        finally:
            shutil.rmtree(building, ignore_errors=True)


def _remove_abandoned(root: Path) -> None:
    # Copies left by runs that were killed while storing (pid dead or reused).
    for path in root.glob(f"{_BUILDING}*"):
        pid, start, *_ = [*path.name[len(_BUILDING) :].split("-"), ""]
        if pid.isdigit() and str(process_start_time(int(pid))) != start:
            shutil.rmtree(path, ignore_errors=True)
