"""Our own PostgreSQL server for a run: a cached cluster copied to a private directory, started."""

from __future__ import annotations

import atexit
import os
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Mapping
from pathlib import Path

from pytest_sqlaperf.errors import SqlaperfError
from pytest_sqlaperf.postgres.account import RunAs, binaries_for, resolve_run_as
from pytest_sqlaperf.postgres.binaries import PgBinaries
from pytest_sqlaperf.postgres.clustercache import (
    SUPERUSER,
    ClusterCache,
    copy_tree,
    initdb,
    server_environment,
)
from pytest_sqlaperf.postgres.rundir import (
    choose_parent,
    create_private_dir,
    kill_postmaster,
    sweep_orphans,
)
from pytest_sqlaperf.postgres.server import ServerInfo, preload_drivers

__all__ = ["SERVER_SETTINGS", "EmbeddedServer"]

PORT = 5432
START_TIMEOUT = 30.0
STOP_TIMEOUT = 15.0
STORE_TIMEOUT = 120.0
LOG_FILE = "postgres.log"
# Settings for a throwaway test server. Durability is pointless (the cluster is deleted at the
# end), so fsync and friends are off; autovacuum is off so plans do not change with its timing.
SERVER_SETTINGS: Mapping[str, str] = {
    "listen_addresses": "",
    "fsync": "off",
    "synchronous_commit": "off",
    "full_page_writes": "off",
    "wal_level": "minimal",
    "max_wal_senders": "0",
    "max_connections": "100",
    "shared_buffers": "128MB",
    # Segments in the data directory instead of /dev/shm: nothing outlives our directory.
    "dynamic_shared_memory_type": "mmap",
    "autovacuum": "off",
    "jit": "off",
    "log_min_messages": "warning",
    "logging_collector": "off",
    "unix_socket_permissions": "0700",
}


class EmbeddedServer:
    """A PostgreSQL server of our own, in a private directory that is removed at stop().

    Unix socket only, trust authentication, superuser ``postgres``. As root, initdb and postgres
    run as ``pg_user`` (PostgreSQL refuses root).
    """

    def __init__(
        self,
        binaries: PgBinaries,
        *,
        pg_user: str = "nobody",
        run_id: str,
        cache_dir: Path | None = None,
        settings: Mapping[str, str] | None = None,
    ) -> None:
        self.binaries = binaries
        self.pg_user = pg_user
        self.run_id = run_id
        self.cache = ClusterCache(cache_dir if cache_dir is not None else _default_cache_root())
        self.settings = {**SERVER_SETTINGS, **(settings or {})}
        self.directory: Path | None = None
        self._process: subprocess.Popen[bytes] | None = None
        self._owner_pid = os.getpid()
        self._storing: threading.Thread | None = None

    def __repr__(self) -> str:
        return f"EmbeddedServer({self.binaries.bindir}, run_id={self.run_id!r})"

    @property
    def socket_dir(self) -> Path | None:
        """The directory of the server's unix socket while it runs."""
        return None if self.directory is None else self.directory / "sock"

    def start(self) -> ServerInfo:
        """Start the server and wait until it accepts connections.

        First removes what dead runs left behind (their servers and private directories).
        """
        if self._process is not None:
            raise RuntimeError("EmbeddedServer.start() called twice")
        self._owner_pid = os.getpid()
        # The drivers import while we wait on the cluster's copy and the server's start.
        preload = preload_drivers()
        sweep_orphans()
        run_as = resolve_run_as(self.pg_user)
        binaries = binaries_for(self.binaries, run_as)
        atexit.register(self.stop)
        try:
            self.directory = create_private_dir(choose_parent(run_as.can_reach), self.run_id)
            self._prepare_cluster(binaries, run_as, self.directory)
            self._process = self._spawn(binaries, run_as, self.directory)
            preload.join()
            version = self._wait_until_ready(self._process, self.directory)
        except BaseException:
            self.stop()
            raise
        account = f", run as {run_as.name}" if run_as.drop else ""
        description = (
            f"embedded PostgreSQL {version.split()[0]} ({self.binaries.source} binaries{account}, "
            f"{self.directory})"
        )
        admin_url = (
            f"postgresql+psycopg://{SUPERUSER}@/postgres?host={self.directory / 'sock'}&port={PORT}"
        )
        return ServerInfo(
            backend="embedded", admin_url=admin_url, description=description, version=version
        )

    def stop(self) -> None:
        """Stop the server (fast shutdown, then harder) and remove the private directory.

        Idempotent and re-entrant (safe from atexit and after a KeyboardInterrupt): every step
        tolerates having been done already.
        """
        if os.getpid() != self._owner_pid:
            # A forked child inherits our atexit handler: the server is not its to stop.
            return
        process, directory = self._process, self.directory
        if process is not None:
            _terminate(process)
            self._process = None
        if self._storing is not None:
            self._storing.join(STORE_TIMEOUT)
            self._storing = None
        if directory is not None:
            # A server we lost track of (interrupted start) is found through its pid file.
            kill_postmaster(directory / "data")
            shutil.rmtree(directory, ignore_errors=True)
            self.directory = None
        atexit.unregister(self.stop)

    def _prepare_cluster(self, binaries: PgBinaries, run_as: RunAs, directory: Path) -> None:
        (directory / "sock").mkdir(mode=0o700)
        os.chmod(directory / "sock", 0o700)
        if run_as.drop:
            os.chown(directory / "sock", run_as.uid, run_as.gid)
            os.chown(directory, run_as.uid, run_as.gid)
        data_dir = directory / "data"
        if self.cache.restore(binaries, data_dir):
            run_as.chown_tree(data_dir)
            return
        if self.cache.root is None:
            initdb(binaries, run_as, data_dir)
            return
        # The cache only ever holds fresh initdb output: keep a pristine copy for it. Writing it
        # to a disk cache takes ~1 s here, so it is done while the server runs.
        pristine = directory / "pristine"
        initdb(binaries, run_as, pristine)
        copy_tree(pristine, data_dir)
        run_as.chown_tree(data_dir)
        self._storing = self.cache.store_in_background(binaries, pristine)

    def _spawn(
        self, binaries: PgBinaries, run_as: RunAs, directory: Path
    ) -> subprocess.Popen[bytes]:
        settings = {
            **self.settings,
            "unix_socket_directories": str(directory / "sock"),
            "port": str(PORT),
        }
        command = [str(binaries.bindir / "postgres"), "-D", str(directory / "data")]
        for name, value in settings.items():
            command += ["-c", f"{name}={value}"]
        with open(directory / LOG_FILE, "ab") as log:
            try:
                # A new session: the user's Ctrl-C goes to pytest's process group, not to the
                # server, which we stop ourselves in order.
                return subprocess.Popen(
                    command,
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=log,
                    cwd=directory,
                    env=server_environment(),
                    start_new_session=True,
                    **run_as.popen_kwargs(),
                )
            except (OSError, subprocess.SubprocessError) as error:
                raise SqlaperfError(
                    f"Could not start {command[0]} as {run_as.name!r}: {error}; set "
                    "--sqlaperf-pg-bin to another PostgreSQL installation, or use --sqlaperf-url "
                    "or --sqlaperf-backend=docker"
                ) from None

    def _wait_until_ready(self, process: subprocess.Popen[bytes], directory: Path) -> str:
        import psycopg

        socket = directory / "sock" / f".s.PGSQL.{PORT}"
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            if process.poll() is not None:
                raise self._start_failure(
                    f"PostgreSQL exited with code {process.returncode} while starting", directory
                )
            if socket.exists():
                try:
                    with psycopg.connect(
                        host=str(directory / "sock"),
                        port=PORT,
                        user=SUPERUSER,
                        dbname="postgres",
                        connect_timeout=5,
                    ) as connection:
                        row = connection.execute("SHOW server_version").fetchone()
                        return str(row[0]) if row else self.binaries.version
                except psycopg.OperationalError:
                    pass
            if time.monotonic() > deadline:
                raise self._start_failure(
                    f"PostgreSQL did not accept connections within {START_TIMEOUT:.0f} s",
                    directory,
                )
            time.sleep(0.005)

    def _start_failure(self, what: str, directory: Path) -> SqlaperfError:
        return SqlaperfError(
            f"{what} ({self.binaries.bindir}). Last lines of its log:\n"
            f"{_tail(directory / LOG_FILE)}\n"
            "Fix the cause above, set --sqlaperf-pg-bin to another PostgreSQL installation, or use "
            "--sqlaperf-url or --sqlaperf-backend=docker"
        )


def _default_cache_root() -> Path | None:
    try:
        return ClusterCache.default_root()
    except Exception:
        # No usable home directory: run without the cache (initdb every run).
        return None


def _terminate(process: subprocess.Popen[bytes]) -> None:
    # SIGINT is PostgreSQL's fast shutdown; SIGQUIT (immediate) and SIGKILL if it hangs.
    for signum, timeout in (
        (signal.SIGINT, STOP_TIMEOUT),
        (signal.SIGQUIT, 5.0),
        (signal.SIGKILL, 5.0),
    ):
        if process.poll() is not None:
            return
        try:
            process.send_signal(signum)
        except ProcessLookupError:
            return
        try:
            process.wait(timeout)
            return
        except subprocess.TimeoutExpired:
            continue


def _tail(path: Path, lines: int = 20) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return "(no log)"
    return "\n".join(text.strip().splitlines()[-lines:]) or "(empty log)"
